"""Powertools idempotency for deliveries, stored in the delivery's own outcome record, with the ordering claim
written in the same request.

Powertools' idempotency handler keeps its state machine (in progress → completed; a duplicate gets the stored
result; an in-progress record expires with the Lambda invocation; an exception clears the way for a retry).
This module is its persistence layer ("bring your own persistent store", the documented extension point),
shaped for what a delivery needs:

- **One item per delivery**, ``DELIVERY#<dedupe key>`` / ``OUTCOME`` in the state table: the idempotency
  attributes (``idem_status``, ``idem_expiry``, ``idem_in_progress_expiry``) and the outcome's fields live
  together, so completing a delivery is one ``UpdateItem`` that also records its outcome. The key is the
  dedupe key itself (tracker + hook + delivery id, bounded printable text), not a hash of it, so an operator
  finds the record by the delivery id.
- **The claim rides the in-progress write.** When the delivery will write to Kantata, the in-progress record
  and the object's ordering claim (ordering.py) go out in one ``TransactWriteItems``. A posted delivery
  costs two DynamoDB requests: that transaction and the completion.
- **Per-object order under concurrency.** The claim takes a lease: while another delivery of the object is
  in progress, a newer delivery waits (in-process, bounded) until the holder's record leaves
  ``INPROGRESS``, then takes over in a transaction whose ConditionCheck proves it. The holder releases its
  lease in the transaction that completes its record, so the uncontended path stays at two requests.

Failures: when the wrapped function raises, Powertools asks to delete the in-progress record; this layer
leaves it, because the worker writes the failed or parked outcome over it at once (one request instead of
two). If that write fails too, the in-progress record expires with the invocation (``register_lambda_context``),
long before SQS hands the message out again (visibility timeout at least 6 times the function timeout).
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from kantata_bridge.worker.ordering import Claim, OrderingGuard, VersionItem, claim_update, refused
from kantata_bridge.worker.outcomes import (
    DELIVERY_PREFIX,
    IDEM_EXPIRY,
    IDEM_IN_PROGRESS_EXPIRY,
    IDEM_STATUS,
    OUTCOME_SK,
    Outcome,
    OutcomeKind,
    OutcomeStore,
)

DUPLICATE_FLAG: Final = "duplicate"
INPROGRESS: Final = "INPROGRESS"
COMPLETED: Final = "COMPLETED"
# A contender polls the holder's record this often (growing to the cap) while it waits for the lease.
_POLL_FIRST_S: Final = 0.05
_POLL_MAX_S: Final = 0.5


class ObjectBusyError(Exception):
    """Another delivery of the same object held its lease for longer than this one could wait."""


@dataclass(slots=True)
class ClaimRequest:
    """What the worker asks the store to claim with the in-progress record, and what came of it.

    ``wait_budget_s``: how long a contender may wait for another delivery's lease; ``lease_ms``: how long
    this delivery's own lease lasts (its invocation's remaining time, capped). ``claim`` is filled in.
    """

    object_key: str
    version: int
    dedupe_key: str
    lease_ms: int
    wait_budget_s: float
    claim: Claim | None = None
    waited_s: float = 0.0
    attempts: int = field(default=0)
    # The items the completion writes with the outcome, in one transaction: asked for when the delivery
    # completes (releasing the lease, the object's task link, …).
    completion_items: Callable[[], list[dict[str, Any]]] = field(default=lambda: [])


# Set by the worker around the idempotent call of one delivery (records are handled one at a time).
CURRENT_CLAIM: contextvars.ContextVar[ClaimRequest | None] = contextvars.ContextVar("claim", default=None)


def delivery_key(dedupe_key: str) -> dict[str, Any]:
    return {"pk": {"S": DELIVERY_PREFIX + dedupe_key}, "sk": {"S": OUTCOME_SK}}


def not_in_progress_condition() -> tuple[str, dict[str, str], dict[str, Any]]:
    """ConditionCheck (expression, names, values without ``:now_ms``) that a delivery record is not in
    progress: absent, finished (completed, failed, parked) or its in-progress time is up."""
    return (
        "attribute_not_exists(pk) OR attribute_not_exists(#s) OR #s <> :inprogress OR #ipe < :now_ms",
        {"#s": IDEM_STATUS, "#ipe": IDEM_IN_PROGRESS_EXPIRY},
        {":inprogress": {"S": INPROGRESS}},
    )


class DeliveryRecordStore(BasePersistenceLayer):
    """Powertools persistence layer over the state table's delivery records (see the module docstring).

    ``client`` is a low-level boto3 DynamoDB client; ``clock`` (epoch seconds) and ``sleep`` are for tests.
    """

    def __init__(
        self,
        table_name: str,
        client: Any,
        *,
        outcomes: OutcomeStore,
        guard: OrderingGuard,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.table_name = table_name
        self.client = client
        self.outcomes = outcomes
        self.guard = guard
        self.clock = clock
        self.sleep = sleep

    # ------------------------------------------------------------------ keys

    def _generate_hash(self, data: Any) -> str:
        # The key is the dedupe key itself (already bounded, printable text), so the record is findable.
        return data if isinstance(data, str) else super()._generate_hash(data)

    @staticmethod
    def _dedupe_key(idempotency_key: str) -> str:
        # Powertools builds "<function name>#<hash>"; our "hash" is the dedupe key (which may contain '#').
        return idempotency_key.partition("#")[2]

    def _key(self, idempotency_key: str) -> dict[str, Any]:
        return delivery_key(self._dedupe_key(idempotency_key))

    # ------------------------------------------------------------------ Powertools' hooks

    def _get_record(self, idempotency_key: str) -> DataRecord:
        item = self.client.get_item(
            TableName=self.table_name, Key=self._key(idempotency_key), ConsistentRead=True
        ).get("Item")
        record = self._data_record(idempotency_key, item)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        request = CURRENT_CLAIM.get()
        if request is None or request.dedupe_key != self._dedupe_key(data_record.idempotency_key):
            self._put_in_progress(data_record)
            return
        self._claim_with_record(data_record, request)

    def _update_record(self, data_record: DataRecord) -> None:
        """Complete the delivery: its record becomes COMPLETED and holds the outcome (one UpdateItem)."""
        outcome = _outcome_from(data_record.response_data)
        if outcome is None:  # not a delivery outcome (never happens in the worker): keep Powertools' fields
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(data_record.idempotency_key),
                UpdateExpression="SET #s = :s, #e = :e",
                ExpressionAttributeNames={"#s": IDEM_STATUS, "#e": IDEM_EXPIRY},
                ExpressionAttributeValues={
                    ":s": {"S": data_record.status},
                    ":e": {"N": str(data_record.expiry_timestamp)},
                },
            )
            return
        request = CURRENT_CLAIM.get()
        extra = (
            request.completion_items()
            if request is not None and request.dedupe_key == outcome.dedupe_key
            else []
        )
        self.outcomes.complete(outcome, idem_expiry=int(data_record.expiry_timestamp or 0), extra=extra)

    def _delete_record(self, data_record: DataRecord) -> None:
        # Deliberately nothing: the worker writes the failed or parked outcome over the in-progress record
        # right after (see the module docstring).
        return None

    # ------------------------------------------------------------------ writes

    def _in_progress_put(self, data_record: DataRecord) -> dict[str, Any]:
        now = int(self.clock())
        item = {
            **self._key(data_record.idempotency_key),
            IDEM_STATUS: {"S": INPROGRESS},
            IDEM_EXPIRY: {"N": str(data_record.expiry_timestamp)},
            # The record must outlive its idempotency period even if it never completes.
            "expires_at": {"N": str(max(int(data_record.expiry_timestamp or 0), now) + 86400)},
        }
        if data_record.in_progress_expiry_timestamp is not None:
            item[IDEM_IN_PROGRESS_EXPIRY] = {"N": str(data_record.in_progress_expiry_timestamp)}
        return {
            "TableName": self.table_name,
            "Item": item,
            # Free: no record; a failed or parked outcome (a retry or a redrive may run it again); an expired
            # idempotency period; an in-progress record whose invocation is over.
            "ConditionExpression": (
                "attribute_not_exists(pk) OR #k IN (:failed, :parked) OR #e < :now "
                "OR (#s = :inprogress AND #ipe < :now_ms)"
            ),
            "ExpressionAttributeNames": {
                "#k": "kind",
                "#e": IDEM_EXPIRY,
                "#s": IDEM_STATUS,
                "#ipe": IDEM_IN_PROGRESS_EXPIRY,
            },
            "ExpressionAttributeValues": {
                ":failed": {"S": OutcomeKind.FAILED.value},
                ":parked": {"S": OutcomeKind.PARKED.value},
                ":now": {"N": str(now)},
                ":now_ms": {"N": str(int(self.clock() * 1000))},
                ":inprogress": {"S": INPROGRESS},
            },
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _put_in_progress(self, data_record: DataRecord) -> None:
        from botocore.exceptions import ClientError

        put = self._in_progress_put(data_record)
        try:
            self.client.put_item(**put)
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            response: Any = exc.response
            self._already_exists(data_record.idempotency_key, response.get("Item"))

    def _claim_with_record(self, data_record: DataRecord, request: ClaimRequest) -> None:
        """Write the in-progress record and claim the object in one transaction (see the module docstring).

        Sets ``request.claim``. Raises IdempotencyItemAlreadyExistsError (a duplicate or a delivery in
        progress elsewhere), ObjectBusyError (another delivery of the object held it for longer than the
        wait budget) or botocore's ClientError (DynamoDB trouble).
        """
        started = time.monotonic()
        mode, holder, ambiguous = "fresh", None, False
        pause = _POLL_FIRST_S
        while True:
            request.attempts += 1
            now_ms = int(self.clock() * 1000)
            cancelled = self._transact(self._claim_items(data_record, request, mode, holder, now_ms))
            if cancelled is None:
                request.claim = Claim(granted=True, reclaimed=mode == "reclaim", ambiguous=ambiguous)
                return
            if cancelled[0].get("Code") == "ConditionalCheckFailed":
                self._already_exists(data_record.idempotency_key, cancelled[0].get("Item"))
            if cancelled[1].get("Code") == "ConditionalCheckFailed":
                old = VersionItem.from_item(cancelled[1].get("Item"))
            else:  # the holder is still in progress (ConditionCheck), or a concurrent write: read again
                old = self.guard.read(request.object_key) or VersionItem(None, None, None, frozenset())
            if old.version is not None and (
                old.version > request.version
                or (old.version == request.version and old.delivery != request.dedupe_key)
            ):
                # Stale: the object holds this version from another delivery, or a newer one. Record the
                # delivery as in progress without a claim; the worker decides what it was (processor.py).
                self._put_in_progress(data_record)
                request.claim = refused(old, request.dedupe_key)
                return
            waited = time.monotonic() - started
            request.waited_s = waited
            busy = False
            if old.version == request.version and old.delivery == request.dedupe_key:
                # This delivery holds the claim already: an earlier attempt failed or died before its outcome.
                mode, holder, ambiguous = "reclaim", None, request.dedupe_key in old.ambiguous
            elif old.leased_by_another(request.dedupe_key, now_ms):
                # An older version whose lease another delivery holds: wait until it is done, then take over.
                mode, holder = "takeover", old.delivery
                busy = not self._holder_done(holder, now_ms)
            else:
                mode, holder = "fresh", None  # the lease ended or the item changed meanwhile
            if busy or request.attempts >= 3:
                if waited >= request.wait_budget_s:
                    raise ObjectBusyError(
                        f"object {request.object_key} is being written by delivery {holder or 'another'}; "
                        f"waited {waited:.1f} s"
                    )
                self.sleep(pause)
                pause = min(pause * 2, _POLL_MAX_S)

    def _claim_items(
        self, data_record: DataRecord, request: ClaimRequest, mode: str, holder: str | None, now_ms: int
    ) -> list[dict[str, Any]]:
        update = claim_update(
            request.object_key,
            request.version,
            request.dedupe_key,
            lease_until_ms=now_ms + request.lease_ms,
            now_ms=now_ms,
            mode=mode,
            holder=holder,
        )
        update["TableName"] = self.table_name
        items: list[dict[str, Any]] = [{"Put": self._in_progress_put(data_record)}, {"Update": update}]
        if mode == "takeover" and holder is not None:
            expression, names, values = not_in_progress_condition()
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": delivery_key(holder),
                        "ConditionExpression": expression,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": {**values, ":now_ms": {"N": str(now_ms)}},
                    }
                }
            )
        return items

    def _holder_done(self, holder: str | None, now_ms: int) -> bool:
        if holder is None:
            return True
        item = self.client.get_item(
            TableName=self.table_name, Key=delivery_key(holder), ConsistentRead=True
        ).get("Item")
        if not item or IDEM_STATUS not in item or item[IDEM_STATUS].get("S") != INPROGRESS:
            return True
        return int(item.get(IDEM_IN_PROGRESS_EXPIRY, {}).get("N", "0")) < now_ms

    def _transact(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Run a transaction; None when it went through, else its cancellation reasons (one per item).
        Raises ClientError for anything but a cancellation."""
        from botocore.exceptions import ClientError

        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if _code(exc) != "TransactionCanceledException":
                raise
            response: Any = exc.response
            reasons: list[dict[str, Any]] = list(response.get("CancellationReasons") or [])
            return reasons + [{}] * (len(items) - len(reasons))
        return None

    def _already_exists(self, idempotency_key: str, item: Mapping[str, Any] | None) -> None:
        record = self._data_record(idempotency_key, item) if item else None
        raise IdempotencyItemAlreadyExistsError(old_data_record=record)

    # ------------------------------------------------------------------ reading

    def _data_record(self, idempotency_key: str, item: Mapping[str, Any] | None) -> DataRecord | None:
        """The Powertools view of a delivery record, or None when it holds no idempotency state (no record,
        or a failed or parked outcome: those let the delivery run again)."""
        if not item:
            return None
        status = item.get(IDEM_STATUS, {}).get("S")
        kind = item.get("kind", {}).get("S")
        expiry = int(item.get(IDEM_EXPIRY, item.get("expires_at", {"N": "0"}))["N"])
        if status == INPROGRESS:
            in_progress = item.get(IDEM_IN_PROGRESS_EXPIRY)
            return DataRecord(
                idempotency_key=idempotency_key,
                status=INPROGRESS,
                expiry_timestamp=expiry,
                in_progress_expiry_timestamp=int(in_progress["N"]) if in_progress else None,
            )
        if kind in (OutcomeKind.POSTED.value, OutcomeKind.SKIPPED.value):
            # Completed: by this version (idem_status), or recorded by an earlier version (outcome only).
            outcome = self.outcomes.outcome_from_item(item)
            return DataRecord(
                idempotency_key=idempotency_key,
                status=COMPLETED,
                expiry_timestamp=expiry,
                response_data=json.dumps(outcome.to_dict(), sort_keys=True),
            )
        return None


def _outcome_from(response_data: str | None) -> Outcome | None:
    if not response_data:
        return None
    try:
        return Outcome.from_dict(json.loads(response_data))
    except (ValueError, KeyError, TypeError):
        return None


def _code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Powertools response hook: a stored result returned for a repeated delivery is flagged as such."""
    if isinstance(response, dict):
        return {**response, DUPLICATE_FLAG: True}
    return response


def make_idempotent(
    function: Callable[..., dict[str, Any]],
    *,
    persistence: BasePersistenceLayer,
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
