"""The receiver Lambda end to end with in-memory queue, store and credentials: every answer it gives.

Given an API Gateway v2 event, when the handler runs, then the status code, the JSON body and what was
queued are what a tracker and the worker rely on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from kantata_bridge.envelope import INLINE_BODY_LIMIT, DeliveryEnvelope
from kantata_bridge.receiver.credentials import StaticCredentials
from kantata_bridge.receiver.errors import EnqueueError
from kantata_bridge.receiver.memory import MemoryDeliveryQueue, MemoryPayloadStore
from kantata_bridge.receiver.service import Receiver
from kantata_bridge.receiver.settings import load_settings
from kantata_bridge.trackers.registry import ADAPTERS

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "github": ["github-sample-secret"],
    "jira": ["jira-sample-secret"],
    "jira_tokens": ["automation-tok"],
}
FORM = "application/x-www-form-urlencoded"
CONTEXT = SimpleNamespace(
    function_name="webhook-receiver",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:webhook-receiver",
    aws_request_id="req-1",
)


def load(name: str, path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


APP = load("receiver_app_unit", "functions/webhook_receiver/app.py")
GENERATE = load("events_generate_unit", "events/generate.py")


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events/apigw" / f"{name}.json").read_text())
    return event


def signed_event(
    tracker: str, body: bytes, headers: dict[str, str], secret: str | None = None
) -> dict[str, Any]:
    all_headers = {"content-type": "application/json", **headers}
    if secret is not None:
        name = "x-hub-signature-256" if tracker == "github" else "x-hub-signature"
        all_headers[name] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    event: dict[str, Any] = GENERATE.apigw_event(tracker, all_headers, "", 1795166100, "rid")
    event["body"] = base64.b64encode(body).decode()
    event["isBase64Encoded"] = True
    return event


class Harness:
    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None, **fakes: Any
    ) -> None:
        environ = {"QUEUE_URL": "memory://queue", "WEBHOOK_SECRETS_NAME": "webhook-secrets", **(env or {})}
        self.queue = fakes.get("queue", MemoryDeliveryQueue())
        self.store = fakes.get("store", MemoryPayloadStore())
        self.receiver = Receiver(
            load_settings(ADAPTERS, environ),
            ADAPTERS,
            StaticCredentials(fakes.get("secrets", SECRETS)),
            self.queue,
            self.store,
            clock=lambda: "2026-11-20T09:15:01.000Z",
        )
        monkeypatch.setattr(APP, "default_receiver", lambda: self.receiver)

    def call(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = APP.lambda_handler(event, CONTEXT)
        return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Harness:
    return Harness(monkeypatch)


@pytest.mark.parametrize(
    "name",
    [
        "github_issues_opened",
        "github_issues_opened_form",
        "github_issues_labeled_blocked",
        "github_issues_closed",
        "github_pull_request_opened",
        "github_pull_request_closed_merged",
        "jira_issue_created",
        "jira_issue_updated_in_progress",
        "jira_issue_updated_done",
        "jira_issue_deleted",
    ],
)
def test_genuine_sample_delivery_is_queued_byte_for_byte_with_metadata(harness: Harness, name: str) -> None:
    event = sample(name)
    status, body = harness.call(event)
    assert status == 202
    (envelope,) = harness.queue.envelopes
    assert body == {"status": "queued", "delivery_id": envelope.delivery_id}
    assert envelope.received_at == "2026-11-20T09:15:01.000Z"
    assert_queued_as_sent(envelope, event)


def assert_queued_as_sent(envelope: DeliveryEnvelope, event: dict[str, Any]) -> None:
    """The envelope holds the event's exact body and the metadata DELIVERY.md names for its tracker."""
    assert envelope.body == event["body"].encode("utf-8")
    headers = event["headers"]
    tracker = event["pathParameters"]["tracker"]
    assert envelope.tracker == tracker
    assert envelope.received_at.endswith("Z")
    assert envelope.content_type == headers["content-type"]
    if tracker == "github":
        assert envelope.event_type == headers["x-github-event"]
        assert envelope.delivery_id == headers["x-github-delivery"]
        assert envelope.hook_id == headers["x-github-hook-id"]
        assert envelope.headers["x-hub-signature-256"] == headers["x-hub-signature-256"]
    elif tracker == "jira":
        assert envelope.event_type == json.loads(event["body"])["webhookEvent"]
        assert envelope.delivery_id == headers["x-atlassian-webhook-identifier"]
        assert envelope.headers["x-hub-signature"] == headers["x-hub-signature"]
    elif tracker == "gitlab":
        assert envelope.event_type == headers["x-gitlab-event"]
        assert envelope.delivery_id == headers["idempotency-key"]
        assert envelope.hook_id is None
        assert envelope.headers["x-gitlab-event-uuid"] == headers["x-gitlab-event-uuid"]
        # The secret token itself is never queued; a signature is kept so a replay can be re-verified.
        assert "x-gitlab-token" not in envelope.headers
        if "webhook-signature" in headers:
            assert envelope.headers["webhook-signature"] == headers["webhook-signature"]
    else:
        assert envelope.event_type == headers["linear-event"]
        assert envelope.delivery_id == headers["linear-delivery"]
        assert envelope.headers["linear-signature"] == headers["linear-signature"]
    assert "host" not in envelope.headers


