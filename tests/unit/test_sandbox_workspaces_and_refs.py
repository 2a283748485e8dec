"""Workspace lookup and external references in the Kantata sandbox, over HTTP (CONTRACT.md §6.5, §6.6).
Responses are checked against the OpenAPI contract after each test."""

from __future__ import annotations

import pytest
from kantata_sandbox.server import KantataSandbox

from tests.unit.sandbox_http import Api, error_fields, first, primary


@pytest.fixture
def api(kantata_sandbox_contract: KantataSandbox) -> Api:
    return Api(kantata_sandbox_contract)


def upsert(api: Api, **fields: object) -> dict[str, object]:
    response = api.post("/external_references/create_or_update.json", {"external_reference": fields})
    assert response.status_code == 200, response.text
    return first(response.json())


def titles(api: Api, **query: str) -> list[str]:
    return [w["title"] for w in primary(api.get("/workspaces.json", **query).json())]


def test_matching_is_a_case_insensitive_starts_with_on_each_word(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    for title in ("The Apollo Launch", "Apollo", "Launchpad Ops", "Zeus"):
        kantata_sandbox_contract.add_workspace(title)
    assert sorted(titles(api, matching="apol")) == ["Apollo", "The Apollo Launch"]
    assert sorted(titles(api, matching="LAUNCH")) == ["Launchpad Ops", "The Apollo Launch"]
    assert titles(api, matching="apollo laun") == ["The Apollo Launch"]
    assert titles(api, matching="the zeus") == ["Zeus"]  # stop words are skipped
    assert titles(api, matching="pollo") == []  # not a substring search


def test_archived_workspaces_are_hidden_unless_asked_for(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    live = kantata_sandbox_contract.add_workspace("Live")
    old = kantata_sandbox_contract.add_workspace("Old", archived=True)
    assert titles(api) == ["Live"]
    assert sorted(titles(api, include_archived="true")) == ["Live", "Old"]
    assert titles(api, archived="only") == ["Old"]
    assert api.get(f"/workspaces/{old}").status_code == 404
    assert first(api.get(f"/workspaces/{old}.json", include_archived="true").json())["archived"] is True
    assert first(api.get(f"/workspaces/{live}").json())["title"] == "Live"


def test_workspaces_list_newest_update_first_and_seeded_ids_are_kept(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    kantata_sandbox_contract.add_workspace("First", workspace_id="5001")
    kantata_sandbox_contract.add_workspace("Second")
    body = api.get("/workspaces").json()
    assert [w["title"] for w in primary(body)] == ["Second", "First"]
    assert "5001" in body["workspaces"]
    assert titles(api, order="title:asc") == ["First", "Second"]


def test_workspaces_filter_by_external_reference(api: Api, kantata_sandbox_contract: KantataSandbox) -> None:
    alpha = kantata_sandbox_contract.add_workspace("Alpha")
    kantata_sandbox_contract.add_workspace("Beta")
    upsert(
        api,
        subject_type="Workspace",
        subject_id=int(alpha),
        service_name="github",
        service_model="repo",
        service_model_ref="acme/app",
    )
    assert titles(api, external_reference_service_name="github") == ["Alpha"]
    assert titles(api, external_reference_service_model_refs="acme/app,acme/web") == ["Alpha"]
    assert titles(api, has_external_references="false") == ["Beta"]
    body = api.get(f"/workspaces/{alpha}", include="external_references").json()
    (ref_id,) = first(body)["external_reference_ids"]
    assert body["external_references"][ref_id]["service_model_ref"] == "acme/app"


def test_create_or_update_upserts_on_subject_and_service_name(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    # Given a workspace with one GitHub reference
    workspace = int(kantata_sandbox_contract.add_workspace("Alpha"))
    created = upsert(
        api,
        subject_type="Workspace",
        subject_id=workspace,
        service_name="github",
        service_model="repo",
        service_model_ref="1",
    )
    assert created["status"] == "pending"
    assert created["subject_id"] == workspace
    # When the same subject + service_name is sent again, Then the same reference is updated
    updated = upsert(
        api,
        subject_type="Workspace",
        subject_id=workspace,
        service_name="github",
        service_model="repo",
        service_model_ref="2",
        status="successful",
        external_link="https://github.com/acme/app",
    )
    assert updated["id"] == created["id"]
    assert (updated["service_model_ref"], updated["status"]) == ("2", "successful")
    # And another service_name makes a second reference
    jira = upsert(
        api,
        subject_type="Workspace",
        subject_id=workspace,
        service_name="jira",
        service_model="project",
        service_model_ref="P",
    )
    assert jira["id"] != created["id"]
    assert len(kantata_sandbox_contract.state.external_references) == 2


def test_list_external_references_requires_subject_type_and_filters(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    workspace = int(kantata_sandbox_contract.add_workspace("Alpha"))
    upsert(
        api,
        subject_type="Workspace",
        subject_id=workspace,
        service_name="github",
        service_model="repo",
        service_model_ref="7",
    )
    missing = api.get("/external_references")
    assert missing.status_code == 422
    assert error_fields(missing) == {"subject_type"}
    body = api.get(
        "/external_references.json", subject_type="Workspace", service_model_ref="7", include="subject"
    ).json()
    ref = first(body)
    assert ref["subject_ref"] == {"key": "workspaces", "id": str(workspace)}
    assert body["workspaces"][str(workspace)]["title"] == "Alpha"
    assert api.get("/external_references", subject_type="StatusReport").json()["count"] == 0
    assert api.get("/external_references", subject_type="Workspace", service_name="jira").json()["count"] == 0


def test_a_workspace_link_lists_by_its_string_ref_with_the_workspace_and_its_archived_flag(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    # The lookup the worker's links use (mapping.links): the string service_model_ref filter, include=subject.
    live = int(kantata_sandbox_contract.add_workspace("Live"))
    old = int(kantata_sandbox_contract.add_workspace("Old"))
    for workspace in (live, old):
        upsert(api, subject_type="Workspace", subject_id=workspace, service_name="github",
               service_model="repository", service_model_ref="acme/webapp", status="successful")  # fmt: skip
    kantata_sandbox_contract.state.workspaces[str(old)].archived = True
    query = {"subject_type": "Workspace", "service_name": "github", "service_model": "repository"}

    body = api.get("/external_references", **query, service_model_ref="acme/webapp", include="subject").json()

    assert sorted(r["subject_id"] for r in primary(body)) == [live, old]
    # An archived subject is side-loaded marked archived (the bridge also copes with Kantata leaving it out)
    assert {k: w["archived"] for k, w in body["workspaces"].items()} == {str(live): False, str(old): True}
    assert api.get("/external_references", **query, service_model_ref="acme/other").json()["count"] == 0


def test_create_or_update_refuses_bad_or_unknown_subjects(api: Api) -> None:
    response = api.post(
        "/external_references/create_or_update",
        {
            "external_reference": {
                "subject_type": "Workspace",
                "subject_id": 424242,
                "service_name": "g",
                "service_model": "r",
                "service_model_ref": "1",
            }
        },
    )
    assert response.status_code == 422
    assert error_fields(response) == {"subject_id"}
    response = api.post(
        "/external_references/create_or_update",
        {"external_reference": {"subject_type": "Planet", "subject_id": "x", "status": "done"}},
    )
    assert {
        "subject_type",
        "subject_id",
        "service_name",
        "service_model",
        "service_model_ref",
        "status",
    } <= error_fields(response)


def test_delete_external_reference(api: Api, kantata_sandbox_contract: KantataSandbox) -> None:
    workspace = int(kantata_sandbox_contract.add_workspace("Alpha"))
    ref = upsert(
        api,
        subject_type="Workspace",
        subject_id=workspace,
        service_name="g",
        service_model="r",
        service_model_ref="1",
    )
    assert api.delete(f"/external_references/{ref['id']}.json").status_code == 204
    assert api.delete(f"/external_references/{ref['id']}").status_code == 404
    assert kantata_sandbox_contract.state.external_references == {}


def test_there_is_no_show_route_for_an_external_reference(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    workspace = int(kantata_sandbox_contract.add_workspace("Alpha"))
    ref = upsert(
        api,
        subject_type="Workspace",
        subject_id=workspace,
        service_name="g",
        service_model="r",
        service_model_ref="1",
    )
    assert api.get(f"/external_references/{ref['id']}").status_code == 404
