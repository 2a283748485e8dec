"""GitLab payloads → TrackerEvent (sample deliveries in events/payloads, plus edge cases)."""

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
from kantata_bridge.trackers.gitlab_events import parse_event, parse_gitlab_event

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
    ("name", "event_type", "model", "ref", "action", "status", "category", "previous", "version"),
    [
        (
            "gitlab_issue_opened",
            "Issue Hook",
            Model.ISSUE,
            "acme/platform/checkout#12",
            Action.CREATED,
            "opened",
            "opened",
            None,
            utc(2026, 11, 20, 9, 2, 17, 412000),
        ),
        (
            "gitlab_issue_labeled_in_review",
            "Issue Hook",
            Model.ISSUE,
            "acme/platform/checkout#12",
            Action.STATUS_CHANGED,
            "in review",
            "opened",
            "in progress",
            utc(2026, 11, 20, 15, 41, 3, 886000),
        ),
        (
            "gitlab_issue_closed",
            "Issue Hook",
            Model.ISSUE,
            "acme/platform/checkout#12",
            Action.CLOSED,
            "closed",
            "closed",
            "opened",
            utc(2026, 11, 21, 10, 47, 52, 31000),
        ),
        (
            "gitlab_work_item_task_in_progress",
            "Issue Hook",
            Model.ISSUE,
            "acme/platform/checkout#13",
            Action.UPDATED,
            "In progress",
            "in_progress",
            None,
            utc(2026, 11, 20, 13, 5, 44, 300000),
        ),
        (
            "gitlab_merge_request_merged",
            "Merge Request Hook",
            Model.MERGE_REQUEST,
            "acme/platform/checkout!34",
            Action.CLOSED,
            "merged",
            "merged",
            "opened",
            utc(2026, 11, 21, 10, 45, 9, 563000),
        ),
    ],
)
def test_sample_deliveries_parse(name, event_type, model, ref, action, status, category, previous, version):
    event = parse_gitlab_event(event_type, body(doc(name)))
    assert (event.tracker, event.model, event.ref, event.action) == ("gitlab", model, ref, action)
    assert (event.status_name, event.status_category, event.previous_status) == (status, category, previous)
    assert event.version == version
    assert event.project == "acme/platform/checkout"
    assert event.link.startswith("https://gitlab.com/acme/platform/checkout/-/")


def test_issue_fields_come_from_the_payload():
    event = parse_gitlab_event("Issue Hook", body(doc("gitlab_issue_opened")))
    assert event.title == "Payment form rejects valid Maestro cards"
    assert event.link == "https://gitlab.com/acme/platform/checkout/-/issues/12"
    assert event.labels == ("bug", "payments")
    assert event.due_date == dt.date(2026, 11, 28)
    assert event.actor == "Priya Natarajan"
    assert event.object_key == "gitlab:issue:acme/platform/checkout#12"


def test_merge_request_has_its_own_model_and_object_key():
    event = parse_gitlab_event("Merge Request Hook", body(doc("gitlab_merge_request_merged")))
    assert event.object_key == "gitlab:merge_request:acme/platform/checkout!34"
    assert event.link == "https://gitlab.com/acme/platform/checkout/-/merge_requests/34"
    assert event.due_date is None


@pytest.mark.parametrize(
    ("prefix", "status"),
    [("workflow::", "in review"), ("WORKFLOW::", "in review"), ("status::", "opened"), ("", "opened")],
)
def test_the_scoped_label_prefix_decides_which_labels_name_the_status(prefix, status):
    event = parse_gitlab_event(
        "Issue Hook", body(doc("gitlab_issue_labeled_in_review")), status_label_prefix=prefix
    )
    assert event.status_name == status
    # Without a status label the relabelling is a plain update.
    assert event.action is (Action.STATUS_CHANGED if status != "opened" else Action.UPDATED)


