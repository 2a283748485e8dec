"""The ordering guard: per tracker object, the version last claimed, advanced only by a newer event.

Item: ``pk=OBJ#<object key>``, ``sk=VERSION``, ``version`` (N, microseconds since the epoch),
``delivery`` (dedupe key of the delivery that claimed it), ``claimed_at``. No TTL: it must outlive every
redelivery of every event of the object.

The claim is taken *before* posting to Kantata, with one conditional write::

    attribute_not_exists(pk) OR version < :v OR (version = :v AND delivery = :d)

so an older or equal event from another delivery is refused (stale), while a redelivery of the delivery that
holds the claim may go on: its earlier attempt failed (or died) before recording an outcome, and it must not
be lost. Such a *reclaim* tells the worker the earlier attempt may have created the report already, so it
looks for the report before posting again (see processor.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from kantata_bridge.worker.outcomes import OBJECT_PREFIX, now_iso

VERSION_SK: Final = "VERSION"


def version_number(version: dt.datetime) -> int:
    """A TrackerEvent version as an integer (microseconds since the epoch) for DynamoDB comparisons."""
    delta = version.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def version_text(number: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=number)).isoformat()


@dataclass(frozen=True, slots=True)
class Claim:
    """Result of a claim. ``granted``: go ahead. ``reclaimed``: this delivery held it already (an earlier
    attempt). When refused, ``current_version``/``current_delivery`` say who holds the object."""

    granted: bool
    reclaimed: bool = False
    current_version: int | None = None
    current_delivery: str | None = None


class OrderingGuard:
    """Conditional writes on the state table. ``client`` is a low-level boto3 DynamoDB client."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def claim(self, object_key: str, version: int, dedupe_key: str) -> Claim:
        """Advance ``object_key`` to ``version`` for ``dedupe_key`` if it is newer (one conditional write).

        Raises botocore ClientError for anything but a failed condition (throttling, missing table): the
        worker treats that as retryable.
        """
        from botocore.exceptions import ClientError

        try:
            resp = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": OBJECT_PREFIX + object_key}, "sk": {"S": VERSION_SK}},
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
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            response: Any = exc.response
            old: dict[str, Any] = response.get("Item") or {}
            return Claim(
                granted=False,
                current_version=int(old["version"]["N"]) if "version" in old else None,
                current_delivery=old.get("delivery", {}).get("S"),
            )
        old = resp.get("Attributes") or {}
        reclaimed = old.get("delivery", {}).get("S") == dedupe_key and old.get("version", {}).get("N") == str(
            version
        )
        return Claim(granted=True, reclaimed=reclaimed)

    def current(self, object_key: str) -> tuple[int, str] | None:
        """(version, delivery) last claimed for ``object_key``, or None (read-only; used by explain)."""
        resp = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": OBJECT_PREFIX + object_key}, "sk": {"S": VERSION_SK}},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        if not item:
            return None
        return int(item["version"]["N"]), item.get("delivery", {}).get("S", "")


def _error_code(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
