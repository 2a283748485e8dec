"""The OpenAPI contract helpers (kantata_sandbox.openapi) against the descriptions in ../shared/kantata/,
and the bridge's own write bodies (kantata_bridge.kantata.models) against the same descriptions."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from kantata_bridge.kantata.models import (
    ExternalReferenceUpsert,
    InlineExternalReference,
    NewStory,
    StatusReport,
    StatusReportDetail,
    StoryExternalReference,
    StoryUpdate,
    WorkspaceTaskStatusSet,
)
from kantata_sandbox import openapi
from kantata_sandbox.openapi import (
    ContractViolationError,
    SpecNotFoundError,
    validate_query,
    validate_request_body,
    validate_response,
)
from kantata_sandbox.server import RecordedRequest

try:
    openapi.load_contract()
except SpecNotFoundError as exc:  # the specs live outside the repo; say where they were looked for
    pytest.skip(str(exc), allow_module_level=True)

REPORT = {"workspace_id": "12", "color": "green", "description": "on track"}
ENVELOPE: dict[str, Any] = {
    "count": 1,
    "meta": {"count": 1, "page_count": 1, "page_number": 1, "page_size": 20},
    "results": [{"key": "status_reports", "id": "9"}],
    "status_reports": {"9": {"id": "9", "color": "green", "description": "x", "details": []}},
}


def test_a_valid_report_body_passes_for_any_spelling_of_the_path() -> None:
    for path in (
        "/status_reports",
        "/api/v1/status_reports.json",
        "https://api.mavenlink.com/api/v1/status_reports.json?include=workspace",
    ):
        validate_request_body("POST", path, {"status_report": REPORT})


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        (
            "POST",
            "/status_reports",
            {"status_report": {**REPORT, "workspace_id": 12}},
            "is not of type 'string'",
        ),
        (
            "POST",
            "/status_reports",
            {"status_report": {"workspace_id": "1", "color": "red"}},
            "'description' is a required",
        ),
        (
            "PUT",
            "/status_reports/9",
            {"status_report": {"details": [{"category": "Scope"}]}},
            "'color' is a required",
        ),
        (
            "PUT",
            "/status_reports/9",
            {"status_report": {"external_reference": {"service_name": "github"}}},
            "'service_model' is a required",
        ),
        (
            "POST",
            "/custom_task_statuses",
            {"custom_task_status": {"status": "Doing", "category": "started", "status_set_id": "5"}},
            "is not of type 'integer'",
        ),
        (
            "POST",
            "/external_references/create_or_update",
            {
                "external_reference": {
                    "subject_type": "StatusReport",
                    "subject_id": 9,
                    "service_name": "github",
                    "service_model": "issue",
                    "service_model_ref": 7,
                }
            },
            "is not of type 'string'",
        ),
        (
            "PUT",
            "/workspace_task_status_sets/bulk_update",
            {"workspace_task_status_sets": [{"workspace_id": "1", "status_set_id": 2}]},
            "is not of type 'integer'",
        ),
        ("POST", "/task_status_sets", None, "required"),
        (
            "PUT",
            "/task_status_sets/4/update_account_default",
            {"task_status_set": {}},
            "takes no request body",
        ),
        ("POST", "/stories", {"story": {"workspace_id": "7", "title": "t"}}, "is not of type 'integer'"),
        ("POST", "/stories", {"story": {"workspace_id": 7}}, "'title' is a required"),
        (
            "POST",
            "/stories",
            {"story": {"workspace_id": 7, "title": "t", "due_date": "1/12/2026"}},
            "is not a 'date'",
        ),
        (
            "POST",
            "/stories",
            {"story": {"workspace_id": 7, "title": "t", "priority": "urgent"}},
            "is not one of",
        ),
        (
            "PUT",
            "/stories/9",
            {"story": {"external_reference": {"service_name": "jira", "service_model_ref": "P-1"}}},
            "'service_model' is a required",
        ),
        ("PUT", "/stories/9", None, "required"),
        # There is no plain POST for external references, only create_or_update (CONTRACT §6.5).
        ("POST", "/external_references", {"external_reference": {}}, "no operation"),
    ],
)
def test_bodies_that_break_the_spec_are_refused_with_the_reason(
    method: str, path: str, body: Any, expected: str
) -> None:
    with pytest.raises(ContractViolationError, match=expected) as caught:
        validate_request_body(method, path, body)
    assert caught.value.problems


def test_update_account_default_takes_no_body() -> None:
    validate_request_body("PUT", "/task_status_sets/4/update_account_default.json", None)
    validate_request_body("DELETE", "/status_reports/4", None)


def test_bridge_model_bodies_match_the_spec() -> None:
    # Given the write bodies the bridge's client builds from its models
    report = StatusReport(
        workspace_id="12",
        color="yellow",
        description="Sprint 4",
        details=(StatusReportDetail("Scope", "green", "ok"), StatusReportDetail("Schedule", "red")),
        external_reference=InlineExternalReference("github", "issue", "acme/app#7", external_status="open"),
    )
    upsert = ExternalReferenceUpsert("StatusReport", 9, "github", "issue", "acme/app#7", status="successful")
    # Then each validates against its operation
    validate_request_body("POST", "/status_reports.json", {"status_report": report.to_body()})
    validate_request_body("PUT", "/status_reports/9.json", {"status_report": report.to_body(for_update=True)})
    validate_request_body(
        "POST", "/external_references/create_or_update", {"external_reference": upsert.to_body()}
    )
    validate_request_body(
        "PUT",
        "/workspace_task_status_sets/bulk_update",
        {"workspace_task_status_sets": [WorkspaceTaskStatusSet(12, 5).to_body()]},
    )


def test_bridge_story_bodies_match_the_spec() -> None:
    link = StoryExternalReference(
        "jira",
        "issue",
        "PROJ-12",
        status="successful",
        external_status="Done",
        external_link="https://x",
        locked=False,
    )
    new = NewStory(
        workspace_id="7", title="Checkout fails", status="To Do", story_type="issue", description="d",
        start_date=date(2026, 11, 20), due_date="2026-12-01", priority="critical", archived=False,
        external_reference=link,
    )  # fmt: skip
    validate_request_body("POST", "/stories.json", {"story": new.to_body()})
    validate_request_body("POST", "/stories.json", {"story": NewStory(7, "t").to_body()})
    for update in (
        StoryUpdate(status="Done", external_reference=link),
        StoryUpdate(state="completed"),
        StoryUpdate(title="t", description="d", story_type="milestone", priority="low", due_date="2026-12-24",
                    start_date=date(2026, 12, 1), archived=True),
    ):  # fmt: skip
        validate_request_body("PUT", "/stories/301.json", {"story": update.to_body()})
    validate_request_body("DELETE", "/stories/301", None)


def test_story_responses_follow_the_contract_text_where_the_schema_disagrees() -> None:
    story = {"id": "301", "title": "t", "status": "Done", "state": "completed", "priority": "normal",
             "custom_task_status_id": 12, "workspace_id": "7", "external_reference_ids": ["55"], "deleted_at": None}  # fmt: skip
    body = {"count": 1, "results": [{"key": "stories", "id": "301"}], "stories": {"301": story}}
    # priority is typed integer by the Story schema, but its words are what Kantata documents and sends
    validate_response("GET", "/stories/301", 200, body)
    validate_response("GET", "/stories/301", 200, {**body, "stories": {"301": {**story, "priority": 2}}})
    for bad, expected in (({"custom_task_status_id": "12"}, "custom_task_status_id"),
                          ({"workspace_id": 7}, "workspace_id"), ({"due_date": "soon"}, "due_date")):  # fmt: skip
        with pytest.raises(ContractViolationError, match=expected):
            validate_response("GET", "/stories", 200, {**body, "stories": {"301": {**story, **bad}}})
    # Requests stay strict: a priority in a request body must be one of the words
    with pytest.raises(ContractViolationError, match="priority"):
        validate_request_body("POST", "/stories", {"story": {"workspace_id": 7, "title": "t", "priority": 2}})


def test_documented_quirks_pass() -> None:
    # Objects carry an id the schemas do not list, validation errors carry a field the Error schema omits,
    # unset attributes come back null, and 429 (prose only) uses the common error body.
    validate_response("GET", "/status_reports", 200, ENVELOPE)
    validate_response(
        "POST",
        "/status_reports",
        422,
        {"errors": [{"type": "validation", "message": "bad", "field": "color"}]},
    )
    nullable = {
        **ENVELOPE,
        "status_reports": {"9": {"id": "9", "description": None, "details": [{"description": None}]}},
    }
    validate_response("GET", "/status_reports/9.json", 200, nullable)
    validate_response(
        "GET", "/workspaces", 429, b'{"errors": [{"type": "system", "message": "Too Many Requests"}]}'
    )
    validate_response("DELETE", "/status_reports/9", 204, b"")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {**ENVELOPE, "count": None}, "None is not of type 'integer'"),
        (200, {**ENVELOPE, "results": [{"key": "status_reports", "id": 9}]}, "must be a string"),
        (200, {**ENVELOPE, "results": [{"key": "status_reports", "id": "10"}]}, "not in the response"),
        (200, {**ENVELOPE, "status_reports": {"9": {"id": "8"}}}, "whose string id is"),
        (
            200,
            {**ENVELOPE, "status_reports": {"9": {"id": "9", "details": {"Scope": "green"}}}},
            "is not of type 'array'",
        ),
        (204, {"count": 0}, "empty body"),
        (422, {"errors": "bad"}, "is not of type 'array'"),
        (201, ENVELOPE, "does not declare status 201"),
    ],
)
def test_responses_that_break_the_contract_are_reported(status: int, body: Any, expected: str) -> None:
    with pytest.raises(ContractViolationError, match=expected):
        validate_response("GET" if status != 204 else "DELETE", "/status_reports/9", status, body)


def test_custom_task_status_ids_typing_is_checked() -> None:
    body = {
        "count": 1,
        "results": [{"key": "custom_task_statuses", "id": "3"}],
        "custom_task_statuses": {"3": {"id": "3", "status": "x", "position": 0, "status_set_id": "5"}},
    }
    with pytest.raises(ContractViolationError, match="status_set_id"):
        validate_response("GET", "/custom_task_statuses/3", 200, body)


def test_workspace_responses_are_checked_against_the_workspace_schema() -> None:
    good = {
        "count": 1,
        "results": [{"key": "workspaces", "id": "7"}],
        "workspaces": {"7": {"id": "7", "title": "Alpha", "archived": False, "task_statuses": ["started"]}},
    }
    validate_response("GET", "/workspaces.json?matching=alp", 200, good)
    with pytest.raises(ContractViolationError, match="archived"):
        validate_response(
            "GET", "/workspaces/7", 200, {**good, "workspaces": {"7": {"id": "7", "archived": "no"}}}
        )


def test_query_types_follow_the_spec() -> None:
    validate_query(
        "GET", "/status_reports", {"external_reference_service_model_refs": "acme/app#7", "page": "2"}
    )
    with pytest.raises(ContractViolationError, match="typed integer"):
        validate_query("GET", "/status_reports", {"external_reference_service_model_ref": "acme/app#7"})
    with pytest.raises(ContractViolationError, match="subject_type is required"):
        validate_query("GET", "/external_references", {"service_name": "github"})
    # The same integer typing on /stories and /workspaces (CONTRACT §6.6, §6.7)
    validate_query(
        "GET", "/stories", {"external_reference_service_model_refs": "PROJ-12", "show_deleted": "true"}
    )
    for path in ("/stories", "/workspaces"):
        with pytest.raises(ContractViolationError, match="typed integer"):
            validate_query("GET", path, {"external_reference_service_model_ref": "PROJ-12"})
    with pytest.raises(ContractViolationError, match="typed boolean"):
        validate_query("GET", "/stories/3", {"show_deleted": "yes"})


def test_missing_specs_give_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KANTATA_OPENAPI_DIR", str(tmp_path))
    openapi.load_contract.cache_clear()
    try:
        with pytest.raises(SpecNotFoundError, match="KANTATA_OPENAPI_DIR"):
            openapi.load_contract()
    finally:
        # Back to the setting this run started with (a checkout whose specs are not beside it sets one).
        monkeypatch.undo()
        openapi.load_contract.cache_clear()
    assert openapi.load_contract().operations


def test_default_spec_dir_is_the_shared_folder_beside_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KANTATA_OPENAPI_DIR", raising=False)
    assert openapi.spec_dir() == Path(__file__).resolve().parents[2].parent / "shared" / "kantata"


def test_recorded_sandbox_traffic_is_checked_entry_by_entry() -> None:
    # Given a log with a good answer, a dropped connection and an answer with an integer id
    good = RecordedRequest("GET", "/api/v1/status_reports", {}, {}, None, 200, ENVELOPE)
    dropped = RecordedRequest("POST", "/api/v1/status_reports", {}, {}, None, 0, None, "drop")
    bad_body = {**ENVELOPE, "status_reports": {"9": {"id": 9}}}
    bad = RecordedRequest("GET", "/api/v1/status_reports/9.json", {}, {}, None, 200, bad_body)
    # Then only the bad answer is reported, naming the request
    problems = openapi.check_recorded([good, dropped, bad])
    assert problems
    assert all(p.startswith("GET /api/v1/status_reports/9.json -> 200") for p in problems)
