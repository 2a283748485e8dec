"""The Kantata OX client against a scripted HTTP server on 127.0.0.1 (real sockets, no other network).

The stub server answers each request with the next scripted reply (or drops/holds the connection), and
records what it was sent, so the tests check both the wire format and the client's behaviour on it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from kantata_bridge.kantata.client import DEFAULT_BASE_URL, KantataClient, RetryPolicy, decode_envelope
from kantata_bridge.kantata.errors import (
    AuthenticationError,
    BadRequestError,
    KantataConnectionError,
    KantataError,
    KantataTimeoutError,
    KantataValueError,
    MalformedResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnavailableError,
    ValidationError,
    error_from_response,
    parse_retry_after,
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

from tests.support.logs import bridge_log_lines
from tests.unit.test_kantata_retry import FakeTime

TOKEN = "sekrit-TOKEN-4f9a2c"


# ---------------------------------------------------------------- the stub server


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict/list is sent as JSON, a str as it is, None as an empty body
    headers: dict[str, str] = field(default_factory=dict)
    action: str | None = None  # "drop": close without answering; "hang": answer nothing until teardown


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    raw_body: bytes


class StubKantata:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self.release = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                stub.requests.append(
                    Seen(
                        method=self.command,
                        path=parts.path,
                        query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                        headers=dict(self.headers.items()),
                        body=json.loads(raw) if raw else None,
                        raw_body=raw,
                    )
                )
                reply = (
                    stub.replies.popleft()
                    if stub.replies
                    else Reply(599, {"errors": [{"message": "unscripted"}]})
                )
                if reply.action == "drop":
                    self.close_connection = True
                    return
                if reply.action == "hang":
                    stub.release.wait(10)
                    self.close_connection = True
                    return
                if isinstance(reply.body, dict | list):
                    data = json.dumps(reply.body).encode()
                    content_type = "application/json"
                else:
                    data = (reply.body or "").encode()
                    content_type = "text/html"
                self.send_response(reply.status)
                if data:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # a short poll interval keeps shutdown (each test's teardown) quick
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)


@pytest.fixture
def stub() -> Iterator[StubKantata]:
    server = StubKantata()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(stub: StubKantata, fake_time: FakeTime | None = None, **kwargs: Any) -> KantataClient:
    fake = fake_time or FakeTime()
    retry = kwargs.pop(
        "retry", RetryPolicy(sleep=fake.sleep, clock=fake.clock, random=lambda: 1.0, max_attempts=3)
    )
    return KantataClient(TOKEN, stub.url, retry=retry, read_timeout=kwargs.pop("read_timeout", 5.0), **kwargs)


@pytest.fixture
def client(stub: StubKantata, fake_time: FakeTime) -> Iterator[KantataClient]:
    with make_client(stub, fake_time) as c:
        yield c


# ---------------------------------------------------------------- envelopes


def envelope(
    key: str,
    objects: list[dict[str, Any]],
    *,
    included: Mapping[str, list[dict[str, Any]]] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Kantata envelope. The primary map is built in reverse order, so only ``results`` gives the order."""
    out: dict[str, Any] = {
        "count": len(objects),
        "results": [{"key": key, "id": o["id"]} for o in objects],
        key: {o["id"]: o for o in reversed(objects)},
    }
    if meta is not None:
        out["meta"] = meta
    for inc_key, inc_objects in (included or {}).items():
        out.setdefault(inc_key, {}).update({o["id"]: o for o in inc_objects})
    return out


def report_obj(rid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "color": "green",
        "description": f"report {rid}",
        "details": [{"category": "Scope", "color": "yellow", "description": "tight"}],
        "created_at": "2026-11-24T10:00:00Z",
        "updated_at": "2026-11-24T10:00:00Z",
        **extra,
    }


def ext_ref_obj(rid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": rid,
        "subject_type": "StatusReport",
        "subject_id": 101,
        "service_name": "github",
        "service_model": "issue",
        "service_model_ref": "octo/repo#7",
        "status": "successful",
        **extra,
    }


def status_obj(sid: str, status: str, category: str, position: int, set_id: int = 5) -> dict[str, Any]:
    return {"id": sid, "status": status, "category": category, "position": position, "status_set_id": set_id}


def new_report(**overrides: Any) -> StatusReport:
    fields: dict[str, Any] = {
        "workspace_id": "7",
        "color": "yellow",
        "description": "Sprint slipping",
        "details": (StatusReportDetail("Schedule", "red", "2 days late"),),
        "external_reference": InlineExternalReference("github", "issue", "octo/repo#7"),
    }
    fields.update(overrides)
    return StatusReport(**fields)


# ---------------------------------------------------------------- wire format


def test_every_request_carries_the_bearer_token_json_accept_and_user_agent(
    stub: StubKantata, client: KantataClient
) -> None:
    # Given a workspace on the server
    stub.reply(Reply(body=envelope("workspaces", [{"id": "7", "title": "Apollo"}])))
    # When it is fetched
    workspace = client.get_workspace(7)
    # Then the request is authenticated and goes to the suffix-less path under the base URL
    (seen,) = stub.requests
    assert seen.method == "GET"
    assert seen.path == "/api/v1/workspaces/7"
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["User-Agent"] == "kantata-bridge/0.1"
    assert (workspace.id, workspace.title) == ("7", "Apollo")


def test_create_status_report_wraps_the_body_and_returns_its_included_references(
    stub: StubKantata, client: KantataClient
) -> None:
    # Given Kantata answers a create with the report and its side-loaded external reference
    created = report_obj("101", workspace_id="7", external_reference_ids=["55"])
    stub.reply(
        Reply(
            body=envelope(
                "status_reports",
                [created],
                included={
                    "external_references": [ext_ref_obj("55")],
                    "workspaces": [{"id": "7", "title": "A"}],
                },
            )
        )
    )
    # When a report is created
    report = client.create_status_report(new_report())
    # Then the body is wrapped in the singular key and asks for the associations back
    (seen,) = stub.requests
    assert (seen.method, seen.path) == ("POST", "/api/v1/status_reports")
    assert seen.query == {"include": "external_references,workspace"}
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.body == {
        "status_report": {
            "workspace_id": "7",
            "color": "yellow",
            "description": "Sprint slipping",
            "details": [{"category": "Schedule", "color": "red", "description": "2 days late"}],
            "external_reference": {
                "service_name": "github",
                "service_model": "issue",
                "service_model_ref": "octo/repo#7",
            },
        }
    }
    # And the returned report has its id, workspace and the included reference resolved
    assert (report.id, report.workspace_id) == ("101", "7")
    assert report.external_reference_ids == ("55",)
    assert [r.service_model_ref for r in report.external_references] == ["octo/repo#7"]


