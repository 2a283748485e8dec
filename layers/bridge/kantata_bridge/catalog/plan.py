"""Planning: desired catalog + Kantata's current sets → the ordered actions that reconcile them.

``plan_catalog`` is a pure function. It reads nothing and writes nothing; ``apply.py`` does the I/O.

Matching rules (documented in docs/catalog.md):

- A set matches a Kantata set with exactly the same ``name``. If none does, a set whose name is one of the
  configured ``previous_names`` is renamed; else the set whose id the last apply pinned (see pins.py) is
  renamed back. Two Kantata sets with the wanted name is an error for that set
  (nothing is planned for it) because either could be the one the projects use.
- Within a set, a desired status matches, in this order: a Kantata status with the same name compared
  case-insensitively; else the status whose id the last apply pinned for it (renamed in Kantata: renamed
  back); else one named like one of its ``previous_names`` (a rename is explicit, never guessed);
  else one of Kantata's four default statuses (named as its category, e.g. ``started``) of the same category,
  which is renamed rather than leaving a duplicate beside a new status.
- A matched status whose category differs is replaced (delete, then create: Kantata cannot change a category).
- A Kantata status that matches nothing is an extra: kept, or deleted with ``prune``. Either way, a category
  that has a status in Kantata keeps at least one (Kantata sends tasks of a deleted status to its category's
  default), so the last status of a category is kept, or a placeholder named as the category is added when a
  replace would empty it.
- The desired statuses come first, in the configured order; kept extras follow in their current order.
  The order is in step only when the positions say it on their own: distinct and without gaps. Kantata does
  not promise how it lists statuses that share a position, so a tie is never broken by id: tied or gapped
  positions (an interrupted reorder leaves them when Kantata stores ``position`` as sent) are drift, and the
  reorder rewrites them.

Actions come in phases, and ``apply`` re-plans from Kantata's real state before each phase, so later phases
always work with real ids: 1 set create/rename; 2 status renames, creates, deletes, replacement creates;
3 reorder; 4 workspace assignment and account default.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final, cast

from kantata_bridge.catalog.config import CatalogConfig, DesiredSet, DesiredStatus, status_key
from kantata_bridge.catalog.pins import CatalogPins, sets_by_name
from kantata_bridge.kantata.models import STATUS_CATEGORIES, StatusCategory, TaskStatusSet, Workspace


class ActionKind(StrEnum):
    CREATE_SET = "create set"
    RENAME_SET = "rename set"
    RENAME_STATUS = "rename status"
    CREATE_STATUS = "add status"
    DELETE_STATUS = "delete status"
    REORDER = "reorder statuses"
    ASSIGN_WORKSPACES = "assign workspaces"
    MAKE_DEFAULT = "make account default"


PHASES: Final[Mapping[ActionKind, int]] = {
    ActionKind.CREATE_SET: 1,
    ActionKind.RENAME_SET: 1,
    ActionKind.RENAME_STATUS: 2,
    ActionKind.CREATE_STATUS: 2,
    ActionKind.DELETE_STATUS: 2,
    ActionKind.REORDER: 3,
    ActionKind.ASSIGN_WORKSPACES: 4,
    ActionKind.MAKE_DEFAULT: 4,
}
LAST_PHASE: Final = 4


REORDER_REASON: Final = "desired statuses first, in the configured order; kept extras after them"


@dataclass(frozen=True, slots=True)
class Move:
    """One position update of a reorder."""

    status_id: str
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class Action:
    """One step of a plan. Each is a single Kantata write, except a reorder (one write per moved status).

    ``name`` is the status (or set) as it is now, ``new_name`` what a rename makes it. ``ensure`` marks a
    step re-sent every run because Kantata does not show its current value (the account default); it is
    not counted as a change.
    """

    kind: ActionKind
    set_name: str
    set_id: str | None = None
    status_id: str | None = None
    name: str | None = None
    new_name: str | None = None
    category: StatusCategory | None = None
    old_category: StatusCategory | None = None
    reason: str = ""
    order: tuple[str, ...] = ()
    moves: tuple[Move, ...] = ()
    workspace_ids: tuple[int, ...] = ()
    ensure: bool = False

    @property
    def phase(self) -> int:
        return PHASES[self.kind]

    def to_dict(self) -> dict[str, Any]:
        """The action as JSON-ready data (for the Lambda summary and logs)."""
        out: dict[str, Any] = {"action": self.kind.value, "set": self.set_name}
        for key in ("set_id", "status_id", "name", "new_name", "category", "old_category"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.reason:
            out["reason"] = self.reason
        if self.order:
            out["order"] = list(self.order)
        if self.workspace_ids:
            out["workspace_ids"] = list(self.workspace_ids)
        if self.ensure:
            out["ensure"] = True
        return out


@dataclass(frozen=True, slots=True)
class KeptStatus:
    """A Kantata status that is not in the configuration and stays (without prune, or as a category's last)."""

    name: str
    category: str
    reason: str


@dataclass(frozen=True, slots=True)
class SetPlan:
    """What to do for one configured set."""

    desired: DesiredSet
    set_id: str | None
    actions: tuple[Action, ...] = ()
    kept: tuple[KeptStatus, ...] = ()
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if not a.ensure)


