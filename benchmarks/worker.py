"""Sync worker benchmark, and the in-process harness the worker's integration tests share.

``run()`` drives the real handler (functions/sync_worker/app.py) with moto's ``mock_aws`` for DynamoDB, S3
and Secrets Manager and the Kantata sandbox over HTTP on 127.0.0.1, and prints per delivery: Kantata calls
(target: one per distinct object per batch) and DynamoDB requests (target: at most 3), counted with botocore
event hooks and the sandbox's request log. Figures are printed, never asserted.

``WorkerHarness`` (used by tests/integration/test_worker_*.py): tables, secret, environment and routing
config for one worker; envelopes from the sample deliveries in events/apigw; SQS events; and a small SQS
simulator (visibility → redelivery → DLQ after maxReceiveCount) driving the handler in a bounded loop.
"""

from __future__ import annotations

import base64
import collections
import importlib.util
import itertools
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP_PATH = ROOT / "functions" / "sync_worker" / "app.py"
APIGW_DIR = ROOT / "events" / "apigw"
IDEMPOTENCY_TABLE = "bridge-idempotency"
STATE_TABLE = "bridge-state"
PAYLOAD_BUCKET = "bridge-payloads"
TOKEN_SECRET = "bridge/kantata-token"
_module_counter = itertools.count()


@dataclass
class FakeLambdaContext:
    """Just what Powertools reads from a Lambda context."""

    function_name: str = "sync-worker"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:sync-worker"
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
    from kantata_bridge_dev.explain import build_envelope

    tracker, headers, body = apigw_delivery(name)
    if edit is not None:
        doc = json.loads(body)
        edit(doc)
        body = json.dumps(doc).encode("utf-8")
        headers["content-type"] = "application/json"
    if delivery_id is not None:
        header = "x-github-delivery" if tracker == "github" else "x-atlassian-webhook-identifier"
        headers[header] = delivery_id
    return build_envelope(tracker, headers, body)


