"""GitLab and Linear end to end: the real receiver and worker handlers, SQS/DynamoDB/S3/Secrets Manager in moto,
Kantata through the sandbox over HTTP.

Deliveries are the sample API Gateway events of events/apigw. Linear deliveries, and GitLab deliveries in
signature mode, carry a signed timestamp: the tests sign them afresh at the moment they send them (here, not
with the code under test), as the tracker would; the committed samples, signed long ago, are what a stale
replay looks like.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kantata_bridge.kantata.client import KantataClient
from moto import mock_aws

from tests.support.worker_env import (
    FakeLambdaContext,
    WorkerHarness,
    fake_aws_env,
    load_handler,
    received,
    sqs_record,
)
from tests.unit.test_receiver_app import APP, CONTEXT, GENERATE, sample

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)  # the worker's "today" for due-date rules
WEBHOOK_SECRETS = {
    "gitlab": [GENERATE.GITLAB_SIGNING_SECRET],
    "gitlab_tokens": [GENERATE.GITLAB_TOKEN],
    "linear": [GENERATE.LINEAR_SECRET],
}


class Pipeline:
    """The receiver in front of moto's SQS queue, and the worker draining it into the Kantata sandbox."""

    def __init__(self, harness: WorkerHarness) -> None:
        self.harness = harness
        self.sqs = boto3.client("sqs")
        self.queue_url = self.sqs.get_queue_url(QueueName="bridge-events")["QueueUrl"]
        self.worker = load_handler()
        boto3.client("secretsmanager").put_secret_value(
            SecretId="bridge/webhook-secrets", SecretString=json.dumps(WEBHOOK_SECRETS)
        )
        self.configure_receiver()

    def configure_receiver(self, **env: str) -> None:
        import os

        from aws_lambda_powertools.utilities import parameters
        from kantata_bridge.receiver.service import default_receiver

        os.environ.update(
            {
                "QUEUE_URL": self.queue_url,
                "WEBHOOK_SECRETS_NAME": "bridge/webhook-secrets",
                "ENABLED_TRACKERS": "github,jira,gitlab,linear",
                "GITLAB_AUTH_MODE": "shared-token",
                **env,
            }
        )
        default_receiver.cache_clear()
        parameters.clear_caches()

    def send(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = APP.lambda_handler(event, CONTEXT)
        return response["statusCode"], json.loads(response["body"])

    def queued(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
        return messages

    def drain(self) -> None:
        """Hand every queued message to the worker, one SQS batch at a time, and delete the handled ones."""
        messages = self.queued()
        for start in range(0, len(messages), 10):
            batch = messages[start : start + 10]
            records = [sqs_record(m["MessageId"], received(m), 1) for m in batch]
            response = self.worker.lambda_handler({"Records": records}, FakeLambdaContext())
            assert response == {"batchItemFailures": []}
            for message in batch:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def reports(self) -> list[Any]:
        client = KantataClient(self.harness.sandbox.token, self.harness.sandbox.base_url)
        found = client.list_status_reports(workspace_id=self.harness.workspace_id)
        return sorted(found, key=lambda r: int(r.id or 0))


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch, kantata_sandbox: Any, tmp_path: Any) -> Iterator[Pipeline]:
    fake_aws_env(monkeypatch.setenv)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        harness = WorkerHarness(kantata_sandbox, tmp_path)
        harness.runtime.default_worker().clock = lambda: NOW
        try:
            yield Pipeline(harness)
        finally:
            harness.close()
            from kantata_bridge.receiver.service import default_receiver

            default_receiver.cache_clear()


def gitlab(name: str, *, signed: bool = False, delivery_id: str | None = None) -> dict[str, Any]:
    """A GitLab sample as sent now: with its secret token, or signed (Standard Webhooks) at this moment."""
    event = sample(name)
    headers = event["headers"]
    if delivery_id is not None:
        headers["idempotency-key"] = headers["webhook-id"] = delivery_id
    if signed:
        headers.pop("x-gitlab-token", None)
        stamp = str(int(time.time()))
        key = base64.b64decode(GENERATE.GITLAB_SIGNING_SECRET.removeprefix("whsec_"))
        message = f"{headers['webhook-id']}.{stamp}.{event['body']}".encode()
        headers["webhook-timestamp"] = stamp
        headers["webhook-signature"] = (
            "v1," + base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
        )
    return event


def linear(name: str, *, delivery_id: str | None = None) -> dict[str, Any]:
    """A Linear sample as Linear would send it now: webhookTimestamp set to this moment, signed again."""
    event = sample(name)
    doc = json.loads(event["body"])
    doc["webhookTimestamp"] = int(time.time() * 1000)
    event["body"] = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    event["headers"]["linear-signature"] = hmac.new(
        GENERATE.LINEAR_SECRET.encode(), event["body"].encode(), hashlib.sha256
    ).hexdigest()
    if delivery_id is not None:
        event["headers"]["linear-delivery"] = delivery_id
    return event


def summary(report: Any) -> tuple[Any, ...]:
    [xref] = report.external_references
    return (
        report.color,
        report.description.splitlines()[0],
        [(d.category, d.color, d.description) for d in report.details],
        (
            xref.service_name,
            xref.service_model,
            xref.service_model_ref,
            xref.external_link,
            xref.external_status,
        ),
    )


ISSUE_12 = "https://gitlab.com/acme/platform/checkout/-/issues/12"
ENG_123 = "https://linear.app/acme/issue/ENG-123/export-invoices-as-csv"


@pytest.mark.parametrize("signed", [False, True], ids=["secret-token", "signing-token"])
def test_gitlab_issue_opened_relabelled_in_review_and_closed_makes_three_reports(
    pipeline: Pipeline, signed: bool
) -> None:
    # Given GitLab authenticated by its secret token, or (GITLAB_AUTH_MODE=signature) by its signing token
    if signed:
        pipeline.configure_receiver(GITLAB_AUTH_MODE="signature")
    # When the issue is opened, moved to workflow::in review and closed
    for name in ("gitlab_issue_opened", "gitlab_issue_labeled_in_review", "gitlab_issue_closed"):
        status, answer = pipeline.send(gitlab(name, signed=signed))
        assert (status, answer["status"]) == (202, "queued")
        pipeline.drain()
    # Then Kantata has one report per change, linked to the issue
    assert [summary(r) for r in pipeline.reports()] == [
        (
            "green",
            "Issue acme/platform/checkout#12 created: Payment form rejects valid Maestro cards",
            [
                ("Scope", "green", "opened: Payment form rejects valid Maestro cards"),
                ("Schedule", "green", "Due 2026-11-28"),
                ("Client", "green", "Labels: bug, payments"),
            ],
            ("gitlab", "issue", "acme/platform/checkout#12", ISSUE_12, "opened"),
        ),
        (
            "green",
            "Issue acme/platform/checkout#12 moved from in progress to in review: "
            "Payment form rejects valid Maestro cards",
            [
                ("Scope", "green", "in review: Payment form rejects valid Maestro cards"),
                ("Schedule", "green", "Due 2026-11-28"),
                ("Client", "green", "Labels: bug, payments, workflow::in review"),
            ],
            ("gitlab", "issue", "acme/platform/checkout#12", ISSUE_12, "in review"),
        ),
        (
            "green",
            "Issue acme/platform/checkout#12 closed: Payment form rejects valid Maestro cards",
            [
                ("Scope", "green", "closed: Payment form rejects valid Maestro cards"),
                ("Schedule", "green", "Completed"),
                ("Client", "green", "Labels: bug, payments, workflow::in review"),
            ],
            ("gitlab", "issue", "acme/platform/checkout#12", ISSUE_12, "closed"),
        ),
    ]


def test_gitlab_merge_request_merged_makes_a_merge_request_report(pipeline: Pipeline) -> None:
    assert pipeline.send(gitlab("gitlab_merge_request_merged"))[0] == 202
    pipeline.drain()
    [report] = pipeline.reports()
    assert summary(report) == (
        "green",
        "Merge request acme/platform/checkout!34 merged: Accept Maestro card numbers of 12 to 19 digits",
        [
            ("Scope", "green", "merged: Accept Maestro card numbers of 12 to 19 digits"),
            ("Schedule", "green", "Completed"),
            ("Client", "green", "Labels: bug, payments"),
        ],
        (
            "gitlab",
            "merge_request",
            "acme/platform/checkout!34",
            "https://gitlab.com/acme/platform/checkout/-/merge_requests/34",
            "merged",
        ),
    )
    assert report.description.endswith(
        "kantata-bridge delivery: gitlab:-:6a1c0e52-3f7b-4d2a-9e18-b4c5d6e7f805"
    )


def test_linear_issue_created_started_and_completed_makes_three_reports(pipeline: Pipeline) -> None:
    for name in ("linear_issue_created", "linear_issue_in_progress", "linear_issue_completed"):
        status, answer = pipeline.send(linear(name))
        assert (status, answer["status"]) == (202, "queued")
        pipeline.drain()
    assert [summary(r) for r in pipeline.reports()] == [
        (
            "green",
            "Issue ENG-123 created: Export invoices as CSV",
            [
                ("Scope", "green", "Todo: Export invoices as CSV"),
                ("Schedule", "green", "Due 2026-11-28"),
                ("Client", "green", "Labels: Bug, billing"),
            ],
            ("linear", "issue", "ENG-123", ENG_123, "Todo"),
        ),
        (
            "green",
            "Issue ENG-123 moved to In Progress: Export invoices as CSV",
            [
                ("Scope", "green", "In Progress: Export invoices as CSV"),
                ("Schedule", "green", "Due 2026-11-28"),
                ("Client", "green", "Labels: Bug, billing"),
            ],
            ("linear", "issue", "ENG-123", ENG_123, "In Progress"),
        ),
        (
            "green",
            "Issue ENG-123 moved to Done: Export invoices as CSV",
            [
                ("Scope", "green", "Done: Export invoices as CSV"),
                ("Schedule", "green", "Completed"),
                ("Client", "green", "Labels: Bug, billing"),
            ],
            ("linear", "issue", "ENG-123", ENG_123, "Done"),
        ),
    ]
    assert pipeline.reports()[1].description.splitlines()[1:3] == [
        "Status: In Progress · Priority: High · Due: 2026-11-28",
        f"By Raj Developer · {ENG_123}",
    ]


def _forged_linear(event: dict[str, Any]) -> None:
    event["headers"]["linear-signature"] = hmac.new(
        b"not-the-secret", event["body"].encode(), hashlib.sha256
    ).hexdigest()


@pytest.mark.parametrize(
    ("make", "gitlab_mode", "reason"),
    [
        # GitLab, secret token: missing, guessed
        (lambda: _without(gitlab("gitlab_issue_opened"), "x-gitlab-token"), "shared-token", "missing"),
        (
            lambda: _with(gitlab("gitlab_issue_opened"), "x-gitlab-token", "guessed"),
            "shared-token",
            "mismatch",
        ),
        # GitLab, Standard Webhooks: the committed sample was signed in 2026-11 (stale), a forged signature
        (lambda: sample("gitlab_issue_opened_signed"), "signature", "stale"),
        (
            lambda: _with(gitlab("gitlab_issue_opened", signed=True), "webhook-signature", "v1," + "A" * 44),
            "signature",
            "mismatch",
        ),
        (lambda: gitlab("gitlab_issue_opened"), "signature", "missing"),
        # Linear: the committed sample's signed webhookTimestamp is long past, a forged and a missing signature
        (lambda: sample("linear_issue_created"), "shared-token", "stale"),
        (lambda: _mutated(linear("linear_issue_created"), _forged_linear), "shared-token", "mismatch"),
        (lambda: _without(linear("linear_issue_created"), "linear-signature"), "shared-token", "missing"),
    ],
)
def test_forged_stale_or_unauthenticated_deliveries_are_401_and_nothing_is_queued(
    pipeline: Pipeline, make: Any, gitlab_mode: str, reason: str
) -> None:
    pipeline.configure_receiver(GITLAB_AUTH_MODE=gitlab_mode)
    assert pipeline.send(make()) == (401, {"status": "rejected", "reason": reason})
    assert pipeline.queued() == []
    assert pipeline.reports() == []


def _without(event: dict[str, Any], header: str) -> dict[str, Any]:
    event["headers"].pop(header)
    return event


def _with(event: dict[str, Any], header: str, value: str) -> dict[str, Any]:
    event["headers"][header] = value
    return event


def _mutated(event: dict[str, Any], change: Any) -> dict[str, Any]:
    change(event)
    return event


def test_duplicate_deliveries_make_one_report(pipeline: Pipeline) -> None:
    # Given a GitLab delivery resent with the same Idempotency-Key, and a Linear delivery retried (same
    # Linear-Delivery), each arriving twice
    for _ in range(2):
        assert pipeline.send(gitlab("gitlab_merge_request_merged"))[0] == 202
        assert pipeline.send(linear("linear_issue_created", delivery_id="linear-retried-once"))[0] == 202
    # When the worker drains the queue (one batch), and once more after a redelivery of the same messages
    pipeline.drain()
    for _ in range(2):
        assert pipeline.send(gitlab("gitlab_merge_request_merged"))[0] == 202
    pipeline.drain()
    # Then one report per object
    refs = [r.external_references[0].service_model_ref for r in pipeline.reports()]
    assert sorted(refs) == ["ENG-123", "acme/platform/checkout!34"]


@pytest.mark.parametrize(
    ("newer", "older", "tracker"),
    [
        ("linear_issue_completed", "linear_issue_in_progress", "linear"),
        ("gitlab_issue_closed", "gitlab_issue_labeled_in_review", "gitlab"),
    ],
)
def test_an_older_update_arriving_after_a_newer_one_makes_no_report(
    pipeline: Pipeline, newer: str, older: str, tracker: str
) -> None:
    send = linear if tracker == "linear" else gitlab
    # Given the newer update was reported
    assert pipeline.send(send(newer))[0] == 202
    pipeline.drain()
    # When the older one arrives late (separate deliveries, separate batches)
    assert pipeline.send(send(older))[0] == 202
    pipeline.drain()
    # Then only the newer state is in Kantata, and the late one is recorded as stale
    [report] = pipeline.reports()
    assert report.external_references[0].external_status in {"Done", "closed"}
    outcomes = pipeline.harness.outcomes()
    late = sample(older)["headers"].get("linear-delivery") or sample(older)["headers"]["idempotency-key"]
    recorded = outcomes.get(f"{tracker}:-:{late}")
    assert (recorded.kind.value, recorded.reason.split(":")[0]) == ("skipped", "stale")


def test_an_unsubscribed_gitlab_event_and_a_linear_comment_are_answered_200_and_not_queued(
    pipeline: Pipeline,
) -> None:
    pipeline_event = _with(gitlab("gitlab_issue_opened"), "x-gitlab-event", "Pipeline Hook")
    comment = _with(linear("linear_issue_created"), "linear-event", "Comment")
    assert pipeline.send(pipeline_event) == (200, {"status": "ignored", "event_type": "Pipeline Hook"})
    assert pipeline.send(comment) == (200, {"status": "ignored", "event_type": "Comment"})
    assert pipeline.queued() == []


def test_a_linear_retry_hours_later_is_accepted_and_counted_once(pipeline: Pipeline) -> None:
    # Given a Linear delivery first sent 6 hours ago (its first attempts failed on Linear's side)
    first = sample("linear_issue_created")
    doc = json.loads(first["body"])
    doc["webhookTimestamp"] = int((time.time() - 6 * 3600) * 1000)
    first["body"] = json.dumps(doc, separators=(",", ":"))
    first["headers"]["linear-signature"] = hmac.new(
        GENERATE.LINEAR_SECRET.encode(), first["body"].encode(), hashlib.sha256
    ).hexdigest()
    first["headers"]["linear-delivery"] = str(uuid.uuid4())
    # When Linear's retry arrives with the same signed body and delivery id, twice
    assert pipeline.send(first)[0] == 202
    assert pipeline.send(first)[0] == 202
    pipeline.drain()
    # Then it is accepted (within the default 8-hour tolerance) and makes one report
    assert len(pipeline.reports()) == 1
