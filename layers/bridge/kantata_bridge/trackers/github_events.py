"""GitHub ``issues`` and ``pull_request`` deliveries → one TrackerEvent.

Pure: bytes in, a TrackerEvent out, or IgnoredEventError (a valid delivery we do not report: ``ping``, an
action such as ``pinned``) or UnmappablePayloadError (the payload lacks a field we need; the message names it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

from kantata_bridge.tracker_event import (
    Action,
    IgnoredEventError,
    Model,
    TrackerEvent,
    UnmappablePayloadError,
)

TRACKER: Final = "github"

# Actions that change what a status report shows; anything else is skipped with a reason. ``synchronize``
# (new commits) and review events are left out on purpose: they are frequent and change no status.
_SHARED_ACTIONS: Final[dict[str, Action]] = {
    "opened": Action.CREATED,
    "edited": Action.UPDATED,
    "closed": Action.CLOSED,
    "reopened": Action.REOPENED,
    "labeled": Action.UPDATED,
    "unlabeled": Action.UPDATED,
    "assigned": Action.UPDATED,
    "unassigned": Action.UPDATED,
    "milestoned": Action.UPDATED,
    "demilestoned": Action.UPDATED,
}
_ISSUE_ACTIONS: Final = {**_SHARED_ACTIONS, "deleted": Action.DELETED, "transferred": Action.UPDATED}
_PR_ACTIONS: Final = {
    **_SHARED_ACTIONS,
    "ready_for_review": Action.STATUS_CHANGED,
    "converted_to_draft": Action.STATUS_CHANGED,
}
# Labels such as "priority: high", "priority/P1", "P1" give the priority (GitHub has no priority field).
_PRIORITY_LABEL: Final = re.compile(r"^(?:priority\s*[:/_-]\s*(?P<named>.+)|(?P<p>p[0-4]))$", re.IGNORECASE)
# A deletion carries the object as it was, with its last updated_at; the deletion must still sort after
# that last state, so its version is nudged forward by this much.
_DELETION_NUDGE: Final = dt.timedelta(milliseconds=1)


def parse_event(
    event_type: str, body: bytes, content_type: str | None, headers: Mapping[str, str]
) -> TrackerEvent:
    """The registry's entry point (see kantata_bridge.trackers.registry.EventParser)."""
    return parse_github_event(event_type, body, content_type)


def parse_github_event(event_type: str, body: bytes, content_type: str | None = None) -> TrackerEvent:
    """Turn one GitHub delivery (``X-GitHub-Event`` value, raw body, Content-Type) into a TrackerEvent.

    Accepts JSON bodies and form-encoded bodies (``payload=<json>``). Raises IgnoredEventError for
    events and actions the bridge does not report, UnmappablePayloadError for a body that is not a JSON
    object or lacks a needed field.
    """
    if event_type not in ("issues", "pull_request"):
        raise IgnoredEventError(f"github event {event_type!r} is not reported")
    doc = _decode(body, content_type)
    action_name = _text(doc, "action")
    if event_type == "issues":
        obj = _object(doc, "issue")
        if "pull_request" in obj:
            # GitHub sends some pull request changes as `issues` events too; the PR event reports them.
            raise IgnoredEventError("issues event about a pull request")
        model, actions = Model.ISSUE, _ISSUE_ACTIONS
    else:
        obj = _object(doc, "pull_request")
        model, actions = Model.PULL_REQUEST, _PR_ACTIONS
    action = actions.get(action_name)
    if action is None:
        raise IgnoredEventError(f"github {event_type} action {action_name!r} is not reported")

    repo = _object(doc, "repository")
    full_name = _text(repo, "full_name", "repository.full_name")
    number = obj.get("number")
    if not isinstance(number, int) or isinstance(number, bool):
        raise UnmappablePayloadError(f"{_where(event_type)}.number: missing or not an integer")
    status_name, category = _status(model, obj)
    version = _timestamp(obj, "updated_at", _where(event_type))
    if action is Action.DELETED:
        version += _DELETION_NUDGE
    labels = _labels(obj)
    sender = doc.get("sender")
    actor = sender.get("login") if isinstance(sender, Mapping) else None
    return TrackerEvent(
        tracker=TRACKER,
        model=model,
        ref=f"{full_name}#{number}",
        title=str(obj.get("title") or ""),
        status_name=status_name,
        status_category=category,
        link=_text(obj, "html_url", f"{_where(event_type)}.html_url"),
        action=action,
        version=version,
        project=full_name,
        actor=str(actor) if actor else None,
        labels=labels,
        priority=_priority(labels),
        due_date=_milestone_due(obj),
        previous_status=_previous_status(model, action_name, category),
    )


def _decode(body: bytes, content_type: str | None) -> Mapping[str, Any]:
    # The receiver's parser already handles JSON and form bodies; reuse it so both sides agree.
    from kantata_bridge.trackers.base import MalformedDeliveryError
    from kantata_bridge.trackers.github import parse_payload

    try:
        return parse_payload(body, content_type)
    except MalformedDeliveryError as exc:
        raise UnmappablePayloadError(f"body: {exc}") from None


def _where(event_type: str) -> str:
    return "issue" if event_type == "issues" else "pull_request"


def _object(doc: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = doc.get(key)
    if not isinstance(value, Mapping):
        raise UnmappablePayloadError(f"{key}: missing or not an object")
    return value


def _text(doc: Mapping[str, Any], key: str, where: str | None = None) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise UnmappablePayloadError(f"{where or key}: missing or not a string")
    return value


def _timestamp(doc: Mapping[str, Any], key: str, where: str) -> dt.datetime:
    raw = doc.get(key)
    if not isinstance(raw, str):
        raise UnmappablePayloadError(f"{where}.{key}: missing or not a string")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise UnmappablePayloadError(f"{where}.{key}: not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _status(model: Model, obj: Mapping[str, Any]) -> tuple[str, str]:
    state = obj.get("state")
    if state not in ("open", "closed"):
        raise UnmappablePayloadError(f"{model.value}.state: must be 'open' or 'closed'")
    if model is Model.PULL_REQUEST:
        if obj.get("merged") is True or (state == "closed" and obj.get("merged_at")):
            return "merged", "merged"
        if state == "open" and obj.get("draft") is True:
            return "draft", "draft"
    return str(state), str(state)


def _labels(obj: Mapping[str, Any]) -> tuple[str, ...]:
    raw = obj.get("labels")
    if not isinstance(raw, list):
        return ()
    names = (item.get("name") if isinstance(item, Mapping) else item for item in raw)
    return tuple(str(n) for n in names if isinstance(n, str) and n)


def _priority(labels: tuple[str, ...]) -> str | None:
    for label in labels:
        match = _PRIORITY_LABEL.match(label.strip())
        if match:
            return (match.group("named") or match.group("p")).strip()
    return None


def _milestone_due(obj: Mapping[str, Any]) -> dt.date | None:
    milestone = obj.get("milestone")
    if not isinstance(milestone, Mapping) or not isinstance(milestone.get("due_on"), str):
        return None
    try:
        return dt.datetime.fromisoformat(milestone["due_on"]).date()
    except ValueError:
        return None


def _previous_status(model: Model, action_name: str, category: str) -> str | None:
    # GitHub does not send the previous state; infer it where the action implies it.
    if action_name in ("closed", "ready_for_review"):
        return "draft" if action_name == "ready_for_review" else "open"
    if action_name == "reopened":
        return "closed"
    if action_name == "converted_to_draft":
        return "open"
    return None
