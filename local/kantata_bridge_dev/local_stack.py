"""The local stack: the whole pipeline on one machine, with no AWS account and no Docker.

``kantata-bridge demo`` starts it, gives the sandbox what task sync needs (task status sets mirroring the sample
Jira and Linear workflows, a task linked to each sample object), sends the sample deliveries from events/ over
HTTP (GitHub, Jira, GitLab and Linear, signed with the sample secrets, including a redelivered duplicate, an
out-of-order pair and a forged signature), waits for the worker, prints the Kantata status reports, every
delivery's outcome and how the linked tasks moved, and stops everything.
``kantata-bridge serve`` keeps it running for your own webhooks (curl, or a tunnel from GitHub/Jira).

What runs, all in this process: moto's server (DynamoDB, SQS, S3, Secrets Manager) on 127.0.0.1 with the
resources of template.yaml; the Kantata sandbox (or a real Kantata account); an HTTP endpoint shaped like API
Gateway's HTTP API in front of the real receiver handler; a poller feeding SQS batches to the real worker.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import hashlib
import hmac
import importlib.util
import json
import logging
import os
import secrets
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Final

from kantata_bridge_dev.apigw import ApiGatewayShim, Exchange
from kantata_bridge_dev.poller import BatchResult, SqsPoller
from kantata_bridge_dev.resources import REPO_ROOT, LocalResources, create_resources

TOOL: Final = "kantata-bridge"
REGION: Final = "us-east-1"
STACK_PREFIX: Final = "kantata-bridge-local"
SAMPLE_SECRETS: Final = {
    "github": ["github-sample-secret"],
    "jira": ["jira-sample-secret"],
    "gitlab_tokens": ["gitlab-sample-token"],
    # GitLab signing token (GITLAB_AUTH_MODE=signature): "whsec_" + base64 of a 32-byte key.
    "gitlab": ["whsec_a2FudGF0YS1icmlkZ2UgZ2l0bGFiIHNhbXBsZSBrZXk="],
    "linear": ["linear-sample-secret"],
}
# Trackers the local stack's receiver serves (the deployed default is github,jira; the others are opt-in).
LOCAL_TRACKERS: Final = "github,jira,gitlab,linear"
SANDBOX_TOKEN: Final = "sandbox-token"  # noqa: S105 - the Kantata sandbox's documented test token
DEFAULT_ROUTING: Final = REPO_ROOT / "config" / "local-routing.yaml"
EVENTS_DIR: Final = REPO_ROOT / "events" / "apigw"
DEFAULT_SERVE_PORT: Final = 8787
# Headers API Gateway adds or the client stack sets; the rest of a sample event's headers are the tracker's.
_GATEWAY_HEADERS: Final = frozenset(
    {"host", "content-length", "x-forwarded-for", "x-forwarded-port", "x-forwarded-proto", "x-amzn-trace-id"}
)


class LocalStackError(RuntimeError):
    """The local stack could not start (a port taken, the template or routing config unreadable).
    ``hint`` says what to do, when there is something to say."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class WorkerOutcome:
    """One outcome the worker reported for a delivery (read from its structured 'delivery outcome' log)."""

    dedupe_key: str
    outcome: str
    reason: str
    report_id: str | None = None
    workspace_id: str | None = None

    attempt: int | None = None
    # Task sync (routes with tasks: update / create): the linked Kantata task, and what was done to it in words
    # ("updated: moved task 7 from 'To Do' to 'Done' (same name as jira's 'Done')"; worker/tasks.py).
    task_id: str | None = None
    task: str | None = None

    @property
    def detail(self) -> str:
        """What a person wants next to the outcome: the Kantata report for a post, else the reason."""
        return f"report {self.report_id}" if self.report_id and self.outcome == "posted" else self.reason


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A delivery that failed its last allowed attempt: the queue's redrive policy moves it to the DLQ."""

    dedupe_key: str
    attempts: int


class _OutcomeListener(logging.Handler):
    """Collects the worker's 'delivery outcome' log records, the same lines an operator reads in CloudWatch."""

    def __init__(self, on_outcome: Callable[[WorkerOutcome], None] | None) -> None:
        super().__init__(level=logging.INFO)
        self.outcomes: list[WorkerOutcome] = []
        self._lock_outcomes = threading.Lock()
        self._on_outcome = on_outcome

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() != "delivery outcome" or not hasattr(record, "dedupe_key"):
            return
        outcome = WorkerOutcome(
            dedupe_key=str(record.dedupe_key),
            outcome=str(getattr(record, "outcome", "?")),
            reason=str(getattr(record, "reason", "")),
            report_id=_text_or_none(getattr(record, "report_id", None)),
            workspace_id=_text_or_none(getattr(record, "workspace_id", None)),
            attempt=_int_or_none(getattr(record, "attempt", None)),
            task_id=_text_or_none(getattr(record, "task_id", None)),
            task=_text_or_none(getattr(record, "task", None)),
        )
        with self._lock_outcomes:
            self.outcomes.append(outcome)
        if self._on_outcome is not None:
            self._on_outcome(outcome)

    def snapshot(self) -> list[WorkerOutcome]:
        with self._lock_outcomes:
            return list(self.outcomes)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


class _Environment:
    """Sets environment variables for the in-process handlers and puts the old values back on restore."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}

    def set(self, values: Mapping[str, str | None]) -> None:
        for name, value in values.items():
            self._saved.setdefault(name, os.environ.get(name))
            _put_env(name, value)

    def restore(self) -> None:
        for name, value in self._saved.items():
            _put_env(name, value)
        self._saved.clear()


def _put_env(name: str, value: str | None) -> None:
    """Set ``name``, or remove it when ``value`` is None."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def reset_process_caches() -> None:
    """Forget every client and setting the bridge cached, so handlers rebuild them from the environment.

    The handlers cache boto3 clients and settings for the life of a Lambda sandbox (functools.cache,
    Powertools' parameter providers). A local stack started twice in one process has a new moto endpoint,
    so those caches must go.
    """
    for name, module in list(sys.modules.items()):
        if not name.startswith("kantata_bridge.") or module is None:
            continue
        for value in list(vars(module).values()):
            clear = getattr(value, "cache_clear", None)
            if callable(clear) and getattr(value, "__module__", None) == name:
                clear()
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters.base")
    if parameters is not None:
        parameters.DEFAULT_PROVIDERS.clear()


def _swap_stream(handler: logging.StreamHandler[Any], stream: Any) -> Any:
    """Point ``handler`` at ``stream`` and return the old one. Not ``setStream``: it flushes the old stream,
    which may already be closed (e.g. a test's captured stdout the logger was created with)."""
    handler.acquire()
    try:
        old, handler.stream = handler.stream, stream
    finally:
        handler.release()
    return old