@dataclass(frozen=True, slots=True)
class Plan:
    """The plan for the whole catalog, set by set in configuration order."""

    sets: tuple[SetPlan, ...]
    prune: bool = False

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(a for s in self.sets for a in s.actions)

    @property
    def changes(self) -> tuple[Action, ...]:
        return tuple(a for s in self.sets for a in s.changes)

    @property
    def errors(self) -> tuple[str, ...]:
        return tuple(e for s in self.sets for e in s.errors)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(w for s in self.sets for w in s.warnings)


@dataclass(slots=True, eq=False)  # compared by identity: the simulation tracks objects
class _Current:
    """A Kantata status as the planner tracks it; ``id`` is None for one that does not exist yet."""

    id: str | None
    name: str
    category: str
    position: int | None

    @property
    def key(self) -> str:
        return status_key(self.name)


@dataclass(slots=True)
class _Match:
    current: _Current
    via: str  # a key of _RENAME_REASONS


_RENAME_REASONS: Final[Mapping[str, str]] = {
    "name": "name differs only in case",
    "previous name": "previous name",
    "pinned": "renamed in Kantata (id pinned by the last apply)",
    "default": "reuse Kantata's default status of this category",
}


@dataclass(slots=True)
class _StatusPlan:
    steps: list[Action] = field(default_factory=list)  # in the order apply sends them
    final: list[_Current] = field(default_factory=list)  # the set after the steps, in position order
    kept: list[KeptStatus] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def plan_catalog(
    config: CatalogConfig,
    current_sets: Sequence[TaskStatusSet],
    *,
    prune: bool = False,
    workspaces: Mapping[int, Workspace | None] | None = None,
    pins: CatalogPins | None = None,
) -> Plan:
    """Plan every configured set against Kantata's sets (read with their statuses).

    ``workspaces`` maps each configured workspace id to its Kantata workspace (None: not found); when it is
    None altogether, assignments are planned for every configured workspace. Never raises for Kantata's
    state: an ambiguity is reported in ``SetPlan.errors`` and nothing is planned for that set. ``pins``
    (ids from the last apply) let it recognise a set or status renamed in Kantata and rename it back.
    """
    by_name = sets_by_name(current_sets)
    by_id = {s.id: s for s in current_sets}
    claimed = {n for d in config.sets for n in (d.name, *d.previous_names)}
    pins = pins or CatalogPins()
    sets = []
    for desired in config.sets:
        pin = pins.sets.get(desired.name)
        found, step, error = _find_set(desired, by_name, by_id.get(pin.set_id) if pin else None, claimed)
        if error is not None:
            sets.append(SetPlan(desired, None, errors=(error,)))
        else:
            pinned = pin.statuses if pin is not None and found is not None and pin.set_id == found.id else {}
            sets.append(_plan_set(desired, found, step, prune=prune, workspaces=workspaces, pinned=pinned))
    return Plan(tuple(sets), prune=prune)


