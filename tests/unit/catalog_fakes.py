"""An in-memory Kantata for the catalog unit tests: task status sets, statuses and workspaces.

It keeps Kantata's documented rules (four default statuses in a new set, a status name unique in its set,
a category that never changes) and the sandbox's choices (case-insensitive names, positions contiguous from
0 with insert-at semantics, the last status of a category cannot be deleted). ``insert_positions=False``
switches to plain stored position numbers, so the planner is checked under both readings of ``position``:
then two statuses can share a position, or leave a gap, as an interrupted reorder or a delete does. Kantata
does not promise how it lists statuses that share a position; ``ties_newest_first`` lists them newest
first instead of oldest first, so a planner that breaks ties by id is caught either way.
``fail_on`` makes the n-th write of a kind fail, to test recovery.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from kantata_bridge.kantata.errors import ErrorDetail, NotFoundError, UnavailableError, ValidationError
from kantata_bridge.kantata.models import (
    STATUS_CATEGORIES,
    CustomTaskStatus,
    TaskStatusSet,
    Workspace,
    WorkspaceTaskStatusSet,
)


@dataclass
class _Status:
    id: str
    set_id: str
    name: str
    category: str
    position: int


@dataclass
class FakeKantata:
    insert_positions: bool = True
    ties_newest_first: bool = False
    sets: dict[str, str] = field(default_factory=dict)  # id -> name
    statuses: dict[str, _Status] = field(default_factory=dict)
    workspaces: dict[int, str | None] = field(default_factory=dict)  # id -> set id
    default_set: str | None = None
    fail_on: dict[str, int] = field(default_factory=dict)  # method name -> fail on this call number (1-based)
    calls: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(100))

    # ---- helpers for tests
    def add_set(self, name: str, statuses: Sequence[tuple[str, str]] | None = None) -> str:
        set_id = str(next(self._ids))
        self.sets[set_id] = name
        for index, (status, category) in enumerate(
            statuses if statuses is not None else [(c, c) for c in STATUS_CATEGORIES]
        ):
            sid = str(next(self._ids))
            self.statuses[sid] = _Status(sid, set_id, status, category, index)
        return set_id

    def names(self, set_id: str) -> list[tuple[str, str]]:
        return [(s.name, s.category) for s in self._listed(set_id)]

    def positions(self, set_id: str) -> list[tuple[str, int]]:
        """(name, position) as Kantata lists them."""
        return [(s.name, s.position) for s in self._listed(set_id)]

    def in_definite_order(self, set_id: str) -> bool:
        """Whether the positions say the order on their own: distinct and without gaps."""
        positions = sorted(s.position for s in self._of(set_id))
        return positions == list(range(positions[0], positions[0] + len(positions))) if positions else True

    def set_id(self, name: str) -> str:
        return next(k for k, v in self.sets.items() if v == name)

    def writes(self) -> list[str]:
        return [name for name, _ in self.calls if not name.startswith(("list", "get"))]

    def _of(self, set_id: str) -> list[_Status]:
        return sorted(
            (s for s in self.statuses.values() if s.set_id == set_id), key=lambda s: (s.position, int(s.id))
        )

    def _listed(self, set_id: str) -> list[_Status]:
        """The set's statuses in the order Kantata lists them: by position, ties as ``ties_newest_first``."""
        sign = -1 if self.ties_newest_first else 1
        return sorted(
            (s for s in self.statuses.values() if s.set_id == set_id),
            key=lambda s: (s.position, sign * int(s.id)),
        )

    def _call(self, name: str, *args: object) -> None:
        self.calls.append((name, args))
        count = sum(1 for n, _ in self.calls if n == name)
        if self.fail_on.get(name) == count:
            raise UnavailableError(f"Kantata {name} returned 503", status=503)

    def _renumber(self, set_id: str, moved: _Status | None = None, position: int | None = None) -> None:
        others = [s for s in self._of(set_id) if s is not moved]
        if moved is not None and position is not None:
            others.insert(max(0, min(position, len(others))), moved)
        for index, status in enumerate(others):
            status.position = index

    @staticmethod
    def _invalid(field_name: str, message: str) -> ValidationError:
        return ValidationError(
            f"Kantata returned 422: {field_name}: {message}",
            status=422,
            errors=(ErrorDetail("validation", message, field_name),),
        )

    def _set(self, set_id: str) -> TaskStatusSet:
        statuses = tuple(
            CustomTaskStatus(s.id, s.name, s.category, s.position, int(s.set_id))  # type: ignore[arg-type]
            for s in self._listed(set_id)
        )
        return TaskStatusSet(set_id, self.sets[set_id], tuple(s.id for s in statuses), statuses)

    # ---- the CatalogKantata protocol
    def list_task_status_sets(self, *, include_statuses: bool = True) -> Iterator[TaskStatusSet]:
        self._call("list_task_status_sets")
        return iter([self._set(k) for k in sorted(self.sets, key=int)])

    def create_task_status_set(self, name: str) -> TaskStatusSet:
        self._call("create_task_status_set", name)
        return self._set(self.add_set(name))

    def update_task_status_set(self, set_id: str | int, name: str) -> TaskStatusSet:
        self._call("update_task_status_set", set_id, name)
        self.sets[str(set_id)] = name
        return self._set(str(set_id))

    def make_account_default(self, set_id: str | int) -> TaskStatusSet:
        self._call("make_account_default", set_id)
        self.default_set = str(set_id)
        return self._set(str(set_id))

    def create_custom_task_status(
        self, status_set_id: str | int, status: str, category: str
    ) -> CustomTaskStatus:
        self._call("create_custom_task_status", status_set_id, status, category)
        set_id = str(status_set_id)
        if any(s.name.casefold() == status.casefold() for s in self._of(set_id)):
            raise self._invalid("status", f"status {status!r} already exists in this set")
        sid = str(next(self._ids))
        positions = [s.position for s in self._of(set_id)]
        self.statuses[sid] = _Status(sid, set_id, status, category, max(positions, default=-1) + 1)
        s = self.statuses[sid]
        return CustomTaskStatus(s.id, s.name, s.category, s.position, int(set_id))  # type: ignore[arg-type]

    def update_custom_task_status(
        self, status_id: str | int, *, status: str | None = None, position: int | None = None
    ) -> CustomTaskStatus:
        self._call("update_custom_task_status", status_id, status, position)
        found = self.statuses.get(str(status_id))
        if found is None:
            raise NotFoundError("404", status=404)
        if status is not None:
            if any(s.name.casefold() == status.casefold() and s is not found for s in self._of(found.set_id)):
                raise self._invalid("status", f"status {status!r} already exists in this set")
            found.name = status
        if position is not None:
            if self.insert_positions:
                self._renumber(found.set_id, found, position)
            else:
                found.position = position
        return CustomTaskStatus(found.id, found.name, found.category, found.position, int(found.set_id))  # type: ignore[arg-type]

    def delete_custom_task_status(self, status_id: str | int) -> None:
        self._call("delete_custom_task_status", status_id)
        found = self.statuses.get(str(status_id))
        if found is None:
            raise NotFoundError("404", status=404)
        if sum(1 for s in self._of(found.set_id) if s.category == found.category) == 1:
            raise self._invalid("base", f"the last {found.category!r} status of a set cannot be deleted")
        del self.statuses[found.id]
        if self.insert_positions:
            self._renumber(found.set_id)

    def get_workspace(self, workspace_id: str | int) -> Workspace:
        self._call("get_workspace", workspace_id)
        if int(workspace_id) not in self.workspaces:
            raise NotFoundError("404", status=404)
        set_id = self.workspaces[int(workspace_id)]
        return Workspace(str(workspace_id), f"Workspace {workspace_id}", task_status_set_id=set_id)

    def bulk_update_workspace_task_status_sets(
        self, assignments: Sequence[WorkspaceTaskStatusSet]
    ) -> list[WorkspaceTaskStatusSet]:
        self._call("bulk_update_workspace_task_status_sets", tuple(assignments))
        missing = [a.workspace_id for a in assignments if a.workspace_id not in self.workspaces]
        if missing:
            raise ValidationError(
                "Kantata returned 422",
                status=422,
                errors=tuple(
                    ErrorDetail("validation", f"Workspace {w}: workspace not found", "workspace_id")
                    for w in missing
                ),
            )
        for a in assignments:
            self.workspaces[a.workspace_id] = str(a.status_set_id)
        return list(assignments)
