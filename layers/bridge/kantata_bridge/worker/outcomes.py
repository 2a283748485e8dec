"""Delivery outcomes: the one recorded result of each delivery, durable in the state table.

Item layout (state table, keys ``pk``/``sk``, GSI ``gsi1`` on ``gsi1pk``/``gsi1sk``, TTL ``expires_at``):

- ``pk=DELIVERY#<dedupe key>``, ``sk=OUTCOME``: the latest outcome of the delivery (posted / skipped / parked /
  failed) with its reason, the Kantata report id, the object and, for parked deliveries, the envelope (the SQS
  message body, enough to replay it). ``gsi1pk=OBJ#<object key>``, ``gsi1sk=<recorded_at>#<dedupe key>`` when
  the delivery's object is known, so an object's history is one query.
- ``pk=PARKED``, ``sk=<recorded_at>#<dedupe key>``: an index entry per parked delivery (with the envelope), so
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

    def put(self, outcome: Outcome) -> None:
        """Record ``outcome`` (replacing an earlier outcome of the same delivery).

        A delivery parked again (a redelivery of a parked delivery) keeps one PARKED entry: the earlier one is
        removed in the same transaction, so redrive never replays one delivery twice. That costs one read,
        only on the (rare) parked path.
        """
        puts = self.transact_puts(outcome)
        if len(puts) == 1:
            self.client.put_item(**puts[0]["Put"])
            return
        earlier = self.get(outcome.dedupe_key)
        if (
            earlier is not None
            and earlier.kind is OutcomeKind.PARKED
            and earlier.resolution is None
            and earlier.recorded_at != outcome.recorded_at
        ):
            puts.append({"Delete": {"TableName": self.table_name, "Key": self._parked_key(earlier)}})
        self.client.transact_write_items(TransactItems=puts)

    def resolve_parked(self, outcome: Outcome, resolution: str = "redriven") -> None:
        """Remove a parked delivery from the PARKED index and note ``resolution`` on its outcome record."""
        self.client.transact_write_items(
            TransactItems=[
                {"Delete": {"TableName": self.table_name, "Key": self._parked_key(outcome)}},
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
    def _parked_key(outcome: Outcome) -> dict[str, Any]:
        return {"pk": {"S": PARKED_PK}, "sk": {"S": _parked_sk(outcome)}}

    # ------------------------------------------------------------------ reads

    def get(self, dedupe_key: str) -> Outcome | None:
        """The recorded outcome of one delivery (by its dedupe key, ``tracker:hook:delivery``), or None."""
        resp = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": DELIVERY_PREFIX + dedupe_key}, "sk": {"S": OUTCOME_SK}},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return Outcome.from_dict(_deserialize(item)) if item else None

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
        """Every parked delivery not yet resolved, oldest first, each with its envelope."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :p",
            "ExpressionAttributeValues": {":p": {"S": PARKED_PK}},
        }
        while True:
            resp = self.client.query(**kwargs)
            for item in resp.get("Items", []):
                yield Outcome.from_dict(_deserialize(item))
            if "LastEvaluatedKey" not in resp:
                return
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
