"""Typed Kantata OX objects and the enumerations Kantata checks (CONTRACT.md §6, §7).

Ids are strings in responses, as Kantata sends them; the few integer-typed fields (``status_set_id``,
``subject_id``, ``position``, a story's ``custom_task_status_id``) stay integers, and parsers accept either
spelling (CONTRACT §8.1). ``to_body()`` returns the fields of a write body, without the singular wrapper key,
which the client adds. Enumerations are checked before anything is sent (``KantataValueError`` names the
field, the bad value and the allowed ones).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final, Literal, cast

from kantata_bridge.kantata.errors import KantataValueError

Color = Literal["green", "yellow", "red"]
ReportCategory = Literal["Scope", "Budget", "Schedule", "Client"]
StatusCategory = Literal["not started", "started", "needs info", "completed"]
ExternalReferenceStatus = Literal["pending", "successful", "failed"]
StoryType = Literal["task", "deliverable", "milestone", "issue"]
StoryPriority = Literal["low", "normal", "high", "critical"]

COLORS: Final[tuple[str, ...]] = ("green", "yellow", "red")
REPORT_CATEGORIES: Final[tuple[str, ...]] = ("Scope", "Budget", "Schedule", "Client")
STATUS_CATEGORIES: Final[tuple[str, ...]] = ("not started", "started", "needs info", "completed")
EXTERNAL_REFERENCE_STATUSES: Final[tuple[str, ...]] = ("pending", "successful", "failed")
STORY_TYPES: Final[tuple[str, ...]] = ("task", "deliverable", "milestone", "issue")
STORY_PRIORITIES: Final[tuple[str, ...]] = ("low", "normal", "high", "critical")
# A story's description "must be less than 1000 characters" (CONTRACT §6.7).
MAX_STORY_DESCRIPTION_CHARS: Final = 999
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DIGITS = re.compile(r"[0-9]+")
# The ``subject_type`` values GET /external_references and create_or_update accept (CONTRACT §6.5).
EXTERNAL_REFERENCE_SUBJECT_TYPES: Final[tuple[str, ...]] = (
    "Assignment", "BillingMilestone", "CustomField", "CustomFieldChoice", "CustomFieldSet", "CustomFieldValue",
    "Estimate", "EstimateScenario", "EstimateScenarioResource", "Expense", "ExpenseBudget", "Invoice",
    "Participation", "Post", "RateCard", "Role", "Skill", "StatusReport", "Story", "StoryAllocationDay",
    "Submission", "SurveyAnswer", "SurveyQuestion", "SurveyResponse", "SurveyTemplate", "TimeEntry",
    "TimeOffEntry", "User", "Vendor", "Workspace", "WorkspaceAllocation", "WorkspaceGroup", "WorkspaceResource",
)  # fmt: skip
# The four statuses Kantata creates with every new task status set, in their order.
DEFAULT_STATUSES: Final[tuple[tuple[str, str], ...]] = tuple((c, c) for c in STATUS_CATEGORIES)


def check_enum(field_name: str, value: object, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise raise KantataValueError naming the field."""
    if not isinstance(value, str) or value not in allowed:
        raise KantataValueError(
            f"{field_name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}"
        )
    return value


def check_required(field_name: str, value: object) -> str:
    """Return a non-empty string ``value``; otherwise raise KantataValueError naming the field."""
    if not isinstance(value, str) or not value.strip():
        raise KantataValueError(f"{field_name} is required and must be a non-empty string; got {value!r}")
    return value


def check_date(field_name: str, value: object) -> str:
    """``YYYY-MM-DD`` for a ``datetime.date`` or a string already in that form (a real calendar day);
    otherwise raise KantataValueError naming the field. A ``datetime`` is refused: its time would be lost."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str) and _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise KantataValueError(f"{field_name} must be a date (YYYY-MM-DD); got {value!r}")


def check_id(field_name: str, value: object) -> int:
    """A Kantata id as the integer request bodies take (``7`` or ``"7"``); otherwise KantataValueError."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return int(value)
    raise KantataValueError(f"{field_name} must be a numeric Kantata id; got {value!r}")


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value)


