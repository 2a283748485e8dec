"""A local HTTP endpoint shaped like API Gateway's HTTP API (payload format 2.0) in front of a Lambda handler.

Written by hand because no maintained library turns a real HTTP request into an HTTP API v2 event without
Docker (`sam local start-api` runs functions in containers). It keeps what the receiver relies on: header
names lower-cased (repeated headers joined with commas), the raw body bytes (base64 when not text),
``pathParameters.tracker``, ``requestContext.http``, the 10 MB body limit, 404 for an unknown route and 500
when the function itself fails, as API Gateway does.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from kantata_sandbox.http_thread import AnyMethodHandler, ServerThread

Handler = Callable[[dict[str, Any], Any], Any]

MAX_BODY_BYTES: Final = 10 * 1024 * 1024  # API Gateway's payload limit
ROUTE_KEY: Final = "POST /webhooks/{tracker}"
_ROUTE = re.compile(r"^/webhooks/(?P<tracker>[^/]+)$")
_TEXT_TYPES = (
    "text/",
    "application/json",
    "+json",
    "application/xml",
    "+xml",
    "application/x-www-form-urlencoded",
)


class LambdaContext:
    """The parts of a Lambda context object that Powertools and the handlers read."""

    def __init__(self, function_name: str, timeout_seconds: float, memory_mb: int = 256) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request through the endpoint and its answer (for printing and tests)."""

    method: str
    path: str
    tracker: str | None
    headers: dict[str, str]
    status: int
    response_body: bytes


def is_text(content_type: str | None, body: bytes) -> bool:
    """Whether API Gateway would pass ``body`` as text (else it is base64-encoded)."""
    if not body:
        return True
    ctype = (content_type or "").lower()
    if not any(marker in ctype for marker in _TEXT_TYPES):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    host: str,
    tracker: str,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """An HTTP API payload-2.0 event for one request to ``POST /webhooks/{tracker}``."""
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    now = now or dt.datetime.now(dt.UTC)
    text = is_text(joined.get("content-type"), body)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": ROUTE_KEY,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": ROUTE_KEY,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "pathParameters": {"tracker": tracker},
        "isBase64Encoded": not text,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        event["queryStringParameters"] = dict(parse_qsl(raw_query, keep_blank_values=True))
    if body:
        event["body"] = body.decode("utf-8") if text else base64.b64encode(body).decode("ascii")
    return event


def parse_result(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Turn a handler's return value into (status, headers, body) as HTTP API payload 2.0 does."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # Payload 2.0 treats anything else as a 200 JSON body.
        return 200, {"content-type": "application/json"}, json.dumps(result).encode()
    headers = {str(k).lower(): str(v) for k, v in (result.get("headers") or {}).items()}
    raw = result.get("body") or ""
    body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
    return int(result["statusCode"]), headers, body


class ApiGatewayShim:
    """Serves ``POST /webhooks/{tracker}`` on ``host:port`` (0 = a free port) in a background thread.

    ``lock`` serialises handler calls with the worker poller: Powertools' Logger and Metrics are process-wide,
    as in a Lambda sandbox that runs one invocation at a time. ``on_exchange`` sees every answered request.
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        function_name: str = "webhook-receiver",
        timeout_seconds: float = 10,
        lock: threading.Lock | None = None,
        on_exchange: Callable[[Exchange], None] | None = None,
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.function_name = function_name
        self.timeout_seconds = timeout_seconds
        self.lock = lock or threading.Lock()
        self.on_exchange = on_exchange
        self._serving = ServerThread("apigw-shim")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def webhook_url(self, tracker: str) -> str:
        return f"{self.url}/webhooks/{tracker}"

    def start(self) -> ApiGatewayShim:
        """Bind and serve. Raises OSError when the port is taken."""
        shim = self

        class RequestHandler(_RequestHandler):
            owner = shim

        server = ThreadingHTTPServer((self.host, self.port), RequestHandler)
        server.daemon_threads = True
        self.port = self._serving.start(server)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        self._serving.stop()

    def invoke(self, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Call the handler with ``event``; a crash answers 500 as API Gateway does."""
        context = LambdaContext(self.function_name, self.timeout_seconds)
        try:
            with self.lock:
                result = self.handler(event, context)
        except Exception:  # noqa: BLE001 - any function error is API Gateway's 500, never a traceback
            return 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}'
        return parse_result(result)


class _RequestHandler(AnyMethodHandler):  # quiet: the local stack prints its own lines
    owner: ApiGatewayShim
    protocol_version = "HTTP/1.1"
    server_version = "local-apigw"

    def _handle(self) -> None:
        split = urlsplit(self.path)
        match = _ROUTE.match(split.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        tracker = match.group("tracker") if match else None
        try:
            body = self._read_body()
        except _TooLargeError:
            self._answer(413, {}, b'{"message":"Request Entity Too Large"}', tracker, headers, close=True)
            return
        except (ValueError, OSError):
            self._answer(400, {}, b'{"message":"Bad Request"}', tracker, headers, close=True)
            return
        if self.command != "POST" or match is None:
            self._answer(404, {}, b'{"message":"Not Found"}', tracker, headers)
            return
        event = build_event(
            method=self.command,
            raw_path=split.path,
            raw_query=split.query,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            host=headers.get("host", self.owner.host),
            tracker=str(tracker),
        )
        status, out_headers, out_body = self.owner.invoke(event)
        self._answer(status, out_headers, out_body, tracker, headers)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _TooLargeError
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise _TooLargeError
        return self.rfile.read(length) if length > 0 else b""

    def _answer(
        self,
        status: int,
        headers: dict[str, str],
        body: bytes,
        tracker: str | None,
        request_headers: dict[str, str],
        *,
        close: bool = False,
    ) -> None:
        self.send_response(status)
        headers = {"content-type": "application/json", **headers}
        for name, value in headers.items():
            if name not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        if self.owner.on_exchange is not None:
            exchange = Exchange(self.command, self.path, tracker, request_headers, status, body)
            self.owner.on_exchange(exchange)


class _TooLargeError(Exception):
    """The request body is above API Gateway's 10 MB limit."""
