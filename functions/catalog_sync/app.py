"""Catalog sync Lambda: mirror tracker workflows into Kantata task status sets.

Runs on an EventBridge schedule (``CATALOG_SCHEDULE_MODE``, default apply) or on a direct invoke with
``{"mode": "plan" | "apply", "prune": bool}``. Returns, and logs, a JSON summary of what it planned or
changed; the logic lives in ``kantata_bridge.catalog``.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from kantata_bridge.catalog.job import run_job
from kantata_bridge.observability import logger, metrics


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        summary = run_job(event)
    except Exception:  # noqa: BLE001 - a bug must not reach the caller as a stack trace; the log keeps it
        logger.exception("catalog sync failed unexpectedly")
        summary = {"ok": False, "error": "internal", "message": "unexpected error; see the function's log"}
    metrics.add_metric(name="CatalogChanges", unit=MetricUnit.Count, value=int(summary.get("changes", 0)))
    metrics.add_metric(name="CatalogRunFailed", unit=MetricUnit.Count, value=0 if summary.get("ok") else 1)
    if summary.get("ok"):
        logger.info("catalog sync finished", extra={"summary": summary})
    else:
        logger.error("catalog sync did not finish", extra={"summary": summary})
    return summary
