"""Linear webhook deliveries: signature, signed timestamp, event type, delivery id.

Facts (see docs/receiver.md and DELIVERY.md): ``Linear-Signature: <hex>`` is the lowercase hex HMAC-SHA256 of
the raw body with the webhook's signing secret, **without** a ``sha256=`` prefix. The body's
``webhookTimestamp`` (epoch milliseconds) is inside the signed bytes: it is the replay protection. The event
type is ``Linear-Event`` (``Issue``, ``Comment``...; the body's ``type`` says the same) and the delivery id
``Linear-Delivery`` (a UUID). Linear retries a failed delivery 3 times, after 1 minute, 1 hour and 6 hours,
with the same signed body (so the same ``webhookTimestamp``): hence the wide default tolerance below.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Sequence
from typing import Any, Final

from kantata_bridge.trackers.base import (
    DeliveryIdentity,
    Headers,
    MalformedDeliveryError,
    SignatureError,
    check_signed_time,
    fallback_delivery_id,
    header_text,
    parse_json_object,
)

SIGNATURE_HEADER: Final = "linear-signature"
EVENT_HEADER: Final = "linear-event"
DELIVERY_HEADER: Final = "linear-delivery"
TIMESTAMP_FIELD: Final = "webhookTimestamp"
# Linear's last retry comes 1 min + 1 h + 6 h (+ three 5 s timeouts) after the first attempt, carrying the
# first attempt's webhookTimestamp; 8 hours accepts every retry with room for queueing on Linear's side.
# (Linear's own 1-minute advice would refuse every retry, and a delivery whose retries all fail is lost.)
DEFAULT_TOLERANCE: Final = 8 * 3600
_HEX_DIGITS: Final = frozenset("0123456789abcdef")


class LinearAdapter:
    """Linear's delivery conventions (see :class:`kantata_bridge.trackers.base.TrackerAdapter`)."""

    name: Final = "linear"
    default_events: Final = frozenset({"Issue"})
    ping_events: Final = frozenset[str]()
    kept_headers: Final = ("content-type", "user-agent", EVENT_HEADER, DELIVERY_HEADER, SIGNATURE_HEADER)

    default_auth_mode: Final = "signature"
    default_token_header: Final = None
    default_signature_tolerance: Final = DEFAULT_TOLERANCE

    def verify_signature(
        self,
        headers: Headers,
        body: bytes,
        secrets: Sequence[str],
        *,
        now: float | None = None,
        tolerance: int | None = None,
    ) -> None:
        """Check ``Linear-Signature`` (hex HMAC-SHA256 of the raw body), then the body's ``webhookTimestamp``.

        Raises SignatureError: ``missing``, ``malformed`` (not 64 hex digits; or, with a tolerance set, a
        signed body without a numeric ``webhookTimestamp``), ``no_secret``, ``mismatch``, ``stale``, ``future``.
        """
        value = headers.get(SIGNATURE_HEADER)
        if not value:
            raise SignatureError("missing", "signature header Linear-Signature is missing")
        given = value.strip().lower()
        if len(given) != 64 or not set(given) <= _HEX_DIGITS:
            raise SignatureError("malformed", "signature header Linear-Signature is not 64 hex digits")
        if not secrets:
            raise SignatureError("no_secret", "no active secret is configured for this tracker")
        given_bytes = given.encode("ascii")
        matched = False
        for secret in secrets:
            expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode("ascii")
            matched |= hmac.compare_digest(expected, given_bytes)
        if not matched:
            raise SignatureError("mismatch", "signature in Linear-Signature does not match any active secret")
        if now is None or not tolerance:
            return
        # The body is authentic from here on; its timestamp is what a replay cannot change.
        stamp = _timestamp_ms(body)
        if stamp is None:
            raise SignatureError("malformed", "the signed body has no numeric webhookTimestamp")
        check_signed_time(stamp / 1000, now, tolerance, "webhookTimestamp")

    def identify(self, headers: Headers, body: bytes) -> DeliveryIdentity:
        """Event type from ``Linear-Event`` (else the body's ``type``); delivery id from ``Linear-Delivery``.

        Without the header the id is ``sha256:<hex>`` of (``type``, ``action``, ``data.id``,
        ``data.updatedAt``, ``webhookTimestamp``). Raises MalformedDeliveryError when the body is not a JSON
        object or no event type can be read.
        """
        doc = parse_json_object(body)
        event_type = header_text(headers, EVENT_HEADER, limit=100)
        if event_type is None:
            body_type = doc.get("type")
            if isinstance(body_type, str) and 0 < len(body_type) <= 100 and body_type.isprintable():
                event_type = body_type.strip() or None
        if event_type is None:
            raise MalformedDeliveryError("missing_event_type", "header Linear-Event is missing")
        delivery_id = header_text(headers, DELIVERY_HEADER)
        source = "header"
        if delivery_id is None:
            data: Any = doc.get("data")
            data = data if isinstance(data, dict) else {}
            delivery_id = fallback_delivery_id(
                event_type, doc.get("action"), data.get("id"), data.get("updatedAt"), doc.get(TIMESTAMP_FIELD)
            )
            source = "fallback"
        return DeliveryIdentity(event_type=event_type, delivery_id=delivery_id, delivery_id_source=source)


def _timestamp_ms(body: bytes) -> float | None:
    try:
        doc = parse_json_object(body)
    except MalformedDeliveryError:
        return None
    stamp = doc.get(TIMESTAMP_FIELD)
    if isinstance(stamp, bool):
        return None
    if isinstance(stamp, int):
        # A huge integer would overflow float arithmetic; no real epoch in milliseconds comes near 2**53.
        return float(stamp) if abs(stamp) < 2**53 else None
    if isinstance(stamp, float) and math.isfinite(stamp):
        return stamp
    return None
