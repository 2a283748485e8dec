"""Catalog sync against the Kantata sandbox over HTTP, with every request body checked against the OpenAPI
descriptions (through the client's ``on_request`` hook)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kantata_bridge.catalog.apply import apply_catalog, plan_from_kantata
from kantata_bridge.catalog.config import CatalogConfig, DesiredSet, DesiredStatus
from kantata_bridge.catalog.jira import set_from_jira_export
from kantata_bridge.catalog.plan import ActionKind
from kantata_bridge.catalog.report import render_apply, render_plan
from kantata_bridge.kantata.client import KantataClient, RetryPolicy
from kantata_sandbox import openapi
from kantata_sandbox.server import KantataSandbox

pytestmark = pytest.mark.integration

EXPORT = Path(__file__).resolve().parents[2] / "events" / "payloads" / "jira-project-statuses.json"
SET_NAME = "PROJ workflow"


class CheckedRequests:
    """Validates each request body against the OpenAPI description before it is sent, and counts them."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, method: str, path: str, body: Any) -> None:
        openapi.validate_request_body(method, path, body)
        operation = openapi.load_contract().find(method, path)
        assert operation is not None, f"{method} {path} is not in the OpenAPI descriptions"
        self.seen.append((method, operation.template))


@pytest.fixture
def checked() -> CheckedRequests:
    try:
        openapi.load_contract()
    except openapi.SpecNotFoundError as exc:
        pytest.skip(str(exc))
    return CheckedRequests()


@pytest.fixture
def client(kantata_sandbox: KantataSandbox, checked: CheckedRequests) -> Iterator[KantataClient]:
    # No in-process retries: an injected fault must reach the catalog sync.
    with KantataClient(
        kantata_sandbox.token,
        base_url=kantata_sandbox.base_url,
        retry=RetryPolicy.never(),
        on_request=checked,
    ) as kantata:
        yield kantata


def jira_set(**kwargs: Any) -> DesiredSet:
    desired = set_from_jira_export(json.loads(EXPORT.read_text()), set_name=SET_NAME, project="PROJ")
    if kwargs:
        desired = DesiredSet(**{**{f: getattr(desired, f) for f in desired.__slots__}, **kwargs})
    return desired


def statuses_of(kantata: KantataClient, name: str = SET_NAME) -> list[tuple[str, str]]:
    (found,) = [s for s in kantata.list_task_status_sets() if s.name == name]
    return [(s.status, s.category) for s in found.statuses]


def writes(sandbox: KantataSandbox) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sandbox.requests if r.method != "GET"]


def test_empty_account_to_a_jira_workflow_then_reapply_reports_no_changes(
    kantata_sandbox: KantataSandbox, client: KantataClient, checked: CheckedRequests
) -> None:
    # Given an empty account, two projects, and a catalog generated from a 10-status Jira export
    ws1, ws2 = kantata_sandbox.add_workspace("Alpha"), kantata_sandbox.add_workspace("Beta")
    config = CatalogConfig((jira_set(workspaces=(int(ws1), int(ws2)), account_default=True),))
    desired = [(s.name, s.category) for s in config.sets[0].statuses]
    assert len(desired) >= 8

    # When applying
    result = apply_catalog(client, config)

    # Then the set holds exactly the workflow, in order (the 4 defaults were reused, not left beside it)
    assert result.ok, render_apply(result)
    assert statuses_of(client) == desired
    set_id = result.remaining.sets[0].set_id if result.remaining else None
    assert [client.get_workspace(w).task_status_set_id for w in (ws1, ws2)] == [set_id, set_id]
    assert kantata_sandbox.state.account_default_set_id == set_id
    assert {route for _, route in checked.seen} >= {
        "/task_status_sets",
        "/custom_task_statuses",
        "/custom_task_statuses/{id}",
        "/workspace_task_status_sets/bulk_update",
        "/task_status_sets/{id}/update_account_default",
    }

    # When applying again, Then nothing changes; only the account default (not readable) is re-sent
    kantata_sandbox.clear_requests()
    again = apply_catalog(client, config)
    assert again.ok
    assert again.changed == ()
    assert writes(kantata_sandbox) == [("PUT", f"/api/v1/task_status_sets/{set_id}/update_account_default")]
    text = render_apply(again)
    assert "No changes: Kantata is in step" in text
    assert "re-sent [PROJ workflow] * make it the account default" in text
    assert "No changes" in render_plan(plan_from_kantata(client, config))


