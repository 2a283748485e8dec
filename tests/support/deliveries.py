"""Signed webhook deliveries as the trackers send them, built from the raw payloads in events/payloads.

The end-to-end tests sign here, with the documented sample secrets, rather than through the local stack's own
helpers: a signing bug in the code under test must not be able to sign its own test input.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path

PAYLOADS = Path(__file__).resolve().parents[2] / "events" / "payloads"
GITHUB_SECRET = "github-sample-secret"
JIRA_SECRET = "jira-sample-secret"
HOOK_ID = "498765432"

Delivery = tuple[dict[str, str], bytes]


def hub_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC of body>``: GitHub's X-Hub-Signature-256 and Jira's X-Hub-Signature value."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_github(body: bytes, event: str, delivery_id: str | None = None) -> Delivery:
    """``body`` as GitHub delivers it: headers of event ``event``, signed with the sample secret."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/e2e",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": HOOK_ID,
        "X-Hub-Signature-256": hub_signature(GITHUB_SECRET, body),
    }
    return headers, body


def github_delivery(payload: str, event: str, delivery_id: str | None = None) -> Delivery:
    """The payload file ``payload`` (in events/payloads) as a signed GitHub delivery of ``event``."""
    return signed_github((PAYLOADS / payload).read_bytes(), event, delivery_id)


def jira_delivery(payload: str, secret: str = JIRA_SECRET) -> Delivery:
    """The payload file ``payload`` as a Jira delivery with a fresh webhook identifier, signed with ``secret``."""
    body = (PAYLOADS / payload).read_bytes()
    headers = {
        "Content-Type": "application/json; charset=UTF-8",
        "X-Atlassian-Webhook-Identifier": str(uuid.uuid4()),
        "X-Atlassian-Webhook-Flow": "Primary",
        "X-Hub-Signature": hub_signature(secret, body),
    }
    return headers, body
