"""The real Kantata client against the real Kantata sandbox, over HTTP on 127.0.0.1 only.

Every request body the client sends is checked against the OpenAPI descriptions in ``../shared/kantata/``
(``validate_request_body`` on the client's ``on_request`` hook), every response the sandbox answers is
checked after the test (``kantata_sandbox_contract``), and so is every query string (``query_errors``).
Retries use a fast policy whose sleep only records the wait and moves a fake clock, so no test waits on
backoff and none asserts wall-clock time.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kantata_bridge.kantata.client import KantataClient, RetryPolicy
from kantata_bridge.kantata.errors import (
    AuthenticationError,
    KantataConnectionError,
    NotFoundError,
    RateLimitError,
    UnavailableError,
    ValidationError,
)
from kantata_bridge.kantata.models import (
    ExternalReferenceUpsert,
    InlineExternalReference,
    NewStory,
    StatusReport,
    StatusReportDetail,
    StoryExternalReference,
    WorkspaceTaskStatusSet,
)
from kantata_sandbox import openapi
from kantata_sandbox.server import KantataSandbox, RecordedRequest

from tests.unit.test_kantata_retry import FakeTime

pytestmark = pytest.mark.integration

API = "/api/v1"


def fast_retry(time: FakeTime, **overrides: Any) -> RetryPolicy:
    """Four sends, a 1 ms base delay and jitter pinned at one half: waits of 0.5, 1 and 2 ms."""
    settings: dict[str, Any] = {
        "max_attempts": 4,
        "base_delay": 0.001,
        "max_delay": 0.05,
        "total_budget": 5.0,
        "retry_after_cap": 5.0,
        "sleep": time.sleep,
        "clock": time.clock,
        "random": lambda: 0.5,
        **overrides,
    }
    return RetryPolicy(**settings)


@dataclass
class Wire:
    """What the client put on the wire, as the on_request hook saw it."""

    sent: list[tuple[str, str, Any]] = field(default_factory=list)

    def on_request(self, method: str, path: str, body: Any) -> None:
        self.sent.append((method, path, body))
        # Raises ContractViolationError (an AssertionError, never caught as a KantataError) on a bad body.
        openapi.validate_request_body(method, path, body)


@pytest.fixture
def sandbox(kantata_sandbox_contract: KantataSandbox) -> Iterator[KantataSandbox]:
    """The contract-checked sandbox; after the test, also every recorded query against its declared types."""
    yield kantata_sandbox_contract
    contract = openapi.load_contract()
    problems = [
        f"{r.method} {r.path}: {problem}"
        for r in kantata_sandbox_contract.requests
        for problem in contract.query_errors(r.method, r.path, r.query)
    ]
    assert not problems, "queries break the OpenAPI contract:\n" + "\n".join(problems)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(
    sandbox: KantataSandbox, fake_time: FakeTime
) -> Iterator[Callable[..., tuple[KantataClient, Wire]]]:
    """Build clients on the sandbox; each one's sends are contract-checked and counted against the log."""
    built: list[tuple[KantataClient, Wire]] = []

    def build(*, token: str | None = None, retry: RetryPolicy | None = None) -> tuple[KantataClient, Wire]:
        wire = Wire()
        client = KantataClient(
            token if token is not None else sandbox.token,
            sandbox.base_url,
            connect_timeout=2.0,
            read_timeout=5.0,
            retry=retry if retry is not None else fast_retry(fake_time),
            on_request=wire.on_request,
        )
        built.append((client, wire))
        return client, wire

    yield build
    for client, _ in built:
        client.close()
    # Every request the sandbox served went through a hook, so every body it received was validated.
    assert sum(len(wire.sent) for _, wire in built) == len(sandbox.requests)


@pytest.fixture
def kantata(make_client: Callable[..., tuple[KantataClient, Wire]]) -> KantataClient:
    client, _ = make_client()
    return client


def api_calls(sandbox: KantataSandbox, method: str, route: str) -> list[RecordedRequest]:
    """The logged requests to ``route`` (after /api/v1, e.g. ``/status_reports``) with ``method``."""
    return [r for r in sandbox.requests if r.method == method and r.path == API + route]


def report_for(workspace_id: str, ref: str | None = None, **fields: Any) -> StatusReport:
    settings: dict[str, Any] = {
        "workspace_id": workspace_id,
        "color": "yellow",
        "description": "Sprint slipping",
        "details": (
            StatusReportDetail("Schedule", "red", "2 days late"),
            StatusReportDetail("Budget", "green", "on budget"),
        ),
        "external_reference": InlineExternalReference(
            "github", "issue", ref, external_link=f"https://github.com/{ref}", external_status="open"
        )
        if ref is not None
        else None,
        **fields,
    }
    return StatusReport(**settings)


# ---------------------------------------------------------------- task status sets and custom statuses