def test_update_status_report_puts_the_body_without_workspace_id(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(body=envelope("status_reports", [report_obj("101", workspace_id="7")])))
    report = client.update_status_report("101", new_report(color="red"))
    (seen,) = stub.requests
    assert (seen.method, seen.path) == ("PUT", "/api/v1/status_reports/101")
    assert "workspace_id" not in seen.body["status_report"]
    assert seen.body["status_report"]["color"] == "red"
    assert report.id == "101"


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c: c.delete_status_report(101), "/api/v1/status_reports/101"),
        (lambda c: c.delete_task_status_set("5"), "/api/v1/task_status_sets/5"),
        (lambda c: c.delete_custom_task_status(9), "/api/v1/custom_task_statuses/9"),
        (lambda c: c.delete_external_reference("55"), "/api/v1/external_references/55"),
    ],
)
def test_deletes_send_delete_and_accept_an_empty_204(
    stub: StubKantata, client: KantataClient, call: Callable[[KantataClient], Any], path: str
) -> None:
    stub.reply(Reply(204))
    assert call(client) is None
    assert [(s.method, s.path, s.raw_body) for s in stub.requests] == [("DELETE", path, b"")]


def test_task_status_set_create_returns_its_statuses_in_position_order(
    stub: StubKantata, client: KantataClient
) -> None:
    # Given Kantata returns a new set with its four default statuses, listed out of order
    statuses = [
        status_obj("4", "completed", "completed", 3),
        status_obj("1", "not started", "not started", 0),
        status_obj("3", "needs info", "needs info", 2),
        status_obj("2", "started", "started", 1),
    ]
    tss = {"id": "5", "name": "GitHub flow", "custom_task_status_ids": ["4", "1", "3", "2"]}
    stub.reply(Reply(body=envelope("task_status_sets", [tss], included={"custom_task_statuses": statuses})))
    # When it is created
    created = client.create_task_status_set("GitHub flow")
    # Then the body is wrapped, the statuses are included and come back ordered by position
    (seen,) = stub.requests
    assert seen.body == {"task_status_set": {"name": "GitHub flow"}}
    assert seen.query == {"include": "custom_task_statuses"}
    assert [s.status for s in created.statuses] == ["not started", "started", "needs info", "completed"]


def test_make_account_default_puts_to_its_own_route_without_a_body(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(body=envelope("task_status_sets", [{"id": "5", "name": "GitHub flow"}])))
    result = client.make_account_default(5)
    (seen,) = stub.requests
    assert (seen.method, seen.path, seen.raw_body) == (
        "PUT",
        "/api/v1/task_status_sets/5/update_account_default",
        b"",
    )
    assert result.name == "GitHub flow"


def test_custom_task_status_create_sends_the_set_id_as_an_integer(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(body=envelope("custom_task_statuses", [status_obj("9", "In review", "started", 4)])))
    status = client.create_custom_task_status("5", "In review", "started")
    assert stub.requests[0].body == {
        "custom_task_status": {"status": "In review", "category": "started", "status_set_id": 5}
    }
    assert (status.id, status.status_set_id, status.position) == ("9", 5, 4)


def test_custom_task_status_update_sends_only_the_given_fields(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(body=envelope("custom_task_statuses", [status_obj("9", "Review", "started", 2)])))
    client.update_custom_task_status(9, position=2)
    assert stub.requests[0].body == {"custom_task_status": {"position": 2}}


def test_external_reference_upsert_posts_to_create_or_update(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(body=envelope("external_references", [ext_ref_obj("55")])))
    ref = client.create_or_update_external_reference(
        ExternalReferenceUpsert("StatusReport", 101, "github", "issue", "octo/repo#7", status="successful")
    )
    (seen,) = stub.requests
    assert (seen.method, seen.path) == ("POST", "/api/v1/external_references/create_or_update")
    assert seen.body["external_reference"]["subject_id"] == 101
    assert (ref.id, ref.subject_id) == ("55", 101)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"workspace_id": 7}, {"workspace_id": "7"}),
        # a numeric ref goes in the integer-typed single filter
        ({"external_reference_service_model_ref": "1234"}, {"external_reference_service_model_ref": "1234"}),
        # a non-numeric ref would break the integer filter: it goes in the string list filter (CONTRACT §8.1)
        (
            {"external_reference_service_model_ref": "octo/repo#7"},
            {"external_reference_service_model_refs": "octo/repo#7"},
        ),
        (
            {"external_reference_service_model_refs": ["a#1", "a#2"]},
            {"external_reference_service_model_refs": "a#1,a#2"},
        ),
        (
            {"external_reference_service_name": "github", "external_reference_service_model": "issue"},
            {"external_reference_service_name": "github", "external_reference_service_model": "issue"},
        ),
    ],
)
def test_list_status_reports_sends_filters_as_kantata_types_them(
    stub: StubKantata, client: KantataClient, kwargs: dict[str, Any], expected: dict[str, str]
) -> None:
    stub.reply(Reply(body=envelope("status_reports", [], meta={"count": 0, "page_count": 0})))
    assert list(client.list_status_reports(**kwargs)) == []
    assert stub.requests[0].query == {
        **expected,
        "include": "external_references,workspace",
        "page": "1",
        "per_page": "200",
    }


def test_list_workspaces_sends_archived_and_ref_filters(stub: StubKantata, client: KantataClient) -> None:
    stub.reply(Reply(body=envelope("workspaces", [{"id": "7", "title": "Apollo"}])))
    found = list(
        client.list_workspaces(
            matching="Apollo", external_reference_service_model_refs=["x"], include_archived=True
        )
    )
    assert [w.title for w in found] == ["Apollo"]
    assert stub.requests[0].query == {
        "matching": "Apollo",
        "external_reference_service_model_refs": "x",
        "include_archived": "true",
        "page": "1",
        "per_page": "200",
    }


def test_list_external_references_requires_and_sends_subject_type(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(body=envelope("external_references", [ext_ref_obj("55")])))
    refs = list(
        client.list_external_references(
            "StatusReport", service_name="github", service_model_ref="octo/repo#7"
        )
    )
    assert [r.id for r in refs] == ["55"]
    assert stub.requests[0].query["subject_type"] == "StatusReport"
    assert stub.requests[0].query["service_model_ref"] == "octo/repo#7"


def test_list_external_references_with_the_subject_gives_each_its_side_loaded_workspace(
    stub: StubKantata, client: KantataClient
) -> None:
    refs = [
        {
            **ext_ref_obj("55", subject_type="Workspace", subject_id=7),
            "subject_ref": {"key": "workspaces", "id": "7"},
        },
        {
            **ext_ref_obj("56", subject_type="Workspace", subject_id=8),
            "subject_ref": {"key": "workspaces", "id": "8"},
        },
        ext_ref_obj("57", subject_type="Workspace", subject_id=9),
    ]
    workspaces = [{"id": "7", "title": "Acme Webapp", "archived": False}]
    stub.reply(Reply(body=envelope("external_references", refs, included={"workspaces": workspaces})))

    found = list(client.list_external_references("Workspace", service_name="github", include=("subject",)))

    assert stub.requests[0].query["include"] == "subject"
    assert [(r.subject_ref, r.workspace.title if r.workspace else None) for r in found] == [
        (("workspaces", "7"), "Acme Webapp"),
        (("workspaces", "8"), None),  # named but not side-loaded: Kantata left it out
        (None, None),  # no subject_ref: the include was not honoured
    ]