def _find_set(
    desired: DesiredSet,
    by_name: Mapping[str, Sequence[TaskStatusSet]],
    pinned: TaskStatusSet | None,
    claimed: set[str],
) -> tuple[TaskStatusSet | None, Action | None, str | None]:
    """The Kantata set for ``desired``, the step that creates or renames it (if any), or an error."""
    same_name = by_name.get(desired.name, ())
    if len(same_name) > 1:
        ids = ", ".join(s.id for s in same_name)
        return (
            None,
            None,
            (
                f"set {desired.name!r}: Kantata has {len(same_name)} sets with this name (ids {ids}); "
                "rename or delete all but one in Kantata, then plan again"
            ),
        )
    if same_name:
        return same_name[0], None, None
    previous = [s for name in desired.previous_names for s in by_name.get(name, ())]
    if len(previous) > 1:
        names = ", ".join(f"{s.name!r} (id {s.id})" for s in previous)
        return (
            None,
            None,
            (
                f"set {desired.name!r}: several Kantata sets carry its previous names ({names}); "
                "keep one in Kantata, then plan again"
            ),
        )
    if previous:
        found, reason = previous[0], "previous name"
    elif pinned is not None and pinned.name not in claimed:
        # Renamed in Kantata: rename it back, unless its new name belongs to another configured set.
        found, reason = pinned, "renamed in Kantata (id pinned by the last apply)"
    else:
        create = Action(
            ActionKind.CREATE_SET, desired.name, reason="Kantata adds its 4 default statuses to a new set"
        )
        return None, create, None
    rename = Action(
        ActionKind.RENAME_SET,
        desired.name,
        set_id=found.id,
        name=found.name,
        new_name=desired.name,
        reason=reason,
    )
    return found, rename, None


def _plan_set(
    desired: DesiredSet,
    found: TaskStatusSet | None,
    set_step: Action | None,
    *,
    prune: bool,
    workspaces: Mapping[int, Workspace | None] | None,
    pinned: Mapping[str, str],
) -> SetPlan:
    actions = [set_step] if set_step is not None else []
    if found is None:
        set_id: str | None = None
        # What Kantata puts in a new set, so the plan shows the defaults being reused.
        current = [_Current(None, c, c, i) for i, c in enumerate(STATUS_CATEGORIES)]
    else:
        set_id = found.id
        # By position; statuses that share one stay in the order Kantata listed them (nothing relies on it).
        ordered = sorted(found.statuses, key=lambda s: s.position)
        current = [_Current(s.id, s.status, s.category, s.position) for s in ordered]

    status_plan = _plan_statuses(desired, set_id, current, prune=prune, pinned=pinned)
    actions.extend(status_plan.steps)
    reorder = _plan_order(desired, set_id, status_plan.final)
    if reorder is not None:
        actions.append(reorder)
    warnings = list(status_plan.warnings)
    assign = _plan_workspaces(desired, set_id, workspaces, warnings)
    if assign is not None:
        actions.append(assign)
    if desired.account_default:
        actions.append(
            Action(
                ActionKind.MAKE_DEFAULT,
                desired.name,
                set_id=set_id,
                reason="re-sent every run: Kantata does not show which set is the default",
                ensure=True,
            )
        )
    return SetPlan(desired, set_id, tuple(actions), tuple(status_plan.kept), tuple(warnings))


