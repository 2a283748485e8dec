"""Jira reconciliation Lambda: queue the issue changes whose newer state the bridge never processed.

Runs on an EventBridge schedule (off by default; ``JiraReconcileEnabled``) or on a direct invoke with
``{"dry_run": true}`` and/or ``{"since": "2026-11-22T10:00:00Z"}``. Returns, and logs, a JSON summary; the
logic lives in ``kantata_bridge.reconcile.jira``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kantata_bridge.observability import logger, metrics
from kantata_bridge.reconcile.jira import run_job


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        summary = run_job(event, context)
    except Exception:  # noqa: BLE001 - a bug must not reach the caller as a stack trace; the log keeps it
        logger.exception("jira reconciliation failed unexpectedly")
        summary = {"ok": False, "error": "internal", "message": "unexpected error; see the function's log"}
    reconciled = 0 if summary.get("dry_run") else int(summary.get("enqueued", 0))
    metrics.add_metric(name="IssuesReconciled", unit=MetricUnit.Count, value=reconciled)
    metrics.add_metric(name="ReconcileRunFailed", unit=MetricUnit.Count, value=0 if summary.get("ok") else 1)
    if summary.get("ok"):
        logger.info("jira reconciliation finished", extra={"summary": summary})
    else:
        logger.error("jira reconciliation did not finish", extra={"summary": summary})
    return summary
