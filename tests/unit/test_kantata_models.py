"""Kantata models: enumerations are checked before sending, bodies have Kantata's shapes and id types.

The error classes are tested over HTTP in test_kantata_client.py (status → class, per-field messages,
Retry-After), not again here."""

import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from kantata_bridge.kantata.errors import KantataValueError
from kantata_bridge.kantata.models import (
    ExternalReferenceUpsert,
    Included,
    InlineExternalReference,
    NewStory,
    StatusReport,
    StatusReportDetail,
    Story,
    StoryExternalReference,
    StoryUpdate,
    TaskStatusSet,
    Workspace,
    WorkspaceTaskStatusSet,
    check_date,
)


def _report(**overrides: object) -> StatusReport:
    fields: dict[str, object] = {
        "workspace_id": "7",
        "color": "green",
        "description": "All good",
        "details": (StatusReportDetail("Scope", "green", "On track"),),
        "external_reference": InlineExternalReference("jira", "issue", "PROJ-12", external_status="Done"),
    }
    fields.update(overrides)
    return StatusReport(**fields)  # type: ignore[arg-type]


def test_create_body_has_string_workspace_id_details_and_inline_reference() -> None:
    body = _report().to_body()
    assert body == {
        "workspace_id": "7",
        "color": "green",
        "description": "All good",
        "details": [{"category": "Scope", "color": "green", "description": "On track"}],
        "external_reference": {
            "service_name": "jira",
            "service_model": "issue",
            "service_model_ref": "PROJ-12",
            "external_status": "Done",
        },
    }


def test_update_body_leaves_out_workspace_id_which_kantata_cannot_change() -> None:
    assert "workspace_id" not in _report().to_body(for_update=True)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"color": "blue"}, "color"),
        ({"details": (StatusReportDetail("scope", "green"),)}, "details[].category"),  # type: ignore[arg-type]
        ({"details": (StatusReportDetail("Budget", "amber"),)}, "details[].color"),  # type: ignore[arg-type]
        ({"workspace_id": None}, "workspace_id"),
        ({"external_reference": InlineExternalReference("", "issue", "X-1")}, "service_name"),
        (
            {"details": (StatusReportDetail("Scope", "green"), StatusReportDetail("Scope", "red"))},
            "more than once",
        ),
    ],
)
def test_values_kantata_would_refuse_are_caught_before_sending(
    overrides: dict[str, object], field: str
) -> None:
    with pytest.raises(KantataValueError, match=re.escape(field)):
        _report(**overrides).to_body()


def test_external_reference_upsert_sends_integer_subject_id_and_checks_status() -> None:
    ref = ExternalReferenceUpsert("StatusReport", 12, "jira", "issue", "PROJ-12", status="successful")
    assert ref.to_body()["subject_id"] == 12
    with pytest.raises(KantataValueError, match="status"):
        ExternalReferenceUpsert("StatusReport", 12, "jira", "issue", "PROJ-12", status="ok").to_body()  # type: ignore[arg-type]


def test_bulk_assignment_sends_integers() -> None:
    assert WorkspaceTaskStatusSet(workspace_id="5", status_set_id="9").to_body() == {  # type: ignore[arg-type]
        "workspace_id": 5,
        "status_set_id": 9,
    }


def test_task_status_set_reads_included_statuses_in_position_order() -> None:
    envelope = {
        "task_status_sets": {"3": {"id": "3", "name": "Jira PROJ", "custom_task_status_ids": ["11", "10"]}},
        "custom_task_statuses": {
            "10": {
                "id": "10",
                "status": "To Do",
                "category": "not started",
                "position": 0,
                "status_set_id": 3,
            },
            "11": {"id": "11", "status": "Done", "category": "completed", "position": 1, "status_set_id": 3},
        },
    }
    included = Included(envelope)
    status_set = TaskStatusSet.from_api(envelope["task_status_sets"]["3"], included)
    assert [s.status for s in status_set.statuses] == ["To Do", "Done"]
    assert status_set.statuses[0].status_set_id == 3


# ---------------------------------------------------------------- stories


def test_new_story_body_sends_only_what_is_set_with_an_integer_workspace() -> None:
    assert NewStory(workspace_id="41234567", title="Checkout fails").to_body() == {
        "workspace_id": 41234567,
        "title": "Checkout fails",
    }
    full = NewStory(
        workspace_id=7,
        title="Checkout fails",
        status="To Do",
        story_type="issue",
        description="https://jira/PROJ-12",
        start_date=date(2026, 11, 20),
        due_date="2026-12-01",
        priority="high",
        archived=False,
        external_reference=StoryExternalReference("jira", "issue", "PROJ-12", status="pending", locked=False),
    ).to_body()
    assert full == {
        "workspace_id": 7,
        "title": "Checkout fails",
        "status": "To Do",
        "story_type": "issue",
        "description": "https://jira/PROJ-12",
        "start_date": "2026-11-20",
        "due_date": "2026-12-01",
        "priority": "high",
        "archived": False,
        "external_reference": {
            "service_name": "jira",
            "service_model": "issue",
            "service_model_ref": "PROJ-12",
            "status": "pending",
            "locked": False,
        },
    }


