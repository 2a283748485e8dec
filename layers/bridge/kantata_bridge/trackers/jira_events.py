"""Jira Cloud ``jira:issue_created`` / ``jira:issue_updated`` / ``jira:issue_deleted`` deliveries → TrackerEvent.

Pure: bytes in, a TrackerEvent out, or IgnoredEventError (another webhookEvent) or UnmappablePayloadError
(a needed field is missing; the message names it, e.g. ``issue.key: missing or not a string``).
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

TRACKER: Final = "jira"
_EVENTS: Final = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted"})
# Jira's built-in flag ("Flagged" custom field) holds this value when an issue is flagged.
_FLAG_VALUE: Final = "Impediment"


def parse_event(
    event_type: str, body: bytes, content_type: str | None, headers: Mapping[str, str]
) -> TrackerEvent:
    """The registry's entry point (see kantata_bridge.trackers.registry.EventParser)."""
    return parse_jira_event(body, event_type)


def parse_jira_event(body: bytes, event_type: str | None = None) -> TrackerEvent:
    """Turn one Jira webhook body into a TrackerEvent.

    The event type is the body's ``webhookEvent`` (``event_type``, the receiver's reading of it, is only a
    fallback). A status change is read from ``changelog.items[]`` with ``fieldId``/``field`` ``status``.
    Version: ``issue.fields.updated``; for a deletion (whose fields show the last state before it) the
    body ``timestamp`` (epoch ms). Raises IgnoredEventError or UnmappablePayloadError.
    """
    from kantata_bridge.trackers.base import MalformedDeliveryError, parse_json_object

    try:
        doc = parse_json_object(body)
    except MalformedDeliveryError as exc:
        raise UnmappablePayloadError(f"body: {exc}") from None
    webhook_event = doc.get("webhookEvent") if isinstance(doc.get("webhookEvent"), str) else event_type
    if webhook_event not in _EVENTS:
        raise IgnoredEventError(f"jira event {webhook_event!r} is not reported")
    issue = doc.get("issue")
    if not isinstance(issue, Mapping):
        raise UnmappablePayloadError("issue: missing or not an object")
    fields = issue.get("fields")
    if not isinstance(fields, Mapping):
        raise UnmappablePayloadError("issue.fields: missing or not an object")
    key = _text(issue, "key", "issue.key")
    status = fields.get("status")
    if not isinstance(status, Mapping):
        raise UnmappablePayloadError("issue.fields.status: missing or not an object")
    status_name = _text(status, "name", "issue.fields.status.name")
    category_doc = status.get("statusCategory")
    category = category_doc.get("key") if isinstance(category_doc, Mapping) else None
    if not isinstance(category, str) or not category:
        raise UnmappablePayloadError("issue.fields.status.statusCategory.key: missing or not a string")
    project_doc = fields.get("project")
    project = project_doc.get("key") if isinstance(project_doc, Mapping) else None
    if not isinstance(project, str) or not project:
        project = key.rsplit("-", 1)[0]

    change = _status_change(doc.get("changelog"))
    action = _action(webhook_event, change, category)
    version = _version(doc, fields, deleted=action is Action.DELETED)
    return TrackerEvent(
        tracker=TRACKER,
        model=Model.ISSUE,
        ref=key,
        title=str(fields.get("summary") or ""),
        status_name=status_name,
        status_category=category,
        link=browse_link(issue, key),
        action=action,
        version=version,
        project=project,
        actor=_actor(doc.get("user")),
        labels=tuple(x for x in _list(fields.get("labels")) if isinstance(x, str)),
        components=tuple(
            str(c["name"])
            for c in _list(fields.get("components"))
            if isinstance(c, Mapping) and isinstance(c.get("name"), str)
        ),
        priority=_name(fields.get("priority")),
        due_date=_date(fields.get("duedate")),
        previous_status=change[0] if change else None,
        flagged=_flagged(fields),
    )