def test_bulk_update_sends_the_plural_array_and_decodes_the_assignments(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(
        Reply(
            body=envelope(
                "workspace_task_status_sets",
                [
                    {"id": "1", "workspace_id": 7, "status_set_id": 5},
                    {"id": "2", "workspace_id": 8, "status_set_id": 5},
                ],
            )
        )
    )
    result = client.bulk_update_workspace_task_status_sets(
        [WorkspaceTaskStatusSet(7, 5), WorkspaceTaskStatusSet(8, 5)]
    )
    (seen,) = stub.requests
    assert (seen.method, seen.path) == ("PUT", "/api/v1/workspace_task_status_sets/bulk_update")
    assert seen.body == {
        "workspace_task_status_sets": [
            {"workspace_id": 7, "status_set_id": 5},
            {"workspace_id": 8, "status_set_id": 5},
        ]
    }
    assert result == [WorkspaceTaskStatusSet(7, 5), WorkspaceTaskStatusSet(8, 5)]


def test_bulk_update_refusal_keeps_the_per_workspace_reasons(
    stub: StubKantata, client: KantataClient
) -> None:
    # Given Kantata refuses one of the workspaces (all-or-nothing)
    errors = {
        "errors": [
            {"type": "validation", "field": "workspace 8", "message": "is archived"},
            {"type": "validation", "field": "workspace 9", "message": "not found"},
        ]
    }
    stub.reply(Reply(422, errors))
    # When / Then the ValidationError carries each workspace's reason, and the whole body
    with pytest.raises(ValidationError) as raised:
        client.bulk_update_workspace_task_status_sets(
            [WorkspaceTaskStatusSet(8, 5), WorkspaceTaskStatusSet(9, 5)]
        )
    assert raised.value.field_errors == {"workspace 8": ["is archived"], "workspace 9": ["not found"]}
    assert raised.value.payload == errors
    assert len(stub.requests) == 1  # a 422 is not retried


def test_bulk_update_with_nothing_to_assign_sends_nothing(stub: StubKantata, client: KantataClient) -> None:
    assert client.bulk_update_workspace_task_status_sets([]) == []
    assert stub.requests == []


def test_on_request_hook_sees_method_path_and_body_of_each_send(stub: StubKantata) -> None:
    seen: list[tuple[str, str, Any]] = []
    stub.reply(Reply(body=envelope("task_status_sets", [{"id": "5", "name": "n"}])))
    with make_client(stub, on_request=lambda m, p, b: seen.append((m, p, b))) as c:
        c.update_task_status_set(5, "n")
    assert seen == [("PUT", "/task_status_sets/5", {"task_status_set": {"name": "n"}})]


# ---------------------------------------------------------------- envelope decoding and pagination


def test_decoded_objects_follow_results_order_not_map_order() -> None:
    # Given an envelope whose map lists ids in a different order from results
    payload = {
        "results": [
            {"key": "status_reports", "id": "101"},
            {"key": "status_reports", "id": "99"},
            {"key": "status_reports", "id": "150"},
        ],
        "status_reports": {"99": report_obj("99"), "150": report_obj("150"), "101": report_obj("101")},
    }
    # When / Then
    assert [o["id"] for o in decode_envelope(payload, "status_reports").objects] == ["101", "99", "150"]


def test_included_objects_of_the_primary_type_are_reachable_but_not_yielded() -> None:
    # Given a story with a sub-story side-loaded into the same map (only the parent is a result)
    payload = {
        "results": [{"key": "stories", "id": "1"}],
        "stories": {"1": {"id": "1", "sub_story_ids": ["2"]}, "2": {"id": "2"}},
        "users": {"3": {"id": "3", "name": "Ada"}},
    }
    page = decode_envelope(payload, "stories")
    assert [o["id"] for o in page.objects] == ["1"]
    assert page.included.get("stories", 2) == {"id": "2"}
    assert page.included.get("users", "3") == {"id": "3", "name": "Ada"}


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"results": "nope"},
        {"results": [{"key": "status_reports", "id": "1"}], "status_reports": {}},
    ],
    ids=["not-an-object", "results-not-a-list", "result-missing-from-map"],
)
def test_malformed_envelopes_raise_malformed_response_error(payload: Any) -> None:
    with pytest.raises(MalformedResponseError):
        decode_envelope(payload, "status_reports")


@pytest.mark.parametrize(
    ("key", "obj", "call"),
    [
        ("custom_task_statuses", {"id": "9", "position": "first"}, lambda c: c.get_custom_task_status(9)),
        ("status_reports", {"id": "9", "details": "all good"}, lambda c: c.get_status_report(9)),
        ("workspaces", {"title": "no id"}, lambda c: list(c.list_workspaces())),
    ],
    ids=["position-not-a-number", "details-not-a-list", "object-without-id"],
)
def test_an_object_the_client_cannot_read_is_a_malformed_response_not_a_crash(
    stub: StubKantata,
    client: KantataClient,
    key: str,
    obj: dict[str, Any],
    call: Callable[[KantataClient], Any],
) -> None:
    # Given Kantata answers with an object whose fields do not have the documented types
    stub.reply(Reply(body={"count": 1, "results": [{"key": key, "id": "9"}], key: {"9": obj}}))
    # When / Then the caller gets the client's typed error, naming the request, not a KeyError/ValueError
    with pytest.raises(MalformedResponseError) as raised:
        call(client)
    assert raised.value.retryable is False
    assert "/" + key in str(raised.value)


def _reports_page(ids: list[str], page: int, page_count: int, total: int) -> Reply:
    meta = {"count": total, "page_count": page_count, "page_number": page, "page_size": 2}
    return Reply(body=envelope("status_reports", [report_obj(i) for i in ids], meta=meta))


def test_pagination_is_lazy_and_stops_at_meta_page_count(stub: StubKantata, client: KantataClient) -> None:
    # Given three pages of reports; no reply is scripted for a fourth page
    stub.reply(
        _reports_page(["1", "2"], 1, 3, 5), _reports_page(["3", "4"], 2, 3, 5), _reports_page(["5"], 3, 3, 5)
    )
    # When only the first report is taken
    reports = client.list_status_reports(per_page=2)
    assert stub.requests == []  # nothing is sent before iterating
    assert next(reports).id == "1"
    # Then only the first page was fetched
    assert len(stub.requests) == 1
    # And when the rest is consumed, pages 2 and 3 are fetched and nothing past the last
    assert [r.id for r in reports] == ["2", "3", "4", "5"]
    assert [(s.query["page"], s.query["per_page"]) for s in stub.requests] == [
        ("1", "2"),
        ("2", "2"),
        ("3", "2"),
    ]