def sqs_event(envelopes: Iterable[Any], *, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event for the worker (one record per envelope, or per raw message string)."""
    records = []
    for env in envelopes:
        body = env if isinstance(env, str) else env.to_message()
        records.append(_record(str(uuid.uuid4()), body, receive_count))
    return {"Records": records}


def _record(message_id: str, body: str, receive_count: int) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": "rh-" + message_id,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:bridge-events",
        "awsRegion": "eu-west-1",
    }


@dataclass
class SqsSimulator:
    """A queue in memory: each round hands up to ``batch_size`` visible messages to the handler; failed ones
    come back (receive count + 1) until ``max_receive_count``, then go to ``dlq``. Bounded by ``max_rounds``."""

    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    batch_size: int = 10
    max_receive_count: int = 5
    max_rounds: int = 10_000
    queue: collections.deque[tuple[str, str, int]] = field(default_factory=collections.deque)
    dlq: list[str] = field(default_factory=list)
    invocations: int = 0

    def send(self, bodies: Iterable[str]) -> None:
        for body in bodies:
            self.queue.append((str(uuid.uuid4()), body, 0))

    def drain(self) -> None:
        rounds = 0
        while self.queue and rounds < self.max_rounds:
            rounds += 1
            batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
            records = [_record(mid, body, count + 1) for mid, body, count in batch]
            self.invocations += 1
            response = self.handler({"Records": records}, FakeLambdaContext())
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for mid, body, count in batch:
                if mid not in failed:
                    continue
                if count + 1 >= self.max_receive_count:
                    self.dlq.append(body)
                else:
                    self.queue.append((mid, body, count + 1))
        if self.queue:
            raise RuntimeError(f"queue not drained after {self.max_rounds} rounds")


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
        import boto3
        from kantata_bridge.worker import runtime

        self.sandbox = sandbox
        self.workspace_id = sandbox.add_workspace("Acme webapp")
        self._saved_env = dict(os.environ)
        region = "eu-west-1"
        ddb = boto3.client("dynamodb", region_name=region)
        ddb.create_table(
            TableName=IDEMPOTENCY_TABLE,
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.create_table(
            TableName=STATE_TABLE,
            AttributeDefinitions=[
                {"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        boto3.client("s3", region_name=region).create_bucket(
            Bucket=PAYLOAD_BUCKET, CreateBucketConfiguration={"LocationConstraint": region}
        )
        boto3.client("secretsmanager", region_name=region).create_secret(
            Name=TOKEN_SECRET, SecretString=sandbox.token
        )
        ws = self.workspace_id
        if routes is None:
            routes = [
                {"tracker": "github", "repository": "acme/webapp", "workspace_id": "{workspace}"},
                {"tracker": "jira", "project": "PROJ", "workspace_id": "{workspace}"},
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
                "AWS_DEFAULT_REGION": region,
                "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
                "STATE_TABLE": STATE_TABLE,
                "PAYLOAD_BUCKET": PAYLOAD_BUCKET,
                "KANTATA_BASE_URL": sandbox.base_url,
                "KANTATA_TOKEN_SECRET_NAME": TOKEN_SECRET,
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


class DynamoDBCounter:
    """Counts DynamoDB API calls made through a client (botocore ``before-call`` hook)."""

    def __init__(self, client: Any) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def _edit_updated_at(seconds: int) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        doc["issue"]["updated_at"] = f"2026-11-20T10:{seconds // 60:02d}:{seconds % 60:02d}Z"

    return edit


def _issue_number(number: int, seconds: int) -> Callable[[dict[str, Any]], None]:
    def edit(doc: dict[str, Any]) -> None:
        _edit_updated_at(seconds)(doc)
        doc["issue"]["number"] = number
        doc["issue"]["html_url"] = f"https://github.com/acme/webapp/issues/{number}"

    return edit


def _scenario(
    title: str, harness: WorkerHarness, handler: Any, batches: list[list[Any]], counter: DynamoDBCounter
) -> dict[str, Any]:
    harness.sandbox.clear_requests()
    counter.calls.clear()
    deliveries = sum(len(b) for b in batches)
    objects_per_batch = sum(len({_object_of(e) for e in b}) for b in batches)
    started = time.perf_counter()
    for batch in batches:
        handler.lambda_handler(sqs_event(batch), FakeLambdaContext())
    elapsed = time.perf_counter() - started
    kantata = len(harness.sandbox.requests)
    return {
        "scenario": title,
        "deliveries": deliveries,
        "distinct objects per batch (sum)": objects_per_batch,
        "kantata calls": kantata,
        "kantata calls / distinct object": round(kantata / max(objects_per_batch, 1), 2),
        "dynamodb requests": counter.total,
        "dynamodb requests / delivery": round(counter.total / max(deliveries, 1), 2),
        "dynamodb by operation": dict(counter.calls),
        "ms / delivery": round(elapsed * 1000 / max(deliveries, 1), 2),
    }


def _object_of(envelope: Any) -> str:
    doc = json.loads(envelope.body)
    return str(doc.get("issue", {}).get("number"))


def run() -> None:
    """Print the worker's per-delivery Kantata calls and DynamoDB requests for a few traffic shapes."""
    import tempfile

    from kantata_sandbox.server import KantataSandbox
    from moto import mock_aws

    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    results = []
    with tempfile.TemporaryDirectory() as tmp, mock_aws(), KantataSandbox() as sandbox:
        harness = WorkerHarness(sandbox, Path(tmp))
        try:
            from kantata_bridge.worker.runtime import dynamodb_client

            counter = DynamoDBCounter(dynamodb_client())
            handler = load_handler()
            n = 50
            distinct = [
                [
                    envelope_for(
                        "github_issues_opened", delivery_id=str(uuid.uuid4()), edit=_issue_number(1000 + i, 1)
                    )
                    for i in range(j, j + 10)
                ]
                for j in range(0, n, 10)
            ]
            results.append(_scenario("distinct issues, batches of 10", harness, handler, distinct, counter))
            bursts = [
                [
                    envelope_for(
                        "github_issues_opened",
                        delivery_id=str(uuid.uuid4()),
                        edit=_issue_number(2000 + j, 1 + i),
                    )
                    for i in range(10)
                ]
                for j in range(5)
            ]
            results.append(_scenario("10 edits of one issue per batch", harness, handler, bursts, counter))
            repeats = [distinct[0]]
            results.append(
                _scenario("redelivery of an already-posted batch", harness, handler, repeats, counter)
            )
        finally:
            harness.close()
    for row in results:
        print(json.dumps(row))


if __name__ == "__main__":
    run()
