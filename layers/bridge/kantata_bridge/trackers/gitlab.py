"""GitLab webhook deliveries (gitlab.com, self-managed, Dedicated): secret token or signature, event type, delivery id.

Facts (see docs/receiver.md and DELIVERY.md):

- Authentication, by default, is the hook's **secret token**, sent in plain text in ``X-Gitlab-Token``
  (``shared-token`` mode with that header; the tokens live under ``gitlab_tokens`` in the webhook secret).
  A hook with a **signing token** (GitLab 19) also sends Standard Webhooks headers
  (``webhook-id``/``-timestamp``/``-signature``); ``GITLAB_AUTH_MODE=signature`` checks those instead, with the
  ``whsec_`` secrets under ``gitlab``.
- Event type: ``X-Gitlab-Event`` (``Issue Hook``, ``Confidential Issue Hook``, ``Merge Request Hook``...).
  Work items (tasks, epics, incidents...) arrive as ``Issue Hook`` with ``object_kind: work_item``.
- Delivery id: ``Idempotency-Key`` (the same when GitLab resends a request), else ``X-Gitlab-Event-UUID``,
  else a hash of the object (see :meth:`GitLabAdapter.identify`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from kantata_bridge.trackers import standard_webhooks
from kantata_bridge.trackers.base import (
    DeliveryIdentity,
    Headers,
    MalformedDeliveryError,
    fallback_delivery_id,
    header_text,
    parse_json_object,
)

EVENT_HEADER: Final = "x-gitlab-event"
TOKEN_HEADER: Final = "x-gitlab-token"  # noqa: S105 - a header name, not a token
IDEMPOTENCY_HEADER: Final = "idempotency-key"
EVENT_UUID_HEADER: Final = "x-gitlab-event-uuid"


class GitLabAdapter:
    """GitLab's delivery conventions (see :class:`kantata_bridge.trackers.base.TrackerAdapter`)."""

    name: Final = "gitlab"
    # GitLab has no confidential merge request hook; "Work Item Hook" is accepted in case a GitLab version
    # names work item deliveries so (today they come as "Issue Hook" with object_kind work_item).
    default_events: Final = frozenset(
        {"Issue Hook", "Confidential Issue Hook", "Merge Request Hook", "Work Item Hook"}
    )
    # GitLab has no ping: its "Test" button sends the newest issue or merge request as a real event.
    ping_events: Final = frozenset[str]()
    # Never the X-Gitlab-Token: it is the secret itself.
    kept_headers: Final = (
        "content-type",
        "user-agent",
        EVENT_HEADER,
        IDEMPOTENCY_HEADER,
        EVENT_UUID_HEADER,
        "x-gitlab-webhook-uuid",
        "x-gitlab-instance",
        standard_webhooks.ID_HEADER,
        standard_webhooks.TIMESTAMP_HEADER,
        standard_webhooks.SIGNATURE_HEADER,
    )

    default_auth_mode: Final = "shared-token"
    default_token_header: Final = TOKEN_HEADER
    default_signature_tolerance: Final = standard_webhooks.DEFAULT_TOLERANCE

    def verify_signature(
        self,
        headers: Headers,
        body: bytes,
        secrets: Sequence[str],
        *,
        now: float | None = None,
        tolerance: int | None = None,
    ) -> None:
        """Check the Standard Webhooks signature of a hook with a signing token. Raises SignatureError."""
        standard_webhooks.verify(headers, body, secrets, now=now, tolerance=tolerance)

    def identify(self, headers: Headers, body: bytes) -> DeliveryIdentity:
        """Event type from ``X-Gitlab-Event``; delivery id from ``Idempotency-Key``, else ``X-Gitlab-Event-UUID``.

        Without either, the id is ``sha256:<hex>`` of (``object_kind``, ``object_attributes.id``,
        ``object_attributes.updated_at``, ``object_attributes.action``): one version of one object. Raises
        MalformedDeliveryError when the event header is missing or the body is not a JSON object.
        """
        event_type = header_text(headers, EVENT_HEADER, limit=100)
        if event_type is None:
            raise MalformedDeliveryError("missing_event_type", "header X-Gitlab-Event is missing")
        doc = parse_json_object(body)
        delivery_id = header_text(headers, IDEMPOTENCY_HEADER) or header_text(headers, EVENT_UUID_HEADER)
        source = "header"
        if delivery_id is None:
            attributes: Any = doc.get("object_attributes")
            attributes = attributes if isinstance(attributes, dict) else {}
            delivery_id = fallback_delivery_id(
                doc.get("object_kind"),
                attributes.get("id"),
                attributes.get("updated_at"),
                attributes.get("action"),
            )
            source = "fallback"
        return DeliveryIdentity(event_type=event_type, delivery_id=delivery_id, delivery_id_source=source)
