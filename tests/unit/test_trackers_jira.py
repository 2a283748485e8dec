"""Jira adapter: event type from the body, delivery id from the header or a stable fallback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kantata_bridge.trackers.base import MalformedDeliveryError
from kantata_bridge.trackers.jira import JiraAdapter

PAYLOADS = Path(__file__).resolve().parents[2] / "events/payloads"


def body_of(name: str, **changes: Any) -> bytes:
    doc = json.loads((PAYLOADS / name).read_text())
    doc.update(changes)
    return json.dumps(doc).encode()


def test_event_type_comes_from_webhook_event_and_id_from_the_identifier_header() -> None:
    identity = JiraAdapter().identify(
        {"x-atlassian-webhook-identifier": "8f3a2b1c-0002"}, body_of("jira_issue_updated_in_progress.json")
    )
    assert (identity.event_type, identity.delivery_id, identity.hook_id) == (
        "jira:issue_updated",
        "8f3a2b1c-0002",
        None,
    )


def test_fallback_id_is_the_same_for_a_retry_and_differs_per_change() -> None:
    adapter = JiraAdapter()
    in_progress = adapter.identify({}, body_of("jira_issue_updated_in_progress.json"))
    again = adapter.identify({}, body_of("jira_issue_updated_in_progress.json"))
    done = adapter.identify({}, body_of("jira_issue_updated_done.json"))
    assert in_progress.delivery_id_source == "fallback"
    assert in_progress.delivery_id == again.delivery_id
    assert in_progress.delivery_id != done.delivery_id


def test_fallback_id_ignores_fields_outside_event_object_and_version() -> None:
    # Automation bodies carry other fields; only (event, issue id, changelog/comment id, timestamp) count.
    a = JiraAdapter().identify({}, body_of("jira_issue_created.json", user=None))
    b = JiraAdapter().identify({}, body_of("jira_issue_created.json"))
    assert a.delivery_id == b.delivery_id


@pytest.mark.parametrize(
    "body",
    [
        b'{"issue": {"id": "1"}}',
        b'{"webhookEvent": 7}',
        b'{"webhookEvent": "  "}',
        b"[]",
        b"<xml/>",
        b'{"webhookEvent": "jira:issue_updated\\u0000"}',
        b'{"webhookEvent": "\\ud800"}',
    ],
)
def test_body_without_webhook_event_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedDeliveryError):
        JiraAdapter().identify({"x-atlassian-webhook-identifier": "x"}, body)
