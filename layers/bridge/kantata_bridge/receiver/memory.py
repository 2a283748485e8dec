"""In-process stand-ins for the receiver's queue and claim-check store (tests, benchmarks, local tools).

Kept out of :mod:`kantata_bridge.receiver.queue` so the Lambda's cold start never imports them. The queue
refuses what SQS would refuse, so a test that passes here does not fail against SQS for size or characters.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from kantata_bridge.envelope import BodyPointer, DeliveryEnvelope
from kantata_bridge.receiver.errors import EnqueueError
from kantata_bridge.receiver.queue import payload_key

# What SQS refuses (SendMessage docs): more than 256 KiB of body + attributes (names, types and values), and
# characters outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF. The receiver keeps
# within both (INLINE_BODY_LIMIT, trackers.base.header_text).
SQS_MAX_MESSAGE_BYTES: Final = 256 * 1024
_SQS_INVALID_CHARACTER: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_refusal(body: str, attributes: dict[str, dict[str, str]]) -> str | None:
    """Why SQS would refuse this message (size or characters), or None when it would take it."""
    texts = [body]
    for name, attribute in attributes.items():
        texts += [name, attribute["DataType"], attribute["StringValue"]]
    if sum(len(text.encode("utf-8", "surrogatepass")) for text in texts) > SQS_MAX_MESSAGE_BYTES:
        return f"message larger than {SQS_MAX_MESSAGE_BYTES} bytes"
    if any(_SQS_INVALID_CHARACTER.search(text) for text in texts):
        return "message contains characters SQS does not allow"
    return None


class MemoryDeliveryQueue:
    """An in-process queue (tests, benchmarks, local tools). ``fail_with`` makes every send fail.

    It refuses what SQS would refuse (size, characters; see ``sqs_refusal``) so tests catch it too.
    """

    def __init__(self, fail_with: EnqueueError | None = None) -> None:
        self.envelopes: list[DeliveryEnvelope] = []
        self.messages: list[tuple[str, dict[str, dict[str, str]]]] = []
        self.fail_with = fail_with

    def send(self, envelope: DeliveryEnvelope) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        body, attributes = envelope.to_sqs()
        refusal = sqs_refusal(body, attributes)
        if refusal is not None:
            raise EnqueueError("queue_unavailable", f"the queue did not take the delivery ({refusal})")
        # Round-trip through the wire format, as SQS would, so what tests read is what the worker gets.
        self.messages.append((body, attributes))
        self.envelopes.append(DeliveryEnvelope.from_sqs(body, attributes))


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
