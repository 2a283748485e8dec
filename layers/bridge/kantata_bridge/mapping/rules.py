"""TrackerEvent + route + rules → the StatusReport to post. Pure functions; tested table-driven.

Every report's description ends with a delivery marker line (``kantata-bridge delivery: <dedupe key>``).
The worker uses it after an ambiguous failure (a POST that timed out may still have created the report):
it lists the object's reports by external reference and looks for its own marker before posting again.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, cast

from kantata_bridge.kantata.models import (
    Color,
    InlineExternalReference,
    ReportCategory,
    StatusReport,
    StatusReportDetail,
)
from kantata_bridge.mapping.config import DONE_CATEGORIES, ColorRule, Condition, DetailRule, Route, Rules
from kantata_bridge.tracker_event import Action, Model, TrackerEvent

MARKER_PREFIX: Final = "kantata-bridge delivery: "
MISSING: Final = "—"
ELLIPSIS: Final = "…"
_DONE_CATEGORIES: Final = frozenset(DONE_CATEGORIES)
_MODEL_NAMES: Final = {
    Model.ISSUE: "Issue",
    Model.PULL_REQUEST: "Pull request",
    Model.MERGE_REQUEST: "Merge request",
}
# Trackers whose objects close by moving to a named workflow state: their close reads "moved to Done".
_WORKFLOW_TRACKERS: Final = frozenset({"jira", "linear"})


def delivery_marker(dedupe_key: str) -> str:
    """The line that ties a report to the delivery that wrote it."""
    return MARKER_PREFIX + dedupe_key


def truncate(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (code points, never inside one), ending in "…" if cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS


def is_done(event: TrackerEvent) -> bool:
    return event.status_category.casefold() in _DONE_CATEGORIES


def is_overdue(event: TrackerEvent, today: dt.date) -> bool:
    """Past its due date and not done."""
    return event.due_date is not None and event.due_date < today and not is_done(event)


def matches(cond: Condition, event: TrackerEvent, today: dt.date) -> bool:
    """Whether every key of ``cond`` holds for ``event`` (lists: any value; case-insensitive)."""
    for key, wanted in cond.values.items():
        if not wanted & _event_values(key, event):
            return False
    for key, flag in cond.flags.items():
        actual = event.flagged if key == "flagged" else is_overdue(event, today)
        if actual != flag:
            return False
    return True


def _event_values(key: str, event: TrackerEvent) -> set[str]:
    if key == "label":
        return {x.casefold() for x in event.labels}
    if key == "component":
        return {x.casefold() for x in event.components}
    single = {
        "tracker": event.tracker,
        "model": event.model.value,
        "action": event.action.value,
        "status": event.status_name,
        "status_category": event.status_category,
        "priority": event.priority,
    }[key]
    return {single.casefold()} if single else set()


def choose_color(rules: tuple[ColorRule, ...], default: str, event: TrackerEvent, today: dt.date) -> Color:
    """The colour of the first rule whose condition holds, else ``default``."""
    for rule in rules:
        if matches(rule.when, event, today):
            return cast(Color, rule.color)
    return cast(Color, default)


def schedule(event: TrackerEvent, today: dt.date, due_soon_days: int) -> tuple[Color, str]:
    """Schedule colour and text from the due date: done → green; overdue → red; due within
    ``due_soon_days`` → yellow; otherwise (or no due date) green."""
    if is_done(event):
        return "green", "Completed"
    if event.due_date is None:
        return "green", "No due date"
    if event.due_date < today:
        return "red", f"Overdue: was due {event.due_date.isoformat()}"
    if (event.due_date - today).days <= due_soon_days:
        return "yellow", f"Due soon: {event.due_date.isoformat()}"
    return "green", f"Due {event.due_date.isoformat()}"


def action_text(event: TrackerEvent) -> str:
    """A short verb phrase for the change, e.g. ``moved from To Do to In Progress``, ``merged``."""
    if event.action is Action.STATUS_CHANGED:
        if event.previous_status:
            return f"moved from {event.previous_status} to {event.status_name}"
        return f"moved to {event.status_name}"
    if event.action is Action.CLOSED:
        if event.status_category == "merged":
            return "merged"
        if event.tracker in _WORKFLOW_TRACKERS:
            return f"moved to {event.status_name}"
        return "closed"
    return event.action.value


def template_fields(event: TrackerEvent, color: str, today: dt.date, due_soon_days: int) -> dict[str, str]:
    """The values a template may use (names in config.TEMPLATE_FIELDS). Missing values read "—"."""
    return {
        "tracker": event.tracker,
        "model": event.model.value,
        "model_name": _MODEL_NAMES[event.model],
        "ref": event.ref,
        "title": event.title or MISSING,
        "status": event.status_name,
        "status_category": event.status_category,
        "previous_status": event.previous_status or MISSING,
        "action": event.action.value,
        "action_text": action_text(event),
        "actor": event.actor or MISSING,
        "labels": ", ".join(event.labels) or MISSING,
        "components": ", ".join(event.components) or MISSING,
        "priority": event.priority or MISSING,
        "due_date": event.due_date.isoformat() if event.due_date else MISSING,
        "schedule": schedule(event, today, due_soon_days)[1],
        "link": event.link,
        "project": event.project,
        "version": event.version.isoformat(),
        "color": color,
    }


def build_details(
    details: tuple[DetailRule, ...], event: TrackerEvent, overall: Color, today: dt.date, rules: Rules
) -> tuple[StatusReportDetail, ...]:
    """One detail line per configured category."""
    out = []
    for detail in details:
        color: Color
        if detail.color_source == "overall":
            color = overall
        elif detail.color_source == "schedule":
            color = schedule(event, today, rules.due_soon_days)[0]
        elif detail.color_source is not None:
            color = cast(Color, detail.color_source)
        else:
            color = choose_color(detail.rules, detail.default, event, today)
        fields = template_fields(event, color, today, rules.due_soon_days)
        out.append(
            StatusReportDetail(
                category=cast(ReportCategory, detail.category),
                color=color,
                description=detail.description.format_map(fields),
            )
        )
    return tuple(out)


def external_reference(event: TrackerEvent, message_limit: int = 255) -> InlineExternalReference:
    """The report's link back to the tracker object: service name/model/ref, link, status, title."""
    return InlineExternalReference(
        service_name=event.tracker,
        service_model=event.model.value,
        service_model_ref=event.ref,
        external_link=event.link,
        external_status=event.status_name,
        external_message=truncate(event.title or event.ref, message_limit),
    )


def map_event(
    event: TrackerEvent, route: Route, rules: Rules, *, dedupe_key: str, today: dt.date
) -> StatusReport:
    """The status report for ``event`` in ``route``'s workspace.

    ``today`` (UTC) decides overdue/due soon; ``dedupe_key`` goes into the description's marker line. Raises
    nothing for a validated config (templates were checked when the config was loaded).
    """
    color = choose_color(rules.colors, rules.default_color, event, today)
    fields = template_fields(event, color, today, rules.due_soon_days)
    description = rules.description.format_map(fields).rstrip() + "\n\n" + delivery_marker(dedupe_key)
    return StatusReport(
        workspace_id=route.workspace_id,
        color=color,
        description=description,
        details=build_details(rules.details, event, color, today, rules),
        external_reference=external_reference(event, rules.message_limit),
    )
