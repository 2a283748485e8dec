"""Webhook receiver benchmarks: cold init against a hand-written minimum, and warm cost per delivery.

Cold: a fresh Python process imports the receiver Lambda and serves one signed GitHub delivery (reading
the secret from Secrets Manager, sending to SQS) against a moto server on 127.0.0.1. The baseline is a
fresh process doing the minimum by hand: import boto3, build an SQS client, check the HMAC, send. A second
baseline also reads the secret from Secrets Manager, as any real receiver must. Each round runs every kind
once, in a rotating order; the ratio of the receiver to the baseline *of the same round* is the figure
(median and quartiles over the rounds), so a machine that slows down for a while slows both sides. Times
are taken inside each child, from its first statement to the answer, so interpreter start-up (the same for
both) does not dilute the ratio; process wall time is shown too.

Warm: in one process, rounds that alternate the handler (25 KB delivery) and the baseline (the HMAC check
and the same ``send_message`` of the body as is). Both SQS clients answer from a stub at botocore's
``before-send``, so request building, serialisation and signing are counted on both sides and no network
is. The overhead is the median of the per-round differences, with its quartiles.

Targets: cold ratio <= 1.05; warm overhead <= 0.3 ms. ``BENCH_REPEAT`` sets the cold rounds (default 21).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECRET = "github-sample-secret"
SECRET_NAME = "bench/webhook-secrets"
REGION = "eu-west-1"
COLD_TARGET = 1.05
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}  # moto accepts anything
WARM_TARGET_MS = 0.3

# Each child reads the event before starting its clock: loading the test input is no part of either side.
RECEIVER_CHILD = """
import json, sys
event = json.load(open(sys.argv[2]))
import time
t0 = time.perf_counter()
import importlib.util
spec = importlib.util.spec_from_file_location("app", sys.argv[3])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
class Context:
    function_name = "webhook-receiver"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:webhook-receiver"
    aws_request_id = "bench"
status = app.lambda_handler(event, Context())["statusCode"]
elapsed = time.perf_counter() - t0
open(sys.argv[1], "w").write(json.dumps({"ms": elapsed * 1000, "status": status}))
"""

BASELINE_CHILD = """
import json, sys
event = json.load(open(sys.argv[2]))
import time
t0 = time.perf_counter()
import hashlib, hmac, os
import boto3
headers = event["headers"]
body = event["body"].encode("utf-8")
if sys.argv[3] == "secret":
    secret = json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=os.environ["WEBHOOK_SECRETS_NAME"])["SecretString"])["github"][0]
else:
    secret = os.environ["BENCH_SECRET"]
sqs = boto3.client("sqs")
expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
status = 401
if hmac.compare_digest(expected, headers["x-hub-signature-256"]):
    sqs.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=body.decode("utf-8"))
    status = 202
elapsed = time.perf_counter() - t0
open(sys.argv[1], "w").write(json.dumps({"ms": elapsed * 1000, "status": status}))
"""

WARM_CHILD = """
import json, os, sys, time, hmac, hashlib, statistics, importlib.util
event = json.load(open(sys.argv[2]))
spec = importlib.util.spec_from_file_location("app", sys.argv[3])
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
import boto3
from botocore.awsrequest import AWSResponse
from kantata_bridge.receiver.clients import AwsClients
from kantata_bridge.receiver.credentials import SecretsManagerCredentials
from kantata_bridge.receiver.queue import SqsDeliveryQueue
from kantata_bridge.receiver.service import Receiver
from kantata_bridge.receiver.settings import load_settings
from kantata_bridge.trackers.registry import ADAPTERS

class _Raw:
    def __init__(self, data):
        self._data = data
    def stream(self, **kwargs):
        yield self._data

ANSWER = json.dumps({"MD5OfMessageBody": "0" * 32, "MessageId": "m"}).encode()

def stub(request, **kwargs):
    # Answer every SQS call here: serialising and signing the request happened, no network does.
    return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, _Raw(ANSWER))

