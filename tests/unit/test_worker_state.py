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

from tests.support.worker_env import STATE_TABLE, create_worker_resources, fake_aws_env

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


# ---------------------------------------------------------------------- the delivery record store


def store_for(ddb, **kw):
    from kantata_bridge.worker.idempotency import DeliveryRecordStore

    outcomes = OutcomeStore(TABLE, ddb)
    return DeliveryRecordStore(TABLE, ddb, outcomes=outcomes, guard=OrderingGuard(TABLE, ddb), **kw)


def record(dedupe, status="INPROGRESS", in_progress_ms=None):
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

    return DataRecord(
        idempotency_key=f"fn#{dedupe}",
        status=status,
        expiry_timestamp=int(time.time()) + 600,
        in_progress_expiry_timestamp=in_progress_ms or int(time.time() * 1000) + 60_000,
    )


def claiming(dedupe, version, *, object_key="jira:issue:PROJ-1", wait=0.0):
    from kantata_bridge.worker.idempotency import CURRENT_CLAIM, ClaimRequest

    request = ClaimRequest(object_key, version, dedupe, lease_ms=60_000, wait_budget_s=wait)
    return request, CURRENT_CLAIM.set(request)


def calls_of(ddb):
    calls: list[str] = []
    ddb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


def test_in_progress_record_and_claim_are_one_request_and_completion_one_more(ddb):
    from kantata_bridge.worker.idempotency import CURRENT_CLAIM

    store = store_for(ddb)
    calls = calls_of(ddb)
    request, token = claiming("jira:-:a", 100)
    try:
        store._put_record(record("jira:-:a"))
    finally:
        CURRENT_CLAIM.reset(token)
    assert request.claim is not None
    assert request.claim.granted
    assert not request.claim.reclaimed
    done = record("jira:-:a", status="COMPLETED")
    done.response_data = json.dumps(outcome("jira:-:a", report_id="7").to_dict())
    store._update_record(done)
    # Then: one transaction to start (record + claim), one update to finish (record + outcome)
    assert calls == ["TransactWriteItems", "UpdateItem"]
    assert store.outcomes.get("jira:-:a").report_id == "7"
    item = ddb.get_item(TableName=TABLE, Key={"pk": {"S": "DELIVERY#jira:-:a"}, "sk": {"S": "OUTCOME"}})[
        "Item"
    ]
    assert item["idem_status"] == {"S": "COMPLETED"}
    assert "idem_in_progress_expiry" not in item
    assert OrderingGuard(TABLE, ddb).current("jira:issue:PROJ-1") == (100, "jira:-:a")


def test_a_completed_delivery_is_a_duplicate_with_its_stored_outcome(ddb):
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemAlreadyExistsError

    store = store_for(ddb)
    store.outcomes.complete(outcome("jira:-:a", report_id="7"), idem_expiry=int(time.time()) + 600)
    with pytest.raises(IdempotencyItemAlreadyExistsError) as caught:
        store._put_record(record("jira:-:a"))
    old = caught.value.old_data_record
    assert old.status == "COMPLETED"
    assert json.loads(old.response_data)["report_id"] == "7"


def test_an_outcome_recorded_by_the_previous_version_also_counts_as_done(ddb):
    from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemAlreadyExistsError

    # Given a posted outcome as the previous version wrote it (no idempotency attributes on it)
    store = store_for(ddb)
    store.outcomes.put(outcome("jira:-:old", report_id="5"))
    # Then the same delivery again is a duplicate, not a second post
    with pytest.raises(IdempotencyItemAlreadyExistsError) as caught:
        store._put_record(record("jira:-:old"))
    assert caught.value.old_data_record.status == "COMPLETED"


@pytest.mark.parametrize("kind", [OutcomeKind.FAILED, OutcomeKind.PARKED])
def test_a_failed_or_parked_delivery_may_run_again(ddb, kind):
    store = store_for(ddb)
    store.outcomes.put(outcome("jira:-:a", kind=kind))
    store._put_record(record("jira:-:a"))  # no error: a retry or a redrive takes it
    assert store.outcomes.get("jira:-:a") is None  # in progress again


