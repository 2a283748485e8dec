"""The delivery envelope carries a webhook body byte for byte between receiver and worker."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kantata_bridge.envelope import BodyPointer, DeliveryEnvelope, EnvelopeError


def _envelope(**overrides: object) -> DeliveryEnvelope:
    fields: dict[str, object] = {
        "tracker": "github",
        "event_type": "issues",
        "delivery_id": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "hook_id": "123",
        "received_at": "2026-11-24T12:00:00Z",
        "content_type": "application/json",
        "headers": {"x-hub-signature-256": "sha256=abc"},
        "body": b'{"action":"opened"}',
    }
    fields.update(overrides)
    return DeliveryEnvelope(**fields)  # type: ignore[arg-type]


@given(st.binary(max_size=4096))
def test_any_body_bytes_survive_the_round_trip(body: bytes) -> None:
    envelope = _envelope(body=body)
    assert DeliveryEnvelope.from_message(envelope.to_message()) == envelope


def test_claim_checked_envelope_keeps_the_pointer_and_no_body() -> None:
    pointer = BodyPointer(bucket="payloads", key="payloads/github/x", size=300_000, sha256="ab" * 32)
    envelope = _envelope(body=None, body_pointer=pointer)

    parsed = DeliveryEnvelope.from_message(envelope.to_message())

    assert parsed.body is None
    assert parsed.body_pointer == pointer
    assert parsed.with_body(b"x").body == b"x"
    assert parsed.with_body(b"x").body_pointer is None


def test_dedupe_key_combines_tracker_hook_and_delivery_id() -> None:
    assert _envelope().dedupe_key == "github:123:72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert _envelope(tracker="jira", hook_id=None, delivery_id="d1").dedupe_key == "jira:-:d1"


@pytest.mark.parametrize(
    ("message", "complaint"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"v": 99}', "unsupported envelope version"),
        ('{"v": 1, "tracker": "github"}', "'event_type'"),
        (
            '{"v":1,"tracker":"g","event_type":"e","delivery_id":"d","received_at":"t","body_b64":"***"}',
            "not valid base64",
        ),
        ('{"v":1,"tracker":"g","event_type":"e","delivery_id":"d","received_at":"t"}', "neither"),
        (
            '{"v":1,"tracker":"g","event_type":"e","delivery_id":"d","received_at":"t","body_ref":{"bucket":"b"}}',
            "incomplete",
        ),
    ],
)
def test_a_message_that_is_not_an_envelope_is_refused_with_a_reason(message: str, complaint: str) -> None:
    with pytest.raises(EnvelopeError, match=complaint):
        DeliveryEnvelope.from_message(message)


def test_an_envelope_without_body_or_pointer_cannot_be_queued() -> None:
    with pytest.raises(EnvelopeError):
        _envelope(body=None).to_message()


def test_message_is_compact_json_with_the_metadata_readable() -> None:
    doc = json.loads(_envelope().to_message())
    assert doc["tracker"] == "github"
    assert doc["delivery_id"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert doc["body_b64"] == "eyJhY3Rpb24iOiJvcGVuZWQifQ=="