def test_new_task_status_set_comes_with_the_four_default_statuses_read_through_include(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given an account with no sets
    # When a set is created and read back
    created = kantata.create_task_status_set("Engineering flow")
    fetched = kantata.get_task_status_set(created.id)

    # Then both carry Kantata's four defaults, in position order, side-loaded through include
    defaults = [("not started", "not started", 0), ("started", "started", 1)]
    defaults += [("needs info", "needs info", 2), ("completed", "completed", 3)]
    for task_status_set in (created, fetched):
        assert task_status_set.name == "Engineering flow"
        assert [(s.status, s.category, s.position) for s in task_status_set.statuses] == defaults
        assert {s.status_set_id for s in task_status_set.statuses} == {int(created.id)}
        assert list(task_status_set.custom_task_status_ids) == [s.id for s in task_status_set.statuses]
    post, get = (
        api_calls(sandbox, "POST", "/task_status_sets")[0],
        api_calls(sandbox, "GET", f"/task_status_sets/{created.id}")[0],
    )
    assert post.query["include"] == get.query["include"] == "custom_task_statuses"
    assert post.body == {"task_status_set": {"name": "Engineering flow"}}


def test_custom_status_is_added_renamed_reordered_and_deleted(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a set with its four defaults
    set_id = kantata.create_task_status_set("Review flow").id

    # When a status is added, it goes to the end of the set
    added = kantata.create_custom_task_status(set_id, "In review", "started")
    assert (added.status, added.category, added.position, added.status_set_id) == (
        "In review",
        "started",
        4,
        int(set_id),
    )
    assert api_calls(sandbox, "POST", "/custom_task_statuses")[0].body == {
        "custom_task_status": {"status": "In review", "category": "started", "status_set_id": int(set_id)}
    }

    # When it is renamed, only the name changes
    renamed = kantata.update_custom_task_status(added.id, status="Code review")
    assert (renamed.id, renamed.status, renamed.category, renamed.position) == (
        added.id,
        "Code review",
        "started",
        4,
    )

    # When it is moved to position 1, the others shift and positions stay contiguous
    kantata.update_custom_task_status(added.id, position=1)
    order = [(s.status, s.position) for s in kantata.get_task_status_set(set_id).statuses]
    assert order == [
        ("not started", 0),
        ("Code review", 1),
        ("started", 2),
        ("needs info", 3),
        ("completed", 4),
    ]

    # When it is deleted, it is gone from the set and the gap closes
    kantata.delete_custom_task_status(added.id)
    after = kantata.get_task_status_set(set_id).statuses
    assert [(s.status, s.position) for s in after] == [
        ("not started", 0),
        ("started", 1),
        ("needs info", 2),
        ("completed", 3),
    ]
    with pytest.raises(NotFoundError):
        kantata.get_custom_task_status(added.id)
    assert [r.status for r in api_calls(sandbox, "DELETE", f"/custom_task_statuses/{added.id}")] == [204]


def test_duplicate_status_name_in_a_set_is_refused_with_the_field(kantata: KantataClient) -> None:
    # Given a set that already has a status "started"
    set_id = kantata.create_task_status_set("Dupes").id

    # When another status with that name (in another case) is added
    with pytest.raises(ValidationError) as caught:
        kantata.create_custom_task_status(set_id, "Started", "started")

    # Then Kantata's 422 names the field and nothing is retried
    assert caught.value.status == 422
    assert "status" in caught.value.field_errors
    assert caught.value.retryable is False


# ---------------------------------------------------------------- status reports


def test_created_report_comes_back_with_its_details_workspace_and_external_reference(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a workspace
    ws = sandbox.add_workspace("Apollo")

    # When a report with details and an inline external reference is created
    created = kantata.create_status_report(report_for(ws, "octo/repo#7"))

    # Then it comes back whole: workspace (include=workspace) and its reference (include=external_references)
    assert created.id is not None
    assert created.workspace_id == ws
    assert (created.color, created.description) == ("yellow", "Sprint slipping")
    assert created.details == (
        StatusReportDetail("Schedule", "red", "2 days late"),
        StatusReportDetail("Budget", "green", "on budget"),
    )
    [ref] = created.external_references
    assert created.external_reference_ids == (ref.id,)
    assert (ref.subject_type, ref.subject_id) == ("StatusReport", int(created.id))
    assert (ref.service_name, ref.service_model, ref.service_model_ref) == ("github", "issue", "octo/repo#7")
    assert ref.external_link == "https://github.com/octo/repo#7"
    assert kantata.get_status_report(created.id) == created
    [post] = api_calls(sandbox, "POST", "/status_reports")
    assert post.body["status_report"]["workspace_id"] == ws  # a string, as the spec types it


def test_listing_by_external_reference_returns_only_the_matching_reports(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given three reports: two with different string refs, one with a numeric ref, one in another workspace
    ws, other_ws = sandbox.add_workspace("Apollo"), sandbox.add_workspace("Gemini")
    wanted = kantata.create_status_report(report_for(ws, "octo/repo#7"))
    kantata.create_status_report(report_for(ws, "octo/repo#8"))
    numeric = kantata.create_status_report(report_for(ws, "4242"))
    kantata.create_status_report(report_for(other_ws, "octo/repo#7"))

    # When listing by a non-numeric ref within the workspace
    found = list(
        kantata.list_status_reports(
            workspace_id=ws,
            external_reference_service_name="github",
            external_reference_service_model_ref="octo/repo#7",
        )
    )
    # Then only that report comes back, and the ref went out as the string-list filter (the single one
    # is typed integer by Kantata)
    assert [r.id for r in found] == [wanted.id]
    last = api_calls(sandbox, "GET", "/status_reports")[-1]
    assert last.query["external_reference_service_model_refs"] == "octo/repo#7"
    assert "external_reference_service_model_ref" not in last.query

    # When listing by a numeric ref, the integer-typed filter is used (the query check passes on it)
    assert [r.id for r in kantata.list_status_reports(external_reference_service_model_ref="4242")] == [
        numeric.id
    ]
    assert (
        api_calls(sandbox, "GET", "/status_reports")[-1].query["external_reference_service_model_ref"]
        == "4242"
    )

    # And several refs at once come back newest first
    both = kantata.list_status_reports(
        workspace_id=ws, external_reference_service_model_refs=["octo/repo#7", "4242"]
    )
    assert [r.id for r in both] == [numeric.id, wanted.id]


def test_update_replaces_details_and_keeps_the_same_report_and_reference(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a report with Schedule and Budget details and a reference
    ws = sandbox.add_workspace("Apollo")
    created = kantata.create_status_report(report_for(ws, "octo/repo#7"))

    # When it is updated with only a Scope detail and a changed reference status
    updated = kantata.update_status_report(
        created.id,
        report_for(
            ws,
            "octo/repo#7",
            color="green",
            description="Back on track",
            details=(StatusReportDetail("Scope", "green", "scope agreed"),),
            external_reference=InlineExternalReference(
                "github", "issue", "octo/repo#7", external_status="closed"
            ),
        ),
    )

    # Then the left-out categories are gone, the reference is the same object, updated
    assert updated.id == created.id
    assert (updated.color, updated.description) == ("green", "Back on track")
    assert updated.details == (StatusReportDetail("Scope", "green", "scope agreed"),)
    assert updated.external_reference_ids == created.external_reference_ids
    assert updated.external_references[0].external_status == "closed"
    assert kantata.get_status_report(created.id) == updated
    # workspace_id is not among Kantata's PUT fields, so it is not sent
    [put] = api_calls(sandbox, "PUT", f"/status_reports/{created.id}")
    assert "workspace_id" not in put.body["status_report"]


def test_deleted_report_is_gone_with_its_external_reference(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a report with a reference
    ws = sandbox.add_workspace("Apollo")
    created = kantata.create_status_report(report_for(ws, "octo/repo#7"))
    assert created.id is not None

    # When it is deleted
    kantata.delete_status_report(created.id)

    # Then it is a 404, it no longer lists, and its reference is gone too
    with pytest.raises(NotFoundError):
        kantata.get_status_report(created.id)
    assert list(kantata.list_status_reports(external_reference_service_model_ref="octo/repo#7")) == []
    assert list(kantata.list_external_references("StatusReport", subject_id=int(created.id))) == []
    assert [r.status for r in api_calls(sandbox, "DELETE", f"/status_reports/{created.id}")] == [204]


def test_listing_250_reports_takes_exactly_two_pages_of_200(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given 250 reports in one workspace
    ws = sandbox.add_workspace("Big project")
    ids = [kantata.create_status_report(report_for(ws, description=f"week {n}")).id for n in range(250)]

    # When all of them are listed
    listed = [r.id for r in kantata.list_status_reports(workspace_id=ws)]

    # Then every report comes back once, newest first, from exactly two requests of per_page=200
    assert listed == list(reversed(ids))
    gets = api_calls(sandbox, "GET", "/status_reports")
    assert [(r.query["page"], r.query["per_page"]) for r in gets] == [("1", "200"), ("2", "200")]
    assert [len(r.response["results"]) for r in gets] == [200, 50]


# ---------------------------------------------------------------- errors, produced for real


def test_wrong_token_raises_authentication_error_that_never_shows_the_token(
    sandbox: KantataSandbox, make_client: Callable[..., tuple[KantataClient, Wire]]
) -> None:
    # Given a client with a token the sandbox does not accept
    client, _ = make_client(token="wrong-token-9f3e")
    ws = sandbox.add_workspace("Apollo")

    # When it reads a workspace
    with pytest.raises(AuthenticationError) as caught:
        client.get_workspace(ws)

    # Then it gets a 401 once (not retried) and nothing about the error shows the token
    error = caught.value
    assert (error.status, error.retryable, error.attempts) == (401, False, 1)
    assert error.errors[0].type == "oauth"
    for text in (str(error), repr(error), error.body or "", repr(client)):
        assert "wrong-token-9f3e" not in text
    assert [r.status for r in sandbox.requests] == [401]


def test_unknown_id_raises_not_found_and_is_not_retried(
    sandbox: KantataSandbox, kantata: KantataClient, fake_time: FakeTime
) -> None:
    # Given no report 999999
    # When it is fetched
    with pytest.raises(NotFoundError) as caught:
        kantata.get_status_report("999999")

    # Then a single 404 comes back as NotFoundError, with no retry
    assert (caught.value.status, caught.value.retryable, caught.value.attempts) == (404, False, 1)
    assert [r.status for r in sandbox.requests] == [404]
    assert fake_time.sleeps == []


def test_refused_value_raises_validation_error_naming_the_field(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a workspace id the sandbox does not know (the client cannot check that before sending)
    # When a report is created for it
    with pytest.raises(ValidationError) as caught:
        kantata.create_status_report(report_for("424242", "octo/repo#7"))

    # Then a 422 names the field, nothing is created and nothing is retried
    error = caught.value
    assert (error.status, error.retryable) == (422, False)
    assert list(error.field_errors) == ["workspace_id"]
    assert "workspace_id" in str(error)
    assert sandbox.state.status_reports == {}
    assert [r.status for r in sandbox.requests] == [422]


def test_rate_limited_get_waits_the_retry_after_the_sandbox_sends_then_succeeds(
    sandbox: KantataSandbox, kantata: KantataClient, fake_time: FakeTime
) -> None:
    # Given a sandbox that answers the next status-report GET with 429 and Retry-After: 3
    ws = sandbox.add_workspace("Apollo")
    created = kantata.create_status_report(report_for(ws, "octo/repo#7"))
    sandbox.faults.set_retry_after(3)
    sandbox.faults.script([429], method="GET", path_prefix="/status_reports")

    # When the report is read
    fetched = kantata.get_status_report(str(created.id))

    # Then the client waited exactly the server's 3 s (not its own jittered backoff) and got the report
    assert fetched == created
    assert fake_time.sleeps == [3.0]
    gets = api_calls(sandbox, "GET", f"/status_reports/{created.id}")
    assert [(r.status, r.fault) for r in gets] == [(429, "script"), (200, None)]
    assert gets[0].response == {"errors": [{"type": "system", "message": "Too Many Requests"}]}


def test_rate_limited_get_without_retry_after_backs_off_then_succeeds(
    sandbox: KantataSandbox, kantata: KantataClient, fake_time: FakeTime
) -> None:
    # Given two 429s without Retry-After (as Kantata documents it) on the workspace list
    sandbox.add_workspace("Apollo")
    sandbox.faults.script([429, 429], method="GET", path_prefix="/workspaces")

    # When the workspaces are listed
    titles = [w.title for w in kantata.list_workspaces()]

    # Then the client backed off exponentially (jitter pinned at 0.5 of 1 ms, 2 ms) and succeeded
    assert titles == ["Apollo"]
    assert fake_time.sleeps == pytest.approx([0.0005, 0.001])
    assert [r.status for r in api_calls(sandbox, "GET", "/workspaces")] == [429, 429, 200]


def test_retry_after_longer_than_the_cap_is_raised_for_the_caller_not_slept(
    sandbox: KantataSandbox, kantata: KantataClient, fake_time: FakeTime
) -> None:
    # Given a 429 asking for 60 s, beyond the policy's 5 s cap
    sandbox.faults.set_retry_after(60)
    sandbox.faults.script([429], method="GET", path_prefix="/workspaces")

    # When the workspaces are listed
    with pytest.raises(RateLimitError) as caught:
        list(kantata.list_workspaces())

    # Then nothing is slept in-process; the error carries the hint and says a retry can help
    assert (caught.value.retry_after, caught.value.retryable, caught.value.attempts) == (60.0, True, 1)
    assert fake_time.sleeps == []
    assert len(api_calls(sandbox, "GET", "/workspaces")) == 1


def test_persistent_503_is_retried_until_max_attempts_then_raised_as_retryable(
    sandbox: KantataSandbox, kantata: KantataClient, fake_time: FakeTime
) -> None:
    # Given a sandbox that answers every workspace GET with 503
    ws = sandbox.add_workspace("Apollo")
    sandbox.faults.script([503] * 10, method="GET", path_prefix="/workspaces")

    # When a workspace is read with a 4-send policy
    with pytest.raises(UnavailableError) as caught:
        kantata.get_workspace(ws)

    # Then exactly 4 GETs reached the sandbox, with 3 growing waits between them, and the error says retryable
    error = caught.value
    assert (error.status, error.retryable, error.attempts) == (503, True, 4)
    assert [r.status for r in api_calls(sandbox, "GET", f"/workspaces/{ws}")] == [503] * 4
    assert fake_time.sleeps == pytest.approx([0.0005, 0.001, 0.002])


def test_persistent_503_stops_when_the_total_budget_would_be_passed(
    sandbox: KantataSandbox, make_client: Callable[..., tuple[KantataClient, Wire]], fake_time: FakeTime
) -> None:
    # Given a policy with room for 10 sends but a 25 ms budget, and base waits of 10, 20, 40 ms
    client, _ = make_client(retry=fast_retry(fake_time, max_attempts=10, base_delay=0.02, total_budget=0.025))
    ws = sandbox.add_workspace("Apollo")
    sandbox.faults.script([503] * 10, method="GET", path_prefix="/workspaces")

    # When a workspace is read
    with pytest.raises(UnavailableError) as caught:
        client.get_workspace(ws)

    # Then it stops after the wait that would end past the budget: 10 ms + 20 ms > 25 ms, so 2 sends
    assert (caught.value.attempts, caught.value.retryable) == (2, True)
    assert fake_time.sleeps == pytest.approx([0.01])
    assert len(api_calls(sandbox, "GET", f"/workspaces/{ws}")) == 2


def test_dropped_connection_on_a_get_is_retried_and_succeeds(
    sandbox: KantataSandbox, kantata: KantataClient, fake_time: FakeTime
) -> None:
    # Given a report, and a sandbox that closes the socket on the next GET of it without answering
    ws = sandbox.add_workspace("Apollo")
    created = kantata.create_status_report(report_for(ws, "octo/repo#7"))
    sandbox.faults.script(["drop"], method="GET", path_prefix="/status_reports")

    # When the report is read
    fetched = kantata.get_status_report(str(created.id))

    # Then the connection error was retried once and the read succeeded
    assert fetched == created
    assert [r.status for r in api_calls(sandbox, "GET", f"/status_reports/{created.id}")] == [0, 200]
    assert len(fake_time.sleeps) == 1


def test_put_whose_response_is_lost_is_repeated_and_lands_once(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a report, and a sandbox that applies the next PUT but drops the connection before answering
    ws = sandbox.add_workspace("Apollo")
    created = kantata.create_status_report(report_for(ws, "octo/repo#7"))
    sandbox.faults.script(["drop_after"], method="PUT", path_prefix="/status_reports")

    # When the report is updated
    changed = report_for(ws, "octo/repo#7", color="red", description="Blocked")
    updated = kantata.update_status_report(str(created.id), changed)

    # Then the PUT was sent twice (safe: it replaces), and the report holds the update once
    assert [r.status for r in api_calls(sandbox, "PUT", f"/status_reports/{created.id}")] == [0, 200]
    assert (updated.color, updated.description) == ("red", "Blocked")
    assert len(sandbox.state.status_reports) == 1
    assert len(sandbox.state.external_references) == 1


def test_delete_whose_response_is_lost_is_repeated_and_its_404_taken_as_done(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a report, and a sandbox that deletes it on the next DELETE but drops the connection before answering
    ws = sandbox.add_workspace("Apollo")
    created = kantata.create_status_report(report_for(ws, "octo/repo#7"))
    sandbox.faults.script(["drop_after"], method="DELETE", path_prefix="/status_reports")

    # When the report is deleted
    kantata.delete_status_report(str(created.id))

    # Then the repeat found it gone (404), which is what was asked: no error, and the report is gone
    assert [r.status for r in api_calls(sandbox, "DELETE", f"/status_reports/{created.id}")] == [0, 404]
    assert sandbox.state.status_reports == {}


def test_delete_of_a_report_that_never_existed_is_still_not_found(kantata: KantataClient) -> None:
    # Given no report 999999; When / Then a first-send 404 is the caller's NotFoundError, not silence
    with pytest.raises(NotFoundError) as caught:
        kantata.delete_status_report("999999")
    assert caught.value.attempts == 1


def test_create_hit_by_a_503_is_sent_once_and_raised_as_retryable(
    sandbox: KantataSandbox, kantata: KantataClient, fake_time: FakeTime
) -> None:
    # Given a sandbox that answers the next report POST with 503
    ws = sandbox.add_workspace("Apollo")
    sandbox.faults.script([503], method="POST", path_prefix="/status_reports")

    # When a report is created
    with pytest.raises(UnavailableError) as caught:
        kantata.create_status_report(report_for(ws, "octo/repo#7"))

    # Then exactly one POST was made (a create is never repeated in-process) and the caller may retry later
    assert (caught.value.status, caught.value.retryable, caught.value.attempts) == (503, True, 1)
    assert [r.status for r in api_calls(sandbox, "POST", "/status_reports")] == [503]
    assert fake_time.sleeps == []
    assert sandbox.state.status_reports == {}


def test_create_whose_response_is_lost_is_not_repeated_so_no_duplicate_report(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a sandbox that makes the next report but drops the connection before answering
    ws = sandbox.add_workspace("Apollo")
    sandbox.faults.script(["drop_after"], method="POST", path_prefix="/status_reports")

    # When a report is created
    with pytest.raises(KantataConnectionError) as caught:
        kantata.create_status_report(report_for(ws, "octo/repo#7"))

    # Then one POST was made, the error is retryable, and the report exists once (a caller's dedupe finds it)
    assert (caught.value.retryable, caught.value.attempts) == (True, 1)
    assert len(api_calls(sandbox, "POST", "/status_reports")) == 1
    found = list(kantata.list_status_reports(external_reference_service_model_ref="octo/repo#7"))
    assert len(found) == 1
    assert len(sandbox.state.status_reports) == 1


# ---------------------------------------------------------------- external references


def test_external_reference_upsert_updates_the_same_reference_and_lists_by_subject_type(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a workspace and a report that carries its own (StatusReport) reference
    ws = sandbox.add_workspace("Apollo")
    kantata.create_status_report(report_for(ws, "octo/repo#7"))
    upsert = ExternalReferenceUpsert(
        subject_type="Workspace",
        subject_id=int(ws),
        service_name="github",
        service_model="repository",
        service_model_ref="octo/repo",
    )

    # When the same subject + service_name is upserted twice
    first = kantata.create_or_update_external_reference(upsert)
    second = kantata.create_or_update_external_reference(
        ExternalReferenceUpsert(
            subject_type="Workspace",
            subject_id=int(ws),
            service_name="github",
            service_model="repository",
            service_model_ref="octo/repo",
            status="successful",
            external_status="linked",
            external_link="https://github.com/octo/repo",
        )
    )

    # Then the second call updated the first reference in place
    assert first.status == "pending"
    assert second.id == first.id
    assert (second.status, second.external_status, second.external_link) == (
        "successful",
        "linked",
        "https://github.com/octo/repo",
    )
    # And listing by subject type returns only that type's references
    [workspace_ref] = kantata.list_external_references("Workspace")
    assert (workspace_ref.id, workspace_ref.subject_id, workspace_ref.status) == (
        first.id,
        int(ws),
        "successful",
    )
    report_refs = list(kantata.list_external_references("StatusReport", service_name="github"))
    assert [r.service_model_ref for r in report_refs] == ["octo/repo#7"]
    assert [r.query["subject_type"] for r in api_calls(sandbox, "GET", "/external_references")] == [
        "Workspace",
        "StatusReport",
    ]


def test_upsert_hit_by_a_503_is_retried_and_leaves_one_reference(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a sandbox that answers the next upsert with 503
    ws = sandbox.add_workspace("Apollo")
    sandbox.faults.script([503], method="POST", path_prefix="/external_references")
    upsert = ExternalReferenceUpsert("Workspace", int(ws), "jira", "project", "APO")

    # When the reference is upserted
    ref = kantata.create_or_update_external_reference(upsert)

    # Then the upsert (safe to repeat) was sent again and exactly one reference exists
    assert [r.status for r in api_calls(sandbox, "POST", "/external_references/create_or_update")] == [
        503,
        200,
    ]
    assert [r.id for r in kantata.list_external_references("Workspace", subject_id=int(ws))] == [ref.id]


# ---------------------------------------------------------------- workspaces and bulk update


def test_workspaces_are_found_by_matching_and_fetched_by_id(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given workspaces, one of them archived
    alpha = sandbox.add_workspace("Alpha Project")
    alphabet = sandbox.add_workspace("The Alphabet Soup")
    sandbox.add_workspace("Beta Project")
    archived = sandbox.add_workspace("Alpha Legacy", archived=True)

    # When listing with matching="alp" (a word-prefix search that skips stop words)
    found = {w.id for w in kantata.list_workspaces(matching="alp")}

    # Then the two live Alpha* workspaces come back; the archived one only when asked for
    assert found == {alpha, alphabet}
    assert {w.id for w in kantata.list_workspaces(matching="alp", include_archived=True)} == {
        alpha,
        alphabet,
        archived,
    }
    assert api_calls(sandbox, "GET", "/workspaces")[0].query["matching"] == "alp"

    # And a workspace read by id has its title; an archived one is hidden (404)
    assert kantata.get_workspace(alpha).title == "Alpha Project"
    with pytest.raises(NotFoundError):
        kantata.get_workspace(archived)


def test_bulk_update_with_an_unknown_workspace_changes_nothing_and_names_that_workspace(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given two workspaces on the default set and a new set
    ws1, ws2 = sandbox.add_workspace("Apollo"), sandbox.add_workspace("Gemini")
    before = {ws: kantata.get_workspace(ws).task_status_set_id for ws in (ws1, ws2)}
    set_id = int(kantata.create_task_status_set("Engineering flow").id)

    # When the set is assigned to both and to an unknown workspace in one bulk update
    with pytest.raises(ValidationError) as caught:
        kantata.bulk_update_workspace_task_status_sets(
            [
                WorkspaceTaskStatusSet(int(ws1), set_id),
                WorkspaceTaskStatusSet(987654, set_id),
                WorkspaceTaskStatusSet(int(ws2), set_id),
            ]
        )

    # Then the whole request is refused with a per-workspace reason, and no workspace changed
    error = caught.value
    assert (error.status, error.retryable) == (422, False)
    assert list(error.field_errors) == ["workspace_id"]
    assert "987654" in error.field_errors["workspace_id"][0]
    assert [(e.type, e.field) for e in error.errors] == [("validation", "workspace_id")]
    assert {ws: kantata.get_workspace(ws).task_status_set_id for ws in (ws1, ws2)} == before
    assert len(api_calls(sandbox, "PUT", "/workspace_task_status_sets/bulk_update")) == 1


def test_bulk_update_assigns_the_set_to_every_workspace(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given two workspaces and a new set
    ws1, ws2 = sandbox.add_workspace("Apollo"), sandbox.add_workspace("Gemini")
    status_set = kantata.create_task_status_set("Engineering flow")

    # When the set is assigned to both
    assigned = kantata.bulk_update_workspace_task_status_sets(
        [
            WorkspaceTaskStatusSet(int(ws1), int(status_set.id)),
            WorkspaceTaskStatusSet(int(ws2), int(status_set.id)),
        ]
    )

    # Then both assignments come back and both workspaces now use the set
    assert assigned == [
        WorkspaceTaskStatusSet(int(ws1), int(status_set.id)),
        WorkspaceTaskStatusSet(int(ws2), int(status_set.id)),
    ]
    for ws in (ws1, ws2):
        workspace = kantata.get_workspace(ws)
        assert (workspace.task_status_set_id, workspace.task_status_set_name) == (
            status_set.id,
            "Engineering flow",
        )
    # And a set in use cannot be deleted
    with pytest.raises(ValidationError):
        kantata.delete_task_status_set(status_set.id)


# ---------------------------------------------------------------- stories (tasks)

JIRA_FLOW = [
    ("To Do", "not started"),
    ("In Progress", "started"),
    ("In Review", "started"),
    ("Done", "completed"),
]


def synced_workspace(
    kantata: KantataClient, sandbox: KantataSandbox, title: str = "Project PROJ"
) -> dict[str, str]:
    """A workspace whose task status set mirrors a Jira workflow, made through the client as the catalog
    would; returns status name -> custom status id."""
    ws = sandbox.add_workspace(title)
    status_set = kantata.create_task_status_set(f"Jira {title}")
    defaults = {s.category: s for s in status_set.statuses}
    kantata.update_custom_task_status(defaults["not started"].id, status="To Do")
    kantata.update_custom_task_status(defaults["started"].id, status="In Progress")
    kantata.update_custom_task_status(defaults["completed"].id, status="Done")
    kantata.create_custom_task_status(status_set.id, "In Review", "started")
    kantata.bulk_update_workspace_task_status_sets([WorkspaceTaskStatusSet(int(ws), int(status_set.id))])
    statuses = {s.status: s.id for s in kantata.get_task_status_set(status_set.id).statuses}
    statuses["workspace"] = ws
    return statuses


def jira_link(key: str = "PROJ-12", status: str | None = None, **fields: Any) -> StoryExternalReference:
    return StoryExternalReference(
        "jira", "issue", key, status="successful", external_status=status,
        external_link=f"https://acme.atlassian.net/browse/{key}", **fields,
    )  # fmt: skip


def test_a_linked_task_moves_through_the_synced_statuses_and_its_link_follows(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a workspace on a Jira-like set and a task created for PROJ-12, linked inline
    statuses = synced_workspace(kantata, sandbox)
    ws = statuses["workspace"]
    story = kantata.create_story(
        NewStory(
            ws,
            "Checkout fails on Safari",
            due_date="2026-12-01",
            external_reference=jira_link(status="To Do"),
        )
    )
    # Then it starts in the set's "not started" default, and comes back with its workspace and link
    assert (story.status, story.state, story.custom_task_status_id) == (
        "To Do",
        "not started",
        int(statuses["To Do"]),
    )
    assert story.workspace_id == ws
    assert story.workspace is not None
    assert story.workspace.task_statuses == ("To Do", "In Progress", "needs info", "Done", "In Review")
    (link,) = story.external_references
    assert (link.subject_type, link.subject_id, link.status, link.external_status) == (
        "Story", int(story.id), "successful", "To Do",
    )  # fmt: skip

    # When the tracker moves the issue through its workflow, one PUT each with the status and the link
    for name, category in JIRA_FLOW[1:]:
        moved = kantata.update_story(story.id, status=name, external_reference=jira_link(status=name))
        # Then the task takes the status of that name, its state the category, and the same link is updated
        assert (moved.status, moved.state, moved.custom_task_status_id) == (
            name,
            category,
            int(statuses[name]),
        )
        assert [(r.id, r.external_status) for r in moved.external_references] == [(link.id, name)]
    assert len(sandbox.state.external_references) == 1
    assert len(api_calls(sandbox, "PUT", f"/stories/{story.id}")) == 3


def test_the_linked_task_is_found_by_its_tracker_key_both_ways(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given two linked tasks and an unlinked one
    ws = sandbox.add_workspace("Project PROJ")
    linked = kantata.create_story(NewStory(ws, "PROJ-12", external_reference=jira_link("PROJ-12")))
    kantata.create_story(NewStory(ws, "PROJ-13", external_reference=jira_link("PROJ-13")))
    kantata.create_story(NewStory(ws, "local"))
    # When looked up by the stories' external-reference filters (option A) ...
    found = list(
        kantata.list_stories(
            workspace_id=ws, external_reference_service_name="jira", external_reference_service_model="issue",
            external_reference_service_model_ref="PROJ-12",
        )
    )  # fmt: skip
    # ... and through the external references route (option B)
    (ref,) = kantata.list_external_references("Story", service_name="jira", service_model_ref="PROJ-12")
    # Then both name the same task
    assert [s.id for s in found] == [linked.id]
    assert ref.subject_id == int(linked.id)
    assert kantata.get_story(ref.subject_id or 0).title == "PROJ-12"
    # And the non-numeric key went in the string-list filter, as Kantata types the single one integer
    assert (
        api_calls(sandbox, "GET", "/stories")[0].query["external_reference_service_model_refs"] == "PROJ-12"
    )


def test_a_status_outside_the_workspaces_set_is_refused_and_the_task_left_alone(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    statuses = synced_workspace(kantata, sandbox)
    story = kantata.create_story(NewStory(statuses["workspace"], "Checkout fails", status="In Progress"))
    with pytest.raises(ValidationError) as caught:
        kantata.update_story(story.id, status="Closed")
    assert list(caught.value.field_errors) == ["status"]
    assert "'In Review'" in caught.value.field_errors["status"][0]
    assert caught.value.attempts == 1
    assert kantata.get_story(story.id).status == "In Progress"


def test_a_workspace_without_a_set_takes_the_four_defaults(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    ws = sandbox.add_workspace("Acme Webapp")
    assert kantata.get_workspace(ws).task_statuses == ("not started", "started", "needs info", "completed")
    story = kantata.create_story(NewStory(ws, "Checkout fails"))
    done = kantata.update_story(story.id, state="completed")
    assert (done.status, done.state, done.custom_task_status_id) == ("completed", "completed", None)
    with pytest.raises(ValidationError):
        kantata.update_story(story.id, status="Done")


def test_deleting_a_custom_status_puts_its_tasks_in_their_categorys_default(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    statuses = synced_workspace(kantata, sandbox)
    story = kantata.create_story(NewStory(statuses["workspace"], "t", status="In Review"))
    kantata.delete_custom_task_status(statuses["In Review"])
    fallen = kantata.get_story(story.id)
    assert (fallen.status, fallen.state, fallen.custom_task_status_id) == (
        "In Progress", "started", int(statuses["In Progress"]),
    )  # fmt: skip


def test_story_create_hit_by_a_503_is_sent_once(
    sandbox: KantataSandbox, kantata: KantataClient, fake_time: FakeTime
) -> None:
    ws = sandbox.add_workspace("Project PROJ")
    sandbox.faults.script([503], method="POST", path_prefix="/stories")
    with pytest.raises(UnavailableError) as caught:
        kantata.create_story(NewStory(ws, "Checkout fails", external_reference=jira_link()))
    assert (caught.value.retryable, caught.value.attempts) == (True, 1)
    assert [r.status for r in api_calls(sandbox, "POST", "/stories")] == [503]
    assert fake_time.sleeps == []
    assert sandbox.state.stories == {}


def test_story_create_whose_answer_is_lost_is_not_repeated_and_is_found_by_its_link(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a sandbox that makes the next task but drops the connection before answering
    ws = sandbox.add_workspace("Project PROJ")
    sandbox.faults.script(["drop_after"], method="POST", path_prefix="/stories")
    # When the task is created
    with pytest.raises(KantataConnectionError) as caught:
        kantata.create_story(NewStory(ws, "Checkout fails", external_reference=jira_link()))
    # Then one POST went out, the error says a retry may help, and a lookup by link finds the one task made
    assert (caught.value.retryable, caught.value.attempts) == (True, 1)
    assert len(api_calls(sandbox, "POST", "/stories")) == 1
    found = list(
        kantata.list_stories(
            external_reference_service_name="jira", external_reference_service_model_refs=["PROJ-12"]
        )
    )
    assert [s.title for s in found] == ["Checkout fails"]
    assert len(sandbox.state.stories) == 1


def test_story_update_whose_answer_is_lost_is_repeated_and_lands_once(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    statuses = synced_workspace(kantata, sandbox)
    story = kantata.create_story(
        NewStory(statuses["workspace"], "t", external_reference=jira_link(status="To Do"))
    )
    sandbox.faults.script(["drop_after"], method="PUT", path_prefix="/stories")
    done = kantata.update_story(story.id, status="Done", external_reference=jira_link(status="Done"))
    assert [r.status for r in api_calls(sandbox, "PUT", f"/stories/{story.id}")] == [0, 200]
    assert (done.status, [r.external_status for r in done.external_references]) == ("Done", ["Done"])
    assert len(sandbox.state.external_references) == 1


def test_a_deleted_task_is_hidden_unless_asked_for_and_a_lost_delete_answer_is_done(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a linked task, and a sandbox that deletes it on the next DELETE but loses the answer
    ws = sandbox.add_workspace("Project PROJ")
    story = kantata.create_story(NewStory(ws, "t", external_reference=jira_link()))
    sandbox.faults.script(["drop_after"], method="DELETE", path_prefix="/stories")
    # When it is deleted
    kantata.delete_story(story.id)
    # Then the repeat's 404 was taken as done, and the task is soft-deleted: hidden unless asked for
    assert [r.status for r in api_calls(sandbox, "DELETE", f"/stories/{story.id}")] == [0, 404]
    with pytest.raises(NotFoundError):
        kantata.get_story(story.id)
    assert kantata.get_story(story.id, show_deleted=True).deleted_at is not None
    assert list(kantata.list_stories(external_reference_service_model_refs=["PROJ-12"])) == []
    assert [
        s.id
        for s in kantata.list_stories(external_reference_service_model_refs=["PROJ-12"], show_deleted=True)
    ] == [story.id]
    # And an update of a deleted task is NotFoundError, sent once
    with pytest.raises(NotFoundError) as caught:
        kantata.update_story(story.id, status="completed")
    assert caught.value.attempts == 1


def test_stories_list_filters_and_pages(sandbox: KantataSandbox, kantata: KantataClient) -> None:
    ws, other = sandbox.add_workspace("Acme"), sandbox.add_workspace("Other")
    made = [
        kantata.create_story(NewStory(ws, f"t{i}", status="started" if i % 2 else None)) for i in range(5)
    ]
    kantata.create_story(NewStory(other, "elsewhere", status="started"))
    kantata.create_story(NewStory(ws, "archived", archived=True))
    listed = list(kantata.list_stories(workspace_id=ws, per_page=2))
    assert sorted(s.id for s in listed) == sorted(s.id for s in made)
    assert len(api_calls(sandbox, "GET", "/stories")) == 3  # 5 stories, 2 per page
    assert {s.title for s in kantata.list_stories(workspace_id=ws, by_status=["started"])} == {"t1", "t3"}
    assert [s.title for s in kantata.list_stories(only=[made[0].id, int(made[4].id)], include=())] == [
        "t4",
        "t0",
    ]
    assert "archived" in {s.title for s in kantata.list_stories(workspace_id=ws, show_archived=True)}


def test_a_workspace_linked_to_a_repository_is_found_by_that_link(
    sandbox: KantataSandbox, kantata: KantataClient
) -> None:
    # Given a workspace linked to acme/webapp, as `link add` would do it
    ws = sandbox.add_workspace("Acme Webapp")
    sandbox.add_workspace("Unlinked")
    ref = kantata.create_or_update_external_reference(
        ExternalReferenceUpsert(
            "Workspace", int(ws), "github", "repository", "acme/webapp", status="successful"
        )
    )
    # When workspaces are looked up by that link
    found = list(
        kantata.list_workspaces(
            external_reference_service_name="github", external_reference_service_model="repository",
            external_reference_service_model_ref="acme/webapp", include=("external_references",),
        )
    )  # fmt: skip
    # Then the linked workspace comes back with its link
    assert [w.id for w in found] == [ws]
    assert [r.id for r in found[0].external_references] == [ref.id]
    assert [
        r.service_model_ref
        for r in kantata.get_workspace(ws, include=("external_references",)).external_references
    ] == ["acme/webapp"]
    # And once the link is removed, nothing is found
    kantata.delete_external_reference(ref.id)
    assert list(kantata.list_workspaces(external_reference_service_model_refs=["acme/webapp"])) == []


# ---------------------------------------------------------------- the sandbox's transport


def test_sandbox_turns_nagle_off_on_the_connections_it_accepts(
    sandbox: KantataSandbox,
    make_client: Callable[..., tuple[KantataClient, Wire]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Why: the sandbox writes an answer's headers and body separately. With Nagle on, the body waited for
    # the client's delayed ACK, so every request took ~45 ms (250 creates: 11 s). Tests must not assert
    # wall-clock time, so this pins the cause: the accepted socket gets TCP_NODELAY.
    options: list[tuple[int, int]] = []
    real_setsockopt = socket.socket.setsockopt

    def recording_setsockopt(self: socket.socket, level: int, option: int, *value: Any) -> None:
        if (level, option) == (socket.IPPROTO_TCP, socket.TCP_NODELAY):
            options.append((self.getsockname()[1], int(value[0])))
        real_setsockopt(self, level, option, *value)

    monkeypatch.setattr(socket.socket, "setsockopt", recording_setsockopt)
    # Given a fresh client (so a new connection is accepted)
    client, _ = make_client()

    # When it makes a request
    sandbox.add_workspace("Apollo")
    assert [w.title for w in client.list_workspaces()] == ["Apollo"]

    # Then the sandbox's side of the connection (local port = the sandbox port) has Nagle off
    assert (sandbox.port, 1) in options
