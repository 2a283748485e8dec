"""The Kantata sandbox HTTP server: a local, in-memory Kantata OX API on 127.0.0.1, with fault injection.

Built on the standard library's ``ThreadingHTTPServer`` on purpose: it starts in milliseconds and adds no
dependency; the API behaviour lives in ``state.py``, the faults in ``faults.py``.

    with KantataSandbox() as sandbox:
        ws = sandbox.add_workspace("Alpha")
        requests.post(f"{sandbox.base_url}/status_reports.json", json={...},
                      headers={"Authorization": f"Bearer {sandbox.token}"})

Control routes under ``/_sandbox/`` need no token and are neither faulted nor recorded (docs/kantata-sandbox.md).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from kantata_sandbox.faults import DROP, DROP_AFTER, FaultPlan, FaultPlanError
from kantata_sandbox.http_thread import AnyMethodHandler, ServerThread
from kantata_sandbox.state import ApiError, SandboxState, bad_request, not_found

API_PREFIX: Final = "/api/v1"
CONTROL_PREFIX: Final = "/_sandbox"
DEFAULT_TOKEN: Final = "sandbox-token"  # noqa: S105 (the agreed, public test token)
MAX_RECORDED: Final = 10_000
MAX_BODY_BYTES: Final = 5 * 1024 * 1024
UNAUTHORIZED: Final = {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}
FAULT_MESSAGES: Final = {429: "Too Many Requests", 503: "Service Unavailable"}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One API request the sandbox served: what came in and the status (0 when the connection was dropped
    before an answer). ``headers`` never hold ``Authorization``; ``response`` is the JSON answered (None for
    204 and drops); ``fault`` says which fault source answered, if any."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int
    response: Any = None
    fault: str | None = None
    at: float = field(default=0.0, compare=False)  # time.monotonic() when the request arrived

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _wrapped(key: str, body: Any) -> Any:
    """The fields under the singular wrapper key; 400 when the body is not an object holding it."""
    if not isinstance(body, Mapping) or not isinstance(body.get(key), Mapping):
        raise bad_request(f"the request body must be a JSON object with a {key!r} object")
    return body[key]


def _plural_array(key: str, body: Any) -> Any:
    """The bulk update's body is the plural key holding an array, not a singular wrapper object."""
    if not isinstance(body, Mapping) or key not in body:
        raise bad_request(f"the request body must be a JSON object with a {key!r} array")
    return body[key]