def test_drift_in_kantata_is_shown_by_plan_and_corrected_by_apply(
    kantata_sandbox: KantataSandbox, client: KantataClient
) -> None:
    config = CatalogConfig((jira_set(),))
    first = apply_catalog(client, config)
    assert first.ok
    (current,) = [s for s in client.list_task_status_sets() if s.name == SET_NAME]
    by_name = {s.status: s for s in current.statuses}
    # Given drift made in Kantata: QA renamed, In Review deleted, an extra status added
    client.update_custom_task_status(by_name["QA"].id, status="Testing")
    client.delete_custom_task_status(by_name["In Review"].id)
    client.create_custom_task_status(current.id, "Extra", "started")
    kantata_sandbox.clear_requests()

    # When planning (with the ids pinned by the first apply)
    plan = plan_from_kantata(client, config, pins=first.pins)
    text = render_plan(plan)

    # Then the plan shows each difference and writes nothing
    assert '~ rename status "Testing" → "QA" [started] (renamed in Kantata' in text
    assert '+ add status "In Review" [started]' in text
    assert '= keep status "Extra" [started]: not in the configuration; --prune deletes it' in text
    assert writes(kantata_sandbox) == []

    # When applying without prune, Then QA is renamed back (same status) and In Review is back; Extra stays
    assert apply_catalog(client, config, pins=first.pins).ok
    after = statuses_of(client)
    assert after[:-1] == [(s.name, s.category) for s in config.sets[0].statuses]
    assert after[-1] == ("Extra", "started")
    assert client.get_custom_task_status(by_name["QA"].id).status == "QA"

    # When applying with prune, Then the extra goes and Kantata is exactly the workflow
    pruned = apply_catalog(client, config, prune=True, pins=first.pins)
    assert [(o.action.kind, o.action.name) for o in pruned.changed] == [(ActionKind.DELETE_STATUS, "Extra")]
    assert statuses_of(client) == [(s.name, s.category) for s in config.sets[0].statuses]
    assert plan_from_kantata(client, config, prune=True).changes == ()


def test_without_pins_a_status_renamed_in_kantata_is_added_again_and_the_renamed_one_kept(
    client: KantataClient,
) -> None:
    config = CatalogConfig((jira_set(),))
    assert apply_catalog(client, config).ok
    (current,) = list(client.list_task_status_sets())
    qa = next(s for s in current.statuses if s.status == "QA")
    client.update_custom_task_status(qa.id, status="Testing")

    plan = plan_from_kantata(client, config)

    assert [(a.kind, a.name) for a in plan.changes] == [
        (ActionKind.CREATE_STATUS, "QA"),
        (ActionKind.REORDER, None),
    ]
    assert [k.name for k in plan.sets[0].kept] == ["Testing"]


def test_category_changes_respect_immutability_and_name_uniqueness(
    kantata_sandbox: KantataSandbox, client: KantataClient
) -> None:
    config = CatalogConfig((jira_set(),))
    assert apply_catalog(client, config).ok
    before = {s.status: s for s in next(iter(client.list_task_status_sets())).statuses}
    # Given the catalog now files QA under 'needs info' and both 'needs info' statuses under 'started'
    changed = tuple(
        DesiredStatus(
            s.name,
            {"QA": "needs info", "Blocked": "started", "Waiting for customer": "started"}.get(
                s.name, s.category
            ),
        )  # type: ignore[arg-type]
        for s in config.sets[0].statuses
    )
    new_config = CatalogConfig((jira_set(statuses=changed),))
    kantata_sandbox.clear_requests()

    plan = plan_from_kantata(client, new_config)
    assert sum("changes category" in w for w in plan.warnings) == 3

    # When applying
    result = apply_catalog(client, new_config)

    # Then each is deleted and created anew under the same name (never a category in a PUT), and nothing clashes
    assert result.ok, render_apply(result)
    after = {s.status: s for s in next(iter(client.list_task_status_sets())).statuses}
    assert after["QA"].category == "needs info"
    assert after["QA"].id != before["QA"].id
    assert after["Blocked"].category == "started"
    assert all(
        "category" not in (r.body or {}).get("custom_task_status", {})
        for r in kantata_sandbox.requests
        if r.method == "PUT"
    )
    assert statuses_of(client) == [(s.name, s.category) for s in changed]
    assert apply_catalog(client, new_config).changed == ()


