"""GitLab issue, work item and merge request deliveries → one TrackerEvent.

Pure apart from one setting read in :func:`parse_event`: bytes in, a TrackerEvent out, or IgnoredEventError
(a valid delivery we do not report: a pipeline, an approval, new commits on a merge request) or
UnmappablePayloadError (the payload lacks a field we need; the message names it).

Status, in order:

1. the work item status (``object_attributes.status``, GitLab Premium's configurable statuses) when the
   payload has one: its name, and its category (``triage``/``to_do``/``in_progress``/``done``/``cancelled``);
2. else, while the object is open, a scoped label with the configured prefix (``GITLAB_STATUS_LABEL_PREFIX``,
   default ``workflow::``): ``workflow::in review`` → status ``in review``, category ``opened``. GitLab keeps
   the label when an issue is closed or a merge request merged, so a closed object reports its state instead;
3. else the state: ``opened``, ``closed``, ``merged`` or ``locked`` (name and category alike).

GitLab sends no event when an issue is deleted, so there is no ``deleted`` action here.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from kantata_bridge.tracker_event import (
    Action,
    IgnoredEventError,
    Model,
    TrackerEvent,
    UnmappablePayloadError,
)

TRACKER: Final = "gitlab"
STATUS_LABEL_PREFIX_ENV: Final = "GITLAB_STATUS_LABEL_PREFIX"
DEFAULT_STATUS_LABEL_PREFIX: Final = "workflow::"
# X-Gitlab-Event values whose object_kind this module reads. "System Hook" carries merge request events of
# the whole instance when an operator subscribes to it (GITLAB_EVENTS); "Work Item Hook" is defensive.
_EVENTS: Final = frozenset(
    {"Issue Hook", "Confidential Issue Hook", "Work Item Hook", "Merge Request Hook", "System Hook"}
)
_ISSUE_KINDS: Final = frozenset({"issue", "work_item"})
_STATES: Final = frozenset({"opened", "closed", "merged", "locked"})
_ISSUE_ACTIONS: Final[Mapping[str, Action]] = {
    "open": Action.CREATED,
    "close": Action.CLOSED,
    "reopen": Action.REOPENED,
    "update": Action.UPDATED,
}
# Approvals change no status (like GitHub's reviews): skipped with a reason.
_MR_ACTIONS: Final[Mapping[str, Action]] = {**_ISSUE_ACTIONS, "merge": Action.CLOSED}
_PREVIOUS_STATE: Final[Mapping[str, str]] = {"close": "opened", "merge": "opened", "reopen": "closed"}
# Labels such as "priority::high", "priority: high", "priority/P1", "P1" give the priority.
_PRIORITY_LABEL: Final = re.compile(
    r"^(?:priority\s*(?:::|[:/_-])\s*(?P<named>.+)|(?P<p>p[0-4]))$", re.IGNORECASE
)
# GitLab writes times as ISO 8601 ("2026-11-20T09:15:01Z", "...01.123Z") or, in older payloads and in
# `changes`, as "2026-11-20 09:15:01 UTC".
_UTC_SUFFIX: Final = re.compile(r"\s*UTC$")


def parse_event(
    event_type: str, body: bytes, content_type: str | None, headers: Mapping[str, str]
) -> TrackerEvent:
    """The registry's entry point (see kantata_bridge.trackers.registry.EventParser).

    Reads ``GITLAB_STATUS_LABEL_PREFIX`` on each call (unset: ``workflow::``; set but empty: labels are not
    read as statuses).
    """
    prefix = os.environ.get(STATUS_LABEL_PREFIX_ENV)
    return parse_gitlab_event(
        event_type,
        body,
        status_label_prefix=DEFAULT_STATUS_LABEL_PREFIX if prefix is None else prefix.strip(),
    )


def parse_gitlab_event(
    event_type: str, body: bytes, *, status_label_prefix: str = DEFAULT_STATUS_LABEL_PREFIX
) -> TrackerEvent:
    """Turn one GitLab delivery (``X-Gitlab-Event`` value and raw body) into a TrackerEvent.

    ``status_label_prefix``: scoped labels starting with it name the status of an open object ("" turns
    this off). Raises IgnoredEventError for events, kinds and actions the bridge does not report,
    UnmappablePayloadError for a body that is not a JSON object or lacks a needed field.
    """
    if event_type not in _EVENTS:
        raise IgnoredEventError(f"gitlab event {event_type!r} is not reported")
    doc = _decode(body)
    kind = doc.get("object_kind")
    kind = kind if isinstance(kind, str) else None
    if kind in _ISSUE_KINDS:
        model, actions, sign = Model.ISSUE, _ISSUE_ACTIONS, "#"
    elif kind == "merge_request":
        model, actions, sign = Model.MERGE_REQUEST, _MR_ACTIONS, "!"
    else:
        raise IgnoredEventError(f"gitlab object_kind {kind!r} is not reported")
    attrs = doc.get("object_attributes")
    if not isinstance(attrs, Mapping):
        raise UnmappablePayloadError("object_attributes: missing or not an object")
    action_name = attrs.get("action")
    if action_name is None:
        # Only older GitLab versions' "Test" button sends an issue without an action.
        raise IgnoredEventError(f"gitlab {kind} event without object_attributes.action (a test delivery?)")
    action = actions.get(action_name) if isinstance(action_name, str) else None
    if action is None:
        raise IgnoredEventError(f"gitlab {kind} action {action_name!r} is not reported")
    if model is Model.MERGE_REQUEST and action_name == "update" and attrs.get("oldrev"):
        # New commits pushed to the source branch: frequent, and no status changes (GitHub: synchronize).
        raise IgnoredEventError("gitlab merge_request update with new commits (oldrev) is not reported")

    project = doc.get("project")
    path = project.get("path_with_namespace") if isinstance(project, Mapping) else None
    if project is None and kind == "work_item":
        raise IgnoredEventError("gitlab work item without a project (a group-level item such as an epic)")
    if not isinstance(path, str) or not path.strip("/"):
        raise UnmappablePayloadError("project.path_with_namespace: missing or not a string")
    iid = attrs.get("iid")
    if not isinstance(iid, int) or isinstance(iid, bool):
        raise UnmappablePayloadError("object_attributes.iid: missing or not an integer")
    state = attrs.get("state")
    if not isinstance(state, str) or state not in _STATES:
        raise UnmappablePayloadError("object_attributes.state: must be one of opened, closed, merged, locked")
    labels = _label_titles(doc.get("labels"), attrs.get("labels"))
    status_name, category, from_labels = _status(attrs, state, labels, status_label_prefix)
    previous_status = _PREVIOUS_STATE.get(str(action_name))
    if action is Action.UPDATED and from_labels:
        # Only a label-driven status can be seen changing: the payload does not say which work item status
        # the object had before, and a closed object's labels are not its status.
        previous = _previous_label_status(doc.get("changes"), status_label_prefix)
        if previous is not None and previous.casefold() != status_name.casefold():
            action, previous_status = Action.STATUS_CHANGED, previous
    return TrackerEvent(
        tracker=TRACKER,
        model=model,
        ref=f"{path}{sign}{iid}",
        title=str(attrs.get("title") or ""),
        status_name=status_name,
        status_category=category,
        link=_link(attrs.get("url")),
        action=action,
        version=_timestamp(attrs.get("updated_at"), "object_attributes.updated_at"),
        project=path,
        actor=_actor(doc.get("user")),
        labels=labels,
        priority=_priority(labels),
        due_date=_date(attrs.get("due_date")),
        previous_status=previous_status,
    )


def _decode(body: bytes) -> Mapping[str, Any]:
    from kantata_bridge.trackers.base import MalformedDeliveryError, parse_json_object

    try:
        return parse_json_object(body)
    except MalformedDeliveryError as exc:
        raise UnmappablePayloadError(f"body: {exc}") from None


def _label_titles(top_level: Any, in_attributes: Any) -> tuple[str, ...]:
    raw = top_level if isinstance(top_level, list) else in_attributes
    return _titles(raw)


def _titles(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    titles = (item.get("title") if isinstance(item, Mapping) else None for item in raw)
    return tuple(t for t in titles if isinstance(t, str) and t)


def _label_status(labels: tuple[str, ...], prefix: str) -> str | None:
    """The status a scoped label with ``prefix`` names (``workflow::in review`` → ``in review``), if any."""
    if not prefix:
        return None
    folded = prefix.casefold()
    for label in labels:
        if label.casefold().startswith(folded) and label[len(prefix) :].strip():
            return label[len(prefix) :].strip()
    return None


def _status(
    attrs: Mapping[str, Any], state: str, labels: tuple[str, ...], prefix: str
) -> tuple[str, str, bool]:
    """(status name, status category, whether labels decide it: open and without a work item status)."""
    status = attrs.get("status")
    if isinstance(status, Mapping) and isinstance(status.get("name"), str) and status["name"].strip():
        category = status.get("category")
        category = category.strip().lower() if isinstance(category, str) and category.strip() else state
        return status["name"].strip(), category, False
    if state != "opened":
        return state, state, False
    return _label_status(labels, prefix) or state, state, True


def _previous_label_status(changes: Any, prefix: str) -> str | None:
    """The label status before this update, when the update changed the labels (``changes.labels``)."""
    if not isinstance(changes, Mapping):
        return None
    label_change = changes.get("labels")
    if not isinstance(label_change, Mapping):
        return None
    before = _label_status(_titles(label_change.get("previous")), prefix)
    after = _label_status(_titles(label_change.get("current")), prefix)
    if before == after:
        return None
    # Adding the first workflow label moves the object out of its plain state.
    return before if before is not None else "opened"


def _link(raw: Any) -> str:
    parts = urlsplit(raw) if isinstance(raw, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise UnmappablePayloadError("object_attributes.url: missing or not an http(s) URL")
    return str(raw)


def _timestamp(raw: Any, where: str) -> dt.datetime:
    if not isinstance(raw, str):
        raise UnmappablePayloadError(f"{where}: missing or not a string")
    text = raw.strip()
    utc_suffix = _UTC_SUFFIX.search(text)
    if utc_suffix:
        text = text[: utc_suffix.start()] + "+00:00"
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UnmappablePayloadError(f"{where}: not a timestamp") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _actor(user: Any) -> str | None:
    if not isinstance(user, Mapping):
        return None
    for key in ("name", "username"):
        value = user.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _priority(labels: tuple[str, ...]) -> str | None:
    for label in labels:
        match = _PRIORITY_LABEL.match(label.strip())
        if match:
            return (match.group("named") or match.group("p")).strip()
    return None


def _date(raw: Any) -> dt.date | None:
    if not isinstance(raw, str):
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        return None
