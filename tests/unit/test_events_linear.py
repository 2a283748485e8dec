"""Linear payloads → TrackerEvent (sample deliveries in events/payloads, plus edge cases)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kantata_bridge.tracker_event import Action, IgnoredEventError, Model, UnmappablePayloadError
from kantata_bridge.trackers.linear_events import parse_event, parse_linear_event

from tests.support.tracker_events import assert_event_or_reason, parse_or_error

PAYLOADS = Path(__file__).resolve().parents[2] / "events" / "payloads"


def doc(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_bytes())
    return loaded


def body(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("name", "action", "status", "category", "version", "actor"),
    [
        (
            "linear_issue_created",
            Action.CREATED,
            "Todo",
            "unstarted",
            utc(2026, 11, 20, 8, 30),
            "Jane Planner",
        ),
        (
            "linear_issue_in_progress",
            Action.STATUS_CHANGED,
            "In Progress",
            "started",
            utc(2026, 11, 20, 14, 12, 33, 517000),
            "Raj Developer",
        ),
        (
            "linear_issue_completed",
            Action.CLOSED,
            "Done",
            "completed",
            utc(2026, 11, 21, 16, 2, 10, 250000),
            "Raj Developer",
        ),
        # A removal sorts 1 ms after the issue's last state (its archivedAt/updatedAt).
        (
            "linear_issue_removed",
            Action.DELETED,
            "Done",
            "completed",
            utc(2026, 11, 21, 17, 20, 5, 119000),
            "Jane Planner",
        ),
    ],
)
def test_sample_deliveries_parse(name, action, status, category, version, actor):
    event = parse_event("Issue", body(doc(name)), "application/json; charset=utf-8", {})
    assert (event.tracker, event.model, event.ref, event.project) == ("linear", Model.ISSUE, "ENG-123", "ENG")
    assert (event.action, event.status_name, event.status_category) == (action, status, category)
    assert (event.version, event.actor) == (version, actor)
    assert event.title == "Export invoices as CSV"
    assert event.link == "https://linear.app/acme/issue/ENG-123/export-invoices-as-csv"
    assert event.labels == ("Bug", "billing")
    assert (event.priority, event.due_date) == ("High", dt.date(2026, 11, 28))
    assert event.previous_status is None  # Linear sends the previous state's id, not its name


def test_the_removal_sorts_after_the_last_state_it_carries():
    completed = parse_linear_event("Issue", body(doc("linear_issue_completed")))
    removed_doc = doc("linear_issue_removed")
    removed_doc["data"]["updatedAt"] = doc("linear_issue_completed")["data"]["updatedAt"]
    del removed_doc["data"]["archivedAt"]
    removed = parse_linear_event("Issue", body(removed_doc))
    assert removed.version == completed.version + dt.timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("updated_from", "state_type", "action"),
    [
        ({"updatedAt": "x", "stateId": "s1"}, "started", Action.STATUS_CHANGED),
        ({"updatedAt": "x", "stateId": "s1"}, "canceled", Action.CLOSED),
        (
            {"updatedAt": "x", "stateId": "s1", "completedAt": "2026-11-21T16:02:10.241Z"},
            "started",
            Action.REOPENED,
        ),
        (
            {"updatedAt": "x", "stateId": "s1", "canceledAt": "2026-11-21T16:02:10.241Z"},
            "backlog",
            Action.REOPENED,
        ),
        ({"updatedAt": "x", "title": "Old title"}, "started", Action.UPDATED),
        (None, "started", Action.UPDATED),
    ],
)
def test_update_action_from_updated_from(updated_from, state_type, action):
    document = doc("linear_issue_in_progress")
    if updated_from is None:
        del document["updatedFrom"]
    else:
        document["updatedFrom"] = updated_from
    document["data"]["state"]["type"] = state_type
    assert parse_linear_event("Issue", body(document)).action is action


@pytest.mark.parametrize(
    ("priority", "label", "expected"),
    [
        (1, "Urgent", "Urgent"),
        (4, None, "Low"),
        (3, None, "Medium"),
        (0, "No priority", None),
        (None, None, None),
    ],
)
def test_priority_from_its_label_or_linear_numbers(priority, label, expected):
    document = doc("linear_issue_created")
    document["data"]["priority"] = priority
    document["data"]["priorityLabel"] = label
    assert parse_linear_event("Issue", body(document)).priority == expected


def test_an_older_payload_without_identifier_is_named_from_team_key_and_number():
    document = doc("linear_issue_created")
    del document["data"]["identifier"]
    assert parse_linear_event("Issue", body(document)).ref == "ENG-123"


def test_the_body_type_wins_over_the_event_header():
    with pytest.raises(IgnoredEventError) as err:
        parse_linear_event("Issue", body({**doc("linear_issue_created"), "type": "Comment"}))
    assert err.value.reason == "linear event 'Comment' is not reported"


@pytest.mark.parametrize(
    ("event_type", "document", "reason"),
    [
        ("Comment", {"action": "create", "data": {}}, "linear event 'Comment' is not reported"),
        ("Project", {"type": "Project", "action": "update"}, "linear event 'Project' is not reported"),
        (
            "Issue",
            {**doc("linear_issue_created"), "action": "restore"},
            "linear Issue action 'restore' is not",
        ),
        ("Issue", {**doc("linear_issue_created"), "action": None}, "linear Issue action None is not"),
    ],
)
def test_other_entities_and_actions_are_ignored_with_a_reason(event_type, document, reason):
    with pytest.raises(IgnoredEventError) as err:
        parse_linear_event(event_type, body(document))
    assert err.value.reason.startswith(reason)


def _edit(path: str, value: Any = ...) -> bytes:
    document = doc("linear_issue_created")
    *parents, last = path.split(".")
    target = document
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return body(document)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{", "body: body is not valid JSON"),
        (_edit("data"), "data: missing or not an object"),
        (_edit("data.state"), "data.state: missing or not an object"),
        (_edit("data.state.name", ""), "data.state.name: missing or not a string"),
        (_edit("data.state.type"), "data.state.type: missing or not a string"),
        (_edit("data.updatedAt"), "data.updatedAt: missing or not a string"),
        (_edit("data.updatedAt", "last tuesday"), "data.updatedAt: not an ISO 8601 timestamp"),
        (_edit("data.url", "ftp://linear.app/x"), "data.url: missing or not an http(s) URL"),
    ],
)
def test_payload_without_a_needed_field_is_unmappable_and_names_it(payload, message):
    with pytest.raises(UnmappablePayloadError) as err:
        parse_linear_event("Issue", payload)
    assert str(err.value).startswith(message)


def test_missing_identifier_and_team_is_unmappable():
    document = doc("linear_issue_created")
    del document["data"]["identifier"]
    del document["data"]["team"]
    with pytest.raises(UnmappablePayloadError, match=r"^data\.identifier: missing"):
        parse_linear_event("Issue", body(document))


def test_the_top_level_url_is_used_when_data_has_none():
    document = doc("linear_issue_created")
    del document["data"]["url"]
    assert parse_linear_event("Issue", body(document)).link == document["url"]


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    [
        "type",
        "action",
        "data",
        "updatedFrom",
        "actor",
        "url",
        "state",
        "team",
        "identifier",
        "number",
        "priority",
        "priorityLabel",
        "labels",
        "dueDate",
        "updatedAt",
        "archivedAt",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(["linear_issue_created", "linear_issue_completed", "linear_issue_removed"]),
    edits=st.dictionaries(FIELDS, JSONISH, max_size=3),
    nested=st.dictionaries(FIELDS, JSONISH, max_size=3),
)
def test_any_mangled_payload_gives_an_event_or_a_documented_error(base, edits, nested):
    document = copy.deepcopy(doc(base))
    document.update(edits)
    if isinstance(document.get("data"), dict):
        document["data"].update(nested)
    assert_event_or_reason(parse_or_error(lambda: parse_linear_event("Issue", body(document))))
