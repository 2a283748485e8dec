"""Shared set-up for the recovery and reconciliation tests: sample payloads for many distinct objects, the
scheduled functions' handlers loaded by file path, and their environment on a local stack."""

from __future__ import annotations

import copy
import importlib.util
import itertools
import json
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PAYLOADS = ROOT / "events" / "payloads"
GITHUB_SECRET = "github-sample-secret"  # the local stack's sample webhook secrets
JIRA_SECRET = "jira-sample-secret"
_counter = itertools.count()


def github_issue_payload(
    number: int, *, action: str = "opened", updated_at: str = "2026-11-20T09:15:00Z"
) -> dict[str, Any]:
    """The sample "issues opened" payload for issue ``number`` of acme/webapp (a distinct tracker object)."""
    doc = json.loads((PAYLOADS / "github_issues_opened.json").read_text(encoding="utf-8"))
    doc = copy.deepcopy(doc)
    issue = doc["issue"]
    issue["number"] = number
    issue["id"] = 2_690_000_000 + number
    issue["title"] = f"Issue {number}"
    issue["updated_at"] = updated_at
    for name in ("url", "html_url"):
        issue[name] = issue[name].rsplit("/", 1)[0] + f"/{number}"
    doc["action"] = action
    return doc


def load_function(name: str) -> ModuleType:
    """A fresh copy of functions/<name>/app.py (like a new Lambda execution environment)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"_{name}_app_{next(_counter)}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Context:
    """Just what Powertools and the runs read from a Lambda context."""

    function_name = "scheduled"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:scheduled"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def __init__(self, remaining_ms: int = 300_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def create_secret(stack: Any, name: str, value: str) -> str:
    """A Secrets Manager secret on the local stack's moto server; returns its name."""
    stack.session().client("secretsmanager").create_secret(Name=name, SecretString=value)
    return name


def clear_powertools_caches() -> None:
    """Powertools caches secrets and parameters per process; a test's moto server is new each time."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    from kantata_bridge.reconcile import jira
    from kantata_bridge.recovery import github

    github.dynamodb_client.cache_clear()
    jira.dynamodb_client.cache_clear()


def emitted_metrics(text: str) -> dict[str, float]:
    """Metric name -> value from the EMF lines Powertools printed."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = doc[metric["Name"]]
                found[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return found
