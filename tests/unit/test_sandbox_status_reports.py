"""Status reports in the Kantata sandbox, over real HTTP (CONTRACT.md §6.1, §7, §8).

Every response in these tests is also checked against the OpenAPI contract (fixture kantata_sandbox_contract).
"""

from __future__ import annotations

import pytest
from kantata_sandbox.server import KantataSandbox

from tests.unit.sandbox_http import Api, error_fields, first, primary


@pytest.fixture
def api(kantata_sandbox_contract: KantataSandbox) -> Api:
    return Api(kantata_sandbox_contract)


@pytest.fixture
def workspace(kantata_sandbox_contract: KantataSandbox) -> str:
    return kantata_sandbox_contract.add_workspace("Alpha Launch")


def test_create_returns_200_envelope_with_string_ids_and_hides_foreign_keys(api: Api, workspace: str) -> None:
    # Given a workspace; When a report is created without include
    response = api.post(
        "/status_reports.json",
        {"status_report": {"workspace_id": workspace, "color": "yellow", "description": "slipping"}},
    )
    # Then Kantata's create answer: 200 (not 201), the envelope, a string id, no workspace_id
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["meta"] == {"count": 1, "page_count": 1, "page_number": 1, "page_size": 20}
    report = first(body)
    assert isinstance(report["id"], str)
    assert body["results"] == [{"key": "status_reports", "id": report["id"]}]
    assert report["color"] == "yellow"
    assert report["description"] == "slipping"
    assert "workspace_id" not in report
    assert "external_reference_ids" not in report


def test_include_workspace_and_external_references_side_loads_them(api: Api, workspace: str) -> None:
    # Given a report created with an inline external reference
    ref = {"service_name": "github", "service_model": "issue", "service_model_ref": "acme/app#7"}
    created = api.create_report(workspace, external_reference=ref)
    # When it is read with include=workspace,external_references
    body = api.get(f"/status_reports/{created['id']}.json", include="workspace,external_references").json()
    # Then the foreign keys appear and the associations are in their own maps, keyed by string id
    report = first(body)
    assert report["workspace_id"] == workspace
    assert body["workspaces"][workspace]["title"] == "Alpha Launch"
    (ref_id,) = report["external_reference_ids"]
    stored = body["external_references"][ref_id]
    assert stored["subject_type"] == "StatusReport"
    assert stored["subject_id"] == int(report["id"])
    assert stored["service_model_ref"] == "acme/app#7"


def test_missing_required_fields_answer_422_naming_each_field(api: Api) -> None:
    # When a report lacks workspace_id, color and description
    response = api.post("/status_reports", {"status_report": {}})
    # Then 422 with a validation error per field
    assert response.status_code == 422
    assert {"workspace_id", "color", "description"} <= error_fields(response)
    assert all(e["type"] == "validation" for e in response.json()["errors"])


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"color": "blue"}, "color"),
        ({"color": "Green"}, "color"),
        ({"details": [{"category": "Quality", "color": "green"}]}, "details.category"),
        ({"details": [{"category": "scope", "color": "green"}]}, "details.category"),
        ({"details": [{"category": "Scope", "color": "amber"}]}, "details.color"),
        (
            {"details": [{"category": "Scope", "color": "red"}, {"category": "Scope", "color": "red"}]},
            "details.category",
        ),
        ({"external_reference": {"service_name": "github"}}, "external_reference.service_model"),
    ],
)
def test_values_outside_kantata_enumerations_are_refused_and_nothing_is_stored(
    api: Api,
    workspace: str,
    kantata_sandbox_contract: KantataSandbox,
    fields: dict[str, object],
    bad_field: str,
) -> None:
    body = {"workspace_id": workspace, "color": "green", "description": "x", **fields}
    response = api.post("/status_reports", {"status_report": body})
    assert response.status_code == 422
    assert bad_field in error_fields(response)
    assert kantata_sandbox_contract.state.status_reports == {}


