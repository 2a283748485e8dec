"""The ordering guard: per tracker object, the version last claimed, advanced only by a newer event, and a
short lease so that only one delivery of an object writes to Kantata at a time.

Item: ``pk=OBJ#<object key>``, ``sk=VERSION``:

- ``version`` (N, microseconds since the epoch) and ``delivery`` (dedupe key of the delivery that claimed it),
  ``claimed_at``;
- ``lease_until`` (N, epoch milliseconds): until then, ``delivery`` may be writing to Kantata and no other
  delivery of the object may start. The lease ends early, without a write, when the holder's delivery record
  leaves ``INPROGRESS`` (it completed, failed or was parked): a contender proves that with a ConditionCheck
  on the holder's record in the same transaction as its claim (see idempotency.py);
- ``ambiguous`` (string set): deliveries whose Kantata create may have landed although its answer was lost
  (a timeout or a dropped connection after sending). A later attempt of such a delivery that finds the object
  claimed by a newer one looks for its own report before calling itself stale.
- ``task_id`` / ``task_workspace_id``: the Kantata task linked to the object, when task sync found or created it.

No TTL: it must outlive every redelivery of every event of the object.

The claim is taken *before* writing to Kantata, in the same transaction as the delivery's in-progress record
(one DynamoDB request; see idempotency.py). It succeeds when the object has no version yet or an older one,
and no other delivery holds a live lease on it. A redelivery of the delivery that holds the claim may go on
(a *reclaim*): its earlier attempt failed or died before recording an outcome, and it must not be lost; the
worker then looks for the report it may already have made before posting again (see processor.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from kantata_bridge.worker.outcomes import OBJECT_PREFIX, now_iso

VERSION_SK: Final = "VERSION"
NAMES: Final = {
    "#v": "version",
    "#d": "delivery",
    "#l": "lease_until",
}


def version_number(version: dt.datetime) -> int:
    """A TrackerEvent version as an integer (microseconds since the epoch) for DynamoDB comparisons."""
    delta = version.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def version_text(number: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=number)).isoformat()


def version_key(object_key: str) -> dict[str, Any]:
    """The DynamoDB key of an object's VERSION item."""
    return {"pk": {"S": OBJECT_PREFIX + object_key}, "sk": {"S": VERSION_SK}}


@dataclass(frozen=True, slots=True)
class Claim:
    """Result of a claim. ``granted``: go ahead. ``reclaimed``: this delivery held it already (an earlier
    attempt). When refused, ``current_version``/``current_delivery`` say who holds the object.
    ``ambiguous``: an earlier attempt of this delivery sent a create whose answer was lost (see the module
    docstring); ``task_id``/``task_workspace_id``: the object's linked Kantata task, when known."""

    granted: bool
    reclaimed: bool = False
    current_version: int | None = None
    current_delivery: str | None = None
    ambiguous: bool = False
    task_id: str | None = None
    task_workspace_id: str | None = None


@dataclass(frozen=True, slots=True)
class VersionItem:
    """An object's VERSION item as read (from a get, or from a refused condition's ALL_OLD)."""

    version: int | None
    delivery: str | None
    lease_until: int | None
    ambiguous: frozenset[str]
    task_id: str | None = None
    task_workspace_id: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> VersionItem:
        item = item or {}
        return cls(
            version=int(item["version"]["N"]) if "version" in item else None,
            delivery=item.get("delivery", {}).get("S"),
            lease_until=int(item["lease_until"]["N"]) if "lease_until" in item else None,
            ambiguous=frozenset(item.get("ambiguous", {}).get("SS", ())),
            task_id=item.get("task_id", {}).get("S"),
            task_workspace_id=item.get("task_workspace_id", {}).get("S"),
        )

    def leased_by_another(self, dedupe_key: str, now_ms: int) -> bool:
        return (
            self.lease_until is not None
            and self.lease_until >= now_ms
            and self.delivery is not None
            and self.delivery != dedupe_key
        )


