"""The sandbox's in-memory Kantata account and the API behaviour over it (CONTRACT.md §3, §4, §6, §7).

``SandboxState`` holds the objects and answers API calls as ``(status, body)`` pairs; the HTTP layer in
``server.py`` only routes and encodes. Every public method takes the state's lock, so the threaded server
can call it from any thread. Refusals raise ``ApiError`` carrying Kantata's error body.

Choices where Kantata's documentation is silent (also in docs/kantata-sandbox.md):
- Ids come from one counter shared by all object types, so an id of one type never names an object of
  another type (a client that mixes them up gets a 404/422 instead of a silent wrong match).
- A new task status set gets the four default statuses named after their categories, positions 0..3.
- Positions are kept contiguous from 0 (acts_as_list style): inserting at a position shifts the others.
- Lists are ordered: status reports newest first (id descending); task status sets and external references
  by id ascending unless ``order`` says otherwise (external references default ``last_synced_at:desc``);
  custom task statuses by set, then position; workspaces and stories ``updated_at:desc`` (Kantata's default).
- A story's status is a status NAME matched exactly (case-sensitive) against its workspace's set, or against
  the four defaults when the workspace has none; a category's default status is its first status by position.
- Timestamps come from a clock that never repeats a value, so "newest" is always well defined.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, NamedTuple

COLORS: Final = ("green", "yellow", "red")
REPORT_CATEGORIES: Final = ("Scope", "Budget", "Schedule", "Client")
STATUS_CATEGORIES: Final = ("not started", "started", "needs info", "completed")
REFERENCE_STATUSES: Final = ("pending", "successful", "failed")
# The subject types Kantata lists for external references (CONTRACT §6.5). Kept apart from the client's own
# list on purpose: the sandbox stands for Kantata, so a mistake in the client's list must not hide here.
SUBJECT_TYPES: Final = frozenset({
    "Assignment", "BillingMilestone", "CustomField", "CustomFieldChoice", "CustomFieldSet",
    "CustomFieldValue", "Estimate", "EstimateScenario", "EstimateScenarioResource", "Expense",
    "ExpenseBudget", "Invoice", "Participation", "Post", "RateCard", "Role", "Skill", "StatusReport",
    "Story", "StoryAllocationDay", "Submission", "SurveyAnswer", "SurveyQuestion", "SurveyResponse",
    "SurveyTemplate", "TimeEntry", "TimeOffEntry", "User", "Vendor", "Workspace", "WorkspaceAllocation",
    "WorkspaceGroup", "WorkspaceResource",
})  # fmt: skip
# creator/updater are accepted (the spec lists them) but side-load nothing: the sandbox has no users.
REPORT_INCLUDES: Final = ("workspace", "external_references", "creator", "updater")
STORY_TYPES: Final = ("task", "deliverable", "milestone", "issue")
STORY_PRIORITIES: Final = ("low", "normal", "high", "critical")
# The includes a story models; creator/assignees/followers are accepted but side-load nothing (no users).
STORY_INCLUDES: Final = ("workspace", "external_references", "creator", "assignees", "followers")
# Every optional field Kantata lists for stories is accepted; only custom_task_status_id is rendered.
STORY_OPTIONAL_FIELDS: Final = (
    "custom_task_status_id", "read_only", "can_edit", "can_post", "archived_editable", "is_time_trackable_type",
    "has_out_of_bounds_sads", "can_align_time", "formatted_description", "parsed_description",
    "render_description_markdown",
)  # fmt: skip
STORY_ORDER_FIELDS: Final = ("updated_at", "created_at", "due_date", "start_date", "position")
MAX_DESCRIPTION_CHARS: Final = 999  # "must be less than 1000 characters"
MAX_PER_PAGE: Final = 200
DEFAULT_PER_PAGE: Final = 20
# Words Kantata's `matching` filter skips (CONTRACT.md §6.6 lists "a, an, and, the, of, …").
# The response map of each subject type the sandbox models (``include=subject`` on external references).
SUBJECT_MAPS: Final = {"StatusReport": "status_reports", "Workspace": "workspaces", "Story": "stories"}
STOP_WORDS: Final = frozenset(
    {"a", "an", "and", "the", "of", "or", "in", "on", "at", "to", "for", "by", "with"}
)


class ApiError(Exception):
    """A refusal the API answers with: ``status`` and Kantata's ``{"errors": [...]}`` body."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{status}: {'; '.join(e['message'] for e in errors)}")
        self.status = status
        self.errors = errors

    @property
    def body(self) -> dict[str, Any]:
        return {"errors": self.errors}


def bad_request(message: str) -> ApiError:
    return ApiError(400, [{"type": "system", "message": message}])


def not_found(what: str = "Page") -> ApiError:
    return ApiError(404, [{"type": "system", "message": f"{what} not found"}])


def invalid(field_name: str, message: str) -> dict[str, str]:
    return {"type": "validation", "field": field_name, "message": message}


def _iso(ts: datetime) -> str:
    return ts.isoformat(timespec="seconds")