@dataclass(frozen=True, slots=True)
class Route:
    """``method`` + ``pattern`` (after /api/v1, without .json; ids are digits, so /status_reports/abc is a 404)
    call ``SandboxState.<action>(*ids[, fields][, query])``. ``body_key``: the write body's wrapper key, whose
    fields are passed; ``plural`` when it wraps an array (bulk update, which takes no query). A DELETE answers
    204 with no body, everything else 200 with the envelope."""

    method: str
    pattern: re.Pattern[str]
    action: str
    body_key: str | None = None
    plural: bool = False

    def call(
        self, state: SandboxState, ids: Sequence[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        action = getattr(state, self.action)
        if self.method == "DELETE":
            action(*ids)
            return 204, None
        if self.plural:
            return 200, action(_plural_array(str(self.body_key), body))
        fields = [] if self.body_key is None else [_wrapped(self.body_key, body)]
        return 200, action(*ids, *fields, query)


def _crud(
    path: str, name: str, body_key: str | None, *, only: str = "list show create update delete"
) -> list[Route]:
    """The routes of one resource: ``GET /things`` → list_things, ``GET /things/ID`` → show_<name>, and so on."""
    one = path + r"/(\d+)"
    table = {
        "list": Route("GET", re.compile(path), "list_" + path.strip("/")),
        "show": Route("GET", re.compile(one), f"show_{name}"),
        "create": Route("POST", re.compile(path), f"create_{name}", body_key),
        "update": Route("PUT", re.compile(one), f"update_{name}", body_key),
        "delete": Route("DELETE", re.compile(one), f"delete_{name}"),
    }
    return [table[kind] for kind in only.split()]


ROUTES: Final[list[Route]] = [
    *_crud("/status_reports", "status_report", "status_report"),
    *_crud("/task_status_sets", "task_status_set", "task_status_set"),
    Route("PUT", re.compile(r"/task_status_sets/(\d+)/update_account_default"), "make_account_default"),
    *_crud("/custom_task_statuses", "custom_task_status", "custom_task_status"),
    # No show route, no plain POST and no PUT for external references (CONTRACT §6.5).
    *_crud("/external_references", "external_reference", None, only="list delete"),
    Route(
        "POST",
        re.compile(r"/external_references/create_or_update"),
        "create_or_update_external_reference",
        "external_reference",
    ),
    *_crud("/workspaces", "workspace", None, only="list show"),
    # Bulk create (``{"stories": [...]}``) is not modelled: without a "story" object the POST is a 400.
    *_crud("/stories", "story", "story"),
    Route(
        "PUT",
        re.compile(r"/workspace_task_status_sets/bulk_update"),
        "bulk_update_workspace_task_status_sets",
        "workspace_task_status_sets",
        plural=True,
    ),
]
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


def _api_route(path: str) -> str:
    return path[len(API_PREFIX) :].removesuffix(".json").rstrip("/") or "/"


class _RequestHandler(AnyMethodHandler):  # quiet: the sandbox's request log says all
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as requests.Session expects
    timeout = 30  # idle keep-alive connections end by themselves
    # TCP_NODELAY: an answer is written as headers, then body. With Nagle on, the body waits for the ACK of
    # the headers, which a keep-alive client delays (~40 ms on Linux), so every request took ~45 ms.
    disable_nagle_algorithm = True

    # ---- plumbing ---------------------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise bad_request("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        started = time.monotonic()
        split = urlsplit(self.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        try:
            raw = self._read_body()
        except (ValueError, ApiError):
            self._send(400, bad_request("unreadable request body").body)
            self.close_connection = True
            return
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._control(path, query, raw)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        decision = sandbox.faults.decide(self.command, path)
        if decision.latency:
            time.sleep(decision.latency)

        def record(status: int, response: Any, fault: str | None = None) -> None:
            sandbox._record(
                RecordedRequest(self.command, path, query, headers, body, status, response, fault, started)
            )

        if decision.action == DROP:
            record(0, None, decision.source)
            self._drop()
            return
        if decision.action == "status" and decision.status is not None:
            status = decision.status
            error = {
                "errors": [
                    {"type": "system", "message": FAULT_MESSAGES.get(status, HTTPStatus(status).phrase)}
                ]
            }
            extra = {"Retry-After": decision.retry_after} if decision.retry_after else None
            record(status, error, decision.source)
            self._send(status, error, extra)
            return
        status, response = self._api(path, query, raw)
        if decision.action == DROP_AFTER:
            record(0, None, decision.source)
            self._drop()
            return
        record(status, response, decision.source)
        self._send(status, response)

    def _api(self, path: str, query: dict[str, str], raw: bytes) -> tuple[int, Any]:
        sandbox = self.server.sandbox
        if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            return 404, not_found().body
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != sandbox.token:
            return 401, UNAUTHORIZED
        route = _api_route(path)
        for entry in ROUTES:
            match = entry.pattern.fullmatch(route)
            if match is None or entry.method != self.command:
                continue
            try:
                body: Any = None
                if entry.method in BODY_METHODS and raw.strip():
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        # Kantata also takes Rails-style form bodies; the sandbox takes JSON only.
                        raise bad_request("the request body is not valid JSON") from None
                return entry.call(sandbox.state, match.groups(), query, body)
            except ApiError as exc:
                return exc.status, exc.body
            except Exception:  # noqa: BLE001 (a sandbox bug must still answer, as Kantata's 500 would)
                traceback.print_exc(file=sys.stderr)
                return 500, {
                    "errors": [{"type": "system", "message": "sandbox internal error (see its stderr)"}]
                }
        return 404, not_found().body

    # ---- control routes -----------------------------------------------------------------------------------

    def _control(self, path: str, query: dict[str, str], raw: bytes) -> None:
        sandbox = self.server.sandbox
        route = path[len(CONTROL_PREFIX) :].rstrip("/")
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            self._send(400, {"error": "the control body must be JSON"})
            return
        method = self.command
        try:
            if (method, route) == ("GET", "/health"):
                self._send(200, {"ok": True, "base_url": sandbox.base_url})
            elif (method, route) == ("POST", "/reset"):
                sandbox.reset()
                self._send(200, {"reset": True})
            elif (method, route) == ("GET", "/faults"):
                self._send(200, sandbox.faults.describe())
            elif (method, route) == ("POST", "/faults"):
                if not isinstance(body, Mapping):
                    raise FaultPlanError("the fault settings must be a JSON object")
                sandbox.faults.configure(body)
                self._send(200, sandbox.faults.describe())
            elif (method, route) == ("DELETE", "/faults"):
                sandbox.faults.clear()
                self._send(200, sandbox.faults.describe())
            elif (method, route) == ("GET", "/requests"):
                self._send(200, {"requests": [r.to_json() for r in sandbox.requests]})
            elif (method, route) == ("DELETE", "/requests"):
                sandbox.clear_requests()
                self._send(200, {"requests": []})
            elif (method, route) == ("GET", "/state"):
                self._send(200, sandbox.state.snapshot())
            elif (method, route) == ("POST", "/workspaces"):
                if not isinstance(body, Mapping):
                    raise ValueError("the workspace must be a JSON object")
                workspace_id = sandbox.add_workspace(
                    str(body.get("title") or ""),
                    workspace_id=None if body.get("id") is None else str(body["id"]),
                    archived=bool(body.get("archived", False)),
                )
                self._send(200, {"id": workspace_id})
            else:
                self._send(404, {"error": f"no control route {method} {path}"})
        except ValueError as exc:  # FaultPlanError is a ValueError
            self._send(400, {"error": str(exc)})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: KantataSandbox) -> None:
        super().__init__(address, _RequestHandler)
        self.sandbox = sandbox

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-request (including our own dropped connections) are normal here.
        return


class KantataSandbox:
    """A local Kantata OX on ``127.0.0.1``. ``start()`` binds (``port=0``: a free port) and serves on a
    background thread; ``stop()`` shuts it down. Usable as a context manager."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        faults: FaultPlan | None = None,
        max_recorded: int = MAX_RECORDED,
    ) -> None:
        self.host = host
        self.port = port
        self.token = token
        self.faults = faults if faults is not None else FaultPlan()
        self.state = SandboxState()
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._requests_lock = threading.Lock()
        self._serving = ServerThread("kantata-sandbox", poll_interval=0.05)

    def __repr__(self) -> str:  # never shows the token
        return f"KantataSandbox(url={self.url!r})"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (the control routes live under ``url + "/_sandbox"``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base, as for ``KANTATA_BASE_URL``: ``http://127.0.0.1:PORT/api/v1``."""
        return self.url + API_PREFIX

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start(self) -> KantataSandbox:
        """Bind and serve in a daemon thread. Raises OSError if the port is taken."""
        if not self._serving.running:
            self.port = self._serving.start(_Server((self.host, self.port), self))
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        self._serving.stop()

    def __enter__(self) -> KantataSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Fresh state (no objects), no faults, empty request log."""
        self.state.reset()
        self.faults.clear()
        self.clear_requests()

    def add_workspace(self, title: str, *, workspace_id: str | None = None, archived: bool = False) -> str:
        """Seed a workspace and return its id. Raises ValueError on an empty title or a bad/taken id."""
        return self.state.add_workspace(title, workspace_id=workspace_id, archived=archived)

    @property
    def requests(self) -> list[RecordedRequest]:
        """The API requests served so far, oldest first; only the last ``max_recorded`` (10 000) are kept."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    def _record(self, entry: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(entry)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


EXAMPLES: Final = """\
examples:
  kantata-sandbox --port 8900 --workspace "Acme Webapp"     # serve, with one workspace seeded
  kantata-sandbox --port 0 --fault-rate 0.2 --seed 1        # a free port; 20% of requests get 429/503
  kantata-sandbox --script 503,503,none,drop                # the next four requests: 503, 503, ok, dropped
  curl -H 'Authorization: Bearer sandbox-token' http://127.0.0.1:8900/api/v1/workspaces.json

exit codes: 0 stopped with Ctrl-C, 2 bad input or usage (including a port in use)
"""
TOOL: Final = "kantata-sandbox"


def build_parser() -> argparse.ArgumentParser:
    from kantata_bridge_cli import console

    parser = console.ArgumentParser(
        prog=TOOL,
        description="A local, in-memory Kantata OX API on 127.0.0.1 with fault injection.",
        epilog=EXAMPLES,
    )
    console.add_version(parser)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=console.port_number, default=8900, help="port (default 8900; 0 picks a free one)"
    )
    parser.add_argument(
        "--token", default=DEFAULT_TOKEN, help="bearer token to accept (default sandbox-token)"
    )
    parser.add_argument(
        "--workspace", action="append", default=[], metavar="TITLE", help="seed a workspace (repeatable)"
    )
    parser.add_argument("--fault-rate", type=float, default=0.0, help="fraction of requests answered 429/503")
    parser.add_argument(
        "--fault-statuses",
        default="429,503",
        help="comma list of statuses for --fault-rate (default 429,503)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for the random faults")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every API answer")
    parser.add_argument(
        "--drop-rate", type=float, default=0.0, help="fraction of connections closed unanswered"
    )
    parser.add_argument("--retry-after", type=float, default=None, help="send Retry-After on injected 429s")
    parser.add_argument(
        "--script",
        default=None,
        help="scripted answers consumed one per request: HTTP statuses, none (a normal answer), drop "
        "(no answer) or drop_after (processed, then no answer), e.g. 503,503,none,drop",
    )
    return parser


def _fault_plan(args: argparse.Namespace) -> FaultPlan:
    """The fault plan of the command line. Raises FaultPlanError naming the bad option."""
    from kantata_sandbox.faults import parse_script

    statuses = []
    for text in args.fault_statuses.split(","):
        if text.strip():
            if not text.strip().isdigit():
                raise FaultPlanError(f"--fault-statuses: {text.strip()!r} is not an HTTP status")
            statuses.append(int(text))
    faults = FaultPlan(
        rate=args.fault_rate,
        statuses=tuple(statuses),
        seed=args.seed,
        latency=args.latency_ms / 1000,
        drop_rate=args.drop_rate,
        retry_after=args.retry_after,
    )
    if args.retry_after is not None:
        faults.set_retry_after(args.retry_after)
    if args.script:
        faults.script(parse_script(args.script))
    return faults


def main(argv: Sequence[str] | None = None) -> int:
    """Console script ``kantata-sandbox``: serve until Ctrl-C. Returns the exit code (0 stopped, 2 bad input
    or usage, including a port in use, as ``kantata-bridge serve``)."""
    from kantata_bridge_cli import console

    return console.run_main(TOOL, lambda: _serve(argv))


def _serve(argv: Sequence[str] | None) -> int:
    from kantata_bridge_cli import console

    args = build_parser().parse_args(argv)
    try:
        faults = _fault_plan(args)
    except FaultPlanError as exc:
        raise console.CliError(str(exc), hint=f"Try '{TOOL} --help'.") from None
    sandbox = KantataSandbox(host=args.host, port=args.port, token=args.token, faults=faults)
    try:
        sandbox.start()
    except OSError as exc:
        raise console.CliError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}",
            hint="Stop what uses that port or pick another --port (0 picks a free one).",
        ) from None
    try:
        try:
            # Ctrl-C and `kill` both stop it cleanly, even when started from a shell that ignores SIGINT in
            # background jobs, and even when they arrive before the banner is out (hence the outer try).
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, _interrupt)
        except ValueError:  # not the main thread (e.g. called from a test thread): rely on the caller
            pass
        try:
            for title in args.workspace:
                try:
                    workspace_id = sandbox.add_workspace(title)
                except ValueError as exc:
                    raise console.CliError(f"--workspace {title!r}: {exc}") from None
                print(f"workspace {workspace_id}: {title}")
            # The token is echoed only when it is the well-known default, never a token the user chose.
            shown = args.token if args.token == DEFAULT_TOKEN else "as given by --token"
            print(f"Kantata sandbox on {sandbox.base_url} (token: {shown}); control: {sandbox.url}/_sandbox/")
            print("Press Ctrl-C to stop.", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopping", flush=True)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
