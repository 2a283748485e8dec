"""Event → status report rules: colour, details, description, external reference (table-driven)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from kantata_bridge.mapping.config import DEFAULT_RULES, Route, build_config
from kantata_bridge.mapping.rules import (
    action_text,
    choose_color,
    delivery_marker,
    external_reference,
    map_event,
    schedule,
    truncate,
)
from kantata_bridge.tracker_event import Action, Model, TrackerEvent

TODAY = dt.date(2026, 11, 25)
ROUTE = Route(tracker="jira", source="PROJ", workspace_id="777")


def event(**over) -> TrackerEvent:
    base = TrackerEvent(
        tracker="jira",
        model=Model.ISSUE,
        ref="PROJ-12",
        title="Checkout fails on Safari",
        status_name="In Progress",
        status_category="indeterminate",
        link="https://acme.atlassian.net/browse/PROJ-12",
        action=Action.STATUS_CHANGED,
        version=dt.datetime(2026, 11, 20, 14, 5, tzinfo=dt.UTC),
        project="PROJ",
        actor="Raj Developer",
        labels=("checkout",),
        priority="High",
        due_date=dt.date(2026, 12, 20),
        previous_status="To Do",
    )
    return dataclasses.replace(base, **over)


@pytest.mark.parametrize(
    ("over", "color"),
    [
        ({}, "green"),
        ({"status_category": "done", "status_name": "Done", "labels": ("blocked",)}, "green"),
        ({"tracker": "github", "status_category": "merged", "status_name": "merged"}, "green"),
        ({"tracker": "github", "status_category": "closed", "status_name": "closed"}, "green"),
        ({"labels": ("Blocked",)}, "red"),
        ({"flagged": True}, "red"),
        ({"status_name": "Blocked"}, "red"),
        ({"labels": ("needs-info",)}, "yellow"),
        ({"status_name": "Waiting for customer"}, "yellow"),
        ({"due_date": dt.date(2026, 11, 1), "priority": "Highest"}, "red"),
        ({"due_date": dt.date(2026, 11, 1), "priority": "Low"}, "yellow"),
        ({"due_date": dt.date(2026, 11, 1), "status_category": "done"}, "green"),
        ({"action": Action.DELETED}, "yellow"),
        ({"tracker": "github", "status_category": "draft", "status_name": "draft"}, "green"),
        # GitLab: closed and merged states, and work item statuses in the done or cancelled category, are done
        ({"tracker": "gitlab", "status_category": "closed", "labels": ("blocked",)}, "green"),
        ({"tracker": "gitlab", "model": Model.MERGE_REQUEST, "status_category": "merged"}, "green"),
        ({"tracker": "gitlab", "status_category": "cancelled", "status_name": "Won't do"}, "green"),
        ({"tracker": "gitlab", "status_category": "opened", "status_name": "blocked"}, "red"),
        ({"tracker": "gitlab", "status_category": "locked", "labels": ("blocked",)}, "red"),
        # Linear: completed and canceled state types are done, even overdue ones
        ({"tracker": "linear", "status_category": "completed", "due_date": dt.date(2026, 11, 1)}, "green"),
        ({"tracker": "linear", "status_category": "canceled", "labels": ("blocked",)}, "green"),
        ({"tracker": "linear", "status_category": "started", "due_date": dt.date(2026, 11, 1)}, "red"),
        ({"tracker": "linear", "status_category": "backlog", "priority": "Urgent"}, "green"),
    ],
)
def test_default_colour_rules(over, color):
    assert choose_color(DEFAULT_RULES.colors, DEFAULT_RULES.default_color, event(**over), TODAY) == color


def test_custom_colour_rules_first_match_wins_and_default_applies():
    rules = build_config(
        {
            "routes": [],
            "rules": {
                "colors": [
                    {"when": {"label": ["urgent"], "model": ["issue"]}, "color": "red"},
                    {"when": {"label": ["urgent"]}, "color": "yellow"},
                ],
                "default_color": "yellow",
            },
        }
    ).rules
    assert choose_color(rules.colors, rules.default_color, event(labels=("URGENT",)), TODAY) == "red"
    assert choose_color(rules.colors, rules.default_color, event(labels=("x",)), TODAY) == "yellow"


@pytest.mark.parametrize(
    ("over", "expected"),
    [
        ({"status_category": "done"}, ("green", "Completed")),
        ({"due_date": None}, ("green", "No due date")),
        ({"due_date": dt.date(2026, 11, 24)}, ("red", "Overdue: was due 2026-11-24")),
        ({"due_date": dt.date(2026, 11, 28)}, ("yellow", "Due soon: 2026-11-28")),
        ({"due_date": dt.date(2026, 11, 25)}, ("yellow", "Due soon: 2026-11-25")),
        ({"due_date": dt.date(2026, 12, 20)}, ("green", "Due 2026-12-20")),
        ({"tracker": "linear", "status_category": "completed"}, ("green", "Completed")),
        ({"tracker": "linear", "status_category": "canceled"}, ("green", "Completed")),
        ({"tracker": "gitlab", "status_category": "cancelled"}, ("green", "Completed")),
        (
            {"tracker": "gitlab", "status_category": "locked", "due_date": dt.date(2026, 11, 24)},
            ("red", "Overdue: was due 2026-11-24"),
        ),
    ],
)
def test_schedule_from_due_date(over, expected):
    assert schedule(event(**over), TODAY, 3) == expected


@pytest.mark.parametrize(
    ("over", "text"),
    [
        ({}, "moved from To Do to In Progress"),
        ({"previous_status": None}, "moved to In Progress"),
        ({"action": Action.CREATED}, "created"),
        ({"action": Action.CLOSED, "status_name": "Done"}, "moved to Done"),
        ({"action": Action.CLOSED, "tracker": "github", "status_category": "merged"}, "merged"),
        ({"action": Action.CLOSED, "tracker": "github", "status_category": "closed"}, "closed"),
        ({"action": Action.REOPENED}, "reopened"),
        ({"action": Action.DELETED}, "deleted"),
        ({"action": Action.CLOSED, "tracker": "linear", "status_name": "Canceled"}, "moved to Canceled"),
        ({"action": Action.CLOSED, "tracker": "gitlab", "status_category": "closed"}, "closed"),
        ({"action": Action.CLOSED, "tracker": "gitlab", "status_category": "merged"}, "merged"),
        (
            {"tracker": "gitlab", "status_name": "in review", "previous_status": "in progress"},
            "moved from in progress to in review",
        ),
    ],
)
def test_action_text(over, text):
    assert action_text(event(**over)) == text


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 255, "short"),
        ("x" * 255, 255, "x" * 255),
        ("x" * 256, 255, "x" * 254 + "…"),
        ("émoji 😀😀😀😀", 8, "émoji 😀…"),
        ("word   " + "y" * 20, 8, "word…"),
    ],
)
def test_truncate_cuts_on_a_character_boundary_with_an_ellipsis(text, limit, expected):
    out = truncate(text, limit)
    assert out == expected
    assert len(out) <= limit


def test_report_for_a_status_change_has_colour_details_description_and_reference():
    report = map_event(event(), ROUTE, DEFAULT_RULES, dedupe_key="jira:-:abc", today=TODAY)
    body = report.to_body()
    assert body["workspace_id"] == "777"
    assert body["color"] == "green"
    assert body["description"] == (
        "Issue PROJ-12 moved from To Do to In Progress: Checkout fails on Safari\n"
        "Status: In Progress · Priority: High · Due: 2026-12-20\n"
        "By Raj Developer · https://acme.atlassian.net/browse/PROJ-12\n\n"
        "kantata-bridge delivery: jira:-:abc"
    )
    assert body["details"] == [
        {"category": "Scope", "color": "green", "description": "In Progress: Checkout fails on Safari"},
        {"category": "Schedule", "color": "green", "description": "Due 2026-12-20"},
        {"category": "Client", "color": "green", "description": "Labels: checkout"},
    ]
    assert body["external_reference"] == {
        "service_name": "jira",
        "service_model": "issue",
        "service_model_ref": "PROJ-12",
        "external_link": "https://acme.atlassian.net/browse/PROJ-12",
        "external_status": "In Progress",
        "external_message": "Checkout fails on Safari",
    }


def test_description_always_ends_with_the_delivery_marker_even_with_a_custom_template():
    rules = build_config({"routes": [], "rules": {"description": "{ref}: {status}"}}).rules
    report = map_event(event(), ROUTE, rules, dedupe_key="github:9:d-1", today=TODAY)
    assert report.description.splitlines()[-1] == delivery_marker("github:9:d-1")
    assert report.description.startswith("PROJ-12: In Progress")


def test_missing_values_read_as_a_dash():
    report = map_event(
        event(actor=None, priority=None, due_date=None, labels=()),
        ROUTE,
        DEFAULT_RULES,
        dedupe_key="k",
        today=TODAY,
    )
    assert "Priority: — · Due: —" in report.description
    assert "By — ·" in report.description


def test_external_message_is_the_title_truncated_and_falls_back_to_the_ref():
    long = external_reference(event(title="t" * 300))
    assert long.external_message is not None
    assert len(long.external_message) == 255
    assert long.external_message.endswith("…")
    assert external_reference(event(title="")).external_message == "PROJ-12"


def test_detail_with_fixed_colour_and_rule_colour():
    rules = build_config(
        {
            "routes": [],
            "rules": {
                "details": [
                    {"category": "Budget", "color": "yellow", "description": "n/a"},
                    {
                        "category": "Client",
                        "rules": [{"when": {"component": ["billing"]}, "color": "red"}],
                        "default": "green",
                        "description": "{components}",
                    },
                ]
            },
        }
    ).rules
    report = map_event(event(components=("Billing",)), ROUTE, rules, dedupe_key="k", today=TODAY)
    assert [(d.category, d.color, d.description) for d in report.details] == [
        ("Budget", "yellow", "n/a"),
        ("Client", "red", "Billing"),
    ]


def test_merge_request_report_names_the_model_and_references_the_merge_request():
    # Given a merged GitLab merge request
    mr = event(
        tracker="gitlab",
        model=Model.MERGE_REQUEST,
        ref="acme/platform/checkout!34",
        title="Accept Maestro card numbers of 12 to 19 digits",
        status_name="merged",
        status_category="merged",
        link="https://gitlab.com/acme/platform/checkout/-/merge_requests/34",
        action=Action.CLOSED,
        project="acme/platform/checkout",
        previous_status="opened",
    )
    route = Route(tracker="gitlab", source="acme/**", workspace_id="778")
    # When it is mapped
    report = map_event(mr, route, DEFAULT_RULES, dedupe_key="gitlab:-:k1", today=TODAY)
    # Then the description and the external reference say "Merge request" / merge_request
    assert report.description.splitlines()[0] == (
        "Merge request acme/platform/checkout!34 merged: Accept Maestro card numbers of 12 to 19 digits"
    )
    xref = report.external_reference
    assert (xref.service_name, xref.service_model, xref.service_model_ref, xref.external_status) == (
        "gitlab",
        "merge_request",
        "acme/platform/checkout!34",
        "merged",
    )
