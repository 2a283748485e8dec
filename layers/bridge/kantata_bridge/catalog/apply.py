"""Reading Kantata's catalog state and carrying a plan out.

``apply_catalog`` re-reads Kantata and re-plans before each phase that follows a write (see plan.py), so every
step works with real ids, and a run that failed half-way is finished by the next one: each step is a single
write that the next plan either sees done or plans again. The first error stops the run (later steps may depend on it);
what was done, what failed and Kantata's reasons are in the result.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from kantata_bridge.catalog.config import CatalogConfig, status_key
from kantata_bridge.catalog.pins import CatalogPins, pins_from_sets
from kantata_bridge.catalog.plan import LAST_PHASE, Action, ActionKind, Plan, plan_catalog
from kantata_bridge.kantata.errors import KantataError, NotFoundError, ValidationError
from kantata_bridge.kantata.models import (
    CustomTaskStatus,
    TaskStatusSet,
    Workspace,
    WorkspaceTaskStatusSet,
)


class CatalogKantata(Protocol):
    """The part of ``KantataClient`` the catalog sync uses (a fake in unit tests)."""

    def list_task_status_sets(self, *, include_statuses: bool = True) -> Iterator[TaskStatusSet]: ...

    def create_task_status_set(self, name: str) -> TaskStatusSet: ...

    def update_task_status_set(self, set_id: str | int, name: str) -> TaskStatusSet: ...

    def make_account_default(self, set_id: str | int) -> TaskStatusSet: ...

    def create_custom_task_status(
        self, status_set_id: str | int, status: str, category: str
    ) -> CustomTaskStatus: ...

    def update_custom_task_status(
        self, status_id: str | int, *, status: str | None = None, position: int | None = None
    ) -> CustomTaskStatus: ...

    def delete_custom_task_status(self, status_id: str | int) -> None: ...

    def get_workspace(self, workspace_id: str | int) -> Workspace: ...

    def bulk_update_workspace_task_status_sets(
        self, assignments: Sequence[WorkspaceTaskStatusSet]
    ) -> list[WorkspaceTaskStatusSet]: ...


@dataclass(frozen=True, slots=True)
class CatalogState:
    """What the planner needs from Kantata: every set with its statuses, and the configured workspaces."""

    sets: tuple[TaskStatusSet, ...]
    workspaces: Mapping[int, Workspace | None]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One action as carried out: ``ok``, or the error Kantata gave (``details``: its per-item reasons)."""

    action: Action
    ok: bool
    error: str | None = None
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = self.action.to_dict()
        out["result"] = ("re-sent" if self.action.ensure else "done") if self.ok else "failed"
        if self.error:
            out["error"] = self.error
        if self.details:
            out["details"] = list(self.details)
        return out


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What an apply did. ``planned``: the plan at the start; ``remaining``: a plan made after the last step
    (no changes in it when the run converged; None when the run stopped on an error); ``pins``: the ids to
    keep for the next run (None when it stopped)."""

    planned: Plan
    outcomes: tuple[Outcome, ...] = ()
    remaining: Plan | None = None
    errors: tuple[str, ...] = field(default=())
    pins: CatalogPins | None = None  # the ids after a completed run, to store for the next one

    @property
    def ok(self) -> bool:
        return not self.errors and all(o.ok for o in self.outcomes)

    @property
    def changed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.ok and not o.action.ensure)


def read_state(kantata: CatalogKantata, config: CatalogConfig) -> CatalogState:
    """Read every task status set (with statuses) and each configured workspace.

    A workspace Kantata does not find (404, e.g. archived) maps to None. Other KantataErrors propagate.
    """
    sets = tuple(kantata.list_task_status_sets(include_statuses=True))
    workspaces: dict[int, Workspace | None] = {}
    for desired in config.sets:
        for workspace_id in desired.workspaces:
            try:
                workspaces[workspace_id] = kantata.get_workspace(workspace_id)
            except NotFoundError:
                workspaces[workspace_id] = None
    return CatalogState(sets, workspaces)


def plan_from_kantata(
    kantata: CatalogKantata, config: CatalogConfig, *, prune: bool = False, pins: CatalogPins | None = None
) -> Plan:
    """Read Kantata and plan. Writes nothing. KantataError if Kantata cannot be read."""
    return _read_and_plan(kantata, config, prune=prune, pins=pins)[1]


def _read_and_plan(
    kantata: CatalogKantata, config: CatalogConfig, *, prune: bool, pins: CatalogPins | None
) -> tuple[CatalogState, Plan]:
    state = read_state(kantata, config)
    return state, plan_catalog(config, state.sets, prune=prune, workspaces=state.workspaces, pins=pins)


def apply_catalog(
    kantata: CatalogKantata,
    config: CatalogConfig,
    *,
    prune: bool = False,
    pins: CatalogPins | None = None,
    approved: Plan | None = None,
) -> ApplyResult:
    """Reconcile Kantata with the catalog, phase by phase, re-planning from Kantata before each phase.

    Never raises a KantataError from a write: the failed action and Kantata's reason are recorded and the run
    stops there (the next run re-plans and carries on). A KantataError while reading Kantata propagates, since
    nothing sensible can be planned without the state. ``approved``: the plan a person reviewed; when
    Kantata changed since, so the changes planned now differ, nothing is written and the result says why.
    """
    state, planned = _read_and_plan(kantata, config, prune=prune, pins=pins)
    if approved is not None and planned.changes != approved.changes:
        return ApplyResult(
            planned,
            errors=(
                "Kantata changed since the plan was shown, so the changes to make are not the ones approved; "
                "nothing was written. Run apply again to review the new plan.",
            ),
        )
    plan = planned
    outcomes: list[Outcome] = []
    # Statuses made in this run, by (set id, name key): a placeholder is deleted later in the same phase.
    created: dict[tuple[str, str], str] = {}
    # Re-read only after a write: planning is pure, so an unchanged Kantata would give the same plan again,
    # and every read is a GET per configured workspace (GET /workspaces has its own rate limit).
    written = False
    for phase in range(1, LAST_PHASE + 1):
        if written:
            state, plan = _read_and_plan(kantata, config, prune=prune, pins=pins)
            written = False
        for action in plan.actions:
            if action.phase != phase:
                continue
            outcome = _carry_out(kantata, action, created)
            outcomes.append(outcome)
            written = True
            if not outcome.ok:
                return ApplyResult(planned, tuple(outcomes), None, plan.errors)
    if written:
        state, plan = _read_and_plan(kantata, config, prune=prune, pins=pins)
    return ApplyResult(planned, tuple(outcomes), plan, plan.errors, pins_from_sets(config, state.sets))


class _NotReadyError(Exception):
    """A step lacks an id that an earlier phase should have made (Kantata changed under the run)."""


def _carry_out(kantata: CatalogKantata, action: Action, created: dict[tuple[str, str], str]) -> Outcome:
    try:
        _execute(kantata, action, created)
    except _NotReadyError as exc:
        return Outcome(action, ok=False, error=str(exc))
    except ValidationError as exc:
        details = tuple(f"{d.field}: {d.message}" if d.field else d.message for d in exc.errors if d.message)
        return Outcome(action, ok=False, error=str(exc), details=details)
    except KantataError as exc:
        return Outcome(action, ok=False, error=str(exc))
    return Outcome(action, ok=True)


def _require(value: str | None, what: str, action: Action) -> str:
    if value is None:
        # Apply re-plans before each phase, so later phases carry real ids, unless Kantata changed in between
        # (e.g. the set just created was deleted by someone else): stop, and let the next run re-plan.
        raise _NotReadyError(
            f"{action.kind.value} for set {action.set_name!r} has no {what}: Kantata changed during the run"
        )
    return value


def _execute(kantata: CatalogKantata, action: Action, created: dict[tuple[str, str], str]) -> None:
    kind = action.kind
    if kind is ActionKind.CREATE_SET:
        kantata.create_task_status_set(action.set_name)
    elif kind is ActionKind.RENAME_SET:
        kantata.update_task_status_set(_require(action.set_id, "set id", action), action.set_name)
    elif kind is ActionKind.RENAME_STATUS:
        kantata.update_custom_task_status(
            _require(action.status_id, "status id", action), status=_require(action.new_name, "name", action)
        )
    elif kind is ActionKind.CREATE_STATUS:
        set_id = _require(action.set_id, "set id", action)
        made = kantata.create_custom_task_status(
            set_id, _require(action.name, "name", action), _require(action.category, "category", action)
        )
        created[(set_id, status_key(made.status))] = made.id
    elif kind is ActionKind.DELETE_STATUS:
        status_id = action.status_id
        if status_id is None and action.set_id is not None and action.name is not None:
            status_id = created.get((action.set_id, status_key(action.name)))
        with contextlib.suppress(NotFoundError):  # already gone: what this step wanted
            kantata.delete_custom_task_status(_require(status_id, "status id", action))
    elif kind is ActionKind.REORDER:
        for move in action.moves:
            kantata.update_custom_task_status(move.status_id, position=move.position)
    elif kind is ActionKind.ASSIGN_WORKSPACES:
        status_set_id = int(_require(action.set_id, "set id", action))
        kantata.bulk_update_workspace_task_status_sets(
            [
                WorkspaceTaskStatusSet(workspace_id=w, status_set_id=status_set_id)
                for w in action.workspace_ids
            ]
        )
    elif kind is ActionKind.MAKE_DEFAULT:
        kantata.make_account_default(_require(action.set_id, "set id", action))
    else:  # pragma: no cover - every kind is handled above
        raise RuntimeError(f"unknown action {kind}")
