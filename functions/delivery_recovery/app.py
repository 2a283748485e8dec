"""GitHub delivery recovery Lambda: redeliver the failed webhook deliveries the bridge never saw.

Runs on an EventBridge schedule (off by default; ``GithubRecoveryEnabled``) or on a direct invoke with
``{"dry_run": true}`` and/or ``{"since": "2026-11-22T10:00:00Z"}``. Returns, and logs, a JSON summary; the
logic lives in ``kantata_bridge.recovery.github``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from kantata_bridge.observability import logger, metrics, run_scheduled_job
from kantata_bridge.recovery.github import run_job


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_scheduled_job(
        "delivery recovery",
        lambda: run_job(event, context),
        count_metric="DeliveriesRecovered",
        count=lambda summary: 0 if summary.get("dry_run") else int(summary.get("redelivered", 0)),
        failed_metric="RecoveryRunFailed",
    )