clients = AwsClients()
clients.client("sqs").meta.events.register_first("before-send.sqs", stub)
settings = load_settings(ADAPTERS)
receiver = Receiver(
    settings, ADAPTERS, SecretsManagerCredentials(settings.secrets_name, 300, clients),
    SqsDeliveryQueue(settings.queue_url, clients),
)
app.default_receiver = lambda: receiver
class Context:
    function_name = "webhook-receiver"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:webhook-receiver"
    aws_request_id = "bench"
ctx = Context()
sys.stdout = open(os.devnull, "w")  # the handler's log and metric lines: written, not kept
assert app.lambda_handler(event, ctx)["statusCode"] == 202
sqs = boto3.client("sqs")
sqs.meta.events.register_first("before-send.sqs", stub)
queue_url = os.environ["QUEUE_URL"]
header = event["headers"]["x-hub-signature-256"]
secret = os.environ["BENCH_SECRET"].encode()
def baseline():
    body = event["body"].encode()
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    if hmac.compare_digest(expected, header):
        sqs.send_message(QueueUrl=queue_url, MessageBody=event["body"])
baseline()
rounds = int(sys.argv[4])
handler, base, diff = [], [], []
for i in range(rounds):
    pair = []
    for which in ((0, 1) if i % 2 else (1, 0)):
        t = time.perf_counter_ns()
        app.lambda_handler(event, ctx) if which == 0 else baseline()
        pair.append((which, time.perf_counter_ns() - t))
    h = next(ns for w, ns in pair if w == 0); b = next(ns for w, ns in pair if w == 1)
    handler.append(h); base.append(b); diff.append(h - b)
