"""Sync worker Lambda: SQS batch of tracker deliveries → Kantata status reports (partial batch responses).

The flow lives in kantata_bridge.worker (see processor.py). Here: logging/metrics decorators, the batch
processor and one call into the package.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext
from kantata_bridge.observability import logger, metrics
from kantata_bridge.worker.runtime import default_worker

# raise_on_entire_batch_failure=False: when every record fails, return them all as batchItemFailures instead
# of raising BatchProcessingError. Raising would make Lambda retry the whole batch as one error (and count
# every record's receive), while the partial response lets each record follow its own redelivery/DLQ path.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = default_worker().start_batch(event.get("Records") or [], context)
    return dict(
        process_partial_response(
            event=event, record_handler=run.process_record, processor=processor, context=context
        )
    )
