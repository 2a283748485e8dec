"""The routing and rules config: parsed from YAML/JSON, validated, turned into frozen dataclasses.

Hand-written validation (no pydantic): it keeps the worker's cold start small, and each error names the bad
key and why, e.g. ``routes[2].workspace_id: must be a string of digits``. All problems are reported at once.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

COLORS: Final = ("green", "yellow", "red")
CATEGORIES: Final = ("Scope", "Budget", "Schedule", "Client")


@dataclass(frozen=True, slots=True)
class RouteSource:
    """How a tracker's routes name where events come from: the route key (``repository``, ``project``…)
    and whether the route may filter on components (only trackers that have them)."""

    key: str
    has_components: bool = False


# Per tracker: the route key naming the event's source (TrackerEvent.project). A tracker joins by adding a
# line here and its matching rule in mapping.routing.
ROUTE_SOURCES: Final[Mapping[str, RouteSource]] = {
    "github": RouteSource("repository"),
    "jira": RouteSource("project", has_components=True),
    "gitlab": RouteSource("project"),
    "linear": RouteSource("team"),
}
TRACKERS: Final = tuple(ROUTE_SOURCES)
TASK_MODES: Final = ("off", "update", "create")
ON_DELETE: Final = ("leave", "complete")
_SOURCE_KEYS: Final = frozenset(source.key for source in ROUTE_SOURCES.values())
# Status categories that mean "finished", per tracker: Jira done; GitHub closed/merged; GitLab closed/merged
# (state) or done/cancelled (work item status); Linear completed/canceled. The default colour rules and the
# schedule treat them alike (see mapping.rules.is_done).
DONE_CATEGORIES: Final = ("done", "closed", "merged", "cancelled", "completed", "canceled")
# Special colour sources for a detail line besides a fixed colour or rules.
DETAIL_COLOR_SOURCES: Final = ("overall", "schedule")
# Fields a description template may use (see docs/worker.md and rules.template_fields).
TEMPLATE_FIELDS: Final = frozenset(
    {
        "tracker",
        "model",
        "model_name",
        "ref",
        "title",
        "status",
        "status_category",
        "previous_status",
        "action",
        "action_text",
        "actor",
        "labels",
        "components",
        "priority",
        "due_date",
        "schedule",
        "link",
        "project",
        "version",
        "color",
    }
)
_LIST_CONDITIONS: Final = (
    "tracker",
    "model",
    "action",
    "status",
    "status_category",
    "label",
    "component",
    "priority",
)
_BOOL_CONDITIONS: Final = ("flagged", "overdue")


class ConfigError(ValueError):
    """The config document is invalid. ``problems`` lists each ``path: why``; the message joins them."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid routing config: " + "; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class Condition:
    """All given keys must match (AND); within a list key any value may match (OR). Case-insensitive."""

    values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    flags: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ColorRule:
    """``when`` the condition holds, the colour is ``color``. Rules are tried in order; first match wins."""

    when: Condition
    color: str


@dataclass(frozen=True, slots=True)
class DetailRule:
    """One per-category line: ``color_source`` (overall/schedule/a colour) or ``rules`` + ``default``."""

    category: str
    description: str
    color_source: str | None = None
    rules: tuple[ColorRule, ...] = ()
    default: str = "green"


@dataclass(frozen=True, slots=True)
class Rules:
    """How an event becomes a report. ``DEFAULT_RULES`` documents the defaults."""

    colors: tuple[ColorRule, ...]
    default_color: str
    details: tuple[DetailRule, ...]
    description: str
    due_soon_days: int = 3
    message_limit: int = 255


@dataclass(frozen=True, slots=True)
class Route:
    """Events from ``source`` (GitHub ``owner/repo`` or ``owner/*``; Jira project key; GitLab project path,
    ``group/*`` or ``group/**``; Linear team key), optionally only those with one of ``labels`` /
    ``components``, go to Kantata workspace ``workspace_id``."""

    tracker: str
    source: str
    workspace_id: str
    labels: frozenset[str] = frozenset()
    components: frozenset[str] = frozenset()
    name: str | None = None
    tasks: TaskSettings = field(default_factory=lambda: TaskSettings())