@pytest.mark.parametrize(
    ("method", "prefix", "script"),
    [
        ("POST", "/api/v1/custom_task_statuses", [None, None, 503]),
        ("PUT", "/api/v1/custom_task_statuses", [None, None, 503]),
        ("POST", "/api/v1/task_status_sets", [503]),
    ],
    ids=["create-status", "rename-status", "create-set"],
)
def test_fault_half_way_through_an_apply_is_recovered_by_the_next_apply(
    kantata_sandbox: KantataSandbox, client: KantataClient, method: str, prefix: str, script: list[int | None]
) -> None:
    config = CatalogConfig((jira_set(),))
    kantata_sandbox.faults.script(script, method=method, path_prefix=prefix)

    failed = apply_catalog(client, config)

    assert not failed.ok
    assert "503" in (failed.outcomes[-1].error or "")
    assert "Run apply again" in render_apply(failed)

    kantata_sandbox.faults.clear()
    recovered = apply_catalog(client, config)
    assert recovered.ok, render_apply(recovered)
    assert [s.name for s in client.list_task_status_sets()] == [SET_NAME]
    assert statuses_of(client) == [(s.name, s.category) for s in config.sets[0].statuses]
    assert apply_catalog(client, config).changed == ()


def test_workspace_assignment_is_all_or_nothing_and_shows_each_workspace_error(
    kantata_sandbox: KantataSandbox, client: KantataClient
) -> None:
    real = kantata_sandbox.add_workspace("Alpha")
    config = CatalogConfig((jira_set(workspaces=(int(real), 999991, 999992)),))

    result = apply_catalog(client, config)

    assert not result.ok
    failed = result.outcomes[-1]
    assert failed.action.kind is ActionKind.ASSIGN_WORKSPACES
    assert len(failed.details) == 2
    assert any("999991" in d for d in failed.details)
    assert any("999992" in d for d in failed.details)
    assert client.get_workspace(real).task_status_set_id is None  # nothing assigned
    text = render_apply(result)
    assert "999991" in text
    assert "999992" in text


def refused(sandbox: KantataSandbox) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in sandbox.requests if r.status >= 400]


def test_plan_on_an_empty_account_only_reads(kantata_sandbox: KantataSandbox, client: KantataClient) -> None:
    ws = kantata_sandbox.add_workspace("Alpha")
    config = CatalogConfig((jira_set(workspaces=(int(ws),), account_default=True),))
    kantata_sandbox.clear_requests()

    plan = plan_from_kantata(client, config, prune=True)

    assert plan.changes[0].kind is ActionKind.CREATE_SET
    assert kantata_sandbox.requests  # it did read Kantata
    assert {r.method for r in kantata_sandbox.requests} == {"GET"}
    assert list(client.list_task_status_sets()) == []


@pytest.mark.parametrize(
    ("a", "b"),
    [("QA", "In Review"), ("To Do", "Done")],
    ids=["same-category", "different-categories"],
)
def test_two_names_swapped_in_kantata_are_put_back_without_a_refused_request(
    kantata_sandbox: KantataSandbox, client: KantataClient, a: str, b: str
) -> None:
    # Given an applied workflow, then two statuses' names swapped in Kantata (through a temporary name)
    config = CatalogConfig((jira_set(),))
    first = apply_catalog(client, config)
    assert first.ok
    (current,) = list(client.list_task_status_sets())
    ids = {s.status: s.id for s in current.statuses}
    client.update_custom_task_status(ids[a], status="tmp")
    client.update_custom_task_status(ids[b], status=a)
    client.update_custom_task_status(ids[a], status=b)
    kantata_sandbox.clear_requests()

    # When applying with the pins
    result = apply_catalog(client, config, pins=first.pins)

    # Then Kantata refused nothing, the set is the workflow again, and a re-apply changes nothing
    assert result.ok, render_apply(result)
    assert refused(kantata_sandbox) == []
    assert statuses_of(client) == [(s.name, s.category) for s in config.sets[0].statuses]
    assert apply_catalog(client, config, pins=result.pins).changed == ()


def test_a_rename_to_a_name_an_extra_holds_does_not_clash(
    kantata_sandbox: KantataSandbox, client: KantataClient
) -> None:
    # Given the catalog renames "Testing" to "QA" on purpose, while an extra status "qa" (another category)
    # already holds that name in Kantata
    plain = CatalogConfig((jira_set(),))
    assert apply_catalog(client, plain).ok
    (current,) = list(client.list_task_status_sets())
    qa = next(s for s in current.statuses if s.status == "QA")
    client.update_custom_task_status(qa.id, status="Testing")
    client.create_custom_task_status(current.id, "qa", "completed")
    renamed = tuple(
        DesiredStatus(s.name, s.category, previous_names=("Testing",) if s.name == "QA" else ())
        for s in plain.sets[0].statuses
    )
    config = CatalogConfig((jira_set(statuses=renamed),))
    kantata_sandbox.clear_requests()

    # When applying with prune
    result = apply_catalog(client, config, prune=True)

    # Then the status holding the name is the one that becomes "QA" (never two with one name), nothing is
    # refused, and the set is exactly the workflow
    assert result.ok, render_apply(result)
    assert refused(kantata_sandbox) == []
    assert statuses_of(client) == [(s.name, s.category) for s in renamed]
    assert apply_catalog(client, config, prune=True).changed == ()


