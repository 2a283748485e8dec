"""Pick the Kantata workspace for a TrackerEvent: the first matching route in config order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from kantata_bridge.mapping.config import BridgeConfig, Route
from kantata_bridge.tracker_event import TrackerEvent


def route_event(event: TrackerEvent, config: BridgeConfig) -> Route | None:
    """The first route whose tracker and source match (and, if the route names labels or components, at
    least one of them); None when no route matches (the worker skips the event as unrouted)."""
    labels = {x.casefold() for x in event.labels}
    components = {x.casefold() for x in event.components}
    for route in config.routes:
        if route.tracker != event.tracker or not _source_matches(route, event.project):
            continue
        if route.labels and not route.labels & labels:
            continue
        if route.components and not route.components & components:
            continue
        return route
    return None


def _github_repository(source: str, project: str) -> bool:
    # GitHub owner/repo names are case-insensitive; "owner/*" routes a whole organisation.
    owner, _, repo = source.casefold().partition("/")
    got_owner, _, got_repo = project.casefold().partition("/")
    return owner == got_owner and (repo == "*" or repo == got_repo)


def _jira_project(source: str, project: str) -> bool:
    # Jira project keys are upper case by rule; compare exactly after normalising case.
    return source.upper() == project.upper()


def _gitlab_project(source: str, project: str) -> bool:
    # GitLab paths are case-insensitive. "group/*" matches the projects directly in the group (as a GitLab
    # admin reads one level of a namespace); "group/**" matches every project below it, subgroups included.
    route_parts = source.casefold().split("/")
    got_parts = project.casefold().split("/")
    last = route_parts[-1]
    if last == "**":
        return len(got_parts) > len(route_parts) - 1 and got_parts[: len(route_parts) - 1] == route_parts[:-1]
    if last == "*":
        return len(got_parts) == len(route_parts) and got_parts[:-1] == route_parts[:-1]
    return got_parts == route_parts


def _linear_team(source: str, project: str) -> bool:
    # Linear team keys are upper case (ENG); compare after normalising case.
    return source.upper() == project.upper()


# Per tracker (see mapping.config.ROUTE_SOURCES): does a route's source match the event's project?
SOURCE_MATCHERS: Final[Mapping[str, Callable[[str, str], bool]]] = {
    "github": _github_repository,
    "jira": _jira_project,
    "gitlab": _gitlab_project,
    "linear": _linear_team,
}


def _source_matches(route: Route, project: str) -> bool:
    return SOURCE_MATCHERS[route.tracker](route.source, project)
