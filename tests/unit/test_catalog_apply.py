"""Apply against an in-memory Kantata: convergence, idempotence, recovery after a failure, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kantata_bridge.catalog.apply import apply_catalog, plan_from_kantata
from kantata_bridge.catalog.config import CatalogConfig, DesiredSet, DesiredStatus, status_key
from kantata_bridge.catalog.plan import ActionKind
from kantata_bridge.catalog.report import apply_summary, render_apply
from kantata_bridge.kantata.models import STATUS_CATEGORIES, TaskStatusSet

from tests.unit.catalog_fakes import FakeKantata

WORKFLOW = (
    DesiredStatus("To Do", "not started"),
    DesiredStatus("Backlog", "not started"),
    DesiredStatus("In Progress", "started"),
    DesiredStatus("In Review", "started"),
    DesiredStatus("Blocked", "needs info"),
    DesiredStatus("Done", "completed"),
)


def one_set(*statuses: DesiredStatus, **kwargs: Any) -> CatalogConfig:
    return CatalogConfig((DesiredSet("PROJ", tuple(statuses or WORKFLOW), **kwargs),))


@pytest.mark.parametrize("insert_positions", [True, False], ids=["insert-at", "stored-number"])
def test_apply_from_empty_reaches_the_desired_order_and_reapply_changes_nothing(
    insert_positions: bool,
) -> None:
    kantata = FakeKantata(insert_positions=insert_positions)
    first = apply_catalog(kantata, one_set())
    assert first.ok, render_apply(first)
    assert kantata.names(kantata.set_id("PROJ"))[:6] == [(s.name, s.category) for s in WORKFLOW]
    writes_before = len(kantata.writes())

    second = apply_catalog(kantata, one_set())
    assert second.ok
    assert second.changed == ()
    assert len(kantata.writes()) == writes_before
    assert "No changes: Kantata is in step" in render_apply(second)


def test_failure_half_way_is_finished_by_the_next_apply() -> None:
    # Given the second status create fails (Kantata 503)
    kantata = FakeKantata(fail_on={"create_custom_task_status": 2})
    failed = apply_catalog(kantata, one_set())
    # Then the run stops there and says so
    assert not failed.ok
    assert failed.outcomes[-1].action.kind is ActionKind.CREATE_STATUS
    assert not failed.outcomes[-1].ok
    assert "returned 503" in (failed.outcomes[-1].error or "")
    assert apply_summary(failed)["converged"] is False
    # When applying again, Then it re-plans from Kantata's state and completes, with no duplicate
    again = apply_catalog(kantata, one_set())
    assert again.ok
    assert again.remaining is not None
    assert again.remaining.changes == ()
    assert kantata.names(kantata.set_id("PROJ"))[:6] == [(s.name, s.category) for s in WORKFLOW]
    assert len(kantata.sets) == 1


def test_failure_after_a_delete_of_a_category_change_is_completed_next_time() -> None:
    kantata = FakeKantata()
    set_id = kantata.add_set("PROJ", [(s.name, s.category) for s in WORKFLOW] + [("QA", "started")])
    desired = one_set(*WORKFLOW, DesiredStatus("QA", "needs info"))
    kantata.fail_on = {"create_custom_task_status": 1}
    assert not apply_catalog(kantata, desired).ok
    assert "QA" not in [n for n, _ in kantata.names(set_id)]  # deleted, not yet created again
    assert apply_catalog(kantata, desired).ok
    assert ("QA", "needs info") in kantata.names(set_id)


def test_bulk_workspace_refusal_shows_each_workspace_error() -> None:
    kantata = FakeKantata(workspaces={11: None})
    result = apply_catalog(kantata, one_set(workspaces=(11, 12, 13)))
    assert not result.ok
    failed = result.outcomes[-1]
    assert failed.action.kind is ActionKind.ASSIGN_WORKSPACES
    assert failed.details == (
        "workspace_id: Workspace 12: workspace not found",
        "workspace_id: Workspace 13: workspace not found",
    )
    text = render_apply(result)
    assert "- workspace_id: Workspace 12: workspace not found" in text
    assert kantata.workspaces == {11: None}  # all or nothing


def test_workspaces_and_account_default_are_applied() -> None:
    kantata = FakeKantata(workspaces={11: None, 12: None})
    result = apply_catalog(kantata, one_set(workspaces=(11, 12), account_default=True))
    assert result.ok
    set_id = kantata.set_id("PROJ")
    assert kantata.workspaces == {11: set_id, 12: set_id}
    assert kantata.default_set == set_id
    again = apply_catalog(kantata, one_set(workspaces=(11, 12), account_default=True))
    assert again.changed == ()
    assert [o.action.kind for o in again.outcomes] == [ActionKind.MAKE_DEFAULT]


def test_plan_writes_nothing() -> None:
    kantata = FakeKantata()
    kantata.add_set("PROJ", [("Doing", "started"), ("completed", "completed")])
    plan = plan_from_kantata(kantata, one_set(), prune=True)
    assert plan.changes
    assert kantata.writes() == []


NAMES = [
    "To Do",
    "to do",
    "Backlog",
    "In Progress",
    "Doing",
    "Blocked",
    "Done",
    "QA",
    "Review",
    *STATUS_CATEGORIES,
]


@st.composite
def statuses(draw: st.DrawFn, *, min_size: int) -> list[tuple[str, str]]:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=min_size, max_size=9, unique_by=status_key))
    return [(n, draw(st.sampled_from(STATUS_CATEGORIES))) for n in names]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    desired=statuses(min_size=1),
    current=st.none() | statuses(min_size=0),
    prune=st.booleans(),
    insert_positions=st.booleans(),
)
def test_apply_converges_from_any_state_and_then_is_idempotent(
    desired: list[tuple[str, str]],
    current: list[tuple[str, str]] | None,
    prune: bool,
    insert_positions: bool,
) -> None:
    kantata = FakeKantata(insert_positions=insert_positions)
    if current is not None:
        # A Kantata set always has at least one status of each category.
        present = {c for _, c in current}
        taken = {status_key(n) for n, _ in current}
        extra = [(c, c) for c in STATUS_CATEGORIES if c not in present and c not in taken]
        missing = [c for c in STATUS_CATEGORIES if c not in present and c in taken]
        current = current + extra + [(f"{c} #2", c) for c in missing]
        kantata.add_set("PROJ", current)
    config = one_set(*(DesiredStatus(n, c) for n, c in desired))  # type: ignore[arg-type]

    result = apply_catalog(kantata, config, prune=prune)

    assert result.ok, render_apply(result)
    assert result.remaining is not None
    assert result.remaining.changes == ()
    names = kantata.names(kantata.set_id("PROJ"))
    assert names[: len(desired)] == desired
    if prune:  # only what a category needs stays beside the desired statuses
        extras = names[len(desired) :]
        assert all(c not in {d for _, d in desired} for _, c in extras)
        assert len({c for _, c in extras}) == len(extras)
    assert {c for _, c in names} >= {c for _, c in desired}
    assert apply_catalog(kantata, config, prune=prune).changed == ()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    desired=statuses(min_size=1),
    current=statuses(min_size=0),
    prune=st.booleans(),
    failing=st.sampled_from(
        [
            "create_task_status_set",
            "create_custom_task_status",
            "update_custom_task_status",
            "delete_custom_task_status",
        ]
    ),
    nth=st.integers(min_value=1, max_value=6),
    insert_positions=st.booleans(),
    ties_newest_first=st.booleans(),
)
def test_an_apply_interrupted_at_any_write_is_finished_by_the_next(
    desired: list[tuple[str, str]],
    current: list[tuple[str, str]],
    prune: bool,
    failing: str,
    nth: int,
    insert_positions: bool,
    ties_newest_first: bool,
) -> None:
    kantata = FakeKantata(
        fail_on={failing: nth}, insert_positions=insert_positions, ties_newest_first=ties_newest_first
    )
    if current:
        present = {c for _, c in current}
        taken = {status_key(n) for n, _ in current}
        current = current + [
            (f"{c} #2" if c in taken else c, c) for c in STATUS_CATEGORIES if c not in present
        ]
        kantata.add_set("PROJ", current)
    config = one_set(*(DesiredStatus(n, c) for n, c in desired))  # type: ignore[arg-type]

    apply_catalog(kantata, config, prune=prune)  # may stop at the injected failure
    kantata.fail_on = {}
    result = apply_catalog(kantata, config, prune=prune)

    assert result.ok, render_apply(result)
    assert result.remaining is not None
    assert result.remaining.changes == ()
    assert kantata.names(kantata.set_id("PROJ"))[: len(desired)] == desired
    assert kantata.in_definite_order(kantata.set_id("PROJ"))
    assert len(kantata.sets) == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    desired=statuses(min_size=1),
    current=statuses(min_size=0),
    data=st.data(),
    prune=st.booleans(),
    ties_newest_first=st.booleans(),
)
def test_tied_or_gapped_positions_are_drift_that_apply_repairs(
    desired: list[tuple[str, str]],
    current: list[tuple[str, str]],
    data: st.DataObject,
    prune: bool,
    ties_newest_first: bool,
) -> None:
    # Given a Kantata that stores positions as sent, holding statuses at any positions (ties, gaps)
    kantata = FakeKantata(insert_positions=False, ties_newest_first=ties_newest_first)
    present, taken = {c for _, c in current}, {status_key(n) for n, _ in current}
    current += [(f"{c} #2" if c in taken else c, c) for c in STATUS_CATEGORIES if c not in present]
    set_id = kantata.add_set("PROJ", current)
    for status in [s for s in kantata.statuses.values() if s.set_id == set_id]:
        status.position = data.draw(st.integers(min_value=0, max_value=len(current) + 2))
    config = one_set(*(DesiredStatus(n, c) for n, c in desired))  # type: ignore[arg-type]

    # When applying, Then the positions say the order on their own, and a re-apply changes nothing
    result = apply_catalog(kantata, config, prune=prune)

    assert result.ok, render_apply(result)
    assert result.remaining is not None
    assert result.remaining.changes == ()
    assert kantata.in_definite_order(set_id), kantata.positions(set_id)
    assert kantata.names(set_id)[: len(desired)] == desired
    assert apply_catalog(kantata, config, prune=prune).changed == ()


def test_drift_renamed_in_kantata_is_renamed_back_on_the_next_apply() -> None:
    kantata = FakeKantata()
    first = apply_catalog(kantata, one_set())
    set_id = kantata.set_id("PROJ")
    review_id = next(s.id for s in kantata.statuses.values() if s.name == "In Review")
    kantata.update_custom_task_status(review_id, status="Peer check")  # drift made in Kantata's UI

    second = apply_catalog(kantata, one_set(), pins=first.pins)

    assert [o.action.kind for o in second.changed] == [ActionKind.RENAME_STATUS]
    assert kantata.statuses[review_id].name == "In Review"  # same status: its tasks keep it
    assert kantata.names(set_id)[:6] == [(s.name, s.category) for s in WORKFLOW]


def test_placeholder_takes_a_free_name_when_the_usual_ones_are_held() -> None:
    # Given a set whose only 'started' status must change category, and both usual placeholder names taken
    kantata = FakeKantata()
    set_id = kantata.add_set(
        "PROJ",
        [
            ("To Do", "not started"),
            ("started (placeholder)", "not started"),
            ("started", "started"),
            ("needs info", "needs info"),
            ("completed", "completed"),
        ],
    )
    config = one_set(DesiredStatus("To Do", "not started"), DesiredStatus("started", "not started"))

    # When applying, Then the placeholder gets a name no status has (Kantata would refuse a duplicate)
    result = apply_catalog(kantata, config)

    assert result.ok, render_apply(result)
    assert ("started (placeholder 2)", "started") in kantata.names(set_id)
    assert kantata.names(set_id)[:2] == [("To Do", "not started"), ("started", "not started")]
    assert apply_catalog(kantata, config).changed == ()


@st.composite
def with_previous_names(draw: st.DrawFn, desired: list[tuple[str, str]]) -> tuple[DesiredStatus, ...]:
    """The desired statuses, each with previous names drawn from names no desired status has."""
    free = [n for n in (*NAMES, "Old 1", "Old 2") if status_key(n) not in {status_key(d) for d, _ in desired}]
    used: set[str] = set()
    out = []
    for name, category in desired:
        drawn = draw(st.lists(st.sampled_from(free), max_size=2, unique_by=status_key))
        previous = tuple(p for p in drawn if status_key(p) not in used)
        used |= {status_key(p) for p in previous}
        out.append(DesiredStatus(name, category, previous_names=previous))  # type: ignore[arg-type]
    return tuple(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    desired=statuses(min_size=1),
    current=statuses(min_size=0),
    data=st.data(),
    prune=st.booleans(),
    insert_positions=st.booleans(),
)
def test_renames_by_previous_name_never_clash_and_converge(
    desired: list[tuple[str, str]],
    current: list[tuple[str, str]],
    data: st.DataObject,
    prune: bool,
    insert_positions: bool,
) -> None:
    # Given any Kantata set, and a catalog whose statuses carry previous names (renames on purpose)
    kantata = FakeKantata(insert_positions=insert_positions)
    present, taken = {c for _, c in current}, {status_key(n) for n, _ in current}
    current += [(f"{c} #2" if c in taken else c, c) for c in STATUS_CATEGORIES if c not in present]
    kantata.add_set("PROJ", current)
    config = CatalogConfig((DesiredSet("PROJ", data.draw(with_previous_names(desired))),))

    # When applying (the fake refuses a duplicate name with 422, like Kantata), Then it converges in one run
    result = apply_catalog(kantata, config, prune=prune)

    assert result.ok, render_apply(result)
    assert result.remaining is not None
    assert result.remaining.changes == ()
    assert kantata.names(kantata.set_id("PROJ"))[: len(desired)] == desired
    assert apply_catalog(kantata, config, prune=prune, pins=result.pins).changed == ()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(desired=statuses(min_size=2), data=st.data(), prune=st.booleans(), extra=st.booleans())
def test_names_shuffled_in_kantata_are_reconciled_with_pins_without_a_clash(
    desired: list[tuple[str, str]], data: st.DataObject, prune: bool, extra: bool
) -> None:
    # Given an applied catalog, then in Kantata the statuses' names shuffled (A↔B swaps), some renamed to
    # names that are not in the catalog, and maybe an extra status added
    kantata = FakeKantata()
    config = one_set(*(DesiredStatus(n, c) for n, c in desired))  # type: ignore[arg-type]
    first = apply_catalog(kantata, config)
    assert first.ok
    set_id = kantata.set_id("PROJ")
    in_set = [s for s in kantata.statuses.values() if s.set_id == set_id]
    for status, name in zip(in_set, data.draw(st.permutations([s.name for s in in_set])), strict=True):
        status.name = name  # several renames made in Kantata's UI (through a temporary name)
    for index in data.draw(st.lists(st.sampled_from(range(len(in_set))), max_size=2, unique=True)):
        held = {status_key(s.name) for s in in_set}
        in_set[index].name = data.draw(
            st.sampled_from([n for n in (*NAMES, "Zed") if status_key(n) not in held])
        )
    if extra:
        held = {status_key(s.name) for s in kantata.statuses.values() if s.set_id == set_id}
        kantata.create_custom_task_status(
            set_id, next(n for n in (*NAMES, "Extra") if status_key(n) not in held), "started"
        )

    # When applying with the pins of the first apply, Then no request is refused and it converges
    result = apply_catalog(kantata, config, prune=prune, pins=first.pins)

    assert result.ok, render_apply(result)
    assert result.remaining is not None
    assert result.remaining.changes == ()
    assert kantata.names(set_id)[: len(desired)] == desired


class SetVanishesKantata(FakeKantata):
    """Someone deletes the set right after the apply created it."""

    def create_task_status_set(self, name: str) -> TaskStatusSet:
        made = super().create_task_status_set(name)
        del self.sets[made.id]
        return made


def test_a_set_deleted_during_the_run_stops_the_apply_with_a_reason_not_a_crash() -> None:
    kantata = SetVanishesKantata()

    result = apply_catalog(kantata, one_set())

    assert not result.ok
    failed = result.outcomes[-1]
    assert failed.action.kind is ActionKind.RENAME_STATUS
    assert "Kantata changed during the run" in (failed.error or "")
    assert "Run apply again" in render_apply(result)


def test_an_apply_with_nothing_to_change_reads_kantata_once() -> None:
    # Given Kantata already in step with the catalog
    kantata = FakeKantata()
    assert apply_catalog(kantata, one_set()).ok
    kantata.calls.clear()
    # When applying again
    result = apply_catalog(kantata, one_set())
    # Then Kantata's sets are listed once (not once per phase) and nothing is written
    assert result.changed == ()
    assert [name for name, _ in kantata.calls] == ["list_task_status_sets"]


ABC = (DesiredStatus("A", "not started"), DesiredStatus("B", "started"), DesiredStatus("C", "completed"))
AXBC = (ABC[0], DesiredStatus("X", "started"), *ABC[1:])


@pytest.mark.parametrize("ties_newest_first", [False, True], ids=["ties-oldest-first", "ties-newest-first"])
@pytest.mark.parametrize("insert_positions", [True, False], ids=["insert-at", "stored-number"])
def test_a_reorder_interrupted_at_its_last_move_is_finished_by_the_next_apply(
    insert_positions: bool, ties_newest_first: bool
) -> None:
    # Given Kantata holds A, B, C (issue 12, item 1)
    kantata = FakeKantata(insert_positions=insert_positions, ties_newest_first=ties_newest_first)
    assert apply_catalog(kantata, one_set(*ABC)).ok
    set_id = kantata.set_id("PROJ")
    # When applying A, X, B, C and the 4th write (the move of C) fails for good
    kantata.calls.clear()
    kantata.fail_on = {"update_custom_task_status": 3}
    stopped = apply_catalog(kantata, one_set(*AXBC))
    assert not stopped.ok
    assert kantata.writes()[3] == "update_custom_task_status"
    assert kantata.calls[-1][1][0] == next(s.id for s in kantata.statuses.values() if s.name == "C")
    if not insert_positions:  # Kantata stored the numbers as sent: B and C share position 2
        assert kantata.positions(set_id)[:4] in (
            [("A", 0), ("X", 1), ("B", 2), ("C", 2)],
            [("A", 0), ("X", 1), ("C", 2), ("B", 2)],
        )
    kantata.fail_on = {}

    # Then the next plan sees the tie as drift (never "in step" by breaking it by id), and apply repairs it
    plan = plan_from_kantata(kantata, one_set(*AXBC))
    if insert_positions:  # Kantata shifted the others on each move: A, X, B, C already
        assert plan.changes == ()
    else:
        assert [a.kind for a in plan.changes] == [ActionKind.REORDER]
    again = apply_catalog(kantata, one_set(*AXBC))
    assert again.ok, render_apply(again)
    assert kantata.in_definite_order(set_id), kantata.positions(set_id)
    assert kantata.names(set_id)[:4] == [(s.name, s.category) for s in AXBC]
    assert "No changes" in render_apply(apply_catalog(kantata, one_set(*AXBC)))


def test_apply_writes_nothing_when_kantata_changed_since_the_approved_plan() -> None:
    # Given a plan a person approved
    kantata = FakeKantata()
    approved = plan_from_kantata(kantata, one_set())
    # When someone adds a set with the same name in Kantata before the apply starts
    kantata.add_set("PROJ")
    result = apply_catalog(kantata, one_set(), approved=approved)
    # Then nothing is written and the result says why
    assert not result.ok
    assert kantata.writes() == []
    assert "Kantata changed since the plan was shown" in render_apply(result)
    assert apply_summary(result)["converged"] is False


def test_apply_of_the_approved_plan_runs_when_kantata_did_not_change() -> None:
    kantata = FakeKantata()
    approved = plan_from_kantata(kantata, one_set())
    result = apply_catalog(kantata, one_set(), approved=approved)
    assert result.ok, render_apply(result)
    assert len(result.changed) == len(approved.changes)
