"""GitHub webhook deliveries (github.com, GHEC, GHES): signature, event type, delivery id.

Facts (see docs/receiver.md and DELIVERY.md): ``X-Hub-Signature-256: sha256=<hex>`` over the raw body,
event type in ``X-GitHub-Event``, delivery id in ``X-GitHub-Delivery`` (shared by every hook subscribed to
the event, hence the hook id ``X-GitHub-Hook-ID`` beside it). The body is JSON, or form-encoded with the
JSON in a ``payload`` field when the hook is configured that way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qs

from kantata_bridge.trackers.base import (
    DeliveryIdentity,
    Headers,
    MalformedDeliveryError,
    header_text,
    parse_json_object,
    verify_hub_signature,
)

SIGNATURE_HEADER: Final = "x-hub-signature-256"
EVENT_HEADER: Final = "x-github-event"
DELIVERY_HEADER: Final = "x-github-delivery"
HOOK_ID_HEADER: Final = "x-github-hook-id"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"


class GitHubAdapter:
    """GitHub's delivery conventions (see :class:`kantata_bridge.trackers.base.TrackerAdapter`)."""

    name: Final = "github"
    default_events: Final = frozenset({"issues", "pull_request"})
    ping_events: Final = frozenset({"ping"})
    kept_headers: Final = (
        "content-type",
        "user-agent",
        EVENT_HEADER,
        DELIVERY_HEADER,
        HOOK_ID_HEADER,
        "x-github-hook-installation-target-type",
        "x-github-hook-installation-target-id",
        "x-github-enterprise-version",
        "x-github-enterprise-host",
        SIGNATURE_HEADER,
        "x-hub-signature",
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
        """Check ``X-Hub-Signature-256`` (HMAC-SHA256 of the raw body). Raises SignatureError."""
        verify_hub_signature(headers.get(SIGNATURE_HEADER), body, secrets, "X-Hub-Signature-256")

    def identify(self, headers: Headers, body: bytes) -> DeliveryIdentity:
        """Event type from ``X-GitHub-Event``; delivery id from ``X-GitHub-Delivery``.

        Without a delivery header the id is ``sha256:<hex of the raw body>``: GitHub bodies carry the
        object's ``updated_at``, so the same body means the same delivery. Raises MalformedDeliveryError
        when the event header is missing or the body (JSON or form ``payload``) is not a JSON object.
        """
        event_type = header_text(headers, EVENT_HEADER, limit=100)
        if event_type is None:
            raise MalformedDeliveryError("missing_event_type", "header X-GitHub-Event is missing")
        # The content type as the envelope will carry it (see header_text), so the worker parses alike.
        parse_payload(body, header_text(headers, "content-type"))
        delivery_id = header_text(headers, DELIVERY_HEADER)
        source = "header"
        if delivery_id is None:
            delivery_id = "sha256:" + hashlib.sha256(body).hexdigest()
            source = "fallback"
        return DeliveryIdentity(
            event_type=event_type,
            delivery_id=delivery_id,
            hook_id=header_text(headers, HOOK_ID_HEADER),
            delivery_id_source=source,
        )


def parse_payload(body: bytes, content_type: str | None) -> dict[str, object]:
    """The delivery's JSON object, from a JSON body or a form body's ``payload`` field.

    Raises MalformedDeliveryError (``bad_form`` or ``not_json``).
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_CONTENT_TYPE:
        return parse_json_object(body)
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True, max_num_fields=100)
    except (UnicodeDecodeError, ValueError):
        raise MalformedDeliveryError("bad_form", "form-encoded body cannot be parsed") from None
    payload = form.get("payload")
    if not payload:
        raise MalformedDeliveryError("bad_form", "form-encoded body has no 'payload' field")
    return parse_json_object(payload[0])
