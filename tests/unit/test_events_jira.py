"""Jira webhook bodies → TrackerEvent (sample deliveries in events/payloads, plus edge cases)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kantata_bridge.tracker_event import Action, IgnoredEventError, Model, UnmappablePayloadError
from kantata_bridge.trackers.jira_events import parse_jira_event

from tests.support.tracker_events import assert_event_or_reason, parse_or_error

PAYLOADS = Path(__file__).resolve().parents[2] / "events" / "payloads"


def doc(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_bytes())


def parse(body: dict):
    return parse_jira_event(json.dumps(body).encode())


@pytest.mark.parametrize(
    ("name", "action", "status", "category", "previous"),
    [
        ("jira_issue_created", Action.CREATED, "To Do", "new", None),
        ("jira_issue_updated_in_progress", Action.STATUS_CHANGED, "In Progress", "indeterminate", "To Do"),
        ("jira_issue_updated_done", Action.CLOSED, "Done", "done", "In Progress"),
        ("jira_issue_deleted", Action.DELETED, "Done", "done", None),
    ],
)
def test_sample_delivery_becomes_the_expected_event(name, action, status, category, previous):
    event = parse(doc(name))
    assert (event.tracker, event.model, event.ref) == ("jira", Model.ISSUE, "PROJ-12")
    assert (event.action, event.status_name, event.status_category) == (action, status, category)
    assert event.previous_status == previous
    assert event.title == "Checkout fails on Safari"
    assert event.project == "PROJ"
    assert event.components == ("Checkout",)
    assert event.labels == ("checkout", "safari")
    assert event.priority == "High"
    assert event.due_date == dt.date(2026, 11, 28)


def test_link_is_the_browse_page_not_the_api_url():
    event = parse(doc("jira_issue_created"))
    assert event.link == "https://acme.atlassian.net/browse/PROJ-12"


def test_version_is_fields_updated_and_a_deletion_uses_the_body_timestamp():
    done, deleted = parse(doc("jira_issue_updated_done")), parse(doc("jira_issue_deleted"))
    assert done.version == dt.datetime(2026, 11, 21, 17, 1, 30, 500000, tzinfo=dt.UTC)
    # The deleted issue's fields still show the last update; the deletion itself must sort after it.
    assert deleted.version == dt.datetime.fromtimestamp(
        doc("jira_issue_deleted")["timestamp"] / 1000, tz=dt.UTC
    )
    assert deleted.version > done.version


def test_body_timestamp_is_the_fallback_version():
    body = doc("jira_issue_created")
    del body["issue"]["fields"]["updated"]
    assert parse(body).version == dt.datetime.fromtimestamp(body["timestamp"] / 1000, tz=dt.UTC)


@pytest.mark.parametrize("stamp", [1e20, -1e20, 2**63])
def test_body_timestamp_out_of_range_is_unmappable_not_a_crash(stamp):
    # Given a deletion whose body timestamp no clock can represent
    body = doc("jira_issue_deleted")
    body["timestamp"] = stamp
    # When it is parsed, Then it is an unmappable payload naming the field (the worker parks it)
    with pytest.raises(UnmappablePayloadError, match="timestamp"):
        parse(body)


def test_updated_without_an_offset_is_read_as_utc_whatever_the_host_time_zone(monkeypatch):
    import time

    # Given a host in another time zone and an `updated` field without a UTC offset
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        body = doc("jira_issue_updated_done")
        body["issue"]["fields"]["updated"] = "2026-11-21T17:01:30"
        # Then the version is that wall time in UTC, not in the host's zone
        assert parse(body).version == dt.datetime(2026, 11, 21, 17, 1, 30, tzinfo=dt.UTC)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_status_change_read_from_changelog_field_when_field_id_is_absent():
    body = doc("jira_issue_updated_in_progress")
    for item in body["changelog"]["items"]:
        item.pop("fieldId", None)
        if item.get("field", "").lower() == "status":
            item["field"] = "Status"
    assert parse(body).action is Action.STATUS_CHANGED


def test_update_without_status_change_is_an_update():
    body = doc("jira_issue_updated_in_progress")
    body["changelog"]["items"] = [
        {"field": "summary", "fieldId": "summary", "fromString": "a", "toString": "b"}
    ]
    assert parse(body).action is Action.UPDATED


def test_leaving_done_is_a_reopen():
    body = doc("jira_issue_updated_in_progress")
    for item in body["changelog"]["items"]:
        if item.get("fieldId") == "status":
            item["fromString"] = "Done"
    assert parse(body).action is Action.REOPENED


def test_flagged_issue_is_flagged():
    body = doc("jira_issue_created")
    body["issue"]["fields"]["customfield_10021"] = [{"value": "Impediment", "id": "10019"}]
    assert parse(body).flagged is True
    assert parse(doc("jira_issue_created")).flagged is False


@pytest.mark.parametrize("webhook_event", ["comment_created", "sprint_started", "jira:version_released"])
def test_other_jira_events_are_ignored_with_a_reason(webhook_event):
    body = doc("jira_issue_created")
    body["webhookEvent"] = webhook_event
    with pytest.raises(IgnoredEventError, match=webhook_event):
        parse(body)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("issue"), "issue: missing"),
        (lambda d: d["issue"].pop("key"), "issue.key"),
        (lambda d: d["issue"].pop("fields"), "issue.fields"),
        (lambda d: d["issue"]["fields"].pop("status"), "issue.fields.status"),
        (lambda d: d["issue"]["fields"]["status"].pop("statusCategory"), "statusCategory.key"),
        (lambda d: d["issue"].update(self="not a url"), "issue.self"),
        (lambda d: d["issue"]["fields"].update(updated="soon"), "issue.fields.updated"),
    ],
)
def test_payload_missing_a_needed_field_names_the_field(mutate, message):
    body = doc("jira_issue_created")
    mutate(body)
    with pytest.raises(UnmappablePayloadError, match=message):
        parse(body)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=5),
        max_leaves=30,
    )
)
def test_arbitrary_json_never_raises_anything_but_the_two_documented_errors(value):
    result = parse_or_error(lambda: parse_jira_event(json.dumps(value).encode()))
    assert_event_or_reason(result)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["summary", "status", "labels", "components", "priority", "duedate", "updated", "project"]
        ),
        st.none() | st.integers() | st.text(max_size=30) | st.lists(st.text(max_size=5), max_size=3),
    ),
    st.none() | st.integers() | st.floats(allow_nan=True, allow_infinity=True),
)
def test_fuzzed_issue_fields_never_crash_the_parser(fields, timestamp):
    body = doc("jira_issue_updated_in_progress")
    body["issue"]["fields"].update(fields)
    body["timestamp"] = timestamp
    result = parse_or_error(lambda: parse(body))
    assert_event_or_reason(result)
