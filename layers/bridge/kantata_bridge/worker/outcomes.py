"""Delivery outcomes: the one recorded result of each delivery, durable in the state table.

Item layout (state table, keys ``pk``/``sk``, GSI ``gsi1`` on ``gsi1pk``/``gsi1sk``, TTL ``expires_at``):

- ``pk=DELIVERY#<dedupe key>``, ``sk=OUTCOME``: the delivery record. While the worker handles the delivery
  it is Powertools' in-progress idempotency record (``idem_status``, ``idem_expiry``,
  ``idem_in_progress_expiry``; see idempotency.py); then it holds the latest outcome (posted / skipped /
  parked / failed) with its reason, the Kantata report id, the object and, for parked deliveries, the
  envelope (self-contained, enough to replay it). A posted or skipped outcome stays the delivery's completed
  idempotency record for ``IDEMPOTENCY_TTL_SECONDS``; a failed or parked one lets the delivery run again.
  ``gsi1pk=OBJ#<object key>``, ``gsi1sk=<recorded_at>#<dedupe key>`` when the delivery's object is known, so
  an object's history is one query.
- ``pk=PARKED``, ``sk=<dedupe key>``: one index entry per parked delivery (with the envelope), so
  redrive lists them with one query instead of a scan. Removed by ``resolve_parked``.

The ordering guard's items (``OBJ#<object key>`` / ``VERSION``) live in the same table (see ordering.py).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final

DELIVERY_PREFIX: Final = "DELIVERY#"
OBJECT_PREFIX: Final = "OBJ#"
OUTCOME_SK: Final = "OUTCOME"
PARKED_PK: Final = "PARKED"
GSI_NAME: Final = "gsi1"
# Powertools idempotency state kept on the same DELIVERY# item (see idempotency.py).
IDEM_STATUS: Final = "idem_status"
IDEM_EXPIRY: Final = "idem_expiry"
IDEM_IN_PROGRESS_EXPIRY: Final = "idem_in_progress_expiry"


class OutcomeKind(StrEnum):
    POSTED = "posted"
    SKIPPED = "skipped"
    PARKED = "parked"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one delivery. ``envelope`` (the SQS message body) is kept for parked deliveries."""

    dedupe_key: str
    kind: OutcomeKind
    reason: str
    recorded_at: str
    tracker: str | None = None
    event_type: str | None = None
    delivery_id: str | None = None
    object_key: str | None = None
    version: str | None = None
    workspace_id: str | None = None
    report_id: str | None = None
    attempt: int | None = None
    envelope: str | None = None
    resolution: str | None = None
    origin: str | None = None  # "reconciled" / "recovered" when the delivery was not a tracker's webhook
    task_id: str | None = None  # the Kantata task linked to the object, when task sync ran
    task: str | None = None  # what task sync did, in words ("updated: moved task 7 from … to …")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (also what the idempotency record stores); None values left out."""
        return {
            k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(self).items() if v is not None
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["kind"] = OutcomeKind(values["kind"])
        if values.get("attempt") is not None:
            values["attempt"] = int(values["attempt"])
        return cls(**values)

    def log_fields(self) -> dict[str, Any]:
        """Fields for a structured log line (the envelope, which holds the raw body, is left out)."""
        data = self.to_dict()
        data.pop("envelope", None)
        return {"outcome": data.pop("kind"), **data}


def now_iso() -> str:
    """UTC now, ISO 8601 with microseconds (sorts as text)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _parked_sk(outcome: Outcome) -> str:
    # One entry per delivery: parking it again replaces its entry (redrive never replays a delivery twice).
    return outcome.dedupe_key


def _legacy_parked_sk(outcome: Outcome) -> str:
    # Entries written before the key was the dedupe key alone.
    return f"{outcome.recorded_at}#{outcome.dedupe_key}"


def _serializer() -> Any:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


def _deserialize(item: Mapping[str, Any]) -> dict[str, Any]:
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    return {k: des.deserialize(v) for k, v in item.items()}


class OutcomeStore:
    """Reads and writes outcome records. ``client`` is a low-level boto3 DynamoDB client.

    Every method may raise botocore's ClientError (throttling, missing table); callers decide whether that
    is worth a retry.
    """

    def __init__(self, table_name: str, client: Any, *, ttl_seconds: int = 30 * 86400) -> None:
        self.table_name = table_name
        self.client = client
        self.ttl_seconds = ttl_seconds

    # ------------------------------------------------------------------ items

    def outcome_item(self, outcome: Outcome) -> dict[str, Any]:
        """The DELIVERY# item in DynamoDB attribute-value form."""
        keys = {"pk": DELIVERY_PREFIX + outcome.dedupe_key, "sk": OUTCOME_SK}
        if outcome.object_key:
            keys["gsi1pk"] = OBJECT_PREFIX + outcome.object_key
            keys["gsi1sk"] = f"{outcome.recorded_at}#{outcome.dedupe_key}"
        return self._item(keys, outcome)

    def parked_item(self, outcome: Outcome) -> dict[str, Any]:
        """The PARKED index item for a parked outcome."""
        return self._item({"pk": PARKED_PK, "sk": _parked_sk(outcome)}, outcome)

    def _item(self, keys: Mapping[str, str], outcome: Outcome) -> dict[str, Any]:
        doc = {**keys, "expires_at": int(time.time()) + self.ttl_seconds, **outcome.to_dict()}
        ser = _serializer()
        return {k: ser.serialize(v) for k, v in doc.items()}

    def transact_puts(self, outcome: Outcome) -> list[dict[str, Any]]:
        """TransactWriteItems entries that record ``outcome`` (one, or two for a parked delivery)."""
        puts = [{"Put": {"TableName": self.table_name, "Item": self.outcome_item(outcome)}}]
        if outcome.kind is OutcomeKind.PARKED:
            puts.append({"Put": {"TableName": self.table_name, "Item": self.parked_item(outcome)}})
        return puts

    # ------------------------------------------------------------------ writes

    def put(self, outcome: Outcome, extra: list[dict[str, Any]] | None = None) -> None:
        """Record ``outcome`` (replacing the delivery's record, in progress or earlier), with the ``extra``
        transaction items given (e.g. marking the object's create as ambiguous). A parked outcome also
        (re)writes the delivery's one PARKED entry, so a delivery parked again is listed once."""
        puts = self.transact_puts(outcome) + list(extra or [])
        if len(puts) == 1:
            self.client.put_item(**puts[0]["Put"])
            return
        self.client.transact_write_items(TransactItems=puts)

    def complete(
        self, outcome: Outcome, *, idem_expiry: int, extra: list[dict[str, Any]] | None = None
    ) -> None:
        """Record a posted or skipped ``outcome`` as the delivery's completed idempotency record: one
        UpdateItem on the record Powertools' in-progress write made (a transaction with the ``extra`` items,
        e.g. caching the object's task, when there are any)."""
        item = self.outcome_item(outcome)
        item.pop("pk")
        item.pop("sk")
        item[IDEM_STATUS] = {"S": "COMPLETED"}
        item[IDEM_EXPIRY] = {"N": str(idem_expiry)}
        names = {f"#a{i}": name for i, name in enumerate(item)}
        values = {f":a{i}": value for i, value in enumerate(item.values())}
        update = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": DELIVERY_PREFIX + outcome.dedupe_key}, "sk": {"S": OUTCOME_SK}},
            "UpdateExpression": "SET "
            + ", ".join(f"#a{i} = :a{i}" for i in range(len(item)))
            + " REMOVE #ipe",
            "ExpressionAttributeNames": {**names, "#ipe": IDEM_IN_PROGRESS_EXPIRY},
            "ExpressionAttributeValues": values,
        }
        if extra:
            self.client.transact_write_items(TransactItems=[{"Update": update}, *extra])
        else:
            self.client.update_item(**update)

    def outcome_from_item(self, item: Mapping[str, Any]) -> Outcome:
        """The Outcome held by a DELIVERY# item in DynamoDB attribute-value form."""
        return Outcome.from_dict(_deserialize(item))

    def resolve_parked(self, outcome: Outcome, resolution: str = "redriven") -> None:
        """Remove a parked delivery from the PARKED index and note ``resolution`` on its outcome record."""
        self.client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self.table_name, "Key": self._parked_key(outcome)}},
                {"Delete": {"TableName": self.table_name, "Key": self._parked_key(outcome, legacy=True)}},
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": {"pk": {"S": DELIVERY_PREFIX + outcome.dedupe_key}, "sk": {"S": OUTCOME_SK}},
                        "UpdateExpression": "SET #r = :r",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#r": "resolution"},
                        "ExpressionAttributeValues": {":r": {"S": resolution}},
                    }
                },
            ]
        )

    @staticmethod
    def _parked_key(outcome: Outcome, *, legacy: bool = False) -> dict[str, Any]:
        sk = _legacy_parked_sk(outcome) if legacy else _parked_sk(outcome)
        return {"pk": {"S": PARKED_PK}, "sk": {"S": sk}}

    # ------------------------------------------------------------------ reads

    def get(self, dedupe_key: str) -> Outcome | None:
        """The recorded outcome of one delivery (by its dedupe key, ``tracker:hook:delivery``), or None (no
        record, or one still in progress)."""
        resp = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": DELIVERY_PREFIX + dedupe_key}, "sk": {"S": OUTCOME_SK}},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return Outcome.from_dict(_deserialize(item)) if item and "kind" in item else None

    def for_object(self, object_key: str, *, limit: int = 100) -> list[Outcome]:
        """The latest outcomes for one tracker object (``tracker:model:ref``), newest first."""
        resp = self.client.query(
            TableName=self.table_name,
            IndexName=GSI_NAME,
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": {"S": OBJECT_PREFIX + object_key}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [Outcome.from_dict(_deserialize(i)) for i in resp.get("Items", [])]

    def parked(self) -> Iterator[Outcome]:
        """Every parked delivery not yet resolved, oldest first, each with its envelope.

        The index holds what needs a person (small), so it is read whole and sorted by time.
        """
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": PARKED_PK}},
        }
        found: list[Outcome] = []
        while True:
            resp = self.client.query(**kwargs)
            found.extend(Outcome.from_dict(_deserialize(item)) for item in resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        yield from sorted(found, key=lambda o: (o.recorded_at, o.dedupe_key))
