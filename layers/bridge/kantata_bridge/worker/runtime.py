"""Production wiring of the worker: settings from the environment, boto3 clients, the Kantata token from
Secrets Manager and the routing config from a bundled file or SSM (both through Powertools Parameters, cached).

Nothing is built at import: ``default_worker()`` builds everything on first use and caches it (tests set the
environment first, and can call ``default_worker.cache_clear()``).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kantata_bridge.envelope import DeliveryEnvelope
from kantata_bridge.mapping.config import BridgeConfig, ConfigError, parse_config
from kantata_bridge.worker.settings import WorkerSettings

if TYPE_CHECKING:
    from kantata_bridge.kantata.retry import RetryPolicy
    from kantata_bridge.worker.processor import Worker

SECRET_MAX_AGE = 300


class ConfigSource:
    """The routing config, parsed once per distinct document text. Raises ConfigError when invalid or
    unreadable (the worker fails the record, so deliveries wait in the queue/DLQ for a fix)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._text: str | None = None
        self._config: BridgeConfig | None = None

    def __call__(self) -> BridgeConfig:
        text = self._read()
        with self._lock:
            if self._config is None or text != self._text:
                self._config = parse_config(text, self._source_name())
                self._text = text
            return self._config

    def _source_name(self) -> str:
        s = self.settings
        return s.routing_config_file or f"ssm:{s.routing_config_parameter}"

    def _read(self) -> str:
        s = self.settings
        if s.routing_config_file:
            if self._text is not None:
                return self._text  # bundled with the function: it cannot change while we run
            try:
                return Path(s.routing_config_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError([f"{s.routing_config_file}: cannot read ({exc.strerror})"]) from None
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_parameter(
                str(s.routing_config_parameter), max_age=s.config_max_age_seconds, decrypt=True
            )
        except parameters.exceptions.GetParameterError as exc:
            raise ConfigError(
                [f"ssm:{s.routing_config_parameter}: cannot read ({type(exc).__name__})"]
            ) from None
        return str(value)


def read_retry_policy() -> RetryPolicy:
    """In-process retries for the worker's Kantata reads (the POST is never repeated in-process). Kept
    small: SQS redelivery is the retry for anything longer. Tests replace this function for zero delays."""
    from kantata_bridge.kantata.retry import RetryPolicy

    return RetryPolicy(max_attempts=3, base_delay=0.2, max_delay=1.0, total_budget=3.0)


class KantataClientSource:
    """A KantataClient built with the token from Secrets Manager (Powertools ``get_secret``, cached)."""

    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._token: str | None = None
        self._client: Any = None
        self._force = False

    def __call__(self) -> Any:
        from kantata_bridge.kantata.secret import fetch_token

        token = fetch_token(
            self.settings.kantata_token_secret_name, max_age=SECRET_MAX_AGE, force_fetch=self._force
        )
        with self._lock:
            self._force = False
            if self._client is None or token != self._token:
                from kantata_bridge.kantata.client import KantataClient

                self._client = KantataClient(token, self.settings.kantata_base_url, retry=read_retry_policy())
                self._token = token
            return self._client

    def invalidate(self) -> None:
        """Fetch the token again on the next call (after a 401: it may have been rotated)."""
        self._force = True


@functools.cache
def dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb")


@functools.cache
def s3_client() -> Any:
    import boto3

    return boto3.client("s3")


def fetch_body(envelope: DeliveryEnvelope) -> DeliveryEnvelope:
    from kantata_bridge.worker.claim_check import fetch_body as fetch

    return fetch(envelope, s3_client())


def build_worker(settings: WorkerSettings, *, dynamodb: Any = None, kantata: Any = None) -> Worker:
    """A Worker wired for production from ``settings`` (clients may be passed in by tests and tools)."""
    from kantata_bridge.worker.idempotency import OutcomeRecordingPersistenceLayer, make_idempotent
    from kantata_bridge.worker.ordering import OrderingGuard
    from kantata_bridge.worker.outcomes import OutcomeStore
    from kantata_bridge.worker.processor import Worker, deliver_once

    ddb = dynamodb if dynamodb is not None else dynamodb_client()
    outcomes = OutcomeStore(settings.state_table, ddb, ttl_seconds=settings.outcome_ttl_seconds)
    persistence = OutcomeRecordingPersistenceLayer(
        settings.idempotency_table, outcomes=outcomes, boto3_client=ddb
    )
    return Worker(
        guard=OrderingGuard(settings.state_table, ddb),
        outcomes=outcomes,
        config=ConfigSource(settings),
        kantata=kantata if kantata is not None else KantataClientSource(settings),
        fetch_body=fetch_body,
        idempotent=make_idempotent(
            deliver_once, persistence=persistence, ttl_seconds=settings.idempotency_ttl_seconds
        ),
    )


@functools.cache
def default_worker() -> Worker:
    """The process-wide worker, built from the environment on first use. Raises SettingsError."""
    return build_worker(WorkerSettings.from_env())


def reset() -> None:
    """Forget cached clients and the worker (tests: after changing the environment or the AWS mock)."""
    default_worker.cache_clear()
    dynamodb_client.cache_clear()
    s3_client.cache_clear()
