"""Linear adapter: Linear-Signature, replay protection on the signed webhookTimestamp, event type and ids."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kantata_bridge.receiver.settings import AuthMode, load_settings
from kantata_bridge.trackers.base import MalformedDeliveryError, SignatureError
from kantata_bridge.trackers.linear import DEFAULT_TOLERANCE, LinearAdapter
from kantata_bridge.trackers.registry import ADAPTERS

PAYLOAD = (Path(__file__).resolve().parents[2] / "events/payloads/linear_issue_created.json").read_bytes()
STAMP_MS = json.loads(PAYLOAD)["webhookTimestamp"]
NOW = STAMP_MS / 1000 + 1
SECRET = "lin_wh_sample"


def body_at(stamp_ms: object) -> bytes:
    doc = json.loads(PAYLOAD)
    doc["webhookTimestamp"] = stamp_ms
    return json.dumps(doc, separators=(",", ":")).encode()


BODY = body_at(STAMP_MS)


def signature(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(
    body: bytes,
    sig: str | None,
    *,
    secrets: list[str] | None = None,
    now: float = NOW,
    tolerance: int | None = 60,
) -> None:
    headers = {} if sig is None else {"linear-signature": sig}
    LinearAdapter().verify_signature(
        headers, body, [SECRET] if secrets is None else secrets, now=now, tolerance=tolerance
    )


def test_hex_hmac_of_the_raw_body_without_prefix_verifies_with_any_active_secret() -> None:
    verify(BODY, signature(BODY, "old"), secrets=["new", "old"])
    verify(BODY, signature(BODY).upper())


@pytest.mark.parametrize(
    ("sig", "secrets", "reason"),
    [
        (None, [SECRET], "missing"),
        ("", [SECRET], "missing"),
        ("sha256=" + "0" * 64, [SECRET], "malformed"),  # Linear sends no prefix; GitHub's format is refused
        ("z" * 64, [SECRET], "malformed"),
        ("0" * 63, [SECRET], "malformed"),
        ("0" * 64, [SECRET], "mismatch"),
        ("0" * 64, [], "no_secret"),
    ],
)
def test_bad_signatures_are_refused_with_a_reason(sig: str | None, secrets: list[str], reason: str) -> None:
    with pytest.raises(SignatureError) as err:
        verify(BODY, sig, secrets=secrets)
    assert err.value.reason == reason
    assert SECRET not in str(err.value)


@pytest.mark.parametrize(
    ("now", "tolerance", "reason"),
    [
        (NOW, 60, None),
        (STAMP_MS / 1000 + 61, 60, "stale"),
        (STAMP_MS / 1000 + 59, 60, None),
        (STAMP_MS / 1000 - 61, 60, "future"),
        # The default accepts Linear's last retry (1 min + 1 h + 6 h after the first attempt) ...
        (STAMP_MS / 1000 + 60 + 3600 + 6 * 3600 + 15, DEFAULT_TOLERANCE, None),
        # ... and nothing older than 8 hours
        (STAMP_MS / 1000 + 8 * 3600 + 1, DEFAULT_TOLERANCE, "stale"),
        (STAMP_MS / 1000 + 10**6, 0, None),
        (STAMP_MS / 1000 + 10**6, None, None),
    ],
)
def test_signed_webhook_timestamp_outside_the_tolerance_is_refused(
    now: float, tolerance: int | None, reason: str | None
) -> None:
    if reason is None:
        verify(BODY, signature(BODY), now=now, tolerance=tolerance)
        return
    with pytest.raises(SignatureError) as err:
        verify(BODY, signature(BODY), now=now, tolerance=tolerance)
    assert err.value.reason == reason


@pytest.mark.parametrize("stamp", [None, "1795163400412", True, 10**30, 1.5e300])
def test_signed_body_without_a_usable_timestamp_is_refused_when_checking_freshness(stamp: object) -> None:
    body = body_at(stamp)
    with pytest.raises(SignatureError) as err:
        verify(body, signature(body))
    assert err.value.reason in {"malformed", "stale", "future"}


def test_a_forged_body_with_a_fresh_timestamp_is_a_mismatch() -> None:
    # Changing the timestamp to look fresh breaks the signature: the replay protection cannot be bypassed.
    replay = body_at(int((NOW + 7200) * 1000))
    with pytest.raises(SignatureError) as err:
        verify(replay, signature(BODY), now=NOW + 7200)
    assert err.value.reason == "mismatch"


@given(body=st.binary(max_size=300), secret=st.text(min_size=1, max_size=40))
def test_a_genuine_signature_always_verifies_without_a_tolerance(body: bytes, secret: str) -> None:
    verify(body, signature(body, secret), secrets=[secret], tolerance=None)


def test_defaults_are_signature_mode_with_an_eight_hour_tolerance() -> None:
    environ = {"QUEUE_URL": "q", "WEBHOOK_SECRETS_NAME": "s", "ENABLED_TRACKERS": "linear"}
    linear = load_settings(ADAPTERS, environ).trackers["linear"]
    assert (linear.auth_mode, linear.signature_tolerance, linear.events) == (
        AuthMode.SIGNATURE,
        28800,
        {"Issue"},
    )
    environ["LINEAR_SIGNATURE_TOLERANCE_SECONDS"] = "60"
    assert load_settings(ADAPTERS, environ).trackers["linear"].signature_tolerance == 60


def test_identity_from_linear_event_and_linear_delivery() -> None:
    headers = {"linear-event": "Issue", "linear-delivery": "3e9a1f27-5c4b-4d8e-a0f1-6b2c7d8e9f01"}
    identity = LinearAdapter().identify(headers, BODY)
    assert (identity.event_type, identity.delivery_id, identity.hook_id, identity.delivery_id_source) == (
        "Issue",
        "3e9a1f27-5c4b-4d8e-a0f1-6b2c7d8e9f01",
        None,
        "header",
    )


def test_without_headers_the_body_type_and_a_stable_fallback_id_are_used() -> None:
    first = LinearAdapter().identify({}, BODY)
    assert (first.event_type, first.delivery_id_source) == ("Issue", "fallback")
    assert first.delivery_id.startswith("sha256:")
    assert LinearAdapter().identify({}, BODY).delivery_id == first.delivery_id
    assert LinearAdapter().identify({}, body_at(STAMP_MS + 1)).delivery_id != first.delivery_id


@pytest.mark.parametrize(
    ("body", "reason"), [(b"nope", "not_json"), (b'{"action":"create"}', "missing_event_type")]
)
def test_unidentifiable_delivery_is_malformed(body: bytes, reason: str) -> None:
    with pytest.raises(MalformedDeliveryError) as err:
        LinearAdapter().identify({}, body)
    assert err.value.reason == reason