@pytest.mark.parametrize(
    ("env", "status"),
    [(None, "in review"), ("workflow::", "in review"), ("stage::", "opened"), ("", "opened")],
)
def test_registry_entry_point_reads_the_label_prefix_from_the_environment(monkeypatch, env, status):
    if env is None:
        monkeypatch.delenv("GITLAB_STATUS_LABEL_PREFIX", raising=False)
    else:
        monkeypatch.setenv("GITLAB_STATUS_LABEL_PREFIX", env)
    event = parse_event("Issue Hook", body(doc("gitlab_issue_labeled_in_review")), "application/json", {})
    assert event.status_name == status


def test_a_closed_issue_reports_its_state_not_its_leftover_workflow_label():
    event = parse_gitlab_event("Issue Hook", body(doc("gitlab_issue_closed")))
    assert "workflow::in review" in event.labels
    assert (event.status_name, event.status_category) == ("closed", "closed")


def test_a_work_item_status_wins_over_labels_and_state():
    document = doc("gitlab_issue_labeled_in_review")
    document["object_attributes"]["status"] = {"name": "Blocked", "category": "in_progress"}
    event = parse_gitlab_event("Issue Hook", body(document))
    assert (event.status_name, event.status_category, event.action) == (
        "Blocked",
        "in_progress",
        Action.UPDATED,
    )


def test_adding_the_first_workflow_label_is_a_status_change_from_opened():
    document = doc("gitlab_issue_labeled_in_review")
    document["changes"]["labels"]["previous"] = [{"title": "bug"}, {"title": "payments"}]
    event = parse_gitlab_event("Issue Hook", body(document))
    assert (event.action, event.previous_status, event.status_name) == (
        Action.STATUS_CHANGED,
        "opened",
        "in review",
    )


def test_relabelling_without_touching_the_workflow_label_is_an_update():
    document = doc("gitlab_issue_labeled_in_review")
    document["changes"]["labels"]["previous"] = [{"title": "bug"}, {"title": "workflow::in review"}]
    event = parse_gitlab_event("Issue Hook", body(document))
    assert (event.action, event.previous_status) == (Action.UPDATED, None)


@pytest.mark.parametrize(
    ("label", "priority"),
    [("priority::high", "high"), ("Priority: Critical", "Critical"), ("P1", "P1"), ("prio high", None)],
)
def test_priority_comes_from_priority_labels(label, priority):
    document = doc("gitlab_issue_opened")
    document["labels"] = [*document["labels"], {"title": label}]
    assert parse_gitlab_event("Issue Hook", body(document)).priority == priority


@pytest.mark.parametrize(
    ("updated_at", "expected"),
    [
        ("2026-11-20T09:02:17Z", utc(2026, 11, 20, 9, 2, 17)),
        ("2026-11-20 09:02:17 UTC", utc(2026, 11, 20, 9, 2, 17)),
        ("2026-11-20T10:02:17.5+01:00", utc(2026, 11, 20, 9, 2, 17, 500000)),
        ("2026-11-20T09:02:17", utc(2026, 11, 20, 9, 2, 17)),
    ],
)
def test_timestamps_in_every_format_gitlab_writes(updated_at, expected):
    document = doc("gitlab_issue_opened")
    document["object_attributes"]["updated_at"] = updated_at
    assert parse_gitlab_event("Issue Hook", body(document)).version == expected


def test_confidential_issue_hook_and_system_hook_merge_requests_are_read_alike():
    issue = parse_gitlab_event("Confidential Issue Hook", body(doc("gitlab_issue_opened")))
    assert issue.ref == "acme/platform/checkout#12"
    mr = parse_gitlab_event("System Hook", body(doc("gitlab_merge_request_merged")))
    assert mr.ref == "acme/platform/checkout!34"


def _mr(action: str | None, **attrs: Any) -> bytes:
    document = doc("gitlab_merge_request_merged")
    document["object_attributes"].update({"action": action, **attrs})
    return body(document)


