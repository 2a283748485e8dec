"""GitHub payloads → TrackerEvent (sample deliveries in events/payloads, plus edge cases)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kantata_bridge.tracker_event import Action, IgnoredEventError, Model, UnmappablePayloadError
from kantata_bridge.trackers.github_events import parse_github_event

from tests.support.tracker_events import assert_event_or_reason, parse_or_error

PAYLOADS = Path(__file__).resolve().parents[2] / "events" / "payloads"


def payload(name: str) -> bytes:
    return (PAYLOADS / f"{name}.json").read_bytes()


def doc(name: str) -> dict:
    return json.loads(payload(name))


@pytest.mark.parametrize(
    ("name", "event_type", "model", "ref", "action", "status", "labels"),
    [
        ("github_issues_opened", "issues", Model.ISSUE, "acme/webapp#42", Action.CREATED, "open", ("bug",)),
        ("github_issues_closed", "issues", Model.ISSUE, "acme/webapp#42", Action.CLOSED, "closed", ("bug",)),
        (
            "github_issues_labeled_blocked",
            "issues",
            Model.ISSUE,
            "acme/webapp#42",
            Action.UPDATED,
            "open",
            ("bug", "blocked"),
        ),
        (
            "github_pull_request_opened",
            "pull_request",
            Model.PULL_REQUEST,
            "acme/webapp#43",
            Action.CREATED,
            "open",
            ("bug",),
        ),
        (
            "github_pull_request_closed_merged",
            "pull_request",
            Model.PULL_REQUEST,
            "acme/webapp#43",
            Action.CLOSED,
            "merged",
            ("bug",),
        ),
    ],
)
def test_sample_delivery_becomes_the_expected_event(name, event_type, model, ref, action, status, labels):
    # Given a sample GitHub delivery / When parsed
    event = parse_github_event(event_type, payload(name), "application/json")
    # Then the event names the object, its state and where to see it
    obj = doc(name)["issue" if event_type == "issues" else "pull_request"]
    assert (event.tracker, event.model, event.ref, event.action) == ("github", model, ref, action)
    assert event.status_name == status
    assert event.status_category == status
    assert event.labels == labels
    assert event.link == obj["html_url"]
    assert event.link.startswith("https://github.com/acme/webapp/")
    assert event.title == obj["title"]
    assert event.project == "acme/webapp"
    assert event.actor == doc(name)["sender"]["login"]
    assert event.version == dt.datetime.fromisoformat(obj["updated_at"])
    assert event.object_key == f"github:{model.value}:{ref}"


def test_form_encoded_body_parses_like_json():
    # Given the same delivery sent as application/x-www-form-urlencoded (payload=<json>)
    raw = payload("github_issues_opened")
    form = b"payload=" + quote(raw.decode("utf-8"), safe="").encode("ascii")
    # When parsed / Then it gives the same event as the JSON body
    assert parse_github_event("issues", form, "application/x-www-form-urlencoded") == parse_github_event(
        "issues", raw, "application/json"
    )


def test_ping_is_ignored_with_a_reason():
    with pytest.raises(IgnoredEventError, match="ping"):
        parse_github_event("ping", payload("github_ping"), "application/json")


@pytest.mark.parametrize("action", ["pinned", "locked", "synchronize", "review_requested"])
def test_actions_that_change_no_status_are_ignored(action):
    event_type = "pull_request" if action in ("synchronize", "review_requested") else "issues"
    name = "github_pull_request_opened" if event_type == "pull_request" else "github_issues_opened"
    body = doc(name)
    body["action"] = action
    with pytest.raises(IgnoredEventError, match=action):
        parse_github_event(event_type, json.dumps(body).encode(), "application/json")


def test_issues_event_about_a_pull_request_is_left_to_the_pull_request_event():
    body = doc("github_issues_opened")
    body["issue"]["pull_request"] = {"url": "https://api.github.com/repos/acme/webapp/pulls/42"}
    with pytest.raises(IgnoredEventError, match="pull request"):
        parse_github_event("issues", json.dumps(body).encode())


def test_draft_pull_request_has_draft_status_and_ready_for_review_is_a_status_change():
    body = doc("github_pull_request_opened")
    body["pull_request"]["draft"] = True
    assert parse_github_event("pull_request", json.dumps(body).encode()).status_category == "draft"
    body["pull_request"]["draft"] = False
    body["action"] = "ready_for_review"
    event = parse_github_event("pull_request", json.dumps(body).encode())
    assert (event.action, event.status_name, event.previous_status) == (
        Action.STATUS_CHANGED,
        "open",
        "draft",
    )


def test_deletion_sorts_after_the_last_state_it_carries():
    body = doc("github_issues_closed")
    body["action"] = "deleted"
    deleted = parse_github_event("issues", json.dumps(body).encode())
    closed = parse_github_event("issues", payload("github_issues_closed"))
    assert deleted.action is Action.DELETED
    assert deleted.version > closed.version


@pytest.mark.parametrize(
    ("labels", "priority"),
    [
        (["priority: high"], "high"),
        (["bug", "P1"], "P1"),
        (["priority/Critical"], "Critical"),
        (["bug"], None),
    ],
)
def test_priority_comes_from_priority_labels(labels, priority):
    body = doc("github_issues_opened")
    body["issue"]["labels"] = [{"name": n} for n in labels]
    assert parse_github_event("issues", json.dumps(body).encode()).priority == priority


def test_milestone_due_date_is_the_due_date():
    body = doc("github_issues_opened")
    body["issue"]["milestone"] = {"title": "v2", "due_on": "2026-12-01T08:00:00Z"}
    assert parse_github_event("issues", json.dumps(body).encode()).due_date == dt.date(2026, 12, 1)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("issue"), "issue: missing"),
        (lambda d: d["issue"].pop("number"), "issue.number"),
        (lambda d: d["issue"].update(updated_at="yesterday"), "issue.updated_at"),
        (lambda d: d["issue"].update(state="weird"), "issue.state"),
        (lambda d: d["repository"].pop("full_name"), "repository.full_name"),
        (lambda d: d["issue"].pop("html_url"), "issue.html_url"),
    ],
)
def test_payload_missing_a_needed_field_names_the_field(mutate, message):
    body = doc("github_issues_opened")
    mutate(body)
    with pytest.raises(UnmappablePayloadError, match=message):
        parse_github_event("issues", json.dumps(body).encode())


def test_body_that_is_not_json_is_unmappable():
    with pytest.raises(UnmappablePayloadError, match="body"):
        parse_github_event("issues", b"\xff not json")


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
        ),
        max_leaves=30,
    ),
    st.sampled_from(["issues", "pull_request", "ping"]),
)
def test_arbitrary_json_never_raises_anything_but_the_two_documented_errors(value, event_type):
    body = json.dumps(value).encode()
    result = parse_or_error(lambda: parse_github_event(event_type, body))
    assert_event_or_reason(result)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["action", "number", "state", "updated_at", "labels", "title"]),
        st.none() | st.integers() | st.text(max_size=30),
    )
)
def test_fuzzed_issue_fields_never_crash_the_parser(fields):
    body = doc("github_issues_opened")
    body["issue"].update(fields)
    if "action" in fields:
        body["action"] = fields["action"]
    result = parse_or_error(lambda: parse_github_event("issues", json.dumps(body).encode()))
    assert_event_or_reason(result)
