"""Sync worker benchmark.

``run()`` drives the real handler (functions/sync_worker/app.py) with moto's ``mock_aws`` for DynamoDB, S3
and Secrets Manager and the Kantata sandbox over HTTP on 127.0.0.1, and prints per delivery: Kantata calls
(target: one per distinct object per batch) and DynamoDB requests (target: at most 3), counted with botocore
event hooks and the sandbox's request log. Figures are printed, never asserted.

The environment (resources from template.yaml, envelopes of the sample deliveries, the handler) is the one
the worker's tests use: tests/support/worker_env.py.
"""

from __future__ import annotations

import collections
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support.worker_env import (
    FakeLambdaContext,
    WorkerHarness,
    envelope_for,
    fake_aws_env,
    load_handler,
    sqs_event,
)


class DynamoDBCounter:
    """Counts DynamoDB API calls made through a client (botocore ``before-call`` hook)."""

    def __init__(self, client: Any) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _edit_updated_at(seconds: int) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc["issue"]["updated_at"] = f"2026-11-20T10:{seconds // 60:02d}:{seconds % 60:02d}Z"

    return edit


def _issue_number(number: int, seconds: int) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        _edit_updated_at(seconds)(doc)
        doc["issue"]["number"] = number
        doc["issue"]["html_url"] = f"https://github.com/acme/webapp/issues/{number}"

    return edit


def _scenario(
    title: str, harness: WorkerHarness, handler: Any, batches: list[list[Any]], counter: DynamoDBCounter
) -> dict[str, Any]:
    harness.sandbox.clear_requests()
    counter.calls.clear()
    deliveries = sum(len(b) for b in batches)
    objects_per_batch = sum(len({_object_of(e) for e in b}) for b in batches)
    started = time.perf_counter()
    for batch in batches:
        handler.lambda_handler(sqs_event(batch), FakeLambdaContext())
    elapsed = time.perf_counter() - started
    kantata = len(harness.sandbox.requests)
    return {
        "scenario": title,
        "deliveries": deliveries,
        "distinct objects per batch (sum)": objects_per_batch,
        "kantata calls": kantata,
        "kantata calls / distinct object": round(kantata / max(objects_per_batch, 1), 2),
        "dynamodb requests": counter.total,
        "dynamodb requests / delivery": round(counter.total / max(deliveries, 1), 2),
        "dynamodb by operation": dict(counter.calls),
        "ms / delivery": round(elapsed * 1000 / max(deliveries, 1), 2),
    }


def _object_of(envelope: Any) -> str:
    doc = json.loads(envelope.body)
    return str(doc.get("issue", {}).get("number"))


def run() -> None:
    """Print the worker's per-delivery Kantata calls and DynamoDB requests for a few traffic shapes."""
    import tempfile

    from kantata_sandbox.server import KantataSandbox
    from moto import mock_aws

    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    fake_aws_env(os.environ.__setitem__)
    results = []
    with tempfile.TemporaryDirectory() as tmp, mock_aws(), KantataSandbox() as sandbox:
        harness = WorkerHarness(sandbox, Path(tmp))
        try:
            from kantata_bridge.worker.runtime import dynamodb_client

            counter = DynamoDBCounter(dynamodb_client())
            handler = load_handler()
            n = 50
            distinct = [
                [
                    envelope_for(
                        "github_issues_opened", delivery_id=str(uuid.uuid4()), edit=_issue_number(1000 + i, 1)
                    )
                    for i in range(j, j + 10)
                ]
                for j in range(0, n, 10)
            ]
            results.append(_scenario("distinct issues, batches of 10", harness, handler, distinct, counter))
            bursts = [
                [
                    envelope_for(
                        "github_issues_opened",
                        delivery_id=str(uuid.uuid4()),
                        edit=_issue_number(2000 + j, 1 + i),
                    )
                    for i in range(10)
                ]
                for j in range(5)
            ]
            results.append(_scenario("10 edits of one issue per batch", harness, handler, bursts, counter))
            repeats = [distinct[0]]
            results.append(
                _scenario("redelivery of an already-posted batch", harness, handler, repeats, counter)
            )
        finally:
            harness.close()
    for row in results:
        print(json.dumps(row))


if __name__ == "__main__":
    run()
