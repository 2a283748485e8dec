"""Linear ``Issue`` deliveries (create, update, remove) → one TrackerEvent.

Pure: bytes in, a TrackerEvent out, or IgnoredEventError (another entity type or action) or
UnmappablePayloadError (a needed field is missing; the message names it, e.g. ``data.state.name: missing``).

Status: ``data.state.name``; category: ``data.state.type`` (``triage``, ``backlog``, ``unstarted``, ``started``,
``completed``, ``canceled``). An update whose ``updatedFrom`` holds ``stateId`` moved the issue: into a
completed or canceled state it is ``closed``; out of one (``updatedFrom`` had ``completedAt`` or
``canceledAt``) ``reopened``; otherwise ``status_changed``. Linear sends the previous state's id only, not its
name, so ``previous_status`` stays empty.
"""

from __future__ import annotations

import datetime as dt
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

TRACKER: Final = "linear"
_ACTIONS: Final[Mapping[str, Action]] = {
    "create": Action.CREATED,
    "update": Action.UPDATED,
    "remove": Action.DELETED,
}
_CLOSED_TYPES: Final = frozenset({"completed", "canceled"})
# Linear's priority numbers; 0 is "No priority" and reads as no priority at all.
PRIORITY_NAMES: Final[Mapping[int, str]] = {1: "Urgent", 2: "High", 3: "Medium", 4: "Low"}
# A removal carries the issue as it was; it must still sort after that last state, so its version is nudged
# forward by this much (as for GitHub deletions).
_DELETION_NUDGE: Final = dt.timedelta(milliseconds=1)


def parse_event(
    event_type: str, body: bytes, content_type: str | None, headers: Mapping[str, str]
) -> TrackerEvent:
    """The registry's entry point (see kantata_bridge.trackers.registry.EventParser)."""
    return parse_linear_event(event_type, body)


def parse_linear_event(event_type: str, body: bytes) -> TrackerEvent:
    """Turn one Linear delivery (``Linear-Event`` value and raw body) into a TrackerEvent.

    Raises IgnoredEventError for entity types other than ``Issue`` and actions other than create, update
    and remove; UnmappablePayloadError for a body that is not a JSON object or lacks a needed field.
    """
    doc = _decode(body)
    entity = doc.get("type") if isinstance(doc.get("type"), str) else event_type
    if entity != "Issue":
        raise IgnoredEventError(f"linear event {entity!r} is not reported")
    action_name = doc.get("action")
    action = _ACTIONS.get(action_name) if isinstance(action_name, str) else None
    if action is None:
        raise IgnoredEventError(f"linear Issue action {action_name!r} is not reported")
    data = doc.get("data")
    if not isinstance(data, Mapping):
        raise UnmappablePayloadError("data: missing or not an object")
    state = data.get("state")
    if not isinstance(state, Mapping):
        raise UnmappablePayloadError("data.state: missing or not an object")
    status_name = _text(state, "name", "data.state.name")
    category = _text(state, "type", "data.state.type")
    team_key = _team_key(data)
    identifier = data.get("identifier")
    if not isinstance(identifier, str) or not identifier:
        number = data.get("number")
        if team_key is None or not isinstance(number, int) or isinstance(number, bool):
            raise UnmappablePayloadError("data.identifier: missing (and no data.team.key with data.number)")
        identifier = f"{team_key}-{number}"
    project = team_key or identifier.rsplit("-", 1)[0]
    if action is Action.UPDATED:
        action = _update_action(doc.get("updatedFrom"), category)
    version = _timestamp(data.get("updatedAt"), "data.updatedAt")
    if action is Action.DELETED:
        archived = data.get("archivedAt")
        if isinstance(archived, str):
            version = max(version, _timestamp(archived, "data.archivedAt"))
        version += _DELETION_NUDGE
    labels = _label_names(data.get("labels"))
    return TrackerEvent(
        tracker=TRACKER,
        model=Model.ISSUE,
        ref=identifier,
        title=str(data.get("title") or ""),
        status_name=status_name,
        status_category=category.lower(),
        link=_link(data.get("url") or doc.get("url")),
        action=action,
        version=version,
        project=project,
        actor=_actor(doc.get("actor")),
        labels=labels,
        priority=_priority(data),
        due_date=_date(data.get("dueDate")),
    )


def _decode(body: bytes) -> Mapping[str, Any]:
    from kantata_bridge.trackers.base import MalformedDeliveryError, parse_json_object

    try:
        return parse_json_object(body)
    except MalformedDeliveryError as exc:
        raise UnmappablePayloadError(f"body: {exc}") from None


def _text(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value.strip():
        raise UnmappablePayloadError(f"{where}: missing or not a string")
    return value.strip()


def _team_key(data: Mapping[str, Any]) -> str | None:
    team = data.get("team")
    key = team.get("key") if isinstance(team, Mapping) else None
    return key if isinstance(key, str) and key else None


def _update_action(updated_from: Any, category: str) -> Action:
    if not isinstance(updated_from, Mapping) or "stateId" not in updated_from:
        return Action.UPDATED
    if category.lower() in _CLOSED_TYPES:
        return Action.CLOSED
    if updated_from.get("completedAt") or updated_from.get("canceledAt"):
        return Action.REOPENED
    return Action.STATUS_CHANGED


def _timestamp(raw: Any, where: str) -> dt.datetime:
    if not isinstance(raw, str):
        raise UnmappablePayloadError(f"{where}: missing or not a string")
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise UnmappablePayloadError(f"{where}: not an ISO 8601 timestamp") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _link(raw: Any) -> str:
    parts = urlsplit(raw) if isinstance(raw, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise UnmappablePayloadError("data.url: missing or not an http(s) URL")
    return str(raw)


def _label_names(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    names = (item.get("name") if isinstance(item, Mapping) else None for item in raw)
    return tuple(n for n in names if isinstance(n, str) and n)


def _priority(data: Mapping[str, Any]) -> str | None:
    number = data.get("priority")
    if isinstance(number, bool) or not isinstance(number, int | float) or number == 0:
        return None
    label = data.get("priorityLabel")
    if isinstance(label, str) and label.strip():
        return label.strip()
    return PRIORITY_NAMES.get(int(number)) if number in PRIORITY_NAMES else None


def _actor(actor: Any) -> str | None:
    if not isinstance(actor, Mapping):
        return None
    name = actor.get("name")
    return name if isinstance(name, str) and name else None


def _date(raw: Any) -> dt.date | None:
    if not isinstance(raw, str):
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        return None
