"""Typed Kantata OX objects and the enumerations Kantata checks (CONTRACT.md §6, §7).

Ids are strings in responses, as Kantata sends them; the few integer-typed fields (``status_set_id``,
``subject_id``, ``position``) stay integers. ``to_body()`` returns the fields of a write body, without the
singular wrapper key, which the client adds. Enumerations are checked before anything is sent
(``KantataValueError`` names the field, the bad value and the allowed ones).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, cast

from kantata_bridge.kantata.errors import KantataValueError

Color = Literal["green", "yellow", "red"]
ReportCategory = Literal["Scope", "Budget", "Schedule", "Client"]
StatusCategory = Literal["not started", "started", "needs info", "completed"]
ExternalReferenceStatus = Literal["pending", "successful", "failed"]

COLORS: Final[tuple[str, ...]] = ("green", "yellow", "red")
REPORT_CATEGORIES: Final[tuple[str, ...]] = ("Scope", "Budget", "Schedule", "Client")
STATUS_CATEGORIES: Final[tuple[str, ...]] = ("not started", "started", "needs info", "completed")
EXTERNAL_REFERENCE_STATUSES: Final[tuple[str, ...]] = ("pending", "successful", "failed")
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
class ExternalReference:
    """An external reference as Kantata returns it (``GET /external_references``, or included)."""

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

    @classmethod
    def from_api(cls, data: Mapping[str, Any], included: Included | None = None) -> ExternalReference:
        """``included`` is accepted (and unused) so every model builds from the same ``(object, maps)`` pair."""
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
        refs: tuple[ExternalReference, ...] = ()
        if included is not None:
            refs = tuple(
                ExternalReference.from_api(r)
                for r in (included.get("external_references", rid) for rid in ref_ids)
                if r is not None
            )
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


@dataclass(frozen=True, slots=True)
class Workspace:
    """A Kantata workspace (project), as far as the bridge reads it."""

    id: str
    title: str
    task_status_set_id: str | None = None
    task_status_set_name: str | None = None
    archived: bool | None = None
    external_reference_ids: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, data: Mapping[str, Any], included: Included | None = None) -> Workspace:
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            task_status_set_id=_str_or_none(data.get("task_status_set_id")),
            task_status_set_name=_str_or_none(data.get("task_status_set_name")),
            archived=data.get("archived"),
            external_reference_ids=_ids(data.get("external_reference_ids")),
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