@dataclass(frozen=True, slots=True)
class TaskSettings:
    """How a route keeps the Kantata task linked to each tracker object in step (see worker/tasks.py).

    ``mode``: ``off`` (reports only), ``update`` (tasks already linked), ``create`` (also create and link a task
    when an object has none). ``statuses``: tracker status (case-folded) → Kantata status name, tried after a
    status of the same name. ``on_delete``: ``leave`` the task's status when the tracker object is deleted
    (its reference says ``deleted``), or move it to the ``complete`` category's default status.
    """

    mode: str = "off"
    statuses: Mapping[str, str] = field(default_factory=dict)
    on_delete: str = "leave"


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """Routing by Kantata's own links (workspaces carrying an external reference to a tracker source): used
    when no route in the document matches; looked up in Kantata and cached ``max_age_seconds``."""

    enabled: bool = True
    max_age_seconds: int = 300
    tasks: TaskSettings = field(default_factory=lambda: TaskSettings())


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    routes: tuple[Route, ...]
    rules: Rules
    links: LinkSettings = field(default_factory=lambda: LinkSettings())


def _cond(**kw: Any) -> Condition:
    values = {k: frozenset(str(x).casefold() for x in v) for k, v in kw.items() if k in _LIST_CONDITIONS}
    flags = {k: bool(v) for k, v in kw.items() if k in _BOOL_CONDITIONS}
    return Condition(values=values, flags=flags)


DEFAULT_DESCRIPTION: Final = (
    "{model_name} {ref} {action_text}: {title}\n"
    "Status: {status} · Priority: {priority} · Due: {due_date}\n"
    "By {actor} · {link}"
)
DEFAULT_RULES: Final = Rules(
    colors=(
        ColorRule(_cond(action=["deleted"]), "yellow"),
        ColorRule(_cond(status_category=DONE_CATEGORIES), "green"),
        ColorRule(_cond(flagged=True), "red"),
        ColorRule(_cond(label=["blocked"]), "red"),
        ColorRule(_cond(status=["blocked"]), "red"),
        ColorRule(_cond(label=["needs info", "needs-info", "waiting", "on hold", "on-hold"]), "yellow"),
        ColorRule(_cond(status=["waiting", "waiting for customer", "needs info", "on hold"]), "yellow"),
        ColorRule(
            _cond(overdue=True, priority=["highest", "high", "critical", "urgent", "blocker", "p0", "p1"]),
            "red",
        ),
        ColorRule(_cond(overdue=True), "yellow"),
    ),
    default_color="green",
    details=(
        DetailRule("Scope", "{status}: {title}", color_source="overall"),
        DetailRule("Schedule", "{schedule}", color_source="schedule"),
        DetailRule(
            "Client",
            "Labels: {labels}",
            rules=(ColorRule(_cond(label=["waiting-on-client", "client", "customer"]), "yellow"),),
            default="green",
        ),
    ),
    description=DEFAULT_DESCRIPTION,
)


