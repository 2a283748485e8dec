"""The worker's settings, read from the environment when first needed (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from kantata_bridge.kantata import DEFAULT_BASE_URL

# Longer than GitHub's 3-day manual redelivery window (GHES: 7 days), so a redelivery is still caught.
DEFAULT_IDEMPOTENCY_TTL: Final = 8 * 86400
DEFAULT_OUTCOME_TTL: Final = 30 * 86400
DEFAULT_CONFIG_MAX_AGE: Final = 300


class SettingsError(ValueError):
    """An environment variable is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    state_table: str
    kantata_token_secret_name: str
    kantata_base_url: str = DEFAULT_BASE_URL
    payload_bucket: str | None = None
    routing_config_file: str | None = None
    routing_config_parameter: str | None = None
    idempotency_ttl_seconds: int = DEFAULT_IDEMPOTENCY_TTL
    outcome_ttl_seconds: int = DEFAULT_OUTCOME_TTL
    config_max_age_seconds: int = DEFAULT_CONFIG_MAX_AGE
    queue_url: str | None = None  # the events queue: where deferred deliveries are sent again

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Read the settings. Raises SettingsError naming the variable that is missing or malformed."""
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise SettingsError(f"{name} is required")
            return value

        def optional(name: str) -> str | None:
            return env.get(name, "").strip() or None

        def seconds(name: str, default: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit() or int(raw) <= 0:
                raise SettingsError(f"{name} must be a positive whole number of seconds; got {raw!r}")
            return int(raw)

        config_file = optional("ROUTING_CONFIG_FILE")
        config_parameter = optional("ROUTING_CONFIG_PARAMETER")
        if not config_file and not config_parameter:
            raise SettingsError("set ROUTING_CONFIG_FILE or ROUTING_CONFIG_PARAMETER")
        return cls(
            state_table=required("STATE_TABLE"),
            kantata_token_secret_name=required("KANTATA_TOKEN_SECRET_NAME"),
            kantata_base_url=optional("KANTATA_BASE_URL") or DEFAULT_BASE_URL,
            payload_bucket=optional("PAYLOAD_BUCKET"),
            routing_config_file=config_file,
            routing_config_parameter=config_parameter,
            idempotency_ttl_seconds=seconds("IDEMPOTENCY_TTL_SECONDS", DEFAULT_IDEMPOTENCY_TTL),
            outcome_ttl_seconds=seconds("OUTCOME_TTL_SECONDS", DEFAULT_OUTCOME_TTL),
            config_max_age_seconds=seconds("ROUTING_CONFIG_MAX_AGE_SECONDS", DEFAULT_CONFIG_MAX_AGE),
            queue_url=optional("QUEUE_URL"),
        )
