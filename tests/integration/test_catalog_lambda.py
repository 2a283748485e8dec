"""The catalog_sync Lambda in-process: Secrets Manager and SSM through moto, Kantata through the sandbox."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from kantata_bridge.catalog.config import CatalogConfig, render_config_yaml
from kantata_bridge.catalog.jira import set_from_jira_export
from kantata_bridge.kantata.client import KantataClient
from kantata_sandbox.server import KantataSandbox
from moto import mock_aws

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
TOKEN_SECRET = "kantata-bridge/kantata-token"
STATE_PARAMETER = "/kantata-bridge/catalog/state"
CONFIG_PARAMETER = "/kantata-bridge/catalog/config"
SCHEDULED = json.loads(
    '{"version": "0", "id": "5a8c6f4c-0000-4000-8000-000000000001", "detail-type": "Scheduled Event",'
    ' "source": "aws.events", "account": "123456789012", "time": "2026-11-24T23:00:00Z", "region": "eu-west-1",'
    ' "resources": ["arn:aws:events:eu-west-1:123456789012:rule/catalog-sync"], "detail": {}}'
)
CONTEXT = SimpleNamespace(
    function_name="catalog-sync",
    memory_limit_in_mb=256,
    invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:catalog-sync",
    aws_request_id="req-catalog-1",
)

_spec = importlib.util.spec_from_file_location("catalog_sync_app", ROOT / "functions/catalog_sync/app.py")
assert _spec is not None
assert _spec.loader is not None
APP = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(APP)


def catalog_yaml() -> str:
    export = json.loads((ROOT / "events/payloads/jira-project-statuses.json").read_text())
    return render_config_yaml(CatalogConfig((set_from_jira_export(export, set_name="PROJ workflow"),)))


def reset_caches() -> None:
    from aws_lambda_powertools.utilities import parameters
    from kantata_bridge.catalog import job

    parameters.clear_caches()
    job._ssm.cache_clear()


@pytest.fixture
def aws(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kantata_sandbox: KantataSandbox
) -> Iterator[SimpleNamespace]:
    config_file = tmp_path / "catalog.yaml"
    config_file.write_text(catalog_yaml())
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "KANTATA_TOKEN_SECRET_NAME": TOKEN_SECRET,
        "KANTATA_BASE_URL": kantata_sandbox.base_url,
        "CATALOG_CONFIG_FILE": str(config_file),
        "CATALOG_STATE_PARAMETER": STATE_PARAMETER,
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "AWS_ENDPOINT_URL",
        "CATALOG_CONFIG_PARAMETER",
        "CATALOG_SCHEDULE_MODE",
        "CATALOG_SCHEDULE_PRUNE",
    ):
        monkeypatch.delenv(name, raising=False)
    reset_caches()
    with mock_aws():
        env = SimpleNamespace(
            secrets=boto3.client("secretsmanager", region_name=REGION),
            ssm=boto3.client("ssm", region_name=REGION),
        )
        env.secrets.create_secret(Name=TOKEN_SECRET, SecretString=kantata_sandbox.token)
        yield env
    reset_caches()


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = APP.lambda_handler(event, CONTEXT)
    json.dumps(summary)  # the summary is JSON
    return summary


def kantata(sandbox: KantataSandbox) -> KantataClient:
    return KantataClient(sandbox.token, base_url=sandbox.base_url)


def test_scheduled_run_applies_the_catalog_and_the_next_run_changes_nothing(
    aws: SimpleNamespace, kantata_sandbox: KantataSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    first = invoke(SCHEDULED)
    assert first["ok"], first
    assert first["converged"]
    assert (first["trigger"], first["mode"], first["prune"]) == ("schedule", "apply", False)
    assert first["changes"] >= 10
    assert {a["result"] for a in first["actions"]} == {"done"}
    (created,) = list(kantata(kantata_sandbox).list_task_status_sets())
    assert len(created.statuses) == 10
    # The pinned ids are kept in SSM for the next run
    pins = json.loads(aws.ssm.get_parameter(Name=STATE_PARAMETER)["Parameter"]["Value"])
    assert pins["sets"]["PROJ workflow"]["id"] == created.id

    second = invoke(SCHEDULED)
    assert second["ok"]
    assert second["changes"] == 0
    assert second["actions"] == []

    finished = [r for r in caplog.records if r.getMessage() == "catalog sync finished"]
    assert [r.summary["changes"] for r in finished] == [first["changes"], 0]  # type: ignore[attr-defined]
    # No log line of the run (the bridge's, the client's or a library's) holds the token
    assert caplog.records
    assert all(kantata_sandbox.token not in r.getMessage() for r in caplog.records)
    assert kantata_sandbox.token not in json.dumps([r.__dict__ for r in caplog.records], default=str)


def test_direct_invoke_plans_without_writing_then_applies_with_prune(
    aws: SimpleNamespace, kantata_sandbox: KantataSandbox
) -> None:
    assert invoke({"mode": "apply"})["ok"]
    client = kantata(kantata_sandbox)
    (current,) = list(client.list_task_status_sets())
    client.create_custom_task_status(current.id, "Extra", "started")
    kantata_sandbox.clear_requests()

    plan = invoke({"mode": "plan", "prune": True})
    assert plan["ok"]
    assert plan["mode"] == "plan"
    assert plan["trigger"] == "invoke"
    assert [(a["action"], a["name"]) for a in plan["actions"]] == [("delete status", "Extra")]
    assert [r for r in kantata_sandbox.requests if r.method != "GET"] == []

    kept = invoke({"mode": "apply"})
    assert kept["changes"] == 0
    assert [k["name"] for k in kept["kept"]] == ["Extra"]

    pruned = invoke({"mode": "apply", "prune": True})
    assert pruned["ok"]
    assert pruned["changes"] == 1
    assert "Extra" not in [s.status for s in next(iter(client.list_task_status_sets())).statuses]


def test_config_can_come_from_an_ssm_parameter(
    aws: SimpleNamespace, kantata_sandbox: KantataSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CATALOG_CONFIG_FILE")
    monkeypatch.setenv("CATALOG_CONFIG_PARAMETER", CONFIG_PARAMETER)
    aws.ssm.put_parameter(Name=CONFIG_PARAMETER, Value=catalog_yaml(), Type="String")

    summary = invoke({"mode": "apply"})

    assert summary["ok"]
    assert summary["converged"]
    assert [s.name for s in kantata(kantata_sandbox).list_task_status_sets()] == ["PROJ workflow"]


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"mode": "destroy"}, "request_invalid"),
        ({"mode": "apply", "prune": "yes"}, "request_invalid"),
        ({"prune": True}, "request_invalid"),  # never the schedule's apply in its place
    ],
)
def test_bad_invoke_is_answered_with_a_reason(
    aws: SimpleNamespace, kantata_sandbox: KantataSandbox, event: dict[str, Any], error: str
) -> None:
    summary = invoke(event)
    assert summary["ok"] is False
    assert summary["error"] == error
    assert kantata_sandbox.requests == []


def test_missing_token_secret_is_reported_without_a_stack_trace(
    aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, kantata_sandbox: KantataSandbox
) -> None:
    monkeypatch.setenv("KANTATA_TOKEN_SECRET_NAME", "no/such/secret")
    summary = invoke({"mode": "plan"})
    assert summary == {
        "trigger": "invoke",
        "mode": "plan",
        "prune": False,
        "ok": False,
        "error": "token_unavailable",
        "message": "secret 'no/such/secret' could not be read",
    }
    assert kantata_sandbox.requests == []


def test_kantata_refusing_the_token_is_reported(
    aws: SimpleNamespace, kantata_sandbox: KantataSandbox
) -> None:
    aws.secrets.put_secret_value(SecretId=TOKEN_SECRET, SecretString="wrong-token")
    summary = invoke({"mode": "plan"})
    assert summary["ok"] is False
    assert summary["error"] == "kantata_unavailable"
    assert "401" in summary["message"]
    assert "wrong-token" not in json.dumps(summary)


def test_an_unexpected_error_is_logged_and_answered_without_a_stack_trace(
    aws: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: Any) -> dict[str, Any]:
        raise RuntimeError("bug")

    monkeypatch.setattr(APP, "run_job", broken)
    summary = invoke({"mode": "plan"})
    assert summary == {
        "ok": False,
        "error": "internal",
        "message": "unexpected error; see the function's log",
    }
    assert any(r.getMessage() == "catalog sync failed unexpectedly" for r in caplog.records)
