"""The receiver's light telemetry writes what Powertools would (keys, EMF) and its cold path stays light."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from kantata_bridge.receiver.telemetry import Logger, Metrics

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = SimpleNamespace(
    function_name="webhook-receiver",
    memory_limit_in_mb=256,
    invoked_function_arn="arn:aws:lambda:eu-west-1:123456789012:function:webhook-receiver",
    aws_request_id="req-9",
)


def test_a_log_line_is_one_json_object_with_the_invocation_keys_and_its_own_fields(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "bridge-x")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-abc-def;Parent=1;Sampled=0")
    out = io.StringIO()
    logger = Logger("test.telemetry.keys", stream=out)
    logger.start(CONTEXT, cold_start=True)
    logger.set_correlation_id("delivery-1")
    logger.info("delivery queued", extra={"tracker": "github", "body_bytes": 12})
    (line,) = out.getvalue().splitlines()
    doc = json.loads(line)
    assert doc["level"] == "INFO"
    assert doc["message"] == "delivery queued"
    assert doc["location"].startswith("test_a_log_line_is_one_json_object")
    assert {k: doc[k] for k in ("service", "cold_start", "function_name", "function_request_id")} == {
        "service": "bridge-x",
        "cold_start": True,
        "function_name": "webhook-receiver",
        "function_request_id": "req-9",
    }
    assert doc["correlation_id"] == "delivery-1"
    assert doc["xray_trace_id"] == "1-abc-def"
    assert (doc["tracker"], doc["body_bytes"]) == ("github", 12)


def test_the_next_invocation_forgets_the_last_ones_keys():
    out = io.StringIO()
    logger = Logger("test.telemetry.forget", stream=out)
    logger.start(CONTEXT, cold_start=True)
    logger.set_correlation_id("first")
    logger.start(CONTEXT, cold_start=False)
    logger.warning("delivery refused")
    doc = json.loads(out.getvalue())
    assert "correlation_id" not in doc
    assert doc["cold_start"] is False


@pytest.mark.parametrize(("level", "written"), [("DEBUG", 2), ("INFO", 1), ("ERROR", 0), ("nonsense", 1)])
def test_the_level_setting_filters_lines(monkeypatch, level, written):
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", level)
    out = io.StringIO()
    logger = Logger(f"test.telemetry.level.{level}", stream=out)
    logger.debug("detail")
    logger.info("summary")
    assert len(out.getvalue().splitlines()) == written


def test_an_exception_line_names_the_error_with_its_traceback():
    out = io.StringIO()
    logger = Logger("test.telemetry.exception", stream=out)
    try:
        raise KeyError("boom")
    except KeyError:
        logger.exception("unexpected error while receiving a delivery")
    doc = json.loads(out.getvalue())
    assert doc["level"] == "ERROR"
    assert doc["exception_name"] == "KeyError"
    assert "Traceback" in doc["exception"]


def test_metrics_flush_as_one_emf_document_in_powertools_shape(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Bridge")
    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)
    out = io.StringIO()
    metrics = Metrics(stream=out)
    metrics.add_dimension("tracker", "jira")
    metrics.add_metric("Received", "Count", 1)
    metrics.add_metric("RejectedSignature", "Count", 1)
    metrics.add_metric("Received", "Count", 1)
    metrics.flush()
    metrics.flush()  # nothing new: nothing written
    (line,) = out.getvalue().splitlines()
    doc = json.loads(line)
    (directive,) = doc["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Bridge"
    assert directive["Dimensions"] == [["tracker", "service"]]
    assert [m["Name"] for m in directive["Metrics"]] == ["Received", "RejectedSignature"]
    assert (doc["tracker"], doc["service"], doc["Received"], doc["RejectedSignature"]) == (
        "jira",
        "kantata-bridge",
        2.0,
        1.0,
    )


def test_metrics_can_be_switched_off_as_with_powertools(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    out = io.StringIO()
    metrics = Metrics(stream=out)
    metrics.add_metric("Received", "Count", 1)
    metrics.flush()
    assert out.getvalue() == ""


def test_serving_a_delivery_imports_neither_powertools_nor_other_trackers():
    # Given a fresh process, as a Lambda cold start: the receiver imported and one GitHub delivery served
    script = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", "functions/webhook_receiver/app.py")
app = importlib.util.module_from_spec(spec); spec.loader.exec_module(app)
from kantata_bridge.receiver.credentials import StaticCredentials
from kantata_bridge.receiver.memory import MemoryDeliveryQueue
from kantata_bridge.receiver.service import Receiver
from kantata_bridge.receiver.settings import load_settings
from kantata_bridge.trackers.registry import ADAPTERS
receiver = Receiver(load_settings(ADAPTERS, {"QUEUE_URL": "q", "WEBHOOK_SECRETS_NAME": "s"}), ADAPTERS,
                    StaticCredentials({"github": ["github-sample-secret"]}), MemoryDeliveryQueue())
event = json.load(open("events/apigw/github_issues_opened.json"))
class C: function_name = "f"; memory_limit_in_mb = 256; invoked_function_arn = "a"; aws_request_id = "r"
assert app.handle(event, C(), lambda: receiver)["statusCode"] == 202
loaded = sorted(m for m in sys.modules if m.startswith(("aws_lambda_powertools", "kantata_bridge.trackers.",
    "kantata_bridge.worker", "kantata_bridge.mapping", "kantata_bridge.kantata", "yaml", "requests")))
print(json.dumps(loaded))
"""
    done = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            "PYTHONPATH": str(ROOT / "layers" / "bridge"),
            "PATH": "/usr/bin:/bin",
            "AWS_DEFAULT_REGION": "eu-west-1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = json.loads(done.stdout.splitlines()[-1])
    # Then only the trackers it serves by default were imported: no Powertools, no worker-side code
    assert loaded == [
        "kantata_bridge.trackers.base",
        "kantata_bridge.trackers.github",
        "kantata_bridge.trackers.jira",
        "kantata_bridge.trackers.registry",
    ]
