"""`kantata-bridge catalog`: generating config from a Jira export, and refusing bad input with exit code 2."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from kantata_bridge.catalog.config import parse_config_text
from kantata_bridge.kantata import DEFAULT_BASE_URL
from kantata_bridge_cli import catalog as catalog_cli
from kantata_bridge_cli.diagnostics import terminal_diagnostics
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


# ---------------------------------------------------------------- bad input, as a table

VALID = "sets: [{name: P, statuses: [{name: Done, category: completed}]}]\n"


def _files(tmp: Path) -> None:
    (tmp / "ok.yaml").write_text(VALID)
    (tmp / "invalid.yaml").write_text("sets: [{name: P, statuses: [{name: Done, category: closed}]}]")
    (tmp / "latin1.yaml").write_bytes(b"sets: [{name: Caf\xe9, statuses: []}]")
    (tmp / "nested.yaml").write_text("[" * 5000)
    (tmp / "a-dir.yaml").mkdir()
    (tmp / "export.json").write_text('{"issues": []}')
    (tmp / "broken.json").write_text("[{")
    (tmp / "latin1.json").write_bytes(b'[{"name": "Caf\xe9"}]')
    (tmp / "nested.json").write_text("[" * 100_000)


TOKEN = "s3cret-token-value"  # a test value; it must never be printed
SYNC_CASES = [
    # (argv after 'catalog', exit code, what stderr says)
    (["plan"], 2, "error: no catalog at config/catalog.yaml"),
    (["plan"], 2, "cp config/catalog.example.yaml config/catalog.yaml"),
    (["plan"], 2, "catalog from-jira EXPORT.json --set-name NAME > config/catalog.yaml"),
    (["apply", "--config", "absent.yaml"], 2, "error: no catalog at absent.yaml"),
    (["plan", "--config", "a-dir.yaml"], 2, "cannot read the file"),
    (["plan", "--config", "latin1.yaml"], 2, "not UTF-8 text (byte 17)"),
    (["plan", "--config", "nested.yaml"], 2, "nested too deeply"),
    (["plan", "--config", "invalid.yaml"], 2, "sets[0].statuses[0].category"),
    (
        ["plan", "--config", "ok.yaml", "--token-env", "NO_SUCH_VAR"],
        2,
        "set the Kantata token in $NO_SUCH_VAR",
    ),
    (["plan", "--config", "ok.yaml", "--token-env", "BAD_TOKEN"], 2, "token or URL is not usable"),
    (
        ["plan", "--config", "ok.yaml", "--base-url", "ftp://example.com"],
        2,
        "--base-url must be an http(s) URL",
    ),
    (["plan", "--config", "ok.yaml", "--base-url", "http://127.0.0.1:99999/api/v1"], 2, "got 'http://127"),
    (["plan", "--config", "ok.yaml", "--base-url", "https://me:pw-in-url@"], 2, "got 'https://'"),
    (["apply", "--config", "ok.yaml"], 2, "standard input is not a terminal"),
    (["apply", "--config", "ok.yaml"], 2, "then run apply with --auto-approve"),
    (["plan", "--config", "invalid.yaml", "--detailed-exitcode"], 1, "sets[0].statuses[0].category"),
    (["plan", "--config", "absent.yaml", "--detailed-exitcode"], 1, "no catalog at absent.yaml"),
]
JIRA_CASES = [
    (["from-jira", "absent.json", "--set-name", "P"], 2, "cannot read absent.json: No such file"),
    (["from-jira", "a-dir.yaml", "--set-name", "P"], 2, "cannot read a-dir.yaml"),
    (["from-jira", "broken.json", "--set-name", "P"], 2, "broken.json is not JSON"),
    (["from-jira", "latin1.json", "--set-name", "P"], 2, "latin1.json is not UTF-8 text (byte 14)"),
    (["from-jira", "nested.json", "--set-name", "P"], 2, "nested too deeply"),
    (["from-jira", "export.json", "--set-name", "P"], 2, "expected the JSON list"),
    (["from-jira", "-", "--set-name", "P"], 2, "standard input is not JSON"),
    (["from-jira", str(EXPORT), "--set-name", " P"], 2, "must not start or end with spaces"),
    (["from-jira", str(EXPORT), "--set-name", "P", "--needs-info", "/(/"], 2, "is not a valid regex"),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no config/catalog.yaml, a few bad files, and tokens in the environment."""
    _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KANTATA_TOKEN", TOKEN)
    monkeypatch.setenv("BAD_TOKEN", "has a space")
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    monkeypatch.delenv("CATALOG_CONFIG_FILE", raising=False)
    monkeypatch.delenv("KANTATA_BASE_URL", raising=False)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"not json")))  # not a terminal
    return tmp_path


def _assert_clean_failure(captured: Any, expected: str, *, json_out: bool) -> None:
    assert expected in captured.err, captured.err
    assert "Traceback" not in captured.err
    assert TOKEN not in captured.err + captured.out
    assert "pw-in-url" not in captured.err
    assert captured.err.strip().startswith(("kantata-bridge: error:", "Kantata:")), captured.err
    assert len([line for line in captured.err.splitlines() if line.strip()]) <= 3  # error, hint (+ target)
    if json_out and captured.out:
        json.loads(captured.out)
    else:
        assert captured.out == ""


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "json"])
@pytest.mark.parametrize(("argv", "code", "expected"), SYNC_CASES)
def test_plan_and_apply_refuse_bad_input_in_one_or_two_lines(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    expected: str,
    json_out: bool,
) -> None:
    assert main(["catalog", *argv, *(["--json"] if json_out else [])]) == code
    _assert_clean_failure(capsys.readouterr(), expected, json_out=json_out)


@pytest.mark.parametrize(("argv", "code", "expected"), JIRA_CASES)
def test_from_jira_refuses_bad_input_in_one_or_two_lines(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, expected: str
) -> None:
    assert main(["catalog", *argv]) == code
    _assert_clean_failure(capsys.readouterr(), expected, json_out=False)


def test_the_live_api_is_named_as_such() -> None:
    assert "the live Kantata API" in catalog_cli._target_line(DEFAULT_BASE_URL)
    assert catalog_cli._target_line("http://127.0.0.1:8900/api/v1") == "Kantata: http://127.0.0.1:8900/api/v1"
    assert catalog_cli._shown_url("https://me:pw@h.example/api") == "https://h.example/api"


# ---------------------------------------------------------------- diagnostics on stderr, as plain lines


def test_a_retry_record_is_one_plain_line_on_stderr_not_json_on_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import UnavailableError

    # When the Kantata client logs a retry while a catalog command runs
    with terminal_diagnostics():
        KantataClient._log_retry(
            UnavailableError("x", status=503, method="GET", path="/task_status_sets"), 1, 0.42
        )
    captured = capsys.readouterr()
    # Then it is one human line on stderr, and stdout stays for the data
    assert captured.out == ""
    assert (
        captured.err == "warning: Kantata GET /task_status_sets failed (503, unavailable); retry 1 in 0.4 s\n"
    )


def test_the_lambda_logger_is_restored_after_a_command() -> None:
    from kantata_bridge.observability import logger

    before = list(logging.getLogger(logger.name).handlers)
    with terminal_diagnostics():
        assert logging.getLogger(logger.name).handlers != before
    assert logging.getLogger(logger.name).handlers == before
