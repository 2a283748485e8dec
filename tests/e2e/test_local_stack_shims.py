"""The local stand-ins for AWS's managed parts keep the contracts the real handlers rely on.

- the API Gateway-shaped endpoint builds HTTP API payload-2.0 events from real HTTP requests;
- the SQS poller feeds Lambda-shaped batches and honours partial batch responses.
Stand-in handlers record what they were given, so these tests pin the shapes, not the bridge's logic.
"""

from __future__ import annotations

import base64
import json
import socket

import boto3
import pytest
import requests
from kantata_bridge_dev.apigw import MAX_BODY_BYTES, ApiGatewayShim
from kantata_bridge_dev.poller import SqsPoller
from moto import mock_aws

pytestmark = pytest.mark.e2e


@pytest.fixture
def echo():
    seen: list[dict] = []

    def handler(event, context):
        seen.append(event)
        assert context.get_remaining_time_in_millis() > 0
        return {"statusCode": 202, "headers": {"x-echo": "yes"}, "body": json.dumps({"ok": True})}

    shim = ApiGatewayShim(handler).start()
    try:
        yield shim, seen
    finally:
        shim.stop()


def test_text_delivery_becomes_a_payload_v2_event_with_lower_cased_headers(echo):
    shim, seen = echo
    # Given a JSON delivery with mixed-case and repeated headers
    with socket.create_connection(("127.0.0.1", shim.port)) as conn:
        body = b'{"a":"\xc3\xa9"}'
        conn.sendall(
            b"POST /webhooks/github?x=1 HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\n"
            b"X-GitHub-Event: issues\r\nX-Multi: one\r\nX-Multi: two\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        answer = conn.makefile("rb").read()
    # Then the handler gets the HTTP API v2 shape and its answer goes back to the client
    assert answer.startswith(b"HTTP/1.1 202")
    assert b"x-echo: yes" in answer.lower()
    (event,) = seen
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /webhooks/{tracker}"
    assert event["rawPath"] == "/webhooks/github"
    assert event["rawQueryString"] == "x=1"
    assert event["pathParameters"] == {"tracker": "github"}
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["stage"] == "$default"
    assert event["headers"]["x-github-event"] == "issues"
    assert event["headers"]["x-multi"] == "one,two"
    assert event["isBase64Encoded"] is False
    assert event["body"].encode("utf-8") == body


def test_binary_body_is_base64_encoded_byte_for_byte(echo):
    shim, seen = echo
    body = bytes(range(256))
    requests.post(
        shim.webhook_url("jira"), data=body, headers={"Content-Type": "application/octet-stream"}, timeout=10
    )
    (event,) = seen
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_unknown_routes_and_methods_answer_404_without_calling_the_function(echo):
    shim, seen = echo
    assert requests.post(shim.url + "/webhooks/github/extra", data=b"{}", timeout=10).status_code == 404
    assert requests.get(shim.webhook_url("github"), timeout=10).status_code == 404
    assert seen == []


def test_body_over_the_gateway_limit_answers_413_without_calling_the_function(echo):
    shim, seen = echo
    response = requests.post(shim.webhook_url("github"), data=b"x" * (MAX_BODY_BYTES + 1), timeout=30)
    assert response.status_code == 413
    assert seen == []


def test_function_crash_answers_500_without_a_traceback():
    def crash(event, context):
        raise RuntimeError("secret detail")

    shim = ApiGatewayShim(crash).start()
    try:
        response = requests.post(shim.webhook_url("github"), data=b"{}", timeout=10)
    finally:
        shim.stop()
    assert response.status_code == 500
    assert response.json() == {"message": "Internal Server Error"}
    assert "secret detail" not in response.text


@mock_aws
def test_poller_deletes_successes_and_leaves_reported_failures_for_redelivery():
    # Given a queue with two messages and a worker that fails one of them
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.send_message(
        QueueUrl=url,
        MessageBody="ok",
        MessageAttributes={"tracker": {"DataType": "String", "StringValue": "jira"}},
    )
    sqs.send_message(QueueUrl=url, MessageBody="fail")
    batches: list[dict] = []

    def worker(event, context):
        batches.append(event)
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"
            ]
        }

    poller = SqsPoller(sqs=sqs, queue_url=url, queue_arn=arn, handler=worker, wait_seconds=0)
    # When batches are polled until the worker has seen both messages (moto may split them; bounded)
    for _ in range(5):
        poller.poll_once()
        if {r["body"] for b in batches for r in b["Records"]} == {"ok", "fail"}:
            break
    # Then the worker saw Lambda's SQS record shape
    record = next(r for b in batches for r in b["Records"] if r["body"] == "ok")
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["tracker"]["stringValue"] == "jira"
    # And only the failed message is still in the queue, now received a second time
    again = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in again] == ["fail"]
    assert int(again[0]["Attributes"]["ApproximateReceiveCount"]) >= 2