def _drop_none(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if v is not None}


@dataclass(frozen=True, slots=True)
class StatusReportDetail:
    """One per-category line of a status report: category Scope/Budget/Schedule/Client, a colour, a text."""

    category: ReportCategory
    color: Color
    description: str = ""

    def validate(self) -> None:
        check_enum("details[].category", self.category, REPORT_CATEGORIES)
        check_enum("details[].color", self.color, COLORS)

    def to_body(self) -> dict[str, Any]:
        self.validate()
        return {"category": self.category, "color": self.color, "description": self.description}

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> StatusReportDetail:
        return cls(
            category=cast(ReportCategory, data.get("category", "")),
            color=cast(Color, data.get("color", "")),
            description=str(data.get("description") or ""),
        )


@dataclass(frozen=True, slots=True)
class InlineExternalReference:
    """The ``external_reference`` object accepted inline on a status report write (no ``status`` field)."""

    service_name: str
    service_model: str
    service_model_ref: str
    external_link: str | None = None
    external_status: str | None = None
    external_message: str | None = None
    locked: bool | None = None

    def to_body(self) -> dict[str, Any]:
        check_required("external_reference.service_name", self.service_name)
        check_required("external_reference.service_model", self.service_model)
        check_required("external_reference.service_model_ref", self.service_model_ref)
        return _drop_none(
            {
                "service_name": self.service_name,
                "service_model": self.service_model,
                "service_model_ref": self.service_model_ref,
                "external_link": self.external_link,
                "external_status": self.external_status,
                "external_message": self.external_message,
                "locked": self.locked,
            }
        )


@dataclass(frozen=True, slots=True)
class StoryExternalReference:
    """The ``external_reference`` object accepted inline on a story create or update. Unlike the status-report
    form it carries ``status`` (successful / pending / failed; CONTRACT §6.7). Kantata upserts it on the
    story + ``service_name``, so a later write with the same ``service_name`` updates the same reference."""

    service_name: str
    service_model: str
    service_model_ref: str
    status: ExternalReferenceStatus | None = None
    external_link: str | None = None
    external_status: str | None = None
    external_message: str | None = None
    locked: bool | None = None

    def to_body(self) -> dict[str, Any]:
        check_required("external_reference.service_name", self.service_name)
        check_required("external_reference.service_model", self.service_model)
        check_required("external_reference.service_model_ref", self.service_model_ref)
        if self.status is not None:
            check_enum("external_reference.status", self.status, EXTERNAL_REFERENCE_STATUSES)
        return _drop_none(
            {
                "service_name": self.service_name,
                "service_model": self.service_model,
                "service_model_ref": self.service_model_ref,
                "status": self.status,
                "external_link": self.external_link,
                "external_status": self.external_status,
                "external_message": self.external_message,
                "locked": self.locked,
            }
        )


