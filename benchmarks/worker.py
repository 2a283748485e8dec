"""Sync worker benchmark.

``run()`` drives the real handler (functions/sync_worker/app.py) with moto's ``mock_aws`` for DynamoDB, S3
and Secrets Manager and the Kantata sandbox over HTTP on 127.0.0.1, and prints per delivery: Kantata calls
(target: one per distinct object per batch; with task sync on and the task known, at most two) and DynamoDB
requests (targets: 2 per posted delivery, 3 with task sync), counted with botocore event hooks and the
sandbox's request log, and what per-object ordering costs without and with contention (two invocations
writing the same objects at once). Figures are printed, never asserted.

The environment (resources from template.yaml, envelopes of the sample deliveries, the handler) is the one
the worker's tests use: tests/support/worker_env.py.
"""

from __future__ import annotations

import collections
import contextlib
import io
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


def _linked_stories(sandbox: Any, workspace_id: str, numbers: range) -> None:
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.models import NewStory, StoryExternalReference

    client = KantataClient(sandbox.token, sandbox.base_url)
    for n in numbers:
        client.create_story(
            NewStory(
                workspace_id=workspace_id,
                title=f"#{n}",
                external_reference=StoryExternalReference("github", "issue", f"acme/webapp#{n}"),
            )
        )


def _state_edit(number: int, seconds: int, closed: bool) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        _issue_number(number, seconds)(doc)
        doc["issue"]["state"] = "closed" if closed else "open"
        doc["action"] = "closed" if closed else "reopened"

    return edit


def _tasks_scenarios(tmp: Path) -> list[dict[str, Any]]:
    from kantata_sandbox.server import KantataSandbox
    from moto import mock_aws

    routes = [
        {"tracker": "github", "repository": "acme/webapp", "workspace_id": "{workspace}", "tasks": "update"}
    ]
    results = []
    with mock_aws(), KantataSandbox() as sandbox:
        harness = WorkerHarness(sandbox, tmp, routes=routes)
        try:
            from kantata_bridge.worker.runtime import dynamodb_client

            counter = DynamoDBCounter(dynamodb_client())
            handler = load_handler()
            numbers = range(3000, 3050)
            _linked_stories(sandbox, harness.workspace_id, numbers)

            def batches(seconds: int, closed: bool) -> list[list[Any]]:
                return [
                    [
                        envelope_for(
                            "github_issues_opened",
                            delivery_id=str(uuid.uuid4()),
                            edit=_state_edit(n, seconds, closed),
                        )
                        for n in numbers[j : j + 10]
                    ]
                    for j in range(0, len(numbers), 10)
                ]

            results.append(
                _scenario(
                    "tasks on, first change (task found by reference)",
                    harness,
                    handler,
                    batches(1, True),
                    counter,
                )
            )
            results.append(
                _scenario(
                    "tasks on, task known, status changed", harness, handler, batches(2, False), counter
                )
            )
            results.append(
                _scenario(
                    "tasks on, task known, nothing to change", harness, handler, batches(3, False), counter
                )
            )
            unlinked = range(3100, 3110)  # no task carries their reference
            results.append(
                _scenario(
                    "tasks on, object not linked, 5 changes each",
                    harness,
                    handler,
                    [
                        [
                            envelope_for(
                                "github_issues_opened",
                                delivery_id=str(uuid.uuid4()),
                                edit=_state_edit(n, 10 + k, k % 2 == 1),
                            )
                            for n in unlinked
                        ]
                        for k in range(5)
                    ],
                    counter,
                )
            )
        finally:
            harness.close()
    return results


def _contention_scenarios(tmp: Path) -> list[dict[str, Any]]:
    """Two invocations at once on the same 10 objects (Kantata answering after 20 ms), against one at a time."""
    import threading

    from kantata_sandbox.server import KantataSandbox
    from moto import mock_aws

    results = []
    with mock_aws(), KantataSandbox() as sandbox:
        harness = WorkerHarness(sandbox, tmp)
        try:
            from kantata_bridge.worker.runtime import dynamodb_client

            counter = DynamoDBCounter(dynamodb_client())
            sandbox.faults.set_latency(0.02)
            for title, parallel, base in (
                ("ordering, no contention (one invocation)", 1, 4000),
                ("ordering, contention (two invocations, same objects)", 2, 5000),
            ):
                handlers = [load_handler() for _ in range(parallel)]
                streams = [
                    [
                        [
                            envelope_for(
                                "github_issues_opened",
                                delivery_id=str(uuid.uuid4()),
                                edit=_issue_number(base + n, 10 * round_ + k),
                            )
                            for n in range(10)
                        ]
                        for round_ in range(5)
                    ]
                    for k in range(parallel)
                ]
                sandbox.clear_requests()
                counter.calls.clear()
                durations: list[float] = []
                lock = threading.Lock()

                def work(
                    handler: Any,
                    stream: list[list[Any]],
                    lock: Any = lock,
                    durations: list[float] = durations,
                ) -> None:
                    for batch in stream:
                        started = time.perf_counter()
                        handler.lambda_handler(sqs_event(batch), FakeLambdaContext())
                        with lock:
                            durations.append((time.perf_counter() - started) / len(batch))

                threads = [
                    threading.Thread(target=work, args=pair) for pair in zip(handlers, streams, strict=True)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                deliveries = sum(len(b) for stream in streams for b in stream)
                durations.sort()
                results.append(
                    {
                        "scenario": title,
                        "deliveries": deliveries,
                        "kantata calls": len(sandbox.requests),
                        "dynamodb requests / delivery": round(counter.total / deliveries, 2),
                        "dynamodb by operation": dict(counter.calls),
                        "ms / delivery, median batch": round(durations[len(durations) // 2] * 1000, 2),
                    }
                )
        finally:
            harness.close()
    return results


def run() -> None:
    """Print the worker's per-delivery Kantata calls and DynamoDB requests for a few traffic shapes."""

    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # the handlers' EMF lines are not the figures
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    fake_aws_env(os.environ.__setitem__)
    results = []
    # The handlers' own log and metric lines are not the figures: keep them off stdout.
    with contextlib.redirect_stdout(io.StringIO()):
        results = _run_scenarios()
    for row in results:
        print(json.dumps(row))


def _run_scenarios() -> list[dict[str, Any]]:
    import tempfile

    from kantata_sandbox.server import KantataSandbox
    from moto import mock_aws

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
    with tempfile.TemporaryDirectory() as tmp:
        results += _tasks_scenarios(Path(tmp))
    with tempfile.TemporaryDirectory() as tmp:
        results += _contention_scenarios(Path(tmp))
    return results


if __name__ == "__main__":
    run()