def test_report_on_unknown_or_archived_workspace_is_refused(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    archived = kantata_sandbox_contract.add_workspace("Old", archived=True)
    for workspace_id in ("999999", archived):
        response = api.post(
            "/status_reports",
            {"status_report": {"workspace_id": workspace_id, "color": "red", "description": "x"}},
        )
        assert response.status_code == 422
        assert error_fields(response) == {"workspace_id"}


def test_put_replaces_details_wholly(
    api: Api, workspace: str, kantata_sandbox_contract: KantataSandbox
) -> None:
    # Given a report with Scope and Budget details
    report = api.create_report(
        workspace,
        details=[
            {"category": "Scope", "color": "green", "description": "ok"},
            {"category": "Budget", "color": "red"},
        ],
    )
    # When it is updated with Schedule only
    response = api.put(
        f"/status_reports/{report['id']}.json",
        {"status_report": {"details": [{"category": "Schedule", "color": "yellow", "description": "late"}]}},
    )
    # Then the left-out categories are gone and the other fields are unchanged
    assert response.status_code == 200
    updated = first(response.json())
    assert updated["details"] == [{"category": "Schedule", "color": "yellow", "description": "late"}]
    assert updated["color"] == "green"
    assert updated["description"] == "on track"
    assert kantata_sandbox_contract.state.status_reports[report["id"]].details == updated["details"]


def test_put_refuses_moving_a_report_to_another_workspace(
    api: Api, workspace: str, kantata_sandbox_contract: KantataSandbox
) -> None:
    other = kantata_sandbox_contract.add_workspace("Beta")
    report = api.create_report(workspace)
    response = api.put(
        f"/status_reports/{report['id']}", {"status_report": {"workspace_id": other, "color": "red"}}
    )
    assert response.status_code == 422
    assert error_fields(response) == {"workspace_id"}
    stored = kantata_sandbox_contract.state.status_reports[report["id"]]
    assert (stored.workspace_id, stored.color) == (workspace, "green")


def test_put_with_inline_reference_upserts_on_service_name(api: Api, workspace: str) -> None:
    ref = {"service_name": "jira", "service_model": "issue", "service_model_ref": "PROJ-1"}
    report = api.create_report(workspace, external_reference=ref)
    api.put(
        f"/status_reports/{report['id']}",
        {
            "status_report": {
                "external_reference": {**ref, "service_model_ref": "PROJ-2", "external_status": "Done"}
            }
        },
    )
    body = api.get(f"/status_reports/{report['id']}", include="external_references").json()
    (ref_id,) = first(body)["external_reference_ids"]
    assert body["external_references"][ref_id]["service_model_ref"] == "PROJ-2"
    assert body["external_references"][ref_id]["external_status"] == "Done"


def test_list_is_newest_first_and_filters_by_workspace(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    alpha = kantata_sandbox_contract.add_workspace("Alpha")
    beta = kantata_sandbox_contract.add_workspace("Beta")
    older = api.create_report(alpha)
    api.create_report(beta)
    newer = api.create_report(alpha)
    body = api.get("/status_reports.json", workspace_id=alpha).json()
    assert [r["id"] for r in primary(body)] == [newer["id"], older["id"]]
    assert body["count"] == 2


def test_list_filters_by_external_reference_fields(api: Api, workspace: str) -> None:
    # Given reports synced from two GitHub issues and one Jira issue
    def ref(service: str, model_ref: str, external_status: str) -> dict[str, str]:
        return {
            "service_name": service,
            "service_model": "issue",
            "service_model_ref": model_ref,
            "external_status": external_status,
        }

    gh1 = api.create_report(workspace, external_reference=ref("github", "1", "open"))
    gh2 = api.create_report(workspace, external_reference=ref("github", "2", "closed"))
    jira = api.create_report(workspace, external_reference=ref("jira", "1", "open"))
    plain = api.create_report(workspace)

    def ids(**query: str) -> list[str]:
        return [r["id"] for r in primary(api.get("/status_reports", **query).json())]

    # Then each filter narrows as Kantata documents, all conditions applying to the same reference
    assert ids(external_reference_service_name="github") == [gh2["id"], gh1["id"]]
    assert ids(external_reference_service_name="github", external_reference_service_model_ref="1") == [
        gh1["id"]
    ]
    assert ids(external_reference_service_model_refs="1,2", external_reference_service_name="github") == [
        gh2["id"],
        gh1["id"],
    ]
    assert ids(external_reference_external_status="open") == [jira["id"], gh1["id"]]
    assert ids(external_reference_service_model="issue", external_reference_service_name="jira") == [
        jira["id"]
    ]
    assert ids(has_external_references="false") == [plain["id"]]
    assert ids(has_external_references="true", only=f"{gh1['id']},{plain['id']}") == [gh1["id"]]


def test_only_with_no_match_is_an_empty_list_not_404(api: Api, workspace: str) -> None:
    api.create_report(workspace)
    response = api.get("/status_reports", only="424242")
    assert response.status_code == 200
    assert response.json()["count"] == 0
    assert response.json()["results"] == []


def test_show_and_delete(api: Api, workspace: str, kantata_sandbox_contract: KantataSandbox) -> None:
    report = api.create_report(
        workspace, external_reference={"service_name": "g", "service_model": "i", "service_model_ref": "1"}
    )
    response = api.delete(f"/status_reports/{report['id']}.json")
    assert response.status_code == 204
    assert response.content == b""
    assert api.get(f"/status_reports/{report['id']}").status_code == 404
    assert api.delete(f"/status_reports/{report['id']}").status_code == 404
    # The report's external references go with it.
    assert kantata_sandbox_contract.state.external_references == {}


def test_unknown_report_id_is_404_with_error_body(api: Api) -> None:
    response = api.put("/status_reports/123456", {"status_report": {"color": "red"}})
    assert response.status_code == 404
    assert response.json()["errors"][0]["message"]
