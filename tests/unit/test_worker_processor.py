"""The worker's per-record flow with in-memory fakes (no AWS, no HTTP): outcomes and failure classes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from kantata_bridge.envelope import DeliveryEnvelope
from kantata_bridge.kantata.errors import (
    AuthenticationError,
    KantataTimeoutError,
    UnavailableError,
    ValidationError,
)
from kantata_bridge.kantata.models import StatusReport
from kantata_bridge.mapping.config import ConfigError, build_config
from kantata_bridge.worker.ordering import Claim
from kantata_bridge.worker.outcomes import OutcomeKind
from kantata_bridge.worker.processor import RetryableDeliveryError, Worker

PAYLOADS = Path(__file__).resolve().parents[2] / "events" / "payloads"
CONFIG = build_config(
    {
        "routes": [
            {"tracker": "github", "repository": "acme/webapp", "workspace_id": "100"},
            {"tracker": "jira", "project": "PROJ", "workspace_id": "200"},
        ]
    }
)


class FakeGuard:
    def __init__(self):
        self.items: dict[str, tuple[int, str]] = {}
        self.fail: Exception | None = None
        self.ambiguous: dict[str, set[str]] = {}

    def change_update(self, object_key, change):
        return {"object_key": object_key, "change": change}

    def apply(self, update):
        members = self.ambiguous.setdefault(update["object_key"], set())
        change = update["change"]
        if change.add_ambiguous:
            members.add(change.add_ambiguous)
        if change.remove_ambiguous:
            members.discard(change.remove_ambiguous)

    def claim(self, object_key, version, dedupe_key):
        if self.fail:
            raise self.fail
        current = self.items.get(object_key)
        if current is None or current[0] < version or current == (version, dedupe_key):
            self.items[object_key] = (version, dedupe_key)
            return Claim(
                granted=True,
                reclaimed=current == (version, dedupe_key),
                ambiguous=dedupe_key in self.ambiguous.get(object_key, set()),
            )
        return Claim(
            granted=False,
            current_version=current[0],
            current_delivery=current[1],
            ambiguous=dedupe_key in self.ambiguous.get(object_key, set()),
        )


class FakeOutcomes:
    def __init__(self, guard=None):
        self.records = {}
        self.guard = guard

    def put(self, outcome, extra=None):
        self.records[outcome.dedupe_key] = outcome
        for item in extra or []:
            self.guard.apply(item["Update"])


class FakeKantata:
    def __init__(self):
        self.reports: list[StatusReport] = []
        self.errors: list[Exception] = []
        self.invalidated = 0
        self.lists = 0

    def __call__(self):
        return self

    def invalidate(self):
        self.invalidated += 1

    def create_status_report(self, report):
        if self.errors:
            raise self.errors.pop(0)
        created = StatusReport(
            id=str(len(self.reports) + 1),
            workspace_id=report.workspace_id,
            color=report.color,
            description=report.description,
            details=report.details,
        )
        self.reports.append(created)
        return created

    def list_status_reports(self, **filters):
        self.lists += 1
        return list(self.reports)


class Context:
    def __init__(self, remaining=300_000):
        self.remaining = remaining

    def get_remaining_time_in_millis(self):
        return self.remaining


def envelope(
    name: str, delivery: str, *, tracker: str | None = None, event_type: str | None = None, edit=None
):
    body = (PAYLOADS / f"{name}.json").read_bytes()
    if edit:
        doc = json.loads(body)
        edit(doc)
        body = json.dumps(doc).encode()
    tracker = tracker or name.split("_", 1)[0]
    if event_type is None:
        event_type = (
            json.loads(body).get("webhookEvent")
            if tracker == "jira"
            else ("pull_request" if "pull_request" in name else ("ping" if "ping" in name else "issues"))
        )
    return DeliveryEnvelope(
        tracker=tracker,
        event_type=event_type,
        delivery_id=delivery,
        received_at="2026-11-25T00:00:00+00:00",
        content_type="application/json",
        body=body,
    )


def records(*envs):
    out = []
    for i, e in enumerate(envs):
        body, attributes = (e, {}) if isinstance(e, str) else e.to_sqs()
        out.append(
            {
                "messageId": f"m{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {k: {"stringValue": v["StringValue"]} for k, v in attributes.items()},
            }
        )
    return out


@pytest.fixture
def world():
    guard, kantata = FakeGuard(), FakeKantata()
    outcomes = FakeOutcomes(guard)
    config = {"value": CONFIG}

    def get_config():
        if isinstance(config["value"], Exception):
            raise config["value"]
        return config["value"]

    worker = Worker(
        guard=guard,
        outcomes=outcomes,
        config=get_config,
        kantata=kantata,
        fetch_body=lambda env: env,
        clock=lambda: dt.datetime(2026, 11, 25, tzinfo=dt.UTC),
    )
    return worker, guard, outcomes, kantata, config


def run_batch(worker, envs, context=None):
    recs = records(*envs)
    run = worker.start_batch(recs, context or Context())
    results = []
    for rec in recs:
        try:
            results.append(run.process_record(rec))
        except RetryableDeliveryError as exc:
            results.append(exc)
    return results


def test_new_issue_is_posted_and_its_outcome_recorded(world):
    worker, _, outcomes, kantata, _ = world
    [result] = run_batch(worker, [envelope("github_issues_opened", "d1")])
    assert result["kind"] == "posted"
    assert result["report_id"] == "1"
    assert outcomes.records["github:-:d1"].kind is OutcomeKind.POSTED
    assert outcomes.records["github:-:d1"].object_key == "github:issue:acme/webapp#42"
    assert kantata.reports[0].workspace_id == "100"


def test_ping_is_skipped_as_ignored(world):
    worker, _, _outcomes, kantata, _ = world
    [result] = run_batch(worker, [envelope("github_ping", "p1")])
    assert (result["kind"], result["reason"]) == ("skipped", "ignored: github event 'ping' is not reported")
    assert kantata.reports == []


def test_unrouted_event_is_skipped_with_the_project_named(world):
    worker, _, _, kantata, _ = world
    env = envelope(
        "github_issues_opened", "d1", edit=lambda d: d["repository"].update(full_name="other/repo")
    )
    [result] = run_batch(worker, [env])
    assert result["reason"] == "unrouted: no route for github other/repo"
    assert kantata.reports == []


def test_older_event_after_newer_is_skipped_as_stale(world):
    worker, _, _, kantata, _ = world
    run_batch(worker, [envelope("github_issues_closed", "new")])
    [result] = run_batch(worker, [envelope("github_issues_opened", "old")])
    assert result["kind"] == "skipped"
    assert result["reason"].startswith("stale: version 2026-11-20T09:15:00+00:00 is not newer than")
    assert len(kantata.reports) == 1


def test_ten_edits_in_one_batch_make_one_report_of_the_newest(world):
    worker, _, _outcomes, kantata, _ = world

    def at(second):
        return lambda d: d["issue"].update(
            updated_at=f"2026-11-20T10:00:{second:02d}Z", title=f"edit {second}"
        )

    envs = [envelope("github_issues_opened", f"e{i}", edit=at(i)) for i in (3, 9, 1, 7, 0, 5, 2, 8, 4, 6)]
    results = run_batch(worker, envs)
    assert len(kantata.reports) == 1
    assert "edit 9" in kantata.reports[0].description
    assert [r["kind"] for r in results].count("posted") == 1
    superseded = [r for r in results if r["kind"] == "skipped"]
    assert len(superseded) == 9
    assert all("superseded by delivery github:-:e9" in r["reason"] for r in superseded)


def test_bad_envelope_is_parked_with_the_message(world):
    worker, _, outcomes, _, _ = world
    [result] = run_batch(worker, ["{not an envelope"])
    assert result["kind"] == "parked"
    assert result["reason"].startswith("bad envelope: message is not JSON")
    assert outcomes.records["sqs:m0"].envelope == "{not an envelope"


def test_unmappable_payload_is_parked_with_its_envelope(world):
    worker, _, outcomes, _, _ = world
    env = envelope("github_issues_opened", "d1", edit=lambda d: d["issue"].pop("number"))
    [result] = run_batch(worker, [env])
    assert result["kind"] == "parked"
    assert "issue.number" in result["reason"]
    assert DeliveryEnvelope.from_message(outcomes.records["github:-:d1"].envelope) == env


def test_validation_error_from_kantata_is_parked_not_retried(world):
    worker, _, outcomes, kantata, _ = world
    kantata.errors = [
        ValidationError("Kantata POST /status_reports returned 422: workspace_id: not found", status=422)
    ]
    [result] = run_batch(worker, [envelope("jira_issue_created", "j1")])
    assert result["kind"] == "parked"
    assert "422" in result["reason"]
    assert outcomes.records["jira:-:j1"].envelope is not None


def test_401_parks_and_makes_the_next_delivery_fetch_the_token_again(world):
    worker, _, _, kantata, _ = world
    kantata.errors = [AuthenticationError("Kantata POST /status_reports returned 401", status=401)]
    [result] = run_batch(worker, [envelope("jira_issue_created", "j1")])
    assert result["kind"] == "parked"
    assert kantata.invalidated == 1


def test_503_fails_the_record_and_records_a_failed_outcome(world):
    worker, _guard, outcomes, kantata, _ = world
    kantata.errors = [UnavailableError("Kantata POST /status_reports returned 503", status=503)]
    [result] = run_batch(worker, [envelope("jira_issue_created", "j1")])
    assert isinstance(result, RetryableDeliveryError)
    assert outcomes.records["jira:-:j1"].kind is OutcomeKind.FAILED
    # The claim stays with the delivery, so its redelivery is not mistaken for a stale event.
    [retry] = run_batch(worker, [envelope("jira_issue_created", "j1")])
    assert retry["kind"] == "posted"
    assert len(kantata.reports) == 1


def test_redelivery_after_an_ambiguous_timeout_finds_the_report_instead_of_posting_again(world):
    worker, _, _, kantata, _ = world
    env = envelope("jira_issue_created", "j1")
    [first] = run_batch(worker, [env])
    assert first["kind"] == "posted"
    # Given the first attempt's POST reached Kantata but its outcome was never recorded (e.g. timed out)
    kantata.errors = [KantataTimeoutError("read timed out")]
    # When the delivery comes again / Then the worker finds its report by the delivery marker
    [again] = run_batch(worker, [env])
    assert again["kind"] == "posted"
    assert again["report_id"] == first["report_id"]
    assert again["reason"].startswith("posted by an earlier attempt")
    assert len(kantata.reports) == 1
    assert kantata.lists == 1


def test_ordering_guard_trouble_is_retryable(world):
    from botocore.exceptions import ClientError

    worker, guard, _, kantata, _ = world
    guard.fail = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
    [result] = run_batch(worker, [envelope("jira_issue_created", "j1")])
    assert isinstance(result, RetryableDeliveryError)
    assert kantata.reports == []


def test_broken_routing_config_is_retryable_so_deliveries_wait_for_a_fix(world):
    worker, _, _, _kantata, config = world
    config["value"] = ConfigError(["routes[0].workspace_id: must be a string of digits"])
    [result] = run_batch(worker, [envelope("jira_issue_created", "j1")])
    assert isinstance(result, RetryableDeliveryError)
    assert "routes[0].workspace_id" in str(result)


def test_no_post_is_started_without_time_to_finish_it(world):
    worker, _, _, kantata, _ = world
    [result] = run_batch(worker, [envelope("jira_issue_created", "j1")], Context(remaining=2_000))
    assert isinstance(result, RetryableDeliveryError)
    assert kantata.reports == []


def test_unknown_tracker_is_parked(world):
    worker, *_ = world
    env = envelope("github_issues_opened", "x", tracker="bitbucket", event_type="issue:created")
    [result] = run_batch(worker, [env])
    assert result["kind"] == "parked"
    assert "no event adapter" in result["reason"]


def test_a_parser_bug_on_one_payload_parks_that_delivery_and_the_rest_of_the_batch_is_posted(
    world, monkeypatch
):
    from kantata_bridge.trackers import jira_events

    worker, _, outcomes, kantata, _ = world

    # Given a batch where the Jira parser blows up on its payload with an unexpected error
    def broken(body, event_type=None):
        raise KeyError("token=abc123 quoted from the payload")

    monkeypatch.setattr(jira_events, "parse_jira_event", broken)
    good = envelope("github_issues_opened", "g1")
    bad = envelope("jira_issue_created", "j1")
    # When the batch runs
    results = run_batch(worker, [bad, good])
    # Then the bad delivery is parked with its envelope, naming only the error type, and the other is posted
    assert [r["kind"] for r in results] == ["parked", "posted"]
    parked = outcomes.records["jira:-:j1"]
    assert parked.reason == "unmappable payload: the parser failed (KeyError)"
    assert DeliveryEnvelope.from_message(parked.envelope) == bad
    assert len(kantata.reports) == 1


def test_unexpected_trouble_fetching_one_body_fails_only_that_record(world):
    worker, _, outcomes, kantata, _ = world
    good, bad = envelope("github_issues_opened", "g1"), envelope("jira_issue_created", "j1")

    def fetch(env):
        if env.tracker == "jira":
            raise RuntimeError("connection pool is closed")
        return env

    worker.fetch_body = fetch
    results = run_batch(worker, [bad, good])
    assert isinstance(results[0], RetryableDeliveryError)
    assert results[1]["kind"] == "posted"
    assert outcomes.records["jira:-:j1"].kind is OutcomeKind.FAILED
    assert len(kantata.reports) == 1
