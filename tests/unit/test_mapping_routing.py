"""Routing: which Kantata workspace an event goes to (first matching route wins)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from kantata_bridge.mapping.config import build_config
from kantata_bridge.mapping.routing import route_event
from kantata_bridge.tracker_event import Action, Model, TrackerEvent

CONFIG = build_config(
    {
        "routes": [
            {"tracker": "github", "repository": "acme/webapp", "labels": ["client-a"], "workspace_id": "1"},
            {"tracker": "github", "repository": "acme/webapp", "workspace_id": "2"},
            {"tracker": "github", "repository": "acme/*", "workspace_id": "3"},
            {"tracker": "jira", "project": "PROJ", "components": ["Checkout"], "workspace_id": "4"},
            {"tracker": "jira", "project": "PROJ", "labels": ["client-a"], "workspace_id": "5"},
            {"tracker": "jira", "project": "OPS", "workspace_id": "6"},
        ]
    }
)


def event(tracker: str, project: str, labels=(), components=()) -> TrackerEvent:
    return TrackerEvent(
        tracker=tracker,
        model=Model.ISSUE,
        ref=f"{project}#1" if tracker == "github" else f"{project}-1",
        title="t",
        status_name="open",
        status_category="open",
        link="https://example.test/1",
        action=Action.UPDATED,
        version=dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        project=project,
        labels=tuple(labels),
        components=tuple(components),
    )


@pytest.mark.parametrize(
    ("ev", "workspace"),
    [
        (event("github", "acme/webapp", labels=["Client-A"]), "1"),
        (event("github", "acme/webapp", labels=["bug"]), "2"),
        (event("github", "ACME/WebApp"), "2"),
        (event("github", "acme/api"), "3"),
        (event("github", "other/webapp"), None),
        (event("jira", "PROJ", components=["checkout"]), "4"),
        (event("jira", "PROJ", labels=["client-a"]), "5"),
        (event("jira", "PROJ"), None),
        (event("jira", "OPS"), "6"),
        (event("jira", "acme/webapp"), None),
    ],
)
def test_first_matching_route_wins(ev, workspace):
    route = route_event(ev, CONFIG)
    assert (route.workspace_id if route else None) == workspace


def test_no_routes_means_unrouted():
    assert route_event(event("jira", "OPS"), dataclasses.replace(CONFIG, routes=())) is None


GITLAB_LINEAR = build_config(
    {
        "routes": [
            {
                "tracker": "gitlab",
                "project": "acme/platform/checkout",
                "labels": ["client-b"],
                "workspace_id": "11",
            },
            {"tracker": "gitlab", "project": "acme/platform/checkout", "workspace_id": "12"},
            {"tracker": "gitlab", "project": "acme/platform/*", "workspace_id": "13"},
            {"tracker": "gitlab", "project": "acme/**", "workspace_id": "14"},
            {"tracker": "linear", "team": "ENG", "workspace_id": "15"},
            {"tracker": "linear", "team": "ops", "labels": ["customer"], "workspace_id": "16"},
        ]
    }
)


@pytest.mark.parametrize(
    ("ev", "workspace"),
    [
        # An exact project path, case-insensitive, with and without a label filter
        (event("gitlab", "acme/platform/checkout", labels=["Client-B"]), "11"),
        (event("gitlab", "Acme/Platform/Checkout"), "12"),
        # "group/*": projects directly in the group only
        (event("gitlab", "acme/platform/search"), "13"),
        # "group/**": any depth below the group (a project of a sub-subgroup, or directly in acme)
        (event("gitlab", "acme/platform/payments/ledger"), "14"),
        (event("gitlab", "acme/website"), "14"),
        # ... but neither the group itself nor another group whose name starts alike
        (event("gitlab", "acme"), None),
        (event("gitlab", "acme-labs/website"), None),
        # Linear team keys, case-insensitive; label filters apply as for every tracker
        (event("linear", "ENG"), "15"),
        (event("linear", "eng"), "15"),
        (event("linear", "OPS", labels=["customer"]), "16"),
        (event("linear", "OPS"), None),
        # A route of one tracker never takes another tracker's events
        (event("github", "acme/platform"), None),
        (event("jira", "ENG"), None),
    ],
)
def test_gitlab_project_paths_and_linear_team_keys_route(ev, workspace):
    route = route_event(ev, GITLAB_LINEAR)
    assert (route.workspace_id if route else None) == workspace


def test_gitlab_single_star_does_not_reach_into_subgroups():
    config = build_config({"routes": [{"tracker": "gitlab", "project": "acme/*", "workspace_id": "1"}]})
    assert route_event(event("gitlab", "acme/checkout"), config) is not None
    assert route_event(event("gitlab", "acme/platform/checkout"), config) is None
