"""The demo's "Kantata tasks moved" table, read from what the worker's task sync says in its outcomes.

The texts here are made by the real TaskSync (worker/tasks.py) with an in-memory Kantata, so a change of the
worker's wording that the demo cannot read fails here, not only in the end-to-end demo test.
"""

from __future__ import annotations

import datetime as dt

import pytest
from kantata_bridge.kantata.models import CustomTaskStatus, Story, TaskStatusSet, Workspace
from kantata_bridge.mapping.config import Route, TaskSettings
from kantata_bridge.tracker_event import Action, Model, TrackerEvent
from kantata_bridge.worker.tasks import TaskLink, TaskSync, outcome_fields, reference_for
from kantata_bridge_dev.local_stack import (
    TABLE_WIDTH,
    DeliveryRow,
    TaskMove,
    TaskSetup,
    WorkerOutcome,
    format_table,
    task_move,
    task_rows,
)

WORKFLOW = (
    ("To Do", "not started"),
    ("In Progress", "started"),
    ("Done", "completed"),
    ("Won't Do", "completed"),
)


class Kantata:
    """One workspace (with the WORKFLOW set, or Kantata's four defaults) and at most one linked task."""

    def __init__(self, story_status: str | None, *, with_set: bool = True) -> None:
        self.with_set = with_set
        self.story = (
            None
            if story_status is None
            else Story("41230", "Checkout", status=story_status, workspace_id="100")
        )

    def list_stories(self, **filters):
        return [] if self.story is None else [self.story]

    def create_story(self, new):
        return Story("41231", new.title, status=new.status, workspace_id=str(new.workspace_id))

    def update_story(self, story_id, **fields):
        return self.story

    def get_workspace(self, workspace_id):
        return Workspace(str(workspace_id), "Project PROJ", task_status_set_id="7" if self.with_set else None)

    def get_task_status_set(self, set_id, *, include_statuses=True):
        statuses = tuple(CustomTaskStatus(str(i), n, c, i, 7) for i, (n, c) in enumerate(WORKFLOW))
        return TaskStatusSet("7", "PROJ workflow", statuses=statuses)


def event(
    status: str, category: str, action: Action = Action.STATUS_CHANGED, tracker: str = "jira"
) -> TrackerEvent:
    return TrackerEvent(
        tracker=tracker,
        model=Model.ISSUE,
        ref="PROJ-12",
        title="Checkout fails on Safari",
        status_name=status,
        status_category=category,
        link="https://acme.atlassian.net/browse/PROJ-12",
        action=action,
        version=dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC),
        project="PROJ",
    )


def task_text(
    kantata: Kantata, ev: TrackerEvent, settings: TaskSettings, cached: TaskLink | None = None
) -> str:
    result = TaskSync().sync(kantata, ev, Route("jira", "PROJ", "100", tasks=settings), cached, lambda: None)
    return str(outcome_fields(result)["task"])


UPDATE = TaskSettings("update")


@pytest.mark.parametrize(
    ("kantata", "ev", "settings", "expected"),
    [
        pytest.param(
            Kantata("To Do"),
            event("In Progress", "indeterminate"),
            UPDATE,
            TaskMove("To Do", "In Progress", "same name as jira's 'In Progress'"),
            id="moved, same name",
        ),
        pytest.param(
            Kantata("In Progress"),
            event("Won't Do", "done"),
            UPDATE,
            TaskMove("In Progress", "Won't Do", "same name as jira's \"Won't Do\""),
            id="a name with a quote",
        ),
        pytest.param(
            Kantata("not started", with_set=False),
            event("closed", "closed", Action.CLOSED, tracker="github"),
            UPDATE,
            TaskMove(
                "not started",
                "completed",
                "no 'closed' in the four default statuses (no set assigned): default of category 'completed'",
            ),
            id="moved, category default",
        ),
        pytest.param(
            Kantata("not started", with_set=False),
            event("in review", "opened", tracker="gitlab"),
            TaskSettings("update", {"in review": "started"}),
            TaskMove("not started", "started", "route's task_statuses: 'in review'"),
            id="moved, route's map",
        ),
        pytest.param(
            Kantata("To Do"),
            event("To Do", "new", Action.CREATED),
            UPDATE,
            TaskMove("To Do", "To Do", "already there; reference updated"),
            id="stays, reference updated",
        ),
        pytest.param(
            Kantata("To Do"),
            event("Weird", "unheard-of"),
            UPDATE,
            TaskMove(
                "To Do",
                "To Do",
                "left alone: no 'Weird' in set 'PROJ workflow', and no status of category 'unheard-of' to fall "
                "back to",
            ),
            id="left alone",
        ),
        pytest.param(
            Kantata("Done"),
            event("Done", "done", Action.DELETED),
            UPDATE,
            TaskMove("Done", "Done", "status left: the object was deleted; reference updated"),
            id="deleted, status left",
        ),
        pytest.param(
            Kantata(None),
            event("To Do", "new", Action.CREATED),
            TaskSettings("create"),
            TaskMove("-", "To Do", "created: same name as jira's 'To Do'"),
            id="created",
        ),
        pytest.param(
            Kantata(None),
            event("To Do", "new"),
            UPDATE,
            TaskMove("?", "?", "not linked: no Kantata task is linked to PROJ-12"),
            id="not linked: shown whole",
        ),
    ],
)
def test_each_thing_task_sync_says_reads_as_from_to_and_why(kantata, ev, settings, expected):
    assert task_move(task_text(kantata, ev, settings)) == expected