def test_pagination_falls_back_to_count_when_page_count_is_absent(
    stub: StubKantata, client: KantataClient
) -> None:
    pages = [["1", "2"], ["3", "4"], ["5"]]
    stub.reply(
        *(Reply(body={**envelope("status_reports", [report_obj(i) for i in p]), "count": 5}) for p in pages)
    )
    assert [r.id for r in client.list_status_reports(per_page=2)] == ["1", "2", "3", "4", "5"]
    assert len(stub.requests) == 3


def test_pagination_without_any_paging_info_stops_on_a_short_page(
    stub: StubKantata, client: KantataClient
) -> None:
    first = envelope("status_reports", [report_obj("1"), report_obj("2")])
    second = envelope("status_reports", [report_obj("3")])
    for body in (first, second):
        del body["count"]
    stub.reply(Reply(body=first), Reply(body=second))
    assert [r.id for r in client.list_status_reports(per_page=2)] == ["1", "2", "3"]
    assert len(stub.requests) == 2


def test_an_empty_list_costs_one_request(stub: StubKantata, client: KantataClient) -> None:
    stub.reply(Reply(body=envelope("task_status_sets", [], meta={"count": 0, "page_count": 0})))
    assert list(client.list_task_status_sets()) == []
    assert len(stub.requests) == 1


def test_generic_paginate_yields_each_object_with_its_page_maps(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(
        Reply(
            body=envelope(
                "custom_task_statuses",
                [status_obj("9", "Review", "started", 1)],
                included={"task_status_sets": [{"id": "5", "name": "Flow"}]},
                meta={"count": 1, "page_count": 1},
            )
        )
    )
    ((obj, included),) = list(
        client.paginate("/custom_task_statuses", "custom_task_statuses", {"include": "task_status_set"})
    )
    assert obj["id"] == "9"
    assert included.get("task_status_sets", "5") == {"id": "5", "name": "Flow"}


# ---------------------------------------------------------------- errors


ERROR_CASES = [
    (400, BadRequestError, False),
    (401, AuthenticationError, False),
    (403, PermissionDeniedError, False),
    (404, NotFoundError, False),
    (422, ValidationError, False),
    (429, RateLimitError, True),
    (500, UnavailableError, True),
    (502, UnavailableError, True),
    (503, UnavailableError, True),
    (409, BadRequestError, False),  # an undocumented 4xx is a client-side problem, not retried
]


@pytest.mark.parametrize(("status", "cls", "retryable"), ERROR_CASES)
def test_each_error_status_maps_to_its_class_with_kantata_messages(
    stub: StubKantata, status: int, cls: type[KantataError], retryable: bool
) -> None:
    stub.reply(Reply(status, {"errors": [{"type": "system", "message": "Kantata says no"}]}))
    with make_client(stub, retry=RetryPolicy.never()) as c, pytest.raises(cls) as raised:
        c.get_status_report(101)
    error = raised.value
    assert type(error) is cls
    assert (error.status, error.method, error.path, error.retryable) == (
        status,
        "GET",
        "/status_reports/101",
        retryable,
    )
    assert str(error) == f"Kantata GET /status_reports/101 returned {status}: Kantata says no"


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (502, "<html><body>Bad Gateway</body></html>", UnavailableError),
        (503, None, UnavailableError),
        (404, "Not Found", NotFoundError),
        (401, None, AuthenticationError),
        (429, "slow down", RateLimitError),
        (422, "{not json", ValidationError),
    ],
)
def test_a_non_json_error_body_still_gives_the_right_class(
    stub: StubKantata, status: int, body: str | None, cls: type[KantataError]
) -> None:
    stub.reply(Reply(status, body))
    with make_client(stub, retry=RetryPolicy.never()) as c, pytest.raises(cls) as raised:
        c.get_workspace(7)
    assert raised.value.status == status
    assert raised.value.errors == ()
    assert (raised.value.body or None) == body


def test_validation_error_maps_fields_to_messages(stub: StubKantata, client: KantataClient) -> None:
    stub.reply(
        Reply(
            422,
            {
                "errors": [
                    {"type": "validation", "message": "can't be blank", "field": "description"},
                    {"type": "validation", "message": "is invalid", "field": "description"},
                    {"type": "validation", "message": "must exist", "field": "workspace_id"},
                ]
            },
        )
    )
    with pytest.raises(ValidationError) as raised:
        client.create_status_report(new_report())
    assert raised.value.field_errors == {
        "description": ["can't be blank", "is invalid"],
        "workspace_id": ["must exist"],
    }


def test_a_2xx_body_that_is_not_json_is_a_malformed_response(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(200, "<html>login</html>"))
    with pytest.raises(MalformedResponseError):
        client.get_workspace(7)


def test_redirects_are_not_followed(stub: StubKantata, client: KantataClient) -> None:
    # Following one could carry the bearer token to another host
    stub.reply(Reply(302, None, {"Location": "http://127.0.0.1:9/elsewhere"}))
    with pytest.raises(BadRequestError) as raised:
        client.get_workspace(7)
    assert raised.value.status == 302
    assert len(stub.requests) == 1


def test_retry_after_header_is_read_in_both_forms() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 25 Nov 2026 00:00:30 GMT", now=1795564800.0) == pytest.approx(30.0)
    assert parse_retry_after("Wed, 25 Nov 2026 00:00:00 GMT", now=1795564900.0) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    error = error_from_response(503, None, method="GET", path="/x", headers={"retry-after": "4"})
    assert isinstance(error, UnavailableError)
    assert error.retry_after == 4.0


# ---------------------------------------------------------------- secrets


def test_the_token_is_in_no_repr_message_or_log_line(stub: StubKantata, fake_time: FakeTime) -> None:
    # Given a client whose calls fail in every way, with a retry that logs
    c = make_client(stub, fake_time)
    stub.reply(
        Reply(503, {"errors": [{"message": "down"}]}),
        Reply(401, {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}),
    )
    errors: list[KantataError] = []
    with bridge_log_lines() as log_lines:
        with pytest.raises(AuthenticationError) as raised:
            c.get_workspace(7)
        errors.append(raised.value)
        for status, _, _ in ERROR_CASES:
            errors.append(
                error_from_response(status, {"errors": [{"message": "m"}]}, method="GET", path="/x")
            )
        stub.reply(Reply(action="drop"), Reply(action="drop"), Reply(action="drop"))
        with pytest.raises(KantataConnectionError) as dropped:
            c.get_workspace(7)
        errors.append(dropped.value)
    # Then the token shows up nowhere a user or a log could see it
    logged = log_lines.getvalue()
    assert "retrying" in logged  # the retry log line was written (and is checked below)
    texts = [repr(c), str(c), logged]
    texts += [t for e in errors for t in (str(e), repr(e), e.body or "", repr(e.payload), *_reachable(e))]
    assert all(TOKEN not in t for t in texts)
    assert repr(c) == f"KantataClient(base_url='{stub.url}', token='***')"


