"""Catalog sync Lambda: mirror tracker workflows into Kantata task status sets.

Runs on an EventBridge schedule (``CATALOG_SCHEDULE_MODE``, default apply) or on a direct invoke with
``{"mode": "plan" | "apply", "prune": bool}``. Returns, and logs, a JSON summary of what it planned or
changed; the logic lives in ``kantata_bridge.catalog``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from kantata_bridge.catalog.job import run_job
from kantata_bridge.observability import logger, metrics, run_scheduled_job


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return run_scheduled_job(
        "catalog sync",
        lambda: run_job(event),
        count_metric="CatalogChanges",
        count=lambda summary: int(summary.get("changes", 0)),
        failed_metric="CatalogRunFailed",
    )