def test_a_task_already_written_reads_as_unchanged():
    ev = event("In Progress", "indeterminate")
    ref = reference_for(ev)
    written = {
        "status": "In Progress",
        "external_status": ref.external_status,
        "external_link": ref.external_link,
        "external_message": ref.external_message,
    }
    text = task_text(Kantata("In Progress"), ev, UPDATE, TaskLink("41230", "100", written))
    assert task_move(text) == TaskMove(
        "In Progress", "In Progress", "unchanged: already there, nothing written"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "updated",
        "updated: something new the demo does not know",
        "moved task 1 from 'a' to 'b' (why)",  # no action
        "unchanged: moved task 1 from 'a' to 'b' (why)",  # another action's words
    ],
)
def test_a_text_in_another_form_is_shown_whole_not_dropped(text):
    assert task_move(text) == TaskMove("?", "?", text)


def outcome(key: str, task_id: str | None, task: str | None) -> WorkerOutcome:
    return WorkerOutcome(key, "posted", "posted", report_id="1", task_id=task_id, task=task)


def row(label: str, worker: WorkerOutcome | None) -> DeliveryRow:
    return DeliveryRow(
        label, "", "d", 202 if worker else 401, worker.outcome if worker else "rejected", "", worker
    )


def test_the_table_has_a_row_per_delivery_with_a_task_in_delivery_order_with_the_object_it_is_linked_to():
    rows = [
        row("jira_issue_created", outcome("a", "7", "updated: task 7 stays 'To Do'; reference updated")),
        row("forged", None),
        row("duplicate", WorkerOutcome("a", "skipped", "duplicate: already processed")),
        row("unlinked", outcome("b", None, "not linked: no Kantata task is linked to ENG-1")),
        row(
            "jira_issue_updated_done", outcome("c", "7", "updated: moved task 7 from 'To Do' to 'Done' (why)")
        ),
        row("github", outcome("d", "8", "unchanged: task 8 is already 'not started'")),
    ]
    assert task_rows(rows, {"7": "PROJ-12"}) == [
        ["7", "PROJ-12", "To Do", "To Do", "already there; reference updated"],
        ["7", "PROJ-12", "To Do", "Done", "why"],
        ["8", "-", "not started", "not started", "unchanged: already there, nothing written"],
    ]


def test_a_long_why_wraps_within_120_columns_and_is_never_cut():
    why = "no 'merged' in the four default statuses (no set assigned): default of category 'completed' " * 3
    table = format_table(
        ["task", "object", "from", "to", "why"],
        [["41030", "acme/platform/checkout#12", "not started", "completed", why.strip()]],
        width=TABLE_WIDTH,
    )
    assert max(len(line) for line in table.splitlines()) <= TABLE_WIDTH
    start = table.splitlines()[0].index("why")
    assert " ".join(line[start:].strip() for line in table.splitlines()[2:]) == why.strip()


def test_the_setup_lines_fit_the_width_and_name_every_set_and_task():
    setup = TaskSetup(
        sets=(("PROJ workflow", 10, "jira", "Project PROJ"),),
        tasks=tuple((str(41000 + i), f"acme/platform/checkout#{i}") for i in range(12)),
    )
    text = setup.text(TABLE_WIDTH)
    assert (
        text.splitlines()[1]
        == "  task status set 'PROJ workflow' (10 statuses, the sample Jira workflow) → Project PROJ"
    )
    assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH
    assert all(f"checkout#{i}," in text or text.endswith(f"checkout#{i}") for i in range(12))
    assert TaskSetup().text() == ""