@dataclass(frozen=True, slots=True)
class ExternalReference:
    """An external reference as Kantata returns it (``GET /external_references``, or included).

    With ``include=subject`` Kantata adds ``subject_ref`` (``(key, id)``, e.g. ``("workspaces", "7")``) and
    side-loads the subject; a workspace subject is then in ``workspace`` (None when Kantata left it out, for
    example because a default filter hides it). Without the include both are None.
    """

    id: str
    subject_type: str
    subject_id: int | None
    service_name: str
    service_model: str
    service_model_ref: str
    status: str | None = None
    external_link: str | None = None
    external_status: str | None = None
    external_message: str | None = None
    locked: bool | None = None
    last_synced_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    subject_ref: tuple[str, str] | None = None
    workspace: Workspace | None = field(default=None, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], included: Included | None = None) -> ExternalReference:
        """``included`` holds the side-loaded subject when the list was read with ``include=subject``."""
        raw_ref = data.get("subject_ref")
        subject_ref = None
        if isinstance(raw_ref, Mapping) and raw_ref.get("key") and raw_ref.get("id") is not None:
            subject_ref = (str(raw_ref["key"]), str(raw_ref["id"]))
        raw_workspace = (
            included.get("workspaces", subject_ref[1])
            if included is not None and subject_ref is not None and subject_ref[0] == "workspaces"
            else None
        )
        return cls(
            id=str(data["id"]),
            subject_type=str(data.get("subject_type", "")),
            subject_id=_int_or_none(data.get("subject_id")),
            service_name=str(data.get("service_name", "")),
            service_model=str(data.get("service_model", "")),
            service_model_ref=str(data.get("service_model_ref", "")),
            status=_str_or_none(data.get("status")),
            external_link=_str_or_none(data.get("external_link")),
            external_status=_str_or_none(data.get("external_status")),
            external_message=_str_or_none(data.get("external_message")),
            locked=data.get("locked"),
            last_synced_at=_str_or_none(data.get("last_synced_at")),
            created_at=_str_or_none(data.get("created_at")),
            updated_at=_str_or_none(data.get("updated_at")),
            subject_ref=subject_ref,
            # Built without the maps: the workspace's own references are not needed here (and not looped).
            workspace=None if raw_workspace is None else Workspace.from_api(raw_workspace),
        )


