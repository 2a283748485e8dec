"""The template passes `sam validate --lint` with every opt-in switched on, not only with its defaults.

The opt-in resources and settings hang on parameters whose defaults leave them off, so a check of the template as
written never sees them on. scripts/opt_in_template.py makes copies with the opt-ins' defaults switched on (the
receiver's SnapStart in one, provisioned concurrency in the other: they exclude each other); scripts/iac_checks.sh
validates, builds and scans those copies, and this test runs the same validation in the test suite.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import cfn_yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "opt_in_template.py"
SAM = Path(sys.executable).with_name("sam")


def opt_in_copy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter running our own script
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("variant", "snapstart", "provisioned"),
    [("snapstart", "true", "0"), ("provisioned-concurrency", "false", "2")],
)
def test_the_template_validates_with_every_opt_in_on(tmp_path, variant, snapstart, provisioned):
    # Given a copy of the template with the opt-ins on
    made = opt_in_copy(variant)
    assert made.returncode == 0, made.stderr
    copy = tmp_path / f"template-{variant}.yaml"
    copy.write_text(made.stdout, encoding="utf-8")
    params = dict(cfn_yaml.load(str(copy)))["Parameters"]
    on = {
        "GithubRecoveryEnabled": "true",
        "JiraReconcileEnabled": "true",
        "ReceiverSnapStart": snapstart,
        "ReceiverProvisionedConcurrency": provisioned,
        **{f"{t}SilenceAlarmMinutes": "60" for t in ("Github", "Jira", "Gitlab", "Linear")},
    }
    assert {name: params[name]["Default"] for name in on} == on
    # When `sam validate --lint` checks it (cfn-lint with the SAM schemas), as scripts/iac_checks.sh does
    assert SAM.is_file(), f"the SAM CLI is part of the dev install ({SAM} is missing; run `make venv`)"
    checked = subprocess.run(  # noqa: S603 - the SAM CLI of this venv on our own template copy
        [str(SAM), "validate", "--lint", "--template", str(copy)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
    )
    # Then there is nothing to report
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        ([], 2, "usage: opt_in_template.py {snapstart|provisioned-concurrency} [TEMPLATE]"),
        (["all"], 2, "usage:"),
        (["snapstart", "template.yaml", "extra"], 2, "usage:"),
        (["snapstart", "no-such-template.yaml"], 2, "cannot read no-such-template.yaml"),
    ],
)
def test_the_copy_script_refuses_bad_usage(args, status, message):
    made = opt_in_copy(*args)
    assert (made.returncode, made.stdout) == (status, "")
    assert message in made.stderr
    assert "Traceback" not in made.stderr


def test_the_copy_script_fails_when_an_opt_in_parameter_is_gone(tmp_path):
    # A renamed parameter must not leave the copy silently checking the option off
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    stale = tmp_path / "template.yaml"
    stale.write_text(
        template.replace("\n  LinearSilenceAlarmMinutes:\n", "\n  LinearQuietMinutes:\n"), encoding="utf-8"
    )
    made = opt_in_copy("snapstart", str(stale))
    assert (made.returncode, made.stdout) == (1, "")
    assert "parameter LinearSilenceAlarmMinutes (with a Default) not found" in made.stderr
