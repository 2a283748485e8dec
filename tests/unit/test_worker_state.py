"""State-table pieces against moto's in-process DynamoDB: ordering guard, outcome store, idempotency layer."""

from __future__ import annotations

import json
import os
import time

import boto3
import pytest
from kantata_bridge.worker.ordering import OrderingGuard
from kantata_bridge.worker.outcomes import Outcome, OutcomeKind, OutcomeStore
from kantata_bridge.worker.settings import SettingsError, WorkerSettings
from moto import mock_aws

from tests.support.worker_env import IDEMPOTENCY_TABLE, STATE_TABLE, create_worker_resources, fake_aws_env

TABLE = STATE_TABLE


@pytest.fixture
def ddb(monkeypatch):
    fake_aws_env(monkeypatch.setenv)
    with mock_aws():
        create_worker_resources()
        yield boto3.client("dynamodb")


def test_first_event_of_an_object_claims_it(ddb):
    claim = OrderingGuard(TABLE, ddb).claim("jira:issue:PROJ-1", 100, "jira:-:a")
    assert claim.granted
    assert not claim.reclaimed


@pytest.mark.parametrize(("second", "granted"), [(99, False), (100, False), (101, True)])
def test_only_a_newer_version_from_another_delivery_advances_the_object(ddb, second, granted):
    guard = OrderingGuard(TABLE, ddb)
    guard.claim("k", 100, "d1")
    claim = guard.claim("k", second, "d2")
    assert claim.granted is granted
    if not granted:
        assert (claim.current_version, claim.current_delivery) == (100, "d1")


def test_redelivery_of_the_claiming_delivery_may_go_on_and_is_told_it_reclaimed(ddb):
    guard = OrderingGuard(TABLE, ddb)
    guard.claim("k", 100, "d1")
    claim = guard.claim("k", 100, "d1")
    assert claim.granted
    assert claim.reclaimed
    assert guard.current("k") == (100, "d1")


def test_objects_are_independent(ddb):
    guard = OrderingGuard(TABLE, ddb)
    guard.claim("a", 100, "d1")
    assert guard.claim("b", 1, "d2").granted


def outcome(
    key: str, kind=OutcomeKind.POSTED, at="2026-11-25T00:00:00.000001+00:00", obj="jira:issue:PROJ-1", **kw
):
    return Outcome(dedupe_key=key, kind=kind, reason=kind.value, recorded_at=at, object_key=obj, **kw)


def test_outcome_is_queryable_by_delivery_and_by_object_newest_first(ddb):
    store = OutcomeStore(TABLE, ddb)
    store.put(outcome("jira:-:1", report_id="55", at="2026-11-25T00:00:01+00:00"))
    store.put(outcome("jira:-:2", kind=OutcomeKind.SKIPPED, at="2026-11-25T00:00:02+00:00"))
    store.put(outcome("jira:-:3", obj="jira:issue:OTHER-1"))
    assert store.get("jira:-:1").report_id == "55"
    assert store.get("nope") is None
    assert [o.dedupe_key for o in store.for_object("jira:issue:PROJ-1")] == ["jira:-:2", "jira:-:1"]


def test_outcome_records_expire(ddb):
    OutcomeStore(TABLE, ddb, ttl_seconds=60).put(outcome("k"))
    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": "DELIVERY#k"}, "sk": {"S": "OUTCOME"}})["Item"]
    assert "expires_at" in item
    assert item["gsi1pk"] == {"S": "OBJ#jira:issue:PROJ-1"}


def test_parked_deliveries_are_listed_with_envelopes_until_resolved(ddb):
    store = OutcomeStore(TABLE, ddb)
    store.put(outcome("p1", kind=OutcomeKind.PARKED, envelope='{"v":1}', at="2026-11-25T00:00:01+00:00"))
    store.put(
        outcome("p2", kind=OutcomeKind.PARKED, envelope='{"v":2}', at="2026-11-25T00:00:02+00:00", obj=None)
    )
    store.put(outcome("ok"))
    parked = list(store.parked())
    assert [(o.dedupe_key, o.envelope) for o in parked] == [("p1", '{"v":1}'), ("p2", '{"v":2}')]
    store.resolve_parked(parked[0])
    assert [o.dedupe_key for o in store.parked()] == ["p2"]
    assert store.get("p1").resolution == "redriven"


def test_a_delivery_parked_again_is_listed_once_with_its_latest_reason(ddb):
    # Given a parked delivery
    store = OutcomeStore(TABLE, ddb)
    store.put(outcome("p1", kind=OutcomeKind.PARKED, envelope="{}", at="2026-11-25T00:00:01+00:00"))
    # When a redelivery of it is parked again
    store.put(
        Outcome(
            dedupe_key="p1",
            kind=OutcomeKind.PARKED,
            reason="kantata: 422 again",
            recorded_at="2026-11-25T00:00:09+00:00",
            envelope="{}",
        )
    )
    # Then redrive sees it once, with the latest reason, and resolving it empties the list
    [entry] = store.parked()
    assert (entry.dedupe_key, entry.reason) == ("p1", "kantata: 422 again")
    store.resolve_parked(entry)
    assert list(store.parked()) == []


def test_completion_writes_idempotency_record_and_outcome_in_one_transaction(ddb):
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from kantata_bridge.worker.idempotency import OutcomeRecordingPersistenceLayer

    store = OutcomeStore(TABLE, ddb)
    layer = OutcomeRecordingPersistenceLayer(IDEMPOTENCY_TABLE, outcomes=store, boto3_client=ddb)
    calls = []
    ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    record = DataRecord(
        idempotency_key="fn#abc",
        status="COMPLETED",
        expiry_timestamp=int(time.time()) + 600,
        response_data=json.dumps(outcome("jira:-:9", report_id="7").to_dict()),
    )
    layer._update_record(record)
    assert calls == ["TransactWriteItems"]
    assert ddb.get_item(TableName=IDEMPOTENCY_TABLE, Key={"id": {"S": "fn#abc"}})["Item"]["status"] == {
        "S": "COMPLETED"
    }
    assert store.get("jira:-:9").report_id == "7"


def test_settings_defaults_and_errors_name_the_variable():
    env = {
        "IDEMPOTENCY_TABLE": "i",
        "STATE_TABLE": "s",
        "KANTATA_TOKEN_SECRET_NAME": "t",
        "ROUTING_CONFIG_FILE": "routing.yaml",
    }
    settings = WorkerSettings.from_env(env)
    assert settings.idempotency_ttl_seconds == 8 * 86400
    assert settings.kantata_base_url == "https://api.mavenlink.com/api/v1"
    with pytest.raises(SettingsError, match="STATE_TABLE"):
        WorkerSettings.from_env({**env, "STATE_TABLE": ""})
    with pytest.raises(SettingsError, match="IDEMPOTENCY_TTL_SECONDS"):
        WorkerSettings.from_env({**env, "IDEMPOTENCY_TTL_SECONDS": "-5"})
    with pytest.raises(SettingsError, match="ROUTING_CONFIG_FILE or ROUTING_CONFIG_PARAMETER"):
        WorkerSettings.from_env({k: v for k, v in env.items() if k != "ROUTING_CONFIG_FILE"})
    assert os.environ.get("STATE_TABLE") != "s"
