"""Order under concurrency, time limits and lost answers: the real worker handler, moto, the sandbox over HTTP.

- Five invocations at once, 200 events of 10 objects, Kantata answering after a random delay: for every object,
  the last report and the task's status are its newest version's.
- A slow but healthy Kantata: deliveries that do not fit in an invocation are deferred, never dead-lettered.
- A create whose answer was lost, then a newer update, then the first delivery again: recorded as posted with
  the report Kantata holds, not as stale.
"""

from __future__ import annotations

import collections
import datetime as dt
import random
import threading
import time
import uuid
from typing import Any

import pytest
from kantata_bridge.kantata.client import KantataClient
from kantata_bridge.kantata.models import NewStory, StoryExternalReference
from moto import mock_aws

from tests.support.worker_env import (
    FakeLambdaContext,
    SqsSimulator,
    WorkerHarness,
    envelope_for,
    fake_aws_env,
    load_handler,
    sqs_record,
    wire,
)

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
MARKER = "kantata-bridge delivery: "


@pytest.fixture
def aws(monkeypatch):
    fake_aws_env(monkeypatch.setenv)
    with mock_aws():
        yield


def github_version(number: int, version: int) -> Any:
    """Issue acme/webapp#<number> at its ``version``-th update: odd versions open, even ones closed."""

    def edit(doc):
        issue = doc["issue"]
        issue["number"] = number
        issue["html_url"] = f"https://github.com/acme/webapp/issues/{number}"
        issue["updated_at"] = (
            dt.datetime(2026, 11, 20, tzinfo=dt.UTC) + dt.timedelta(minutes=version)
        ).strftime("%Y-%m-%dT%H:%M:%SZ")
        closed = version % 2 == 0
        issue["state"] = "closed" if closed else "open"
        doc["action"] = "closed" if closed else "reopened"

    return envelope_for("github_issues_opened", delivery_id=f"i{number}-v{version:02d}", edit=edit)


def test_concurrent_invocations_leave_each_objects_newest_version_last(aws, kantata_sandbox, tmp_path):
    routes = [
        {"tracker": "github", "repository": "acme/webapp", "workspace_id": "{workspace}", "tasks": "update"}
    ]
    harness = WorkerHarness(kantata_sandbox, tmp_path, routes=routes)
    try:
        harness.runtime.default_worker().clock = lambda: NOW
        client = KantataClient(kantata_sandbox.token, kantata_sandbox.base_url)
        objects, versions = range(1000, 1010), range(1, 21)
        tasks = {
            n: client.create_story(
                NewStory(
                    workspace_id=harness.workspace_id,
                    title=f"#{n}",
                    external_reference=StoryExternalReference("github", "issue", f"acme/webapp#{n}"),
                )
            ).id
            for n in objects
        }
        # Given 200 deliveries (20 versions of 10 issues) arriving as a burst does: roughly oldest first, each
        # window of 20 in a random order, and Kantata answering each request after 0-300 ms, so requests sent
        # one after the other can finish the other way round
        rng = random.Random(20261126)
        envelopes = []
        for v in versions:
            envelopes += [github_version(n, v) for n in objects]
        for start in range(0, len(envelopes), 20):
            window = envelopes[start : start + 20]
            rng.shuffle(window)
            envelopes[start : start + 20] = window
        kantata_sandbox.faults.set_latency(0.0, jitter=0.3)
        queue: collections.deque[tuple[str, Any, int]] = collections.deque(
            (str(uuid.uuid4()), wire(e), 1) for e in envelopes
        )
        lock = threading.Lock()
        errors: list[BaseException] = []

        def invocation_loop(handler):
            # One "execution environment": takes batches of up to 10 until the queue is empty; failed records
            # come back to the queue, as SQS would hand them out again.
            try:
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    with lock:
                        batch = [queue.popleft() for _ in range(min(10, len(queue)))]
                    if not batch:
                        return
                    records = [sqs_record(mid, message, count) for mid, message, count in batch]
                    failed = {
                        f["itemIdentifier"]
                        for f in handler.lambda_handler({"Records": records}, FakeLambdaContext())[
                            "batchItemFailures"
                        ]
                    }
                    with lock:
                        queue.extend((mid, m, c + 1) for mid, m, c in batch if mid in failed)
                raise AssertionError("queue not drained in time")
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                errors.append(exc)

        # When five invocations work the queue at once
        threads = [threading.Thread(target=invocation_loop, args=(load_handler(),)) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=150)
        assert errors == []
        assert not queue
        # Then for every object the report Kantata made last is the newest version's, and so is the task status
        last_report: dict[str, tuple[int, str]] = {}
        for report in client.list_status_reports(workspace_id=harness.workspace_id):
            (ref,) = [r.service_model_ref for r in report.external_references]
            marker = next(line for line in report.description.splitlines() if line.startswith(MARKER))
            if int(report.id) > last_report.get(ref, (0, ""))[0]:
                last_report[ref] = (int(report.id), marker.rsplit("-v", 1)[1])
        assert {ref: version for ref, (_, version) in last_report.items()} == {
            f"acme/webapp#{n}": "20" for n in objects
        }
        assert {n: client.get_story(task).status for n, task in tasks.items()} == {
            n: "completed"
            for n in objects  # version 20 is closed: the completed category's default
        }
    finally:
        harness.close()


