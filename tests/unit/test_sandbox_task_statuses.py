"""Task status sets, custom task statuses and workspace set assignment in the Kantata sandbox, over HTTP
(CONTRACT.md §6.2, §6.3, §8.7). Responses are checked against the OpenAPI contract after each test."""

from __future__ import annotations

import pytest
from kantata_sandbox.server import KantataSandbox

from tests.unit.sandbox_http import Api, error_fields, first, primary

DEFAULTS = [("not started", 0), ("started", 1), ("needs info", 2), ("completed", 3)]


@pytest.fixture
def api(kantata_sandbox_contract: KantataSandbox) -> Api:
    return Api(kantata_sandbox_contract)


def test_new_set_comes_with_the_four_default_statuses(api: Api) -> None:
    # When a set is created with include=custom_task_statuses
    response = api.post(
        "/task_status_sets.json", {"task_status_set": {"name": "Engineering"}}, include="custom_task_statuses"
    )
    # Then it holds the four defaults, named as their categories, positions 0..3, status_set_id an integer
    assert response.status_code == 200
    body = response.json()
    status_set = first(body)
    assert status_set["name"] == "Engineering"
    statuses = [body["custom_task_statuses"][i] for i in status_set["custom_task_status_ids"]]
    assert [(s["status"], s["position"]) for s in statuses] == DEFAULTS
    assert [s["category"] for s in statuses] == [name for name, _ in DEFAULTS]
    assert all(s["status_set_id"] == int(status_set["id"]) for s in statuses)


def test_set_ids_of_statuses_appear_only_when_included(api: Api) -> None:
    status_set = api.create_set()
    assert "custom_task_status_ids" not in status_set
    status_id = api.set_statuses(status_set["id"])[0]["id"]
    plain = first(api.get(f"/custom_task_statuses/{status_id}").json())
    assert "task_status_set_id" not in plain
    body = api.get(f"/custom_task_statuses/{status_id}.json", include="task_status_set").json()
    assert first(body)["task_status_set_id"] == status_set["id"]
    assert body["task_status_sets"][status_set["id"]]["name"] == "Engineering"


def test_set_name_is_required_on_create_and_update(api: Api) -> None:
    assert error_fields(api.post("/task_status_sets", {"task_status_set": {"name": " "}})) == {"name"}
    status_set = api.create_set()
    response = api.put(f"/task_status_sets/{status_set['id']}", {"task_status_set": {}})
    assert response.status_code == 422
    renamed = api.put(f"/task_status_sets/{status_set['id']}.json", {"task_status_set": {"name": "Ops"}})
    assert first(renamed.json())["name"] == "Ops"


def test_add_status_appends_at_the_end_of_its_set(api: Api) -> None:
    status_set = api.create_set()
    response = api.post(
        "/custom_task_statuses.json",
        {
            "custom_task_status": {
                "status": "In Review",
                "category": "started",
                "status_set_id": int(status_set["id"]),
            }
        },
    )
    assert response.status_code == 200
    created = first(response.json())
    assert (created["status"], created["category"], created["position"]) == ("In Review", "started", 4)
    assert [s["status"] for s in api.set_statuses(status_set["id"])][-1] == "In Review"


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"status": "Blocked", "category": "blocked"}, "category"),
        ({"status": "Blocked", "category": "Needs Info"}, "category"),
        ({"status": "STARTED", "category": "started"}, "status"),  # duplicate name, case-insensitive
        ({"status": "", "category": "started"}, "status"),
        ({"status": "Blocked", "category": "started", "status_set_id": 987654}, "status_set_id"),
    ],
)
def test_bad_status_is_refused_and_the_set_is_unchanged(
    api: Api, fields: dict[str, object], bad_field: str
) -> None:
    status_set = api.create_set()
    body = {"status_set_id": int(status_set["id"]), **fields}
    response = api.post("/custom_task_statuses", {"custom_task_status": body})
    assert response.status_code == 422
    assert bad_field in error_fields(response)
    assert [(s["status"], s["position"]) for s in api.set_statuses(status_set["id"])] == DEFAULTS


def test_status_names_are_unique_within_a_set_only(api: Api) -> None:
    other = api.create_set("Other")
    response = api.post(
        "/custom_task_statuses",
        {
            "custom_task_status": {
                "status": "Started",
                "category": "started",
                "status_set_id": int(other["id"]),
            }
        },
    )
    # "Started" collides with the default "started" of its own set only.
    assert response.status_code == 422
    fresh = api.create_set("Third")
    ok = api.post(
        "/custom_task_statuses",
        {"custom_task_status": {"status": "Doing", "category": "started", "status_set_id": int(fresh["id"])}},
    )
    assert ok.status_code == 200


def test_put_renames_and_reorders_keeping_positions_contiguous(api: Api) -> None:
    status_set = api.create_set()
    completed = api.set_statuses(status_set["id"])[3]
    response = api.put(
        f"/custom_task_statuses/{completed['id']}.json",
        {"custom_task_status": {"status": "Done", "position": 0}},
    )
    assert response.status_code == 200
    assert [(s["status"], s["position"]) for s in api.set_statuses(status_set["id"])] == [
        ("Done", 0),
        ("not started", 1),
        ("started", 2),
        ("needs info", 3),
    ]


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"category": "completed"}, "category"),
        ({"status_set_id": 1}, "status_set_id"),
        ({"status": "Started"}, "status"),
        ({"position": -1}, "position"),
    ],
)
def test_put_cannot_change_category_or_set_or_duplicate_a_name(
    api: Api, kantata_sandbox_contract: KantataSandbox, fields: dict[str, object], bad_field: str
) -> None:
    status_set = api.create_set()
    not_started = api.set_statuses(status_set["id"])[0]
    response = api.put(f"/custom_task_statuses/{not_started['id']}", {"custom_task_status": fields})
    assert response.status_code == 422
    assert bad_field in error_fields(response)
    stored = kantata_sandbox_contract.state.custom_task_statuses[not_started["id"]]
    assert (stored.status, stored.category, stored.position) == ("not started", "not started", 0)


