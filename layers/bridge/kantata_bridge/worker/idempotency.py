"""Powertools idempotency for deliveries, keyed on ``DeliveryEnvelope.dedupe_key`` (not the SQS message id).

The persistence layer is Powertools' DynamoDBPersistenceLayer with one change: when a delivery completes, the
"completed" update of the idempotency record and the outcome record(s) in the state table go out in one
``TransactWriteItems``. That keeps a posted delivery at three DynamoDB requests (in-progress put, version
claim, completion) and means a delivery is never marked done without its outcome, or the other way round.
``_update_record`` is the hook Powertools documents for custom persistence layers ("bring your own
persistent store"); everything else (in-progress put, expiry, deletion on exception) is Powertools' own.

Timeouts: ``register_lambda_context`` makes the in-progress record expire when the invocation would time
out, so a redelivery after a Lambda timeout is not blocked as "already in progress" for longer than that.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from kantata_bridge.worker.outcomes import Outcome, OutcomeStore

DUPLICATE_FLAG = "duplicate"


class OutcomeRecordingPersistenceLayer(DynamoDBPersistenceLayer):
    """Records the delivery's outcome in the state table in the same transaction that completes it."""

    def __init__(self, table_name: str, *, outcomes: OutcomeStore, boto3_client: Any) -> None:
        super().__init__(table_name=table_name, boto3_client=boto3_client)
        self.outcomes = outcomes

    def _update_record(self, data_record: DataRecord) -> None:
        puts = self._outcome_puts(data_record.response_data)
        if not puts:
            super()._update_record(data_record)
            return
        self.client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": self._get_key(data_record.idempotency_key),
                        # The same update Powertools makes (payload validation is not used here).
                        "UpdateExpression": "SET #response_data = :response_data, #expiry = :expiry, "
                        "#status = :status",
                        "ExpressionAttributeNames": {
                            "#expiry": self.expiry_attr,
                            "#response_data": self.data_attr,
                            "#status": self.status_attr,
                        },
                        "ExpressionAttributeValues": {
                            ":expiry": {"N": str(data_record.expiry_timestamp)},
                            ":response_data": {"S": data_record.response_data or ""},
                            ":status": {"S": data_record.status},
                        },
                    }
                },
                *puts,
            ]
        )

    def _outcome_puts(self, response_data: str | None) -> list[dict[str, Any]]:
        if not response_data:
            return []
        try:
            doc = json.loads(response_data)
            outcome = Outcome.from_dict(doc)
        except (ValueError, KeyError, TypeError):
            return []
        return self.outcomes.transact_puts(outcome)


def mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools response hook: a stored result returned for a repeated delivery is flagged as such."""
    if isinstance(response, dict):
        return {**response, DUPLICATE_FLAG: True}
    return response


def make_idempotent(
    function: Callable[..., dict[str, Any]],
    *,
    persistence: DynamoDBPersistenceLayer,
    ttl_seconds: int,
) -> tuple[Callable[..., dict[str, Any]], Any]:
    """Wrap ``function`` (called as ``function(delivery={"dedupe_key": ...}, ...)``) with Powertools'
    ``idempotent_function``; returns the wrapper and its IdempotencyConfig (call
    ``config.register_lambda_context(context)`` on each invocation)."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

    config = IdempotencyConfig(
        event_key_jmespath="dedupe_key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=ttl_seconds,
        response_hook=mark_duplicate,
    )
    wrapped = idempotent_function(
        data_keyword_argument="delivery",
        persistence_store=persistence,
        config=config,
    )(function)
    return wrapped, config
