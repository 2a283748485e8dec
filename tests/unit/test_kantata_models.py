"""Kantata models: enumerations are checked before sending, bodies have Kantata's shapes and id types.

The error classes are tested over HTTP in test_kantata_client.py (status → class, per-field messages,
Retry-After), not again here."""

import re

import pytest
from kantata_bridge.kantata.errors import KantataValueError
from kantata_bridge.kantata.models import (
    ExternalReferenceUpsert,
    Included,
    InlineExternalReference,
    StatusReport,
    StatusReportDetail,
    TaskStatusSet,
    WorkspaceTaskStatusSet,
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