def test_github_ping_answers_200_and_queues_nothing(harness: Harness) -> None:
    status, body = harness.call(sample("github_ping"))
    assert (status, body["status"]) == (200, "ok")
    assert harness.queue.envelopes == []


def test_unhandled_event_type_is_ignored_with_200(harness: Harness) -> None:
    body = b'{"action":"created","comment":{"id":1}}'
    event = signed_event("github", body, {"x-github-event": "issue_comment"}, "github-sample-secret")
    assert harness.call(event) == (200, {"status": "ignored", "event_type": "issue_comment"})
    assert harness.queue.envelopes == []


def test_handled_event_types_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, env={"GITHUB_EVENTS": "issue_comment"})
    body = b'{"action":"created"}'
    event = signed_event("github", body, {"x-github-event": "issue_comment"}, "github-sample-secret")
    assert h.call(event)[0] == 202
    assert h.call(sample("github_issues_opened"))[0] == 200


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["headers"].pop("x-hub-signature-256"), "missing"),
        (lambda e: e["headers"].update({"x-hub-signature-256": "sha256=" + "0" * 64}), "mismatch"),
        (lambda e: e.update(body=e["body"].replace("Safari", "Chrome")), "mismatch"),
        (lambda e: e["headers"].update({"x-hub-signature-256": "sha1=abc"}), "unsupported_method"),
    ],
)
def test_forged_or_unsigned_github_delivery_is_refused_with_401(
    harness: Harness, mutate: Any, reason: str
) -> None:
    event = sample("github_issues_opened")
    mutate(event)
    assert harness.call(event) == (401, {"status": "rejected", "reason": reason})
    assert harness.queue.envelopes == []


def test_jira_delivery_signed_with_another_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, secrets={"github": ["g"], "jira": ["rotated-away"]})
    assert h.call(sample("jira_issue_created"))[0] == 401
    assert h.queue.envelopes == []


def test_secret_rotation_accepts_old_and_new_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, secrets={"github": ["github-new-secret", "github-sample-secret"]})
    assert h.call(sample("github_issues_opened"))[0] == 202


def test_unknown_tracker_is_404_before_anything_else(harness: Harness) -> None:
    event = signed_event("bitbucket", b"not json", {})
    assert harness.call(event) == (404, {"status": "rejected", "reason": "unknown_tracker"})


def test_disabled_tracker_is_404(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, env={"ENABLED_TRACKERS": "github"})
    assert h.call(sample("jira_issue_created"))[0] == 404


def test_oversize_body_is_413_even_when_unsigned(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, env={"MAX_BODY_BYTES": "1000"})
    event = signed_event("github", b"x" * 1001, {"x-github-event": "issues"})
    assert h.call(event) == (413, {"status": "rejected", "reason": "too_large"})
    assert h.queue.envelopes == []


def test_signature_is_checked_before_the_body_is_parsed(harness: Harness) -> None:
    # Unsigned garbage is a 401 (not a 400): nothing of an unauthenticated body is interpreted.
    event = signed_event("jira", b"{{{ not json", {})
    assert harness.call(event)[0] == 401


@pytest.mark.parametrize(
    ("tracker", "body", "headers", "reason"),
    [
        ("github", b"not json", {"x-github-event": "issues"}, "not_json"),
        ("github", b'{"action":"opened"}', {}, "missing_event_type"),
        ("github", b"other=1", {"x-github-event": "issues", "content-type": FORM}, "bad_form"),
        ("jira", b'{"issue":{"id":"1"}}', {}, "missing_event_type"),
        ("jira", b"[]", {}, "not_json"),
    ],
)
def test_malformed_but_genuine_delivery_is_400(
    harness: Harness, tracker: str, body: bytes, headers: dict[str, str], reason: str
) -> None:
    event = signed_event(tracker, body, headers, f"{tracker}-sample-secret")
    assert harness.call(event) == (400, {"status": "rejected", "reason": reason})
    assert harness.queue.envelopes == []


def test_bad_base64_is_400(harness: Harness) -> None:
    event = sample("github_issues_opened")
    event.update(body="%%%not base64%%%", isBase64Encoded=True)
    assert harness.call(event) == (400, {"status": "rejected", "reason": "bad_base64"})


