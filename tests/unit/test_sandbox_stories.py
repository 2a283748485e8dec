"""Stories (tasks) in the Kantata sandbox, over HTTP (CONTRACT.md §6.3, §6.5, §6.7): create, show, update by
status name under the set/category rules, soft delete, the list's filters, includes and optional fields, and
their external references. Responses are checked against the OpenAPI contract after each test."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from kantata_sandbox.server import KantataSandbox

from tests.unit.sandbox_http import Api, error_fields, first, primary

DEFAULT_STATUSES = ["not started", "started", "needs info", "completed"]
# A Jira-like workflow on top of a new set's four defaults (name, category).
JIRA_FLOW = [
    ("To Do", "not started"),
    ("In Progress", "started"),
    ("In Review", "started"),
    ("Done", "completed"),
]


@pytest.fixture
def api(kantata_sandbox_contract: KantataSandbox) -> Api:
    return Api(kantata_sandbox_contract)


def create(
    api: Api, workspace: str, expect: int = 200, query: dict[str, str] | None = None, **fields: Any
) -> Any:
    body = {"workspace_id": int(workspace), "title": "Checkout fails on Safari", **fields}
    response = api.post("/stories.json", {"story": body}, **(query or {}))
    assert response.status_code == expect, response.text
    return first(response.json()) if expect == 200 else response


def update(api: Api, story_id: str, **fields: Any) -> dict[str, Any]:
    response = api.put(
        f"/stories/{story_id}.json", {"story": fields}, optional_fields="custom_task_status_id"
    )
    assert response.status_code == 200, response.text
    return first(response.json())


def show(api: Api, story_id: str, **query: str) -> dict[str, Any]:
    response = api.get(f"/stories/{story_id}", **query)
    assert response.status_code == 200, response.text
    return first(response.json())


def ids(api: Api, **query: str) -> list[str]:
    response = api.get("/stories.json", **query)
    assert response.status_code == 200, response.text
    return [s["id"] for s in primary(response.json())]


def custom_set(api: Api, workspace: str, name: str = "Jira PROJ") -> dict[str, str]:
    """A set with the Jira-like statuses (the defaults renamed, one added), assigned to ``workspace``.
    Returns status name -> custom status id."""
    status_set = api.create_set(name)
    defaults = api.set_statuses(status_set["id"])
    for status, (new_name, _) in zip(
        defaults, [JIRA_FLOW[0], JIRA_FLOW[1], ("Blocked", ""), JIRA_FLOW[3]], strict=True
    ):
        assert api.put(
            f"/custom_task_statuses/{status['id']}", {"custom_task_status": {"status": new_name}}
        ).ok
    added = {"status": "In Review", "category": "started", "status_set_id": int(status_set["id"])}
    assert api.post("/custom_task_statuses", {"custom_task_status": added}).ok
    assigned = api.put(
        "/workspace_task_status_sets/bulk_update",
        {
            "workspace_task_status_sets": [
                {"workspace_id": int(workspace), "status_set_id": int(status_set["id"])}
            ]
        },
    )
    assert assigned.ok, assigned.text
    return {s["status"]: s["id"] for s in api.set_statuses(status_set["id"])}


def upsert_ref(api: Api, subject_type: str, subject_id: str, **fields: Any) -> dict[str, Any]:
    body = {"subject_type": subject_type, "subject_id": int(subject_id), "service_name": "jira",
            "service_model": "issue", "service_model_ref": "PROJ-12", **fields}  # fmt: skip
    response = api.post("/external_references/create_or_update", {"external_reference": body})
    assert response.status_code == 200, response.text
    return first(response.json())


# ---------------------------------------------------------------- create and its validation


def test_a_new_task_has_kantatas_defaults_and_string_ids(api: Api) -> None:
    # Given a workspace without a task status set
    ws = api.sandbox.add_workspace("Acme Webapp")
    # When a story is created with only the required fields
    story = create(api, ws)
    # Then it is a normal-priority task in "not started", not archived, a project task, with string ids
    assert isinstance(story["id"], str)
    assert (story["story_type"], story["priority"], story["status"], story["state"]) == (
        "task", "normal", "not started", "not started",
    )  # fmt: skip
    assert (story["archived"], story["project_plan"], story["deleted_at"]) == (False, True, None)
    # And the foreign keys appear only when their association is included
    assert "workspace_id" not in story
    assert "external_reference_ids" not in story
    assert "custom_task_status_id" not in story


def test_create_takes_the_documented_fields(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    story = create(
        api, ws, story_type="issue", priority="critical", description="See #42", start_date="2026-11-20",
        due_date="2026-12-01", status="started", archived=False,
    )  # fmt: skip
    assert (story["story_type"], story["priority"], story["description"]) == ("issue", "critical", "See #42")
    assert (story["start_date"], story["due_date"]) == ("2026-11-20", "2026-12-01")
    assert (story["status"], story["state"]) == ("started", "started")


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"title": None}, {"title"}),
        ({"title": "   "}, {"title"}),
        ({"workspace_id": None}, {"workspace_id"}),
        ({"workspace_id": "abc"}, {"workspace_id"}),
        ({"workspace_id": True}, {"workspace_id"}),
        ({"workspace_id": 424242}, {"workspace_id"}),
        ({"workspace_id": 424242, "status": "To Do"}, {"workspace_id"}),  # no set to judge the name by
        ({"description": "x" * 1000}, {"description"}),
        ({"description": 12}, {"description"}),
        ({"due_date": "2026-13-01"}, {"due_date"}),
        ({"due_date": "01/12/2026"}, {"due_date"}),
        ({"start_date": "2026-11-24T10:00:00Z"}, {"start_date"}),
        ({"story_type": "bug"}, {"story_type"}),
        ({"priority": "urgent"}, {"priority"}),
        ({"priority": 1}, {"priority"}),
        ({"status": "Done"}, {"status"}),
        ({"status": "NOT STARTED"}, {"status"}),  # names match exactly
        ({"status": ""}, {"status"}),
        ({"state": "new"}, {"state"}),  # legacy issue states are not modelled
        ({"archived": "yes"}, {"archived"}),
        ({"percentage_complete": 101}, {"percentage_complete"}),
        ({"external_reference": {"service_name": "jira"}},
         {"external_reference.service_model", "external_reference.service_model_ref"}),
        ({"external_reference": {"service_name": "jira", "service_model": "issue", "service_model_ref": "P-1",
                                 "status": "done"}}, {"external_reference.status"}),
        ({"external_reference": [{"service_name": "jira"}]}, {"external_reference"}),
        ({"title": "", "priority": "urgent", "due_date": "soon"}, {"title", "priority", "due_date"}),
    ],
)  # fmt: skip
def test_create_refuses_bad_values_with_422_naming_every_field(
    api: Api, fields: dict[str, Any], bad: set[str]
) -> None:
    ws = api.sandbox.add_workspace("Acme")
    response = create(api, ws, expect=422, **fields)
    assert error_fields(response) == bad
    assert all(e["type"] == "validation" for e in response.json()["errors"])
    assert api.sandbox.state.stories == {}
    assert api.sandbox.state.external_references == {}


def test_a_description_of_999_characters_is_accepted(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    assert len(create(api, ws, description="x" * 999)["description"]) == 999


def test_an_archived_workspace_takes_no_new_task(api: Api) -> None:
    ws = api.sandbox.add_workspace("Old", archived=True)
    assert error_fields(create(api, ws, expect=422)) == {"workspace_id"}


@pytest.mark.parametrize(
    "body",
    [{"stories": [{"workspace_id": 1, "title": "bulk"}]}, {"story": "x"}, [1]],
    ids=["bulk", "not-an-object", "array"],
)
def test_a_body_without_a_story_object_is_400(api: Api, body: Any) -> None:
    response = api.post("/stories", body)
    assert response.status_code == 400
    assert "'story'" in response.json()["errors"][0]["message"]


# ---------------------------------------------------------------- status, state and task status sets


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ("not started", "not started")),
        ({"status": "needs info"}, ("needs info", "needs info")),
        ({"state": "completed"}, ("completed", "completed")),
        ({"status": "started", "state": "completed"}, ("started", "started")),  # state ignored
        ({"status": "started", "state": "bogus"}, ("started", "started")),  # even a bad one
    ],
)
def test_status_and_state_in_a_workspace_without_a_set(
    api: Api, fields: dict[str, Any], expected: tuple[str, str]
) -> None:
    ws = api.sandbox.add_workspace("Acme")
    story = create(api, ws, query={"optional_fields": "custom_task_status_id"}, **fields)
    assert (story["status"], story["state"]) == expected
    assert story["custom_task_status_id"] is None  # no custom set


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ("To Do", "not started")),
        ({"status": "In Review"}, ("In Review", "started")),
        ({"status": "Done", "state": "not started"}, ("Done", "completed")),
        ({"state": "started"}, ("In Progress", "started")),  # the category's first status by position
        ({"state": "needs info"}, ("Blocked", "needs info")),
    ],
)
def test_status_and_state_in_a_workspace_with_a_set(
    api: Api, fields: dict[str, Any], expected: tuple[str, str]
) -> None:
    ws = api.sandbox.add_workspace("Acme")
    statuses = custom_set(api, ws)
    story = create(api, ws, query={"optional_fields": "custom_task_status_id"}, **fields)
    assert (story["status"], story["state"]) == expected
    assert story["custom_task_status_id"] == int(statuses[expected[0]])


@pytest.mark.parametrize("name", ["not started", "completed", "to do", "Closed"])
def test_a_name_outside_the_workspaces_set_is_422_on_status_and_lists_the_allowed_names(
    api: Api, name: str
) -> None:
    # Given a workspace whose set renamed the defaults
    ws = api.sandbox.add_workspace("Acme")
    custom_set(api, ws)
    story = create(api, ws)
    # When a name of the defaults, another case, or an unknown name is written
    response = api.put(f"/stories/{story['id']}", {"story": {"status": name}})
    # Then 422 on status, naming the set and what it allows, and nothing changes
    assert response.status_code == 422
    assert error_fields(response) == {"status"}
    message = response.json()["errors"][0]["message"]
    assert "'Jira PROJ'" in message
    assert "'In Review'" in message
    assert show(api, story["id"])["status"] == "To Do"


def test_writing_status_moves_state_to_its_category(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    statuses = custom_set(api, ws)
    story = create(api, ws)
    for name, category in JIRA_FLOW:
        moved = update(api, story["id"], status=name)
        assert (moved["status"], moved["state"], moved["custom_task_status_id"]) == (
            name, category, int(statuses[name]),
        )  # fmt: skip


def test_state_alone_keeps_a_status_already_in_that_category(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    custom_set(api, ws)
    story = create(api, ws, status="In Review")
    assert update(api, story["id"], state="started")["status"] == "In Review"
    assert update(api, story["id"], state="completed")["status"] == "Done"


def test_deleting_a_custom_status_moves_its_tasks_to_their_categorys_default(api: Api) -> None:
    # Given a task in "In Review" (started; "In Progress" is the started default)
    ws = api.sandbox.add_workspace("Acme")
    statuses = custom_set(api, ws)
    story = create(api, ws, status="In Review")
    # When "In Review" is deleted
    assert api.delete(f"/custom_task_statuses/{statuses['In Review']}").status_code == 204
    # Then the task is in "In Progress", by name and by id
    fallen = show(api, story["id"], optional_fields="custom_task_status_id")
    assert (fallen["status"], fallen["state"]) == ("In Progress", "started")
    assert fallen["custom_task_status_id"] == int(statuses["In Progress"])


def test_renaming_a_custom_status_renames_the_status_of_its_tasks(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    statuses = custom_set(api, ws)
    story = create(api, ws, status="In Review")
    api.put(f"/custom_task_statuses/{statuses['In Review']}", {"custom_task_status": {"status": "Reviewing"}})
    assert show(api, story["id"])["status"] == "Reviewing"
    assert ids(api, by_status="Reviewing") == [story["id"]]


def test_assigning_a_set_moves_tasks_to_its_defaults_by_category(api: Api) -> None:
    # Given tasks in a workspace without a set
    ws = api.sandbox.add_workspace("Acme")
    started = create(api, ws, status="started")
    fresh = create(api, ws)
    # When a set is assigned
    statuses = custom_set(api, ws)
    # Then each task takes the set's default status of its category
    assert show(api, started["id"], optional_fields="custom_task_status_id")["custom_task_status_id"] == int(
        statuses["In Progress"]
    )
    assert show(api, fresh["id"])["status"] == "To Do"


def test_the_workspace_lists_the_statuses_its_tasks_can_take(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    plain = first(api.get(f"/workspaces/{ws}").json())
    assert (plain["task_status_set_id"], plain["task_statuses"]) == (None, DEFAULT_STATUSES)
    statuses = custom_set(api, ws)
    linked = first(api.get(f"/workspaces/{ws}").json())
    assert linked["task_status_set_name"] == "Jira PROJ"
    assert isinstance(linked["task_status_set_id"], str)
    assert linked["task_statuses"] == list(statuses)
    assert set(statuses) == {"To Do", "In Progress", "Blocked", "Done", "In Review"}


# ---------------------------------------------------------------- update, show and soft delete


def test_update_changes_only_what_is_sent_and_refuses_a_move(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    other = api.sandbox.add_workspace("Other")
    story = create(api, ws, description="keep me", due_date="2026-12-01")
    changed = update(api, story["id"], title="Renamed", priority="high", due_date="2026-12-24")
    assert (changed["title"], changed["priority"], changed["due_date"]) == ("Renamed", "high", "2026-12-24")
    assert (changed["description"], changed["status"]) == ("keep me", "not started")
    stored = api.sandbox.state.stories[story["id"]]  # answers show whole seconds; the state is exact
    assert stored.updated_at > stored.created_at
    response = api.put(f"/stories/{story['id']}", {"story": {"workspace_id": int(other), "title": ""}})
    assert error_fields(response) == {"workspace_id", "title"}
    assert show(api, story["id"], include="workspace")["workspace_id"] == ws


def test_soft_delete_hides_the_task_until_asked_for(api: Api) -> None:
    # Given a task with a tracker link
    ws = api.sandbox.add_workspace("Acme")
    story = create(api, ws, external_reference={"service_name": "jira", "service_model": "issue",
                                                "service_model_ref": "PROJ-12"})  # fmt: skip
    # When it is deleted
    assert api.delete(f"/stories/{story['id']}.json").status_code == 204
    # Then show, update and a second delete are 404; show_deleted reads it with deleted_at set
    assert api.get(f"/stories/{story['id']}").status_code == 404
    assert api.put(f"/stories/{story['id']}", {"story": {"title": "x"}}).status_code == 404
    assert api.delete(f"/stories/{story['id']}").status_code == 404
    deleted = show(api, story["id"], show_deleted="true")
    assert deleted["deleted_at"] is not None
    # And lists leave it out unless show_deleted / only_deleted; its reference is still listed
    live = create(api, ws, title="Live")
    assert ids(api) == [live["id"]]
    assert set(ids(api, show_deleted="true")) == {live["id"], story["id"]}
    assert ids(api, only_deleted="true") == [story["id"]]
    refs = api.get("/external_references", subject_type="Story", service_model_ref="PROJ-12").json()
    assert [r["subject_id"] for r in primary(refs)] == [int(story["id"])]
    # And it cannot take a new reference
    response = api.post(
        "/external_references/create_or_update",
        {"external_reference": {"subject_type": "Story", "subject_id": int(story["id"]), "service_name": "gh",
                                "service_model": "issue", "service_model_ref": "1"}},
    )  # fmt: skip
    assert error_fields(response) == {"subject_id"}


def test_unknown_story_ids_are_404(api: Api) -> None:
    assert api.get("/stories/424242").status_code == 404
    assert api.put("/stories/424242", {"story": {"title": "x"}}).status_code == 404
    assert api.delete("/stories/424242").status_code == 404
    assert api.get("/stories/abc").status_code == 404


# ---------------------------------------------------------------- external references on stories


def test_inline_reference_is_upserted_on_story_and_service_name(api: Api) -> None:
    # Given a task created with a Jira link
    ws = api.sandbox.add_workspace("Acme")
    link = {"service_name": "jira", "service_model": "issue", "service_model_ref": "PROJ-12",
            "status": "successful", "external_status": "To Do", "external_link": "https://x/PROJ-12"}  # fmt: skip
    story = create(api, ws, query={"include": "external_references"}, external_reference=link)
    (ref_id,) = story["external_reference_ids"]
    # When a PUT carries the same service_name with a new tracker status, and another service's link
    response = api.put(
        f"/stories/{story['id']}.json",
        {"story": {"status": "completed",
                   "external_reference": {**link, "external_status": "Done", "external_message": "Closed"}}},
        include="external_references",
    )  # fmt: skip
    api.put(f"/stories/{story['id']}", {"story": {"external_reference": {**link, "service_name": "github"}}})
    # Then the Jira reference is the same one, updated; GitHub's is a second one
    body = response.json()
    assert first(body)["external_reference_ids"] == [ref_id]
    updated = body["external_references"][ref_id]
    assert (updated["external_status"], updated["external_message"], updated["status"]) == (
        "Done", "Closed", "successful",
    )  # fmt: skip
    assert (updated["subject_type"], updated["subject_id"]) == ("Story", int(story["id"]))
    assert len(show(api, story["id"], include="external_references")["external_reference_ids"]) == 2


def test_inline_reference_without_a_status_is_pending(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    link = {"service_name": "jira", "service_model": "issue", "service_model_ref": "PROJ-12"}
    body = api.post("/stories", {"story": {"workspace_id": int(ws), "title": "t", "external_reference": link}},
                    include="external_references").json()  # fmt: skip
    (ref,) = body["external_references"].values()
    assert ref["status"] == "pending"


def test_external_references_route_works_for_stories(api: Api) -> None:
    # Given a task linked through /external_references/create_or_update
    ws = api.sandbox.add_workspace("Acme")
    story = create(api, ws)
    ref = upsert_ref(api, "Story", story["id"], status="successful")
    # Then it is listed by subject type and filters, with the story side-loaded as its subject
    body = api.get("/external_references.json", subject_type="Story", service_name="jira",
                   service_model_ref="PROJ-12", include="subject").json()  # fmt: skip
    assert [r["id"] for r in primary(body)] == [ref["id"]]
    assert first(body)["subject_ref"] == {"key": "stories", "id": story["id"]}
    assert body["stories"][story["id"]]["title"] == story["title"]
    # And the story lists it; deleting it unlinks the story
    assert show(api, story["id"], include="external_references")["external_reference_ids"] == [ref["id"]]
    assert api.delete(f"/external_references/{ref['id']}").status_code == 204
    assert show(api, story["id"], include="external_references")["external_reference_ids"] == []


def test_a_reference_to_an_unknown_story_is_refused(api: Api) -> None:
    response = api.post(
        "/external_references/create_or_update",
        {"external_reference": {"subject_type": "Story", "subject_id": 424242, "service_name": "jira",
                                "service_model": "issue", "service_model_ref": "P-1"}},
    )  # fmt: skip
    assert response.status_code == 422
    assert error_fields(response) == {"subject_id"}


# ---------------------------------------------------------------- GET /stories


def test_list_finds_the_task_linked_to_a_tracker_issue(api: Api) -> None:
    # Given tasks in two workspaces, two linked to Jira issues and one to a GitHub issue
    acme, beta = api.sandbox.add_workspace("Acme"), api.sandbox.add_workspace("Beta")
    proj12 = create(api, acme, title="PROJ-12")
    proj13 = create(api, beta, title="PROJ-13")
    gh = create(api, acme, title="gh 7")
    unlinked = create(api, acme, title="none")
    upsert_ref(api, "Story", proj12["id"])
    upsert_ref(api, "Story", proj13["id"], service_model_ref="PROJ-13", external_status="Done")
    upsert_ref(api, "Story", gh["id"], service_name="github", service_model_ref="7")
    # Then the external-reference filters pick out the linked task (option A of CONTRACT §6.7)
    jira = {"external_reference_service_name": "jira", "external_reference_service_model": "issue"}
    assert ids(api, **jira, external_reference_service_model_refs="PROJ-12") == [proj12["id"]]
    assert set(ids(api, **jira, external_reference_service_model_refs="PROJ-12,PROJ-13")) == {
        proj12["id"], proj13["id"],
    }  # fmt: skip
    assert ids(api, **jira, external_reference_service_model_refs="PROJ-13", workspace_id=acme) == []
    assert ids(api, external_reference_service_model_ref="7") == [gh["id"]]
    assert ids(api, external_reference_external_status="Done") == [proj13["id"]]
    assert ids(api, has_external_references="false") == [unlinked["id"]]
    assert set(ids(api, without_external_reference_service_name="jira")) == {gh["id"], unlinked["id"]}
    # And one reference must meet all the filters at once
    assert (
        ids(api, external_reference_service_name="github", external_reference_service_model_refs="PROJ-12")
        == []
    )


def test_list_includes_side_load_workspaces_and_references(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    story = create(api, ws)
    ref = upsert_ref(api, "Story", story["id"])
    body = api.get(
        "/stories", include="workspace,external_references", optional_fields="custom_task_status_id"
    ).json()
    row = first(body)
    assert (row["workspace_id"], row["external_reference_ids"], row["custom_task_status_id"]) == (
        ws, [ref["id"]], None,
    )  # fmt: skip
    assert body["workspaces"][ws]["task_statuses"] == DEFAULT_STATUSES
    assert body["external_references"][ref["id"]]["service_model_ref"] == "PROJ-12"


@pytest.mark.parametrize(
    "query",
    [{"include": "parent"}, {"optional_fields": "colour"}, {"order": "title:asc"}, {"order": "updated_at:up"},
     {"show_deleted": "maybe"}, {"archived": "all"}, {"per_page": "x"}],
)  # fmt: skip
def test_bad_list_parameters_are_400(api: Api, query: dict[str, str]) -> None:
    assert api.get("/stories", **query).status_code == 400


def test_list_by_workspace_projects_status_type_and_priority(api: Api) -> None:
    acme, beta, gamma = (api.sandbox.add_workspace(t) for t in ("Acme", "Beta", "Gamma"))
    a = create(api, acme, status="started", priority="high")
    b = create(api, beta, story_type="milestone")
    c = create(api, gamma, status="completed", story_type="issue", priority="low")
    assert ids(api, workspace_id=acme) == [a["id"]]
    assert set(ids(api, with_projects=f"{acme},{gamma}")) == {a["id"], c["id"]}
    assert set(ids(api, by_status="started,completed")) == {a["id"], c["id"]}
    assert ids(api, by_status="Started") == []  # names match exactly
    assert ids(api, story_type="milestone") == [b["id"]]
    assert set(ids(api, story_types="milestone,issue")) == {b["id"], c["id"]}
    assert set(ids(api, priority="high,low")) == {a["id"], c["id"]}
    assert ids(api, only=f"{b['id']},424242") == [b["id"]]
    assert ids(api, only="424242") == []


def test_archived_tasks_to_dos_and_tasks_of_archived_workspaces_are_hidden_by_default(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    live = create(api, ws)
    archived = create(api, ws, archived=True)
    todo = create(api, ws, project_plan=False)
    old = api.sandbox.add_workspace("Old")
    in_old = create(api, old)
    api.sandbox.state.workspaces[old].archived = True  # archived after the task was made
    assert ids(api) == [live["id"]]
    assert set(ids(api, show_archived="true")) == {live["id"], archived["id"]}
    assert ids(api, only_archived="true") == [archived["id"]]
    assert ids(api, archived="only") == [archived["id"]]
    assert set(ids(api, show_todos="true")) == {live["id"], todo["id"]}
    assert ids(api, only_todos="true") == [todo["id"]]
    assert set(ids(api, show_from_archived_workspaces="true")) == {live["id"], in_old["id"]}
    # The show route has no such switches: those tasks stay readable by id (only deleted ones are hidden)
    assert show(api, archived["id"])["archived"] is True


def test_list_order_and_paging(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    made = [create(api, ws, title=f"t{i}", due_date=f"2026-12-0{5 - i}") for i in range(5)]
    undated = create(api, ws, title="undated")
    update(api, made[0]["id"], title="touched")
    made_ids = [s["id"] for s in made]
    # Default: updated_at:desc
    assert ids(api)[:2] == [made_ids[0], undated["id"]]
    assert ids(api, order="created_at:asc") == [*made_ids, undated["id"]]
    assert ids(api, order="due_date:asc") == [*reversed(made_ids), undated["id"]]  # unset dates last
    assert ids(api, order="due_date:desc")[0] == undated["id"]
    body = api.get("/stories", order="created_at:asc", page=2, per_page=4).json()
    assert [s["id"] for s in primary(body)] == [made_ids[4], undated["id"]]
    assert body["meta"] == {"count": 6, "page_count": 2, "page_number": 2, "page_size": 4}


def test_workspaces_are_found_by_their_external_reference(api: Api) -> None:
    # Given a workspace linked to a GitHub repository and one linked to a Jira project
    webapp, proj = api.sandbox.add_workspace("Acme Webapp"), api.sandbox.add_workspace("Project PROJ")
    api.sandbox.add_workspace("Unlinked")
    upsert_ref(api, "Workspace", webapp, service_name="github", service_model="repository",
               service_model_ref="acme/webapp")  # fmt: skip
    upsert_ref(
        api, "Workspace", proj, service_name="jira", service_model="project", service_model_ref="10001"
    )

    # Then GET /workspaces finds each by its link
    def titles(**query: str) -> list[str]:
        return [w["title"] for w in primary(api.get("/workspaces", **query).json())]

    github = {"external_reference_service_name": "github", "external_reference_service_model": "repository"}
    assert titles(**github, external_reference_service_model_refs="acme/webapp") == ["Acme Webapp"]
    assert titles(**github, external_reference_service_model_refs="acme/other") == []
    assert titles(external_reference_service_model_ref="10001") == ["Project PROJ"]
    assert titles(external_reference_status="pending", external_reference_service_name="jira") == [
        "Project PROJ"
    ]
    body = api.get("/workspaces", **github, external_reference_service_model_refs="acme/webapp",
                   include="external_references").json()  # fmt: skip
    (ref,) = body["external_references"].values()
    assert (ref["subject_type"], ref["service_model_ref"]) == ("Workspace", "acme/webapp")


# ---------------------------------------------------------------- the request log and faults


def test_story_routes_are_logged_and_faulted_like_every_other_route(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    # Given a 503 scripted for story creates, then the answer of the next one lost after it was applied
    api.sandbox.faults.script([503, "drop_after"], method="POST", path_prefix="/stories")
    # When three creates are sent
    assert create(api, ws, expect=503).status_code == 503
    with pytest.raises(requests.ConnectionError):
        api.post("/stories.json", {"story": {"workspace_id": int(ws), "title": "lost answer"}})
    create(api, ws, title="normal")
    # Then the 503 changed nothing, the dropped answer's story was made, and the log says which fault answered
    assert sorted(s.title for s in api.sandbox.state.stories.values()) == ["lost answer", "normal"]
    log = [(r.method, r.path, r.status, r.fault) for r in api.sandbox.requests]
    assert log == [
        ("POST", "/api/v1/stories.json", 503, "script"),
        ("POST", "/api/v1/stories.json", 0, "script"),
        ("POST", "/api/v1/stories.json", 200, None),
    ]
    assert api.sandbox.requests[2].body == {"story": {"workspace_id": int(ws), "title": "normal"}}


def test_the_state_snapshot_holds_stories_with_their_links(api: Api) -> None:
    ws = api.sandbox.add_workspace("Acme")
    story = create(api, ws)
    ref = upsert_ref(api, "Story", story["id"])
    snapshot = api.sandbox.state.snapshot()["stories"][story["id"]]
    assert (snapshot["workspace_id"], snapshot["external_reference_ids"]) == (ws, [ref["id"]])
    assert "custom_task_status_id" in snapshot