@pytest.mark.parametrize(
    ("event_type", "payload", "reason"),
    [
        ("Push Hook", body(doc("gitlab_issue_opened")), "gitlab event 'Push Hook' is not reported"),
        ("Note Hook", body(doc("gitlab_issue_opened")), "gitlab event 'Note Hook' is not reported"),
        ("Merge Request Hook", _mr("approved"), "gitlab merge_request action 'approved' is not reported"),
        ("Merge Request Hook", _mr("unapproval"), "gitlab merge_request action 'unapproval' is not reported"),
        (
            "Merge Request Hook",
            _mr("update", oldrev="a91e4c2b7d3f5e8a0c1b2d4f6e8a0c2e4b6d8f01"),
            "gitlab merge_request update with new commits (oldrev) is not reported",
        ),
        (
            "Merge Request Hook",
            _mr(None),
            "gitlab merge_request event without object_attributes.action (a test delivery?)",
        ),
        ("System Hook", body({"object_kind": "push"}), "gitlab object_kind 'push' is not reported"),
        (
            "Issue Hook",
            body({"object_kind": "work_item", "object_attributes": {"action": "update", "iid": 4}}),
            "gitlab work item without a project (a group-level item such as an epic)",
        ),
    ],
)
def test_deliveries_the_bridge_does_not_report_are_ignored_with_a_reason(event_type, payload, reason):
    with pytest.raises(IgnoredEventError) as err:
        parse_gitlab_event(event_type, payload)
    assert err.value.reason == reason


def _without(path: str) -> bytes:
    document = doc("gitlab_issue_opened")
    *parents, last = path.split(".")
    target = document
    for key in parents:
        target = target[key]
    del target[last]
    return body(document)


def _with(path: str, value: Any) -> bytes:
    document = doc("gitlab_issue_opened")
    *parents, last = path.split(".")
    target = document
    for key in parents:
        target = target[key]
    target[last] = value
    return body(document)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "body: body is not valid JSON"),
        (b"[1, 2]", "body: body is not a JSON object"),
        (_without("object_attributes"), "object_attributes: missing or not an object"),
        (_without("project"), "project.path_with_namespace: missing or not a string"),
        (_with("project.path_with_namespace", 7), "project.path_with_namespace: missing or not a string"),
        (_without("object_attributes.iid"), "object_attributes.iid: missing or not an integer"),
        (_with("object_attributes.iid", True), "object_attributes.iid: missing or not an integer"),
        (_with("object_attributes.state", "archived"), "object_attributes.state: must be one of"),
        (_without("object_attributes.url"), "object_attributes.url: missing or not an http(s) URL"),
        (_with("object_attributes.url", "javascript:alert(1)"), "object_attributes.url: missing or not"),
        (_without("object_attributes.updated_at"), "object_attributes.updated_at: missing or not a string"),
        (_with("object_attributes.updated_at", "yesterday"), "object_attributes.updated_at: not a timestamp"),
    ],
)
def test_payload_without_a_needed_field_is_unmappable_and_names_it(payload, message):
    with pytest.raises(UnmappablePayloadError) as err:
        parse_gitlab_event("Issue Hook", payload)
    assert str(err.value).startswith(message)


def test_a_bad_due_date_or_odd_labels_do_not_stop_the_report():
    document = doc("gitlab_issue_opened")
    document["object_attributes"]["due_date"] = "soon"
    document["labels"] = ["bug", {"title": 3}, {"title": "payments"}, None]
    event = parse_gitlab_event("Issue Hook", body(document))
    assert (event.due_date, event.labels) == (None, ("payments",))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=10,
)
FIELDS = st.sampled_from(
    [
        "object_kind",
        "object_attributes",
        "project",
        "labels",
        "changes",
        "user",
        "iid",
        "state",
        "url",
        "action",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(
        ["gitlab_issue_opened", "gitlab_issue_labeled_in_review", "gitlab_merge_request_merged"]
    ),
    edits=st.dictionaries(FIELDS, JSONISH, max_size=3),
    nested=st.dictionaries(FIELDS, JSONISH, max_size=3),
    event_type=st.sampled_from(["Issue Hook", "Merge Request Hook", "Work Item Hook", "Tag Push Hook"]),
)
def test_any_mangled_payload_gives_an_event_or_a_documented_error(base, edits, nested, event_type):
    document = copy.deepcopy(doc(base))
    document.update(edits)
    if isinstance(document.get("object_attributes"), dict):
        document["object_attributes"].update(nested)
    assert_event_or_reason(parse_or_error(lambda: parse_gitlab_event(event_type, body(document))))
