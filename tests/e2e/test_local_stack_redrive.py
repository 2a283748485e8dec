"""End to end: `kantata-bridge redrive` against the local stack puts failed deliveries back after a fix.

Faults come from the Kantata sandbox's fault injection: 503s (retryable: the delivery dead-letters after
maxReceiveCount) and a 422 (permanent: the delivery is parked with its envelope).
"""

from __future__ import annotations

import time

import pytest
import requests
from kantata_bridge_cli.main import main as cli
from kantata_bridge_dev.local_stack import LocalStack

from tests.support.deliveries import Delivery, jira_delivery

pytestmark = pytest.mark.e2e


def jira_created() -> Delivery:
    return jira_delivery("jira_issue_created.json")


def post(stack: LocalStack, delivery: Delivery) -> int:
    headers, body = delivery
    return requests.post(stack.webhook_url("jira"), data=body, headers=headers, timeout=10).status_code


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def redrive_args(stack: LocalStack, *extra: str) -> list[str]:
    res = stack.resources
    return [
        "redrive",
        "--endpoint-url",
        stack.endpoint_url,
        "--queue-url",
        res.queue_url,
        "--dead-letter-queue-url",
        res.dead_letter_queue_url,
        "--state-table",
        res.state_table,
        *extra,
    ]


@pytest.fixture
def stack():
    with LocalStack(visibility_timeout=1, max_receive_count=2) as running:
        yield running


def test_dead_lettered_delivery_is_posted_after_redrive_once_kantata_recovers(stack, capsys):
    # Given Kantata answers 503 to everything, so a delivery fails maxReceiveCount times and is dead-lettered
    stack.sandbox.faults.set_rate(1.0, statuses=[503])
    assert post(stack, jira_created()) == 202
    dlq = stack.resources.dead_letter_queue_url
    assert wait_for(lambda: stack.queue_depth(dlq) == 1), "the delivery never reached the DLQ"
    assert stack.outcomes
    assert all(o.outcome == "failed" for o in stack.outcomes)
    # When Kantata recovers and the operator redrives (a dry run first changes nothing)
    stack.sandbox.faults.clear()
    assert cli(redrive_args(stack, "--source", "dlq", "--dry-run")) == 0
    assert "1 message(s) would move" in capsys.readouterr().out
    assert stack.queue_depth(dlq) == 1
    assert cli(redrive_args(stack, "--source", "dlq")) == 0
    # Then the DLQ is empty and the delivery is posted
    assert "1 message(s) moved" in capsys.readouterr().out
    assert stack.queue_depth(dlq) == 0
    assert wait_for(lambda: any(o.outcome == "posted" for o in stack.outcomes))
    assert len(stack.sandbox.state.status_reports) == 1


def test_parked_delivery_is_queued_again_by_redrive_and_posted(stack, capsys):
    # Given Kantata refuses the report once with 422 (permanent), so the delivery is parked with its envelope
    stack.sandbox.faults.script([422], method="POST", path_prefix="/status_reports")
    assert post(stack, jira_created()) == 202
    assert stack.wait_for_outcomes(1)
    (parked,) = stack.outcomes
    assert parked.outcome == "parked"
    # When the operator lists, then redrives the parked deliveries
    assert cli(redrive_args(stack, "--source", "parked", "--dry-run")) == 0
    listing = capsys.readouterr().out
    assert "parked deliveries: 1 would be queued again" in listing
    assert parked.dedupe_key in listing
    assert cli(redrive_args(stack, "--source", "parked")) == 0
    printed = capsys.readouterr()
    assert "parked deliveries: 1 queued again" in printed.out
    # And the progress on stderr counts against the number to redrive, known before the first one is sent
    assert "parked deliveries: [" in printed.err
    assert "1/1" in printed.err
    # Then the delivery is processed again and posted, and nothing is left parked
    assert stack.wait_for_outcomes(2)
    assert stack.outcomes[-1].outcome == "posted"
    assert list(stack.outcome_store().parked()) == []
    assert stack.outcome_store().get(parked.dedupe_key).kind.value == "posted"


def test_redrive_without_a_queue_says_what_is_missing(capsys, monkeypatch):
    monkeypatch.delenv("QUEUE_URL", raising=False)
    assert cli(["redrive", "--endpoint-url", "http://127.0.0.1:9", "--dry-run"]) == 2
    assert "no events queue" in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["0", "-3", "two"])
def test_redrive_refuses_a_limit_that_is_not_a_positive_count(limit, capsys):
    # Given a limit that would move nothing (or is not a number), When redrive is asked to use it
    code = cli(["redrive", "--queue-url", "http://127.0.0.1:9/q", "--limit", limit, "--dry-run"])
    # Then argparse refuses it with a usage error before anything is read or moved
    assert code == 2
    assert "--limit" in capsys.readouterr().err


def test_redrive_refuses_a_limit_with_the_move_task_method_instead_of_ignoring_one(capsys):
    # Given an explicit move task (which always moves the whole queue) and a limit
    code = cli(["redrive", "--queue-url", "http://127.0.0.1:9/q", "--method", "move-task", "--limit", "5"])
    # Then redrive says the two do not go together, and touches nothing
    assert code == 2
    assert "--limit cannot be used with --method move-task" in capsys.readouterr().err