def _plan_workspaces(
    desired: DesiredSet,
    set_id: str | None,
    workspaces: Mapping[int, Workspace | None] | None,
    warnings: list[str],
) -> Action | None:
    """One bulk assignment of the configured workspaces that use another set (or are not found)."""
    if not desired.workspaces:
        return None
    wanted = list(desired.workspaces)
    if workspaces is not None and set_id is not None:
        wanted = []
        for workspace_id in desired.workspaces:
            workspace = workspaces.get(workspace_id)
            if workspace is None:
                warnings.append(
                    f"set {desired.name!r}: workspace {workspace_id} was not found in Kantata (or is archived)"
                )
                wanted.append(workspace_id)
            elif workspace.task_status_set_id != set_id:
                wanted.append(workspace_id)
    if not wanted:
        return None
    return Action(
        ActionKind.ASSIGN_WORKSPACES,
        desired.name,
        set_id=set_id,
        workspace_ids=tuple(wanted),
        ensure=workspaces is None,
    )


def _match_statuses(
    desired: Sequence[DesiredStatus], current: Sequence[_Current], pinned: Mapping[str, str]
) -> dict[int, _Match]:
    """Desired index → the Kantata status it is (see the module docstring for the order of the rules).

    Each rule runs over every desired status before the next rule, so a status holding a desired name is
    always matched to that name, and a rename never targets a name still in use.
    """
    rules: tuple[tuple[str, Callable[[DesiredStatus, _Current], bool]], ...] = (
        ("name", lambda d, c: c.key == d.key),
        ("pinned", lambda d, c: c.id is not None and c.id == pinned.get(d.key)),
        ("previous name", lambda d, c: c.key in {status_key(p) for p in d.previous_names}),
        ("default", lambda d, c: c.key == d.category and c.category == d.category),
    )
    taken: set[int] = set()
    matches: dict[int, _Match] = {}
    for via, rule in rules:
        for index, status in enumerate(desired):
            if index in matches:
                continue
            position = next((p for p, c in enumerate(current) if p not in taken and rule(status, c)), None)
            if position is not None:
                taken.add(position)
                matches[index] = _Match(current[position], via)
    return matches


def _plan_statuses(
    desired: DesiredSet,
    set_id: str | None,
    current: Sequence[_Current],
    *,
    prune: bool,
    pinned: Mapping[str, str],
) -> _StatusPlan:
    out = _StatusPlan()
    name = desired.name
    matches = _match_statuses(desired.statuses, current, pinned)
    matched_ids = {id(m.current) for m in matches.values()}
    renames: list[tuple[_Current, Action]] = []
    creates: list[Action] = []
    replaces: list[tuple[_Current, Action, Action]] = []

    for index, status in enumerate(desired.statuses):
        match = matches.get(index)
        if match is None:
            creates.append(
                Action(
                    ActionKind.CREATE_STATUS, name, set_id=set_id, name=status.name, category=status.category
                )
            )
            continue
        found = match.current
        if found.category != status.category:
            delete = Action(
                ActionKind.DELETE_STATUS,
                name,
                set_id=set_id,
                status_id=found.id,
                name=found.name,
                category=status.category,
                old_category=_category(found.category),
                reason=f"category change {found.category} → {status.category} (Kantata cannot change a category)",
            )
            create = Action(
                ActionKind.CREATE_STATUS,
                name,
                set_id=set_id,
                name=status.name,
                category=status.category,
                old_category=_category(found.category),
                reason="replaces the status deleted for its category change",
            )
            replaces.append((found, delete, create))
            out.warnings.append(
                f"set {name!r}: status {found.name!r} changes category {found.category} → {status.category}; "
                f"it is deleted and created again, and tasks using it fall back to the default "
                f"{found.category!r} status"
            )
        elif found.name != status.name:
            reason = _RENAME_REASONS[match.via]
            renames.append(
                (
                    found,
                    Action(
                        ActionKind.RENAME_STATUS,
                        name,
                        set_id=set_id,
                        status_id=found.id,
                        name=found.name,
                        new_name=status.name,
                        category=status.category,
                        reason=reason,
                    ),
                )
            )

    extras = [c for c in current if id(c) not in matched_ids]
    if not prune:
        reason = "not in the configuration; --prune deletes it"
        out.kept.extend(KeptStatus(e.name, e.category, reason) for e in extras)
        extras = []
    # A category with a status in Kantata keeps one: tasks of a deleted status move to its category's default.
    desired_categories = {s.category for s in desired.statuses}
    for category in STATUS_CATEGORIES:
        candidates = [e for e in extras if e.category == category]
        if category in desired_categories or not candidates:
            continue
        keep = next((e for e in candidates if e.key == category), candidates[0])
        extras.remove(keep)
        out.kept.append(
            KeptStatus(
                keep.name, keep.category, f"the last {category!r} status; Kantata needs one per category"
            )
        )

    extra_deletes = [
        (
            extra,
            Action(
                ActionKind.DELETE_STATUS,
                name,
                set_id=set_id,
                status_id=extra.id,
                name=extra.name,
                old_category=_category(extra.category),
                reason="not in the configuration; --prune",
            ),
        )
        for extra in extras
    ]
    _sequence(out, desired, set_id, current, renames, creates, replaces, extra_deletes)
    return out