def browse_link(issue: Mapping[str, Any], key: str) -> str:
    """The issue's page for people: ``https://<site>/browse/<KEY>``, derived from the API URL ``issue.self``.

    Raises UnmappablePayloadError when ``issue.self`` is not an http(s) URL.
    """
    raw = issue.get("self")
    parts = urlsplit(raw) if isinstance(raw, str) else None
    if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
        raise UnmappablePayloadError("issue.self: missing or not an http(s) URL")
    return f"{parts.scheme}://{parts.netloc}/browse/{key}"


def _text(doc: Mapping[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise UnmappablePayloadError(f"{where}: missing or not a string")
    return value


def _status_change(changelog: Any) -> tuple[str | None, str | None] | None:
    """(fromString, toString) of the status item of a changelog, or None when the status did not change."""
    if not isinstance(changelog, Mapping):
        return None
    for item in _list(changelog.get("items")):
        if not isinstance(item, Mapping):
            continue
        field_id = item.get("fieldId") or item.get("field")
        if isinstance(field_id, str) and field_id.lower() == "status":
            old, new = item.get("fromString"), item.get("toString")
            return (old if isinstance(old, str) else None, new if isinstance(new, str) else None)
    return None


def _action(webhook_event: str, change: tuple[str | None, str | None] | None, category: str) -> Action:
    if webhook_event == "jira:issue_created":
        return Action.CREATED
    if webhook_event == "jira:issue_deleted":
        return Action.DELETED
    if change is None:
        return Action.UPDATED
    if category == "done":
        return Action.CLOSED
    # Leaving a done status is a reopen. The changelog names the old status, not its category, so
    # guess from the common done names; anything else is a plain status change.
    if (change[0] or "").strip().lower() in ("done", "closed", "resolved", "complete", "completed"):
        return Action.REOPENED
    return Action.STATUS_CHANGED


def _version(doc: Mapping[str, Any], fields: Mapping[str, Any], *, deleted: bool) -> dt.datetime:
    updated = fields.get("updated")
    stamp = doc.get("timestamp")
    from_stamp: dt.datetime | None = None
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        try:
            from_stamp = dt.datetime.fromtimestamp(stamp / 1000, tz=dt.UTC)
        except (OverflowError, OSError, ValueError):
            # Out of the platform's range (or not finite): a corrupt body, not a worker failure.
            raise UnmappablePayloadError("timestamp: not an epoch time in milliseconds") from None
    from_fields: dt.datetime | None = None
    if isinstance(updated, str):
        try:
            from_fields = dt.datetime.strptime(updated, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            try:
                from_fields = dt.datetime.fromisoformat(updated)
            except ValueError:
                raise UnmappablePayloadError("issue.fields.updated: not a timestamp") from None
        if from_fields.tzinfo is None:
            # A naive time would be read as the host's local time; Jira sends UTC offsets, assume UTC.
            from_fields = from_fields.replace(tzinfo=dt.UTC)
        from_fields = from_fields.astimezone(dt.UTC)
    if deleted and from_stamp is not None:
        return max(from_stamp, from_fields) if from_fields else from_stamp
    if from_fields is not None:
        return from_fields
    if from_stamp is not None:
        return from_stamp
    raise UnmappablePayloadError("issue.fields.updated: missing, and no body timestamp")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _actor(user: Any) -> str | None:
    if not isinstance(user, Mapping):
        return None
    for key in ("displayName", "name", "accountId"):
        value = user.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _name(value: Any) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return str(value["name"])
    return None


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _flagged(fields: Mapping[str, Any]) -> bool:
    # The flag is a custom field whose id differs per site; look for its value instead of its id.
    for key, value in fields.items():
        if key.startswith("customfield_") and isinstance(value, list):
            for option in value:
                if isinstance(option, Mapping) and option.get("value") == _FLAG_VALUE:
                    return True
    return False