def test_a_slow_but_healthy_kantata_never_dead_letters_a_delivery(aws, kantata_sandbox, tmp_path):
    # Given Kantata answering every request after 300 ms, no errors at all, and invocations with room for only
    # a few deliveries each (the template's 60 s and a 6 s Kantata, scaled down by 20)
    harness = WorkerHarness(kantata_sandbox, tmp_path)
    try:
        worker = harness.runtime.default_worker()
        worker.clock = lambda: NOW
        worker.record_budget_ms = 1_000
        worker.post_margin_ms = 700
        kantata_sandbox.faults.set_latency(0.3)

        class ThreeSecondContext(FakeLambdaContext):
            def __init__(self) -> None:
                super().__init__()
                self.deadline = time.monotonic() + 3.0

            def get_remaining_time_in_millis(self) -> int:
                return max(0, int((self.deadline - time.monotonic()) * 1000))

        sim = SqsSimulator(load_handler().lambda_handler, batch_size=10, max_receive_count=2)
        sim.context = ThreeSecondContext
        worker.requeue = sim.requeue
        envs = [github_version(n, 1) for n in range(2000, 2010)]
        sim.send(envs)
        # When the queue is drained
        sim.drain()
        # Then nothing went to the DLQ, every delivery was posted exactly once, and some had to wait their turn
        assert sim.dlq == []
        outcomes = [harness.outcomes().get(e.dedupe_key) for e in envs]
        assert [o.kind.value for o in outcomes] == ["posted"] * 10
        reports = list(KantataClient(kantata_sandbox.token, kantata_sandbox.base_url).list_status_reports())
        assert len(reports) == 10
        assert sim.invocations > 1
    finally:
        harness.close()


def test_a_lost_answer_then_a_newer_update_then_the_redelivery_is_recorded_as_posted_with_its_report(
    aws, kantata_sandbox, tmp_path
):
    harness = WorkerHarness(kantata_sandbox, tmp_path)
    try:
        harness.runtime.default_worker().clock = lambda: NOW
        handler = load_handler()
        older, newer = github_version(42, 1), github_version(42, 2)

        def run(env):
            return handler.lambda_handler(
                {"Records": [sqs_record(str(uuid.uuid4()), wire(env), 1)]}, FakeLambdaContext()
            )

        # Given the older delivery's POST created its report but the answer was lost
        kantata_sandbox.faults.script(["drop_after"], method="POST", path_prefix="/status_reports")
        assert len(run(older)["batchItemFailures"]) == 1
        # And a newer update of the same issue was posted since
        assert run(newer) == {"batchItemFailures": []}
        # When SQS hands the older delivery out again
        assert run(older) == {"batchItemFailures": []}
        # Then it is recorded as posted, with the report Kantata made for it (found by its marker), not as stale
        reports = list(KantataClient(kantata_sandbox.token, kantata_sandbox.base_url).list_status_reports())
        mine = [r.id for r in reports if f"{MARKER}{older.dedupe_key}" in r.description.splitlines()]
        outcome = harness.outcomes().get(older.dedupe_key)
        assert (outcome.kind.value, [outcome.report_id]) == ("posted", mine)
        assert outcome.reason.startswith("posted by an earlier attempt whose answer was lost")
        assert len(reports) == 2
    finally:
        harness.close()