@dataclass(frozen=True, slots=True)
class ExternalReferenceUpsert:
    """Body of ``POST /external_references/create_or_update``."""

    subject_type: str
    subject_id: int
    service_name: str
    service_model: str
    service_model_ref: str
    status: ExternalReferenceStatus | None = None
    external_link: str | None = None
    external_status: str | None = None
    external_message: str | None = None
    locked: bool | None = None

    def to_body(self) -> dict[str, Any]:
        check_required("external_reference.subject_type", self.subject_type)
        check_required("external_reference.service_name", self.service_name)
        check_required("external_reference.service_model", self.service_model)
        check_required("external_reference.service_model_ref", self.service_model_ref)
        if self.status is not None:
            check_enum("external_reference.status", self.status, EXTERNAL_REFERENCE_STATUSES)
        return _drop_none(
            {
                "subject_type": self.subject_type,
                "subject_id": int(self.subject_id),
                "service_name": self.service_name,
                "service_model": self.service_model,
                "service_model_ref": self.service_model_ref,
                "status": self.status,
                "external_link": self.external_link,
                "external_status": self.external_status,
                "external_message": self.external_message,
                "locked": self.locked,
            }
        )


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A status report ("health report") on a Kantata workspace.

    For a create, leave ``id`` None and set ``workspace_id``, ``color``, ``description`` and optionally
    ``details`` and ``external_reference``. Reports read back carry ``id``, timestamps and, when included,
    ``external_reference_ids`` / ``external_references``.
    """

    workspace_id: str | None
    color: Color
    description: str
    details: tuple[StatusReportDetail, ...] = ()
    external_reference: InlineExternalReference | None = None
    id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    external_reference_ids: tuple[str, ...] = ()
    external_references: tuple[ExternalReference, ...] = field(default=(), compare=False)

    def to_body(self, *, for_update: bool = False) -> dict[str, Any]:
        """The ``status_report`` write body. On update ``workspace_id`` is left out (it cannot change)."""
        check_enum("color", self.color, COLORS)
        if not isinstance(self.description, str):
            raise KantataValueError("description is required and must be a string")
        seen: set[str] = set()
        for detail in self.details:
            if detail.category in seen:
                raise KantataValueError(f"details[].category {detail.category!r} appears more than once")
            seen.add(detail.category)
        body: dict[str, Any] = {"color": self.color, "description": self.description}
        if not for_update:
            body = {"workspace_id": str(check_required("workspace_id", self.workspace_id)), **body}
        if self.details:
            body["details"] = [d.to_body() for d in self.details]
        if self.external_reference is not None:
            body["external_reference"] = self.external_reference.to_body()
        return body

    @classmethod
    def from_api(cls, data: Mapping[str, Any], included: Included | None = None) -> StatusReport:
        ref_ids = _ids(data.get("external_reference_ids"))
        refs = _included_refs(ref_ids, included)
        return cls(
            id=str(data["id"]),
            workspace_id=_str_or_none(data.get("workspace_id")),
            color=cast(Color, data.get("color", "")),
            description=str(data.get("description") or ""),
            details=tuple(StatusReportDetail.from_api(d) for d in data.get("details") or ()),
            created_at=_str_or_none(data.get("created_at")),
            updated_at=_str_or_none(data.get("updated_at")),
            external_reference_ids=ref_ids,
            external_references=refs,
        )


@dataclass(frozen=True, slots=True)
class CustomTaskStatus:
    """A custom task status (``StatusSetOption``): a name within a set, a fixed category, a position."""

    id: str
    status: str
    category: StatusCategory
    position: int
    status_set_id: int
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], included: Included | None = None) -> CustomTaskStatus:
        """``included`` is accepted (and unused) so every model builds from the same ``(object, maps)`` pair."""
        return cls(
            id=str(data["id"]),
            status=str(data.get("status", "")),
            category=cast(StatusCategory, data.get("category", "")),
            position=int(data.get("position") or 0),
            status_set_id=int(data.get("status_set_id") or data.get("task_status_set_id") or 0),
            created_at=_str_or_none(data.get("created_at")),
            updated_at=_str_or_none(data.get("updated_at")),
        )


@dataclass(frozen=True, slots=True)
class TaskStatusSet:
    """A task status set. ``statuses`` is filled, ordered by position, when read with include."""

    id: str
    name: str
    custom_task_status_ids: tuple[str, ...] = ()
    statuses: tuple[CustomTaskStatus, ...] = ()
    created_at: str | None = None
    updated_at: str | None = None

    @classmethod
    def from_api(cls, data: Mapping[str, Any], included: Included | None = None) -> TaskStatusSet:
        ids = _ids(data.get("custom_task_status_ids"))
        statuses: list[CustomTaskStatus] = []
        if included is not None:
            for sid in ids:
                raw = included.get("custom_task_statuses", sid)
                if raw is not None:
                    statuses.append(CustomTaskStatus.from_api(raw))
        statuses.sort(key=lambda s: (s.position, int(s.id) if s.id.isdigit() else 0))
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            custom_task_status_ids=ids,
            statuses=tuple(statuses),
            created_at=_str_or_none(data.get("created_at")),
            updated_at=_str_or_none(data.get("updated_at")),
        )


def _included_refs(ref_ids: tuple[str, ...], included: Included | None) -> tuple[ExternalReference, ...]:
    """The side-loaded external references named by ``ref_ids``, in that order (missing ones skipped)."""
    if included is None:
        return ()
    found = (included.get("external_references", rid) for rid in ref_ids)
    return tuple(ExternalReference.from_api(r) for r in found if r is not None)


@dataclass(frozen=True, slots=True)
class Workspace:
    """A Kantata workspace (project), as far as the bridge reads it.

    ``task_statuses`` are the status names its tasks can take: those of its task status set
    (``task_status_set_id`` / ``task_status_set_name``), or the four defaults when it has none.
    ``external_references`` is filled when read with ``include=external_references``.
    """

    id: str
    title: str
    task_status_set_id: str | None = None
    task_status_set_name: str | None = None
    archived: bool | None = None
    external_reference_ids: tuple[str, ...] = ()
    task_statuses: tuple[str, ...] = ()
    external_references: tuple[ExternalReference, ...] = field(default=(), compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], included: Included | None = None) -> Workspace:
        ref_ids = _ids(data.get("external_reference_ids"))
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            task_status_set_id=_str_or_none(data.get("task_status_set_id")),
            task_status_set_name=_str_or_none(data.get("task_status_set_name")),
            archived=data.get("archived"),
            external_reference_ids=ref_ids,
            task_statuses=tuple(str(s) for s in data.get("task_statuses") or ()),
            external_references=_included_refs(ref_ids, included),
        )


def _description(value: object) -> str:
    if not isinstance(value, str):
        raise KantataValueError(f"description must be a string; got {type(value).__name__}")
    if len(value) > MAX_STORY_DESCRIPTION_CHARS:
        raise KantataValueError(f"description must be less than 1000 characters; got {len(value)}")
    return value


def _story_fields(
    *,
    story_type: object,
    priority: object,
    description: object,
    start_date: object,
    due_date: object,
    archived: object,
    external_reference: StoryExternalReference | None,
) -> dict[str, Any]:
    """The checked write fields a story create and update share (None: not sent)."""
    if archived is not None and not isinstance(archived, bool):
        raise KantataValueError(f"archived must be True or False; got {archived!r}")
    return _drop_none(
        {
            "story_type": None if story_type is None else check_enum("story_type", story_type, STORY_TYPES),
            "priority": None if priority is None else check_enum("priority", priority, STORY_PRIORITIES),
            "description": None if description is None else _description(description),
            "start_date": None if start_date is None else check_date("start_date", start_date),
            "due_date": None if due_date is None else check_date("due_date", due_date),
            "archived": archived,
            "external_reference": None if external_reference is None else external_reference.to_body(),
        }
    )


@dataclass(frozen=True, slots=True)
class NewStory:
    """What ``POST /stories`` creates: a task in ``workspace_id`` (sent as an integer). Fields left None are not
    sent, so Kantata's defaults apply: type task, priority normal, the default status of "not started".
    ``status`` is a status NAME of the workspace's task status set (or of the four defaults without a set);
    Kantata refuses other names with 422 on ``status``."""

    workspace_id: str | int
    title: str
    status: str | None = None
    story_type: StoryType | None = None
    description: str | None = None
    start_date: str | date | None = None
    due_date: str | date | None = None
    priority: StoryPriority | None = None
    archived: bool | None = None
    external_reference: StoryExternalReference | None = None

    def to_body(self) -> dict[str, Any]:
        """The ``story`` body. Raises KantataValueError for a missing title or workspace, an enumeration
        value outside Kantata's lists, a bad date or a description of 1000 characters or more."""
        body: dict[str, Any] = {
            "workspace_id": check_id("workspace_id", self.workspace_id),
            "title": check_required("title", self.title),
        }
        if self.status is not None:
            body["status"] = check_required("status", self.status)
        body.update(
            _story_fields(
                story_type=self.story_type,
                priority=self.priority,
                description=self.description,
                start_date=self.start_date,
                due_date=self.due_date,
                archived=self.archived,
                external_reference=self.external_reference,
            )
        )
        return body