def _sequence(
    out: _StatusPlan,
    desired: DesiredSet,
    set_id: str | None,
    current: Sequence[_Current],
    renames: Sequence[tuple[_Current, Action]],
    creates: Sequence[Action],
    replaces: Sequence[tuple[_Current, Action, Action]],
    extra_deletes: Sequence[tuple[_Current, Action]],
) -> None:
    """Order the steps so each one is allowed when it is sent, and work out the set they leave.

    Renames first (a rename never takes a name still in use: a status holding a desired name is matched to
    it), then new statuses, then each category change as delete-then-create (the name is free again), then
    pruned extras. Kantata refuses to delete the last status of a category; when a delete would do that (a
    category change of a category's only status, or two statuses swapping categories), a placeholder named
    as the category is added just before it, and removed again at the end if the category has others by then.
    """
    final = [replace(c) for c in current]
    by_obj = {id(c): f for c, f in zip(current, final, strict=True)}
    counts = {c: sum(1 for s in current if s.category == c) for c in STATUS_CATEGORIES}
    taken = {s.key for s in desired.statuses} | {c.key for c in current}
    placeholders: list[_Current] = []

    def add(action: Action) -> None:
        # Kantata appends a new status: after the highest position.
        position = max((c.position for c in final if c.position is not None), default=-1) + 1
        out.steps.append(action)
        final.append(_Current(None, action.name or "", action.category or "", position))
        counts[action.category or ""] = counts.get(action.category or "", 0) + 1

    def remove(obj: _Current) -> None:
        # Assumes Kantata closes the gap (acts_as_list, the sandbox's reading). If it keeps the numbers
        # instead, the reorder phase re-reads Kantata, sees the gap and closes it.
        final.remove(obj)
        for other in final:
            if obj.position is not None and other.position is not None and other.position > obj.position:
                other.position -= 1

    def delete(obj: _Current, action: Action) -> None:
        category = obj.category
        if counts.get(category, 0) == 1:
            label = _free_name(category, taken)
            taken.add(status_key(label))
            add(
                Action(
                    ActionKind.CREATE_STATUS,
                    desired.name,
                    set_id=set_id,
                    name=label,
                    category=_category(category),
                    reason=f"Kantata keeps at least one {category!r} status in a set",
                )
            )
            placeholders.append(final[-1])
        out.steps.append(action)
        remove(by_obj[id(obj)])
        counts[category] -= 1

    for obj, action in renames:
        out.steps.append(action)
        by_obj[id(obj)].name = action.new_name or obj.name
    for action in creates:
        add(action)
    for obj, drop, create in replaces:
        delete(obj, drop)
        add(create)
    for obj, action in extra_deletes:
        delete(obj, action)
    for placeholder in placeholders:
        if counts[placeholder.category] > 1:
            out.steps.append(
                Action(
                    ActionKind.DELETE_STATUS,
                    desired.name,
                    set_id=set_id,
                    name=placeholder.name,
                    old_category=_category(placeholder.category),
                    reason="the placeholder is no longer needed",
                )
            )
            remove(placeholder)
            counts[placeholder.category] -= 1
        else:
            out.warnings.append(
                f"set {desired.name!r}: adds status {placeholder.name!r} so the {placeholder.category!r} "
                "category is not left empty"
            )
    out.final = final