def parse_config(text: str | bytes, source: str = "config") -> BridgeConfig:
    """Parse a YAML or JSON document into a validated BridgeConfig. Raises ConfigError naming each problem."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError([f"{source}: not UTF-8 text"]) from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            doc = json.loads(text)
        else:
            import yaml  # lazy: only needed for YAML documents

            doc = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parser failure is a config error, named for the operator
        raise ConfigError([f"{source}: not valid YAML/JSON ({type(exc).__name__})"]) from None
    return build_config(doc)


def build_config(doc: Any) -> BridgeConfig:
    """Validate an already-parsed document. Raises ConfigError listing every ``path: why``."""
    problems: list[str] = []
    if not isinstance(doc, Mapping):
        raise ConfigError(["(top level): must be a mapping with 'routes'"])
    for key in doc:
        if key not in ("version", "routes", "rules", "links"):
            problems.append(f"{key}: unknown key (expected version, routes, rules, links)")
    if doc.get("version", 1) != 1:
        problems.append("version: must be 1")
    raw_routes = doc.get("routes")
    routes: list[Route] = []
    if not isinstance(raw_routes, list):
        problems.append("routes: must be a list")
    else:
        for i, raw in enumerate(raw_routes):
            route = _route(raw, f"routes[{i}]", problems)
            if route is not None:
                routes.append(route)
    rules = _rules(doc.get("rules"), "rules", problems)
    links = _links(doc.get("links"), "links", problems)
    if problems:
        raise ConfigError(problems)
    return BridgeConfig(routes=tuple(routes), rules=rules, links=links)


def _links(raw: Any, path: str, problems: list[str]) -> LinkSettings:
    if raw is None:
        return LinkSettings()
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: must be a mapping")
        return LinkSettings()
    for key in raw:
        if key not in ("enabled", "max_age_seconds", "tasks", "task_statuses", "on_delete"):
            problems.append(
                f"{path}.{key}: unknown key (expected enabled, max_age_seconds, tasks, task_statuses, on_delete)"
            )
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.append(f"{path}.enabled: must be true or false")
        enabled = True
    max_age = raw.get("max_age_seconds", 300)
    if not isinstance(max_age, int) or isinstance(max_age, bool) or not 0 <= max_age <= 86400:
        problems.append(f"{path}.max_age_seconds: must be an integer from 0 to 86400")
        max_age = 300
    return LinkSettings(enabled=enabled, max_age_seconds=max_age, tasks=_task_settings(raw, path, problems))


def _task_settings(raw: Mapping[str, Any], path: str, problems: list[str]) -> TaskSettings:
    """The ``tasks`` / ``task_statuses`` / ``on_delete`` keys of a route (or of ``links``)."""
    mode = raw.get("tasks", "off")
    if mode is False:  # YAML reads a bare `off` as false
        mode = "off"
    if mode not in TASK_MODES:
        problems.append(f"{path}.tasks: must be one of {', '.join(TASK_MODES)}")
        mode = "off"
    on_delete = raw.get("on_delete", "leave")
    if on_delete not in ON_DELETE:
        problems.append(f"{path}.on_delete: must be one of {', '.join(ON_DELETE)}")
        on_delete = "leave"
    statuses: dict[str, str] = {}
    raw_statuses = raw.get("task_statuses")
    if raw_statuses is not None:
        if not isinstance(raw_statuses, Mapping):
            problems.append(f"{path}.task_statuses: must map tracker status names to Kantata status names")
        else:
            for key, value in raw_statuses.items():
                if (
                    not isinstance(key, str)
                    or not key.strip()
                    or not isinstance(value, str)
                    or not value.strip()
                ):
                    problems.append(f"{path}.task_statuses: {key!r}: both names must be non-empty strings")
                else:
                    statuses[key.strip().casefold()] = value.strip()
    if (statuses or on_delete != "leave") and mode == "off":
        problems.append(f"{path}.tasks: task_statuses and on_delete need tasks: update or create")
    return TaskSettings(mode=str(mode), statuses=statuses, on_delete=str(on_delete))


def _route(raw: Any, path: str, problems: list[str]) -> Route | None:
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: must be a mapping")
        return None
    start = len(problems)
    allowed = {
        "tracker",
        "labels",
        "components",
        "workspace_id",
        "name",
        "tasks",
        "task_statuses",
        "on_delete",
        *_SOURCE_KEYS,
    }
    for key in raw:
        if key not in allowed:
            problems.append(f"{path}.{key}: unknown key")
    tracker = raw.get("tracker")
    route_source = ROUTE_SOURCES.get(tracker) if isinstance(tracker, str) else None
    source: Any = None
    if route_source is None:
        problems.append(f"{path}.tracker: must be one of {', '.join(TRACKERS)}")
    else:
        source_key = route_source.key
        source = raw.get(source_key)
        for other_key in sorted(_SOURCE_KEYS - {source_key}):
            if other_key in raw:
                problems.append(f"{path}.{other_key}: not used for tracker {tracker}; use {source_key}")
        if not isinstance(source, str) or not source.strip():
            problems.append(f"{path}.{source_key}: required, a non-empty string")
        else:
            problem = source_problem(str(tracker), source.strip())
            if problem:
                problems.append(f"{path}.{source_key}: {problem}")
    workspace = raw.get("workspace_id")
    if isinstance(workspace, int) and not isinstance(workspace, bool) and workspace > 0:
        workspace = str(workspace)
    if not isinstance(workspace, str) or not workspace.isdigit():
        problems.append(f"{path}.workspace_id: must be a string of digits")
    labels = _str_list(raw.get("labels"), f"{path}.labels", problems)
    components = _str_list(raw.get("components"), f"{path}.components", problems)
    if route_source is not None and not route_source.has_components and components:
        problems.append(f"{path}.components: {tracker} has no components; use labels")
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        problems.append(f"{path}.name: must be a string")
    tasks = _task_settings(raw, path, problems)
    if len(problems) > start:
        return None
    return Route(
        tracker=str(tracker),
        source=str(source).strip(),
        workspace_id=str(workspace),
        labels=frozenset(x.casefold() for x in labels),
        components=frozenset(x.casefold() for x in components),
        name=name,
        tasks=tasks,
    )


def source_problem(tracker: str, source: str) -> str | None:
    """Why ``source`` cannot name a source of ``tracker``'s events, or None when it can."""
    if tracker == "github" and (source.count("/") != 1 or source.startswith("/") or source.endswith("/")):
        return "must be 'owner/repo' or 'owner/*'"
    if tracker == "gitlab":
        parts = source.split("/")
        wildcards = [i for i, part in enumerate(parts) if "*" in part]
        if len(parts) < 2 or not all(parts) or any(p.strip() != p for p in parts):
            return "must be a project path 'group/project' (subgroups allowed), 'group/*' or 'group/**'"
        if wildcards and (wildcards != [len(parts) - 1] or parts[-1] not in ("*", "**")):
            return "a wildcard must be the whole last segment: 'group/*' (direct projects) or 'group/**' (any depth)"
    if tracker == "linear" and not (source.isascii() and source.isalnum()):
        return "must be a Linear team key such as ENG (letters and digits)"
    return None


