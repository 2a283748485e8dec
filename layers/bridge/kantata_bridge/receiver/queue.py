"""Putting a delivery on the SQS queue, with bodies too large for a message stored in S3 (claim check).

The boto3 clients come from :class:`kantata_bridge.receiver.clients.AwsClients`: built on first use,
never at import, with short timeouts.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from kantata_bridge.envelope import BodyPointer, DeliveryEnvelope
from kantata_bridge.receiver.clients import AwsClients
from kantata_bridge.receiver.errors import EnqueueError


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
    """Sends each envelope as one SQS message in the v2 wire form (``DeliveryEnvelope.to_sqs``)."""

    def __init__(self, queue_url: str, clients: AwsClients | None = None) -> None:
        self._queue_url = queue_url
        self._clients = clients or AwsClients()

    def send(self, envelope: DeliveryEnvelope) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        body, attributes = envelope.to_sqs()
        try:
            self._clients.client("sqs").send_message(
                QueueUrl=self._queue_url, MessageBody=body, MessageAttributes=attributes
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
