"""`kantata-bridge catalog`: generating config from a Jira export, and refusing bad input with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from kantata_bridge.catalog.config import parse_config_text
from kantata_bridge_cli.main import main

EXPORT = Path(__file__).resolve().parents[2] / "events" / "payloads" / "jira-project-statuses.json"


def test_from_jira_prints_config_that_loads(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "from-jira", str(EXPORT), "--set-name", "PROJ workflow", "--project", "PROJ"])
    out = capsys.readouterr().out
    assert code == 0
    config = parse_config_text(out)
    assert config.sets[0].name == "PROJ workflow"
    assert config.sets[0].workflow == "PROJ"
    assert ("Waiting for customer", "needs info") in [(s.name, s.category) for s in config.sets[0].statuses]


def test_from_jira_rules_can_be_replaced(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["catalog", "from-jira", str(EXPORT), "--set-name", "P", "--needs-info", "/^qa$/"])
    statuses = {s.name: s.category for s in parse_config_text(capsys.readouterr().out).sets[0].statuses}
    assert code == 0
    assert (statuses["QA"], statuses["Blocked"]) == ("needs info", "started")


def test_from_jira_refuses_a_file_that_is_not_an_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "export.json"
    bad.write_text('{"issues": []}')
    assert main(["catalog", "from-jira", str(bad), "--set-name", "P"]) == 2
    assert "expected the JSON list" in capsys.readouterr().err


def test_invalid_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "catalog.yaml"
    config.write_text("sets: [{name: P, statuses: [{name: Done, category: closed}]}]")
    assert main(["catalog", "plan", "--config", str(config)]) == 2
    assert "sets[0].statuses[0].category" in capsys.readouterr().err


def test_missing_token_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MY_TOKEN", raising=False)
    config = tmp_path / "catalog.yaml"
    config.write_text("sets: [{name: P, statuses: [{name: Done, category: completed}]}]")
    assert main(["catalog", "plan", "--config", str(config), "--token-env", "MY_TOKEN"]) == 2
    assert "$MY_TOKEN" in capsys.readouterr().err