@pytest.mark.parametrize("token", ["", "  ", "abc\r\nX-Evil: 1", "tab\tinside", None])
def test_an_unusable_token_is_refused_without_echoing_it(token: Any) -> None:
    with pytest.raises(KantataValueError) as raised:
        KantataClient(token)
    assert "Evil" not in str(raised.value)
    assert "inside" not in str(raised.value)


def test_a_session_passed_in_is_never_given_the_token_or_closed(stub: StubKantata) -> None:
    session = requests.Session()
    stub.reply(Reply(body=envelope("workspaces", [{"id": "7", "title": "A"}])))
    with KantataClient(TOKEN, stub.url, session=session) as c:
        c.get_workspace(7)
    assert "Authorization" not in session.headers
    # still usable: the client did not close what it does not own
    stub.reply(Reply(body=envelope("workspaces", [{"id": "7", "title": "A"}])))
    assert session.get(stub.url + "/workspaces/7", timeout=5).status_code == 200
    session.close()


def test_defaults() -> None:
    c = KantataClient(TOKEN)
    assert c.base_url == DEFAULT_BASE_URL == "https://api.mavenlink.com/api/v1"
    assert c.timeout == (3.05, 10.0)
    assert c.retry == RetryPolicy()
    c.close()


# ---------------------------------------------------------------- retries


def test_429_is_retried_after_the_servers_retry_after_and_then_succeeds(
    stub: StubKantata, client: KantataClient, fake_time: FakeTime
) -> None:
    stub.reply(
        Reply(429, {"errors": [{"message": "Too many requests"}]}, {"Retry-After": "1.5"}),
        Reply(body=envelope("status_reports", [report_obj("101")])),
    )
    report = client.get_status_report(101)
    assert report.id == "101"
    assert len(stub.requests) == 2
    assert fake_time.sleeps == [1.5]


def test_503_is_retried_until_the_attempts_run_out(stub: StubKantata, fake_time: FakeTime) -> None:
    # Given Kantata answers 503 to everything and the policy allows 4 sends in a large budget
    retry = RetryPolicy(
        max_attempts=4, total_budget=100.0, sleep=fake_time.sleep, clock=fake_time.clock, random=lambda: 1.0
    )
    stub.reply(*(Reply(503, {"errors": [{"message": "down"}]}) for _ in range(10)))
    # When
    with make_client(stub, retry=retry) as c, pytest.raises(UnavailableError) as raised:
        c.get_task_status_set(5)
    # Then exactly 4 sends, exponential sleeps between them, and a retryable error for the caller
    assert len(stub.requests) == 4
    assert fake_time.sleeps == [0.5, 1.0, 2.0]
    assert raised.value.retryable is True
    assert raised.value.attempts == 4


def test_503_is_retried_until_the_time_budget_is_spent(stub: StubKantata, fake_time: FakeTime) -> None:
    # Given sleeps of 1, 2, 4, 8 s and a 6 s budget
    retry = RetryPolicy(
        max_attempts=10, base_delay=1.0, max_delay=60.0, total_budget=6.0,
        sleep=fake_time.sleep, clock=fake_time.clock, random=lambda: 1.0,
    )  # fmt: skip
    stub.reply(*(Reply(503) for _ in range(10)))
    with make_client(stub, retry=retry) as c, pytest.raises(UnavailableError) as raised:
        c.get_workspace(7)
    # Then it stops before the sleep that would end past 6 s
    assert len(stub.requests) == 3
    assert fake_time.sleeps == [1.0, 2.0]
    assert raised.value.retryable is True


@pytest.mark.parametrize(
    "create",
    [
        lambda c: c.create_status_report(new_report()),
        lambda c: c.create_task_status_set("Flow"),
        lambda c: c.create_custom_task_status(5, "Review", "started"),
        lambda c: c.create_story(NewStory(7, "Checkout fails")),
    ],
    ids=["status_report", "task_status_set", "custom_task_status", "story"],
)
@pytest.mark.parametrize(
    "failure",
    [Reply(503), Reply(429, None, {"Retry-After": "1"}), Reply(action="drop")],
    ids=["503", "429", "dropped"],
)
def test_a_plain_create_is_sent_once_and_its_failure_left_to_the_caller(
    stub: StubKantata,
    client: KantataClient,
    fake_time: FakeTime,
    create: Callable[[KantataClient], Any],
    failure: Reply,
) -> None:
    # Given the create fails in a way that might have been applied (no idempotency key at Kantata)
    stub.reply(failure, Reply(body=envelope("status_reports", [report_obj("1")])))
    # When / Then it is not repeated in-process; the error says a retry could help
    with pytest.raises(KantataError) as raised:
        create(client)
    assert raised.value.retryable is True
    assert len(stub.requests) == 1
    assert fake_time.sleeps == []


def test_create_or_update_is_an_upsert_so_it_is_retried(
    stub: StubKantata, client: KantataClient, fake_time: FakeTime
) -> None:
    stub.reply(Reply(503), Reply(body=envelope("external_references", [ext_ref_obj("55")])))
    ref = client.create_or_update_external_reference(
        ExternalReferenceUpsert("StatusReport", 101, "github", "issue", "octo/repo#7")
    )
    assert ref.id == "55"
    assert [s.path for s in stub.requests] == ["/api/v1/external_references/create_or_update"] * 2
    assert stub.requests[0].body == stub.requests[1].body


def test_a_dropped_connection_on_a_get_is_retried(stub: StubKantata, client: KantataClient) -> None:
    stub.reply(Reply(action="drop"), Reply(body=envelope("workspaces", [{"id": "7", "title": "Apollo"}])))
    assert client.get_workspace(7).title == "Apollo"
    assert len(stub.requests) == 2


def test_connection_refused_is_a_connection_error_after_the_allowed_attempts(fake_time: FakeTime) -> None:
    # Given a port nobody listens on (bound, then released)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sends: list[str] = []
    retry = RetryPolicy(max_attempts=2, sleep=fake_time.sleep, clock=fake_time.clock, random=lambda: 1.0)
    c = KantataClient(
        TOKEN, f"http://127.0.0.1:{port}/api/v1", retry=retry, on_request=lambda m, p, b: sends.append(p)
    )
    # When / Then
    with pytest.raises(KantataConnectionError) as raised:
        c.get_workspace(7)
    assert not isinstance(raised.value, KantataTimeoutError)
    assert raised.value.retryable is True
    assert sends == ["/workspaces/7", "/workspaces/7"]
    assert str(raised.value) == "Kantata GET /workspaces/7 failed: connection error (ConnectionError)"


