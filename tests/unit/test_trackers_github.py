"""GitHub adapter: event type, delivery and hook ids (with fallback), JSON and form-encoded bodies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlencode

import pytest
from kantata_bridge.trackers.base import MalformedDeliveryError
from kantata_bridge.trackers.github import GitHubAdapter, parse_payload
from kantata_bridge.trackers.jira import JiraAdapter

PAYLOAD = (Path(__file__).resolve().parents[2] / "events/payloads/github_issues_opened.json").read_bytes()
BODY = json.dumps(json.loads(PAYLOAD), separators=(",", ":")).encode()


def test_identity_comes_from_the_delivery_headers() -> None:
    headers = {
        "content-type": "application/json",
        "x-github-event": "issues",
        "x-github-delivery": "8c2a4e10-c6ae-11f0-9d3c-2a7b5e1f0c42",
        "x-github-hook-id": "498765432",
    }
    identity = GitHubAdapter().identify(headers, BODY)
    assert (identity.event_type, identity.delivery_id, identity.hook_id, identity.delivery_id_source) == (
        "issues",
        "8c2a4e10-c6ae-11f0-9d3c-2a7b5e1f0c42",
        "498765432",
        "header",
    )


def test_missing_delivery_header_falls_back_to_a_hash_of_the_raw_body() -> None:
    identity = GitHubAdapter().identify({"x-github-event": "issues"}, BODY)
    assert identity.delivery_id == "sha256:" + hashlib.sha256(BODY).hexdigest()
    assert identity.delivery_id_source == "fallback"
    assert identity.hook_id is None
    # Same bytes, same id: a redelivery without the header still deduplicates.
    assert GitHubAdapter().identify({"x-github-event": "issues"}, BODY).delivery_id == identity.delivery_id


def test_missing_event_header_is_malformed() -> None:
    with pytest.raises(MalformedDeliveryError) as err:
        GitHubAdapter().identify({"x-github-delivery": "d"}, BODY)
    assert err.value.reason == "missing_event_type"


def test_form_encoded_body_is_read_from_the_payload_field() -> None:
    form = urlencode({"payload": BODY.decode()}).encode()
    doc = parse_payload(form, "application/x-www-form-urlencoded; charset=utf-8")
    assert doc["issue"]["number"] == 42  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b"not json", "application/json", "not_json"),
        (b"payload=%7Bnot", "application/x-www-form-urlencoded", "not_json"),
        (b"other=1", "application/x-www-form-urlencoded", "bad_form"),
        (b"", "application/x-www-form-urlencoded", "bad_form"),
        (b"payload=%FF%FE", "application/x-www-form-urlencoded", "not_json"),
        (b"\xff=1", "application/x-www-form-urlencoded", "bad_form"),
    ],
)
def test_unreadable_bodies_are_malformed(body: bytes, content_type: str, reason: str) -> None:
    with pytest.raises(MalformedDeliveryError) as err:
        GitHubAdapter().identify({"x-github-event": "issues", "content-type": content_type}, body)
    assert err.value.reason == reason


def test_kept_headers_are_the_documented_signature_and_delivery_headers_only() -> None:
    # docs/receiver.md: signature and delivery headers, user-agent and content-type; never a token header.
    documented = {"content-type", "user-agent", "x-hub-signature-256", "x-hub-signature"}
    for adapter in (GitHubAdapter(), JiraAdapter()):
        assert {"content-type", adapter_signature_header(adapter)} <= set(adapter.kept_headers)
        for name in adapter.kept_headers:
            assert name == name.lower()
            assert name in documented or name.startswith(("x-github-", "x-atlassian-webhook-")), name


def adapter_signature_header(adapter: GitHubAdapter | JiraAdapter) -> str:
    return "x-hub-signature-256" if adapter.name == "github" else "x-hub-signature"
