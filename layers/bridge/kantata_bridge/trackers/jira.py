"""Jira Cloud webhook deliveries: signature (admin webhooks), event type, delivery id.

Facts (see docs/receiver.md and DELIVERY.md): admin webhooks with a secret send
``X-Hub-Signature: <method>=<hex>`` (method read from the header; sha256 today) over the raw body. The
event type is the body's ``webhookEvent`` (no header). The delivery id is
``X-Atlassian-Webhook-Identifier``, the same across retries. Jira Automation's "Send web request" cannot
sign and sends no identifier: it is authenticated by a shared-token header (see the receiver settings)
and gets the fallback id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from kantata_bridge.trackers.base import (
    DeliveryIdentity,
    Headers,
    MalformedDeliveryError,
    fallback_delivery_id,
    header_text,
    parse_json_object,
    verify_hub_signature,
)

SIGNATURE_HEADER: Final = "x-hub-signature"
DELIVERY_HEADER: Final = "x-atlassian-webhook-identifier"


class JiraAdapter:
    """Jira Cloud's delivery conventions (see :class:`kantata_bridge.trackers.base.TrackerAdapter`)."""

    name: Final = "jira"
    default_events: Final = frozenset({"jira:issue_created", "jira:issue_updated", "jira:issue_deleted"})
    ping_events: Final = frozenset[str]()
    kept_headers: Final = (
        "content-type",
        "user-agent",
        DELIVERY_HEADER,
        "x-atlassian-webhook-retry",
        "x-atlassian-webhook-flow",
        SIGNATURE_HEADER,
    )

    default_auth_mode: Final = "signature"
    default_token_header: Final = None
    default_signature_tolerance: Final = None  # no timestamp is signed

    def verify_signature(
        self,
        headers: Headers,
        body: bytes,
        secrets: Sequence[str],
        *,
        now: float | None = None,
        tolerance: int | None = None,
    ) -> None:
        """Check ``X-Hub-Signature`` (``<method>=<hex>``, HMAC of the raw body). Raises SignatureError."""
        verify_hub_signature(headers.get(SIGNATURE_HEADER), body, secrets, "X-Hub-Signature")

    def identify(self, headers: Headers, body: bytes) -> DeliveryIdentity:
        """Event type from the body's ``webhookEvent``; delivery id from ``X-Atlassian-Webhook-Identifier``.

        Without the header the id is a hash of (``webhookEvent``, ``issue.id``, ``changelog.id`` or
        ``comment.id``, ``timestamp``). Raises MalformedDeliveryError when the body is not a JSON object or
        has no ``webhookEvent`` string.
        """
        doc = parse_json_object(body)
        event_type = doc.get("webhookEvent")
        event_type = event_type.strip() if isinstance(event_type, str) else ""
        # Printable, short text only: it becomes an SQS message attribute and a log field.
        if not event_type or len(event_type) > 100 or not event_type.isprintable():
            raise MalformedDeliveryError("missing_event_type", "body has no 'webhookEvent' string")
        delivery_id = header_text(headers, DELIVERY_HEADER)
        source = "header"
        if delivery_id is None:
            delivery_id = fallback_delivery_id(
                event_type,
                _nested(doc, "issue", "id"),
                _nested(doc, "changelog", "id") or _nested(doc, "comment", "id"),
                doc.get("timestamp"),
            )
            source = "fallback"
        return DeliveryIdentity(event_type=event_type, delivery_id=delivery_id, delivery_id_source=source)


def _nested(doc: dict[str, Any], outer: str, inner: str) -> Any:
    value = doc.get(outer)
    return value.get(inner) if isinstance(value, dict) else None