def _reachable(value: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[str]:
    """Every string reachable from ``value`` through attributes, mappings, sequences and exception chains."""
    seen = set() if seen is None else seen
    if id(value) in seen or depth > 8:
        return
    seen.add(id(value))
    if isinstance(value, str | bytes):
        yield value if isinstance(value, str) else value.decode("latin-1")
        return
    if isinstance(value, BaseException):
        yield repr(value)
        yield from _reachable(value.args, depth + 1, seen)
        for linked in (value.__cause__, value.__context__):
            yield from _reachable(linked, depth + 1, seen)
    if isinstance(value, Mapping) or hasattr(value, "items"):
        try:
            items = list(value.items())
        except Exception:  # noqa: BLE001 (anything with an odd items() is simply not walked)
            items = []
        for k, v in items:
            yield from _reachable(k, depth + 1, seen)
            yield from _reachable(v, depth + 1, seen)
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from _reachable(item, depth + 1, seen)
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict) and not isinstance(value, type):
        yield from _reachable(attrs, depth + 1, seen)


@pytest.mark.parametrize("failure", ["refused", "timeout"])
def test_a_transport_failure_keeps_the_token_out_of_the_whole_exception_chain(
    stub: StubKantata, fake_time: FakeTime, failure: str
) -> None:
    # Given a real transport failure (requests' exceptions carry the request, and so its headers)
    if failure == "refused":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/v1"
    else:
        stub.reply(Reply(action="hang"))
        url = stub.url
    c = KantataClient(TOKEN, url, retry=RetryPolicy.never(), read_timeout=0.3)
    # When the call fails
    with pytest.raises(KantataConnectionError) as raised:
        c.get_workspace(7)
    # Then nothing reachable from the error, its cause or its context holds the token
    texts = list(_reachable(raised.value))
    assert any("/workspaces/7" in t for t in texts)  # the walk does see the error's own fields
    assert not [t for t in texts if TOKEN in t]
    c.close()


def test_a_read_timeout_is_a_timeout_error(stub: StubKantata) -> None:
    # Given a server that accepts the request and never answers
    stub.reply(Reply(action="hang"))
    with (
        make_client(stub, retry=RetryPolicy.never(), read_timeout=0.3) as c,
        pytest.raises(KantataTimeoutError) as raised,
    ):
        c.get_workspace(7)
    assert raised.value.retryable is True
    assert len(stub.requests) == 1


class RaisingAdapter(requests.adapters.BaseAdapter):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    def send(self, *args: Any, **kwargs: Any) -> requests.Response:
        raise self.exc

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    ("exc", "cls", "retryable"),
    [
        (requests.exceptions.ConnectTimeout(), KantataTimeoutError, True),
        (requests.exceptions.ReadTimeout(), KantataTimeoutError, True),
        (requests.exceptions.ConnectionError(), KantataConnectionError, True),
        (requests.exceptions.ChunkedEncodingError(), KantataConnectionError, True),
        (requests.exceptions.TooManyRedirects(), KantataError, False),
    ],
    ids=["ConnectTimeout", "ReadTimeout", "ConnectionError", "ChunkedEncodingError", "TooManyRedirects"],
)
def test_transport_failures_map_to_typed_errors(
    exc: Exception, cls: type[KantataError], retryable: bool
) -> None:
    session = requests.Session()
    session.mount("https://", RaisingAdapter(exc))
    with (
        KantataClient(TOKEN, session=session, retry=RetryPolicy.never()) as c,
        pytest.raises(KantataError) as raised,
    ):
        c.get_workspace(7)
    assert type(raised.value) is cls
    assert raised.value.retryable is retryable
    # requests' exception is not chained: it holds the PreparedRequest, whose headers hold the token
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None


# ---------------------------------------------------------------- refused before sending


REFUSED_BEFORE_SENDING: list[tuple[str, Callable[[KantataClient], Any]]] = [
    ("report colour", lambda c: c.create_status_report(new_report(color="amber"))),
    ("detail category lower case", lambda c: c.create_status_report(new_report(details=(StatusReportDetail("scope", "green"),)))),  # type: ignore[arg-type]
    ("detail colour", lambda c: c.update_status_report(1, new_report(details=(StatusReportDetail("Scope", "blue"),)))),  # type: ignore[arg-type]
    ("duplicate detail", lambda c: c.create_status_report(new_report(details=(StatusReportDetail("Scope", "green"),) * 2))),
    ("missing workspace", lambda c: c.create_status_report(new_report(workspace_id=None))),
    ("inline ref without model ref", lambda c: c.create_status_report(new_report(external_reference=InlineExternalReference("github", "issue", "")))),
    ("status category", lambda c: c.create_custom_task_status(5, "Done", "done")),
    ("status category capitalised", lambda c: c.create_custom_task_status(5, "Done", "Completed")),
    ("empty status name", lambda c: c.create_custom_task_status(5, " ", "completed")),
    ("empty set name", lambda c: c.create_task_status_set("")),
    ("update with nothing", lambda c: c.update_custom_task_status(9)),
    ("negative position", lambda c: c.update_custom_task_status(9, position=-1)),
    ("upsert status", lambda c: c.create_or_update_external_reference(ExternalReferenceUpsert("StatusReport", 1, "g", "i", "r", status="ok"))),  # type: ignore[arg-type]
    ("upsert subject type", lambda c: c.create_or_update_external_reference(ExternalReferenceUpsert("Project", 1, "g", "i", "r"))),
    ("list refs subject type", lambda c: c.list_external_references("statusreport")),
    ("list refs status", lambda c: c.list_external_references("StatusReport", status="done")),
    ("path id not numeric", lambda c: c.get_status_report("12/../1")),
    ("path id bool", lambda c: c.delete_status_report(True)),
    ("per_page too big", lambda c: c.list_status_reports(per_page=201)),
    ("per_page zero", lambda c: c.paginate("/x", "x", per_page=0)),
    ("empty refs list", lambda c: c.list_status_reports(external_reference_service_model_refs=[])),
    ("too many refs", lambda c: c.list_workspaces(external_reference_service_model_refs=[str(i) for i in range(201)])),
    ("ref with comma", lambda c: c.list_status_reports(external_reference_service_model_refs=["a,b"])),
    ("non-numeric ref and refs", lambda c: c.list_status_reports(external_reference_service_model_ref="a#1", external_reference_service_model_refs=["b"])),
    ("include as a string", lambda c: c.list_status_reports(include="workspace")),
    ("workspace twice in bulk", lambda c: c.bulk_update_workspace_task_status_sets([WorkspaceTaskStatusSet(7, 5), WorkspaceTaskStatusSet(7, 6)])),
    ("story without title", lambda c: c.create_story(NewStory(7, " "))),
    ("story workspace not numeric", lambda c: c.create_story(NewStory("acme", "t"))),
    ("story type", lambda c: c.create_story(NewStory(7, "t", story_type="bug"))),  # type: ignore[arg-type]
    ("story priority", lambda c: c.create_story(NewStory(7, "t", priority="urgent"))),  # type: ignore[arg-type]
    ("story due date", lambda c: c.create_story(NewStory(7, "t", due_date="24/12/2026"))),
    ("story long description", lambda c: c.create_story(NewStory(7, "t", description="x" * 1000))),
    ("story ref status", lambda c: c.create_story(NewStory(7, "t", external_reference=StoryExternalReference("jira", "issue", "P-1", status="ok")))),  # type: ignore[arg-type]
    ("story ref without service", lambda c: c.update_story(9, external_reference=StoryExternalReference("", "issue", "P-1"))),
    ("story update with nothing", lambda c: c.update_story(9)),
    ("story status and state", lambda c: c.update_story(9, status="Done", state="completed")),
    ("story state", lambda c: c.update_story(9, state="done")),  # type: ignore[arg-type]
    ("story blank status", lambda c: c.update_story(9, status="")),
    ("story id not numeric", lambda c: c.get_story("PROJ-12")),
    ("delete story id", lambda c: c.delete_story("9;1")),
    ("stories only empty", lambda c: c.list_stories(only=[])),
    ("stories only not numeric", lambda c: c.list_stories(only=["PROJ-1"])),
    ("stories by_status comma", lambda c: c.list_stories(by_status=["Blocked, waiting"])),
    ("stories by_status string", lambda c: c.list_stories(by_status="Done")),
    ("stories refs empty", lambda c: c.list_stories(external_reference_service_model_refs=[])),
    ("stories optional_fields string", lambda c: c.list_stories(optional_fields="custom_task_status_id")),
    ("workspace include string", lambda c: c.get_workspace(7, include="external_references")),
]  # fmt: skip


