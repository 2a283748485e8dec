"""The planner: desired catalog + Kantata's sets → ordered actions (pure, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from kantata_bridge.catalog.config import CatalogConfig, DesiredSet, DesiredStatus
from kantata_bridge.catalog.pins import CatalogPins, SetPins
from kantata_bridge.catalog.plan import Action, ActionKind, Plan, plan_catalog
from kantata_bridge.catalog.report import plan_summary, render_plan
from kantata_bridge.kantata.models import CustomTaskStatus, TaskStatusSet, Workspace

WORKFLOW = (
    DesiredStatus("To Do", "not started"),
    DesiredStatus("In Progress", "started"),
    DesiredStatus("Blocked", "needs info"),
    DesiredStatus("Done", "completed"),
)


def kantata_set(set_id: str, name: str, statuses: Sequence[tuple[str, str]]) -> TaskStatusSet:
    items = tuple(
        CustomTaskStatus(str(int(set_id) * 100 + i), status, category, i, int(set_id))  # type: ignore[arg-type]
        for i, (status, category) in enumerate(statuses)
    )
    return TaskStatusSet(set_id, name, tuple(s.id for s in items), items)


def catalog(*statuses: DesiredStatus, name: str = "PROJ", **kwargs: object) -> CatalogConfig:
    return CatalogConfig((DesiredSet(name, tuple(statuses or WORKFLOW), **kwargs),))  # type: ignore[arg-type]


def kinds(plan: Plan) -> list[tuple[str, str | None, str | None]]:
    return [(a.kind.value, a.name, a.new_name) for a in plan.actions]


def only(plan: Plan, kind: ActionKind) -> list[Action]:
    return [a for a in plan.actions if a.kind is kind]


IN_STEP = [
    ("To Do", "not started"),
    ("In Progress", "started"),
    ("Blocked", "needs info"),
    ("Done", "completed"),
]


def test_new_set_reuses_the_four_defaults_instead_of_duplicating_them() -> None:
    # Given an empty account, When planning a 4-status workflow
    plan = plan_catalog(catalog(), [])
    # Then the set is created and Kantata's default status of each category is renamed, nothing added
    assert kinds(plan) == [
        ("create set", None, None),
        ("rename status", "not started", "To Do"),
        ("rename status", "started", "In Progress"),
        ("rename status", "needs info", "Blocked"),
        ("rename status", "completed", "Done"),
    ]


def test_new_set_with_more_statuses_adds_them_and_orders_them() -> None:
    desired = (
        DesiredStatus("Backlog", "not started"),
        DesiredStatus("To Do", "not started"),
        DesiredStatus("In Progress", "started"),
        DesiredStatus("Done", "completed"),
    )
    plan = plan_catalog(catalog(*desired), [])
    assert ("rename status", "not started", "Backlog") in kinds(plan)  # the first of its category reuses it
    assert ("add status", "To Do", None) in kinds(plan)
    (reorder,) = only(plan, ActionKind.REORDER)
    assert reorder.order[:4] == ("Backlog", "To Do", "In Progress", "Done")
    # 'needs info' has no desired status: Kantata's default stays, after the desired ones
    assert reorder.order[4:] == ("needs info",)
    assert [k.name for k in plan.sets[0].kept] == ["needs info"]


def test_set_in_step_plans_nothing() -> None:
    plan = plan_catalog(catalog(), [kantata_set("1", "PROJ", IN_STEP)])
    assert plan.actions == ()
    assert "No changes" in render_plan(plan)


def test_status_names_match_case_insensitively_and_case_is_corrected() -> None:
    current = [
        ("to do", "not started"),
        ("IN PROGRESS", "started"),
        ("Blocked", "needs info"),
        ("Done", "completed"),
    ]
    plan = plan_catalog(catalog(), [kantata_set("1", "PROJ", current)])
    assert kinds(plan) == [
        ("rename status", "to do", "To Do"),
        ("rename status", "IN PROGRESS", "In Progress"),
    ]
    assert {a.reason for a in plan.actions} == {"name differs only in case"}


def test_rename_is_explicit_through_previous_names() -> None:
    current = [
        ("To Do", "not started"),
        ("Doing", "started"),
        ("Blocked", "needs info"),
        ("Done", "completed"),
    ]
    desired = list(WORKFLOW)
    desired[1] = DesiredStatus("In Progress", "started", previous_names=("doing",))
    plan = plan_catalog(catalog(*desired), [kantata_set("1", "PROJ", current)])
    (rename,) = plan.actions
    assert (rename.kind, rename.name, rename.new_name, rename.status_id) == (
        ActionKind.RENAME_STATUS,
        "Doing",
        "In Progress",
        "101",
    )


def test_without_previous_names_a_renamed_status_is_added_and_the_old_one_kept() -> None:
    # Given Kantata renamed 'In Progress' to 'Doing' and the config does not know 'Doing'
    current = [
        ("To Do", "not started"),
        ("Doing", "started"),
        ("Blocked", "needs info"),
        ("Done", "completed"),
    ]
    plan = plan_catalog(catalog(), [kantata_set("1", "PROJ", current)])
    # Then no rename is guessed: In Progress is added, Doing is kept (no prune) and reported
    assert kinds(plan)[0] == ("add status", "In Progress", None)
    assert [(k.name, k.reason) for k in plan.sets[0].kept] == [
        ("Doing", "not in the configuration; --prune deletes it")
    ]
    assert only(plan, ActionKind.DELETE_STATUS) == []


def test_extra_status_is_deleted_only_with_prune() -> None:
    current = [*IN_STEP, ("Archived", "completed")]
    kept = plan_catalog(catalog(), [kantata_set("1", "PROJ", current)], prune=False)
    assert kept.actions == ()
    assert [k.name for k in kept.sets[0].kept] == ["Archived"]
    assert "--prune deletes it" in render_plan(kept)

    pruned = plan_catalog(catalog(), [kantata_set("1", "PROJ", current)], prune=True)
    (delete,) = pruned.actions
    assert (delete.kind, delete.name, delete.status_id) == (ActionKind.DELETE_STATUS, "Archived", "104")


def test_prune_keeps_the_last_status_of_a_category() -> None:
    # Given a set whose only 'needs info' status is not in the configuration
    current = [
        ("To Do", "not started"),
        ("In Progress", "started"),
        ("Done", "completed"),
        ("needs info", "needs info"),
    ]
    desired = (WORKFLOW[0], WORKFLOW[1], WORKFLOW[3])
    # When pruning
    plan = plan_catalog(catalog(*desired), [kantata_set("1", "PROJ", current)], prune=True)
    # Then it is kept, with the reason: Kantata sends a deleted status's tasks to its category's default
    assert plan.actions == ()
    assert "the last 'needs info' status" in plan.sets[0].kept[0].reason


def test_category_change_is_delete_then_create_with_a_warning() -> None:
    current = [*IN_STEP, ("QA", "started")]
    desired = (*WORKFLOW, DesiredStatus("QA", "needs info"))
    plan = plan_catalog(catalog(*desired), [kantata_set("1", "PROJ", current)])
    assert [(a.kind, a.name, a.category, a.old_category) for a in plan.actions] == [
        (ActionKind.DELETE_STATUS, "QA", "needs info", "started"),
        (ActionKind.CREATE_STATUS, "QA", "needs info", "started"),
    ]
    (warning,) = plan.warnings
    assert "fall back to the default 'started' status" in warning
    assert "replace status" in render_plan(plan)


def test_category_change_of_the_last_status_adds_a_placeholder_first() -> None:
    # Given 'Blocked' is the only 'needs info' status and the config moves it to 'started'
    desired = (WORKFLOW[0], WORKFLOW[1], DesiredStatus("Blocked", "started"), WORKFLOW[3])
    plan = plan_catalog(catalog(*desired), [kantata_set("1", "PROJ", IN_STEP)])
    # Then a placeholder keeps the category before the old status is deleted, and the new one is made after
    assert [(a.kind.value, a.name, a.category or a.old_category) for a in plan.actions[:3]] == [
        ("add status", "needs info", "needs info"),
        ("delete status", "Blocked", "started"),
        ("add status", "Blocked", "started"),
    ]
    assert any("'needs info' category is not left empty" in w for w in plan.warnings)


def test_two_statuses_swapping_categories_use_a_temporary_placeholder() -> None:
    # Given 'Blocked' (needs info) and 'Doing' (started) are their categories' only statuses, and swap them
    current = [
        ("To Do", "not started"),
        ("Doing", "started"),
        ("Blocked", "needs info"),
        ("Done", "completed"),
    ]
    desired = (
        WORKFLOW[0],
        DesiredStatus("Doing", "needs info"),
        DesiredStatus("Blocked", "started"),
        WORKFLOW[3],
    )
    plan = plan_catalog(catalog(*desired), [kantata_set("1", "PROJ", current)])
    steps = [(a.kind.value, a.name) for a in plan.actions if a.kind is not ActionKind.REORDER]
    # Then a placeholder covers the first delete and goes once the swap has given the category a status again
    assert steps == [
        ("add status", "started"),
        ("delete status", "Doing"),
        ("add status", "Doing"),
        ("delete status", "Blocked"),
        ("add status", "Blocked"),
        ("delete status", "started"),
    ]


def test_renames_and_creates_come_first_then_replacements_then_pruned_extras() -> None:
    current = [*IN_STEP, ("Old", "started"), ("QA", "started")]
    desired = (*WORKFLOW, DesiredStatus("QA", "completed"), DesiredStatus("Review", "started"))
    plan = plan_catalog(catalog(*desired), [kantata_set("1", "PROJ", current)], prune=True)
    sequence = [(a.kind.value, a.name) for a in plan.actions if a.kind is not ActionKind.REORDER]
    assert sequence == [
        ("add status", "Review"),
        ("delete status", "QA"),
        ("add status", "QA"),
        ("delete status", "Old"),
    ]


def test_reorder_moves_from_the_first_status_out_of_place() -> None:
    current = [
        ("To Do", "not started"),
        ("Done", "completed"),
        ("In Progress", "started"),
        ("Blocked", "needs info"),
    ]
    plan = plan_catalog(catalog(), [kantata_set("1", "PROJ", current)])
    (reorder,) = plan.actions
    assert reorder.order == ("To Do", "In Progress", "Blocked", "Done")
    assert [(m.name, m.position) for m in reorder.moves] == [("In Progress", 1), ("Blocked", 2), ("Done", 3)]


def test_kept_extras_are_moved_after_the_desired_statuses() -> None:
    current = [("To Do", "not started"), ("Extra", "started"), ("In Progress", "started"), *IN_STEP[2:]]
    plan = plan_catalog(catalog(), [kantata_set("1", "PROJ", current)])
    (reorder,) = plan.actions
    assert reorder.order == ("To Do", "In Progress", "Blocked", "Done", "Extra")
    assert [(m.name, m.position) for m in reorder.moves] == [
        ("In Progress", 1),
        ("Blocked", 2),
        ("Done", 3),
        ("Extra", 4),
    ]


def test_set_matches_by_exact_name_only() -> None:
    plan = plan_catalog(catalog(), [kantata_set("1", "proj", IN_STEP)])
    assert plan.actions[0].kind is ActionKind.CREATE_SET


def test_set_previous_name_renames_the_set() -> None:
    plan = plan_catalog(catalog(previous_names=("Old PROJ",)), [kantata_set("7", "Old PROJ", IN_STEP)])
    (rename,) = plan.actions
    assert (rename.kind, rename.set_id, rename.name, rename.new_name) == (
        ActionKind.RENAME_SET,
        "7",
        "Old PROJ",
        "PROJ",
    )


def test_two_kantata_sets_with_the_name_is_an_error_and_plans_nothing_for_it() -> None:
    plan = plan_catalog(catalog(), [kantata_set("1", "PROJ", IN_STEP), kantata_set("2", "PROJ", IN_STEP)])
    assert plan.actions == ()
    assert "Kantata has 2 sets with this name (ids 1, 2)" in plan.errors[0]
    assert "ERROR" in render_plan(plan)


@pytest.mark.parametrize(
    ("workspaces", "expected"),
    [
        (
            {
                11: Workspace("11", "A", task_status_set_id="1"),
                12: Workspace("12", "B", task_status_set_id="1"),
            },
            None,
        ),
        (
            {
                11: Workspace("11", "A", task_status_set_id="1"),
                12: Workspace("12", "B", task_status_set_id="9"),
            },
            (12,),
        ),
        ({11: Workspace("11", "A", task_status_set_id=None), 12: None}, (11, 12)),
    ],
)
def test_workspaces_are_assigned_only_when_they_use_another_set(
    workspaces: dict[int, Workspace | None], expected: tuple[int, ...] | None
) -> None:
    plan = plan_catalog(
        catalog(workspaces=(11, 12)), [kantata_set("1", "PROJ", IN_STEP)], workspaces=workspaces
    )
    assigns = only(plan, ActionKind.ASSIGN_WORKSPACES)
    assert (assigns[0].workspace_ids if assigns else None) == expected


def test_account_default_is_re_sent_every_run_but_not_counted_as_a_change() -> None:
    plan = plan_catalog(catalog(account_default=True), [kantata_set("1", "PROJ", IN_STEP)])
    (action,) = plan.actions
    assert action.kind is ActionKind.MAKE_DEFAULT
    assert action.ensure
    assert plan.changes == ()
    assert plan_summary(plan)["changes"] == 0


def test_status_renamed_in_kantata_is_renamed_back_through_its_pinned_id() -> None:
    # Given the last apply pinned 'In Progress' as status 101, and someone renamed it 'Doing' in Kantata
    current = [
        ("To Do", "not started"),
        ("Doing", "started"),
        ("Blocked", "needs info"),
        ("Done", "completed"),
    ]
    pins = CatalogPins({"PROJ": SetPins("1", {"in progress": "101"})})
    # When planning with the pins
    plan = plan_catalog(catalog(), [kantata_set("1", "PROJ", current)], pins=pins)
    # Then it is renamed back (its tasks keep their status) rather than added again beside 'Doing'
    (rename,) = plan.actions
    assert (rename.kind, rename.status_id, rename.name, rename.new_name) == (
        ActionKind.RENAME_STATUS,
        "101",
        "Doing",
        "In Progress",
    )
    assert rename.reason == "renamed in Kantata (id pinned by the last apply)"


def test_pins_of_another_set_or_a_vanished_status_are_ignored() -> None:
    current = [
        ("To Do", "not started"),
        ("Doing", "started"),
        ("Blocked", "needs info"),
        ("Done", "completed"),
    ]
    stale = CatalogPins({"PROJ": SetPins("9", {"in progress": "101"})})  # the set was re-created since
    plan = plan_catalog(catalog(), [kantata_set("1", "PROJ", current)], pins=stale)
    assert kinds(plan)[0] == ("add status", "In Progress", None)


def test_set_renamed_in_kantata_is_renamed_back_through_its_pinned_id() -> None:
    pins = CatalogPins({"PROJ": SetPins("1", {})})
    plan = plan_catalog(catalog(), [kantata_set("1", "Someone's rename", IN_STEP)], pins=pins)
    (rename,) = plan.actions
    assert (rename.kind, rename.name, rename.new_name) == (ActionKind.RENAME_SET, "Someone's rename", "PROJ")


def tied(statuses: Sequence[tuple[str, str, int]], *, reverse: bool = False) -> TaskStatusSet:
    """A Kantata set whose statuses carry the given positions, listed in the given order."""
    items = tuple(
        CustomTaskStatus(str(100 + i), name, category, position, 1)  # type: ignore[arg-type]
        for i, (name, category, position) in enumerate(statuses)
    )
    if reverse:
        items = items[::-1]
    return TaskStatusSet("1", "PROJ", tuple(s.id for s in items), items)


@pytest.mark.parametrize("reverse", [False, True], ids=["listed-by-id", "listed-against-id"])
def test_statuses_sharing_a_position_are_drift_whatever_order_kantata_lists_them_in(reverse: bool) -> None:
    # Given "In Progress" and "Blocked" both at position 1 (an interrupted reorder, positions stored as sent)
    current = [("To Do", "not started", 0), ("In Progress", "started", 1), ("Blocked", "needs info", 1)]
    plan = plan_catalog(catalog(), [tied([*current, ("Done", "completed", 2)], reverse=reverse)])
    # Then the plan rewrites the positions from the first status not at its own, and says why
    (reorder,) = plan.actions
    assert [(m.name, m.position) for m in reorder.moves] == [("Blocked", 2), ("Done", 3)]
    assert reorder.reason == (
        '"In Progress" and "Blocked" share position 1 in Kantata, so their order is not definite'
    )
    assert '"In Progress" and "Blocked" share position 1' in render_plan(plan)


def test_gapped_positions_are_drift_renumbered_from_the_gap() -> None:
    current = [("To Do", "not started", 0), ("In Progress", "started", 1), ("Blocked", "needs info", 3)]
    plan = plan_catalog(catalog(), [tied([*current, ("Done", "completed", 4)])])
    (reorder,) = plan.actions
    assert [(m.name, m.position) for m in reorder.moves] == [("Blocked", 2), ("Done", 3)]
    assert "gaps (0, 1, 3, 4)" in reorder.reason


def test_positions_need_not_start_at_zero() -> None:
    plan = plan_catalog(catalog(), [tied([(n, c, i + 1) for i, (n, c) in enumerate(IN_STEP)])])
    assert plan.actions == ()
