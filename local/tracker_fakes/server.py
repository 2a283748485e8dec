"""``tracker-fakes``: run the fake GitHub and Jira APIs on 127.0.0.1 until Ctrl-C (for trying recovery and
reconciliation by hand; the tests and ``make demo`` start them in-process).

It follows the project's command-line conventions (``kantata_bridge_cli.console``): the addresses on stdout,
errors as one ``tracker-fakes: error: …`` line on stderr, exit 0 when stopped with Ctrl-C or SIGTERM and 2 for
bad input or usage (a port out of range or already in use included), ``--version``.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import Sequence
from typing import Final

from tracker_fakes.github import FakeGitHub
from tracker_fakes.jira import FakeJira

TOOL: Final = "tracker-fakes"
EXAMPLES: Final = """\
examples:
  tracker-fakes                                         # fake GitHub on 8901, fake Jira on 8902
  tracker-fakes --github-port 0 --jira-port 0           # free ports (the addresses are printed)
  curl http://127.0.0.1:8901/_fake/requests             # what the fake GitHub was asked

exit codes: 0 stopped with Ctrl-C, 2 bad input or usage (including a port in use)
"""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    from kantata_bridge_cli import console

    parser = console.ArgumentParser(
        prog=TOOL,
        description="Fake GitHub (webhook deliveries) and Jira (JQL search) APIs on 127.0.0.1.",
        epilog=EXAMPLES,
    )
    console.add_version(parser)
    parser.add_argument(
        "--github-port",
        type=console.port_number,
        default=8901,
        help="fake GitHub port (default 8901; 0 picks a free one)",
    )
    parser.add_argument(
        "--jira-port",
        type=console.port_number,
        default=8902,
        help="fake Jira port (default 8902; 0 picks a free one)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``tracker-fakes``: serve until Ctrl-C. Returns the exit code (0 stopped, 2 bad input or
    usage, including a port in use, as ``kantata-sandbox``)."""
    from kantata_bridge_cli import console

    return console.run_main(TOOL, lambda: _serve(argv))


def _serve(argv: Sequence[str] | None) -> int:
    from kantata_bridge_cli import console

    args = build_parser().parse_args(argv)
    if args.github_port and args.github_port == args.jira_port:
        raise console.CliError(
            f"--github-port and --jira-port are both {args.github_port}",
            hint="Give each fake its own port (0 picks a free one).",
        )
    github, jira = FakeGitHub(port=args.github_port), FakeJira(port=args.jira_port)
    try:
        for fake, option in ((github, "--github-port"), (jira, "--jira-port")):
            try:
                fake.start()
            except OSError as exc:
                raise console.CliError(
                    f"cannot listen on {fake.host}:{fake.port}: {exc.strerror or exc}",
                    hint=f"Stop what uses that port or pick another {option} (0 picks a free one).",
                ) from None
        try:
            # Ctrl-C and `kill` both stop it cleanly, even when started from a shell that ignores SIGINT in
            # background jobs, and even when they arrive before the addresses are out (hence the outer try).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, _interrupt)
        except ValueError:  # not the main thread (e.g. called from a test thread): rely on the caller
            pass
        try:
            print(f"fake GitHub API on {github.url} (token: {github.token}); control: {github.url}/_fake/")
            print(
                f"fake Jira site on {jira.url} (user {jira.email}, API token {jira.api_token}); "
                f"control: {jira.url}/_fake/"
            )
            print("Press Ctrl-C to stop.", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    finally:
        github.stop()
        jira.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
