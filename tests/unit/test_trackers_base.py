"""Signature and token checks shared by the tracker adapters: official vectors, rotation, refusals."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kantata_bridge.trackers.base import (
    MalformedDeliveryError,
    SignatureError,
    fallback_delivery_id,
    header_text,
    parse_json_object,
    verify_hub_signature,
    verify_shared_token,
)
from kantata_bridge.trackers.github import GitHubAdapter
from kantata_bridge.trackers.jira import JiraAdapter

DOCS_SECRET = "It's a Secret to Everybody"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_github_official_test_vector_verifies() -> None:
    # Given GitHub's documented vector (DELIVERY.md)
    headers = {
        "x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    }
    # When / Then: verification passes without raising
    GitHubAdapter().verify_signature(headers, b"Hello, World!", [DOCS_SECRET])


def test_jira_official_test_vector_verifies() -> None:
    headers = {"x-hub-signature": "sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9"}
    JiraAdapter().verify_signature(headers, b"Hello World!", [DOCS_SECRET])


def test_github_vector_fails_for_jira_body_and_vice_versa() -> None:
    # The vectors differ by one comma: a signature covers the exact bytes.
    with pytest.raises(SignatureError) as err:
        GitHubAdapter().verify_signature(
            {
                "x-hub-signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
            },
            b"Hello World!",
            [DOCS_SECRET],
        )
    assert err.value.reason == "mismatch"


def test_any_active_secret_verifies_so_rotation_needs_no_downtime() -> None:
    body = b'{"action":"opened"}'
    signed_with_old = sign("old-secret", body)
    verify_hub_signature(signed_with_old, body, ["new-secret", "old-secret"], "X-Hub-Signature-256")
    with pytest.raises(SignatureError):
        verify_hub_signature(signed_with_old, body, ["new-secret"], "X-Hub-Signature-256")


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "malformed"),
        ("sha256=", "malformed"),
        ("sha1=0a4d55a8d778e5022fab701977c5d840bbc486d0", "unsupported_method"),
        ("md5=abc", "unsupported_method"),
        ("sha256=zz", "mismatch"),
    ],
)
def test_bad_signature_headers_are_refused_with_a_reason(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as err:
        verify_hub_signature(header, b"Hello, World!", [DOCS_SECRET], "X-Hub-Signature-256")
    assert err.value.reason == reason


def test_no_configured_secret_refuses_even_an_empty_signature_match() -> None:
    with pytest.raises(SignatureError) as err:
        verify_hub_signature(sign("", b"x"), b"x", [], "X-Hub-Signature")
    assert err.value.reason == "no_secret"


def test_jira_reads_the_method_from_the_header() -> None:
    body = b'{"webhookEvent":"jira:issue_updated"}'
    sha512 = "sha512=" + hmac.new(b"s", body, hashlib.sha512).hexdigest()
    JiraAdapter().verify_signature({"x-hub-signature": sha512}, body, ["s"])


def test_uppercase_hex_digest_is_accepted() -> None:
    body = b"payload"
    header = "sha256=" + hmac.new(b"s", body, hashlib.sha256).hexdigest().upper()
    verify_hub_signature(header, body, ["s"], "X-Hub-Signature-256")


def test_error_messages_never_contain_the_signature_or_secret() -> None:
    header = sign("wrong-secret", b"body")
    with pytest.raises(SignatureError) as err:
        verify_hub_signature(header, b"body", ["right-secret"], "X-Hub-Signature-256")
    text = str(err.value) + repr(err.value)
    assert header.split("=", 1)[1] not in text
    assert "right-secret" not in text


def test_shared_token_matches_any_active_token_and_refuses_others() -> None:
    verify_shared_token("tok-2", ["tok-1", "tok-2"], "x-bridge-token")
    for given_token, reason in ((None, "missing"), ("", "missing"), ("tok-3", "mismatch")):
        with pytest.raises(SignatureError) as err:
            verify_shared_token(given_token, ["tok-1", "tok-2"], "x-bridge-token")
        assert err.value.reason == reason
        assert "tok-1" not in str(err.value)
    with pytest.raises(SignatureError) as err:
        verify_shared_token("tok-1", [], "x-bridge-token")
    assert err.value.reason == "no_secret"


@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=40))
def test_a_genuine_signature_always_verifies(body: bytes, secret: str) -> None:
    header = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    verify_hub_signature(header, body, [secret], "X-Hub-Signature-256")


@given(body=st.binary(min_size=1, max_size=512), flip=st.integers(min_value=0), secret=st.text(min_size=1))
def test_changing_any_byte_of_the_body_breaks_the_signature(body: bytes, flip: int, secret: str) -> None:
    header = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    index = flip % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(SignatureError):
        verify_hub_signature(header, tampered, [secret], "X-Hub-Signature-256")


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b'"text"', b"\xff\xfe", b"[" * 100_000])
def test_parse_json_object_refuses_anything_but_an_object(body: bytes) -> None:
    with pytest.raises(MalformedDeliveryError) as err:
        parse_json_object(body)
    assert err.value.reason == "not_json"


def test_fallback_delivery_id_is_stable_and_distinguishes_versions() -> None:
    first = fallback_delivery_id("jira:issue_updated", "10012", "10101", 1795183512345)
    assert first == fallback_delivery_id("jira:issue_updated", "10012", "10101", 1795183512345)
    assert first != fallback_delivery_id("jira:issue_updated", "10012", "10102", 1795183512345)
    assert first.startswith("sha256:")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  8c2a4e10-c6ae-11f0  ", "8c2a4e10-c6ae-11f0"),
        ("x" * 256, "x" * 256),
        (None, None),
        ("   ", None),
        ("x" * 257, None),
        ("a\x00b", None),
        ("a\nb", None),
        ("a\ud800b", None),
        ("caf\u00e9", None),
    ],
)
def test_header_text_treats_odd_or_overlong_values_as_missing(
    value: str | None, expected: str | None
) -> None:
    headers = {} if value is None else {"x-github-delivery": value}
    assert header_text(headers, "x-github-delivery") == expected


def test_shared_token_with_lone_surrogates_is_a_mismatch_not_a_crash() -> None:
    with pytest.raises(SignatureError) as err:
        verify_shared_token("tok-1\ud800", ["tok-1"], "x-bridge-token")
    assert err.value.reason == "mismatch"
