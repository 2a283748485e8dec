"""Putting a delivery on the SQS queue, with bodies too large for a message stored in S3 (claim check).

The boto3 clients come from :class:`kantata_bridge.receiver.clients.AwsClients`: built on first use,
never at import, with short timeouts.
"""

from __future__ import annotations

import hashlib
from typing import Final, Protocol

from kantata_bridge.envelope import BodyPointer, DeliveryEnvelope
from kantata_bridge.receiver.clients import AwsClients
from kantata_bridge.receiver.errors import EnqueueError

# SQS message attributes for filtering and operations (redrive, dashboards) without parsing the body.
ATTRIBUTE_NAMES: Final = ("tracker", "event_type", "delivery_id")


class DeliveryQueue(Protocol):
    """Takes an envelope durably, or raises EnqueueError."""

    def send(self, envelope: DeliveryEnvelope) -> None:
        """Queue the envelope. Raises EnqueueError when the queue did not take it."""
        ...


class PayloadStore(Protocol):
    """Keeps a body too large for a queue message and returns where it is."""

    def put(self, envelope: DeliveryEnvelope, body: bytes) -> BodyPointer:
        """Store ``body`` for ``envelope``. Raises EnqueueError when the store did not take it."""
        ...


class SqsDeliveryQueue:
    """Sends each envelope as one SQS message (body = ``DeliveryEnvelope.to_message()``)."""

    def __init__(self, queue_url: str, clients: AwsClients | None = None) -> None:
        self._queue_url = queue_url
        self._clients = clients or AwsClients()

    def send(self, envelope: DeliveryEnvelope) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        attributes = {
            name: {"DataType": "String", "StringValue": str(getattr(envelope, name))}
            for name in ATTRIBUTE_NAMES
        }
        try:
            self._clients.client("sqs").send_message(
                QueueUrl=self._queue_url, MessageBody=envelope.to_message(), MessageAttributes=attributes
            )
        except (BotoCoreError, ClientError) as exc:
            raise EnqueueError(
                "queue_unavailable", f"the queue did not take the delivery ({type(exc).__name__})"
            ) from exc


class S3PayloadStore:
    """Stores claim-checked bodies at ``payloads/<tracker>/<yyyy>/<mm>/<dd>/<sha256 of the dedupe key>``.

    The key is derived from the delivery, so a redelivered body overwrites its own copy instead of piling
    up. Objects are written with server-side encryption (``PAYLOAD_SSE``).
    """

    def __init__(
        self,
        bucket: str,
        sse: str | None = "AES256",
        kms_key_id: str | None = None,
        clients: AwsClients | None = None,
    ) -> None:
        self._bucket = bucket
        self._sse = sse
        self._kms_key_id = kms_key_id
        self._clients = clients or AwsClients()

    def put(self, envelope: DeliveryEnvelope, body: bytes) -> BodyPointer:
        from botocore.exceptions import BotoCoreError, ClientError

        key = payload_key(envelope)
        extra: dict[str, str] = {}
        if envelope.content_type:
            extra["ContentType"] = envelope.content_type
        if self._sse:
            extra["ServerSideEncryption"] = self._sse
            if self._sse == "aws:kms" and self._kms_key_id:
                extra["SSEKMSKeyId"] = self._kms_key_id
        try:
            self._clients.client("s3").put_object(Bucket=self._bucket, Key=key, Body=body, **extra)
        except (BotoCoreError, ClientError) as exc:
            raise EnqueueError(
                "store_unavailable", f"the payload bucket did not take the body ({type(exc).__name__})"
            ) from exc
        return BodyPointer(
            bucket=self._bucket, key=key, size=len(body), sha256=hashlib.sha256(body).hexdigest()
        )


def payload_key(envelope: DeliveryEnvelope) -> str:
    """The S3 key of a claim-checked body: by tracker and receive date, named by the delivery."""
    day = envelope.received_at[:10].replace("-", "/")
    digest = hashlib.sha256(envelope.dedupe_key.encode("utf-8")).hexdigest()
    return f"payloads/{envelope.tracker}/{day}/{digest}"


class MemoryDeliveryQueue:
    """An in-process queue (tests, benchmarks, local tools). ``fail_with`` makes every send fail."""

    def __init__(self, fail_with: EnqueueError | None = None) -> None:
        self.envelopes: list[DeliveryEnvelope] = []
        self.fail_with = fail_with

    def send(self, envelope: DeliveryEnvelope) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        # Round-trip through the wire format, as SQS would, so what tests read is what the worker gets.
        self.envelopes.append(DeliveryEnvelope.from_message(envelope.to_message()))


class MemoryPayloadStore:
    """An in-process claim-check store (tests, benchmarks, local tools), keyed like S3PayloadStore."""

    def __init__(self, bucket: str = "memory", fail_with: EnqueueError | None = None) -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.fail_with = fail_with

    def put(self, envelope: DeliveryEnvelope, body: bytes) -> BodyPointer:
        if self.fail_with is not None:
            raise self.fail_with
        key = payload_key(envelope)
        self.objects[key] = bytes(body)
        return BodyPointer(
            bucket=self.bucket, key=key, size=len(body), sha256=hashlib.sha256(body).hexdigest()
        )
