"""The receiver's request flow: tracker → size → authentication → parse → ignore → enqueue.

Each step refuses with a typed error (mapped to an HTTP status by ``receiver/http.py``) before the next
one runs, so a delivery that fails authentication is never parsed and never queued. The tracker's raw
body bytes travel untouched: the signature covers them and the worker re-reads them.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final, NamedTuple

from kantata_bridge.envelope import DeliveryEnvelope
from kantata_bridge.receiver.clients import AwsClients
from kantata_bridge.receiver.credentials import CredentialSource, SecretsManagerCredentials, StaticCredentials
from kantata_bridge.receiver.errors import (
    BadEncodingError,
    CredentialsUnavailableError,
    EnqueueError,
    PayloadTooLargeError,
    ReceiverError,
    UnknownTrackerError,
)
from kantata_bridge.receiver.queue import DeliveryQueue, PayloadStore, S3PayloadStore, SqsDeliveryQueue
from kantata_bridge.receiver.settings import AuthMode, ReceiverSettings, TrackerSettings, load_settings
from kantata_bridge.receiver.telemetry import logger, metrics
from kantata_bridge.trackers.base import (
    MalformedDeliveryError,
    SignatureError,
    TrackerAdapter,
    header_text,
    verify_shared_token,
)
from kantata_bridge.trackers.registry import ADAPTERS

_COUNT: Final = "Count"


# NamedTuples, not dataclasses: cheaper to define on the cold-start path (see trackers/base.py).
class WebhookRequest(NamedTuple):
    """One HTTP delivery as API Gateway hands it over: header names lower-cased, body as text."""

    tracker: str
    headers: Mapping[str, str]
    body: str | None
    is_base64_encoded: bool = False


class Reply(NamedTuple):
    """What to answer when the delivery was taken (queued, ignored or a ping)."""

    status_code: int
    body: Mapping[str, str]


def utc_now() -> str:
    """Now as ISO 8601 UTC with milliseconds, e.g. ``2026-11-24T23:39:03.123Z``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Receiver:
    """Verifies a tracker delivery and queues it. All I/O is passed in (queue, payload store, credentials)."""

    def __init__(
        self,
        settings: ReceiverSettings,
        adapters: Mapping[str, TrackerAdapter],
        credentials: CredentialSource,
        queue: DeliveryQueue,
        payload_store: PayloadStore | None = None,
        clock: Callable[[], str] = utc_now,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._adapters = adapters
        self._credentials = credentials
        self._queue = queue
        self._payload_store = payload_store
        self._clock = clock
        self._now = now

    def receive(self, request: WebhookRequest) -> Reply:
        """Take one delivery: queue it (202), or answer a ping (200) or an ignored event type (200).

        Raises UnknownTrackerError, PayloadTooLargeError, BadEncodingError, SignatureError,
        MalformedDeliveryError (the client's fault: nothing queued), CredentialsUnavailableError or
        EnqueueError (ours or AWS's: the tracker should retry). Each refusal is logged and counted.
        """
        known = request.tracker in self._settings.trackers
        metrics.add_dimension(name="tracker", value=request.tracker if known else "unknown")
        metrics.add_metric(name="Received", unit=_COUNT, value=1)
        try:
            return self._receive(request)
        except (ReceiverError, SignatureError, MalformedDeliveryError) as exc:
            _count_refusal(exc)
            raise

    def _receive(self, request: WebhookRequest) -> Reply:
        tracker = request.tracker
        adapter = self._adapters.get(tracker)
        tracker_settings = self._settings.trackers.get(tracker)
        if adapter is None or tracker_settings is None:
            raise UnknownTrackerError(
                "unknown_tracker", "this bridge does not receive deliveries for that tracker"
            )
        body = self._raw_body(request)
        self._authenticate(adapter, tracker_settings, request.headers, body)
        identity = adapter.identify(request.headers, body)
        logger.set_correlation_id(identity.delivery_id)
        if identity.event_type in adapter.ping_events:
            metrics.add_metric(name="Ping", unit=_COUNT, value=1)
            logger.info("ping answered", extra={"tracker": tracker, "event_type": identity.event_type})
            return Reply(200, {"status": "ok", "event_type": identity.event_type})
        handled = tracker_settings.events
        if handled is not None and identity.event_type not in handled:
            metrics.add_metric(name="Ignored", unit=_COUNT, value=1)
            logger.info("event type ignored", extra={"tracker": tracker, "event_type": identity.event_type})
            return Reply(200, {"status": "ignored", "event_type": identity.event_type})
        headers = request.headers
        envelope = DeliveryEnvelope(
            tracker=tracker,
            event_type=identity.event_type,
            delivery_id=identity.delivery_id,
            hook_id=identity.hook_id,
            received_at=self._clock(),
            content_type=header_text(headers, "content-type"),
            headers=kept_headers(headers, adapter.kept_headers),
        )
        claim_checked = len(body) > self._settings.inline_body_limit
        envelope = self._claim_check(envelope, body) if claim_checked else envelope.with_body(body)
        self._queue.send(envelope)
        metrics.add_metric(name="Queued", unit=_COUNT, value=1)
        if claim_checked:
            metrics.add_metric(name="ClaimChecked", unit=_COUNT, value=1)
        logger.info(
            "delivery queued",
            extra={
                "tracker": tracker,
                "event_type": identity.event_type,
                "hook_id": identity.hook_id,
                "delivery_id_source": identity.delivery_id_source,
                "body_bytes": len(body),
                "claim_check": claim_checked,
            },
        )
        return Reply(202, {"status": "queued", "delivery_id": identity.delivery_id})

    def _raw_body(self, request: WebhookRequest) -> bytes:
        """The exact bytes the tracker sent, refusing oversize bodies before decoding all of them."""
        limit = self._settings.max_body_bytes
        text = request.body or ""
        if not isinstance(text, str):  # API Gateway always sends text; anything else is a forged event
            raise BadEncodingError("bad_text", "body is not text")
        if request.is_base64_encoded:
            if (len(text) // 4) * 3 - 2 > limit:
                raise _too_large(limit)
            try:
                body = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise BadEncodingError(
                    "bad_base64", "body is marked base64-encoded but is not valid base64"
                ) from None
        else:
            if len(text) > limit:
                raise _too_large(limit)
            try:
                # API Gateway passes text bodies as the UTF-8 the client sent; encoding restores the bytes.
                body = text.encode("utf-8")
            except UnicodeEncodeError:
                raise BadEncodingError("bad_text", "body text cannot be encoded as UTF-8") from None
        if len(body) > limit:
            raise _too_large(limit)
        return body

    def _authenticate(
        self,
        adapter: TrackerAdapter,
        tracker_settings: TrackerSettings,
        headers: Mapping[str, str],
        body: bytes,
    ) -> None:
        mode = tracker_settings.auth_mode
        if mode is AuthMode.SIGNATURE:
            tolerance = tracker_settings.signature_tolerance
            adapter.verify_signature(
                headers,
                body,
                self._credentials.secrets_for(adapter.name),
                now=self._now() if tolerance else None,
                tolerance=tolerance,
            )
        elif mode is AuthMode.SHARED_TOKEN:
            header = tracker_settings.token_header
            verify_shared_token(headers.get(header), self._credentials.tokens_for(adapter.name), header)
        else:
            logger.warning(
                "unsigned delivery accepted (auth mode 'unsigned')", extra={"tracker": adapter.name}
            )

    def _claim_check(self, envelope: DeliveryEnvelope, body: bytes) -> DeliveryEnvelope:
        if self._payload_store is None:
            # Without a bucket there is nowhere to put a body too large for a message.
            logger.error("body above the inline limit and PAYLOAD_BUCKET is not set")
            raise PayloadTooLargeError(
                "too_large",
                f"body is larger than {self._settings.inline_body_limit} bytes (claim check not configured)",
            )
        return dataclasses.replace(envelope, body_pointer=self._payload_store.put(envelope, body))


def kept_headers(headers: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """The headers named in ``names`` that are worth keeping (see ``header_text``), by lower-case name.

    Bounding them keeps the envelope of a body at the inline limit within one SQS message.
    """
    kept = {name: header_text(headers, name) for name in names}
    return {name: value for name, value in kept.items() if value is not None}


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError("too_large", f"body is larger than {limit} bytes")


def _count_refusal(exc: Exception) -> None:
    if isinstance(exc, SignatureError):
        metric = "RejectedSignature"
    elif isinstance(exc, MalformedDeliveryError):
        metric = "RejectedMalformed"
    elif isinstance(exc, ReceiverError):
        metric = exc.metric
    else:  # pragma: no cover - receive() only passes the classes above
        metric = "Rejected"
    metrics.add_metric(name=metric, unit=_COUNT, value=1)
    details = {"reason": getattr(exc, "reason", "unknown"), "error": type(exc).__name__, "detail": str(exc)}
    # The messages are written to be safe to log: they never carry a secret, token, signature or body.
    if isinstance(exc, EnqueueError | CredentialsUnavailableError):
        # Our side (or AWS's): worth an error line with the AWS error that caused it.
        if exc.__cause__ is not None:
            details["cause"] = str(exc.__cause__)
        logger.error("delivery could not be taken", extra=details)
    else:
        logger.warning("delivery refused", extra=details)


@functools.cache
def default_receiver() -> Receiver:
    """The receiver wired to AWS from the environment, built on the first request and kept while warm.

    What it needs is imported with this module, during the Lambda's init, where imports are cheaper (the
    garbage collector is off then; see functions/webhook_receiver/app.py). Raises ConfigurationError when a
    setting is missing or invalid.
    """
    settings = load_settings(ADAPTERS)
    clients = AwsClients()
    credentials: CredentialSource
    if settings.secrets_name is None:
        credentials = StaticCredentials({})  # every enabled tracker is 'unsigned'
    else:
        credentials = SecretsManagerCredentials(settings.secrets_name, settings.secrets_max_age, clients)
    store = None
    if settings.payload_bucket:
        store = S3PayloadStore(
            settings.payload_bucket, settings.payload_sse, settings.payload_kms_key_id, clients
        )
    return Receiver(settings, ADAPTERS, credentials, SqsDeliveryQueue(settings.queue_url, clients), store)