@pytest.mark.parametrize(
    "call", [c for _, c in REFUSED_BEFORE_SENDING], ids=[n for n, _ in REFUSED_BEFORE_SENDING]
)
def test_values_kantata_would_refuse_are_refused_before_any_request(
    stub: StubKantata, client: KantataClient, call: Callable[[KantataClient], Any]
) -> None:
    with pytest.raises(KantataValueError):
        call(client)
    assert stub.requests == []


def test_close_closes_the_clients_own_session() -> None:
    c = KantataClient(TOKEN)
    closed: list[bool] = []
    c._session.close = lambda: closed.append(True)  # type: ignore[method-assign]
    with c:
        pass
    assert closed == [True]


# ---------------------------------------------------------------- stories (tasks)


def story_obj(sid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "title": "Checkout fails on Safari",
        "story_type": "task",
        "status": "In Review",
        "state": "started",
        "priority": "normal",
        "archived": False,
        "updated_at": "2026-11-24T10:00:00+00:00",
        "deleted_at": None,
        **extra,
    }


def test_create_story_posts_once_with_an_integer_workspace_and_reads_the_included_links(
    stub: StubKantata, client: KantataClient
) -> None:
    # Given Kantata answers with the story, its workspace and its reference side-loaded
    created = story_obj("301", workspace_id="7", external_reference_ids=["55"], custom_task_status_id=12)
    workspace = {"id": "7", "title": "Acme", "task_status_set_id": "5", "task_status_set_name": "Jira PROJ",
                 "task_statuses": ["To Do", "In Review", "Done"]}  # fmt: skip
    ref = ext_ref_obj(
        "55", subject_type="Story", subject_id=301, service_name="jira", service_model_ref="PROJ-12"
    )
    stub.reply(Reply(body=envelope("stories", [created], included={"workspaces": [workspace],
                                                                     "external_references": [ref]})))  # fmt: skip
    # When a story is created with a tracker link carrying its status
    story = client.create_story(
        NewStory(
            workspace_id="7", title="Checkout fails on Safari", status="In Review", due_date="2026-12-01",
            description="https://jira/PROJ-12",
            external_reference=StoryExternalReference("jira", "issue", "PROJ-12", status="successful",
                                                      external_status="In Review"),
        )
    )  # fmt: skip
    # Then the body is wrapped under "story", workspace_id is an integer and the link carries its status
    (seen,) = stub.requests
    assert (seen.method, seen.path) == ("POST", "/api/v1/stories")
    assert seen.query == {
        "include": "external_references,workspace",
        "optional_fields": "custom_task_status_id",
    }
    assert seen.body == {
        "story": {
            "workspace_id": 7,
            "title": "Checkout fails on Safari",
            "status": "In Review",
            "due_date": "2026-12-01",
            "description": "https://jira/PROJ-12",
            "external_reference": {"service_name": "jira", "service_model": "issue", "service_model_ref": "PROJ-12",
                                   "status": "successful", "external_status": "In Review"},
        }
    }  # fmt: skip
    # And the story is read with its workspace's statuses and its reference
    assert (story.id, story.status, story.state, story.custom_task_status_id) == (
        "301",
        "In Review",
        "started",
        12,
    )
    assert story.workspace is not None
    assert story.workspace.task_statuses == ("To Do", "In Review", "Done")
    assert [(r.id, r.subject_type, r.subject_id) for r in story.external_references] == [("55", "Story", 301)]


def test_update_story_puts_only_the_given_fields_and_is_retried(
    stub: StubKantata, client: KantataClient, fake_time: FakeTime
) -> None:
    # Given the first PUT meets a 503
    stub.reply(
        Reply(503), Reply(body=envelope("stories", [story_obj("301", status="Done", state="completed")]))
    )
    # When the status and the link are updated
    story = client.update_story(
        "301", status="Done",
        external_reference=StoryExternalReference("jira", "issue", "PROJ-12", status="successful",
                                                  external_status="Done", external_message="Fixed it"),
    )  # fmt: skip
    # Then the same PUT was sent twice (an update is safe to repeat) with only those fields
    assert [(r.method, r.path) for r in stub.requests] == [("PUT", "/api/v1/stories/301")] * 2
    assert stub.requests[0].body == stub.requests[1].body == {
        "story": {
            "status": "Done",
            "external_reference": {"service_name": "jira", "service_model": "issue", "service_model_ref": "PROJ-12",
                                   "status": "successful", "external_status": "Done", "external_message": "Fixed it"},
        }
    }  # fmt: skip
    assert len(fake_time.sleeps) == 1
    assert (story.status, story.state) == ("Done", "completed")


def test_update_story_sends_state_dates_and_other_fields_as_kantata_types_them(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(body=envelope("stories", [story_obj("301")])))
    client.update_story(301, state="completed", due_date=date(2026, 12, 24), priority="high", archived=False,
                        title="New title", include=(), optional_fields=())  # fmt: skip
    (seen,) = stub.requests
    assert seen.query == {}
    assert seen.body == {"story": {"state": "completed", "due_date": "2026-12-24", "priority": "high",
                                   "archived": False, "title": "New title"}}  # fmt: skip


