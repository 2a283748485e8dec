"""Webhook receiver Lambda: API Gateway HTTP API (payload 2.0), route ``POST /webhooks/{tracker}``.

Verifies a tracker's signed delivery and queues it on SQS within milliseconds; the logic lives in
``kantata_bridge.receiver``. Every answer is a small JSON document, never a stack trace.
"""

from __future__ import annotations

import gc

# Importing boto3, Powertools and this package only builds objects that live as long as the process, so a
# collection during init finds no garbage: it only walks the ever-growing heap (measured: ~100 collections,
# ~13 ms of a ~330 ms cold start). Collect nothing until the imports are done and frozen (below).
_GC_WAS_ENABLED = gc.isenabled()
gc.disable()

from typing import TYPE_CHECKING, Any  # noqa: E402 - after gc.disable() on purpose

# Every delivery past the path check needs boto3 (Secrets Manager, SQS), so import it during init, before
# gc.freeze() below. Clients are still built on the first request.
import boto3  # noqa: E402, F401
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response  # noqa: E402
from kantata_bridge.observability import logger, metrics  # noqa: E402
from kantata_bridge.receiver.errors import (  # noqa: E402
    BadEncodingError,
    ConfigurationError,
    CredentialsUnavailableError,
    EnqueueError,
    PayloadTooLargeError,
    UnknownTrackerError,
)
from kantata_bridge.receiver.service import WebhookRequest, default_receiver  # noqa: E402
from kantata_bridge.trackers.base import MalformedDeliveryError, SignatureError  # noqa: E402

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# debug=False and log_event=False explicitly: POWERTOOLS_DEV / POWERTOOLS_LOGGER_LOG_EVENT would otherwise print
# every event (raw body and signature headers) to the logs, and the resolver's debug mode answers stack traces.
app = APIGatewayHttpResolver(debug=False)

# What was imported lives as long as the process. Freezing it spares the garbage collector from scanning
# those objects again in every full collection while boto3 loads its service models on the first request
# (measured: ~20 ms of a ~340 ms cold start; see docs/receiver.md). Then collect as before.
gc.freeze()
if _GC_WAS_ENABLED:
    gc.enable()

# The one place where refusals become HTTP statuses. 4xx: the client's fault (trackers do not retry);
# 503: we could not take it now (trackers that retry will); 500: the deployment needs fixing.
STATUS_BY_ERROR: dict[type[Exception], int] = {
    UnknownTrackerError: 404,
    PayloadTooLargeError: 413,
    SignatureError: 401,
    BadEncodingError: 400,
    MalformedDeliveryError: 400,
    EnqueueError: 503,
    CredentialsUnavailableError: 503,
    ConfigurationError: 500,
}


def _json(status: int, body: dict[str, Any]) -> Response[Any]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.post("/webhooks/<tracker>")
def receive_webhook(tracker: str) -> Response[Any]:
    event = app.current_event
    logger.append_keys(request_id=event.request_context.request_id)
    request = WebhookRequest(
        tracker=tracker.lower(),
        headers=event.headers or {},
        body=event.body,
        is_base64_encoded=bool(event.is_base64_encoded),
    )
    reply = default_receiver().receive(request)
    return _json(reply.status_code, dict(reply.body))


@app.exception_handler(list(STATUS_BY_ERROR))
def refuse(exc: Exception) -> Response[Any]:
    status = next(code for cls, code in STATUS_BY_ERROR.items() if isinstance(exc, cls))
    if isinstance(exc, ConfigurationError):  # raised before the receiver could count it
        metrics.add_metric(name=exc.metric, unit="Count", value=1)
        logger.error("receiver misconfigured", extra={"detail": str(exc)})
    return _json(
        status, {"status": "rejected" if status < 500 else "error", "reason": getattr(exc, "reason", "")}
    )


@app.not_found
def not_found(exc: Exception) -> Response[Any]:
    metrics.add_metric(name="RejectedNotFound", unit="Count", value=1)
    return _json(404, {"status": "rejected", "reason": "not_found"})


@app.exception_handler(Exception)
def fail(exc: Exception) -> Response[Any]:
    metrics.add_metric(name="Failed", unit="Count", value=1)
    logger.exception("unexpected error while receiving a delivery")
    return _json(500, {"status": "error", "reason": "internal"})


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True, log_event=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