@dataclass(frozen=True, slots=True)
class StoryUpdate:
    """What ``PUT /stories/{id}`` changes; fields left None are not sent (and so left as they are).

    ``status`` is a status NAME valid in the story's workspace; Kantata then sets ``state`` to its category.
    ``state`` (a category) moves the task to that category's default status. Kantata ignores ``state`` when
    ``status`` is sent, so giving both is refused here rather than silently half-applied.
    """

    status: str | None = None
    state: StatusCategory | None = None
    title: str | None = None
    description: str | None = None
    story_type: StoryType | None = None
    priority: StoryPriority | None = None
    start_date: str | date | None = None
    due_date: str | date | None = None
    archived: bool | None = None
    external_reference: StoryExternalReference | None = None

    def to_body(self) -> dict[str, Any]:
        """The ``story`` body. Raises KantataValueError when nothing would change, for both status and state,
        a blank title or status, and the value checks of ``NewStory.to_body``."""
        if self.status is not None and self.state is not None:
            raise KantataValueError(
                "give status or state, not both (Kantata ignores state when status is sent)"
            )
        body = _drop_none(
            {
                "status": None if self.status is None else check_required("status", self.status),
                "state": None if self.state is None else check_enum("state", self.state, STATUS_CATEGORIES),
                "title": None if self.title is None else check_required("title", self.title),
            }
        )
        body.update(
            _story_fields(
                story_type=self.story_type,
                priority=self.priority,
                description=self.description,
                start_date=self.start_date,
                due_date=self.due_date,
                archived=self.archived,
                external_reference=self.external_reference,
            )
        )
        if not body:
            raise KantataValueError("a story update needs at least one field to change")
        return body