def _parse_time(name: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 date-time; got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _truthy(name: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise bad_request(f"{name} must be true or false; got {value!r}")


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _is_date(value: Any) -> bool:
    """``YYYY-MM-DD`` and a real calendar day."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _mode(query: Mapping[str, str], show: str, only: str) -> str:
    """``include``/``only``/``exclude`` from a pair of switches like show_deleted / only_deleted."""
    if only in query and _truthy(only, query[only]):
        return "only"
    if show in query and _truthy(show, query[show]):
        return "include"
    return "exclude"


def _visible(mode: str, flag: bool) -> bool:
    return mode == "include" or (mode == "only") == flag


@dataclass(slots=True)
class Workspace:
    id: str
    title: str
    archived: bool
    created_at: datetime
    updated_at: datetime
    task_status_set_id: str | None = None


@dataclass(slots=True)
class StatusReport:
    id: str
    workspace_id: str
    color: str
    description: str
    details: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class TaskStatusSet:
    id: str
    name: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class CustomTaskStatus:
    id: str
    status: str
    category: str
    position: int
    status_set_id: str
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class ExternalReference:
    id: str
    subject_type: str
    subject_id: int
    service_name: str
    service_model: str
    service_model_ref: str
    status: str | None
    external_link: str | None
    external_status: str | None
    external_message: str | None
    locked: bool
    last_synced_at: datetime
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Story:
    """A task. ``custom_status_id`` names its custom status when its workspace has a set (the name shown is
    that status's current name); without a set it is None and ``status`` holds one of the four defaults.
    ``state`` is always the category of the status."""

    id: str
    workspace_id: str
    title: str
    description: str | None
    story_type: str
    priority: str
    status: str
    state: str
    custom_status_id: str | None
    start_date: str | None
    due_date: str | None
    archived: bool
    project_plan: bool
    percentage_complete: int
    position: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class StatusChoice(NamedTuple):
    """A status a story can be put in: the custom status id (None without a set), its name, its category."""

    custom_status_id: str | None
    name: str
    category: str


@dataclass(slots=True)
class WorkspaceTaskStatusSet:
    id: str
    workspace_id: str
    status_set_id: str
    created_at: datetime
    updated_at: datetime


# Renders the included associations of some objects: map name -> id -> object.
type Side = Callable[[Iterable[Any], set[str]], dict[str, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class Page:
    offset: int
    size: int
    number: int


@dataclass(slots=True)
class SandboxState:
    """The account: maps from string id to object, readable by tests (``state.status_reports["12"]``)."""

    workspaces: dict[str, Workspace] = field(default_factory=dict)
    status_reports: dict[str, StatusReport] = field(default_factory=dict)
    task_status_sets: dict[str, TaskStatusSet] = field(default_factory=dict)
    custom_task_statuses: dict[str, CustomTaskStatus] = field(default_factory=dict)
    external_references: dict[str, ExternalReference] = field(default_factory=dict)
    workspace_task_status_sets: dict[str, WorkspaceTaskStatusSet] = field(default_factory=dict)
    stories: dict[str, Story] = field(default_factory=dict)
    account_default_set_id: str | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    _next_id: int = 100
    _last_time: datetime = field(default_factory=lambda: datetime(2000, 1, 1, tzinfo=UTC))

    # ---- infrastructure -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every object (the id counter keeps counting, so ids are never reused in one run)."""
        with self.lock:
            for store in (
                self.workspaces,
                self.status_reports,
                self.task_status_sets,
                self.custom_task_statuses,
                self.external_references,
                self.workspace_task_status_sets,
                self.stories,
            ):
                store.clear()
            self.account_default_set_id = None

    def _new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def _now(self) -> datetime:
        # Strictly increasing, so created_at/updated_at order is total even within one microsecond.
        now = datetime.now(UTC)
        if now <= self._last_time:
            now = self._last_time + timedelta(microseconds=1)
        self._last_time = now
        return now

    def add_workspace(self, title: str, *, workspace_id: str | None = None, archived: bool = False) -> str:
        """Seed a workspace (Kantata's API cannot create one here). New workspaces get the account default
        task status set, as in Kantata. Raises ValueError on an empty title, a non-numeric or taken id."""
        if not isinstance(title, str) or not title.strip():
            raise ValueError("a workspace needs a non-empty title")
        with self.lock:
            if workspace_id is None:
                workspace_id = self._new_id()
            workspace_id = str(workspace_id)
            if not workspace_id.isdigit():
                raise ValueError(f"workspace ids are numeric strings; got {workspace_id!r}")
            if workspace_id in self.workspaces:
                raise ValueError(f"workspace {workspace_id} already exists")
            self._next_id = max(self._next_id, int(workspace_id))
            now = self._now()
            self.workspaces[workspace_id] = Workspace(
                id=workspace_id,
                title=title,
                archived=archived,
                created_at=now,
                updated_at=now,
                task_status_set_id=self.account_default_set_id,
            )
            return workspace_id

    # ---- shared helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _page(query: Mapping[str, str]) -> Page:
        def number(name: str, default: int, minimum: int) -> int:
            raw = query.get(name)
            if raw is None or raw == "":
                return default
            try:
                value = int(raw)
            except ValueError:
                raise bad_request(f"{name} must be an integer; got {raw!r}") from None
            if value < minimum:
                raise bad_request(f"{name} must be >= {minimum}; got {value}")
            return value

        if "limit" in query and "offset" in query:
            limit = min(number("limit", DEFAULT_PER_PAGE, 1), MAX_PER_PAGE)
            offset = number("offset", 0, 0)
            return Page(offset=offset, size=limit, number=offset // limit + 1)
        page = number("page", 1, 1)
        # Kantata caps per_page at 200; a larger value is capped rather than refused.
        per_page = min(number("per_page", DEFAULT_PER_PAGE, 1), MAX_PER_PAGE)
        return Page(offset=(page - 1) * per_page, size=per_page, number=page)

    @staticmethod
    def _includes(query: Mapping[str, str], allowed: Iterable[str]) -> set[str]:
        wanted = set(_csv(query.get("include")))
        unknown = sorted(wanted - set(allowed))
        if unknown:
            raise bad_request(f"Invalid include: {', '.join(unknown)}")
        return wanted

    @staticmethod
    def _envelope(
        key: str,
        rows: list[dict[str, Any]],
        *,
        total: int,
        page: Page,
        side: Mapping[str, dict[str, dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "count": total,
            "meta": {
                "count": total,
                "page_count": math.ceil(total / page.size) if page.size else 0,
                "page_number": page.number,
                "page_size": page.size,
            },
            "results": [{"key": key, "id": row["id"]} for row in rows],
            key: {row["id"]: row for row in rows},
        }
        for side_key, objects in (side or {}).items():
            # An included association can be of the primary type (then it shares the primary map).
            body.setdefault(side_key, {}).update(objects)
        return body

    def _renderers(self, key: str) -> tuple[Callable[[Any, set[str]], dict[str, Any]], Side]:
        """How objects of the map ``key`` are rendered, and which associations they side-load."""
        renderers: dict[str, tuple[Callable[[Any, set[str]], dict[str, Any]], Side]] = {
            "workspaces": (self._workspace_json, self._workspace_side),
            "status_reports": (self._report_json, self._report_side),
            "task_status_sets": (self._set_json, self._set_side),
            "custom_task_statuses": (self._status_json, self._status_side),
            "external_references": (self._ref_json, self._ref_side),
            "stories": (self._story_json, self._story_side),
        }
        return renderers[key]

    def _response(self, key: str, obj: Any, inc: set[str]) -> dict[str, Any]:
        """The envelope of one object (show, create, update) with its included associations."""
        render, side = self._renderers(key)
        page = Page(0, DEFAULT_PER_PAGE, 1)
        return self._envelope(key, [render(obj, inc)], total=1, page=page, side=side([obj], inc))

    def _listing(self, key: str, items: list[Any], query: Mapping[str, str], inc: set[str]) -> dict[str, Any]:
        """The envelope of one page of ``items`` (all matches, in order): ``count`` is the total."""
        render, side = self._renderers(key)
        page = self._page(query)
        chosen = items[page.offset : page.offset + page.size]
        rows = [render(obj, inc) for obj in chosen]
        return self._envelope(key, rows, total=len(items), page=page, side=side(chosen, inc))

    @staticmethod
    def _get[T](store: Mapping[str, T], obj_id: str, what: str) -> T:
        found = store.get(obj_id)
        if found is None:
            raise not_found(what)
        return found

    @staticmethod
    def _only(query: Mapping[str, str]) -> set[str] | None:
        return set(_csv(query.get("only"))) if "only" in query else None

    @staticmethod
    def _time_filters(query: Mapping[str, str], obj: Any) -> bool:
        for name, attr, after in (
            ("created_after", "created_at", True),
            ("created_before", "created_at", False),
            ("updated_after", "updated_at", True),
            ("updated_before", "updated_at", False),
        ):
            if query.get(name):
                bound = _parse_time(name, query[name])
                value = getattr(obj, attr)
                if (after and not value > bound) or (not after and not value < bound):
                    return False
        return True

    def _refs_of(self, subject_type: str, subject_id: str) -> list[ExternalReference]:
        refs = [
            r
            for r in self.external_references.values()
            if r.subject_type == subject_type and str(r.subject_id) == subject_id
        ]
        return sorted(refs, key=lambda r: int(r.id))

    def _ref_filters(self, query: Mapping[str, str], subject_type: str, subject_id: str) -> bool:
        """The ``external_reference_*`` filters of /status_reports, /workspaces and /stories: one reference of
        the subject must meet all of them at once."""
        refs = self._refs_of(subject_type, subject_id)
        has = query.get("has_external_references")
        if has is not None and _truthy("has_external_references", has) != bool(refs):
            return False
        without = query.get("without_external_reference_service_name")
        if without and any(r.service_name == without for r in refs):
            return False
        exact = {
            "external_reference_service_name": "service_name",
            "external_reference_service_model": "service_model",
            # Typed integer in the spec; compared as a string here so non-numeric refs still work.
            "external_reference_service_model_ref": "service_model_ref",
            "external_reference_status": "status",
            "external_reference_external_status": "external_status",
            "external_reference_external_message": "external_message",
        }
        wanted = {attr: query[name] for name, attr in exact.items() if name in query}
        many = set(_csv(query.get("external_reference_service_model_refs")))
        if "external_reference_service_model_refs" in query and len(many) > MAX_PER_PAGE:
            raise bad_request("external_reference_service_model_refs takes at most 200 ids")
        if not wanted and "external_reference_service_model_refs" not in query:
            return True
        return any(
            all(getattr(r, attr) == value for attr, value in wanted.items())
            and ("external_reference_service_model_refs" not in query or r.service_model_ref in many)
            for r in refs
        )

    # ---- workspaces -----------------------------------------------------------------------------------

    def _workspace_json(self, ws: Workspace, inc: set[str]) -> dict[str, Any]:
        status_set = self.task_status_sets.get(ws.task_status_set_id or "")
        row: dict[str, Any] = {
            "id": ws.id,
            "title": ws.title,
            "archived": ws.archived,
            "created_at": _iso(ws.created_at),
            "updated_at": _iso(ws.updated_at),
            "task_status_set_id": status_set.id if status_set else None,
            "task_status_set_name": status_set.name if status_set else None,
            # The statuses a story in this workspace can take: the set's, else the four defaults.
            "task_statuses": [s.status for s in self._statuses_of(status_set.id)]
            if status_set
            else list(STATUS_CATEGORIES),
        }
        if "external_references" in inc:
            row["external_reference_ids"] = [r.id for r in self._refs_of("Workspace", ws.id)]
        if "status_reports" in inc:
            row["status_report_ids"] = [r.id for r in self._reports_of(ws.id)]
        return row

    def _workspace_side(self, workspaces: Iterable[Workspace], inc: set[str]) -> dict[str, dict[str, Any]]:
        side: dict[str, dict[str, Any]] = {}
        for ws in workspaces:
            if "external_references" in inc:
                refs = self._refs_of("Workspace", ws.id)
                side.setdefault("external_references", {}).update(
                    {r.id: self._ref_json(r, set()) for r in refs}
                )
            if "status_reports" in inc:
                reports = self._reports_of(ws.id)
                side.setdefault("status_reports", {}).update(
                    {r.id: self._report_json(r, set()) for r in reports}
                )
        return side

    @staticmethod
    def _archived_visible(query: Mapping[str, str], ws: Workspace) -> bool:
        mode = query.get("archived")
        if mode is not None and mode not in ("only", "exclude", "include"):
            raise bad_request(f"archived must be only, exclude or include; got {mode!r}")
        if mode is None:
            include = "include_archived" in query and _truthy("include_archived", query["include_archived"])
            mode = "include" if include else "exclude"
        return mode == "include" or (mode == "only") == ws.archived

    @staticmethod
    def _matches_title(text: str, title: str) -> bool:
        words = [w for w in re.findall(r"\w+", title.lower()) if w not in STOP_WORDS]
        terms = [t for t in re.findall(r"\w+", text.lower()) if t not in STOP_WORDS]
        return all(any(w.startswith(t) for w in words) for t in terms)

    def list_workspaces(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("external_references", "status_reports"))
            only = self._only(query)
            items = [
                ws
                for ws in self.workspaces.values()
                if (only is None or ws.id in only)
                and self._archived_visible(query, ws)
                and ("matching" not in query or self._matches_title(query["matching"], ws.title))
                and self._time_filters(query, ws)
                and self._ref_filters(query, "Workspace", ws.id)
            ]
            order = query.get("order", "updated_at:desc")
            field_name, _, direction = order.partition(":")
            if field_name not in ("updated_at", "created_at", "title", "id") or direction not in (
                "asc",
                "desc",
                "",
            ):
                raise bad_request(f"Invalid order: {order!r}")
            items.sort(
                key=lambda w: (
                    w.title.lower() if field_name == "title" else getattr(w, field_name),
                    int(w.id),
                )
            )
            if direction == "desc":
                items.reverse()
            return self._listing("workspaces", items, query, inc)

    def show_workspace(self, workspace_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("external_references", "status_reports"))
            ws = self.workspaces.get(workspace_id)
            # Default filters apply to the show route too: an archived workspace is a 404 unless asked for.
            if ws is None or not self._archived_visible(query, ws):
                raise not_found("Workspace")
            return self._response("workspaces", ws, inc)

    # ---- status reports -------------------------------------------------------------------------------

    def _reports_of(self, workspace_id: str) -> list[StatusReport]:
        reports = [r for r in self.status_reports.values() if r.workspace_id == workspace_id]
        return sorted(reports, key=lambda r: -int(r.id))

    def _report_json(self, report: StatusReport, inc: set[str]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": report.id,
            "color": report.color,
            "description": report.description,
            "details": [dict(d) for d in report.details],
            "created_at": _iso(report.created_at),
            "updated_at": _iso(report.updated_at),
        }
        if "workspace" in inc:
            row["workspace_id"] = report.workspace_id
        if "external_references" in inc:
            row["external_reference_ids"] = [r.id for r in self._refs_of("StatusReport", report.id)]
        return row

    def _report_side(self, reports: Iterable[StatusReport], inc: set[str]) -> dict[str, dict[str, Any]]:
        return self._workspace_item_side("StatusReport", reports, inc)

    def _workspace_item_side(
        self, subject_type: str, items: Iterable[StatusReport | Story], inc: set[str]
    ) -> dict[str, dict[str, Any]]:
        """The side-loaded workspace and external references of status reports or stories."""
        side: dict[str, dict[str, Any]] = {}
        for item in items:
            if "workspace" in inc and item.workspace_id in self.workspaces:
                ws = self.workspaces[item.workspace_id]
                side.setdefault("workspaces", {})[ws.id] = self._workspace_json(ws, set())
            if "external_references" in inc:
                refs = self._refs_of(subject_type, item.id)
                side.setdefault("external_references", {}).update(
                    {r.id: self._ref_json(r, set()) for r in refs}
                )
        return side

    def list_status_reports(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, REPORT_INCLUDES)
            only = self._only(query)
            items = [
                r
                for r in self.status_reports.values()
                if (only is None or r.id in only)
                and ("workspace_id" not in query or r.workspace_id == query["workspace_id"])
                and self._time_filters(query, r)
                and self._ref_filters(query, "StatusReport", r.id)
            ]
            items.sort(key=lambda r: -int(r.id))  # newest first
            return self._listing("status_reports", items, query, inc)

    def show_status_report(self, report_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, REPORT_INCLUDES)
            report = self._get(self.status_reports, report_id, "Status report")
            return self._response("status_reports", report, inc)

    @staticmethod
    def _check_details(raw: Any, errors: list[dict[str, str]]) -> list[dict[str, Any]]:
        if not isinstance(raw, list):
            errors.append(invalid("details", "details must be an array of {category, color, description}"))
            return []
        details: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in raw:
            if not isinstance(item, Mapping):
                errors.append(invalid("details", "each detail must be an object"))
                continue
            category, color = item.get("category"), item.get("color")
            if category not in REPORT_CATEGORIES:
                errors.append(
                    invalid(
                        "details.category",
                        f"category must be one of {', '.join(REPORT_CATEGORIES)}; got {category!r}",
                    )
                )
            elif category in seen:
                errors.append(invalid("details.category", f"category {category} appears more than once"))
            else:
                seen.add(category)
            if color not in COLORS:
                errors.append(
                    invalid("details.color", f"color must be one of {', '.join(COLORS)}; got {color!r}")
                )
            description = item.get("description")
            if description is not None and not isinstance(description, str):
                errors.append(invalid("details.description", "description must be a string"))
            details.append({"category": category, "color": color, "description": description})
        return details

    @staticmethod
    def _check_inline_ref(
        raw: Any, errors: list[dict[str, str]], *, with_status: bool = False
    ) -> dict[str, Any] | None:
        """The inline ``external_reference`` of a write. ``with_status``: the form carries ``status`` (stories
        do, status reports do not: CONTRACT §6.1, §6.7)."""
        if not isinstance(raw, Mapping):
            errors.append(invalid("external_reference", "external_reference must be a single object"))
            return None
        for name in ("service_name", "service_model", "service_model_ref"):
            value = raw.get(name)
            if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
                errors.append(invalid(f"external_reference.{name}", f"{name} can't be blank"))
        if "locked" in raw and not isinstance(raw["locked"], bool):
            errors.append(invalid("external_reference.locked", "locked must be true or false"))
        if with_status and "status" in raw and raw["status"] not in REFERENCE_STATUSES:
            errors.append(
                invalid(
                    "external_reference.status",
                    f"status must be one of {', '.join(REFERENCE_STATUSES)}; got {raw['status']!r}",
                )
            )
        return dict(raw)

    def create_status_report(self, fields: Mapping[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, REPORT_INCLUDES)
            errors: list[dict[str, str]] = []
            workspace_id = fields.get("workspace_id")
            if workspace_id is None or str(workspace_id).strip() == "":
                errors.append(invalid("workspace_id", "workspace_id can't be blank"))
            elif str(workspace_id) not in self.workspaces or self.workspaces[str(workspace_id)].archived:
                errors.append(invalid("workspace_id", f"workspace {workspace_id} was not found"))
            color = fields.get("color")
            if color is None:
                errors.append(invalid("color", "color can't be blank"))
            elif color not in COLORS:
                errors.append(invalid("color", f"color must be one of {', '.join(COLORS)}; got {color!r}"))
            description = fields.get("description")
            if not isinstance(description, str):
                errors.append(invalid("description", "description can't be blank"))
            details = self._check_details(fields.get("details", []), errors)
            ref = (
                self._check_inline_ref(fields["external_reference"], errors)
                if "external_reference" in fields
                else None
            )
            if errors:
                raise ApiError(422, errors)
            now = self._now()
            report = StatusReport(
                id=self._new_id(),
                workspace_id=str(workspace_id),
                color=str(color),
                description=str(description),
                details=details,
                created_at=now,
                updated_at=now,
            )
            self.status_reports[report.id] = report
            if ref is not None:
                self._upsert_ref("StatusReport", int(report.id), ref)
            return self._response("status_reports", report, inc)

    def update_status_report(
        self, report_id: str, fields: Mapping[str, Any], query: Mapping[str, str]
    ) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, REPORT_INCLUDES)
            report = self._get(self.status_reports, report_id, "Status report")
            errors: list[dict[str, str]] = []
            if "workspace_id" in fields and str(fields["workspace_id"]) != report.workspace_id:
                # Kantata does not accept workspace_id on update; refusing (rather than ignoring) tells a
                # client that it tried to move a report, which Kantata would not do.
                errors.append(invalid("workspace_id", "a status report cannot be moved to another workspace"))
            if "color" in fields and fields["color"] not in COLORS:
                errors.append(
                    invalid("color", f"color must be one of {', '.join(COLORS)}; got {fields['color']!r}")
                )
            if "description" in fields and not isinstance(fields["description"], str):
                errors.append(invalid("description", "description must be a string"))
            details = self._check_details(fields["details"], errors) if "details" in fields else None
            ref = (
                self._check_inline_ref(fields["external_reference"], errors)
                if "external_reference" in fields
                else None
            )
            if errors:
                raise ApiError(422, errors)
            if "color" in fields:
                report.color = fields["color"]
            if "description" in fields:
                report.description = fields["description"]
            if details is not None:
                report.details = details  # replaces the whole list: left-out categories are gone
            report.updated_at = self._now()
            if ref is not None:
                self._upsert_ref("StatusReport", int(report.id), ref)
            return self._response("status_reports", report, inc)

    def delete_status_report(self, report_id: str) -> None:
        with self.lock:
            self._get(self.status_reports, report_id, "Status report")
            del self.status_reports[report_id]
            for ref in self._refs_of("StatusReport", report_id):
                del self.external_references[ref.id]

    # ---- task status sets -----------------------------------------------------------------------------

    def _statuses_of(self, set_id: str) -> list[CustomTaskStatus]:
        statuses = [s for s in self.custom_task_statuses.values() if s.status_set_id == set_id]
        return sorted(statuses, key=lambda s: (s.position, int(s.id)))

    def _set_json(self, status_set: TaskStatusSet, inc: set[str]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": status_set.id,
            "name": status_set.name,
            "created_at": _iso(status_set.created_at),
            "updated_at": _iso(status_set.updated_at),
        }
        if "custom_task_statuses" in inc:
            row["custom_task_status_ids"] = [s.id for s in self._statuses_of(status_set.id)]
        return row

    def _set_side(self, sets: Iterable[TaskStatusSet], inc: set[str]) -> dict[str, dict[str, Any]]:
        side: dict[str, dict[str, Any]] = {}
        if "custom_task_statuses" in inc:
            side["custom_task_statuses"] = {}
            for status_set in sets:
                for status in self._statuses_of(status_set.id):
                    side["custom_task_statuses"][status.id] = self._status_json(status, set())
        return side

    def list_task_status_sets(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("custom_task_statuses",))
            only = self._only(query)
            items = sorted(
                (s for s in self.task_status_sets.values() if only is None or s.id in only),
                key=lambda s: int(s.id),
            )
            return self._listing("task_status_sets", items, query, inc)

    def show_task_status_set(self, set_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("custom_task_statuses",))
            return self._response(
                "task_status_sets", self._get(self.task_status_sets, set_id, "Task status set"), inc
            )

    @staticmethod
    def _check_name(fields: Mapping[str, Any]) -> str:
        name = fields.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ApiError(422, [invalid("name", "name can't be blank")])
        return name

    def create_task_status_set(self, fields: Mapping[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("custom_task_statuses",))
            name = self._check_name(fields)
            now = self._now()
            status_set = TaskStatusSet(id=self._new_id(), name=name, created_at=now, updated_at=now)
            self.task_status_sets[status_set.id] = status_set
            for category in STATUS_CATEGORIES:
                self._add_status(status_set.id, category, category, now)
            return self._response("task_status_sets", status_set, inc)

    def update_task_status_set(
        self, set_id: str, fields: Mapping[str, Any], query: Mapping[str, str]
    ) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("custom_task_statuses",))
            status_set = self._get(self.task_status_sets, set_id, "Task status set")
            status_set.name = self._check_name(fields)
            status_set.updated_at = self._now()
            return self._response("task_status_sets", status_set, inc)

    def delete_task_status_set(self, set_id: str) -> None:
        with self.lock:
            self._get(self.task_status_sets, set_id, "Task status set")
            users = sorted(
                (w.id for w in self.workspaces.values() if w.task_status_set_id == set_id), key=int
            )
            if users:
                raise ApiError(
                    422,
                    [invalid("base", f"task status set {set_id} is in use by workspaces {', '.join(users)}")],
                )
            if self.account_default_set_id == set_id:
                raise ApiError(422, [invalid("base", f"task status set {set_id} is the account default")])
            del self.task_status_sets[set_id]
            for status in self._statuses_of(set_id):
                del self.custom_task_statuses[status.id]

    def make_account_default(self, set_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("custom_task_statuses",))
            status_set = self._get(self.task_status_sets, set_id, "Task status set")
            self.account_default_set_id = set_id
            return self._response("task_status_sets", status_set, inc)

    # ---- custom task statuses -------------------------------------------------------------------------

    def _status_json(self, status: CustomTaskStatus, inc: set[str]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": status.id,
            "status": status.status,
            "category": status.category,
            "position": status.position,
            "status_set_id": int(status.status_set_id),
            "created_at": _iso(status.created_at),
            "updated_at": _iso(status.updated_at),
        }
        if "task_status_set" in inc:
            row["task_status_set_id"] = status.status_set_id
        return row

    def _status_side(self, statuses: Iterable[CustomTaskStatus], inc: set[str]) -> dict[str, dict[str, Any]]:
        side: dict[str, dict[str, Any]] = {}
        if "task_status_set" in inc:
            side["task_status_sets"] = {}
            for status in statuses:
                status_set = self.task_status_sets[status.status_set_id]
                side["task_status_sets"][status_set.id] = self._set_json(status_set, set())
        return side

    def _renumber(
        self, set_id: str, moved: CustomTaskStatus | None = None, position: int | None = None
    ) -> None:
        """Keep positions contiguous from 0; put ``moved`` at ``position`` (clamped), shifting the others."""
        others = [s for s in self._statuses_of(set_id) if s is not moved]
        if moved is not None and position is not None:
            others.insert(max(0, min(position, len(others))), moved)
        for index, status in enumerate(others):
            status.position = index

    def _add_status(self, set_id: str, name: str, category: str, now: datetime) -> CustomTaskStatus:
        """A new status at the end of its set."""
        position = len(self._statuses_of(set_id))
        status = CustomTaskStatus(self._new_id(), name, category, position, set_id, now, now)
        self.custom_task_statuses[status.id] = status
        return status

    def _name_taken(self, set_id: str, name: str, except_id: str | None = None) -> bool:
        return any(
            s.status.casefold() == name.casefold() and s.id != except_id for s in self._statuses_of(set_id)
        )

    def list_custom_task_statuses(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("task_status_set",))
            only = self._only(query)
            items = sorted(
                (s for s in self.custom_task_statuses.values() if only is None or s.id in only),
                key=lambda s: (int(s.status_set_id), s.position, int(s.id)),
            )
            return self._listing("custom_task_statuses", items, query, inc)

    def show_custom_task_status(self, status_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("task_status_set",))
            return self._response(
                "custom_task_statuses",
                self._get(self.custom_task_statuses, status_id, "Custom task status"),
                inc,
            )

    def create_custom_task_status(
        self, fields: Mapping[str, Any], query: Mapping[str, str]
    ) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("task_status_set",))
            errors: list[dict[str, str]] = []
            name, category, raw_set = (
                fields.get("status"),
                fields.get("category"),
                fields.get("status_set_id"),
            )
            set_id = str(raw_set) if isinstance(raw_set, int | str) and not isinstance(raw_set, bool) else ""
            if raw_set is None or set_id == "":
                errors.append(invalid("status_set_id", "status_set_id can't be blank"))
            elif set_id not in self.task_status_sets:
                errors.append(invalid("status_set_id", f"task status set {raw_set} was not found"))
            if not isinstance(name, str) or not name.strip():
                errors.append(invalid("status", "status can't be blank"))
            elif set_id in self.task_status_sets and self._name_taken(set_id, name):
                errors.append(invalid("status", f"status {name!r} already exists in this set"))
            if category not in STATUS_CATEGORIES:
                errors.append(
                    invalid(
                        "category",
                        f"category must be one of {', '.join(STATUS_CATEGORIES)}; got {category!r}",
                    )
                )
            if errors:
                raise ApiError(422, errors)
            status = self._add_status(set_id, str(name), str(category), self._now())
            return self._response("custom_task_statuses", status, inc)

    def update_custom_task_status(
        self, status_id: str, fields: Mapping[str, Any], query: Mapping[str, str]
    ) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("task_status_set",))
            status = self._get(self.custom_task_statuses, status_id, "Custom task status")
            errors: list[dict[str, str]] = []
            if "category" in fields and fields["category"] != status.category:
                errors.append(invalid("category", "the category of a custom task status cannot be changed"))
            for name in ("status_set_id", "task_status_set_id"):
                if name in fields and str(fields[name]) != status.status_set_id:
                    errors.append(invalid(name, "a custom task status cannot be moved to another set"))
            if "status" in fields:
                new_name = fields["status"]
                if not isinstance(new_name, str) or not new_name.strip():
                    errors.append(invalid("status", "status can't be blank"))
                elif self._name_taken(status.status_set_id, new_name, except_id=status.id):
                    errors.append(invalid("status", f"status {new_name!r} already exists in this set"))
            position = fields.get("position")
            if "position" in fields and (
                isinstance(position, bool) or not isinstance(position, int) or position < 0
            ):
                errors.append(invalid("position", f"position must be an integer >= 0; got {position!r}"))
            if errors:
                raise ApiError(422, errors)
            if "status" in fields:
                status.status = fields["status"]
            if "position" in fields:
                self._renumber(status.status_set_id, status, int(fields["position"]))
            status.updated_at = self._now()
            return self._response("custom_task_statuses", status, inc)

    def delete_custom_task_status(self, status_id: str) -> None:
        with self.lock:
            status = self._get(self.custom_task_statuses, status_id, "Custom task status")
            same_category = [
                s for s in self._statuses_of(status.status_set_id) if s.category == status.category
            ]
            if len(same_category) == 1:
                # Tasks fall back to their category's default status when theirs is deleted, so a set keeps
                # at least one status per category (an assumption: Kantata's docs imply but do not state it).
                raise ApiError(
                    422, [invalid("base", f"the last {status.category!r} status of a set cannot be deleted")]
                )
            del self.custom_task_statuses[status_id]
            self._renumber(status.status_set_id)
            # Tasks that used it fall back to the default status of its category (CONTRACT §6.3).
            fallback = self._category_default(status.status_set_id, status.category)
            now = self._now()
            for story in self.stories.values():
                if story.custom_status_id == status_id:
                    self._put_in_status(story, fallback, now)

    # ---- stories (tasks) ------------------------------------------------------------------------------

    def _set_of(self, workspace_id: str) -> str | None:
        """The task status set assigned to a workspace, or None (then the four defaults apply)."""
        workspace = self.workspaces.get(workspace_id)
        set_id = workspace.task_status_set_id if workspace is not None else None
        return set_id if set_id in self.task_status_sets else None

    def _status_names(self, set_id: str | None) -> list[str]:
        return [s.status for s in self._statuses_of(set_id)] if set_id else list(STATUS_CATEGORIES)

    def _named_status(self, set_id: str | None, name: str) -> StatusChoice | None:
        """The status called ``name`` (exact match) among the set's statuses or the four defaults."""
        if set_id is None:
            return StatusChoice(None, name, name) if name in STATUS_CATEGORIES else None
        found = next((s for s in self._statuses_of(set_id) if s.status == name), None)
        return None if found is None else StatusChoice(found.id, found.status, found.category)

    def _category_default(self, set_id: str | None, category: str) -> StatusChoice:
        """A category's default status: the first of that category by position (a set always keeps one per
        category, see delete_custom_task_status), or the default named after the category without a set."""
        if set_id is None:
            return StatusChoice(None, category, category)
        found = next(s for s in self._statuses_of(set_id) if s.category == category)
        return StatusChoice(found.id, found.status, found.category)

    @staticmethod
    def _put_in_status(story: Story, choice: StatusChoice, now: datetime) -> None:
        story.custom_status_id, story.status, story.state = choice
        story.updated_at = now

    def _status_name(self, story: Story) -> str:
        # A renamed custom status renames the status of its tasks: the name is read through the id.
        custom = self.custom_task_statuses.get(story.custom_status_id or "")
        return custom.status if custom is not None else story.status

    def _story_json(self, story: Story, inc: set[str]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": story.id,
            "title": story.title,
            "description": story.description,
            "story_type": story.story_type,
            "status": self._status_name(story),
            "state": story.state,
            # The Story schema types priority integer, yet its description and every request body use these
            # words; the sandbox answers the words (CONTRACT §6.7 gotcha 5; openapi.py allows both).
            "priority": story.priority,
            "archived": story.archived,
            "project_plan": story.project_plan,
            "percentage_complete": story.percentage_complete,
            "start_date": story.start_date,
            "due_date": story.due_date,
            "position": story.position,
            "ancestry_depth": 0,
            "sub_story_count": 0,
            "ancestor_ids": [],
            "created_at": _iso(story.created_at),
            "updated_at": _iso(story.updated_at),
            "deleted_at": _iso(story.deleted_at) if story.deleted_at else None,
        }
        if "workspace" in inc:
            row["workspace_id"] = story.workspace_id
        if "external_references" in inc:
            row["external_reference_ids"] = [r.id for r in self._refs_of("Story", story.id)]
        if "custom_task_status_id" in inc:  # an optional field, not an include (see _story_inc)
            custom = story.custom_status_id
            row["custom_task_status_id"] = int(custom) if custom in self.custom_task_statuses else None
        return row

    def _story_side(self, stories: Iterable[Story], inc: set[str]) -> dict[str, dict[str, Any]]:
        return self._workspace_item_side("Story", stories, inc)

    def _story_inc(self, query: Mapping[str, str]) -> set[str]:
        """The includes and the optional fields asked for, as one set (their names never collide)."""
        wanted = set(_csv(query.get("optional_fields")))
        unknown = sorted(wanted - set(STORY_OPTIONAL_FIELDS))
        if unknown:
            raise bad_request(f"Invalid optional_fields: {', '.join(unknown)}")
        return self._includes(query, STORY_INCLUDES) | wanted

    @staticmethod
    def _check_story_fields(fields: Mapping[str, Any], errors: list[dict[str, str]]) -> None:
        """The fields POST and PUT share, when present: description, dates, type, priority, switches."""
        description = fields.get("description")
        if "description" in fields and description is not None:
            if not isinstance(description, str):
                errors.append(invalid("description", "description must be a string"))
            elif len(description) > MAX_DESCRIPTION_CHARS:
                errors.append(invalid("description", "description must be less than 1000 characters"))
        for name in ("start_date", "due_date"):
            value = fields.get(name)
            if name in fields and value is not None and not _is_date(value):
                errors.append(
                    invalid(name, f"{name} must be a date like 2026-11-24 (YYYY-MM-DD); got {value!r}")
                )
        for name, allowed in (("story_type", STORY_TYPES), ("priority", STORY_PRIORITIES)):
            if name in fields and fields[name] not in allowed:
                errors.append(
                    invalid(name, f"{name} must be one of {', '.join(allowed)}; got {fields[name]!r}")
                )
        for name in ("archived", "project_plan"):
            if name in fields and not isinstance(fields[name], bool):
                errors.append(invalid(name, f"{name} must be true or false"))
        pct = fields.get("percentage_complete")
        if "percentage_complete" in fields and (
            isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100
        ):
            errors.append(invalid("percentage_complete", f"percentage_complete must be 0..100; got {pct!r}"))

    def _check_status_fields(
        self, fields: Mapping[str, Any], set_id: str | None, errors: list[dict[str, str]]
    ) -> tuple[StatusChoice | None, bool]:
        """The status a write asks for, and whether it came from ``state`` alone. ``status`` (a name of the
        workspace's set, or of the four defaults) wins; ``state`` (a category) is then ignored, even a bad one."""
        if "status" in fields:
            name = fields["status"]
            if not isinstance(name, str) or not name.strip():
                errors.append(invalid("status", "status can't be blank"))
                return None, False
            choice = self._named_status(set_id, name)
            if choice is None:
                where = (
                    f"task status set {self.task_status_sets[set_id].name!r}"
                    if set_id
                    else "the default statuses (the workspace has no task status set)"
                )
                allowed = ", ".join(repr(n) for n in self._status_names(set_id))
                errors.append(invalid("status", f"status {name!r} is not in {where}; use one of {allowed}"))
            return choice, False
        if "state" in fields:
            state = fields["state"]
            if state not in STATUS_CATEGORIES:
                errors.append(
                    invalid("state", f"state must be one of {', '.join(STATUS_CATEGORIES)}; got {state!r}")
                )
                return None, True
            return self._category_default(set_id, str(state)), True
        return None, False

    def _live_story(self, story_id: str, *, show_deleted: bool = False) -> Story:
        story = self.stories.get(story_id)
        # Soft-deleted stories are hidden on show/update/delete unless asked for (show_deleted, show only).
        if story is None or (story.deleted_at is not None and not show_deleted):
            raise not_found("Story")
        return story

    def list_stories(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._story_inc(query)
            only = self._only(query)
            deleted = _mode(query, "show_deleted", "only_deleted")
            archived = query.get("archived")
            if archived is not None and archived not in ("only", "exclude", "include"):
                raise bad_request(f"archived must be only, exclude or include; got {archived!r}")
            archived = archived or _mode(query, "show_archived", "only_archived")
            todos = _mode(query, "show_todos", "only_todos")
            from_archived = "show_from_archived_workspaces" in query and _truthy(
                "show_from_archived_workspaces", query["show_from_archived_workspaces"]
            )
            projects = set(_csv(query.get("with_projects"))) if "with_projects" in query else None
            statuses = set(_csv(query.get("by_status"))) if "by_status" in query else None
            types = set(_csv(query.get("story_types"))) if "story_types" in query else None
            priorities = set(_csv(query.get("priority"))) if "priority" in query else None
            items = [
                s
                for s in self.stories.values()
                if (only is None or s.id in only)
                and _visible(deleted, s.deleted_at is not None)
                and _visible(archived, s.archived)
                and _visible(todos, not s.project_plan)
                and (from_archived or not self.workspaces[s.workspace_id].archived)
                and ("workspace_id" not in query or s.workspace_id == query["workspace_id"])
                and (projects is None or s.workspace_id in projects)
                and (statuses is None or self._status_name(s) in statuses)
                and ("story_type" not in query or s.story_type == query["story_type"])
                and (types is None or s.story_type in types)
                and (priorities is None or s.priority in priorities)
                and self._time_filters(query, s)
                and self._ref_filters(query, "Story", s.id)
            ]
            order = query.get("order", "updated_at:desc")
            field_name, _, direction = order.partition(":")
            if field_name not in STORY_ORDER_FIELDS or direction not in ("asc", "desc", ""):
                raise bad_request(
                    f"Invalid order: {order!r}; the sandbox sorts by {', '.join(STORY_ORDER_FIELDS)} (:asc|:desc)"
                )

            # Unset dates sort last ascending (and so first descending), as in PostgreSQL.
            def key(story: Story) -> tuple[bool, Any, int]:
                value = getattr(story, field_name)
                return (value is None, 0 if value is None else value, int(story.id))

            items.sort(key=key)
            if direction == "desc":
                items.reverse()
            return self._listing("stories", items, query, inc)

    def show_story(self, story_id: str, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._story_inc(query)
            show_deleted = "show_deleted" in query and _truthy("show_deleted", query["show_deleted"])
            return self._response("stories", self._live_story(story_id, show_deleted=show_deleted), inc)

    def create_story(self, fields: Mapping[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._story_inc(query)
            errors: list[dict[str, str]] = []
            raw_ws = fields.get("workspace_id")
            workspace: Workspace | None = None
            if raw_ws is None or raw_ws == "":
                errors.append(invalid("workspace_id", "workspace_id can't be blank"))
            elif isinstance(raw_ws, bool) or not (
                isinstance(raw_ws, int) or (isinstance(raw_ws, str) and raw_ws.isdigit())
            ):
                errors.append(invalid("workspace_id", f"workspace_id must be an integer; got {raw_ws!r}"))
            elif str(raw_ws) not in self.workspaces or self.workspaces[str(raw_ws)].archived:
                errors.append(invalid("workspace_id", f"workspace {raw_ws} was not found"))
            else:
                workspace = self.workspaces[str(raw_ws)]
            title = fields.get("title")
            if not isinstance(title, str) or not title.strip():
                errors.append(invalid("title", "title can't be blank"))
            self._check_story_fields(fields, errors)
            # Which names are valid depends on the workspace: without one, the status is not judged.
            set_id = self._set_of(workspace.id) if workspace is not None else None
            choice = self._check_status_fields(fields, set_id, errors)[0] if workspace is not None else None
            ref = (
                self._check_inline_ref(fields["external_reference"], errors, with_status=True)
                if "external_reference" in fields
                else None
            )
            if errors:
                raise ApiError(422, errors)
            assert workspace is not None
            if choice is None:  # new tasks start in the default status of "not started"
                choice = self._category_default(set_id, "not started")
            now = self._now()
            story = Story(
                id=self._new_id(),
                workspace_id=workspace.id,
                title=str(title),
                description=fields.get("description"),
                story_type=fields.get("story_type", "task"),
                priority=fields.get("priority", "normal"),
                status=choice.name,
                state=choice.category,
                custom_status_id=choice.custom_status_id,
                start_date=fields.get("start_date"),
                due_date=fields.get("due_date"),
                archived=fields.get("archived", False),
                project_plan=fields.get("project_plan", True),
                percentage_complete=fields.get("percentage_complete", 0),
                position=sum(1 for s in self.stories.values() if s.workspace_id == workspace.id),
                created_at=now,
                updated_at=now,
            )
            self.stories[story.id] = story
            if ref is not None:
                self._upsert_ref("Story", int(story.id), ref)
            return self._response("stories", story, inc)

    def update_story(
        self, story_id: str, fields: Mapping[str, Any], query: Mapping[str, str]
    ) -> dict[str, Any]:
        with self.lock:
            inc = self._story_inc(query)
            story = self._live_story(story_id)
            errors: list[dict[str, str]] = []
            if "workspace_id" in fields and str(fields["workspace_id"]) != story.workspace_id:
                # Not among Kantata's PUT fields (CONTRACT §6.7): refused out loud, as for status reports.
                errors.append(invalid("workspace_id", "a story cannot be moved to another workspace"))
            if "title" in fields and (not isinstance(fields["title"], str) or not fields["title"].strip()):
                errors.append(invalid("title", "title can't be blank"))
            self._check_story_fields(fields, errors)
            choice, by_state = self._check_status_fields(fields, self._set_of(story.workspace_id), errors)
            ref = (
                self._check_inline_ref(fields["external_reference"], errors, with_status=True)
                if "external_reference" in fields
                else None
            )
            if errors:
                raise ApiError(422, errors)
            now = self._now()
            # project_plan, checklist and attachment_ids are POST-only in Kantata: ignored on PUT.
            for name in (
                "title", "description", "story_type", "priority", "start_date", "due_date", "archived",
                "percentage_complete",
            ):  # fmt: skip
                if name in fields:
                    setattr(story, name, fields[name])
            # state alone keeps the status when the task is already in that category.
            if choice is not None and not (by_state and choice.category == story.state):
                self._put_in_status(story, choice, now)
            story.updated_at = now
            if ref is not None:
                self._upsert_ref("Story", int(story.id), ref)
            return self._response("stories", story, inc)

    def delete_story(self, story_id: str) -> None:
        """Soft delete: ``deleted_at`` is set; the story and its references stay readable with show_deleted."""
        with self.lock:
            story = self._live_story(story_id)
            story.deleted_at = story.updated_at = self._now()

    # ---- external references --------------------------------------------------------------------------

    def _ref_json(self, ref: ExternalReference, inc: set[str]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": ref.id,
            "subject_type": ref.subject_type,
            "subject_id": ref.subject_id,
            "service_name": ref.service_name,
            "service_model": ref.service_model,
            "service_model_ref": ref.service_model_ref,
            "status": ref.status,
            "external_link": ref.external_link,
            "external_status": ref.external_status,
            "external_message": ref.external_message,
            "locked": ref.locked,
            "last_synced_at": _iso(ref.last_synced_at),
            "created_at": _iso(ref.created_at),
            "updated_at": _iso(ref.updated_at),
        }
        if "subject" in inc:
            key = SUBJECT_MAPS.get(ref.subject_type)
            if key is not None:
                row["subject_ref"] = {"key": key, "id": str(ref.subject_id)}
        return row

    def _ref_side(self, refs: Iterable[ExternalReference], inc: set[str]) -> dict[str, dict[str, Any]]:
        side: dict[str, dict[str, Any]] = {}
        if "subject" in inc:
            for ref in refs:
                sid = str(ref.subject_id)
                if ref.subject_type == "StatusReport" and sid in self.status_reports:
                    side.setdefault("status_reports", {})[sid] = self._report_json(
                        self.status_reports[sid], set()
                    )
                elif ref.subject_type == "Workspace" and sid in self.workspaces:
                    side.setdefault("workspaces", {})[sid] = self._workspace_json(self.workspaces[sid], set())
                elif ref.subject_type == "Story" and sid in self.stories:
                    side.setdefault("stories", {})[sid] = self._story_json(self.stories[sid], set())
        return side

    def list_external_references(self, query: Mapping[str, str]) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("subject",))
            subject_type = query.get("subject_type")
            if not subject_type:
                raise ApiError(422, [invalid("subject_type", "subject_type is required")])
            if subject_type not in SUBJECT_TYPES:
                raise ApiError(
                    422, [invalid("subject_type", f"subject_type {subject_type!r} is not supported")]
                )
            if query.get("status") and query["status"] not in REFERENCE_STATUSES:
                raise bad_request(f"status must be one of {', '.join(REFERENCE_STATUSES)}")
            only = self._only(query)
            exact = (
                "subject_id",
                "service_name",
                "service_model",
                "service_model_ref",
                "status",
                "external_status",
                "external_message",
            )
            items = [
                r
                for r in self.external_references.values()
                if r.subject_type == subject_type
                and (only is None or r.id in only)
                and all(str(getattr(r, name)) == query[name] for name in exact if name in query)
                and self._time_filters(query, r)
            ]
            order = query.get("order", "last_synced_at:desc")
            field_name, _, direction = order.partition(":")
            if field_name not in ("created_at", "last_synced_at") or direction not in ("asc", "desc"):
                raise bad_request(f"Invalid order: {order!r}")
            items.sort(key=lambda r: (getattr(r, field_name), int(r.id)), reverse=direction == "desc")
            return self._listing("external_references", items, query, inc)

    def _upsert_ref(self, subject_type: str, subject_id: int, fields: Mapping[str, Any]) -> ExternalReference:
        """Create or update the reference of ``subject`` with this ``service_name`` (the unique pair)."""
        now = self._now()
        existing = next(
            (
                r
                for r in self._refs_of(subject_type, str(subject_id))
                if r.service_name == fields["service_name"]
            ),
            None,
        )
        if existing is None:
            existing = ExternalReference(
                id=self._new_id(),
                subject_type=subject_type,
                subject_id=subject_id,
                service_name=str(fields["service_name"]),
                service_model=str(fields["service_model"]),
                service_model_ref=str(fields["service_model_ref"]),
                status=None,
                external_link=None,
                external_status=None,
                external_message=None,
                locked=False,
                last_synced_at=now,
                created_at=now,
                updated_at=now,
            )
            self.external_references[existing.id] = existing
        existing.service_model = str(fields["service_model"])
        existing.service_model_ref = str(fields["service_model_ref"])
        for name in ("external_link", "external_status", "external_message"):
            if name in fields:
                setattr(existing, name, None if fields[name] is None else str(fields[name]))
        if "status" in fields:
            existing.status = fields["status"]
        elif existing.status is None:
            existing.status = "pending"  # assumption: Kantata's default for a reference without a status
        if "locked" in fields:
            existing.locked = bool(fields["locked"])
        existing.last_synced_at = now
        existing.updated_at = now
        return existing

    def create_or_update_external_reference(
        self, fields: Mapping[str, Any], query: Mapping[str, str]
    ) -> dict[str, Any]:
        with self.lock:
            inc = self._includes(query, ("subject",))
            errors: list[dict[str, str]] = []
            subject_type, raw_subject_id = fields.get("subject_type"), fields.get("subject_id")
            if subject_type not in SUBJECT_TYPES:
                errors.append(
                    invalid("subject_type", f"subject_type must be a supported type; got {subject_type!r}")
                )
            subject_id: int | None = None
            if isinstance(raw_subject_id, int) and not isinstance(raw_subject_id, bool):
                subject_id = raw_subject_id
            elif isinstance(raw_subject_id, str) and raw_subject_id.isdigit():
                subject_id = int(raw_subject_id)
            else:
                errors.append(invalid("subject_id", f"subject_id must be an integer; got {raw_subject_id!r}"))
            for name in ("service_name", "service_model", "service_model_ref"):
                value = fields.get(name)
                if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
                    errors.append(invalid(name, f"{name} can't be blank"))
            if "status" in fields and fields["status"] not in REFERENCE_STATUSES:
                errors.append(invalid("status", f"status must be one of {', '.join(REFERENCE_STATUSES)}"))
            if "locked" in fields and not isinstance(fields["locked"], bool):
                errors.append(invalid("locked", "locked must be true or false"))
            # For the subject types the sandbox models, the subject must exist (a soft-deleted story does not).
            stores: dict[str, Mapping[str, Any]] = {
                "StatusReport": self.status_reports,
                "Workspace": self.workspaces,
                "Story": {k: v for k, v in self.stories.items() if v.deleted_at is None},
            }
            if (
                subject_id is not None
                and subject_type in stores
                and str(subject_id) not in stores[str(subject_type)]
            ):
                errors.append(invalid("subject_id", f"{subject_type} {subject_id} was not found"))
            if errors:
                raise ApiError(422, errors)
            assert subject_id is not None
            ref = self._upsert_ref(str(subject_type), subject_id, fields)
            return self._response("external_references", ref, inc)

    def delete_external_reference(self, ref_id: str) -> None:
        with self.lock:
            if ref_id not in self.external_references:
                raise not_found("External reference")
            del self.external_references[ref_id]

    # ---- workspace task status sets -------------------------------------------------------------------

    def bulk_update_workspace_task_status_sets(self, items: Any) -> dict[str, Any]:
        """Assign sets to workspaces, all or nothing: any failing item fails the whole request (422, one
        error per failing item, nothing changed)."""
        with self.lock:
            if not isinstance(items, list) or not items:
                raise ApiError(422, [invalid("workspace_task_status_sets", "give a non-empty array")])
            errors: list[dict[str, str]] = []
            pairs: list[tuple[str, str]] = []
            for index, item in enumerate(items):
                if not isinstance(item, Mapping):
                    errors.append(invalid("workspace_task_status_sets", f"item {index} must be an object"))
                    continue
                ws_id, set_id = item.get("workspace_id"), item.get("status_set_id")
                label = f"Workspace {ws_id}" if ws_id is not None else f"item {index}"
                if ws_id is None or str(ws_id) not in self.workspaces:
                    errors.append(invalid("workspace_id", f"{label}: workspace not found"))
                    continue
                if set_id is None or str(set_id) not in self.task_status_sets:
                    errors.append(invalid("status_set_id", f"{label}: task status set {set_id} not found"))
                    continue
                pairs.append((str(ws_id), str(set_id)))
            if errors:
                raise ApiError(422, errors)
            now = self._now()
            rows: list[dict[str, Any]] = []
            for ws_id, set_id in pairs:
                workspace = self.workspaces[ws_id]
                if workspace.task_status_set_id != set_id:
                    # Its tasks move to the new set's default status of the category they were in.
                    for story in self.stories.values():
                        if story.workspace_id == ws_id:
                            self._put_in_status(story, self._category_default(set_id, story.state), now)
                workspace.task_status_set_id = set_id
                workspace.updated_at = now
                link = next(
                    (w for w in self.workspace_task_status_sets.values() if w.workspace_id == ws_id), None
                )
                if link is None:
                    link = WorkspaceTaskStatusSet(self._new_id(), ws_id, set_id, now, now)
                    self.workspace_task_status_sets[link.id] = link
                link.status_set_id, link.updated_at = set_id, now
                rows.append(
                    {
                        "id": link.id,
                        "workspace_id": int(ws_id),
                        "status_set_id": int(set_id),
                        "created_at": _iso(link.created_at),
                        "updated_at": _iso(link.updated_at),
                    }
                )
            return self._envelope(
                "workspace_task_status_sets",
                rows,
                total=len(rows),
                page=Page(0, max(len(rows), DEFAULT_PER_PAGE), 1),
            )

    # ---- introspection --------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every object as API-shaped JSON (all associations included): ``GET /_sandbox/state``."""
        with self.lock:
            return {
                "account_default_set_id": self.account_default_set_id,
                "workspaces": {
                    k: self._workspace_json(v, {"external_references", "status_reports"})
                    for k, v in self.workspaces.items()
                },
                "status_reports": {
                    k: self._report_json(v, {"workspace", "external_references"})
                    for k, v in self.status_reports.items()
                },
                "task_status_sets": {
                    k: self._set_json(v, {"custom_task_statuses"}) for k, v in self.task_status_sets.items()
                },
                "custom_task_statuses": {
                    k: self._status_json(v, {"task_status_set"}) for k, v in self.custom_task_statuses.items()
                },
                "external_references": {
                    k: self._ref_json(v, set()) for k, v in self.external_references.items()
                },
                "stories": {
                    k: self._story_json(v, {"workspace", "external_references", "custom_task_status_id"})
                    for k, v in self.stories.items()
                },
            }
