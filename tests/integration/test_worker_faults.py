"""Fault injection: many deliveries through the real handler while Kantata fails often.

Every delivery must end posted exactly once, or parked / in the DLQ with its envelope: none lost, none
duplicated. SQS is simulated with a bounded loop and a maxReceiveCount; Kantata reads retry with no delay.
"""

from __future__ import annotations

import collections
import datetime as dt

import pytest
from kantata_bridge.envelope import DeliveryEnvelope
from kantata_bridge.kantata.retry import RetryPolicy
from kantata_bridge.mapping.rules import MARKER_PREFIX
from kantata_bridge.worker import runtime
from moto import mock_aws

from tests.support.worker_env import (
    SqsSimulator,
    WorkerHarness,
    envelope_for,
    fake_aws_env,
    load_handler,
)

pytestmark = pytest.mark.integration
DELIVERIES = 500


def issue(number: int):
    def edit(doc):
        doc["issue"]["number"] = number
        doc["issue"]["html_url"] = f"https://github.com/acme/webapp/issues/{number}"

    return edit


def test_30_percent_kantata_faults_over_500_deliveries_lose_nothing_and_duplicate_nothing(
    kantata_sandbox, tmp_path, monkeypatch
):
    fake_aws_env(monkeypatch.setenv)
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    monkeypatch.setattr(
        runtime,
        "read_retry_policy",
        lambda: RetryPolicy(max_attempts=2, base_delay=0, max_delay=0, total_budget=0),
    )
    with mock_aws():
        harness = WorkerHarness(kantata_sandbox, tmp_path)
        try:
            harness.runtime.default_worker().clock = lambda: dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
            handler = load_handler()
            # Given 500 deliveries (one per issue) and Kantata answering 30% of requests with 429/5xx,
            # and dropping 5% of connections (an ambiguous failure: did the POST land?)
            envs = [
                envelope_for("github_issues_opened", delivery_id=f"d-{i}", edit=issue(1000 + i))
                for i in range(DELIVERIES)
            ]
            kantata_sandbox.faults.set_rate(0.3, statuses=(429, 500, 503), seed=20261124)
            kantata_sandbox.faults.set_drop_rate(0.05)
            sqs = SqsSimulator(handler.lambda_handler, batch_size=10, max_receive_count=5)
            sqs.send(envs)
            # When the queue is drained (failed records come back until maxReceiveCount, then go to the DLQ)
            sqs.drain()
        finally:
            parked = {o.dedupe_key: o for o in harness.outcomes().parked()}
            outcomes = {e.dedupe_key: harness.outcomes().get(e.dedupe_key) for e in envs}
            harness.close()
    # Then: no delivery has two reports, and each has one report or sits in the DLQ / parked with its envelope
    markers = collections.Counter(
        line.removeprefix(MARKER_PREFIX)
        for report in kantata_sandbox.state.status_reports.values()
        for line in report.description.splitlines()
        if line.startswith(MARKER_PREFIX)
    )
    assert len(kantata_sandbox.state.status_reports) == sum(markers.values())
    assert max(markers.values()) == 1, "a delivery was posted twice"
    dead = {DeliveryEnvelope.from_sqs(*message).dedupe_key: message for message in sqs.dlq}
    lost = [
        e.dedupe_key
        for e in envs
        if markers[e.dedupe_key] == 0 and e.dedupe_key not in dead and e.dedupe_key not in parked
    ]
    assert lost == []
    for env in envs:
        outcome = outcomes[env.dedupe_key]
        if markers[env.dedupe_key]:
            assert outcome is not None
            assert outcome.kind.value == "posted", outcome
        elif env.dedupe_key in dead:
            assert DeliveryEnvelope.from_sqs(*dead[env.dedupe_key]) == env  # kept whole, in its wire form
            assert outcome is not None
            assert outcome.kind.value == "failed"
        else:
            assert parked[env.dedupe_key].envelope == env.to_message()
    # The faults really happened: most deliveries needed no retry, some needed several.
    assert sqs.invocations > DELIVERIES // 10
    print(
        f"\nposted={sum(markers.values())} dlq={len(dead)} parked={len(parked)} invocations={sqs.invocations}"
    )
