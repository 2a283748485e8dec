"""End to end: the local stack as a user runs it, fed signed webhook deliveries over HTTP on 127.0.0.1.

Each test starts its own stack (moto server, Kantata sandbox, API Gateway-shaped endpoint, worker poller),
builds its deliveries from the raw payloads in events/payloads (signed by tests/support/deliveries.py with the
sample secrets, not by the local stack's own helpers),
and reads the results where a user would: the HTTP answer, the worker's outcomes and the Kantata sandbox.
"""

from __future__ import annotations

import json
import os
import threading

import pytest
import requests
from kantata_bridge_dev.local_stack import LocalStack

from tests.support.deliveries import PAYLOADS, Delivery, github_delivery, jira_delivery, signed_github

pytestmark = pytest.mark.e2e


def send(stack: LocalStack, tracker: str, delivery: Delivery) -> requests.Response:
    headers, body = delivery
    return requests.post(stack.webhook_url(tracker), data=body, headers=headers, timeout=10)


def send_and_settle(stack: LocalStack, tracker: str, delivery: Delivery) -> requests.Response:
    """Send, then wait until the worker has recorded the delivery's outcome (bounded)."""
    before = len(stack.outcomes)
    response = send(stack, tracker, delivery)
    if response.status_code == 202:
        assert stack.wait_for_outcomes(before + 1, timeout=30), "the worker recorded no outcome in 30 s"
    return response


def dedupe_key(tracker: str, delivery: Delivery) -> str:
    headers = {k.lower(): v for k, v in delivery[0].items()}
    if tracker == "github":
        return f"github:{headers['x-github-hook-id']}:{headers['x-github-delivery']}"
    return f"jira:-:{headers['x-atlassian-webhook-identifier']}"


@pytest.fixture
def stack():
    with LocalStack(visibility_timeout=1, max_receive_count=2) as running:
        yield running


def test_signed_github_delivery_becomes_a_kantata_status_report(stack):
    # Given a signed GitHub "issues opened" delivery
    delivery = github_delivery("github_issues_opened.json", "issues")
    # When it is posted to the webhook URL
    response = send_and_settle(stack, "github", delivery)
    # Then it is accepted, the worker posts a report, and Kantata holds it in the routed workspace
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    (outcome,) = stack.outcomes
    assert outcome.dedupe_key == dedupe_key("github", delivery)
    assert outcome.outcome == "posted"
    report = stack.sandbox.state.status_reports[outcome.report_id]
    assert report.workspace_id == "41001"
    refs = [r for r in stack.sandbox.state.external_references.values() if str(r.subject_id) == report.id]
    assert [r.service_model_ref for r in refs] == ["acme/webapp#42"]
    # And the durable outcome record says the same
    stored = stack.outcome_store().get(outcome.dedupe_key)
    assert stored.kind.value == "posted"
    assert stored.report_id == outcome.report_id


def test_redelivered_delivery_is_skipped_as_duplicate_and_posts_nothing_more(stack):
    # Given a delivery that was processed
    delivery = github_delivery("github_issues_opened.json", "issues")
    assert send_and_settle(stack, "github", delivery).status_code == 202
    # When GitHub redelivers it (same delivery id)
    response = send_and_settle(stack, "github", delivery)
    # Then it is accepted, recognised as a duplicate, and Kantata still has one report
    assert response.status_code == 202
    first, second = stack.outcomes
    assert (first.outcome, second.outcome) == ("posted", "skipped")
    assert second.reason.startswith("duplicate")
    assert len(stack.sandbox.state.status_reports) == 1


def test_older_jira_update_arriving_late_is_skipped_as_stale(stack):
    # Given Jira's newer update (Done) was applied first
    assert send_and_settle(stack, "jira", jira_delivery("jira_issue_updated_done.json")).status_code == 202
    # When the older update (In Progress) arrives afterwards
    response = send_and_settle(stack, "jira", jira_delivery("jira_issue_updated_in_progress.json"))
    # Then it is skipped as stale and the latest report still says Done
    assert response.status_code == 202
    newer, older = stack.outcomes
    assert newer.outcome == "posted"
    assert older.outcome == "skipped"
    assert older.reason.startswith("stale")
    (ref,) = stack.sandbox.state.external_references.values()
    assert ref.external_status == "Done"


