#!/usr/bin/env python3
"""Print a copy of template.yaml with its opt-in parameters switched on by default, for the template checks.

The opt-in resources and settings (delivery recovery, Jira reconciliation, silence alarms, the receiver's
SnapStart or provisioned concurrency) hang on parameters whose defaults leave them off, so checks that read the
template with its defaults never see them switched on. This copy changes only those parameters' defaults.

Usage: opt_in_template.py VARIANT [TEMPLATE]   (TEMPLATE defaults to template.yaml next to this script's folder)

VARIANT is one of:
  snapstart                every opt-in on, the receiver with SnapStart
  provisioned-concurrency  every opt-in on, the receiver with provisioned concurrency instead (the two exclude
                           each other)

Exit status: 0 copy printed on stdout; 1 a parameter is missing from the template; 2 bad usage.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMON = {
    "GithubRecoveryEnabled": '"true"',
    "GithubRecoveryHooks": "repos/acme/webapp/hooks/1",
    "JiraReconcileEnabled": '"true"',
    "JiraSiteUrl": "https://acme.atlassian.net",
    "GithubSilenceAlarmMinutes": '"60"',
    "JiraSilenceAlarmMinutes": '"60"',
    "GitlabSilenceAlarmMinutes": '"60"',
    "LinearSilenceAlarmMinutes": '"60"',
}
VARIANTS = {
    "snapstart": {**COMMON, "ReceiverSnapStart": '"true"', "ReceiverProvisionedConcurrency": '"0"'},
    "provisioned-concurrency": {
        **COMMON,
        "ReceiverSnapStart": '"false"',
        "ReceiverProvisionedConcurrency": '"2"',
    },
}


def opt_in(text: str, defaults: dict[str, str]) -> str:
    """``text`` (a template) with each named parameter's ``Default:`` line set to the given YAML scalar.

    Raises KeyError naming the first parameter the template does not declare with a ``Default``.
    """
    for name, value in defaults.items():
        text, found = re.subn(
            rf"(\n  {name}:\n(?:    .*\n)*?    Default: )[^\n]*", rf"\g<1>{value}", text, count=1
        )
        if not found:
            raise KeyError(name)
    return text


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2 or argv[0] not in VARIANTS:
        sys.stderr.write(f"usage: opt_in_template.py {{{'|'.join(VARIANTS)}}} [TEMPLATE]\n")
        return 2
    path = Path(argv[1]) if len(argv) == 2 else ROOT / "template.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"opt_in_template: cannot read {path}: {exc.strerror}\n")
        return 2
    try:
        sys.stdout.write(opt_in(text, VARIANTS[argv[0]]))
    except KeyError as exc:
        sys.stderr.write(f"opt_in_template: parameter {exc.args[0]} (with a Default) not found in {path}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
