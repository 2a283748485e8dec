"""The sync worker's test environment, shared by its tests and ``benchmarks/worker.py``.

- ``fake_aws_env`` / ``create_worker_resources``: credentials, region and the AWS resources (inside an active
  moto ``mock_aws``). Tables, bucket and secrets come from ``kantata_bridge_dev.resources``, which reads them
  from template.yaml, so the tests' table definitions have one source: the template.
- ``envelope_for`` / ``sqs_event``: the envelope the receiver would queue for a sample delivery in
  events/apigw, and SQS events of them.
- ``load_handler`` / ``FakeLambdaContext``: the real handler module, loaded by file path.
- ``SqsSimulator``: visibility → redelivery → DLQ after maxReceiveCount, in a bounded loop.
- ``WorkerHarness``: resources, environment and routing config for one worker, restored on ``close()``.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import importlib.util
import itertools
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
APP_PATH = ROOT / "functions" / "sync_worker" / "app.py"
APIGW_DIR = ROOT / "events" / "apigw"
# us-east-1: the local stack's bucket is created without a LocationConstraint, which only it accepts.
REGION = "us-east-1"
PREFIX = "bridge"
STATE_TABLE = f"{PREFIX}-state"
PAYLOAD_BUCKET = f"{PREFIX}-payloads"
TOKEN_SECRET = f"{PREFIX}/kantata-token"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
_module_counter = itertools.count()
# The header each tracker carries its delivery id in (what envelope_for's delivery_id replaces).
DELIVERY_HEADERS = {
    "github": "x-github-delivery",
    "jira": "x-atlassian-webhook-identifier",
    "gitlab": "idempotency-key",
    "linear": "linear-delivery",
}


def fake_aws_env(setenv: Callable[[str, str], None]) -> None:
    """Point boto3 at fake credentials and the test region (``setenv``: e.g. ``monkeypatch.setenv``)."""
    for name, value in FAKE_AWS_ENV.items():
        setenv(name, value)


def create_worker_resources(kantata_token: str = "sandbox-token") -> Any:  # noqa: S107 - sandbox token
    """Tables, bucket and secrets as template.yaml defines them (names above), in the active moto mock.

    Returns kantata_bridge_dev.resources.LocalResources.
    """
    import boto3
    from kantata_bridge_dev.resources import create_resources

    return create_resources(
        boto3.Session(region_name=REGION), prefix=PREFIX, webhook_secrets={}, kantata_token=kantata_token
    )


@contextlib.contextmanager
def moto_dynamodb_atomic() -> Iterator[None]:
    """Make moto's in-process DynamoDB behave as DynamoDB does for concurrent writers, and fast.

    - Atomic and isolated: moto applies a transaction's items one by one and, when one fails, restores the
      tables from a copy taken before, so a write another thread made meanwhile is lost. Here each request
      runs under one lock (DynamoDB serialises conflicting writes itself).
    - Cheap rollback: instead of deep-copying every table a transaction touches (O(items in the table) per
      transaction, O(n^2) over a load test), only the items the transaction names are kept and put back.

    Active inside ``mock_aws``.
    """
    import copy
    import threading
    import types
    from unittest import mock

    from moto.dynamodb import models
    from moto.dynamodb.exceptions import TransactionCanceledException
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.RLock()
    original_call = DynamoHandler.call_action
    original_transact = models.DynamoDBBackend.transact_write_items

    def call_action(self: Any) -> Any:
        with lock:
            return original_call(self)

    def keep_table(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
        kept: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for item in transact_items:
            _, op = next(iter(item.items()))
            table = self.get_table(op["TableName"])
            if "Item" in op:
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            current = self.get_item(op["TableName"], key)
            kept.append(
                (op["TableName"], key, copy.deepcopy(current.to_json()["Attributes"]) if current else None)
            )
        try:
            with mock.patch.object(models, "copy", types.SimpleNamespace(deepcopy=keep_table)):
                original_transact(self, transact_items)
        except TransactionCanceledException:
            for table_name, key, attributes in kept:
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise

    with (
        mock.patch.object(DynamoHandler, "call_action", call_action),
        mock.patch.object(models.DynamoDBBackend, "transact_write_items", transact),
    ):
        yield


@dataclass
class FakeLambdaContext:
    """Just what Powertools reads from a Lambda context."""

    function_name: str = "sync-worker"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:sync-worker"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_handler() -> ModuleType:
    """A fresh copy of the worker's app module (each copy has its own BatchProcessor, like a Lambda
    execution environment; the package-level worker is shared)."""
    name = f"sync_worker_app_{next(_module_counter)}"
    spec = importlib.util.spec_from_file_location(name, APP_PATH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apigw_delivery(name: str) -> tuple[str, dict[str, str], bytes]:
    """(tracker, lower-cased headers, raw body) of a sample API Gateway event in events/apigw/."""
    doc = json.loads((APIGW_DIR / f"{name}.json").read_text(encoding="utf-8"))
    body = doc.get("body") or ""
    raw = base64.b64decode(body) if doc.get("isBase64Encoded") else body.encode("utf-8")
    headers = {k.lower(): v for k, v in (doc.get("headers") or {}).items()}
    return doc["pathParameters"]["tracker"], headers, raw


def envelope_for(
    name: str,
    *,
    delivery_id: str | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """The envelope the receiver would queue for a sample delivery. ``delivery_id`` replaces the tracker's
    delivery header; ``edit`` changes the JSON body (e.g. a newer updated_at) before it is queued."""
    from kantata_bridge_cli.explain import build_envelope

    tracker, headers, body = apigw_delivery(name)
    if edit is not None:
        doc = json.loads(body)
        edit(doc)
        body = json.dumps(doc).encode("utf-8")
        headers["content-type"] = "application/json"
    if delivery_id is not None:
        headers[DELIVERY_HEADERS[tracker]] = delivery_id
    return build_envelope(tracker, headers, body)


Message = tuple[str, dict[str, Any]]
"""One SQS message as Lambda hands it over: the body and the ``messageAttributes`` (Lambda's shape)."""


def wire(env: Any) -> Message:
    """The message the receiver queues for an envelope (v2 wire form), or a raw body string as it is (a v1
    envelope queued by an earlier version, or anything else a queue could hold)."""
    if isinstance(env, str):
        return env, {}
    body, attributes = env.to_sqs()
    return body, {
        name: {
            "stringValue": a["StringValue"],
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
        for name, a in attributes.items()
    }


def received(message: Mapping[str, Any]) -> Message:
    """A message as boto3's ``receive_message`` returns it (with ``MessageAttributeNames=["All"]``), in the
    shape Lambda hands the worker."""
    return message["Body"], {
        name: {
            "stringValue": a["StringValue"],
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
        for name, a in (message.get("MessageAttributes") or {}).items()
    }


def sqs_event(envelopes: Iterable[Any], *, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event for the worker (one record per envelope, or per raw message string)."""
    return {"Records": [sqs_record(str(uuid.uuid4()), wire(env), receive_count) for env in envelopes]}


def sqs_record(message_id: str, message: Message, receive_count: int) -> dict[str, Any]:
    """One SQS record as Lambda's event source mapping delivers it."""
    now_ms = str(int(time.time() * 1000))
    body, attributes = message
    return {
        "messageId": message_id,
        "receiptHandle": "rh-" + message_id,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": now_ms,
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": attributes,
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:bridge-events",
        "awsRegion": REGION,
    }


@dataclass
class SqsSimulator:
    """A queue in memory: each round hands up to ``batch_size`` visible messages to the handler; failed ones
    come back (receive count + 1) until ``max_receive_count``, then go to ``dlq``. Bounded by ``max_rounds``."""

    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    batch_size: int = 10
    max_receive_count: int = 5
    max_rounds: int = 10_000
    queue: collections.deque[tuple[str, Message, int]] = field(default_factory=collections.deque)
    dlq: list[Message] = field(default_factory=list)
    invocations: int = 0
    context: Callable[[], Any] = FakeLambdaContext  # a new Lambda context per invocation

    def requeue(self, message: str, attributes: Mapping[str, Any], delay_seconds: int) -> None:
        """What the worker's deferral sends: the same message again, as a new one (receive count 0)."""
        self.queue.append((str(uuid.uuid4()), (message, dict(attributes)), 0))

    def send(self, envelopes: Iterable[Any]) -> None:
        """Queue envelopes (sent in the receiver's wire form) or raw message bodies."""
        for env in envelopes:
            self.queue.append((str(uuid.uuid4()), wire(env), 0))

    def drain(self) -> None:
        """Run the handler until the queue is empty. Raises RuntimeError after ``max_rounds`` rounds."""
        rounds = 0
        while self.queue and rounds < self.max_rounds:
            rounds += 1
            batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
            records = [sqs_record(mid, message, count + 1) for mid, message, count in batch]
            self.invocations += 1
            response = self.handler({"Records": records}, self.context())
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for mid, message, count in batch:
                if mid not in failed:
                    continue
                if count + 1 >= self.max_receive_count:
                    self.dlq.append(message)
                else:
                    self.queue.append((mid, message, count + 1))
        if self.queue:
            raise RuntimeError(f"queue not drained after {self.max_rounds} rounds")


def deliver_concurrently(
    envelope: Any, copies: int = 5, *, deadline_seconds: float = 45
) -> list[BaseException]:
    """Hand the same delivery to ``copies`` "execution environments" at once (each its own copy of the app
    module, in its own thread). Each one repeats, as SQS would, until its record succeeds: a record that failed
    as "in progress elsewhere" comes back. Bounded by a deadline, not a count of tries, so a slow winner on a
    loaded machine cannot make a loser give up too early. Returns the errors (empty when all succeeded)."""
    import threading

    handlers = [load_handler() for _ in range(copies)]
    barrier = threading.Barrier(copies)
    errors: list[BaseException] = []

    def deliver(handler: ModuleType) -> None:
        try:
            barrier.wait()
            deadline = time.monotonic() + deadline_seconds
            while time.monotonic() < deadline:
                if handler.lambda_handler(sqs_event([envelope]), FakeLambdaContext()) == {
                    "batchItemFailures": []
                }:
                    return
                time.sleep(0.02)
            raise AssertionError("delivery never completed")
        except BaseException as exc:  # noqa: BLE001 - collected and returned to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(h,)) for h in handlers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=deadline_seconds + 15)
    return errors


class WorkerHarness:
    """AWS resources (inside an active moto ``mock_aws``), environment and routing config for one worker.

    ``routes``: the config's routes; use ``{workspace}`` in a workspace_id to mean the sandbox workspace
    created here. Call ``close()`` (or use as a context manager) to restore the environment.
    """

    def __init__(
        self,
        sandbox: Any,
        workdir: Path,
        *,
        routes: Sequence[Mapping[str, Any]] | None = None,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        from kantata_bridge.worker import runtime

        self.sandbox = sandbox
        self.workspace_id = sandbox.add_workspace("Acme webapp")
        self._saved_env = dict(os.environ)
        self._atomic = moto_dynamodb_atomic()
        self._atomic.__enter__()
        resources = create_worker_resources(sandbox.token)
        ws = self.workspace_id
        if routes is None:
            routes = [
                {"tracker": "github", "repository": "acme/webapp", "workspace_id": "{workspace}"},
                {"tracker": "jira", "project": "PROJ", "workspace_id": "{workspace}"},
                {"tracker": "gitlab", "project": "acme/platform/*", "workspace_id": "{workspace}"},
                {"tracker": "linear", "team": "ENG", "workspace_id": "{workspace}"},
            ]
        doc: dict[str, Any] = {
            "version": 1,
            "routes": [
                {k: (str(v).replace("{workspace}", ws) if k == "workspace_id" else v) for k, v in r.items()}
                for r in routes
            ],
        }
        if extra_config:
            doc.update(extra_config)
        self.config_path = workdir / "routing.json"
        self.config_path.write_text(json.dumps(doc), encoding="utf-8")
        os.environ.update(
            {
                **FAKE_AWS_ENV,
                "QUEUE_URL": resources.queue_url,
                "STATE_TABLE": resources.state_table,
                "PAYLOAD_BUCKET": resources.payload_bucket,
                "KANTATA_BASE_URL": sandbox.base_url,
                "KANTATA_TOKEN_SECRET_NAME": resources.kantata_token_secret_name,
                "ROUTING_CONFIG_FILE": str(self.config_path),
                "AWS_LAMBDA_FUNCTION_NAME": "sync-worker",
                "POWERTOOLS_METRICS_NAMESPACE": "KantataBridge",
            }
        )
        os.environ.pop("ROUTING_CONFIG_PARAMETER", None)
        self._reset_caches()
        self.runtime = runtime

    @staticmethod
    def _reset_caches() -> None:
        from aws_lambda_powertools.utilities import parameters
        from kantata_bridge.worker import runtime

        runtime.reset()
        parameters.clear_caches()

    def close(self) -> None:
        os.environ.clear()
        os.environ.update(self._saved_env)
        self._reset_caches()
        self._atomic.__exit__(None, None, None)

    def __enter__(self) -> WorkerHarness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def outcomes(self) -> Any:
        from kantata_bridge.worker.runtime import default_worker

        return default_worker().outcomes

    def reports(self) -> list[Any]:
        """The sandbox's status reports, oldest first."""
        return sorted(self.sandbox.state.status_reports.values(), key=lambda r: int(r.id))

    def posts(self) -> list[Any]:
        return [r for r in self.sandbox.requests if r.method == "POST" and r.path.endswith("/status_reports")]