def test_base64_encoded_body_is_verified_and_queued_as_the_decoded_bytes(harness: Harness) -> None:
    raw = '{"webhookEvent":"jira:issue_updated","issue":{"id":"10012"},"note":"caf\u00e9"}'.encode()
    event = signed_event("jira", raw, {"x-atlassian-webhook-identifier": "abc"}, "jira-sample-secret")
    assert harness.call(event)[0] == 202
    assert harness.queue.envelopes[0].body == raw


def test_body_above_the_inline_limit_is_claim_checked_byte_identical(harness: Harness) -> None:
    doc = {"action": "opened", "issue": {"number": 42, "body": "é" * INLINE_BODY_LIMIT}}
    raw = json.dumps(doc, ensure_ascii=False).encode()
    event = signed_event(
        "github", raw, {"x-github-event": "issues", "x-github-delivery": "big"}, "github-sample-secret"
    )
    assert harness.call(event) == (202, {"status": "queued", "delivery_id": "big"})
    (envelope,) = harness.queue.envelopes
    assert envelope.body is None
    assert envelope.body_pointer is not None
    assert envelope.body_pointer.key.startswith("payloads/github/2026/11/20/")
    assert harness.store.objects[envelope.body_pointer.key] == raw
    assert envelope.body_pointer.size == len(raw)
    assert envelope.body_pointer.sha256 == hashlib.sha256(raw).hexdigest()


def test_large_body_without_a_payload_bucket_is_413(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, store=None)
    h.receiver._payload_store = None
    raw = json.dumps({"action": "opened", "pad": "x" * INLINE_BODY_LIMIT}).encode()
    event = signed_event("github", raw, {"x-github-event": "issues"}, "github-sample-secret")
    assert h.call(event)[0] == 413


def test_queue_failure_is_503_so_the_tracker_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, queue=MemoryDeliveryQueue(fail_with=EnqueueError("queue_unavailable", "down")))
    assert h.call(sample("jira_issue_created")) == (503, {"status": "error", "reason": "queue_unavailable"})


def test_claim_check_store_failure_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, store=MemoryPayloadStore(fail_with=EnqueueError("store_unavailable", "down")))
    raw = json.dumps({"action": "opened", "pad": "x" * INLINE_BODY_LIMIT}).encode()
    event = signed_event("github", raw, {"x-github-event": "issues"}, "github-sample-secret")
    assert h.call(event) == (503, {"status": "error", "reason": "store_unavailable"})
    assert h.queue.envelopes == []


def test_shared_token_mode_accepts_the_token_and_refuses_signatures_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = Harness(monkeypatch, env={"JIRA_AUTH_MODE": "shared-token"})
    body = b'{"webhookEvent":"jira:issue_updated","issue":{"id":"10012"},"timestamp":1}'
    assert h.call(signed_event("jira", body, {"x-bridge-token": "automation-tok"}))[0] == 202
    assert h.call(signed_event("jira", body, {"x-bridge-token": "guess"}))[0] == 401
    assert h.call(signed_event("jira", body, {}, "jira-sample-secret"))[0] == 401
    (envelope,) = h.queue.envelopes
    assert envelope.delivery_id.startswith("sha256:")  # Automation sends no identifier
    assert "x-bridge-token" not in envelope.headers  # the token never travels on


def test_shared_token_header_name_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, env={"JIRA_AUTH_MODE": "shared-token", "JIRA_TOKEN_HEADER": "Authorization"})
    body = b'{"webhookEvent":"jira:issue_created","issue":{"id":"1"}}'
    assert h.call(signed_event("jira", body, {"authorization": "automation-tok"}))[0] == 202


def test_unsigned_deliveries_are_refused_unless_the_tracker_is_explicitly_unsigned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = b'{"webhookEvent":"jira:issue_created","issue":{"id":"1"}}'
    assert Harness(monkeypatch).call(signed_event("jira", body, {}))[0] == 401
    h = Harness(monkeypatch, env={"JIRA_AUTH_MODE": "unsigned"})
    assert h.call(signed_event("jira", body, {}))[0] == 202


def test_misconfiguration_is_a_500_without_details(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUEUE_URL", "")
    from kantata_bridge.receiver.service import default_receiver

    default_receiver.cache_clear()
    monkeypatch.setattr(APP, "default_receiver", default_receiver)
    response = APP.lambda_handler(sample("github_issues_opened"), CONTEXT)
    default_receiver.cache_clear()
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"status": "error", "reason": "configuration"}


