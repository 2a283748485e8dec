"""The receiver Lambda against SQS, S3 and Secrets Manager (moto, in-process): what a tracker sees and what
the worker gets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from kantata_bridge.envelope import INLINE_BODY_LIMIT, DeliveryEnvelope
from moto import mock_aws

from tests.unit.test_receiver_app import APP, CONTEXT, assert_queued_as_sent, signed_event

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
SECRET_NAME = "kantata-bridge/webhook-secrets"


class Aws(SimpleNamespace):
    sqs: Any
    s3: Any
    secrets: Any
    queue_url: str
    bucket: str

    def messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                return found
            found.extend(batch)

    def call(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = APP.lambda_handler(event, CONTEXT)
        return response["statusCode"], json.loads(response["body"])


def reset_caches() -> None:
    from aws_lambda_powertools.utilities import parameters
    from kantata_bridge.receiver.service import default_receiver

    default_receiver.cache_clear()
    parameters.clear_caches()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        env = Aws(
            sqs=boto3.client("sqs", region_name=REGION),
            s3=boto3.client("s3", region_name=REGION),
            secrets=boto3.client("secretsmanager", region_name=REGION),
            bucket="kantata-bridge-payloads",
        )
        env.queue_url = env.sqs.create_queue(QueueName="kantata-bridge-events")["QueueUrl"]
        env.s3.create_bucket(Bucket=env.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        env.secrets.create_secret(
            Name=SECRET_NAME,
            SecretString=json.dumps(
                {"github": ["github-rotated-in", "github-sample-secret"], "jira": "jira-sample-secret"}
            ),
        )
        monkeypatch.setenv("QUEUE_URL", env.queue_url)
        monkeypatch.setenv("PAYLOAD_BUCKET", env.bucket)
        monkeypatch.setenv("WEBHOOK_SECRETS_NAME", SECRET_NAME)
        reset_caches()
        yield env
        reset_caches()


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events/apigw" / f"{name}.json").read_text())
    return event


def github_event(body: bytes, **headers: str) -> dict[str, Any]:
    """A GitHub ``issues`` delivery of ``body`` signed with the sample secret, base64-encoded by API Gateway."""
    return signed_event("github", body, {"x-github-event": "issues", **headers}, "github-sample-secret")


@pytest.mark.parametrize(
    "name",
    [
        "github_issues_opened",
        "github_issues_opened_form",
        "github_pull_request_closed_merged",
        "jira_issue_updated_done",
    ],
)
def test_genuine_delivery_is_queued_once_with_the_exact_body_and_metadata(aws: Aws, name: str) -> None:
    # Given a signed sample delivery
    event = sample(name)
    # When API Gateway hands it to the receiver
    status, body = aws.call(event)
    # Then it is accepted and exactly one message holds the byte-identical body and the metadata
    assert status == 202
    (message,) = aws.messages()
    envelope = DeliveryEnvelope.from_sqs(message["Body"], message["MessageAttributes"])
    assert body == {"status": "queued", "delivery_id": envelope.delivery_id}
    assert_queued_as_sent(envelope, event)
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    metadata = json.loads(attributes.pop("envelope"))
    assert attributes == {
        "tracker": envelope.tracker,
        "event_type": envelope.event_type,
        "delivery_id": envelope.delivery_id,
    }
    # The message body is the tracker's body as sent (UTF-8 text): not base64, not escaped in JSON
    assert metadata["enc"] == "text"
    assert message["Body"].encode("utf-8") == envelope.body


def test_jira_secret_given_as_a_single_string_verifies(aws: Aws) -> None:
    assert aws.call(sample("jira_issue_created"))[0] == 202


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha1=deadbeef"])
def test_wrong_or_missing_signature_is_401_and_the_queue_stays_empty(aws: Aws, signature: str | None) -> None:
    event = sample("github_issues_opened")
    if signature is None:
        del event["headers"]["x-hub-signature-256"]
    else:
        event["headers"]["x-hub-signature-256"] = signature
    assert aws.call(event)[0] == 401
    assert aws.messages() == []


def test_malformed_genuine_delivery_is_400(aws: Aws) -> None:
    assert aws.call(github_event(b"this is not json"))[0] == 400
    assert aws.messages() == []


def test_body_over_the_size_limit_is_413_and_nothing_is_stored(aws: Aws) -> None:
    body = b'{"pad":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    assert aws.call(github_event(body)) == (413, {"status": "rejected", "reason": "too_large"})
    assert aws.messages() == []
    assert aws.s3.list_objects_v2(Bucket=aws.bucket).get("KeyCount", 0) == 0


def test_body_too_large_for_a_message_goes_to_s3_byte_identical(aws: Aws) -> None:
    doc = {"action": "opened", "issue": {"number": 42, "body": "Safari \u2013 " + "z" * INLINE_BODY_LIMIT}}
    body = json.dumps(doc, ensure_ascii=False).encode()
    status, answer = aws.call(github_event(body, **{"x-github-delivery": "big-one"}))
    assert (status, answer) == (202, {"status": "queued", "delivery_id": "big-one"})
    (message,) = aws.messages()
    envelope = DeliveryEnvelope.from_sqs(message["Body"], message["MessageAttributes"])
    pointer = envelope.body_pointer
    assert pointer is not None
    assert envelope.body is None
    assert (pointer.bucket, pointer.size, pointer.sha256) == (
        aws.bucket,
        len(body),
        hashlib.sha256(body).hexdigest(),
    )
    assert pointer.key.startswith("payloads/github/")
    stored = aws.s3.get_object(Bucket=pointer.bucket, Key=pointer.key)
    assert stored["Body"].read() == body
    assert stored["ServerSideEncryption"] == "AES256"


def test_claim_checked_body_with_an_odd_content_type_is_stored_not_a_500(aws: Aws) -> None:
    # S3 (through http.client) refuses header values with a newline; the receiver keeps only sane ones.
    body = json.dumps({"action": "opened", "pad": "x" * INLINE_BODY_LIMIT}).encode()
    status, _ = aws.call(github_event(body, **{"content-type": "application/json\n"}))
    assert status == 202
    (message,) = aws.messages()
    pointer = DeliveryEnvelope.from_sqs(message["Body"], message["MessageAttributes"]).body_pointer
    assert pointer is not None
    stored = aws.s3.get_object(Bucket=pointer.bucket, Key=pointer.key)
    assert (stored["Body"].read(), stored["ContentType"]) == (body, "application/json")


@pytest.mark.parametrize("tracker", ["bitbucket", "gitlab", "linear"])
def test_unknown_or_not_enabled_tracker_is_404(aws: Aws, tracker: str) -> None:
    # GitLab and Linear are opt-in (ENABLED_TRACKERS); this deployment leaves the default github,jira.
    event = sample("github_issues_opened")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/webhooks/{tracker}"
    event["pathParameters"] = {"tracker": tracker}
    assert aws.call(event) == (404, {"status": "rejected", "reason": "unknown_tracker"})
    assert aws.messages() == []


def test_queue_gone_is_503_so_the_tracker_retries(aws: Aws) -> None:
    aws.sqs.delete_queue(QueueUrl=aws.queue_url)
    assert aws.call(sample("jira_issue_deleted")) == (503, {"status": "error", "reason": "queue_unavailable"})


def test_bucket_gone_is_503_for_a_claim_checked_body(aws: Aws) -> None:
    aws.s3.delete_bucket(Bucket=aws.bucket)
    body = json.dumps({"action": "opened", "pad": "x" * INLINE_BODY_LIMIT}).encode()
    assert aws.call(github_event(body))[0] == 503
    assert aws.messages() == []


def test_missing_secret_is_503_not_a_client_error(aws: Aws) -> None:
    aws.secrets.delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)
    assert aws.call(sample("github_issues_opened")) == (
        503,
        {"status": "error", "reason": "credentials_unavailable"},
    )
    assert aws.messages() == []


def test_secret_is_cached_between_deliveries(aws: Aws) -> None:
    assert aws.call(sample("github_issues_opened"))[0] == 202
    # A rotation is picked up after WEBHOOK_SECRETS_MAX_AGE; within it the cached value is used.
    aws.secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=json.dumps({"github": ["other"]}))
    assert aws.call(sample("github_issues_closed"))[0] == 202
    reset_caches()
    assert aws.call(sample("github_issues_labeled_blocked"))[0] == 401
