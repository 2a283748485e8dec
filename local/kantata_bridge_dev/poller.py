"""A local stand-in for Lambda's SQS event source mapping: long-poll the queue, call the worker with a batch.

Written by hand because the event source mapping is a managed AWS service with no library equivalent. It
keeps the semantics the worker relies on: the SQS event shape (messageId, receiptHandle, body,
attributes.ApproximateReceiveCount, messageAttributes, eventSourceARN), partial batch responses (only the
records not in ``batchItemFailures`` are deleted), and a function error leaving the whole batch to the
visibility timeout and the queue's redrive policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kantata_bridge_dev.apigw import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One worker invocation: the records sent, the ids it reported failed, and any function error."""

    records: list[dict[str, Any]]
    failed_ids: frozenset[str]
    error: str | None = None

    @property
    def succeeded(self) -> list[dict[str, Any]]:
        if self.error is not None:
            return []
        return [r for r in self.records if r["messageId"] not in self.failed_ids]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The Lambda SQS event for messages as returned by ReceiveMessage (with all attributes)."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", str(int(time.time() * 1000))),
                    "SenderId": attributes.get("SenderId", "000000000000"),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                    ),
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType", "String"),
                    }
                    for name, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


@dataclass
class SqsPoller:
    """Feeds batches from ``queue_url`` to ``handler`` on a background thread until ``stop()``."""

    sqs: Any
    queue_url: str
    queue_arn: str
    handler: Handler
    region: str = "us-east-1"
    function_name: str = "sync-worker"
    timeout_seconds: float = 30
    batch_size: int = 10
    wait_seconds: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_batch: Callable[[BatchResult], None] | None = None
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _busy: threading.Event = field(default_factory=threading.Event, init=False)
    errors: list[str] = field(default_factory=list, init=False)

    def start(self) -> SqsPoller:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the loop to finish and wait for it (at most one long poll plus one batch)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.wait_seconds + self.timeout_seconds + 5)
            self._thread = None

    @property
    def busy(self) -> bool:
        """True while a batch is being processed."""
        return self._busy.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - keep polling, as the managed poller does; shown on stop
                self.errors.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(0.5)

    def poll_once(self) -> BatchResult | None:
        """Receive one batch (long poll) and process it. None when the queue had nothing."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.batch_size, 10),
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return None
        self._busy.set()
        try:
            return self._process(messages)
        finally:
            self._busy.clear()

    def _process(self, messages: list[dict[str, Any]]) -> BatchResult:
        event = sqs_event(messages, self.queue_arn, self.region)
        context = LambdaContext(self.function_name, self.timeout_seconds)
        try:
            with self.lock:
                response = self.handler(event, context)
            failures = (response or {}).get("batchItemFailures", [])
            result = BatchResult(event["Records"], frozenset(str(f["itemIdentifier"]) for f in failures))
        except Exception as exc:  # noqa: BLE001 - a function error leaves the whole batch to redelivery
            result = BatchResult(event["Records"], frozenset(), error=f"{type(exc).__name__}: {exc}")
        done = result.succeeded
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(done)],
            )
        if self.on_batch is not None:
            self.on_batch(result)
        return result