def test_delete_status_closes_the_gap_but_keeps_one_per_category(api: Api) -> None:
    status_set = api.create_set()
    extra = first(
        api.post(
            "/custom_task_statuses",
            {
                "custom_task_status": {
                    "status": "Doing",
                    "category": "started",
                    "status_set_id": int(status_set["id"]),
                }
            },
        ).json()
    )
    api.put(f"/custom_task_statuses/{extra['id']}", {"custom_task_status": {"position": 1}})
    started = next(s for s in api.set_statuses(status_set["id"]) if s["status"] == "started")
    assert api.delete(f"/custom_task_statuses/{started['id']}.json").status_code == 204
    assert [(s["status"], s["position"]) for s in api.set_statuses(status_set["id"])] == [
        ("not started", 0),
        ("Doing", 1),
        ("needs info", 2),
        ("completed", 3),
    ]
    # "Doing" is now the only "started" status: it cannot go.
    last = api.delete(f"/custom_task_statuses/{extra['id']}")
    assert last.status_code == 422


def test_list_statuses_is_ordered_by_set_then_position(api: Api) -> None:
    first_set, second_set = api.create_set("A"), api.create_set("B")
    body = api.get("/custom_task_statuses", per_page=200).json()
    listed = [(s["status_set_id"], s["position"]) for s in primary(body)]
    assert listed == [(int(first_set["id"]), p) for p in range(4)] + [
        (int(second_set["id"]), p) for p in range(4)
    ]
    assert body["count"] == 8


def test_set_in_use_cannot_be_deleted(api: Api, kantata_sandbox_contract: KantataSandbox) -> None:
    # Given a set assigned to a workspace
    workspace = kantata_sandbox_contract.add_workspace("Alpha")
    status_set = api.create_set()
    assigned = api.put(
        "/workspace_task_status_sets/bulk_update.json",
        {
            "workspace_task_status_sets": [
                {"workspace_id": int(workspace), "status_set_id": int(status_set["id"])}
            ]
        },
    )
    assert assigned.status_code == 200
    link = first(assigned.json())
    assert (link["workspace_id"], link["status_set_id"]) == (int(workspace), int(status_set["id"]))
    # When it is deleted, Then 422 and it stays
    response = api.delete(f"/task_status_sets/{status_set['id']}")
    assert response.status_code == 422
    assert status_set["id"] in kantata_sandbox_contract.state.task_status_sets
    workspace_json = first(api.get(f"/workspaces/{workspace}").json())
    assert workspace_json["task_status_set_id"] == status_set["id"]
    assert workspace_json["task_statuses"] == [name for name, _ in DEFAULTS]


def test_deleting_an_unused_set_deletes_its_statuses(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    status_set = api.create_set()
    response = api.delete(f"/task_status_sets/{status_set['id']}.json")
    assert response.status_code == 204
    assert kantata_sandbox_contract.state.custom_task_statuses == {}
    assert api.get(f"/task_status_sets/{status_set['id']}").status_code == 404


def test_bulk_update_is_all_or_nothing(api: Api, kantata_sandbox_contract: KantataSandbox) -> None:
    # Given two workspaces and a set
    alpha = kantata_sandbox_contract.add_workspace("Alpha")
    kantata_sandbox_contract.add_workspace("Beta")
    status_set = api.create_set()
    # When one of the three items names an unknown workspace and another an unknown set
    response = api.put(
        "/workspace_task_status_sets/bulk_update",
        {
            "workspace_task_status_sets": [
                {"workspace_id": int(alpha), "status_set_id": int(status_set["id"])},
                {"workspace_id": 999999, "status_set_id": int(status_set["id"])},
                {"workspace_id": int(alpha), "status_set_id": 888888},
            ]
        },
    )
    # Then 422 with an error per failing item, and no workspace changed
    assert response.status_code == 422
    messages = [e["message"] for e in response.json()["errors"]]
    assert len(messages) == 2
    assert "999999" in messages[0]
    assert "888888" in messages[1]
    assert all(w.task_status_set_id is None for w in kantata_sandbox_contract.state.workspaces.values())


def test_account_default_set_is_given_to_new_workspaces_and_cannot_be_deleted(
    api: Api, kantata_sandbox_contract: KantataSandbox
) -> None:
    status_set = api.create_set()
    response = api.put(f"/task_status_sets/{status_set['id']}/update_account_default.json")
    assert response.status_code == 200
    assert first(response.json())["id"] == status_set["id"]
    workspace = kantata_sandbox_contract.add_workspace("Fresh")
    assert kantata_sandbox_contract.state.workspaces[workspace].task_status_set_id == status_set["id"]
    assert api.delete(f"/task_status_sets/{status_set['id']}").status_code == 422


def test_sets_list_pages_with_total_count(api: Api) -> None:
    for index in range(5):
        api.create_set(f"Set {index}")
    body = api.get("/task_status_sets", page=2, per_page=2).json()
    assert [s["name"] for s in primary(body)] == ["Set 2", "Set 3"]
    assert body["count"] == 5
    assert body["meta"] == {"count": 5, "page_count": 3, "page_number": 2, "page_size": 2}
