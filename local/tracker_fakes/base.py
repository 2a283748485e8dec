"""What the fake GitHub and Jira APIs share with each other and with the Kantata sandbox: a standard-library
HTTP server on 127.0.0.1 (port 0 by default), fault injection (``kantata_sandbox.faults.FaultPlan``: a rate or a
script of statuses, latency, dropped connections), a request log and control routes under ``/_fake/``.

A subclass implements ``api(request) -> Answer``; everything else (faults, logging, control) happens here.
Control routes need no credentials and are neither faulted nor recorded:

- ``GET /_fake/health``, ``POST /_fake/reset``, ``GET|DELETE /_fake/requests``,
- ``GET|POST|DELETE /_fake/faults`` (the same settings as the sandbox's ``/_sandbox/faults``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from kantata_sandbox.faults import DROP, DROP_AFTER, FaultPlan, FaultPlanError
from kantata_sandbox.http_thread import AnyMethodHandler, ServerThread
from kantata_sandbox.server import RecordedRequest

CONTROL_PREFIX: Final = "/_fake"
MAX_BODY_BYTES: Final = 5 * 1024 * 1024
MAX_RECORDED: Final = 10_000


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One API request as the fake's ``api`` method sees it (header names lower-cased)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    raw: bytes

    def json(self) -> Any:
        """The body as JSON (None when empty). Raises ValueError when it is not JSON."""
        return json.loads(self.raw) if self.raw.strip() else None


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class _Handler(AnyMethodHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    timeout = 30
    disable_nagle_algorithm = True  # see kantata_sandbox.server: keep-alive answers without the 40 ms stall

    def _answer(self, answer: Answer) -> None:
        self._send(answer.status, answer.body, answer.headers)

    def _handle(self) -> None:
        fake = self.server.fake
        started = time.monotonic()
        split = urlsplit(self.path)
        path, query = split.path, dict(parse_qsl(split.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(413, {"message": "request body too large"})
            self.close_connection = True
            return
        raw = self.rfile.read(length) if length > 0 else b""
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._answer(fake.control(self.command, path[len(CONTROL_PREFIX) :].rstrip("/"), raw))
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        logged_headers = {k: v for k, v in headers.items() if k != "authorization"}
        try:
            body: Any = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        decision = fake.faults.decide(self.command, path)
        if decision.latency:
            time.sleep(decision.latency)

        def record(status: int, response: Any, fault: str | None = None) -> None:
            fake.record(
                RecordedRequest(
                    self.command, path, query, logged_headers, body, status, response, fault, started
                )
            )

        if decision.action == DROP:
            record(0, None, decision.source)
            self._drop()
            return
        if decision.action == "status" and decision.status is not None:
            status = decision.status
            answer = fake.fault_answer(status, decision.retry_after)
            record(status, answer.body, decision.source)
            self._answer(answer)
            return
        try:
            answer = fake.api(ApiRequest(self.command, path, query, headers, raw))
        except Exception:  # noqa: BLE001 - a fake's bug must still answer, as the real service's 500 would
            traceback.print_exc(file=sys.stderr)
            answer = Answer(500, {"message": "fake internal error (see its stderr)"})
        if decision.action == DROP_AFTER:
            record(0, None, decision.source)
            self._drop()
            return
        record(answer.status, answer.body, decision.source)
        self._answer(answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeServer) -> None:
        super().__init__(address, _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients hanging up mid-request (including our own dropped connections) are normal here


class FakeServer:
    """Base of the tracker fakes: lifecycle, faults, request log, control routes."""

    name = "tracker-fake"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        max_recorded: int = MAX_RECORDED,
    ) -> None:
        self.host = host
        self.port = port
        self.faults = faults if faults is not None else FaultPlan()
        self.lock = threading.RLock()
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._requests_lock = threading.Lock()
        self._serving = ServerThread(self.name, poll_interval=0.05)

    def __repr__(self) -> str:  # never shows credentials
        return f"{type(self).__name__}(url={self.url!r})"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeServer:
        """Bind and serve in a daemon thread. Raises OSError if the port is taken."""
        if not self._serving.running:
            self.port = self._serving.start(_Server((self.host, self.port), self))
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        self._serving.stop()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ request log

    @property
    def requests(self) -> list[RecordedRequest]:
        """The API requests served so far, oldest first (``Authorization`` never recorded)."""
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    def record(self, entry: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(entry)

    # ------------------------------------------------------------------ for subclasses

    def reset(self) -> None:
        """Fresh state, no faults, empty request log (subclasses add their own state)."""
        self.faults.clear()
        self.clear_requests()

    def api(self, request: ApiRequest) -> Answer:  # pragma: no cover - every fake defines it
        raise NotImplementedError

    def fault_answer(self, status: int, retry_after: str | None) -> Answer:
        """The answer to an injected fault status (subclasses shape the body as their service does)."""
        headers = {"Retry-After": retry_after} if retry_after else {}
        return Answer(status, {"message": HTTPStatus(status).phrase}, headers)

    def describe(self) -> dict[str, Any]:
        return {"ok": True, "url": self.url}

    def control(self, method: str, route: str, raw: bytes) -> Answer:
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return Answer(400, {"error": "the control body must be JSON"})
        try:
            if (method, route) == ("GET", "/health"):
                return Answer(200, self.describe())
            if (method, route) == ("POST", "/reset"):
                self.reset()
                return Answer(200, {"reset": True})
            if (method, route) == ("GET", "/faults"):
                return Answer(200, self.faults.describe())
            if (method, route) == ("POST", "/faults"):
                if not isinstance(body, Mapping):
                    raise FaultPlanError("the fault settings must be a JSON object")
                self.faults.configure(body)
                return Answer(200, self.faults.describe())
            if (method, route) == ("DELETE", "/faults"):
                self.faults.clear()
                return Answer(200, self.faults.describe())
            if (method, route) == ("GET", "/requests"):
                return Answer(200, {"requests": [r.to_json() for r in self.requests]})
            if (method, route) == ("DELETE", "/requests"):
                self.clear_requests()
                return Answer(200, {"requests": []})
        except ValueError as exc:
            return Answer(400, {"error": str(exc)})
        return Answer(404, {"error": f"no control route {method} {CONTROL_PREFIX}{route}"})