@pytest.mark.parametrize(
    ("story", "field"),
    [
        (NewStory(7, ""), "title"),
        (NewStory(None, "t"), "workspace_id"),  # type: ignore[arg-type]
        (NewStory("7a", "t"), "workspace_id"),
        (NewStory(True, "t"), "workspace_id"),
        (NewStory(-1, "t"), "workspace_id"),
        (NewStory(7, "t", status=" "), "status"),
        (NewStory(7, "t", story_type="Task"), "story_type"),  # type: ignore[arg-type]
        (NewStory(7, "t", priority="medium"), "priority"),  # type: ignore[arg-type]
        (NewStory(7, "t", description="x" * 1000), "description"),
        (NewStory(7, "t", description=5), "description"),  # type: ignore[arg-type]
        (NewStory(7, "t", due_date="2026-02-30"), "due_date"),
        (NewStory(7, "t", due_date=datetime(2026, 12, 1, tzinfo=UTC)), "due_date"),
        (NewStory(7, "t", start_date="2026-12-1"), "start_date"),
        (NewStory(7, "t", archived="no"), "archived"),  # type: ignore[arg-type]
        (NewStory(7, "t", external_reference=StoryExternalReference("jira", "", "P-1")), "service_model"),
        (NewStory(7, "t", external_reference=StoryExternalReference("jira", "issue", "P-1", status="done")),  # type: ignore[arg-type]
         "external_reference.status"),
    ],
)  # fmt: skip
def test_story_values_kantata_would_refuse_are_caught_before_sending(story: NewStory, field: str) -> None:
    with pytest.raises(KantataValueError, match=re.escape(field)):
        story.to_body()


def test_a_description_of_999_characters_is_sent() -> None:
    assert len(NewStory(7, "t", description="x" * 999).to_body()["description"]) == 999


@pytest.mark.parametrize(
    ("update", "expected"),
    [
        (StoryUpdate(status="In Review"), {"status": "In Review"}),
        (StoryUpdate(state="completed"), {"state": "completed"}),
        (StoryUpdate(title="t", due_date=date(2026, 12, 24)), {"title": "t", "due_date": "2026-12-24"}),
        (StoryUpdate(external_reference=StoryExternalReference("jira", "issue", "P-1", status="successful")),
         {"external_reference": {"service_name": "jira", "service_model": "issue", "service_model_ref": "P-1",
                                 "status": "successful"}}),
    ],
)  # fmt: skip
def test_story_update_body_holds_only_the_given_fields(update: StoryUpdate, expected: dict[str, Any]) -> None:
    assert update.to_body() == expected


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (StoryUpdate(), "at least one field"),
        (StoryUpdate(status="Done", state="completed"), "not both"),
        (StoryUpdate(state="Completed"), "state"),  # type: ignore[arg-type]
        (StoryUpdate(title=" "), "title"),
        (StoryUpdate(priority="urgent"), "priority"),  # type: ignore[arg-type]
    ],
)
def test_story_updates_kantata_would_refuse_or_half_apply_are_refused(
    update: StoryUpdate, message: str
) -> None:
    with pytest.raises(KantataValueError, match=message):
        update.to_body()


@pytest.mark.parametrize(
    ("value", "expected"),
    [(date(2026, 1, 2), "2026-01-02"), ("2026-01-02", "2026-01-02"), ("2024-02-29", "2024-02-29")],
)
def test_check_date_takes_dates_and_iso_day_strings(value: object, expected: str) -> None:
    assert check_date("due_date", value) == expected


@pytest.mark.parametrize(
    "value", ["2025-02-29", "2026-1-2", "20260102", "", None, 20260102, "2026-01-02T00:00"]
)
def test_check_date_refuses_anything_else(value: object) -> None:
    with pytest.raises(KantataValueError, match="due_date"):
        check_date("due_date", value)


def test_story_reads_its_side_loaded_workspace_and_references_leniently() -> None:
    envelope = {
        "stories": {
            "301": {
                "id": 301,  # an integer where a string is documented
                "title": "Checkout fails",
                "status": "In Review",
                "state": "started",
                "priority": 1,  # typed integer in the Story schema
                "workspace_id": 7,
                "custom_task_status_id": "12",
                "external_reference_ids": ["55", "56"],
            }
        },
        "workspaces": {"7": {"id": "7", "title": "Acme", "task_status_set_id": 5, "task_statuses": ["In Review"]}},
        "external_references": {
            "55": {"id": "55", "subject_type": "Story", "subject_id": "301", "service_name": "jira",
                   "service_model": "issue", "service_model_ref": "PROJ-12", "status": "successful"},
        },
    }  # fmt: skip
    story = Story.from_api(envelope["stories"]["301"], Included(envelope))
    assert (story.id, story.workspace_id, story.priority, story.custom_task_status_id) == (
        "301",
        "7",
        "1",
        12,
    )
    assert story.workspace == Workspace("7", "Acme", task_status_set_id="5", task_statuses=("In Review",))
    # A reference id with no object in the maps is kept as an id but not invented as an object
    assert story.external_reference_ids == ("55", "56")
    assert [(r.id, r.subject_id) for r in story.external_references] == [("55", 301)]


def test_a_story_read_without_includes_has_no_workspace_or_links() -> None:
    story = Story.from_api({"id": "301", "title": "t"})
    assert (story.workspace_id, story.workspace, story.external_references) == (None, None, ())
    assert story.custom_task_status_id is None
