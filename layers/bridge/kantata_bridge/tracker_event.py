"""TrackerEvent: one change of one tracker object, whatever tracker it came from.

Adapters (kantata_bridge.trackers) turn payloads into TrackerEvents; mapping turns TrackerEvents into
Kantata status reports. Nothing here knows about HTTP, SQS or Kantata.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What happened to the object."""

    CREATED = "created"
    UPDATED = "updated"
    STATUS_CHANGED = "status_changed"
    CLOSED = "closed"
    REOPENED = "reopened"
    DELETED = "deleted"


class Model(StrEnum):
    """The kind of tracker object (becomes the external reference's ``service_model``)."""

    ISSUE = "issue"
    PULL_REQUEST = "pull_request"
    MERGE_REQUEST = "merge_request"


@dataclass(frozen=True, slots=True)
class TrackerEvent:
    """A tracker object after a change, as far as the bridge cares.

    ``ref`` is the object's human id: a Jira key (``PROJ-12``), ``owner/repo#123`` for GitHub,
    ``group/subgroup/project#12`` (issues) or ``group/project!34`` (merge requests) for GitLab, a Linear
    identifier (``ENG-123``). ``status_category`` is Jira's statusCategory key (``new``/``indeterminate``/
    ``done``); for GitHub ``open``/``closed``/``merged``/``draft``; for GitLab the work item status's category
    (``triage``/``to_do``/``in_progress``/``done``/``cancelled``) when the payload has one, else the state
    (``opened``/``closed``/``merged``/``locked``); for Linear the state's type (``triage``/``backlog``/
    ``unstarted``/``started``/``completed``/``canceled``). ``version`` is the object's updated timestamp (UTC,
    aware): the ordering guard compares it.
    """

    tracker: str
    model: Model
    ref: str
    title: str
    status_name: str
    status_category: str
    link: str
    action: Action
    version: dt.datetime
    project: str
    actor: str | None = None
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    priority: str | None = None
    due_date: dt.date | None = None
    previous_status: str | None = None
    flagged: bool = False

    @property
    def object_key(self) -> str:
        """The identity the ordering guard and outcome records use: tracker, model and ref."""
        return f"{self.tracker}:{self.model.value}:{self.ref}"


class IgnoredEventError(Exception):
    """The delivery is valid but not something the bridge reports (a ping, an unhandled action, …).

    The worker records it as skipped with ``reason``; it is not an error a retry could fix.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnmappablePayloadError(ValueError):
    """The delivery claims to be a supported event but its payload lacks or mistypes a field we need.

    The message names the field (e.g. ``issue.key: missing``). The worker parks the delivery.
    """