def test_an_older_event_is_recorded_in_progress_without_the_claim(ddb):
    from kantata_bridge.worker.idempotency import CURRENT_CLAIM

    store = store_for(ddb)
    OrderingGuard(TABLE, ddb).claim("jira:issue:PROJ-1", 200, "jira:-:newer")
    request, token = claiming("jira:-:older", 100)
    try:
        store._put_record(record("jira:-:older"))
    finally:
        CURRENT_CLAIM.reset(token)
    assert request.claim is not None
    assert (request.claim.granted, request.claim.current_version, request.claim.current_delivery) == (
        False,
        200,
        "jira:-:newer",
    )
    assert OrderingGuard(TABLE, ddb).current("jira:issue:PROJ-1") == (200, "jira:-:newer")


def test_a_redelivery_of_the_holder_reclaims_and_learns_its_create_was_ambiguous(ddb):
    from kantata_bridge.worker.idempotency import CURRENT_CLAIM

    store = store_for(ddb)
    guard = OrderingGuard(TABLE, ddb)
    guard.claim("jira:issue:PROJ-1", 100, "jira:-:a")
    ddb.update_item(**guard.ambiguous_update("jira:issue:PROJ-1", "jira:-:a", add=True))
    request, token = claiming("jira:-:a", 100)
    try:
        store._put_record(record("jira:-:a"))
    finally:
        CURRENT_CLAIM.reset(token)
    assert request.claim is not None
    assert (request.claim.granted, request.claim.reclaimed, request.claim.ambiguous) == (True, True, True)


def test_a_newer_event_waits_for_the_holder_of_the_lease_then_takes_over(ddb):
    from kantata_bridge.worker.idempotency import CURRENT_CLAIM

    # Given delivery A holding the object's lease while it writes to Kantata
    holder = store_for(ddb)
    request_a, token = claiming("jira:-:a", 100)
    try:
        holder._put_record(record("jira:-:a"))
    finally:
        CURRENT_CLAIM.reset(token)
    assert request_a.claim.granted

    # When B (a newer version) arrives meanwhile, and A finishes while B waits
    def finish_a(_seconds):
        holder.outcomes.complete(outcome("jira:-:a", report_id="1"), idem_expiry=int(time.time()) + 600)

    contender = store_for(ddb, sleep=finish_a)
    calls = calls_of(ddb)
    request_b, token = claiming("jira:-:b", 200, wait=5.0)
    try:
        contender._put_record(record("jira:-:b"))
    finally:
        CURRENT_CLAIM.reset(token)
    # Then B claims the object only after A's record left INPROGRESS (a ConditionCheck proves it)
    assert request_b.claim.granted
    assert OrderingGuard(TABLE, ddb).current("jira:issue:PROJ-1") == (200, "jira:-:b")
    assert calls.count("TransactWriteItems") >= 2
    assert "GetItem" in calls


def test_a_lease_held_longer_than_the_wait_budget_makes_the_contender_give_up(ddb):
    from kantata_bridge.worker.idempotency import CURRENT_CLAIM, ObjectBusyError

    holder = store_for(ddb)
    _, token = claiming("jira:-:a", 100)
    try:
        holder._put_record(record("jira:-:a"))
    finally:
        CURRENT_CLAIM.reset(token)
    contender = store_for(ddb, sleep=lambda _s: None)
    _, token = claiming("jira:-:b", 200, wait=0.0)
    try:
        with pytest.raises(ObjectBusyError, match="being written by delivery jira:-:a"):
            contender._put_record(record("jira:-:b"))
    finally:
        CURRENT_CLAIM.reset(token)
    # And nothing was written for B: the object is still A's
    assert OrderingGuard(TABLE, ddb).current("jira:issue:PROJ-1") == (100, "jira:-:a")


def test_settings_defaults_and_errors_name_the_variable():
    env = {
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
