"""What the scheduled recovery and reconciliation runs keep in the state table, beside the worker's items.

- ``pk=CHECKPOINT#<name>``, ``sk=CHECKPOINT``: how far a run got (``position``, microseconds since the epoch,
  and ``position_text`` for people), advanced only forward with one conditional write, so two overlapping runs
  (the schedule and an operator's CLI run) can never move it back. No TTL: a lost checkpoint would make the
  next run start from its first-run look-back.
- ``pk=<kind>#<key>``, ``sk=MARKER``: a marker that a delivery was redelivered or enqueued. Created with a
  conditional write before the action, so that two runs never both act on the same delivery; it expires
  (``expires_at``) after the tracker could still show the delivery (see each caller).

Every method may raise botocore's ClientError or BotoCoreError (throttling, a missing table); the callers stop
the run and leave the checkpoint where it was.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

CHECKPOINT_PREFIX: Final = "CHECKPOINT#"
CHECKPOINT_SK: Final = "CHECKPOINT"
MARKER_SK: Final = "MARKER"
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_micros(moment: dt.datetime) -> int:
    """An aware datetime as whole microseconds since the epoch (what DynamoDB compares)."""
    delta = moment.astimezone(dt.UTC) - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(number: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=number)


def is_condition_failure(exc: BaseException) -> bool:
    """True when ``exc`` is DynamoDB's answer to a failed ConditionExpression."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return str(code) == "ConditionalCheckFailedException"


class CheckpointStore:
    """Named checkpoints in the state table. ``client`` is a low-level boto3 DynamoDB client."""

    def __init__(self, table_name: str, client: Any) -> None:
        self.table_name = table_name
        self.client = client

    def _key(self, name: str) -> dict[str, Any]:
        return {"pk": {"S": CHECKPOINT_PREFIX + name}, "sk": {"S": CHECKPOINT_SK}}

    def get(self, name: str) -> dt.datetime | None:
        """The checkpoint ``name``, or None before the first run that set it."""
        item = self.client.get_item(TableName=self.table_name, Key=self._key(name), ConsistentRead=True).get(
            "Item"
        )
        if not item or "position" not in item:
            return None
        return from_micros(int(item["position"]["N"]))

    def advance(self, name: str, position: dt.datetime) -> bool:
        """Move checkpoint ``name`` forward to ``position``; False (and nothing written) when it is already
        there or further on."""
        from botocore.exceptions import ClientError

        micros = to_micros(position)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(name),
                UpdateExpression="SET #p = :p, position_text = :t, updated_at = :u",
                ConditionExpression="attribute_not_exists(#p) OR #p < :p",
                ExpressionAttributeNames={"#p": "position"},
                ExpressionAttributeValues={
                    ":p": {"N": str(micros)},
                    ":t": {"S": from_micros(micros).isoformat()},
                    ":u": {"S": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
                },
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True


class MarkerStore:
    """Once-only markers (``pk=<prefix><key>``, ``sk=MARKER``) with a lifetime of ``ttl_seconds``."""

    def __init__(self, table_name: str, client: Any, *, prefix: str, ttl_seconds: int) -> None:
        self.table_name = table_name
        self.client = client
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds

    def key(self, key: str) -> dict[str, Any]:
        return {"pk": {"S": self.prefix + key}, "sk": {"S": MARKER_SK}}

    def expires_at(self) -> str:
        return str(int(time.time()) + self.ttl_seconds)

    def get(self, key: str) -> dict[str, Any] | None:
        """The marker's attributes (DynamoDB attribute-value form), or None."""
        item = self.client.get_item(TableName=self.table_name, Key=self.key(key), ConsistentRead=True).get(
            "Item"
        )
        return dict(item) if item else None

    def claim(self, key: str, **attributes: str) -> bool:
        """Create the marker; False when it exists already (another run acted, or is acting, on it)."""
        from botocore.exceptions import ClientError

        item = {
            **self.key(key),
            "expires_at": {"N": self.expires_at()},
            "at": {"S": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
            **{name: {"S": value} for name, value in attributes.items()},
        }
        try:
            self.client.put_item(
                TableName=self.table_name, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def release(self, key: str) -> None:
        """Remove the marker (the action it guarded did not happen; a later run may try again)."""
        self.client.delete_item(TableName=self.table_name, Key=self.key(key))


@dataclass(frozen=True, slots=True)
class TimeBudget:
    """How long a run may go on: ``remaining()`` (seconds left, e.g. from the Lambda context) against a
    ``margin`` kept for recording the checkpoint and returning the summary."""

    remaining: Callable[[], float] | None = None
    margin: float = 20.0

    def exhausted(self) -> bool:
        return self.remaining is not None and self.remaining() < self.margin

    @classmethod
    def from_context(cls, context: Any, margin: float = 20.0) -> TimeBudget:
        """The budget of a Lambda invocation (unbounded when ``context`` has no remaining-time method)."""
        method = getattr(context, "get_remaining_time_in_millis", None)
        if method is None:
            return cls(None, margin)
        return cls(lambda: float(method()) / 1000, margin)


class RunRequestError(ValueError):
    """A Lambda event asks for something a run cannot do (the message says what)."""


def parse_run_request(event: Any) -> tuple[bool, dt.datetime | None]:
    """(dry_run, since) from a Lambda event: the schedule's EventBridge event or ``{}`` is a normal run; a
    direct invoke may send ``{"dry_run": true, "since": "2026-11-22T10:00:00Z"}``.

    Raises RunRequestError for anything else, so a typo (``{"dryrun": true}``) never runs for real.
    """
    if event is None:
        return False, None
    if not isinstance(event, Mapping):
        raise RunRequestError("the event must be a JSON object")
    if not event or ("source" in event and "detail-type" in event):
        return False, None
    unknown = sorted(str(k) for k in event if k not in ("dry_run", "since"))
    if unknown:
        raise RunRequestError(f"unknown key(s) {', '.join(map(repr, unknown))}; send dry_run and since only")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise RunRequestError(f"dry_run must be true or false; got {dry_run!r}")
    since = parse_since(event["since"]) if event.get("since") is not None else None
    return dry_run, since


def parse_since(value: Any) -> dt.datetime:
    """An ISO 8601 time (``Z`` or an offset; without one, UTC). Raises RunRequestError."""
    try:
        moment = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise RunRequestError(
            f"since must be an ISO 8601 time such as 2026-11-22T10:00:00Z; got {value!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
