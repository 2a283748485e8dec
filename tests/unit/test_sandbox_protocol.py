"""The Kantata sandbox's HTTP protocol: auth, routing, bodies, paging, the request log and the control API
(CONTRACT.md §1-§4). Responses are checked against the OpenAPI contract after each test."""

from __future__ import annotations

import pytest
import requests
from kantata_sandbox.server import KantataSandbox

from tests.unit.sandbox_http import TIMEOUT, Api, first, primary


@pytest.fixture
def api(kantata_sandbox_contract: KantataSandbox) -> Api:
    return Api(kantata_sandbox_contract)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "sandbox-token"},
        {"Authorization": "Basic sandbox-token"},
    ],
)
def test_missing_or_wrong_token_is_401_oauth(
    kantata_sandbox_contract: KantataSandbox, headers: dict[str, str]
) -> None:
    response = requests.get(
        f"{kantata_sandbox_contract.base_url}/task_status_sets.json", headers=headers, timeout=TIMEOUT
    )
    assert response.status_code == 401
    assert response.json() == {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}


def test_write_without_token_changes_nothing(kantata_sandbox_contract: KantataSandbox) -> None:
    response = requests.post(
        f"{kantata_sandbox_contract.base_url}/task_status_sets",
        json={"task_status_set": {"name": "X"}},
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert kantata_sandbox_contract.state.task_status_sets == {}


def test_paths_work_with_and_without_json_suffix(api: Api) -> None:
    api.create_set("A")
    assert api.get("/task_status_sets").json() == api.get("/task_status_sets.json").json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nothing_here"),
        ("GET", "/status_reports/abc"),
        ("PUT", "/status_reports"),
        ("GET", "/external_references/1"),
    ],
)
def test_unknown_routes_are_404_with_an_error_body(api: Api, method: str, path: str) -> None:
    response = api.session.request(method, api.url(path), timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.json()["errors"]


def test_paths_outside_the_api_prefix_are_404(kantata_sandbox_contract: KantataSandbox) -> None:
    response = requests.get(kantata_sandbox_contract.url + "/status_reports", timeout=TIMEOUT)
    assert response.status_code == 404


def test_body_that_is_not_json_is_400(api: Api) -> None:
    response = api.session.post(
        api.url("/task_status_sets"),
        data="task_status_set[name]=X",
        timeout=TIMEOUT,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["type"] == "system"


@pytest.mark.parametrize("body", [None, [], {"name": "X"}, {"task_status_set": "X"}])
def test_body_without_the_singular_wrapper_key_is_400(api: Api, body: object) -> None:
    response = api.post("/task_status_sets", body)
    assert response.status_code == 400
    assert api.sandbox.state.task_status_sets == {}


def test_bulk_update_without_its_array_is_400(api: Api) -> None:
    assert (
        api.put("/workspace_task_status_sets/bulk_update", {"workspace_task_status_set": []}).status_code
        == 400
    )


def test_per_page_defaults_to_20_and_is_capped_at_200(api: Api) -> None:
    for index in range(25):
        api.create_set(f"S{index:02}")
    default = api.get("/task_status_sets").json()
    assert len(default["results"]) == 20
    assert default["count"] == 25
    assert default["meta"] == {"count": 25, "page_count": 2, "page_number": 1, "page_size": 20}
    capped = api.get("/task_status_sets", per_page=500).json()
    assert capped["meta"]["page_size"] == 200
    assert len(capped["results"]) == 25
    last = api.get("/task_status_sets", page=2).json()
    assert [s["name"] for s in primary(last)] == ["S20", "S21", "S22", "S23", "S24"]
    beyond = api.get("/task_status_sets", page=9).json()
    assert (beyond["count"], beyond["results"]) == (25, [])
    window = api.get("/task_status_sets", limit=2, offset=3).json()
    assert [s["name"] for s in primary(window)] == ["S03", "S04"]


@pytest.mark.parametrize("query", [{"page": "0"}, {"per_page": "x"}, {"include": "nonsense"}])
def test_bad_paging_or_include_is_400(api: Api, query: dict[str, str]) -> None:
    assert api.get("/task_status_sets", **query).status_code == 400


def test_request_log_records_what_was_served_without_the_token(api: Api) -> None:
    api.post(
        "/task_status_sets.json", {"task_status_set": {"name": "Logged"}}, include="custom_task_statuses"
    )
    api.get("/task_status_sets", page=1)
    posted, listed = api.sandbox.requests
    assert (posted.method, posted.path, posted.status) == ("POST", "/api/v1/task_status_sets.json", 200)
    assert posted.query == {"include": "custom_task_statuses"}
    assert posted.body == {"task_status_set": {"name": "Logged"}}
    assert first(posted.response)["name"] == "Logged"
    assert all(name.lower() != "authorization" for name in posted.headers)
    assert api.sandbox.token not in repr(posted)
    assert (listed.method, listed.query, listed.status) == ("GET", {"page": "1"}, 200)


def test_request_log_is_bounded() -> None:
    with KantataSandbox(max_recorded=3) as sandbox:
        api = Api(sandbox)
        for page in range(1, 6):
            api.get("/task_status_sets", page=page)
        assert [r.query["page"] for r in sandbox.requests] == ["3", "4", "5"]


def test_reset_gives_fresh_state_no_faults_and_an_empty_log(api: Api) -> None:
    sandbox = api.sandbox
    sandbox.add_workspace("Alpha")
    api.create_set()
    sandbox.faults.set_rate(0.5)
    sandbox.reset()
    assert sandbox.state.workspaces == {}
    assert sandbox.state.task_status_sets == {}
    assert sandbox.requests == []
    assert sandbox.faults.describe()["rate"] == 0.0


def test_add_workspace_refuses_bad_seeds(kantata_sandbox: KantataSandbox) -> None:
    kantata_sandbox.add_workspace("Alpha", workspace_id="77")
    with pytest.raises(ValueError, match="already exists"):
        kantata_sandbox.add_workspace("Again", workspace_id="77")
    with pytest.raises(ValueError, match="numeric"):
        kantata_sandbox.add_workspace("Bad", workspace_id="abc")
    with pytest.raises(ValueError, match="title"):
        kantata_sandbox.add_workspace("  ")


def test_control_api_seeds_lists_and_resets_without_a_token(kantata_sandbox_contract: KantataSandbox) -> None:
    control = kantata_sandbox_contract.url + "/_sandbox"
    # Seed a workspace through the control API, then use it through the real API
    seeded = requests.post(f"{control}/workspaces", json={"title": "Seeded", "id": "4242"}, timeout=TIMEOUT)
    assert seeded.json() == {"id": "4242"}
    archived = requests.post(
        f"{control}/workspaces", json={"title": "Gone", "archived": True}, timeout=TIMEOUT
    ).json()
    assert kantata_sandbox_contract.state.workspaces[archived["id"]].archived is True
    api = Api(kantata_sandbox_contract)
    assert first(api.get("/workspaces/4242").json())["title"] == "Seeded"
    # The request log lists API calls only (control calls are not recorded)
    log = requests.get(f"{control}/requests", timeout=TIMEOUT).json()["requests"]
    assert [(r["method"], r["path"], r["status"]) for r in log] == [("GET", "/api/v1/workspaces/4242", 200)]
    assert requests.get(f"{control}/state", timeout=TIMEOUT).json()["workspaces"]["4242"]["title"] == "Seeded"
    assert requests.get(f"{control}/health", timeout=TIMEOUT).json()["ok"] is True
    # A bad seed is a 400 with a reason, and reset wipes everything
    assert requests.post(f"{control}/workspaces", json={"title": ""}, timeout=TIMEOUT).status_code == 400
    assert requests.post(f"{control}/reset", timeout=TIMEOUT).status_code == 200
    assert kantata_sandbox_contract.state.workspaces == {}
    assert requests.get(f"{control}/nope", timeout=TIMEOUT).status_code == 404


def test_concurrent_writes_get_distinct_ids_and_all_land(api: Api) -> None:
    # Given 8 threads each creating 10 sets at once (bounded, local traffic only)
    from concurrent.futures import ThreadPoolExecutor

    def create(worker: int) -> list[str]:
        own = Api(api.sandbox)
        return [own.create_set(f"W{worker}-{n}")["id"] for n in range(10)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = [i for batch in pool.map(create, range(8)) for i in batch]
    # Then every write landed once, with its own id and its own four default statuses
    assert len(set(ids)) == 80
    assert len(api.sandbox.state.task_status_sets) == 80
    assert len(api.sandbox.state.custom_task_statuses) == 320


def test_every_route_of_the_contract_answers_with_its_documented_success_status(api: Api) -> None:
    # Given a workspace, a report, two sets (one to delete), a custom status, a reference and a story (CONTRACT §6)
    ws = api.sandbox.add_workspace("Apollo")
    report = api.create_report(ws)["id"]
    kept, spare = api.create_set("Kept")["id"], api.create_set("Spare")["id"]
    status = {"status": "Review", "category": "started", "status_set_id": int(kept)}
    custom = first(api.post("/custom_task_statuses", {"custom_task_status": status}).json())["id"]
    upsert = {"subject_type": "StatusReport", "subject_id": int(report), "service_name": "github",
              "service_model": "issue", "service_model_ref": "octo/repo#7"}  # fmt: skip
    on_workspace = {**upsert, "subject_type": "Workspace", "subject_id": int(ws)}
    ref = first(
        api.post("/external_references/create_or_update", {"external_reference": on_workspace}).json()
    )
    story = first(api.post("/stories", {"story": {"workspace_id": int(ws), "title": "Task"}}).json())["id"]
    routes: list[tuple[str, str, object, dict[str, str], int]] = [
        ("GET", "/status_reports", None, {}, 200),
        ("GET", f"/status_reports/{report}", None, {}, 200),
        ("PUT", f"/status_reports/{report}", {"status_report": {"color": "red"}}, {}, 200),
        ("GET", "/task_status_sets", None, {}, 200),
        ("GET", f"/task_status_sets/{kept}", None, {}, 200),
        ("PUT", f"/task_status_sets/{kept}", {"task_status_set": {"name": "Kept 2"}}, {}, 200),
        ("PUT", f"/task_status_sets/{kept}/update_account_default", None, {}, 200),
        ("DELETE", f"/task_status_sets/{spare}", None, {}, 204),
        ("GET", "/custom_task_statuses", None, {}, 200),
        ("GET", f"/custom_task_statuses/{custom}", None, {}, 200),
        ("PUT", f"/custom_task_statuses/{custom}", {"custom_task_status": {"position": 0}}, {}, 200),
        ("DELETE", f"/custom_task_statuses/{custom}", None, {}, 204),
        ("POST", "/external_references/create_or_update", {"external_reference": upsert}, {}, 200),
        ("GET", "/external_references", None, {"subject_type": "StatusReport"}, 200),
        ("GET", "/workspaces", None, {}, 200),
        ("GET", f"/workspaces/{ws}", None, {}, 200),
        ("PUT", "/workspace_task_status_sets/bulk_update",
         {"workspace_task_status_sets": [{"workspace_id": int(ws), "status_set_id": int(kept)}]}, {}, 200),
        ("GET", "/stories", None, {}, 200),
        ("GET", f"/stories/{story}", None, {}, 200),
        ("PUT", f"/stories/{story}", {"story": {"status": "started"}}, {}, 200),
        ("DELETE", f"/stories/{story}", None, {}, 204),
        ("GET", f"/stories/{story}", None, {"show_deleted": "true"}, 200),
        ("DELETE", f"/external_references/{ref['id']}", None, {}, 204),
        ("DELETE", f"/status_reports/{report}", None, {}, 204),
    ]  # fmt: skip
    # When each is called; Then each answers its success status (200 with an envelope, 204 with no body)
    for method, path, body, query, expected in routes:
        response = api.session.request(method, api.url(path), json=body, params=query, timeout=TIMEOUT)
        assert response.status_code == expected, (method, path, response.text)
        assert (response.content == b"") if expected == 204 else ("results" in response.json())
    # And what was deleted is gone: the report took its own reference along
    assert api.sandbox.state.external_references == {}
    assert (api.sandbox.state.status_reports, api.sandbox.state.task_status_sets.keys()) == ({}, {kept})