def _free_name(category: str, taken: set[str]) -> str:
    """A placeholder name for ``category`` that no status in the set has or will have (Kantata: 422)."""
    for label in (category, f"{category} (placeholder)"):
        if status_key(label) not in taken:
            return label
    return next(
        label for n in itertools.count(2) if status_key(label := f"{category} (placeholder {n})") not in taken
    )


def _category(value: str) -> StatusCategory | None:
    return cast(StatusCategory, value) if value in STATUS_CATEGORIES else None


def _plan_order(desired: DesiredSet, set_id: str | None, final: Sequence[_Current]) -> Action | None:
    """A reorder if the statuses would not be in the wanted order after the other steps.

    In order means: each status of the wanted order at the lowest position plus its index, so positions are
    distinct and gapless. Two statuses at one position are out of order whatever order Kantata lists them in.
    The simulation assumes Kantata appends a new status at the end; apply re-plans after creating, so the
    moves it sends come from the real positions whatever Kantata did.
    """
    wanted_keys = [s.key for s in desired.statuses]
    wanted = set(wanted_keys)
    by_key = {c.key: c for c in final if c.key in wanted}
    target = [by_key[k] for k in wanted_keys] + [c for c in final if c.key not in wanted]
    positions = [c.position for c in final if c.position is not None]
    base = min(positions, default=0)
    if all(c.position == base + index for index, c in enumerate(target)):
        return None
    moves: tuple[Move, ...] = ()
    if all(c.id is not None and c.position is not None for c in final):
        moves = _moves(target, base)
    return Action(
        ActionKind.REORDER,
        desired.name,
        set_id=set_id,
        order=tuple(c.name for c in target),
        moves=moves,
        reason=_order_reason(target),
    )


def _order_reason(target: Sequence[_Current]) -> str:
    """Why the order is rewritten: the usual reason, or the tie or gap in Kantata's positions (statuses
    named in the wanted order, so the reason does not depend on the order Kantata lists a tie in)."""
    by_position: dict[int, list[str]] = {}
    for c in target:
        if c.id is not None and c.position is not None:
            by_position.setdefault(c.position, []).append(c.name)
    tied = next(((p, names) for p, names in sorted(by_position.items()) if len(names) > 1), None)
    if tied is not None:
        names = " and ".join(json.dumps(n, ensure_ascii=False) for n in tied[1])
        return f"{names} share position {tied[0]} in Kantata, so their order is not definite"
    held = sorted(by_position)
    if held and held != list(range(held[0], held[0] + len(held))):
        return "Kantata's positions have gaps (" + ", ".join(map(str, held)) + "); they are renumbered"
    return REORDER_REASON


def _moves(target: Sequence[_Current], base: int) -> tuple[Move, ...]:
    """Position updates that put ``target`` at ``base``, ``base + 1``, … .

    Every status from the first one not at its position onwards is sent its position, in target order.
    That is right whether Kantata inserts at a position (shifting the others, like acts_as_list: the
    statuses before it are in place, so inserting at ``base + i`` puts it at index ``i``) or just stores
    the number (each status gets exactly its number, which also separates a tie).
    """
    first = next((i for i, c in enumerate(target) if c.position != base + i), len(target))
    return tuple(
        Move(status_id=c.id or "", name=c.name, position=base + index)
        for index, c in enumerate(target)
        if index >= first
    )