diff.sort()
open(sys.argv[1], "w").write(json.dumps({
    "handler_ms": statistics.median(handler) / 1e6, "baseline_ms": statistics.median(base) / 1e6,
    "overhead_ms": statistics.median(diff) / 1e6, "q1_ms": diff[len(diff) // 4] / 1e6,
    "q3_ms": diff[(3 * len(diff)) // 4] / 1e6, "body_bytes": len(event["body"].encode()), "rounds": rounds,
}))
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def delivery_event(target_bytes: int | None = None) -> dict[str, Any]:
    """The sample 'issues opened' event, or the same delivery padded to ``target_bytes`` and re-signed."""
    event: dict[str, Any] = json.loads((ROOT / "events/apigw/github_issues_opened.json").read_text())
    if target_bytes is None:
        return event
    doc = json.loads(event["body"])
    line = "Console: TypeError: undefined is not a function (checkout.js:212). "
    doc["issue"]["body"] += " " + line * (target_bytes // len(line) + 1)
    excess = len(json.dumps(doc, separators=(",", ":")).encode()) - target_bytes
    doc["issue"]["body"] = doc["issue"]["body"][:-excess]  # ASCII padding: one character per byte
    body = json.dumps(doc, separators=(",", ":"))
    signature = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    event["headers"] = {
        **event["headers"],
        "x-hub-signature-256": f"sha256={signature}",
        "content-length": str(len(body.encode())),
    }
    event["body"] = body
    return event


def child(script: str, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", script, out.name, *args],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=120,
        )
        wall = (time.perf_counter() - started) * 1000
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
    result["wall_ms"] = wall
    return result


def run() -> None:
    """Measure and print the cold-start ratio and the warm per-delivery overhead."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    repeat = int(os.environ.get("BENCH_REPEAT", "21"))
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        aws = {
            "region_name": REGION,
            "endpoint_url": endpoint,
            "aws_access_key_id": "x",
            "aws_secret_access_key": "x",
        }
        queue_url = boto3.client("sqs", **aws).create_queue(QueueName="bench-events")["QueueUrl"]
        boto3.client("s3", **aws).create_bucket(
            Bucket="bench-payloads", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        boto3.client("secretsmanager", **aws).create_secret(
            Name=SECRET_NAME, SecretString=json.dumps({"github": [SECRET]})
        )
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "POWERTOOLS_", "QUEUE_", "PAYLOAD_", "WEBHOOK_"))
        }
        env.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_DEFAULT_REGION=REGION,
            QUEUE_URL=queue_url,
            PAYLOAD_BUCKET="bench-payloads",
            WEBHOOK_SECRETS_NAME=SECRET_NAME,
            BENCH_SECRET=SECRET,
            **DUMMY_CREDENTIALS,
            PYTHONPATH=os.pathsep.join([str(ROOT / "layers" / "bridge"), env.get("PYTHONPATH", "")]).rstrip(
                os.pathsep
            ),
        )
        with tempfile.TemporaryDirectory() as tmp:
            # Bytecode as a deployed package would have it (compiled once, by the uncounted warm-up run),
            # kept in a temporary prefix so the repository tree is not touched.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
            event_file = Path(tmp) / "event.json"
            event_file.write_text(json.dumps(delivery_event()))
            app_file = str(ROOT / "functions/webhook_receiver/app.py")
            kinds = {
                "receiver": (RECEIVER_CHILD, [str(event_file), app_file]),
                "baseline": (BASELINE_CHILD, [str(event_file), "env"]),
                "baseline+secret": (BASELINE_CHILD, [str(event_file), "secret"]),
            }
            results: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
            order = list(kinds)
            for kind in order:  # warm the file-system cache; not counted
                child(*kinds[kind], env)
            for i in range(repeat):
                for kind in order[i % len(order) :] + order[: i % len(order)]:
                    result = child(*kinds[kind], env)
                    if result["status"] not in (200, 202):
                        raise RuntimeError(f"{kind} answered {result['status']}")
                    results[kind].append(result)

            warm_file = Path(tmp) / "warm.json"
            warm_file.write_text(json.dumps(delivery_event(25 * 1024)))
            warm = child(WARM_CHILD, [str(warm_file), app_file, "4000"], env)
    finally:
        server.stop()

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    def paired(kind: str) -> list[float]:
        return sorted(r["ms"] / b["ms"] for r, b in zip(results[kind], results["baseline"], strict=True))

    def quartiles(values: list[float]) -> str:
        return f"quartiles {values[len(values) // 4]:.3f}-{values[(3 * len(values)) // 4]:.3f}"

    rec, base, base_secret = (median(k, "ms") for k in ("receiver", "baseline", "baseline+secret"))
    print(f"cold init + first delivery, {repeat} rounds of fresh processes (moto server on 127.0.0.1):")
    for kind, value in (("receiver", rec), ("baseline", base), ("baseline + secret", base_secret)):
        key = kind.replace(" + ", "+")
        spread = f"{min(r['ms'] for r in results[key]):.0f}-{max(r['ms'] for r in results[key]):.0f}"
        print(
            f"  {kind:<18}{value:7.1f} ms median, {spread} ms range (process wall {median(key, 'wall_ms'):.0f} ms)"
        )
    ratios = paired("receiver")
    print(
        f"  cold ratio receiver / baseline, same round: median {statistics.median(ratios):.3f},"
        f" {quartiles(ratios)}, range {ratios[0]:.3f}-{ratios[-1]:.3f}  (target <= {COLD_TARGET})"
    )
    secret_ratios = paired("baseline+secret")
    print(
        f"  what reading the secret costs a bare handler, same round: median {statistics.median(secret_ratios):.3f},"
        f" {quartiles(secret_ratios)}"
    )
    print(f"warm, {warm['body_bytes']} B delivery, {warm['rounds']} paired rounds (SQS answered by a stub):")
    print(
        f"  handler {warm['handler_ms']:.3f} ms, baseline (HMAC + send_message) {warm['baseline_ms']:.3f} ms"
    )
    print(
        f"  warm overhead per delivery = {warm['overhead_ms']:.3f} ms median,"
        f" quartiles {warm['q1_ms']:.3f}-{warm['q3_ms']:.3f} ms  (target <= {WARM_TARGET_MS} ms)"
    )
