"""`kantata-bridge catalog plan|apply` against the sandbox, as an operator runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kantata_bridge_cli.main import main
from kantata_sandbox.server import KantataSandbox

pytestmark = pytest.mark.integration

EXPORT = Path(__file__).resolve().parents[2] / "events" / "payloads" / "jira-project-statuses.json"


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["catalog", "from-jira", str(EXPORT), "--set-name", "PROJ workflow"]) == 0
    path = tmp_path / "catalog.yaml"
    path.write_text(capsys.readouterr().out)
    return path


@pytest.fixture
def common(config: Path, kantata_sandbox: KantataSandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The options that point the CLI at the sandbox (the token comes from an environment variable)."""
    monkeypatch.setenv("SANDBOX_TOKEN", kantata_sandbox.token)
    return ["--config", str(config), "--base-url", kantata_sandbox.base_url, "--token-env", "SANDBOX_TOKEN"]


def test_plan_apply_and_reapply_from_the_command_line(
    config: Path, common: list[str], kantata_sandbox: KantataSandbox, capsys: pytest.CaptureFixture[str]
) -> None:

    assert main(["catalog", "plan", *common]) == 0
    plan = capsys.readouterr().out
    assert '+ create set "PROJ workflow"' in plan
    assert "Plan: 12 changes." in plan
    assert [r.method for r in kantata_sandbox.requests] == ["GET"]

    assert main(["catalog", "apply", *common]) == 0
    assert "Kantata is in step with the catalog" in capsys.readouterr().out
    state = config.with_name("catalog.state.json")
    assert "PROJ workflow" in json.loads(state.read_text())["sets"]

    assert main(["catalog", "apply", *common]) == 0
    assert "No changes: Kantata is in step with the catalog." in capsys.readouterr().out

    assert main(["catalog", "apply", *common, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["changes"] == 0
    assert summary["converged"] is True


def test_apply_that_kantata_refuses_exits_1(
    config: Path, common: list[str], kantata_sandbox: KantataSandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    kantata_sandbox.faults.script([422], method="POST", path_prefix="/task_status_sets")
    code = main(["catalog", "apply", *common, "--no-state"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED" in out
    assert "Run apply again" in out
    assert not config.with_name("catalog.state.json").exists()


def test_a_state_file_that_cannot_be_written_is_a_warning_not_a_crash(
    common: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "no-such-dir" / "catalog.state.json"

    code = main(["catalog", "apply", *common, "--state", str(state)])

    captured = capsys.readouterr()
    assert code == 0
    assert "Kantata is in step with the catalog" in captured.out
    assert f"warning: pins not saved to {state}" in captured.err
