"""The receiver's settings, read from environment variables (all listed in docs/receiver.md).

Read on the first request, never at import, so tests and tools can set the environment first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from enum import StrEnum
from typing import Final, NamedTuple

from kantata_bridge.envelope import INLINE_BODY_LIMIT
from kantata_bridge.receiver.errors import ConfigurationError
from kantata_bridge.trackers.base import TrackerAdapter

# API Gateway (HTTP and REST APIs) refuses bodies above 10 MB, so nothing larger ever reaches the Lambda.
DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
DEFAULT_SECRETS_MAX_AGE: Final = 300
DEFAULT_TOKEN_HEADER: Final = "X-Bridge-Token"  # noqa: S105 - a header name, not a token
DEFAULT_PAYLOAD_SSE: Final = "AES256"
# Trackers served when ENABLED_TRACKERS is unset. Others the bridge knows (see trackers.registry) are opt-in:
# each enabled tracker is one more webhook URL that must be set up with a secret.
DEFAULT_ENABLED_TRACKERS: Final = ("github", "jira")


class AuthMode(StrEnum):
    """How a tracker's deliveries are authenticated (``<TRACKER>_AUTH_MODE``)."""

    SIGNATURE = "signature"
    """HMAC signature over the raw body (default; the only mode GitHub and Jira admin webhooks need)."""
    SHARED_TOKEN = "shared-token"  # noqa: S105 - a mode name, not a token
    """A static token in a header (Jira Automation cannot sign). Weaker: the token does not cover the body."""
    UNSIGNED = "unsigned"
    """No authentication at all. Dangerous: anyone who knows the URL can queue deliveries."""


# NamedTuples, not dataclasses: cheaper to define on the cold-start path (see trackers/base.py).
class TrackerSettings(NamedTuple):
    """One enabled tracker's settings. ``events`` None means every event type is queued.
    ``signature_tolerance``: seconds a signed timestamp may be off (None: the tracker signs none, or 0 set)."""

    auth_mode: AuthMode
    token_header: str
    events: frozenset[str] | None
    signature_tolerance: int | None = None


class ReceiverSettings(NamedTuple):
    """Everything the receiver reads from its environment."""

    queue_url: str
    trackers: Mapping[str, TrackerSettings]
    secrets_name: str | None = None
    secrets_max_age: int = DEFAULT_SECRETS_MAX_AGE
    payload_bucket: str | None = None
    payload_sse: str | None = DEFAULT_PAYLOAD_SSE
    payload_kms_key_id: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    inline_body_limit: int = INLINE_BODY_LIMIT


def load_settings(
    adapters: Mapping[str, TrackerAdapter], environ: Mapping[str, str] | None = None
) -> ReceiverSettings:
    """Build the settings from ``environ`` (default ``os.environ``) for the trackers in ``adapters``.

    Raises ConfigurationError naming the variable when one is missing or invalid (never its value when
    the value could be sensitive).
    """
    env = os.environ if environ is None else environ
    queue_url = _text(env, "QUEUE_URL")
    if queue_url is None:
        raise ConfigurationError("configuration", "QUEUE_URL is not set")
    enabled = [name.lower() for name in _names(env, "ENABLED_TRACKERS") or DEFAULT_ENABLED_TRACKERS]
    unknown = [name for name in enabled if name not in adapters]
    if unknown:
        raise ConfigurationError(
            "configuration", f"ENABLED_TRACKERS names unknown trackers: {', '.join(unknown)}"
        )
    trackers = {name: _tracker_settings(env, name, adapters[name]) for name in enabled}
    needs_secret = any(t.auth_mode is not AuthMode.UNSIGNED for t in trackers.values())
    secrets_name = _text(env, "WEBHOOK_SECRETS_NAME")
    if needs_secret and secrets_name is None:
        raise ConfigurationError("configuration", "WEBHOOK_SECRETS_NAME is not set")
    sse = _text(env, "PAYLOAD_SSE") or DEFAULT_PAYLOAD_SSE
    if sse not in {"AES256", "aws:kms", "none"}:
        raise ConfigurationError("configuration", "PAYLOAD_SSE must be AES256, aws:kms or none")
    max_body = _int(env, "MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES)
    return ReceiverSettings(
        queue_url=queue_url,
        trackers=trackers,
        secrets_name=secrets_name,
        secrets_max_age=_int(env, "WEBHOOK_SECRETS_MAX_AGE", DEFAULT_SECRETS_MAX_AGE),
        payload_bucket=_text(env, "PAYLOAD_BUCKET"),
        payload_sse=None if sse == "none" else sse,
        payload_kms_key_id=_text(env, "PAYLOAD_KMS_KEY_ID"),
        max_body_bytes=max_body,
        inline_body_limit=min(INLINE_BODY_LIMIT, max_body),
    )


def _tracker_settings(env: Mapping[str, str], name: str, adapter: TrackerAdapter) -> TrackerSettings:
    prefix = name.upper()
    raw_mode = (_text(env, f"{prefix}_AUTH_MODE") or adapter.default_auth_mode).lower()
    try:
        mode = AuthMode(raw_mode)
    except ValueError:
        choices = ", ".join(m.value for m in AuthMode)
        raise ConfigurationError("configuration", f"{prefix}_AUTH_MODE must be one of {choices}") from None
    events = _names(env, f"{prefix}_EVENTS")
    if events is None:
        handled: frozenset[str] | None = adapter.default_events
    elif "*" in events:
        handled = None
    else:
        handled = frozenset(events)
    header = (
        _text(env, f"{prefix}_TOKEN_HEADER") or adapter.default_token_header or DEFAULT_TOKEN_HEADER
    ).lower()
    tolerance = adapter.default_signature_tolerance
    if tolerance is not None:
        tolerance = _int(env, f"{prefix}_SIGNATURE_TOLERANCE_SECONDS", tolerance) or None
    return TrackerSettings(auth_mode=mode, token_header=header, events=handled, signature_tolerance=tolerance)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _names(env: Mapping[str, str], name: str) -> list[str] | None:
    value = _text(env, name)
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    return names or None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = _text(env, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigurationError("configuration", f"{name} must be a whole number") from None
    if number < 0:
        raise ConfigurationError("configuration", f"{name} must not be negative")
    return number
