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
