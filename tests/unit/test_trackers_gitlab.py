"""GitLab adapter and Standard Webhooks signatures: the spec's test vector, rotation, timestamps, ids."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kantata_bridge.receiver.settings import AuthMode, load_settings
from kantata_bridge.trackers import standard_webhooks
from kantata_bridge.trackers.base import MalformedDeliveryError, SignatureError, verify_shared_token
from kantata_bridge.trackers.gitlab import GitLabAdapter
from kantata_bridge.trackers.registry import ADAPTERS

PAYLOAD = (Path(__file__).resolve().parents[2] / "events/payloads/gitlab_issue_opened.json").read_bytes()
BODY = json.dumps(json.loads(PAYLOAD), separators=(",", ":")).encode()
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
NOW = 1_795_165_338


def signed_headers(secret: str = SECRET, message_id: str = "msg-1", timestamp: int = NOW) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_webhooks.sign(secret, message_id, timestamp, BODY),
    }


def test_standard_webhooks_reference_test_vector_verifies() -> None:
    # Given the vector of the Standard Webhooks reference libraries (secret, id, timestamp, body → signature)
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    # When / Then: it verifies, with the whsec_ prefix and without
    for secret in ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"):
        standard_webhooks.verify(headers, body, [secret], now=1614265330, tolerance=300)
    assert (
        standard_webhooks.sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", headers["webhook-id"], 1614265330, body
        )
        == (headers["webhook-signature"])
    )


def test_any_active_secret_and_any_listed_signature_verifies() -> None:
    # The sender rotating: several signatures in one header; us rotating: several secrets.
    headers = signed_headers(OTHER_SECRET)
    headers["webhook-signature"] = f"v1a,AAAA v1,{'A' * 44} {headers['webhook-signature']}"
    GitLabAdapter().verify_signature(headers, BODY, [SECRET, OTHER_SECRET], now=NOW, tolerance=300)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-signature": None}, "missing"),
        ({"webhook-id": None}, "missing"),
        ({"webhook-timestamp": None}, "missing"),
        ({"webhook-timestamp": "1795165338.5"}, "malformed"),
        ({"webhook-timestamp": "-5"}, "malformed"),
        ({"webhook-signature": "v1a,c2lnbmF0dXJl"}, "unsupported_method"),
        ({"webhook-signature": "v1,not base64!"}, "unsupported_method"),
        ({"webhook-signature": "sha256=abc"}, "unsupported_method"),
        ({"webhook-id": "msg-2"}, "mismatch"),  # the id is signed
        ({"webhook-timestamp": str(NOW - 1)}, "mismatch"),  # so is the timestamp
    ],
)
def test_bad_standard_webhooks_headers_are_refused_with_a_reason(
    change: dict[str, str | None], reason: str
) -> None:
    headers = {**signed_headers(), **change}
    headers = {k: v for k, v in headers.items() if v is not None}
    with pytest.raises(SignatureError) as err:
        GitLabAdapter().verify_signature(headers, BODY, [SECRET], now=NOW, tolerance=300)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("signed_at", "tolerance", "reason"),
    [
        (NOW - 301, 300, "stale"),
        (NOW - 300, 300, None),
        (NOW + 300, 300, None),
        (NOW + 301, 300, "future"),
        (NOW - 10_000, None, None),  # no tolerance: not checked
        (NOW - 10_000, 0, None),
        (NOW + 400, 3600, "future"),  # a wide window for late retries still admits only 5 minutes ahead
    ],
)
def test_signed_timestamp_outside_the_tolerance_is_refused(
    signed_at: int, tolerance: int | None, reason: str | None
) -> None:
    headers = signed_headers(timestamp=signed_at)
    if reason is None:
        GitLabAdapter().verify_signature(headers, BODY, [SECRET], now=NOW, tolerance=tolerance)
        return
    with pytest.raises(SignatureError) as err:
        GitLabAdapter().verify_signature(headers, BODY, [SECRET], now=NOW, tolerance=tolerance)
    assert err.value.reason == reason


def test_a_forged_and_stale_delivery_is_reported_as_forged() -> None:
    headers = signed_headers(OTHER_SECRET, timestamp=NOW - 9999)
    with pytest.raises(SignatureError) as err:
        GitLabAdapter().verify_signature(headers, BODY, [SECRET], now=NOW, tolerance=300)
    assert err.value.reason == "mismatch"


@pytest.mark.parametrize("secrets", [[], ["!!!"], ["whsec_"]])
def test_no_usable_signing_secret_is_no_secret(secrets: list[str]) -> None:
    with pytest.raises(SignatureError) as err:
        GitLabAdapter().verify_signature(signed_headers(), BODY, secrets, now=NOW, tolerance=300)
    assert err.value.reason == "no_secret"


def test_messages_never_carry_the_signature_secret_or_token() -> None:
    headers = signed_headers(OTHER_SECRET)
    with pytest.raises(SignatureError) as err:
        GitLabAdapter().verify_signature(headers, BODY, [SECRET], now=NOW, tolerance=300)
    for text in (headers["webhook-signature"], SECRET, OTHER_SECRET, str(NOW)):
        assert text not in str(err.value)


@given(body=st.binary(max_size=200), message_id=st.text("abc123_-", min_size=1, max_size=30))
def test_a_genuine_standard_webhooks_signature_always_verifies(body: bytes, message_id: str) -> None:
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": str(NOW),
        "webhook-signature": standard_webhooks.sign(SECRET, message_id, NOW, body),
    }
    standard_webhooks.verify(headers, body, [SECRET], now=NOW, tolerance=300)


def test_default_mode_is_the_secret_token_in_x_gitlab_token() -> None:
    # Given GitLab enabled with nothing else configured
    settings = load_settings(
        ADAPTERS, {"QUEUE_URL": "q", "WEBHOOK_SECRETS_NAME": "s", "ENABLED_TRACKERS": "gitlab"}
    )
    gitlab = settings.trackers["gitlab"]
    # Then it checks GitLab's own secret-token header, and a signed mode would allow 300 s
    assert (gitlab.auth_mode, gitlab.token_header, gitlab.signature_tolerance) == (
        AuthMode.SHARED_TOKEN,
        "x-gitlab-token",
        300,
    )
    verify_shared_token("gitlab-token", ["new-token", "gitlab-token"], gitlab.token_header)


@pytest.mark.parametrize(
    ("env", "mode", "tolerance"),
    [
        ({"GITLAB_AUTH_MODE": "signature"}, AuthMode.SIGNATURE, 300),
        (
            {"GITLAB_AUTH_MODE": "signature", "GITLAB_SIGNATURE_TOLERANCE_SECONDS": "600"},
            AuthMode.SIGNATURE,
            600,
        ),
        (
            {"GITLAB_AUTH_MODE": "signature", "GITLAB_SIGNATURE_TOLERANCE_SECONDS": "0"},
            AuthMode.SIGNATURE,
            None,
        ),
    ],
)
def test_signature_mode_and_tolerance_are_configurable(
    env: dict[str, str], mode: AuthMode, tolerance: int | None
) -> None:
    environ = {"QUEUE_URL": "q", "WEBHOOK_SECRETS_NAME": "s", "ENABLED_TRACKERS": "github,gitlab", **env}
    gitlab = load_settings(ADAPTERS, environ).trackers["gitlab"]
    assert (gitlab.auth_mode, gitlab.signature_tolerance) == (mode, tolerance)


@pytest.mark.parametrize(
    ("headers", "delivery_id"),
    [
        ({"idempotency-key": "idem-1", "x-gitlab-event-uuid": "uuid-1"}, "idem-1"),
        ({"x-gitlab-event-uuid": "uuid-1"}, "uuid-1"),
        ({"idempotency-key": "bad\nvalue", "x-gitlab-event-uuid": "uuid-1"}, "uuid-1"),
    ],
)
def test_delivery_id_is_the_idempotency_key_else_the_event_uuid(
    headers: dict[str, str], delivery_id: str
) -> None:
    identity = GitLabAdapter().identify({"x-gitlab-event": "Issue Hook", **headers}, BODY)
    assert (identity.event_type, identity.delivery_id, identity.delivery_id_source) == (
        "Issue Hook",
        delivery_id,
        "header",
    )
    assert identity.hook_id is None


def test_fallback_id_is_stable_per_object_version_and_action() -> None:
    def identify(**attrs: object) -> str:
        doc = json.loads(BODY)
        doc["object_attributes"].update(attrs)
        doc["user"]["name"] = f"anyone {len(attrs)}"  # not part of the id
        return (
            GitLabAdapter().identify({"x-gitlab-event": "Issue Hook"}, json.dumps(doc).encode()).delivery_id
        )

    first = identify()
    assert first.startswith("sha256:")
    assert identify() == first
    assert identify(updated_at="2026-11-20T09:05:00Z") != first
    assert identify(action="update") != first
    source = GitLabAdapter().identify({"x-gitlab-event": "Issue Hook"}, BODY).delivery_id_source
    assert source == "fallback"


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        ({}, BODY, "missing_event_type"),
        ({"x-gitlab-event": "Issue\x00Hook"}, BODY, "missing_event_type"),
        ({"x-gitlab-event": "Issue Hook"}, b"[]", "not_json"),
        ({"x-gitlab-event": "Issue Hook"}, b"\xff", "not_json"),
    ],
)
def test_unidentifiable_delivery_is_malformed(headers: dict[str, str], body: bytes, reason: str) -> None:
    with pytest.raises(MalformedDeliveryError) as err:
        GitLabAdapter().identify(headers, body)
    assert err.value.reason == reason


def test_the_secret_token_is_never_kept_in_the_envelope_headers() -> None:
    assert "x-gitlab-token" not in GitLabAdapter().kept_headers
