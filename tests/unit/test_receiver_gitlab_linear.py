"""The receiver Lambda with GitLab and Linear enabled (in-memory queue and credentials, a fixed clock).

Given a sample API Gateway event from events/apigw (signed with the documented sample secrets), when the
handler runs, then a genuine delivery is queued byte for byte, and a forged, stale or unauthenticated one is
answered 401 with nothing queued.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kantata_bridge.receiver.credentials import StaticCredentials
from kantata_bridge.receiver.memory import MemoryDeliveryQueue, MemoryPayloadStore
from kantata_bridge.receiver.service import Receiver
from kantata_bridge.receiver.settings import load_settings
from kantata_bridge.trackers.registry import ADAPTERS

from tests.support.logs import bridge_log_lines
from tests.unit.test_receiver_app import APP, CONTEXT, GENERATE, assert_queued_as_sent, sample

SECRETS = {
    "github": ["github-sample-secret"],
    "gitlab": [GENERATE.GITLAB_SIGNING_SECRET],
    "gitlab_tokens": ["gitlab-rotated-in", GENERATE.GITLAB_TOKEN],
    "linear": [GENERATE.LINEAR_SECRET],
}


def signed_at(event: dict[str, Any]) -> float:
    """When the sample was signed (epoch seconds): the clock these tests run at."""
    headers = event["headers"]
    if "webhook-timestamp" in headers:
        return float(headers["webhook-timestamp"])
    stamp: float = json.loads(event["body"])["webhookTimestamp"] / 1000
    return stamp


class Harness:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None, now: float = 0.0):
        environ = {
            "QUEUE_URL": "memory://queue",
            "WEBHOOK_SECRETS_NAME": "webhook-secrets",
            "ENABLED_TRACKERS": "github,gitlab,linear",
            **(env or {}),
        }
        self.now = now
        self.queue = MemoryDeliveryQueue()
        self.receiver = Receiver(
            load_settings(ADAPTERS, environ),
            ADAPTERS,
            StaticCredentials(SECRETS),
            self.queue,
            MemoryPayloadStore(),
            clock=lambda: "2026-11-20T09:15:01.000Z",
            now=lambda: self.now,
        )
        monkeypatch.setattr(APP, "default_receiver", lambda: self.receiver)

    def call(self, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        response = APP.lambda_handler(event, CONTEXT)
        return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(
    ("name", "env"),
    [
        ("gitlab_issue_opened", {}),
        ("gitlab_issue_labeled_in_review", {}),
        ("gitlab_issue_closed", {}),
        ("gitlab_work_item_task_in_progress", {}),
        ("gitlab_merge_request_merged", {}),
        ("gitlab_issue_opened_signed", {"GITLAB_AUTH_MODE": "signature"}),
        ("linear_issue_created", {}),
        ("linear_issue_in_progress", {}),
        ("linear_issue_completed", {}),
        ("linear_issue_removed", {}),
    ],
)
def test_genuine_sample_delivery_is_queued_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch, name: str, env: dict[str, str]
) -> None:
    # Given a receiver whose clock reads the moment the sample was sent
    event = sample(name)
    harness = Harness(monkeypatch, env, now=signed_at(event) + 2)
    # When the delivery arrives
    status, body = harness.call(event)
    # Then it is queued as sent
    assert status == 202
    (envelope,) = harness.queue.envelopes
    assert body == {"status": "queued", "delivery_id": envelope.delivery_id}
    assert_queued_as_sent(envelope, event)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["headers"].pop("x-gitlab-token"), "missing"),
        (lambda e: e["headers"].update({"x-gitlab-token": "guessed-token"}), "mismatch"),
        (
            lambda e: (
                e["headers"].update({"x-bridge-token": "gitlab-sample-token"})
                or e["headers"].pop("x-gitlab-token")
            ),
            "missing",
        ),
    ],
)
def test_gitlab_without_its_secret_token_is_refused_with_401(
    monkeypatch: pytest.MonkeyPatch, mutate: Any, reason: str
) -> None:
    harness = Harness(monkeypatch)
    event = sample("gitlab_issue_opened")
    mutate(event)
    assert harness.call(event) == (401, {"status": "rejected", "reason": reason})
    assert harness.queue.envelopes == []


def test_gitlab_token_mode_does_not_look_at_signatures_and_signature_mode_not_at_tokens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token_only = sample("gitlab_issue_opened")
    signed_only = sample("gitlab_issue_opened_signed")
    in_token_mode = Harness(monkeypatch, now=signed_at(signed_only))
    assert in_token_mode.call(signed_only) == (401, {"status": "rejected", "reason": "missing"})
    in_signature_mode = Harness(monkeypatch, {"GITLAB_AUTH_MODE": "signature"}, now=signed_at(signed_only))
    assert in_signature_mode.call(token_only) == (401, {"status": "rejected", "reason": "missing"})
    assert in_token_mode.queue.envelopes == in_signature_mode.queue.envelopes == []


@pytest.mark.parametrize(
    ("name", "env", "late_by", "reason"),
    [
        ("gitlab_issue_opened_signed", {"GITLAB_AUTH_MODE": "signature"}, 301, "stale"),
        ("gitlab_issue_opened_signed", {"GITLAB_AUTH_MODE": "signature"}, -301, "future"),
        ("linear_issue_created", {}, 8 * 3600 + 1, "stale"),
        ("linear_issue_created", {"LINEAR_SIGNATURE_TOLERANCE_SECONDS": "60"}, 61, "stale"),
    ],
)
def test_stale_or_future_signed_timestamp_is_refused_with_401(
    monkeypatch: pytest.MonkeyPatch, name: str, env: dict[str, str], late_by: int, reason: str
) -> None:
    event = sample(name)
    harness = Harness(monkeypatch, {"GITLAB_AUTH_MODE": "signature", **env}, now=signed_at(event) + late_by)
    assert harness.call(event) == (401, {"status": "rejected", "reason": reason})
    assert harness.queue.envelopes == []


def test_linear_retry_hours_later_with_the_same_signed_body_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Linear's last retry comes 1 min + 1 h + 6 h after the first attempt, with the first attempt's body.
    event = sample("linear_issue_created")
    harness = Harness(monkeypatch, now=signed_at(event) + 60 + 3600 + 6 * 3600 + 15)
    assert harness.call(event)[0] == 202


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda e: e["headers"].pop("linear-signature"), "missing"),
        (lambda e: e["headers"].update({"linear-signature": "0" * 64}), "mismatch"),
        (lambda e: e.update(body=e["body"].replace("CSV", "PDF")), "mismatch"),
        # A replay made to look fresh: the timestamp is inside the signed body.
        (
            lambda e: e.update(
                body=e["body"].replace('"webhookTimestamp":1795163400412', '"webhookTimestamp":1795199999000')
            ),
            "mismatch",
        ),
    ],
)
def test_forged_linear_delivery_is_refused_with_401(
    monkeypatch: pytest.MonkeyPatch, mutate: Any, reason: str
) -> None:
    event = sample("linear_issue_created")
    harness = Harness(monkeypatch, now=signed_at(event))
    mutate(event)
    assert harness.call(event) == (401, {"status": "rejected", "reason": reason})
    assert harness.queue.envelopes == []


def test_forged_gitlab_signature_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    event = sample("gitlab_issue_opened_signed")
    event["body"] = event["body"].replace("Maestro", "Visa")
    harness = Harness(monkeypatch, {"GITLAB_AUTH_MODE": "signature"}, now=signed_at(event))
    assert harness.call(event) == (401, {"status": "rejected", "reason": "mismatch"})
    assert harness.queue.envelopes == []


@pytest.mark.parametrize(
    ("name", "header", "value"),
    [
        ("gitlab_issue_opened", "x-gitlab-event", "Pipeline Hook"),
        ("gitlab_issue_opened", "x-gitlab-event", "Note Hook"),
        ("linear_issue_created", "linear-event", "Comment"),
    ],
)
def test_event_types_not_subscribed_are_answered_200_ignored(
    monkeypatch: pytest.MonkeyPatch, name: str, header: str, value: str
) -> None:
    event = sample(name)
    event["headers"][header] = value  # not signed by either tracker: a header, not the body
    harness = Harness(monkeypatch, now=signed_at(event) if name.startswith("linear") else 0.0)
    assert harness.call(event) == (200, {"status": "ignored", "event_type": value})
    assert harness.queue.envelopes == []


def test_gitlab_and_linear_are_not_served_unless_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, {"ENABLED_TRACKERS": "github,jira"})
    for name in ("gitlab_issue_opened", "linear_issue_created"):
        assert harness.call(sample(name)) == (404, {"status": "rejected", "reason": "unknown_tracker"})
    assert harness.queue.envelopes == []


def test_no_secret_token_or_signature_reaches_a_log_line(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, now=signed_at(sample("linear_issue_created")))
    with bridge_log_lines() as lines:
        for name in ("gitlab_issue_opened", "linear_issue_created"):
            assert harness.call(sample(name))[0] == 202
            forged = sample(name)
            forged["headers"].pop("x-gitlab-token", None)
            forged["headers"]["linear-signature"] = "f" * 64
            assert harness.call(forged)[0] == 401
    logged = lines.getvalue()
    assert "delivery queued" in logged
    assert "delivery refused" in logged
    signature = sample("linear_issue_created")["headers"]["linear-signature"]
    for secret in (GENERATE.GITLAB_TOKEN, GENERATE.LINEAR_SECRET, signature):
        assert secret not in logged
