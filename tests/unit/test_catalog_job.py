"""The catalog job behind the Lambda: settings, the request in the event, the JSON summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kantata_bridge.catalog.job import CatalogJobError, JobSettings, parse_request, run_job

from tests.unit.catalog_fakes import FakeKantata

CATALOG = """
version: 1
sets:
  - name: PROJ
    statuses:
      - {name: To Do, category: not started}
      - {name: Done, category: completed}
"""
SCHEDULED = {"version": "0", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


@pytest.fixture
def settings(tmp_path: Path) -> JobSettings:
    path = tmp_path / "catalog.yaml"
    path.write_text(CATALOG)
    return JobSettings(token_secret_name="kantata/token", config_file=str(path))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"KANTATA_TOKEN_SECRET_NAME": "s"},
            "set exactly one of CATALOG_CONFIG_FILE and CATALOG_CONFIG_PARAMETER",
        ),
        (
            {"KANTATA_TOKEN_SECRET_NAME": "s", "CATALOG_CONFIG_FILE": "a", "CATALOG_CONFIG_PARAMETER": "b"},
            "set exactly one",
        ),
        ({"CATALOG_CONFIG_FILE": "a"}, "KANTATA_TOKEN_SECRET_NAME is not set"),
        (
            {
                "CATALOG_CONFIG_FILE": "a",
                "KANTATA_TOKEN_SECRET_NAME": "s",
                "CATALOG_SCHEDULE_MODE": "destroy",
            },
            "CATALOG_SCHEDULE_MODE must be plan or apply",
        ),
        (
            {"CATALOG_CONFIG_FILE": "a", "KANTATA_TOKEN_SECRET_NAME": "s", "CATALOG_SCHEDULE_PRUNE": "maybe"},
            "CATALOG_SCHEDULE_PRUNE must be true or false",
        ),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(CatalogJobError, match=message):
        JobSettings.from_env(env)


def test_settings_defaults() -> None:
    settings = JobSettings.from_env(
        {"CATALOG_CONFIG_PARAMETER": "/catalog", "KANTATA_TOKEN_SECRET_NAME": "s"}
    )
    assert settings.base_url == "https://api.mavenlink.com/api/v1"
    assert (settings.schedule_mode, settings.schedule_prune) == ("apply", False)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (SCHEDULED, ("apply", False, "schedule")),
        ({"mode": "plan"}, ("plan", False, "invoke")),
        ({"mode": "apply", "prune": True}, ("apply", True, "invoke")),
        ({}, ("apply", False, "event")),
    ],
)
def test_request_comes_from_a_direct_invoke_or_the_schedule(event: Any, expected: tuple[Any, ...]) -> None:
    settings = JobSettings(token_secret_name="s", config_file="c")
    request = parse_request(event, settings)
    assert (request.mode, request.prune, request.trigger) == expected


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"mode": "destroy"}, "mode must be 'plan' or 'apply'"),
        ({"mode": "apply", "prune": "yes"}, "prune must be"),
        # Neither falls back to the schedule's mode (an apply by default): the caller meant something else
        ({"prune": True}, "mode must be 'plan' or 'apply'; got None"),
        ({"Mode": "plan"}, "unknown key(s) 'Mode'"),
        ([{"mode": "plan"}], "the event must be a JSON object"),
    ],
)
def test_bad_invoke_is_refused_in_the_summary(event: Any, reason: str, settings: JobSettings) -> None:
    kantata = FakeKantata()
    summary = run_job(event, settings, client_factory=lambda _: kantata)
    assert summary["ok"] is False
    assert summary["error"] == "request_invalid"
    assert reason in summary["message"]
    assert kantata.calls == []


def test_a_token_kantata_cannot_take_is_reported_without_its_value(
    settings: JobSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a secret whose value has a space inside (e.g. "Bearer abc" pasted whole)
    from kantata_bridge.catalog import job

    monkeypatch.setattr(job, "read_token", lambda _: "Bearer s3cr3t-value")
    summary = run_job({"mode": "plan"}, settings)
    assert summary["ok"] is False
    assert summary["error"] == "token_unavailable"
    assert "s3cr3t-value" not in json.dumps(summary)


def test_plan_then_apply_then_apply_again(settings: JobSettings) -> None:
    kantata = FakeKantata()
    plan = run_job({"mode": "plan"}, settings, client_factory=lambda _: kantata)
    assert plan["ok"]
    assert plan["mode"] == "plan"
    assert plan["changes"] == 4
    assert kantata.writes() == []
    applied = run_job({"mode": "apply"}, settings, client_factory=lambda _: kantata)
    assert applied["ok"]
    assert applied["converged"]
    assert applied["changes"] == 4
    again = run_job(SCHEDULED, settings, client_factory=lambda _: kantata)
    assert again["ok"]
    assert again["changes"] == 0
    assert again["trigger"] == "schedule"
    json.dumps(again)  # JSON-ready


def test_invalid_config_file_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text("sets: [{name: PROJ, statuses: [{name: Done, category: finished}]}]")
    settings = JobSettings(token_secret_name="s", config_file=str(path))
    summary = run_job({"mode": "plan"}, settings, client_factory=lambda _: FakeKantata())
    assert summary["error"] == "config_invalid"
    assert "sets[0].statuses[0].category" in summary["message"]
