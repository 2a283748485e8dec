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


# ---------------------------------------------------------------------- the v2 wire form (body as is)


def _lambda_shape(attributes: dict[str, dict[str, str]]) -> dict[str, dict[str, object]]:
    """Message attributes as Lambda's SQS event carries them (``stringValue``), not as boto3 sends them."""
    return {
        name: {
            "stringValue": a["StringValue"],
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
        for name, a in attributes.items()
    }


@given(st.binary(max_size=4096), st.booleans())
def test_any_body_bytes_survive_the_sqs_wire_form(body: bytes, lambda_shape: bool) -> None:
    envelope = _envelope(body=body, origin="reconciled" if lambda_shape else None)
    text, attributes = envelope.to_sqs()
    assert text  # SQS refuses an empty message body
    shaped = _lambda_shape(attributes) if lambda_shape else attributes
    assert DeliveryEnvelope.from_sqs(text, shaped) == envelope


@pytest.mark.parametrize(
    "body",
    [
        b'{"action":"opened","title":"Checkout \\"quoted\\" fails"}',
        '{"title":"Caf\u00e9 \u2014 \U0001f600"}'.encode(),
        b"payload=%7B%22action%22%3A%22opened%22%7D",
        b'{"a":1}\r\n\t',
    ],
)
def test_a_text_body_is_the_message_body_as_is(body: bytes) -> None:
    # Given a UTF-8 body SQS can carry
    text, attributes = _envelope(body=body).to_sqs()
    # Then the message body is that text, neither base64-encoded nor escaped inside a JSON document
    assert text.encode("utf-8") == body
    assert json.loads(attributes["envelope"]["StringValue"])["enc"] == "text"


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe binary", b'{"a":"\x00"}', b'{"a":"\x1b[31m"}', "\ufffe".encode(), "\uffff".encode(), b""],
)
def test_a_body_sqs_cannot_carry_as_text_is_base64_encoded(body: bytes) -> None:
    text, attributes = _envelope(body=body).to_sqs()
    assert json.loads(attributes["envelope"]["StringValue"])["enc"] == "base64"
    assert DeliveryEnvelope.from_sqs(text, attributes).body == body


def test_claim_checked_body_travels_as_a_pointer_in_the_wire_form() -> None:
    pointer = BodyPointer(bucket="payloads", key="payloads/github/x", size=300_000, sha256="ab" * 32)
    envelope = _envelope(body=None, body_pointer=pointer)
    text, attributes = envelope.to_sqs()
    assert json.loads(attributes["envelope"]["StringValue"])["enc"] == "s3"
    assert DeliveryEnvelope.from_sqs(text, attributes) == envelope


def test_a_message_queued_by_an_earlier_version_is_still_read() -> None:
    # Given a v1 message (the whole envelope in the body, no envelope attribute), as queued before v2
    envelope = _envelope()
    old = envelope.to_message()
    # Then the worker's reader takes it, with or without the summary attributes the old receiver also sent
    assert DeliveryEnvelope.from_sqs(old, None) == envelope
    summary = {"tracker": {"stringValue": "github", "dataType": "String"}}
    assert DeliveryEnvelope.from_sqs(old, summary) == envelope


_GOOD_META = '{"v":2,"received_at":"t","headers":{},"enc":"text"}'


def _attrs(meta: str | None, **summary: str) -> dict[str, dict[str, str]]:
    values = {"tracker": "github", "event_type": "issues", "delivery_id": "d", **summary}
    out = {k: {"StringValue": v, "DataType": "String"} for k, v in values.items() if v}
    if meta is not None:
        out["envelope"] = {"StringValue": meta, "DataType": "String"}
    return out


@pytest.mark.parametrize(
    ("body", "attributes", "complaint"),
    [
        ("x", _attrs("not json"), "not JSON"),
        ("x", _attrs('{"v":3}'), "not a version 2 envelope"),
        ("x", _attrs('{"v":2,"headers":{},"enc":"text"}'), "'received_at'"),
        ("x", _attrs('{"v":2,"received_at":"t","headers":[],"enc":"text"}'), "'headers'"),
        ("x", _attrs('{"v":2,"received_at":"t","headers":{},"enc":"rot13"}'), "unknown body encoding"),
        ("***", _attrs('{"v":2,"received_at":"t","headers":{},"enc":"base64"}'), "not valid base64"),
        ("{}", _attrs('{"v":2,"received_at":"t","headers":{},"enc":"s3"}'), "incomplete"),
        ("nope", _attrs('{"v":2,"received_at":"t","headers":{},"enc":"s3"}'), "not a claim-check pointer"),
        ("x", _attrs(_GOOD_META, delivery_id=""), "'delivery_id'"),
        ("x", {"envelope": {"BinaryValue": b"x", "DataType": "Binary"}}, "not a string"),
    ],
)
def test_a_wire_message_that_is_not_an_envelope_is_refused_with_a_reason(
    body: str, attributes: dict[str, dict[str, object]], complaint: str
) -> None:
    with pytest.raises(EnvelopeError, match=complaint):
        DeliveryEnvelope.from_sqs(body, attributes)
