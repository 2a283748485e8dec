"""API Gateway HTTP API (payload 2.0) in, a small JSON answer out: the receiver's only route.

The receiver has one route, ``POST /webhooks/{tracker}``, so it reads the event itself instead of going
through Powertools' event handler (whose import was ~80 ms of a cold start on a slow machine; see
docs/receiver.md). This module is where every refusal becomes its HTTP status (``STATUS_BY_ERROR``), where
an unexpected error becomes a 500 with a log line (never a stack trace to the caller), and where each
invocation's log keys and metrics begin and end.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final

from kantata_bridge.receiver.errors import (
    BadEncodingError,
    ConfigurationError,
    CredentialsUnavailableError,
    EnqueueError,
    PayloadTooLargeError,
    UnknownTrackerError,
)
from kantata_bridge.receiver.service import Receiver, WebhookRequest, default_receiver
from kantata_bridge.receiver.telemetry import logger, metrics
from kantata_bridge.trackers.base import MalformedDeliveryError, SignatureError

ROUTE_PREFIX: Final = "/webhooks/"

# The one place where refusals become HTTP statuses. 4xx: the client's fault (trackers do not retry);
# 503: we could not take it now (trackers that retry will); 500: the deployment needs fixing.
STATUS_BY_ERROR: Final[Mapping[type[Exception], int]] = {
    UnknownTrackerError: 404,
    PayloadTooLargeError: 413,
    SignatureError: 401,
    BadEncodingError: 400,
    MalformedDeliveryError: 400,
    EnqueueError: 503,
    CredentialsUnavailableError: 503,
    ConfigurationError: 500,
}
_KNOWN_ERRORS: Final = tuple(STATUS_BY_ERROR)
_HEADERS: Final = {"Content-Type": "application/json"}

_cold = True


def answer(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    """The Lambda proxy response: ``status`` with ``body`` as compact JSON."""
    return {"statusCode": status, "headers": _HEADERS, "body": json.dumps(body, separators=(",", ":"))}


def route_tracker(event: Mapping[str, Any]) -> str | None:
    """The ``{tracker}`` of ``POST /webhooks/{tracker}``, or None for any other method or path.

    API Gateway routes only that path to this function, but a local tool or a direct invoke can send
    anything, so the method and the path (``rawPath``, less a named stage) are checked here too.
    """
    request_context = event.get("requestContext") or {}
    http = request_context.get("http") or {}
    if str(http.get("method") or "").upper() != "POST":
        return None
    path = event.get("rawPath") or http.get("path") or ""
    if not isinstance(path, str):
        return None
    stage = request_context.get("stage")
    if isinstance(stage, str) and stage and stage != "$default" and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    if not path.startswith(ROUTE_PREFIX):
        return None
    tracker = path[len(ROUTE_PREFIX) :]
    return tracker if tracker and "/" not in tracker else None


def after_restore() -> None:
    """Start an execution environment resumed from a Lambda SnapStart snapshot as a new one.

    The Lambda's handler module registers this with ``snapshot_restore_py`` (Lambda's runtime hook library,
    present only in Lambda's Python runtimes). Lambda snapshots a version after init and before any request, and
    the receiver builds its clients and reads its secrets on the first request, so the snapshot holds none of
    them. Every environment restored from one snapshot shares its memory, though, which this undoes:

    - the ``random`` module's generator state (botocore imports ``random`` during init for retry jitter): reseeded
      from the OS, or every restored environment would draw the same numbers;
    - the cold-start flag, so the first invocation after a restore logs ``cold_start`` true;
    - the cached receiver (its credentials, clients and connections), so a request run before the snapshot (a
      warm-up, say) could never hand a secret or a connection to every restored environment.

    Cheap (microseconds) and never raises: the runtime fails the restore if a hook does.
    """
    global _cold
    _cold = True
    default_receiver.cache_clear()
    generator = sys.modules.get("random")  # reseeded only if imported; importing it here would seed it anyway
    if generator is not None:
        generator.seed()


def handle(event: Mapping[str, Any], context: Any, receiver: Callable[[], Receiver]) -> dict[str, Any]:
    """Answer one API Gateway event. ``receiver`` gives the (cached) Receiver; it may raise
    ConfigurationError, which becomes a 500 naming nothing secret."""
    global _cold
    logger.start(context, cold_start=_cold)
    _cold = False
    request_context = event.get("requestContext") or {}
    logger.append_keys(request_id=request_context.get("requestId"))
    try:
        return _handle(event, receiver)
    finally:
        metrics.flush()


def _handle(event: Mapping[str, Any], receiver: Callable[[], Receiver]) -> dict[str, Any]:
    tracker = route_tracker(event)
    if tracker is None:
        metrics.add_metric(name="RejectedNotFound", unit="Count", value=1)
        return answer(404, {"status": "rejected", "reason": "not_found"})
    try:
        request = WebhookRequest(
            tracker=tracker.lower(),
            # API Gateway lower-cases header names; a direct invoke or another proxy may not.
            headers={str(name).lower(): value for name, value in (event.get("headers") or {}).items()},
            body=event.get("body"),
            is_base64_encoded=bool(event.get("isBase64Encoded")),
        )
        reply = receiver().receive(request)
        return answer(reply.status_code, reply.body)
    except _KNOWN_ERRORS as exc:
        status = next(code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls))
        if isinstance(exc, ConfigurationError):  # raised before the receiver could count it
            metrics.add_metric(name=exc.metric, unit="Count", value=1)
            logger.error("receiver misconfigured", extra={"detail": str(exc)})
        return answer(
            status, {"status": "rejected" if status < 500 else "error", "reason": getattr(exc, "reason", "")}
        )
    except Exception:  # noqa: BLE001 - a bug must reach the log, never the caller as a stack trace
        metrics.add_metric(name="Failed", unit="Count", value=1)
        logger.exception("unexpected error while receiving a delivery")
        return answer(500, {"status": "error", "reason": "internal"})