@dataclass(frozen=True, slots=True)
class Story:
    """A Kantata story (task), as read back.

    ``status`` is the name of its status, ``state`` that status's category. ``custom_task_status_id`` is the
    id of its custom status (an integer, CONTRACT §6.7), None when its workspace has no custom set or when it
    was not asked for (``optional_fields``). ``workspace_id`` and ``workspace`` come with
    ``include=workspace``; ``external_reference_ids`` and ``external_references`` with
    ``include=external_references`` (the client sends both by default).
    """

    id: str
    title: str
    status: str | None = None
    state: str | None = None
    story_type: str | None = None
    workspace_id: str | None = None
    description: str | None = None
    priority: str | None = None
    start_date: str | None = None
    due_date: str | None = None
    archived: bool | None = None
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None
    custom_task_status_id: int | None = None
    external_reference_ids: tuple[str, ...] = ()
    external_references: tuple[ExternalReference, ...] = field(default=(), compare=False)
    workspace: Workspace | None = field(default=None, compare=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], included: Included | None = None) -> Story:
        ref_ids = _ids(data.get("external_reference_ids"))
        workspace_id = _str_or_none(data.get("workspace_id"))
        raw_workspace = (
            included.get("workspaces", workspace_id) if included is not None and workspace_id else None
        )
        return cls(
            id=str(data["id"]),
            title=str(data.get("title") or ""),
            status=_str_or_none(data.get("status")),
            state=_str_or_none(data.get("state")),
            story_type=_str_or_none(data.get("story_type")),
            workspace_id=workspace_id,
            description=_str_or_none(data.get("description")),
            # Typed integer in the Story schema, words everywhere else (CONTRACT §6.7 gotcha 5): kept as text.
            priority=_str_or_none(data.get("priority")),
            start_date=_str_or_none(data.get("start_date")),
            due_date=_str_or_none(data.get("due_date")),
            archived=data.get("archived"),
            created_at=_str_or_none(data.get("created_at")),
            updated_at=_str_or_none(data.get("updated_at")),
            deleted_at=_str_or_none(data.get("deleted_at")),
            custom_task_status_id=_int_or_none(data.get("custom_task_status_id")),
            external_reference_ids=ref_ids,
            external_references=_included_refs(ref_ids, included),
            workspace=None if raw_workspace is None else Workspace.from_api(raw_workspace, included),
        )


@dataclass(frozen=True, slots=True)
class WorkspaceTaskStatusSet:
    """One assignment of a task status set to a workspace (``workspace_task_status_sets/bulk_update``)."""

    workspace_id: int
    status_set_id: int

    def to_body(self) -> dict[str, Any]:
        return {"workspace_id": int(self.workspace_id), "status_set_id": int(self.status_set_id)}


class Included:
    """The top-level maps of a response envelope (primary objects and side-loaded associations)."""

    __slots__ = ("_maps",)

    def __init__(self, envelope: Mapping[str, Any]) -> None:
        self._maps = {k: v for k, v in envelope.items() if isinstance(v, Mapping) and k != "meta"}

    def get(self, key: str, obj_id: str | int) -> Mapping[str, Any] | None:
        """The object ``obj_id`` from the map ``key`` (ids are string keys), or None."""
        found = self._maps.get(key, {}).get(str(obj_id))
        return cast(Mapping[str, Any] | None, found)

    def all(self, key: str) -> list[Mapping[str, Any]]:
        return list(self._maps.get(key, {}).values())