def test_unsubscribed_event_type_is_ignored_with_200_and_not_queued(stack):
    # Given a correctly signed delivery of an event type the bridge does not handle
    push = signed_github(b'{"ref":"refs/heads/main","repository":{"full_name":"acme/webapp"}}', "push")
    # When it is posted
    response = send(stack, "github", push)
    # Then GitHub gets a 200 (so it does not count a failure) and nothing reaches the queue or Kantata
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert stack.wait_until_drained(10)
    assert stack.outcomes == []
    assert stack.sandbox.state.status_reports == {}


def test_forged_signature_is_refused_with_401_and_nothing_is_queued(stack):
    # Given a Jira delivery signed with the wrong secret
    delivery = jira_delivery("jira_issue_created.json", secret="not-the-secret")
    # When it is posted
    response = send(stack, "jira", delivery)
    # Then it is refused without a trace of the signature, and nothing is queued
    assert response.status_code == 401
    assert "sha256" not in response.text
    assert stack.queue_depth() == 0
    assert stack.outcomes == []


def test_unknown_tracker_and_unknown_route_answer_404(stack):
    headers, body = github_delivery("github_issues_opened.json", "issues")
    assert (
        requests.post(stack.webhook_url("bitbucket"), data=body, headers=headers, timeout=10).status_code
        == 404
    )
    assert requests.post(stack.api.url + "/other", data=body, headers=headers, timeout=10).status_code == 404
    assert requests.get(stack.webhook_url("github"), timeout=10).status_code == 404


def test_local_stack_leaves_no_thread_or_environment_behind():
    # Given the threads and environment before a local stack runs
    before_threads = set(threading.enumerate())
    before_env = dict(os.environ)
    # When a stack starts, takes a delivery and stops
    with LocalStack() as running:
        assert send_and_settle(running, "jira", jira_delivery("jira_issue_created.json")).status_code == 202
    # Then every thread it started ends (connection threads within moments) and the environment is as it was
    for thread in [t for t in threading.enumerate() if t not in before_threads]:
        thread.join(timeout=5)
    leftover = [t.name for t in threading.enumerate() if t not in before_threads and t.is_alive()]
    assert leftover == []
    assert dict(os.environ) == before_env


def test_a_second_stack_in_the_same_process_starts_fresh():
    # Given one stack that posted a report and stopped
    with LocalStack() as first:
        assert send_and_settle(first, "jira", jira_delivery("jira_issue_created.json")).status_code == 202
    # When a second stack (new moto port, new sandbox) receives the same payload
    with LocalStack() as second:
        response = send_and_settle(second, "jira", jira_delivery("jira_issue_created.json"))
        # Then its handlers use the new endpoints: the report lands in the new sandbox
        assert response.status_code == 202
        (outcome,) = second.outcomes
        assert outcome.outcome == "posted"
        assert outcome.report_id in second.sandbox.state.status_reports


def test_large_body_goes_through_the_claim_check_bucket(stack):
    # Given a GitHub delivery whose body is above the inline SQS limit (padding inside the JSON document)
    doc = json.loads((PAYLOADS / "github_issues_opened.json").read_text(encoding="utf-8"))
    doc["issue"]["body"] = "x" * 300_000
    # When it is posted
    response = send_and_settle(stack, "github", signed_github(json.dumps(doc).encode(), "issues"))
    # Then the body went to S3 and the worker still posted the report
    assert response.status_code == 202
    objects = stack.session().client("s3").list_objects_v2(Bucket=stack.resources.payload_bucket)
    assert objects["KeyCount"] == 1
    (outcome,) = stack.outcomes
    assert outcome.outcome == "posted"