def test_unexpected_error_is_a_500_json_body_without_a_stack_trace(harness: Harness) -> None:
    def explode(request: Any) -> Any:
        raise RuntimeError("boom at /secret/path.py line 3")

    harness.receiver.receive = explode  # type: ignore[method-assign]
    response = APP.lambda_handler(sample("github_issues_opened"), CONTEXT)
    assert response["statusCode"] == 500
    assert json.loads(response["body"]) == {"status": "error", "reason": "internal"}
    assert "boom" not in response["body"]
    assert "Traceback" not in response["body"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/elsewhere"),
        ("GET", "/webhooks/github"),
        ("PUT", "/webhooks/github"),
        ("POST", "/webhooks/github/"),
        ("POST", "/webhooks/"),
        ("POST", "/webhooks/github/extra"),
    ],
)
def test_other_routes_and_methods_are_a_json_404(harness: Harness, method: str, path: str) -> None:
    event = sample("github_issues_opened")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    assert harness.call(event) == (404, {"status": "rejected", "reason": "not_found"})
    assert harness.queue.envelopes == []


@pytest.mark.parametrize("tracker", ["GitHub", "GITHUB"])
def test_tracker_name_in_the_path_is_case_insensitive(harness: Harness, tracker: str) -> None:
    event = sample("github_issues_opened")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/webhooks/{tracker}"
    event["pathParameters"] = {"tracker": tracker}
    assert harness.call(event)[0] == 202
    assert harness.queue.envelopes[0].tracker == "github"


def test_header_names_are_matched_case_insensitively(harness: Harness) -> None:
    # Given a delivery whose header names keep the sender's capitals (a direct invoke, another proxy)
    event = sample("github_issues_opened")
    event["headers"] = {
        "-".join(part.capitalize() for part in name.split("-")): value
        for name, value in event["headers"].items()
    }
    # Then it verifies and the envelope keeps the headers under their lower-case names
    assert harness.call(event)[0] == 202
    (envelope,) = harness.queue.envelopes
    assert envelope.delivery_id == "8c2a4e10-c6ae-11f0-9d3c-2a7b5e1f0c42"
    assert envelope.headers["x-github-hook-id"] == "498765432"
    assert envelope.content_type == "application/json"


@pytest.mark.parametrize("odd", ["a\x00b", "a\ud800b", "caf\u00e9", "x" * 257, "  "])
def test_odd_delivery_header_falls_back_to_the_documented_body_hash(harness: Harness, odd: str) -> None:
    # The delivery header is not signed: a replay with an odd one must still queue, under a stable id.
    event = sample("github_issues_opened")
    event["headers"]["x-github-delivery"] = odd
    expected = "sha256:" + hashlib.sha256(event["body"].encode()).hexdigest()
    assert harness.call(event) == (202, {"status": "queued", "delivery_id": expected})
    assert harness.queue.envelopes[0].headers.get("x-github-delivery") is None


@pytest.mark.parametrize("odd", ["iss\x00ues", "iss\ud800", "x" * 101])
def test_odd_event_type_header_is_a_400_not_an_echo(harness: Harness, odd: str) -> None:
    event = sample("github_issues_opened")
    event["headers"]["x-github-event"] = odd
    assert harness.call(event) == (400, {"status": "rejected", "reason": "missing_event_type"})
    assert harness.queue.envelopes == []


def test_body_at_the_inline_limit_with_huge_headers_still_fits_one_sqs_message(harness: Harness) -> None:
    # Given a genuine body just at the inline limit and unsigned headers stuffed with escaped text
    raw = json.dumps({"action": "opened", "pad": "x" * INLINE_BODY_LIMIT})[: INLINE_BODY_LIMIT - 2] + '"}'
    headers = {"x-github-event": "issues", "user-agent": "\u00e9" * 5000, "x-github-hook-id": "\u2603" * 200}
    event = signed_event("github", raw.encode(), headers, "github-sample-secret")
    # When it is queued inline
    assert harness.call(event)[0] == 202
    (envelope,) = harness.queue.envelopes
    assert envelope.body == raw.encode()
    # Then the message stays within SQS's 256 KiB (body + attributes) and the odd headers were dropped
    message = envelope.to_message().encode()
    attributes = (envelope.tracker + envelope.event_type + envelope.delivery_id).encode()
    assert len(message) + len(attributes) + 100 <= 256 * 1024
    assert "user-agent" not in envelope.headers
    assert envelope.hook_id is None


def test_body_that_is_not_text_is_400(harness: Harness) -> None:
    event = sample("github_issues_opened")
    event["body"] = {"action": "opened"}
    assert harness.call(event) == (400, {"status": "rejected", "reason": "bad_text"})


def test_shared_token_that_cannot_be_encoded_is_401_not_500(monkeypatch: pytest.MonkeyPatch) -> None:
    h = Harness(monkeypatch, env={"JIRA_AUTH_MODE": "shared-token"})
    body = b'{"webhookEvent":"jira:issue_created","issue":{"id":"1"}}'
    event = signed_event("jira", body, {"x-bridge-token": "automation-tok\ud800"})
    assert h.call(event) == (401, {"status": "rejected", "reason": "mismatch"})
    assert h.queue.envelopes == []
