"""No secret, signature or token ever reaches a log line or a metric, for forged and genuine deliveries."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from kantata_bridge.receiver.credentials import StaticCredentials
from kantata_bridge.receiver.memory import MemoryDeliveryQueue
from kantata_bridge.receiver.service import Receiver
from kantata_bridge.receiver.settings import load_settings
from kantata_bridge.receiver.telemetry import logger
from kantata_bridge.trackers.registry import ADAPTERS

from tests.unit.test_receiver_app import APP, CONTEXT, load

ROOT = Path(__file__).resolve().parents[2]
SECRET = "github-sample-secret"
OTHER_SECRET = "jira-secret-never-logged"
TOKEN = "automation-token-never-logged"


class Capture(logging.Handler):
    """Formats every record as the receiver's logger prints it (Powertools' JSON shape)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(logger.format(record))


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Any:
    environ = {
        "QUEUE_URL": "memory://q",
        "WEBHOOK_SECRETS_NAME": "s",
        "JIRA_AUTH_MODE": "shared-token",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
    receiver = Receiver(
        load_settings(ADAPTERS, environ),
        ADAPTERS,
        StaticCredentials({"github": [SECRET], "jira": [OTHER_SECRET], "jira_tokens": [TOKEN]}),
        MemoryDeliveryQueue(),
    )
    monkeypatch.setattr(APP, "default_receiver", lambda: receiver)
    handler = Capture()
    logger.std_logger.addHandler(handler)
    previous = logger.level
    logger.set_level("DEBUG")
    yield handler
    logger.set_level(previous)
    logger.std_logger.removeHandler(handler)


def test_logs_and_metrics_never_contain_secrets_signatures_or_tokens(captured: Capture, capsys: Any) -> None:
    # Given a genuine delivery, a forged one and shared-token deliveries (right and wrong token)
    genuine = json.loads((ROOT / "events/apigw/github_issues_opened.json").read_text())
    forged = json.loads(json.dumps(genuine))
    forged_signature = "sha256=" + hmac.new(b"attacker", forged["body"].encode(), hashlib.sha256).hexdigest()
    forged["headers"]["x-hub-signature-256"] = forged_signature
    jira = json.loads((ROOT / "events/apigw/jira_issue_created.json").read_text())
    wrong_token = "wrong-token-never-logged"
    statuses = [
        APP.lambda_handler(genuine, CONTEXT)["statusCode"],
        APP.lambda_handler(forged, CONTEXT)["statusCode"],
    ]
    for token in (TOKEN, wrong_token):
        jira["headers"]["x-bridge-token"] = token
        statuses.append(APP.lambda_handler(jira, CONTEXT)["statusCode"])
    # When the handler has logged and flushed metrics
    output = "\n".join(captured.lines) + capsys.readouterr().out
    # Then every outcome was logged, and no sensitive string appears anywhere
    assert statuses == [202, 401, 202, 401]
    assert "delivery queued" in output
    assert "delivery refused" in output
    genuine_signature = genuine["headers"]["x-hub-signature-256"]
    for sensitive in (
        SECRET,
        OTHER_SECRET,
        TOKEN,
        wrong_token,
        genuine_signature,
        genuine_signature.split("=", 1)[1],
        forged_signature.split("=", 1)[1],
        genuine["headers"]["x-hub-signature"].split("=", 1)[1],
    ):
        assert sensitive not in output


def test_correlation_id_is_the_delivery_id(captured: Capture) -> None:
    event = json.loads((ROOT / "events/apigw/github_issues_closed.json").read_text())
    APP.lambda_handler(event, CONTEXT)
    queued = [json.loads(line) for line in captured.lines if "delivery queued" in line]
    assert queued[-1]["correlation_id"] == event["headers"]["x-github-delivery"]


def test_queue_failure_is_logged_as_an_error_with_its_cause(
    monkeypatch: pytest.MonkeyPatch, captured: Capture
) -> None:
    from kantata_bridge.receiver.errors import EnqueueError

    class BrokenQueue:
        def send(self, envelope: object) -> None:
            try:
                raise ConnectionError("connection refused by 127.0.0.1:4566")
            except ConnectionError as exc:
                raise EnqueueError("queue_unavailable", "the queue did not take the delivery") from exc

    receiver = Receiver(
        load_settings(ADAPTERS, {"QUEUE_URL": "q", "WEBHOOK_SECRETS_NAME": "s"}),
        ADAPTERS,
        StaticCredentials({"github": [SECRET]}),
        BrokenQueue(),
    )
    monkeypatch.setattr(APP, "default_receiver", lambda: receiver)
    event = json.loads((ROOT / "events/apigw/github_issues_opened.json").read_text())
    assert APP.lambda_handler(event, CONTEXT)["statusCode"] == 503
    (line,) = [json.loads(text) for text in captured.lines if "could not be taken" in text]
    assert line["level"] == "ERROR"
    assert "connection refused" in line["cause"]
    assert SECRET not in json.dumps(line)


def test_powertools_debug_switches_never_print_the_event(
    monkeypatch: pytest.MonkeyPatch, captured: Capture, capsys: Any
) -> None:
    # Given an operator who turned on Powertools' dev mode and event logging (both read at import)
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    app = load("receiver_app_debug", "functions/webhook_receiver/app.py")
    monkeypatch.setattr(app, "default_receiver", APP.default_receiver)
    event = json.loads((ROOT / "events/apigw/github_issues_opened.json").read_text())
    # When a genuine delivery is received
    assert app.lambda_handler(event, CONTEXT)["statusCode"] == 202
    # Then neither the signature nor the body appears in what the function printed or logged
    output = "\n".join(captured.lines) + capsys.readouterr().out
    assert "delivery queued" in output
    assert event["headers"]["x-hub-signature-256"].split("=", 1)[1] not in output
    assert "Checkout fails on Safari" not in output