def claim_update(
    object_key: str,
    version: int,
    dedupe_key: str,
    *,
    lease_until_ms: int,
    now_ms: int,
    mode: str,
    holder: str | None = None,
) -> dict[str, Any]:
    """The ``Update`` of a transaction that claims ``object_key`` at ``version`` for ``dedupe_key``.

    ``mode``: ``fresh`` (the object has no version or an older one, and no live lease by another delivery),
    ``reclaim`` (this delivery holds exactly this version already), or ``takeover`` (an older version whose
    lease is held by ``holder``, whose record the same transaction shows is no longer in progress).
    """
    values: dict[str, Any] = {
        ":v": {"N": str(version)},
        ":d": {"S": dedupe_key},
        ":t": {"S": now_iso()},
        ":lease": {"N": str(lease_until_ms)},
    }
    if mode == "fresh":
        condition = "(attribute_not_exists(pk) OR #v < :v) AND (attribute_not_exists(#l) OR #l < :now)"
        values[":now"] = {"N": str(now_ms)}
    elif mode == "reclaim":
        condition = "#v = :v AND #d = :d"
    elif mode == "takeover":
        condition = "#v < :v AND (#l < :now OR #d = :holder)"
        values[":now"] = {"N": str(now_ms)}
        values[":holder"] = {"S": str(holder)}
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown claim mode {mode!r}")
    return {
        "TableName": "",  # filled in by the caller
        "Key": version_key(object_key),
        "UpdateExpression": "SET #v = :v, #d = :d, claimed_at = :t, #l = :lease",
        "ConditionExpression": condition,
        "ExpressionAttributeNames": dict(NAMES),
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


class OrderingGuard:
    """Reads and small writes of VERSION items. ``client`` is a low-level boto3 DynamoDB client.

    The claim itself is written by the delivery record store (idempotency.py) in one transaction with the
    delivery's in-progress record; ``claim`` here does the same conditional write alone, for flows without
    that store (tools, tests of the flow).
    """

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def claim(self, object_key: str, version: int, dedupe_key: str) -> Claim:
        """Advance ``object_key`` to ``version`` for ``dedupe_key`` if it is newer (one conditional write,
        no lease). Raises botocore ClientError for anything but a failed condition."""
        from botocore.exceptions import ClientError

        try:
            resp = self.client.update_item(
                TableName=self.table_name,
                Key=version_key(object_key),
                UpdateExpression="SET #v = :v, #d = :d, claimed_at = :t",
                ConditionExpression="attribute_not_exists(pk) OR #v < :v OR (#v = :v AND #d = :d)",
                ExpressionAttributeNames={"#v": "version", "#d": "delivery"},
                ExpressionAttributeValues={
                    ":v": {"N": str(version)},
                    ":d": {"S": dedupe_key},
                    ":t": {"S": now_iso()},
                },
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            response: Any = exc.response
            old = VersionItem.from_item(response.get("Item"))
            return refused(old, dedupe_key)
        old = VersionItem.from_item(resp.get("Attributes"))
        return Claim(
            granted=True,
            reclaimed=old.delivery == dedupe_key and old.version == version,
            ambiguous=dedupe_key in old.ambiguous,
            task_id=old.task_id,
            task_workspace_id=old.task_workspace_id,
        )

    def read(self, object_key: str) -> VersionItem | None:
        """The object's VERSION item (strongly consistent), or None."""
        item = self.read_item(object_key)
        return VersionItem.from_item(item) if item else None

    def read_item(self, object_key: str) -> dict[str, Any] | None:
        """The object's VERSION item as DynamoDB returns it (strongly consistent), or None."""
        item: dict[str, Any] | None = self.client.get_item(
            TableName=self.table_name, Key=version_key(object_key), ConsistentRead=True
        ).get("Item")
        return item

    def current(self, object_key: str) -> tuple[int, str] | None:
        """(version, delivery) last claimed for ``object_key``, or None (read-only; used by explain and the
        reconciliation sweep)."""
        item = self.read(object_key)
        if item is None or item.version is None:
            return None
        return item.version, item.delivery or ""

    def ambiguous_update(self, object_key: str, dedupe_key: str, *, add: bool) -> dict[str, Any]:
        """The ``Update`` that adds or removes ``dedupe_key`` in the object's ``ambiguous`` set."""
        change = VersionChange(
            add_ambiguous=dedupe_key if add else None, remove_ambiguous=None if add else dedupe_key
        )
        update = change.update(self.table_name, object_key)
        assert update is not None
        return update

    def change_update(self, object_key: str, change: VersionChange) -> dict[str, Any] | None:
        """The ``Update`` (for a transaction) that applies ``change`` to the object's VERSION item, or None."""
        return change.update(self.table_name, object_key)


@dataclass(slots=True)
class VersionChange:
    """What a delivery changes on its object's VERSION item when it finishes, written in the same transaction
    as its outcome: release the lease it holds, remember or forget an ambiguous create, cache or forget the
    object's task link (``task_sets`` attribute values, ``task_removes`` names)."""

    release_lease: bool = False
    add_ambiguous: str | None = None
    remove_ambiguous: str | None = None
    task_sets: dict[str, Any] | None = None
    task_removes: tuple[str, ...] = ()

    def update(self, table_name: str, object_key: str) -> dict[str, Any] | None:
        sets = dict(self.task_sets or {})
        removes = list(self.task_removes) + (["lease_until"] if self.release_lease else [])
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        clauses = []
        if sets:
            parts = []
            for i, (name, value) in enumerate(sets.items()):
                names[f"#s{i}"] = name
                values[f":s{i}"] = value
                parts.append(f"#s{i} = :s{i}")
            clauses.append("SET " + ", ".join(parts))
        if removes:
            for i, name in enumerate(removes):
                names[f"#r{i}"] = name
            clauses.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(removes))))
        if self.add_ambiguous:
            values[":add"] = {"SS": [self.add_ambiguous]}
            clauses.append("ADD ambiguous :add")
        if self.remove_ambiguous:
            values[":del"] = {"SS": [self.remove_ambiguous]}
            clauses.append("DELETE ambiguous :del")
        if not clauses:
            return None
        update: dict[str, Any] = {
            "TableName": table_name,
            "Key": version_key(object_key),
            "UpdateExpression": " ".join(clauses),
        }
        if names:
            update["ExpressionAttributeNames"] = names
        if values:
            update["ExpressionAttributeValues"] = values
        return update


def refused(old: VersionItem, dedupe_key: str) -> Claim:
    """The refused claim for a holder ``old`` (stale: the object holds an equal or newer version)."""
    return Claim(
        granted=False,
        current_version=old.version,
        current_delivery=old.delivery,
        ambiguous=dedupe_key in old.ambiguous,
        task_id=old.task_id,
        task_workspace_id=old.task_workspace_id,
    )


def error_code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
