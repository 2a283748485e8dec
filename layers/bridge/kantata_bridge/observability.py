"""The one place that owns the Powertools Logger and Metrics instances.

Both are cheap to build and read their settings (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE,
POWERTOOLS_LOG_LEVEL) from the environment. Import them from here so every module logs and counts through
the same objects.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "kantata-bridge")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "KantataBridge")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def run_scheduled_job(
    what: str,
    job: Callable[[], dict[str, Any]],
    *,
    count_metric: str,
    count: Callable[[dict[str, Any]], int],
    failed_metric: str,
) -> dict[str, Any]:
    """Run a scheduled job (catalog sync, delivery recovery, Jira reconciliation) the way every such Lambda
    does: a bug ends in a summary and a log line, never a stack trace to the caller; two metrics (what the run
    did, whether it failed); one log line with the summary. Returns the summary."""
    try:
        summary = job()
    except Exception:
        logger.exception(f"{what} failed unexpectedly")
        summary = {"ok": False, "error": "internal", "message": "unexpected error; see the function's log"}
    metrics.add_metric(name=count_metric, unit="Count", value=count(summary))
    metrics.add_metric(name=failed_metric, unit="Count", value=0 if summary.get("ok") else 1)
    if summary.get("ok"):
        logger.info(f"{what} finished", extra={"summary": summary})
    else:
        logger.error(f"{what} did not finish", extra={"summary": summary})
    return summary
