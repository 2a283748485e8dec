"""Production wiring of the worker: settings from the environment, boto3 clients, the Kantata token from
Secrets Manager and the routing config from a bundled file or SSM (both through Powertools Parameters, cached).

Nothing is built at import: ``default_worker()`` builds everything on first use and caches it (tests set the
environment first, and can call ``default_worker.cache_clear()``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
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


def aws_config() -> Any:
    """botocore settings for the worker's AWS calls: bounded, so a DynamoDB or S3 outage costs seconds of the
    invocation, not most of it (botocore's legacy default retries DynamoDB ten times, up to ~25 s)."""
    from botocore.config import Config

    return Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})


@functools.cache
def dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb", config=aws_config())


@functools.cache
def s3_client() -> Any:
    import boto3

    return boto3.client("s3", config=aws_config())


@functools.cache
def sqs_client() -> Any:
    import boto3

    return boto3.client("sqs", config=aws_config())


def fetch_body(envelope: DeliveryEnvelope) -> DeliveryEnvelope:
    from kantata_bridge.worker.claim_check import fetch_body as fetch

    return fetch(envelope, s3_client())


class SqsRequeue:
    """Sends a deferred record's message to the events queue again, as a new message with its attributes."""

    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self.client = client

    def __call__(self, message: str, attributes: Mapping[str, Any], delay_seconds: int) -> None:
        client = self.client if self.client is not None else sqs_client()
        client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=message,
            MessageAttributes=send_attributes(attributes),
            DelaySeconds=max(0, min(int(delay_seconds), 900)),
        )


def send_attributes(attributes: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Message attributes as Lambda delivered them (``stringValue``) in the shape SendMessage takes."""
    out: dict[str, dict[str, str]] = {}
    for name, value in attributes.items():
        if not isinstance(value, Mapping):
            continue
        text = value.get("stringValue", value.get("StringValue"))
        if isinstance(text, str):
            out[name] = {
                "DataType": str(value.get("dataType", value.get("DataType", "String"))),
                "StringValue": text,
            }
    return out


def build_worker(settings: WorkerSettings, *, dynamodb: Any = None, kantata: Any = None) -> Worker:
    """A Worker wired for production from ``settings`` (clients may be passed in by tests and tools)."""
    from kantata_bridge.worker.idempotency import DeliveryRecordStore, make_idempotent
    from kantata_bridge.worker.ordering import OrderingGuard
    from kantata_bridge.worker.outcomes import OutcomeStore
    from kantata_bridge.worker.processor import Worker, deliver_once

    ddb = dynamodb if dynamodb is not None else dynamodb_client()
    outcomes = OutcomeStore(settings.state_table, ddb, ttl_seconds=settings.outcome_ttl_seconds)
    guard = OrderingGuard(settings.state_table, ddb)
    store = DeliveryRecordStore(settings.state_table, ddb, outcomes=outcomes, guard=guard)
    kantata_source = kantata if kantata is not None else KantataClientSource(settings)
    from kantata_bridge.mapping.links import WorkspaceLinks

    return Worker(
        guard=guard,
        outcomes=outcomes,
        config=ConfigSource(settings),
        kantata=kantata_source,
        fetch_body=fetch_body,
        idempotent=make_idempotent(
            deliver_once, persistence=store, ttl_seconds=settings.idempotency_ttl_seconds
        ),
        requeue=SqsRequeue(settings.queue_url) if settings.queue_url else None,
        links=WorkspaceLinks(kantata_source),
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
    sqs_client.cache_clear()