def _str_list(value: Any, path: str, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
        problems.append(f"{path}: must be a list of non-empty strings")
        return []
    return [x.strip() for x in value]


def _rules(raw: Any, path: str, problems: list[str]) -> Rules:
    base = DEFAULT_RULES
    if raw is None:
        return base
    if not isinstance(raw, Mapping):
        problems.append(f"{path}: must be a mapping")
        return base
    allowed = {"colors", "default_color", "details", "description", "due_soon_days", "message_limit"}
    for key in raw:
        if key not in allowed:
            problems.append(f"{path}.{key}: unknown key (expected {', '.join(sorted(allowed))})")
    colors = base.colors
    if "colors" in raw:
        colors = _color_rules(raw["colors"], f"{path}.colors", problems)
    default_color = raw.get("default_color", base.default_color)
    if default_color not in COLORS:
        problems.append(f"{path}.default_color: must be one of {', '.join(COLORS)}")
    details = base.details
    if "details" in raw:
        details = _details(raw["details"], f"{path}.details", problems)
    description = raw.get("description", base.description)
    if not isinstance(description, str) or not description.strip():
        problems.append(f"{path}.description: must be a non-empty template string")
    else:
        _check_template(description, f"{path}.description", problems)
    due_soon = raw.get("due_soon_days", base.due_soon_days)
    if not isinstance(due_soon, int) or isinstance(due_soon, bool) or not 0 <= due_soon <= 365:
        problems.append(f"{path}.due_soon_days: must be an integer from 0 to 365")
    limit = raw.get("message_limit", base.message_limit)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 16 <= limit <= 255:
        problems.append(f"{path}.message_limit: must be an integer from 16 to 255")
    return Rules(
        colors=colors,
        default_color=str(default_color),
        details=details,
        description=str(description),
        due_soon_days=due_soon if isinstance(due_soon, int) else base.due_soon_days,
        message_limit=limit if isinstance(limit, int) else base.message_limit,
    )


def _color_rules(raw: Any, path: str, problems: list[str]) -> tuple[ColorRule, ...]:
    if not isinstance(raw, list):
        problems.append(f"{path}: must be a list of {{when: {{...}}, color: ...}}")
        return ()
    out: list[ColorRule] = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: must be a mapping with 'when' and 'color'")
            continue
        for key in item:
            if key not in ("when", "color"):
                problems.append(f"{where}.{key}: unknown key (expected when, color)")
        color = item.get("color")
        if color not in COLORS:
            problems.append(f"{where}.color: must be one of {', '.join(COLORS)}")
        cond = _condition(item.get("when"), f"{where}.when", problems)
        if cond is not None and color in COLORS:
            out.append(ColorRule(cond, str(color)))
    return tuple(out)


def _condition(raw: Any, path: str, problems: list[str]) -> Condition | None:
    if not isinstance(raw, Mapping) or not raw:
        problems.append(f"{path}: must be a non-empty mapping of conditions")
        return None
    values: dict[str, frozenset[str]] = {}
    flags: dict[str, bool] = {}
    for key, value in raw.items():
        if key in _LIST_CONDITIONS:
            items = _str_list(value, f"{path}.{key}", problems)
            values[key] = frozenset(x.casefold() for x in items)
        elif key in _BOOL_CONDITIONS:
            if not isinstance(value, bool):
                problems.append(f"{path}.{key}: must be true or false")
            else:
                flags[key] = value
        else:
            known = ", ".join((*_LIST_CONDITIONS, *_BOOL_CONDITIONS))
            problems.append(f"{path}.{key}: unknown condition (expected one of {known})")
    return Condition(values=values, flags=flags)


def _details(raw: Any, path: str, problems: list[str]) -> tuple[DetailRule, ...]:
    if not isinstance(raw, list):
        problems.append(f"{path}: must be a list")
        return ()
    out: list[DetailRule] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where}: must be a mapping")
            continue
        for key in item:
            if key not in ("category", "color", "rules", "default", "description"):
                problems.append(f"{where}.{key}: unknown key")
        category = item.get("category")
        if category not in CATEGORIES:
            problems.append(f"{where}.category: must be one of {', '.join(CATEGORIES)}")
        elif category in seen:
            problems.append(f"{where}.category: {category} appears more than once")
        else:
            seen.add(str(category))
        description = item.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{where}.description: must be a template string")
            description = ""
        _check_template(description, f"{where}.description", problems)
        color = item.get("color")
        rules: tuple[ColorRule, ...] = ()
        if "rules" in item:
            rules = _color_rules(item["rules"], f"{where}.rules", problems)
        default = item.get("default", "green")
        if default not in COLORS:
            problems.append(f"{where}.default: must be one of {', '.join(COLORS)}")
        if color is None and "rules" not in item:
            problems.append(
                f"{where}: needs 'color' ({', '.join((*DETAIL_COLOR_SOURCES, *COLORS))}) or 'rules'"
            )
        elif color is not None and color not in (*DETAIL_COLOR_SOURCES, *COLORS):
            problems.append(f"{where}.color: must be one of {', '.join((*DETAIL_COLOR_SOURCES, *COLORS))}")
        out.append(
            DetailRule(
                category=str(category),
                description=description,
                color_source=str(color) if color is not None else None,
                rules=rules,
                default=str(default),
            )
        )
    return tuple(out)


def _check_template(template: str, path: str, problems: list[str]) -> None:
    # Only plain {name} fields from TEMPLATE_FIELDS: no attribute/index access, no conversions, so a
    # template can neither reach into objects nor fail at run time.
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        problems.append(f"{path}: bad template ({exc})")
        return
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            problems.append(
                f"{path}: unknown field {{{name}}} (allowed: {', '.join(sorted(TEMPLATE_FIELDS))})"
            )
        elif spec or conversion:
            problems.append(f"{path}: field {{{name}}} may not have a format spec or conversion")