def _load_handler(path: Path, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LocalStackError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class LocalStack:
    """The pipeline on 127.0.0.1. Use as a context manager, or call ``start()`` and (always) ``stop()``."""

    routing_config: Path = DEFAULT_ROUTING
    host: str = "127.0.0.1"
    port: int = 0
    kantata_base_url: str | None = None
    kantata_token: str | None = None
    webhook_secrets: Mapping[str, list[str]] = field(default_factory=lambda: dict(SAMPLE_SECRETS))
    visibility_timeout: int = 2
    max_receive_count: int | None = 3
    log_stream: IO[str] | None = None
    on_outcome: Callable[[WorkerOutcome], None] | None = None
    on_exchange: Callable[[Exchange], None] | None = None
    on_dead_letter: Callable[[DeadLetter], None] | None = None

    def __post_init__(self) -> None:
        self.moto: Any = None
        self.sandbox: Any = None
        self.api: ApiGatewayShim | None = None
        self.poller: SqsPoller | None = None
        self.resources: LocalResources | None = None
        self.endpoint_url: str | None = None
        self.exchanges: list[Exchange] = []
        self._env = _Environment()
        self._listener = _OutcomeListener(self._outcome_seen)
        self._log_state: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._devnull: IO[str] | None = None
        self._bridge_logger: logging.Logger | None = None
        self._receiver_stream: IO[str] | None = None
        self._bridge_level = logging.NOTSET
        self._werkzeug_level = logging.NOTSET
        self._module_names: list[str] = []
        self._outcome_event = threading.Condition()

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Start everything. Raises LocalStackError (after stopping what did start) when a part fails."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from moto.server import ThreadedMotoServer

        werkzeug = logging.getLogger("werkzeug")  # moto's server logs every request at INFO otherwise
        self._werkzeug_level = werkzeug.level
        werkzeug.setLevel(logging.WARNING)
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self._reset_moto()
        self._env.set(
            {
                "AWS_ENDPOINT_URL": self.endpoint_url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy credentials
                "AWS_SESSION_TOKEN": None,
                "AWS_PROFILE": None,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        session = self.session()

        token = self.kantata_token
        base_url = self.kantata_base_url
        routes = self._routes()
        if base_url is None:
            from kantata_sandbox.server import KantataSandbox

            self.sandbox = KantataSandbox(port=0, token=SANDBOX_TOKEN).start()
            base_url, token = self.sandbox.base_url, SANDBOX_TOKEN
            for route in routes:
                if route.workspace_id not in self.sandbox.state.workspaces:
                    self.sandbox.add_workspace(route.name or route.source, workspace_id=route.workspace_id)
        if not token:
            raise LocalStackError("a Kantata token is needed when a Kantata base URL is given")

        self.resources = res = create_resources(
            session,
            prefix=STACK_PREFIX,
            webhook_secrets=self.webhook_secrets,
            kantata_token=token,
            visibility_timeout=self.visibility_timeout,
            max_receive_count=self.max_receive_count,
        )
        self._env.set(
            {
                "POWERTOOLS_SERVICE_NAME": "kantata-bridge",
                "POWERTOOLS_METRICS_NAMESPACE": "KantataBridge",
                "POWERTOOLS_METRICS_DISABLED": "true",  # EMF lines would flood the terminal; nothing reads them
                "POWERTOOLS_LOG_LEVEL": "INFO",
                "QUEUE_URL": res.queue_url,
                "PAYLOAD_BUCKET": res.payload_bucket,
                "WEBHOOK_SECRETS_NAME": res.webhook_secrets_name,
                "ENABLED_TRACKERS": LOCAL_TRACKERS,
                "STATE_TABLE": res.state_table,
                "KANTATA_BASE_URL": base_url,
                "KANTATA_TOKEN_SECRET_NAME": res.kantata_token_secret_name,
                "ROUTING_CONFIG_FILE": str(self.routing_config),
                "ROUTING_CONFIG_PARAMETER": None,
            }
        )
        reset_process_caches()
        suffix = secrets.token_hex(4)
        receiver = _load_handler(REPO_ROOT / "functions/webhook_receiver/app.py", f"_local_receiver_{suffix}")
        worker = _load_handler(REPO_ROOT / "functions/sync_worker/app.py", f"_local_worker_{suffix}")
        self._module_names = [receiver.__name__, worker.__name__]
        self._capture_logs()
        from kantata_bridge.observability import metrics as bridge_metrics

        def clearing_metrics(
            handler: Callable[[dict[str, Any], Any], Any],
        ) -> Callable[[dict[str, Any], Any], Any]:
            # With POWERTOOLS_METRICS_DISABLED, Powertools never flushes, so nothing clears the metric set:
            # clear it after each invocation, as a flush in Lambda would.
            def invoke(event: dict[str, Any], context: Any) -> Any:
                try:
                    return handler(event, context)
                finally:
                    bridge_metrics.clear_metrics()

            return invoke

        lock = threading.Lock()
        self.api = ApiGatewayShim(
            clearing_metrics(receiver.lambda_handler),
            host=self.host,
            port=self.port,
            lock=lock,
            on_exchange=self._exchange_seen,
        )
        try:
            self.api.start()
        except OSError as exc:
            raise LocalStackError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="Stop what uses that port (another serve?) or pick another --port (0 picks a free one).",
            ) from None
        self.poller = SqsPoller(
            sqs=session.client("sqs"),
            queue_url=res.queue_url,
            queue_arn=res.queue_arn,
            handler=clearing_metrics(worker.lambda_handler),
            region=REGION,
            lock=lock,
            on_batch=self._batch_seen,
        ).start()

    def stop(self) -> None:
        """Stop the poller, the endpoint, the sandbox and moto; put the environment back. Safe to call twice."""
        if self.poller is not None:
            self.poller.stop()
            self.poller = None
        if self.api is not None:
            self.api.stop()
            self.api = None
        # Drop the handlers' cached clients now: their keep-alive connections hold the sandbox's and moto's
        # request threads open until the sockets close (collected here rather than at interpreter exit).
        for name in self._module_names:
            sys.modules.pop(name, None)
        self._module_names = []
        reset_process_caches()
        gc.collect()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.moto is not None:
            self._reset_moto()
            # moto's stop() joins its server thread without a timeout: bound it, so Ctrl-C always ends serve
            # (a daemon thread left behind ends with the process).
            stopper = threading.Thread(target=self.moto.stop, name="moto-stop", daemon=True)
            stopper.start()
            stopper.join(timeout=10)
            server = getattr(self.moto, "_server", None)  # moto's stop() leaves the socket open
            if server is not None:
                server.server_close()
            self.moto = None
        self._release_logs()
        logging.getLogger("werkzeug").setLevel(self._werkzeug_level)
        self._env.restore()
        reset_process_caches()

    def _reset_moto(self) -> None:
        """Empty moto's backends: they are process-wide, so an earlier stack's tables would still exist."""
        import requests

        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()

    # ------------------------------------------------------------------ logs

    def _capture_logs(self) -> None:
        """Send the handlers' JSON logs to ``log_stream`` (not the terminal) and listen for outcomes."""
        from kantata_bridge.observability import logger as bridge_logger

        std = logging.getLogger(bridge_logger.name)
        self._bridge_logger = std
        self._bridge_level = std.level
        std.setLevel(
            logging.INFO
        )  # the outcome lines are INFO, whatever POWERTOOLS_LOG_LEVEL was at first import
        sink = self.log_stream if self.log_stream is not None else open(os.devnull, "w")  # noqa: SIM115
        for handler in std.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, _OutcomeListener):
                self._log_state.append((handler, _swap_stream(handler, sink)))
        self._devnull = sink if self.log_stream is None else None
        std.addHandler(self._listener)
        # The receiver logs through its own light logger (kantata_bridge.receiver.telemetry): same sink.
        from kantata_bridge.receiver.telemetry import logger as receiver_logger

        self._receiver_stream = receiver_logger.redirect(sink)

    def _release_logs(self) -> None:
        std = self._bridge_logger
        if std is None:
            return
        std.removeHandler(self._listener)
        from kantata_bridge.receiver.telemetry import logger as receiver_logger

        receiver_logger.redirect(self._receiver_stream)
        for handler, stream in self._log_state:
            _swap_stream(handler, stream)
        self._log_state = []
        std.setLevel(self._bridge_level)
        if self._devnull is not None:
            self._devnull.close()
            self._devnull = None
        self._bridge_logger = None

    def _outcome_seen(self, outcome: WorkerOutcome) -> None:
        with self._outcome_event:
            self._outcome_event.notify_all()
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _batch_seen(self, batch: BatchResult) -> None:
        """Report the records that failed their last allowed attempt (the redrive policy dead-letters them
        on their next receive), including those of a batch the function failed as a whole."""
        if self.on_dead_letter is None or not self.max_receive_count:
            return
        from kantata_bridge.envelope import DeliveryEnvelope, EnvelopeError

        for record in batch.records:
            failed = batch.error is not None or record["messageId"] in batch.failed_ids
            attempts = _int_or_none(record.get("attributes", {}).get("ApproximateReceiveCount")) or 0
            if not failed or attempts < self.max_receive_count:
                continue
            try:
                key = DeliveryEnvelope.from_message(record["body"]).dedupe_key
            except EnvelopeError:
                key = f"message {record['messageId']}"
            self.on_dead_letter(DeadLetter(key, attempts))

    def _exchange_seen(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)
        if self.on_exchange is not None:
            self.on_exchange(exchange)

    # ------------------------------------------------------------------ reading the stack

    def session(self) -> Any:
        """A boto3 Session aimed at the moto server (credentials and region from the environment set up)."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
            region_name=REGION,
        )

    def webhook_url(self, tracker: str) -> str:
        if self.api is None:
            raise LocalStackError("the local stack is not running")
        return self.api.webhook_url(tracker)

    @property
    def outcomes(self) -> list[WorkerOutcome]:
        """Every outcome the worker reported so far, in order."""
        return self._listener.snapshot()

    def outcome_store(self) -> Any:
        """The worker's durable outcome store (state table) on the moto server."""
        from kantata_bridge.worker.outcomes import OutcomeStore

        assert self.resources is not None
        return OutcomeStore(self.resources.state_table, self.session().client("dynamodb"))

    def queue_depth(self, queue_url: str | None = None) -> int:
        """Messages in the queue, visible or in flight (default: the events queue)."""
        assert self.resources is not None
        attrs = (
            self.session()
            .client("sqs")
            .get_queue_attributes(
                QueueUrl=queue_url or self.resources.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
        )
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def wait_until_drained(self, timeout: float = 30.0) -> bool:
        """Wait until the events queue is empty and no batch is running. False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            poller_idle = self.poller is None or not self.poller.busy
            if poller_idle and self.queue_depth() == 0:
                return True
            time.sleep(0.05)
        return False

    def wait_for_outcomes(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until the worker has reported at least ``count`` outcomes. False on timeout."""
        deadline = time.monotonic() + timeout
        with self._outcome_event:
            while len(self.outcomes) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._outcome_event.wait(min(left, 0.2))
        return True

    def _routes(self) -> list[Any]:
        from kantata_bridge.mapping.config import ConfigError, parse_config

        try:
            return list(parse_config(self.routing_config.read_bytes(), str(self.routing_config)).routes)
        except OSError as exc:
            raise LocalStackError(
                f"cannot read the routing config {self.routing_config}: {exc.strerror}"
            ) from None
        except ConfigError as exc:
            raise LocalStackError(str(exc)) from None


# ---------------------------------------------------------------------- sample deliveries


@dataclass(frozen=True, slots=True)
class Delivery:
    """One HTTP delivery to send: tracker, headers as the tracker sends them, and the raw body."""

    label: str
    tracker: str
    headers: Mapping[str, str]
    body: bytes
    note: str = ""

    @property
    def delivery_id(self) -> str:
        for name in (
            "x-github-delivery",
            "x-atlassian-webhook-identifier",
            "idempotency-key",
            "linear-delivery",
        ):
            if self.headers.get(name):
                return self.headers[name]
        return "-"

    @property
    def dedupe_key(self) -> str:
        """What the worker keys idempotency on (the envelope's rule: tracker + hook id + delivery id)."""
        from kantata_bridge.envelope import DeliveryEnvelope

        envelope = DeliveryEnvelope(
            self.tracker, "", self.delivery_id, "", hook_id=self.headers.get("x-github-hook-id")
        )
        return envelope.dedupe_key


def sample_delivery(name: str, *, label: str | None = None, note: str = "") -> Delivery:
    """The tracker's side of events/apigw/<name>.json: its headers (not API Gateway's) and raw body."""
    import base64

    event = json.loads((EVENTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    headers = {k: v for k, v in event["headers"].items() if k not in _GATEWAY_HEADERS}
    return Delivery(label or name, event["pathParameters"]["tracker"], headers, body, note)


def sign(tracker: str, body: bytes, secret: str) -> dict[str, str]:
    """The signature header a tracker sends for ``body`` (GitHub X-Hub-Signature-256, Jira X-Hub-Signature)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256" if tracker == "github" else "x-hub-signature": f"sha256={digest}"}


def restamped_linear_delivery(name: str, *, now: float | None = None) -> Delivery:
    """A Linear sample as Linear would send it now: ``webhookTimestamp`` set to ``now`` and signed again with the
    sample secret (the committed sample's timestamp is long past, and the receiver refuses stale ones)."""
    delivery = sample_delivery(name)
    doc = json.loads(delivery.body)
    doc["webhookTimestamp"] = int((time.time() if now is None else now) * 1000)
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    signature = hmac.new(SAMPLE_SECRETS["linear"][0].encode(), body, hashlib.sha256).hexdigest()
    return Delivery(
        delivery.label,
        delivery.tracker,
        {**delivery.headers, "linear-signature": signature},
        body,
        delivery.note,
    )


def demo_deliveries() -> list[Delivery]:
    """The demo's deliveries, in sending order."""
    push_body = json.dumps(
        {"ref": "refs/heads/main", "repository": {"full_name": "acme/webapp"}}, separators=(",", ":")
    ).encode()
    push = Delivery(
        "github_push",
        "github",
        {
            "content-type": "application/json",
            "user-agent": "GitHub-Hookshot/8c3f0e1",
            "x-github-event": "push",
            "x-github-delivery": "0d5e7f60-c7d0-11f0-8a1b-3c4d5e6f7a80",
            "x-github-hook-id": "498765432",
            **sign("github", push_body, SAMPLE_SECRETS["github"][0]),
        },
        push_body,
        "not subscribed",
    )
    created = sample_delivery("jira_issue_created")
    forged = Delivery(
        "jira_issue_created",
        "jira",
        {**created.headers, "x-atlassian-webhook-identifier": "8f3a2b1c-4d5e-4f60-9a7b-0000000100ff"}
        | sign("jira", created.body, "not-the-secret"),
        created.body,
        "forged signature",
    )
    return [
        sample_delivery("github_ping"),
        sample_delivery("github_issues_opened"),
        sample_delivery("github_issues_labeled_blocked"),
        sample_delivery("github_pull_request_opened"),
        sample_delivery("github_pull_request_closed_merged"),
        sample_delivery("github_issues_closed"),
        sample_delivery("github_issues_opened", note="redelivered"),
        push,
        created,
        sample_delivery("jira_issue_updated_done", note="newer, sent first"),
        sample_delivery("jira_issue_updated_in_progress", note="older, sent late"),
        sample_delivery("gitlab_issue_labeled_in_review"),
        restamped_linear_delivery("linear_issue_in_progress"),
        forged,
    ]


def post(url: str, delivery: Delivery, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """POST ``delivery`` to ``url``; returns the status and the JSON answer (empty dict if not JSON)."""
    import requests

    response = requests.post(url, data=delivery.body, headers=dict(delivery.headers), timeout=timeout)
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    return response.status_code, answer if isinstance(answer, dict) else {}


# ---------------------------------------------------------------------- linked tasks (task sync)

PAYLOADS_DIR: Final = REPO_ROOT / "events" / "payloads"
# Sample workflow exports the demo mirrors into task status sets, as `catalog from-jira` / `from-linear` would
# (docs/catalog.md). GitHub and GitLab workspaces keep Kantata's four default statuses.
WORKFLOW_EXPORTS: Final = {
    "jira": PAYLOADS_DIR / "jira-project-statuses.json",
    "linear": PAYLOADS_DIR / "linear-workflow-states.json",
}


@dataclass(frozen=True, slots=True)
class TaskSetup:
    """What the demo set up in Kantata for task sync before the deliveries: the task status sets (name,
    number of statuses, the tracker whose sample workflow it mirrors, workspace title) and the tasks linked to
    sample objects (task id, external ref)."""

    sets: tuple[tuple[str, int, str, str], ...] = ()
    tasks: tuple[tuple[str, str], ...] = ()

    def text(self, width: int = 120) -> str:
        """A few lines saying what was set up, none longer than ``width`` (empty when nothing was)."""
        import textwrap

        if not self.sets and not self.tasks:
            return ""
        lines = ["Kantata set up for task sync:"]
        lines += [
            f"  task status set {name!r} ({count} statuses, the sample {tracker.capitalize()} workflow) → {title}"
            for name, count, tracker, title in self.sets
        ]
        if self.tasks:
            refs = ", ".join(ref for _, ref in self.tasks)
            lines += textwrap.wrap(
                f"  {len(self.tasks)} tasks linked: {refs}",
                width,
                subsequent_indent="    ",
                break_on_hyphens=False,
                drop_whitespace=True,
            )
        return "\n".join(lines)


def _sample_objects(deliveries: list[Delivery], routing_config: Path) -> list[tuple[Any, Any]]:
    """The distinct tracker objects of ``deliveries`` (as TrackerEvents, the first delivery of each) with the
    route that takes them, for the routes with task sync on. Deliveries the bridge ignores are left out."""
    from kantata_bridge.mapping.config import parse_config
    from kantata_bridge.mapping.routing import route_event
    from kantata_bridge.tracker_event import IgnoredEventError, UnmappablePayloadError
    from kantata_bridge.trackers.base import MalformedDeliveryError
    from kantata_bridge.trackers.registry import find_adapter, find_event_parser

    config = parse_config(routing_config.read_bytes(), str(routing_config))
    found: dict[tuple[str, str, str], tuple[Any, Any]] = {}
    for delivery in deliveries:
        adapter, parse = find_adapter(delivery.tracker), find_event_parser(delivery.tracker)
        if adapter is None or parse is None:
            continue
        try:
            identity = adapter.identify(delivery.headers, delivery.body)
            event = parse(
                identity.event_type, delivery.body, delivery.headers.get("content-type"), delivery.headers
            )
        except (IgnoredEventError, UnmappablePayloadError, MalformedDeliveryError):
            continue  # an event the bridge ignores (ping, push) or cannot map has no task
        route = route_event(event, config)
        if route is None or route.tasks.mode == "off":
            continue
        found.setdefault((event.tracker, event.model.value, event.ref), (event, route))
    return list(found.values())


def _workflow_set(event: Any, workspace_id: str) -> Any:
    """The task status set mirroring the sample workflow of ``event``'s tracker, for ``workspace_id``; None when
    the demo has no sample workflow for that tracker."""
    import dataclasses

    from kantata_bridge.catalog.jira import set_from_jira_export
    from kantata_bridge.catalog.linear import set_from_linear_export

    path = WORKFLOW_EXPORTS.get(event.tracker)
    if path is None:
        return None
    export = json.loads(path.read_text(encoding="utf-8"))
    name = f"{event.project} workflow"
    if event.tracker == "jira":
        desired = set_from_jira_export(export, set_name=name, project=event.project)
    else:
        desired = set_from_linear_export(export, set_name=name, team=event.project)
    return dataclasses.replace(desired, workspaces=(int(workspace_id),))


def set_up_tasks(stack: LocalStack, deliveries: list[Delivery]) -> TaskSetup:
    """Prepare the sandbox for task sync on the routes that have it: each workspace that takes Jira or Linear
    samples gets a task status set mirroring the sample workflow (``catalog apply``, the real code), and each
    sample object of a ``tasks: update`` route gets a Kantata task linked to it by external reference, in its
    workspace's default status (a ``tasks: create`` route makes its own). Raises LocalStackError when Kantata
    refuses a step."""
    from kantata_bridge.catalog.apply import apply_catalog
    from kantata_bridge.catalog.config import CatalogConfig
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import KantataError
    from kantata_bridge.kantata.models import NewStory, StoryExternalReference

    if stack.sandbox is None:
        return TaskSetup()
    objects = _sample_objects(deliveries, stack.routing_config)
    desired: dict[str, Any] = {}  # workspace id → its set (one set per workspace: the first sample's)
    for event, route in objects:
        if route.workspace_id not in desired:
            wanted = _workflow_set(event, route.workspace_id)
            if wanted is not None and all(s.name != wanted.name for s in desired.values()):
                desired[route.workspace_id] = wanted
    titles = {ws_id: ws.title for ws_id, ws in stack.sandbox.state.workspaces.items()}
    tasks: list[tuple[str, str]] = []
    with KantataClient(SANDBOX_TOKEN, stack.sandbox.base_url) as client:
        try:
            if desired:
                result = apply_catalog(client, CatalogConfig(sets=tuple(desired.values())))
                if not result.ok:
                    failed = [o.error for o in result.outcomes if not o.ok]
                    raise LocalStackError(
                        "could not set up Kantata for task sync (task status sets): "
                        + "; ".join([*result.errors, *(f or "?" for f in failed)])
                    )
            for event, route in objects:
                if route.tasks.mode != "update":
                    continue
                story = client.create_story(
                    NewStory(
                        workspace_id=route.workspace_id,
                        title=event.title or event.ref,
                        external_reference=StoryExternalReference(
                            event.tracker, event.model.value, event.ref, status="successful"
                        ),
                    )
                )
                tasks.append((story.id, event.ref))
        except KantataError as exc:
            raise LocalStackError(f"could not set up Kantata for task sync: {exc}") from None
    sets = tuple(
        (s.name, len(s.statuses), s.tracker or "?", titles.get(ws_id, ws_id)) for ws_id, s in desired.items()
    )
    return TaskSetup(sets, tuple(tasks))


# ---------------------------------------------------------------------- tables

TABLE_WIDTH: Final = 120  # the demo's tables fit a 120-column terminal


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    label: str
    note: str
    delivery_id: str
    status: int
    outcome: str
    detail: str
    worker: WorkerOutcome | None = None  # the worker's outcome, for a queued delivery that has one


def format_table(
    headers: list[str], rows: list[list[str]], *, width: int | None = None, wrap: bool = True
) -> str:
    """A plain fixed-width text table. With ``width``, the last column is wrapped onto continuation lines
    (``wrap``) or clipped with "…" so that no line is longer than ``width``; the other columns keep their
    natural width, and the last one keeps at least 20 characters."""
    import textwrap

    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    offset = sum(widths[:-1]) + 2 * (len(widths) - 1)
    if width is not None:
        widths[-1] = min(widths[-1], max(width - offset, 20))
    last = widths[-1]

    def cells(row: list[str]) -> list[str]:
        head = "  ".join(c.ljust(w) for c, w in zip(row[:-1], widths[:-1], strict=True))
        text = row[-1]
        if len(text) <= last:
            pieces = [text]
        elif wrap:
            pieces = textwrap.wrap(text, last, break_on_hyphens=False) or [""]
        else:
            pieces = [_clip(text, last)]
        lead = head + "  " if len(row) > 1 else ""
        return [lead + pieces[0]] + [" " * len(lead) + piece for piece in pieces[1:]]

    lines = cells(headers)
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.extend(cells(row))
    return "\n".join(line.rstrip() for line in lines)


def report_rows(sandbox: Any) -> list[list[str]]:
    """The sandbox's status reports with their external references, oldest first."""
    state = sandbox.state
    refs = {
        str(r.subject_id): r
        for r in state.external_references.values()
        if r.subject_type.lower() == "statusreport"
    }
    rows = []
    for report in sorted(state.status_reports.values(), key=lambda r: int(r.id)):
        ws = state.workspaces.get(report.workspace_id)
        ref = refs.get(str(report.id))
        first_line = report.description.splitlines()[0] if report.description else ""
        rows.append(
            [
                report.id,
                ws.title if ws else report.workspace_id,
                report.color,
                ref.service_model_ref if ref else "-",
                (ref.external_status or "-") if ref else "-",
                first_line,
            ]
        )
    return rows


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def delivery_rows(
    sent: list[tuple[Delivery, int, dict[str, Any]]], outcomes: list[WorkerOutcome]
) -> list[DeliveryRow]:
    """Pair each sent delivery with its answer and, if it was queued, the worker's outcome for it (the n-th
    outcome of a dedupe key belongs to the n-th queued delivery with that key)."""
    by_key: dict[str, list[WorkerOutcome]] = {}
    for reported in outcomes:
        by_key.setdefault(reported.dedupe_key, []).append(reported)
    rows = []
    for delivery, status, answer in sent:
        if status == 202:
            queue = by_key.get(delivery.dedupe_key, [])
            found = queue.pop(0) if queue else None
            outcome, detail = (
                ("pending", "no outcome yet") if found is None else (found.outcome, found.detail)
            )
        else:
            found = None
            outcome = str(answer.get("status", "rejected"))
            detail = str(answer.get("reason") or answer.get("event_type") or answer.get("message") or "")
        rows.append(
            DeliveryRow(delivery.label, delivery.note, delivery.delivery_id, status, outcome, detail, found)
        )
    return rows


# A status name as worker/tasks.py quotes it in its outcome text (Python's repr: 'To Do', "Won't Do"), or None.
_QUOTED: Final = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|None)"""
# The forms of worker/tasks.py's TaskResult.text that name a task, after "<action>: ".
_MOVED: Final = rf"moved task \S+ from (?P<before>{_QUOTED}) to (?P<after>{_QUOTED}) \((?P<why>.*)\)"
_STAYS: Final = rf"task \S+ stays (?P<before>{_QUOTED}); reference updated"
_KEPT_ON_DELETE: Final = rf"task \S+: status left as (?P<before>{_QUOTED}) \((?P<why>.*)\); reference updated"
_UNCHANGED: Final = rf"task \S+ is already (?P<before>{_QUOTED})"
_LEFT_ALONE: Final = rf"task \S+ left at (?P<before>{_QUOTED}): (?P<why>.*)"
_CREATED: Final = rf"created task \S+ in workspace \S+ as (?P<after>{_QUOTED}) \((?P<why>.*)\)"


@dataclass(frozen=True, slots=True)
class TaskMove:
    """One task write (or a task left as it was) as the task table shows it; "-" for no status."""

    before: str
    after: str
    why: str


def task_move(task: str) -> TaskMove:
    """Read a delivery outcome's ``task`` text (worker/tasks.py: "updated: moved task 7 from 'To Do' to 'Done'
    (why)") into from, to and why. A text in another form is shown whole as the why, with "?" for both
    statuses: the table never hides what the worker said."""
    import ast
    import re

    action, _, text = task.partition(": ")

    def match(pattern: str) -> dict[str, str | None] | None:
        found = re.fullmatch(pattern, text, flags=re.DOTALL)
        return None if found is None else found.groupdict()

    def status(value: str | None) -> str:
        name = None if value is None else ast.literal_eval(value)
        return "-" if name is None else str(name)

    if action == "updated":
        if (m := match(_MOVED)) is not None:
            return TaskMove(status(m["before"]), status(m["after"]), m["why"] or "")
        if (m := match(_STAYS)) is not None:
            return TaskMove(status(m["before"]), status(m["before"]), "already there; reference updated")
        if (m := match(_KEPT_ON_DELETE)) is not None:
            kept = status(m["before"])
            return TaskMove(kept, kept, f"status left: {m['why']}; reference updated")
    elif action == "unchanged" and (m := match(_UNCHANGED)) is not None:
        return TaskMove(status(m["before"]), status(m["before"]), "unchanged: already there, nothing written")
    elif action == "left alone" and (m := match(_LEFT_ALONE)) is not None:
        return TaskMove(status(m["before"]), status(m["before"]), f"left alone: {m['why']}")
    elif action == "created" and (m := match(_CREATED)) is not None:
        return TaskMove("-", status(m["after"]), f"created: {m['why']}")
    return TaskMove("?", "?", task)


def story_refs(sandbox: Any) -> dict[str, str]:
    """Each sandbox task's external ref (the tracker object it is linked to), by task id."""
    return {
        str(r.subject_id): r.service_model_ref
        for r in sandbox.state.external_references.values()
        if r.subject_type.lower() == "story"
    }


def task_rows(rows: list[DeliveryRow], refs: Mapping[str, str]) -> list[list[str]]:
    """One row per delivery whose task sync found a task (moved, unchanged, left alone, created), in delivery
    order: task, object (its external ref), from, to, why."""
    out = []
    for row in rows:
        worker = row.worker
        if worker is None or not worker.task_id or not worker.task:
            continue
        move = task_move(worker.task)
        out.append([worker.task_id, refs.get(worker.task_id, "-"), move.before, move.after, move.why])
    return out


# ---------------------------------------------------------------------- commands

EXAMPLES: Final = {
    "demo": """\
examples:
  kantata-bridge demo                                   # the sample deliveries through the whole pipeline
  kantata-bridge demo --routing-config my-routing.yaml  # your routes (the sandbox gets their workspaces)

exit codes: 0 every delivery has an outcome, 1 some had none before --timeout, 2 bad input or usage,
130 interrupted
""",
    "serve": """\
examples:
  kantata-bridge serve                                  # webhooks on http://127.0.0.1:8787 (Ctrl-C stops it)
  make serve ARGS='--port 9000'                         # the same through make, with options
  KANTATA_TOKEN=... kantata-bridge serve --kantata-base-url https://api.mavenlink.com/api/v1 \\
      --kantata-token-env KANTATA_TOKEN                 # a real Kantata account instead of the sandbox

exit codes: 0 stopped (Ctrl-C, SIGTERM or --duration), 1 failed, 2 bad input or usage (including a port in use)
""",
}


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    from kantata_bridge_cli.console import port_number, positive_number

    parser.add_argument(
        "--routing-config",
        type=Path,
        default=DEFAULT_ROUTING,
        help="routing YAML for the worker; the sandbox gets one workspace per route (default: %(default)s)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address the webhook endpoint listens on")
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_SERVE_PORT if name == "serve" else 0,
        help="port of the webhook endpoint (0: a free port; default: %(default)s)",
    )
    parser.add_argument(
        "--log-file",
        type=Path,
        default=Path(".local-stack") / f"{name}.log",
        help="where the functions' JSON logs go (default: %(default)s)",
    )
    if name == "demo":
        parser.add_argument(
            "--timeout",
            type=positive_number,
            default=90.0,
            help="seconds to wait for the worker in total (default: 90)",
        )
    else:
        parser.add_argument(
            "--kantata-base-url", help="a real Kantata API base URL instead of the sandbox (needs a token)"
        )
        parser.add_argument(
            "--kantata-token-env",
            metavar="VAR",
            help="name of the environment variable holding the Kantata token (never pass a token itself)",
        )
        parser.add_argument(
            "--webhook-secrets-env",
            metavar="VAR",
            help='environment variable holding webhook secrets JSON ({"github": ["..."], "jira": ["..."]}); '
            "default: the sample secrets",
        )
        parser.add_argument(
            "--duration",
            type=positive_number,
            default=None,
            help="stop after this many seconds (default: until Ctrl-C)",
        )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    """``demo`` or ``serve``. Raises CliError (exit 2) when the stack cannot start from the given options."""
    from kantata_bridge_cli import console

    saved: list[tuple[int, Any]] = []
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C and SIGTERM both stop the stack cleanly (a shell may start background jobs with SIGINT ignored).
        for signum, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _interrupt)):
            saved.append((signum, signal.signal(signum, handler)))
    try:
        if args.command == "demo":
            return run_demo(args)
        return run_serve(args)
    except KeyboardInterrupt:
        if args.command == "serve":
            # Ctrl-C is how serve is meant to end: a success (and `make serve` does not report "Error 130").
            console.note(TOOL, "stopped; nothing left running")
            return console.EXIT_OK
        console.note(TOOL, "interrupted; local stack stopped")
        return console.EXIT_INTERRUPTED
    except LocalStackError as exc:
        raise console.CliError(str(exc), hint=exc.hint) from None
    finally:
        for signum, previous in saved:  # the caller's handlers (in-process callers, such as tests)
            signal.signal(signum, previous)


@contextlib.contextmanager
def _log_file(path: Path) -> Iterator[IO[str]]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = path.open("a", encoding="utf-8")
    except OSError as exc:
        raise LocalStackError(f"cannot write the log file {path}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def run_demo(args: argparse.Namespace) -> int:
    """Send the sample deliveries through the local stack and print what became of them."""
    started = time.monotonic()
    deadline = started + args.timeout
    sent: list[tuple[Delivery, int, dict[str, Any]]] = []
    with (
        _log_file(args.log_file) as log,
        LocalStack(
            routing_config=args.routing_config, host=args.host, port=args.port, log_stream=log
        ) as stack,
    ):
        print(
            f"local stack up: webhooks at {stack.webhook_url('{tracker}')}, AWS (moto) at {stack.endpoint_url},"
        )
        print(f"Kantata sandbox at {stack.sandbox.base_url}; function logs in {args.log_file}\n")
        deliveries = demo_deliveries()
        setup = set_up_tasks(stack, deliveries).text(TABLE_WIDTH)
        if setup:
            print(setup + "\n")
        for delivery in deliveries:
            status, answer = post(stack.webhook_url(delivery.tracker), delivery)
            sent.append((delivery, status, answer))
            # The delivery id is here, not in the table below, so the table fits 120 columns.
            print(
                f"  sent {delivery.label:<33}  {delivery.delivery_id:<36}  {status}  {answer.get('status', '')}"
            )
            if status == 202:
                # One at a time, so the out-of-order pair reaches the worker in the order sent.
                stack.wait_until_drained(max(0.0, deadline - time.monotonic()))
        drained = stack.wait_until_drained(max(0.0, deadline - time.monotonic()))
        outcomes = stack.outcomes
        reports = report_rows(stack.sandbox)
        refs = story_refs(stack.sandbox)
        # ---- convergence act (kantata_bridge_dev.demo_convergence): GitHub recovery, Jira reconciliation ----
        from kantata_bridge_dev.demo_convergence import run_convergence

        convergence = run_convergence(stack, timeout=max(1.0, deadline - time.monotonic()))
        # ---- end of the convergence act ----
    rows = delivery_rows(sent, outcomes)
    print("\nKantata status reports created")
    print(
        format_table(
            ["id", "workspace", "colour", "external ref", "external status", "description"],
            reports,
            width=TABLE_WIDTH,
            wrap=False,  # the first line of each description is enough here
        )
    )
    print("\nDeliveries")
    print(
        format_table(
            ["delivery", "note", "HTTP", "outcome", "reason / report"],
            [[r.label, r.note, str(r.status), r.outcome, r.detail] for r in rows],
            width=TABLE_WIDTH,  # a long reason (stale: …) wraps; it is never cut
        )
    )
    tasks = task_rows(rows, refs)
    print("\nKantata tasks moved")
    if tasks:
        print(format_table(["task", "object", "from", "to", "why"], tasks, width=TABLE_WIDTH))
    else:
        print("none: no route of the routing config has tasks: update or create, or no sample has a task")
    print("\n" + convergence.text())  # the convergence act (demo_convergence)
    pending = [r for r in rows if r.outcome == "pending"]
    print(f"\n{len(reports)} reports, {len(rows)} deliveries in {time.monotonic() - started:.1f} s")
    if not drained or pending:
        from kantata_bridge_cli import console

        console.error(
            TOOL,
            f"{len(pending)} deliveries had no outcome before the timeout",
            f"See the function logs in {args.log_file}, or give the worker longer with --timeout.",
        )
        return 1
    if not convergence.ok:  # the convergence act (demo_convergence)
        print(
            f"error: recovery / reconciliation did not post: {convergence.errors or 'see the table'}",
            file=sys.stderr,
        )
        return 1
    return 0


def _kantata_target(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if args.kantata_base_url is None:
        if args.kantata_token_env:
            raise LocalStackError("--kantata-token-env needs --kantata-base-url")
        return None, None
    if not args.kantata_token_env:
        raise LocalStackError(
            "--kantata-base-url needs --kantata-token-env VAR (the token is read from $VAR)"
        )
    token = os.environ.get(args.kantata_token_env, "").strip()
    if not token:
        raise LocalStackError(f"environment variable {args.kantata_token_env} is empty or not set")
    _check_kantata_target(args.kantata_base_url, token, args.kantata_token_env)
    return args.kantata_base_url, token


def _check_kantata_target(url: str, token: str, token_env: str) -> None:
    """Refuse, before anything starts, a base URL or token the worker's Kantata client would refuse on every
    delivery: the URL check ``link`` and ``catalog`` use, then the client's own checks (token included)."""
    from kantata_bridge.kantata.client import KantataClient
    from kantata_bridge.kantata.errors import KantataValueError
    from kantata_bridge_cli.kantata_options import url_problem

    problem = url_problem(url, "--kantata-base-url")
    if problem:
        raise LocalStackError(
            problem, hint="Leave out --kantata-base-url and --kantata-token-env to use the local sandbox."
        )
    try:
        KantataClient(token, base_url=url).close()
    except KantataValueError as exc:  # the message never holds the token
        raise LocalStackError(
            f"cannot use --kantata-base-url with the token in ${token_env}: {exc}",
            hint=f"Check --kantata-base-url and the token in ${token_env}.",
        ) from None


def _webhook_secrets(args: argparse.Namespace) -> dict[str, list[str]]:
    if not args.webhook_secrets_env:
        return dict(SAMPLE_SECRETS)
    raw = os.environ.get(args.webhook_secrets_env, "")
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError:
        raise LocalStackError(f"{args.webhook_secrets_env} does not hold a JSON object") from None
    if not isinstance(doc, dict):
        raise LocalStackError(f"{args.webhook_secrets_env} does not hold a JSON object")
    return {str(k): v if isinstance(v, list) else [v] for k, v in doc.items()}


@dataclass(frozen=True, slots=True)
class StackCommands:
    """The operator commands aimed at one running local stack, ready to paste into another terminal."""

    endpoint_url: str
    queue_url: str
    dead_letter_queue_url: str
    state_table: str
    routing_config: Path

    @classmethod
    def of(cls, stack: LocalStack, routing_config: Path) -> StackCommands:
        res = stack.resources
        if res is None or stack.endpoint_url is None:
            raise LocalStackError("the local stack is not running")
        shown = routing_config
        with contextlib.suppress(ValueError):  # shorter to read and to paste when under the current directory
            shown = routing_config.resolve().relative_to(Path.cwd())
        return cls(stack.endpoint_url, res.queue_url, res.dead_letter_queue_url, res.state_table, shown)

    def redrive(self, source: str | None = None, indent: str = "  ") -> str:
        """``kantata-bridge redrive`` for this stack. The region matters: moto keeps each region's queues
        apart, and the caller's AWS configuration may name another one. moto has no StartMessageMoveTask,
        so the manual method (receive, re-send, delete)."""
        first = f"kantata-bridge redrive --endpoint-url {self.endpoint_url} --region {REGION} --method manual"
        if source:
            first += f" --source {source}"
        return (
            f"{indent}{first} \\\n"
            f"{indent}  --queue-url {self.queue_url} \\\n"
            f"{indent}  --dead-letter-queue-url {self.dead_letter_queue_url} --state-table {self.state_table}"
        )

    def explain(
        self,
        tracker: str = "github",
        delivery: str = "<delivery id>",
        hook: str | None = None,
        indent: str = "  ",
    ) -> str:
        """``kantata-bridge explain`` of one delivery, read from this stack's state table."""
        which = f"--tracker {tracker} --delivery-id {delivery}" + (f" --hook-id {hook}" if hook else "")
        return (
            f"{indent}kantata-bridge explain --endpoint-url {self.endpoint_url} --region {REGION} \\\n"
            f"{indent}  --state-table {self.state_table} --config {shlex.quote(str(self.routing_config))} \\\n"
            f"{indent}  {which}"
        )

    def explain_key(self, dedupe_key: str, indent: str = "  ") -> str:
        """``explain`` for a delivery known by its dedupe key (``tracker:hook id or -:delivery id``)."""
        tracker, hook, delivery = [*dedupe_key.split(":", 2), "", ""][:3]
        return self.explain(tracker, shlex.quote(delivery), None if hook in ("", "-") else hook, indent)


class ServeConsole:
    """What ``serve`` prints while it runs: a line per request and per worker outcome, and for a parked or
    dead-lettered delivery the commands to run next. Called from the stack's threads; if stdout is closed
    (``serve | head``) it sets ``closed`` so serve can stop instead of failing the functions' threads."""

    _INDENT: Final = " " * 10

    def __init__(self, commands: StackCommands | None = None, stream: IO[str] | None = None) -> None:
        self.commands = commands
        self.stream = stream
        self.closed = threading.Event()
        self._lock = threading.Lock()

    def exchange(self, exchange: Exchange) -> None:
        try:
            answer = json.loads(exchange.response_body)
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        detail = answer.get("delivery_id") or answer.get("reason") or answer.get("event_type") or ""
        self.write(
            f"{_now()}  HTTP {exchange.status} {exchange.method} {exchange.path}  {answer.get('status', '')} {detail}"
        )

    def outcome(self, outcome: WorkerOutcome) -> None:
        lines = [f"{_now()}  outcome {outcome.outcome:<8} {outcome.dedupe_key}  {outcome.detail}"]
        if outcome.outcome == "parked" and self.commands is not None:
            lines += [
                f"{self._INDENT}parked (Kantata refused it for good, or it cannot be mapped). What a replay would do:",
                self.commands.explain_key(outcome.dedupe_key, indent=self._INDENT + "  "),
                f"{self._INDENT}After a fix, queue it again:",
                self.commands.redrive("parked", indent=self._INDENT + "  "),
            ]
        self.write("\n".join(lines))

    def dead_lettered(self, dead: DeadLetter) -> None:
        lines = [f"{_now()}  dead-lettered {dead.dedupe_key}  after {dead.attempts} failed attempts"]
        if self.commands is not None:
            lines += [
                f"{self._INDENT}Its last attempt:",
                self.commands.explain_key(dead.dedupe_key, indent=self._INDENT + "  "),
                f"{self._INDENT}After a fix, move it back to the events queue:",
                self.commands.redrive("dlq", indent=self._INDENT + "  "),
            ]
        self.write("\n".join(lines))

    def write(self, text: str) -> None:
        """Print ``text`` and a newline, unless stdout was found closed (then nothing, and ``closed`` is set)."""
        if self.closed.is_set():
            return
        stream = self.stream if self.stream is not None else sys.stdout
        with self._lock:
            try:
                stream.write(text + "\n")
                stream.flush()
            except (BrokenPipeError, ValueError):  # a closed pipe, or a closed stream
                self.closed.set()


def run_serve(args: argparse.Namespace) -> int:
    """Keep the local stack up, printing a line per request and per worker outcome, until Ctrl-C (exit 0),
    SIGTERM or ``--duration``. Raises BrokenPipeError when stdout is closed meanwhile."""
    base_url, token = _kantata_target(args)
    secrets_doc = _webhook_secrets(args)
    out = ServeConsole()
    with (
        _log_file(args.log_file) as log,
        LocalStack(
            routing_config=args.routing_config,
            host=args.host,
            port=args.port,
            kantata_base_url=base_url,
            kantata_token=token,
            webhook_secrets=secrets_doc,
            log_stream=log,
            on_outcome=out.outcome,
            on_exchange=out.exchange,
            on_dead_letter=out.dead_lettered,
        ) as stack,
    ):
        out.commands = StackCommands.of(stack, args.routing_config)
        out.write(_serve_banner(stack, secrets_doc, args, out.commands))
        out.closed.wait(args.duration)  # None: until Ctrl-C (KeyboardInterrupt) or a closed stdout
    if out.closed.is_set():
        raise BrokenPipeError("stdout was closed")
    return 0


def _now() -> str:
    return dt.datetime.now().strftime("%H:%M:%S")


def _serve_banner(
    stack: LocalStack, secrets_doc: Mapping[str, list[str]], args: argparse.Namespace, commands: StackCommands
) -> str:
    from kantata_bridge_cli.kantata_options import shown_url  # never a user:password@ part

    github = stack.webhook_url("github")
    kantata = (
        stack.sandbox.base_url + f" (sandbox, token {SANDBOX_TOKEN})"
        if stack.sandbox
        else shown_url(args.kantata_base_url)
    )
    lines = [
        "kantata-bridge local stack is running (Ctrl-C to stop)",
        "",
        f"  GitHub webhook URL : {github}   content type application/json",
        f"  Jira webhook URL   : {stack.webhook_url('jira')}",
    ]
    if not args.webhook_secrets_env:
        lines += [
            f"  GitHub secret      : {secrets_doc['github'][0]}   (sample secret: local use only)",
            f"  Jira secret        : {secrets_doc['jira'][0]}",
        ]
    lines += [
        f"  Kantata            : {kantata}",
        f"  AWS (moto)         : {stack.endpoint_url}  (e.g. aws --endpoint-url {stack.endpoint_url} sqs list-queues)",
        f"  routing config     : {args.routing_config}",
        f"  function logs      : {args.log_file}",
        "",
        "Try it: a signed GitHub delivery of a sample payload, then what became of it:",
        "  body=events/payloads/github_issues_opened.json",
        "  id=$(python3 -c 'import uuid; print(uuid.uuid4())')",
        "  sig=$(openssl dgst -sha256 -hmac github-sample-secret < $body | sed 's/^.* //')",
        f"  curl -sS -X POST {github} -H 'content-type: application/json' \\",
        "    -H 'x-github-event: issues' -H \"x-github-delivery: $id\" \\",
        '    -H "x-hub-signature-256: sha256=$sig" --data-binary @$body',
        commands.explain("github", '"$id"'),
        "",
        "Redrive dead-lettered and parked deliveries (after a fix):",
        commands.redrive(),
        "",
    ]
    return "\n".join(lines)
