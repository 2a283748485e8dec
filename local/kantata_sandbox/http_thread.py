"""A standard-library HTTP server run on a background thread, shared by the Kantata sandbox and the local
stack's API Gateway-shaped endpoint (``kantata_bridge_dev.apigw``).

Both are ``ThreadingHTTPServer``s on 127.0.0.1 that start in milliseconds and must stop cleanly (socket
closed, thread joined) so a test or ``kantata-bridge demo`` leaves nothing behind.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class AnyMethodHandler(BaseHTTPRequestHandler):
    """Sends GET, POST, PUT, DELETE and PATCH to ``_handle`` and logs nothing (the owner keeps its own log)."""

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any, extra_headers: Mapping[str, str] | None = None) -> None:
        """Answer with ``body`` as JSON (no body for 204 or None), with an exact Content-Length."""
        payload = b"" if status == 204 or body is None else json.dumps(body).encode()
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    def _drop(self) -> None:
        """Close the socket without an answer (the client sees a reset / remote disconnect)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _handle(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()


class ServerThread:
    """Runs one server's ``serve_forever`` on a daemon thread named ``name``."""

    def __init__(self, name: str, *, poll_interval: float = 0.1) -> None:
        self.name = name
        self.poll_interval = poll_interval
        self.server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self.server is not None

    def start(self, server: ThreadingHTTPServer) -> int:
        """Serve ``server`` (already bound) in the background; returns the port it is bound to."""
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": self.poll_interval},
            name=self.name,
            daemon=True,
        )
        self._thread.start()
        return int(server.server_address[1])

    def stop(self) -> None:
        """Stop serving, close the socket and wait for the thread; safe to call twice."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