def _every_kind_of_write(kantata_sandbox: KantataSandbox, client: KantataClient) -> CatalogConfig:
    """A Kantata state and catalog whose apply makes every kind of write: set rename, status renames,
    creates, a category change (delete + create), a pruned extra, a reorder, workspaces and the default."""
    kantata_sandbox.reset()
    workspaces = (int(kantata_sandbox.add_workspace("Alpha")), int(kantata_sandbox.add_workspace("Beta")))
    old = CatalogConfig(
        (
            DesiredSet(
                "PROJ old",
                (
                    DesiredStatus("Done", "completed"),
                    DesiredStatus("To Do", "not started"),
                    DesiredStatus("Doing", "started"),
                    DesiredStatus("QA", "needs info"),
                    DesiredStatus("Legacy", "started"),
                ),
            ),
        )
    )
    assert apply_catalog(client, old).ok
    statuses = tuple(
        DesiredStatus(s.name, s.category, previous_names=("Doing",) if s.name == "In Progress" else ())
        for s in jira_set().statuses
    )
    return CatalogConfig(
        (
            jira_set(
                statuses=statuses,
                previous_names=("PROJ old",),
                workspaces=workspaces,
                account_default=True,
            ),
        )
    )


def test_a_fault_at_any_write_of_an_apply_is_recovered_by_the_next_apply(
    kantata_sandbox: KantataSandbox, client: KantataClient
) -> None:
    # Given a clean run, to count its writes by method
    config = _every_kind_of_write(kantata_sandbox, client)
    kantata_sandbox.clear_requests()
    assert apply_catalog(client, config, prune=True).ok
    clean = [r.method for r in kantata_sandbox.requests if r.method != "GET"]
    assert {"POST", "PUT", "DELETE"} <= set(clean)
    expected = statuses_of(client)

    for method in sorted(set(clean)):
        for before in range(clean.count(method)):
            # the write refused before Kantata acts (503), or made and then the connection lost
            for fault in (503, "drop_after"):
                # Given the same starting point, and the (before+1)-th write of this method failing
                config = _every_kind_of_write(kantata_sandbox, client)
                kantata_sandbox.faults.script([None] * before + [fault], method=method)
                failed = apply_catalog(client, config, prune=True)
                assert not failed.ok, (method, before, fault)
                kantata_sandbox.faults.clear()

                # When applying again, Then it converges: one set, the workflow, no duplicate, no more changes
                recovered = apply_catalog(client, config, prune=True)
                assert recovered.ok, (method, before, fault, render_apply(recovered))
                assert [s.name for s in client.list_task_status_sets()] == [SET_NAME]
                assert statuses_of(client) == expected, (method, before, fault)
                assert apply_catalog(client, config, prune=True).changed == ()


def test_a_reorder_interrupted_at_its_last_move_converges_when_kantata_inserts_at_the_position(
    kantata_sandbox: KantataSandbox, client: KantataClient
) -> None:
    # Given Kantata holds A, B, C (issue 12, item 1; the sandbox reads `position` as "insert here")
    abc = (DesiredStatus("A", "not started"), DesiredStatus("B", "started"), DesiredStatus("C", "completed"))
    axbc = (abc[0], DesiredStatus("X", "started"), *abc[1:])
    assert apply_catalog(client, CatalogConfig((DesiredSet(SET_NAME, abc),))).ok
    # When applying A, X, B, C and the 4th write (the move of C, the third PUT) fails
    kantata_sandbox.clear_requests()
    kantata_sandbox.faults.script([None, None, 503], method="PUT", path_prefix="/custom_task_statuses")
    config = CatalogConfig((DesiredSet(SET_NAME, axbc),))
    assert not apply_catalog(client, config).ok
    assert len(writes(kantata_sandbox)) == 4
    kantata_sandbox.faults.clear()
    # Then the next apply leaves the four in order at distinct positions, and a re-apply changes nothing
    assert apply_catalog(client, config).ok
    (found,) = [s for s in client.list_task_status_sets() if s.name == SET_NAME]
    assert [(s.status, s.position) for s in found.statuses][:4] == [("A", 0), ("X", 1), ("B", 2), ("C", 3)]
    assert apply_catalog(client, config).changed == ()