def test_a_refused_status_name_is_a_validation_error_naming_the_field(
    stub: StubKantata, client: KantataClient
) -> None:
    errors = {
        "errors": [{"type": "validation", "field": "status", "message": "status 'Closed' is not in ..."}]
    }
    stub.reply(Reply(422, errors))
    with pytest.raises(ValidationError) as raised:
        client.update_story(301, status="Closed")
    assert raised.value.field_errors == {"status": ["status 'Closed' is not in ..."]}
    assert len(stub.requests) == 1


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, {}),
        ({"workspace_id": 7}, {"workspace_id": "7"}),
        ({"external_reference_service_name": "jira", "external_reference_service_model": "issue",
          "external_reference_service_model_refs": ["PROJ-12", "PROJ-13"]},
         {"external_reference_service_name": "jira", "external_reference_service_model": "issue",
          "external_reference_service_model_refs": "PROJ-12,PROJ-13"}),
        ({"external_reference_service_model_ref": "1234"}, {"external_reference_service_model_ref": "1234"}),
        ({"external_reference_service_model_ref": "PROJ-12"}, {"external_reference_service_model_refs": "PROJ-12"}),
        ({"only": [301, "302"]}, {"only": "301,302"}),
        ({"by_status": ["To Do", "In Review"]}, {"by_status": "To Do,In Review"}),
        ({"show_deleted": True, "show_archived": True, "show_todos": True},
         {"show_deleted": "true", "show_archived": "true", "show_todos": "true"}),
        ({"show_deleted": False}, {}),
    ],
)  # fmt: skip
def test_list_stories_sends_filters_as_kantata_types_them(
    stub: StubKantata, client: KantataClient, kwargs: dict[str, Any], expected: dict[str, str]
) -> None:
    stub.reply(Reply(body=envelope("stories", [], meta={"count": 0, "page_count": 0})))
    assert list(client.list_stories(**kwargs)) == []
    assert stub.requests[0].path == "/api/v1/stories"
    assert stub.requests[0].query == {
        **expected,
        "include": "external_references,workspace",
        "optional_fields": "custom_task_status_id",
        "page": "1",
        "per_page": "200",
    }


def test_list_stories_pages_lazily_in_results_order(stub: StubKantata, client: KantataClient) -> None:
    meta = {"count": 3, "page_count": 2, "page_size": 2}
    stub.reply(
        Reply(body=envelope("stories", [story_obj("9"), story_obj("4")], meta={**meta, "page_number": 1})),
        Reply(body=envelope("stories", [story_obj("7")], meta={**meta, "page_number": 2})),
    )
    stories = client.list_stories(per_page=2)
    assert stub.requests == []
    assert [s.id for s in stories] == ["9", "4", "7"]
    assert [r.query["page"] for r in stub.requests] == ["1", "2"]


def test_get_story_asks_for_a_deleted_one_only_when_told(stub: StubKantata, client: KantataClient) -> None:
    deleted = story_obj("301", deleted_at="2026-11-25T09:00:00+00:00")
    stub.reply(
        Reply(body=envelope("stories", [story_obj("301")])), Reply(body=envelope("stories", [deleted]))
    )
    assert client.get_story(301).deleted_at is None
    assert client.get_story("301", show_deleted=True).deleted_at == "2026-11-25T09:00:00+00:00"
    assert [r.path for r in stub.requests] == ["/api/v1/stories/301"] * 2
    assert "show_deleted" not in stub.requests[0].query
    assert stub.requests[1].query["show_deleted"] == "true"


def test_get_story_404_is_not_found(stub: StubKantata, client: KantataClient) -> None:
    stub.reply(Reply(404, {"errors": [{"type": "system", "message": "Story not found"}]}))
    with pytest.raises(NotFoundError):
        client.get_story(301)
    assert len(stub.requests) == 1


def test_delete_story_sends_delete_and_takes_a_404_on_a_repeat_as_done(
    stub: StubKantata, client: KantataClient
) -> None:
    # Given the first DELETE's answer is lost and the repeat finds the story already gone
    stub.reply(
        Reply(action="drop"), Reply(404, {"errors": [{"type": "system", "message": "Story not found"}]})
    )
    client.delete_story("301")
    assert [(r.method, r.path) for r in stub.requests] == [("DELETE", "/api/v1/stories/301")] * 2


def test_get_workspace_can_include_its_external_references(stub: StubKantata, client: KantataClient) -> None:
    ws = {"id": "7", "title": "Acme Webapp", "task_status_set_id": None, "external_reference_ids": ["55"],
          "task_statuses": ["not started", "started", "needs info", "completed"]}  # fmt: skip
    ref = ext_ref_obj("55", subject_type="Workspace", subject_id=7, service_model="repository",
                      service_model_ref="acme/webapp")  # fmt: skip
    stub.reply(Reply(body=envelope("workspaces", [ws], included={"external_references": [ref]})))
    workspace = client.get_workspace(7, include=("external_references",))
    assert stub.requests[0].query == {"include": "external_references"}
    assert workspace.task_statuses == ("not started", "started", "needs info", "completed")
    assert [r.service_model_ref for r in workspace.external_references] == ["acme/webapp"]


def test_list_workspaces_finds_a_workspace_by_a_numeric_or_textual_ref(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(*(Reply(body=envelope("workspaces", [{"id": "7", "title": "Acme"}])) for _ in range(2)))
    list(
        client.list_workspaces(
            external_reference_service_name="jira", external_reference_service_model_ref="10001"
        )
    )
    list(
        client.list_workspaces(
            external_reference_service_model_ref="acme/webapp", include=("external_references",)
        )
    )
    assert stub.requests[0].query["external_reference_service_model_ref"] == "10001"
    assert stub.requests[1].query["external_reference_service_model_refs"] == "acme/webapp"
    assert stub.requests[1].query["include"] == "external_references"


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"custom_task_status_id": "12"}, 12),
        ({"custom_task_status_id": 12}, 12),
        ({"custom_task_status_id": None}, None),
        ({}, None),
    ],
)
def test_story_ids_are_read_whether_kantata_sends_strings_or_integers(
    stub: StubKantata, client: KantataClient, obj: dict[str, Any], expected: int | None
) -> None:
    stub.reply(Reply(body=envelope("stories", [story_obj("301", workspace_id=7, priority=2, **obj)])))
    story = client.get_story(301)
    assert story.custom_task_status_id == expected
    assert (story.workspace_id, story.priority) == ("7", "2")


def test_a_story_the_client_cannot_read_is_a_malformed_response(
    stub: StubKantata, client: KantataClient
) -> None:
    stub.reply(Reply(body=envelope("stories", [story_obj("301", custom_task_status_id="twelve")])))
    with pytest.raises(MalformedResponseError, match="/stories/301"):
        client.get_story(301)
