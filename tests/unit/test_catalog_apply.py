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
from kantata_bridge.kantata.models import STATUS_CATEGORIES

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
    assert "0 changes made" in render_apply(second)


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
)
def test_an_apply_interrupted_at_any_write_is_finished_by_the_next(
    desired: list[tuple[str, str]], current: list[tuple[str, str]], prune: bool, failing: str, nth: int
) -> None:
    kantata = FakeKantata(fail_on={failing: nth})
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
    assert len(kantata.sets) == 1


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
