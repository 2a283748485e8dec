"""GitHub recovery's rules: which failed deliveries are candidates, hook and setting parsing, the ledger's
claims and the checkpoint (state table through moto), the run request."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from kantata_bridge.recovery.github import (
    DEFAULT_EVENTS,
    RecoverySettings,
    RecoverySettingsError,
    RedeliveryLedger,
    parse_events,
    parse_hooks,
    select_candidates,
)
from kantata_bridge.recovery.github_api import HookDelivery, HookRef
from kantata_bridge.recovery.state import (
    CheckpointStore,
    MarkerStore,
    RunRequestError,
    TimeBudget,
    parse_run_request,
)
from moto import mock_aws

from tests.support.worker_env import create_worker_resources, fake_aws_env

T0 = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


def attempt(n: int, guid: str, *, ok: bool, minutes: int, event: str = "issues", redelivery: bool = False):
    return HookDelivery(
        id=n,
        guid=guid,
        delivered_at=T0 + dt.timedelta(minutes=minutes),
        status="OK" if ok else "Invalid HTTP Response: 503",
        status_code=200 if ok else 503,
        event=event,
        action="opened",
        redelivery=redelivery,
    )


# ---------------------------------------------------------------------- selection


@pytest.mark.parametrize(
    ("attempts", "expected_ids", "delivered"),
    [
        pytest.param([attempt(1, "a", ok=True, minutes=0)], [], 1, id="delivered"),
        pytest.param([attempt(1, "a", ok=False, minutes=0)], [1], 0, id="failed once"),
        pytest.param(
            [attempt(1, "a", ok=False, minutes=0), attempt(2, "a", ok=True, minutes=5, redelivery=True)],
            [],
            1,
            id="failed, then redelivered by hand",
        ),
        pytest.param(
            [attempt(1, "a", ok=False, minutes=0), attempt(2, "a", ok=False, minutes=5, redelivery=True)],
            [2],
            0,
            id="the latest failed attempt is the candidate",
        ),
        pytest.param(
            [attempt(2, "a", ok=False, minutes=5, redelivery=True), attempt(1, "a", ok=True, minutes=0)],
            [],
            1,
            id="an earlier OK attempt: delivered",
        ),
        pytest.param(
            [attempt(1, "a", ok=False, minutes=0, event="push")], [], 0, id="an event the bridge ignores"
        ),
        pytest.param(
            [
                attempt(3, "c", ok=False, minutes=9),
                attempt(1, "a", ok=False, minutes=1),
                attempt(2, "b", ok=True, minutes=4),
            ],
            [1, 3],
            1,
            id="oldest first",
        ),
    ],
)
def test_select_candidates(attempts, expected_ids, delivered):
    candidates, delivered_count = select_candidates(attempts, DEFAULT_EVENTS)
    assert [c.latest.id for c in candidates] == expected_ids
    assert delivered_count == delivered


def test_every_event_is_a_candidate_when_events_is_none():
    candidates, _ = select_candidates([attempt(1, "a", ok=False, minutes=0, event="push")], None)
    assert [c.latest.id for c in candidates] == [1]


def test_a_2xx_answer_counts_as_ok_whatever_the_status_text():
    delivery = HookDelivery(1, "g", T0, status="Accepted", status_code=202, event="issues")
    assert delivery.ok


# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("repos/acme/webapp/hooks/123", "repos/acme/webapp/hooks/123"),
        ("/repos/acme/web.app-2/hooks/9/", "repos/acme/web.app-2/hooks/9"),
        ("orgs/acme/hooks/456", "orgs/acme/hooks/456"),
        ("  orgs/Acme-Corp/hooks/1 ", "orgs/Acme-Corp/hooks/1"),
    ],
)
def test_hook_ref_parses_the_api_path(text, path):
    assert HookRef.parse(text).path == path


@pytest.mark.parametrize(
    "text",
    [
        "",
        "acme/webapp",
        "repos/acme/hooks/1",
        "repos/acme/webapp/hooks/",
        "repos/acme/webapp/hooks/0",
        "repos/acme/webapp/hooks/abc",
        "orgs/acme/hooks/1/extra",
        "users/acme/hooks/1",
        "repos/-acme/webapp/hooks/1",
        "https://api.github.com/repos/acme/webapp/hooks/1",
    ],
)
def test_hook_ref_refuses_anything_else_with_the_expected_forms(text):
    with pytest.raises(ValueError, match=r"repos/<owner>/<repo>/hooks/<id> or orgs/<org>/hooks/<id>"):
        HookRef.parse(text)


def test_parse_hooks_takes_commas_or_spaces_and_drops_repeats():
    hooks = parse_hooks("repos/a/b/hooks/1, orgs/a/hooks/2 repos/a/b/hooks/1")
    assert [h.path for h in hooks] == ["repos/a/b/hooks/1", "orgs/a/hooks/2"]


@pytest.mark.parametrize("text", ["", " , ", "repos/a/b/hooks/1, nope"])
def test_parse_hooks_refuses_none_or_a_bad_one(text):
    with pytest.raises(RecoverySettingsError, match="GITHUB_RECOVERY_HOOKS"):
        parse_hooks(text, "GITHUB_RECOVERY_HOOKS")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("", DEFAULT_EVENTS), ("*", None), ("issues, Pull_Request", frozenset({"issues", "pull_request"}))],
)
def test_parse_events(text, expected):
    assert parse_events(text) == expected


GOOD_ENV = {
    "STATE_TABLE": "state",
    "GITHUB_TOKEN_SECRET_NAME": "stack/github-token",
    "GITHUB_RECOVERY_HOOKS": "repos/acme/webapp/hooks/1",
}


def test_settings_from_env_with_defaults():
    s = RecoverySettings.from_env(GOOD_ENV)
    assert s.api_url == "https://api.github.com"
    assert s.overlap == dt.timedelta(minutes=10)
    assert s.lookback == dt.timedelta(hours=72)
    assert s.max_redeliveries == 3


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"STATE_TABLE": ""}, "STATE_TABLE"),
        ({"GITHUB_TOKEN_SECRET_NAME": " "}, "GITHUB_TOKEN_SECRET_NAME"),
        ({"GITHUB_RECOVERY_HOOKS": ""}, "GITHUB_RECOVERY_HOOKS"),
        ({"GITHUB_RECOVERY_HOOKS": "acme/webapp"}, "GITHUB_RECOVERY_HOOKS"),
        ({"GITHUB_RECOVERY_OVERLAP_MINUTES": "-1"}, "GITHUB_RECOVERY_OVERLAP_MINUTES"),
        ({"GITHUB_RECOVERY_LOOKBACK_HOURS": "0"}, "GITHUB_RECOVERY_LOOKBACK_HOURS"),
        ({"GITHUB_RECOVERY_MAX_REDELIVERIES": "two"}, "GITHUB_RECOVERY_MAX_REDELIVERIES"),
    ],
)
def test_settings_name_the_variable_that_is_wrong(change, named):
    with pytest.raises(RecoverySettingsError, match=named):
        RecoverySettings.from_env({**GOOD_ENV, **change})


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (None, (False, None)),
        ({}, (False, None)),
        ({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, (False, None)),
        ({"dry_run": True}, (True, None)),
        ({"since": "2026-11-22T10:00:00Z"}, (False, T0)),
        ({"since": "2026-11-22T11:00:00+01:00", "dry_run": False}, (False, T0)),
        ({"since": "2026-11-22T10:00:00"}, (False, T0)),
    ],
)
def test_run_request(event, expected):
    assert parse_run_request(event) == expected


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "JSON object"),
        ({"dryrun": True}, "unknown key"),
        ({"dry_run": "yes"}, "dry_run must be true or false"),
        ({"since": "yesterday"}, "ISO 8601"),
    ],
)
def test_run_request_refuses_what_it_cannot_do(event, message):
    with pytest.raises(RunRequestError, match=message):
        parse_run_request(event)


def test_time_budget_from_a_context():
    class Ctx:
        def __init__(self, ms):
            self.ms = ms

        def get_remaining_time_in_millis(self):
            return self.ms

    assert TimeBudget.from_context(Ctx(30_000), margin=20).exhausted() is False
    assert TimeBudget.from_context(Ctx(10_000), margin=20).exhausted() is True
    assert TimeBudget.from_context(object()).exhausted() is False


# ---------------------------------------------------------------------- state table


@pytest.fixture
def ddb(monkeypatch):
    fake_aws_env(monkeypatch.setenv)
    with mock_aws():
        resources = create_worker_resources()
        yield resources.state_table, boto3.client("dynamodb")


HOOK = HookRef("acme", 1, "webapp")


def test_the_checkpoint_only_moves_forward(ddb):
    store = CheckpointStore(*ddb)
    assert store.get("github:x") is None
    assert store.advance("github:x", T0) is True
    assert store.advance("github:x", T0 - dt.timedelta(seconds=1)) is False
    assert store.advance("github:x", T0) is False
    assert store.get("github:x") == T0
    assert store.advance("github:x", T0 + dt.timedelta(microseconds=1)) is True
    assert store.get("github:x") == T0 + dt.timedelta(microseconds=1)


def test_a_marker_is_claimed_once_until_released(ddb):
    markers = MarkerStore(*ddb, prefix="RECONCILED#", ttl_seconds=60)
    assert markers.claim("jira:-:d1", object_key="jira:issue:P-1") is True
    assert markers.claim("jira:-:d1") is False
    assert markers.get("jira:-:d1")["object_key"] == {"S": "jira:issue:P-1"}
    markers.release("jira:-:d1")
    assert markers.claim("jira:-:d1") is True


def test_a_redelivery_is_claimed_once_per_failed_attempt(ddb):
    ledger = RedeliveryLedger(*ddb)
    # Given attempt 10 of guid g claimed and sent
    assert ledger.claim(HOOK, "g", 10, max_redeliveries=3, now=T0) is True
    ledger.sent(HOOK, "g")
    # Then nobody claims attempt 10 again, nor an older attempt
    assert ledger.claim(HOOK, "g", 10, max_redeliveries=3, now=T0) is False
    assert ledger.claim(HOOK, "g", 9, max_redeliveries=3, now=T0) is False
    # But the redelivery's own failed attempt (newer) may be redelivered, up to the limit
    assert ledger.claim(HOOK, "g", 11, max_redeliveries=3, now=T0) is True
    assert ledger.claim(HOOK, "g", 12, max_redeliveries=3, now=T0) is True
    assert ledger.claim(HOOK, "g", 13, max_redeliveries=3, now=T0) is False
    entry = ledger.get(HOOK, "g")
    assert (entry.last_delivery, entry.redeliveries) == (12, 3)


def test_a_released_claim_can_be_taken_again_without_counting_twice(ddb):
    ledger = RedeliveryLedger(*ddb)
    assert ledger.claim(HOOK, "g", 10, max_redeliveries=1, now=T0) is True
    ledger.release(HOOK, "g")  # GitHub refused it: it did not happen
    assert ledger.get(HOOK, "g").redeliveries == 0
    assert ledger.claim(HOOK, "g", 10, max_redeliveries=1, now=T0) is True


def test_an_uncertain_claim_is_retried_only_after_a_while(ddb):
    ledger = RedeliveryLedger(*ddb)
    assert ledger.claim(HOOK, "g", 10, max_redeliveries=3, now=T0) is True
    ledger.uncertain(HOOK, "g")  # the answer was lost: GitHub may have taken it
    assert ledger.claim(HOOK, "g", 10, max_redeliveries=3, now=T0 + dt.timedelta(minutes=1)) is False
    assert ledger.claim(HOOK, "g", 10, max_redeliveries=3, now=T0 + dt.timedelta(minutes=11)) is True


def test_claims_of_two_hooks_for_one_guid_are_separate(ddb):
    ledger = RedeliveryLedger(*ddb)
    other = HookRef("acme", 2)
    assert ledger.claim(HOOK, "g", 10, max_redeliveries=3, now=T0) is True
    assert ledger.claim(other, "g", 10, max_redeliveries=3, now=T0) is True
