"""`kantata-bridge redrive`: put failed deliveries back into the events queue after a fix.

Two sources, both by default:

- the dead-letter queue (deliveries that failed maxReceiveCount times): moved with SQS StartMessageMoveTask
  where the endpoint supports it (AWS), else received, re-sent and deleted in batches of ten (moto, or
  ``--method manual``). Each message keeps its body and attributes.
- parked deliveries in the outcome store (permanent failures such as a Kantata 422, kept with their envelope):
  each envelope is queued again and its PARKED index entry resolved as "redriven".

Works against AWS (names from ``--stack-name``'s CloudFormation outputs, from flags, or from the
``QUEUE_URL`` / ``DEAD_LETTER_QUEUE_URL`` / ``STATE_TABLE`` environment) and against the local stack
(``--endpoint-url``). ``--dry-run`` lists what would move and changes nothing.
Exit codes: 0 done, 2 a queue or table unknown, bad AWS settings or AWS refused a call, 130 interrupted.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, TextIO

from kantata_bridge_cli import aws, console

TOOL: Final = "kantata-bridge"
EXAMPLES: Final = """\
examples:
  kantata-bridge redrive --stack-name kantata-bridge --dry-run        # what would move, changing nothing
  kantata-bridge redrive --stack-name kantata-bridge                  # DLQ and parked deliveries, back to the queue
  kantata-bridge redrive --stack-name kantata-bridge --source parked  # only the parked ones (after a fix)
  # the local stack (kantata-bridge serve prints this command with its own queues and table)
  kantata-bridge redrive --endpoint-url http://127.0.0.1:PORT --region us-east-1 --method manual \\
      --queue-url URL --dead-letter-queue-url URL --state-table kantata-bridge-local-state

exit codes: 0 done, 2 a queue or table unknown, bad AWS settings or AWS refused a call, 130 interrupted
"""

BATCH: Final = 10  # SQS batch limit
# How long a received DLQ message stays hidden while it is re-sent; long enough for one send + delete.
_HIDE_SECONDS: Final = 60
_UNSUPPORTED_CODES: Final = frozenset(
    {
        "UnsupportedOperation",
        "InvalidAction",
        "UnknownOperationException",
        "NotImplemented",
        "InvalidParameterValue",
    }
)


class RedriveError(console.CliError):
    """Redrive cannot start: a queue or table is unknown, or AWS refused a call (the message says which);
    exit code 2."""


@dataclass(frozen=True, slots=True)
class Targets:
    queue_url: str
    dead_letter_queue_url: str | None
    state_table: str | None


class Progress:
    """A one-line progress bar on stderr (no dependency: tqdm is not installed and this is ten lines)."""

    def __init__(self, label: str, total: int | None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.live:
            self.stream.write("\r" + self._line())
            self.stream.flush()

    def set(self, done: int, total: int | None = None) -> None:
        self.total = total if total is not None else self.total
        self.advance(done - self.done)

    def close(self) -> None:
        self.stream.write(("\r" if self.live else "") + self._line() + "\n")
        self.stream.flush()

    def _line(self) -> str:
        if not self.total:
            return f"{self.label}: {self.done}"
        filled = int(30 * min(self.done, self.total) / self.total)
        return f"{self.label}: [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}"


# ---------------------------------------------------------------------- targets


def resolve_targets(args: argparse.Namespace, session: Any) -> Targets:
    """Queue URLs and table from flags, then the stack's outputs, then the environment.

    Raises RedriveError when the events queue cannot be found.
    """
    outputs: dict[str, str] = {}
    if args.stack_name:
        outputs = stack_outputs(session, args.stack_name, args.endpoint_url)
    queue_url = args.queue_url or outputs.get("QueueUrl") or os.environ.get("QUEUE_URL")
    dlq_url = (
        args.dead_letter_queue_url
        or outputs.get("DeadLetterQueueUrl")
        or os.environ.get("DEAD_LETTER_QUEUE_URL")
    )
    table = args.state_table or outputs.get("StateTableName") or os.environ.get("STATE_TABLE")
    if not queue_url:
        raise RedriveError("no events queue: pass --queue-url or --stack-name, or set QUEUE_URL")
    return Targets(queue_url, dlq_url, table)


def stack_outputs(session: Any, stack_name: str, endpoint_url: str | None) -> dict[str, str]:
    """The CloudFormation stack's outputs by key. Raises RedriveError if the stack cannot be read (and
    botocore's errors for a missing region, credentials or endpoint, which the command reports)."""
    from botocore.exceptions import ClientError

    try:
        stacks = session.client("cloudformation", endpoint_url=endpoint_url).describe_stacks(
            StackName=stack_name
        )
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise RedriveError(f"cannot read stack {stack_name}: {message}") from None
    outputs = stacks["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


# ---------------------------------------------------------------------- dead-letter queue


def queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def visible_count(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ]
    return int(attrs["ApproximateNumberOfMessages"])


def peek_messages(sqs: Any, url: str, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` messages, made visible again right after (for --dry-run listings)."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    while len(seen) < limit:
        got = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(BATCH, limit - len(seen)),
            VisibilityTimeout=_HIDE_SECONDS,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        ).get("Messages", [])
        if not got:
            break
        for message in got:
            seen.setdefault(message["MessageId"], message)
            handles.append(message["ReceiptHandle"])
    for start in range(0, len(handles), BATCH):
        chunk = handles[start : start + BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)],
        )
    return list(seen.values())


def move_with_task(sqs: Any, source_url: str, destination_url: str, progress: Progress) -> int | None:
    """Move with StartMessageMoveTask and follow it to the end. None when the endpoint does not support it."""
    from botocore.exceptions import ClientError

    source_arn = queue_arn(sqs, source_url)
    try:
        sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=queue_arn(sqs, destination_url))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _UNSUPPORTED_CODES or status in (404, 500, 501):
            return None
        raise RedriveError(f"StartMessageMoveTask refused: {code}") from None
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=1).get("Results", [])
        task = tasks[0] if tasks else {}
        progress.set(
            int(task.get("ApproximateNumberOfMessagesMoved", 0)),
            task.get("ApproximateNumberOfMessagesToMove"),
        )
        status = task.get("Status", "COMPLETED")
        if status in ("COMPLETED", "CANCELLED", "FAILED"):
            if status != "COMPLETED":
                raise RedriveError(
                    f"the move task ended {status}: {task.get('FailureReason', 'no reason given')}"
                )
            return int(task.get("ApproximateNumberOfMessagesMoved", progress.done))
        time.sleep(1)


def move_by_hand(
    sqs: Any, source_url: str, destination_url: str, progress: Progress, limit: int | None
) -> int:
    """Receive, re-send (same body and attributes), then delete, ten at a time. Returns how many moved.

    A message is deleted from the source only after the destination took it, so a crash can duplicate a
    delivery (the worker's idempotency absorbs that) but never lose one.
    """
    moved = 0
    empty_polls = 0
    while limit is None or moved < limit:
        want = BATCH if limit is None else min(BATCH, limit - moved)
        messages = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=want,
            VisibilityTimeout=_HIDE_SECONDS,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            empty_polls += 1
            if empty_polls >= 2:
                break
            continue
        empty_polls = 0
        entries = []
        for i, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=destination_url, Entries=entries)
        ok = {e["Id"] for e in sent.get("Successful", [])}
        done = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(messages)
            if str(i) in ok
        ]
        if done:
            sqs.delete_message_batch(QueueUrl=source_url, Entries=done)
        moved += len(done)
        progress.advance(len(done))
        if sent.get("Failed"):
            codes = sorted({f.get("Code", "?") for f in sent["Failed"]})
            raise RedriveError(
                f"the events queue refused {len(sent['Failed'])} messages ({', '.join(codes)})"
            )
    return moved


# ---------------------------------------------------------------------- parked deliveries


def parked_deliveries(dynamodb: Any, table: str) -> Iterator[Any]:
    from kantata_bridge.worker.outcomes import OutcomeStore

    return OutcomeStore(table, dynamodb).parked()


def requeue_parked(
    dynamodb: Any, sqs: Any, table: str, queue_url: str, progress: Progress, limit: int | None
) -> tuple[int, list[str]]:
    """Queue every parked delivery's envelope again and mark it redriven. Returns (requeued, skipped notes)."""
    from kantata_bridge.envelope import DeliveryEnvelope, EnvelopeError
    from kantata_bridge.worker.outcomes import OutcomeStore

    store = OutcomeStore(table, dynamodb)
    # Listed first, so the progress bar has a total (a parked index is small: it holds what needs a person).
    parked = list(itertools.islice(store.parked(), limit))
    progress.set(0, len(parked))
    requeued = 0
    skipped: list[str] = []
    for outcome in parked:
        try:
            envelope = DeliveryEnvelope.from_message(outcome.envelope or "")
        except EnvelopeError as exc:
            # Replaying a message that is not an envelope would only park it again.
            skipped.append(f"{outcome.dedupe_key}: not replayable ({exc})")
            progress.advance()
            continue
        # The envelope as it was queued, in the wire form the receiver sends today.
        body, attributes = envelope.to_sqs()
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=attributes)
        store.resolve_parked(outcome, "redriven")
        requeued += 1
        progress.advance()
    return requeued, skipped


# ---------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("where (flags, else --stack-name outputs, else the environment)")
    where.add_argument(
        "--stack-name", help="read QueueUrl, DeadLetterQueueUrl, StateTableName from this stack"
    )
    where.add_argument("--queue-url", help="events queue (env QUEUE_URL)")
    where.add_argument("--dead-letter-queue-url", help="dead-letter queue (env DEAD_LETTER_QUEUE_URL)")
    where.add_argument("--state-table", help="state table holding parked deliveries (env STATE_TABLE)")
    aws.add_arguments(where)
    parser.add_argument(
        "--source",
        choices=("all", "dlq", "parked"),
        default="all",
        help="what to redrive (default: %(default)s)",
    )
    parser.add_argument(
        "--method",
        choices=("auto", "move-task", "manual"),
        default="auto",
        help="DLQ: StartMessageMoveTask, receive/send/delete, or auto (the task where supported)",
    )
    parser.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        help="move at most this many per source (uses --method manual)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would move; change nothing")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Redrive (or list, with --dry-run). Raises CliError (exit 2) when it cannot start or AWS refuses."""
    from botocore.exceptions import BotoCoreError, ClientError

    session = aws.session(args)
    try:
        if args.limit is not None and args.method == "move-task" and _wants(args, "dlq"):
            # A move task always moves the whole queue; say so rather than quietly moving by hand.
            raise RedriveError(
                "--limit cannot be used with --method move-task (a move task moves everything)"
            )
        targets = resolve_targets(args, session)
        sqs = aws.client(session, "sqs", args)
        dynamodb = aws.client(session, "dynamodb", args)
        with console.human_logging(TOOL):
            if args.dry_run:
                return _dry_run(args, targets, sqs, dynamodb)
            return _redrive(args, targets, sqs, dynamodb)
    except (BotoCoreError, ClientError) as exc:
        raise aws.describe(exc, args, what="a queue or the state table", region=session.region_name) from None
    except KeyboardInterrupt:
        console.note(TOOL, "interrupted: messages already moved stay moved; nothing was lost")
        return console.EXIT_INTERRUPTED


def _wants(args: argparse.Namespace, source: str) -> bool:
    return args.source in ("all", source)


_NO_DLQ: Final = "dead-letter queue: not given (--dead-letter-queue-url / --stack-name); skipped"
_NO_TABLE: Final = "parked deliveries: no state table (--state-table / --stack-name); skipped"


def _dry_run(args: argparse.Namespace, targets: Targets, sqs: Any, dynamodb: Any) -> int:
    if _wants(args, "dlq"):
        if not targets.dead_letter_queue_url:
            print(_NO_DLQ)
        else:
            total = visible_count(sqs, targets.dead_letter_queue_url)
            print(f"dead-letter queue: {total} message(s) would move to {targets.queue_url}")
            for message in peek_messages(sqs, targets.dead_letter_queue_url, min(args.limit or 50, 50)):
                print("  " + _describe_message(message))
    if _wants(args, "parked"):
        if not targets.state_table:
            print(_NO_TABLE)
        else:
            parked = list(parked_deliveries(dynamodb, targets.state_table))
            if args.limit is not None:
                parked = parked[: args.limit]
            print(f"parked deliveries: {len(parked)} would be queued again")
            for outcome in parked:
                print(f"  {outcome.recorded_at}  {outcome.dedupe_key}  {outcome.reason}")
    return 0


def _describe_message(message: dict[str, Any]) -> str:
    attrs = message.get("MessageAttributes", {})

    def attr(name: str) -> str:
        return str(attrs.get(name, {}).get("StringValue", "?"))

    receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
    return f"{attr('tracker')} {attr('event_type')} delivery {attr('delivery_id')} (received {receives}x)"


def _redrive(args: argparse.Namespace, targets: Targets, sqs: Any, dynamodb: Any) -> int:
    if _wants(args, "dlq"):
        if not targets.dead_letter_queue_url:
            print(_NO_DLQ)
        else:
            total = visible_count(sqs, targets.dead_letter_queue_url)
            if args.limit is not None:
                total = min(total, args.limit)
            progress = Progress("dead-letter queue", total)
            moved = None
            if args.method != "manual" and args.limit is None:
                moved = move_with_task(sqs, targets.dead_letter_queue_url, targets.queue_url, progress)
                if moved is None and args.method == "move-task":
                    raise RedriveError("this endpoint does not support StartMessageMoveTask")
            if moved is None:
                moved = move_by_hand(
                    sqs, targets.dead_letter_queue_url, targets.queue_url, progress, args.limit
                )
            progress.close()
            print(f"dead-letter queue: {moved} message(s) moved to the events queue")
    if _wants(args, "parked"):
        if not targets.state_table:
            print(_NO_TABLE)
        else:
            progress = Progress("parked deliveries", 0)
            requeued, skipped = requeue_parked(
                dynamodb, sqs, targets.state_table, targets.queue_url, progress, args.limit
            )
            progress.close()
            print(f"parked deliveries: {requeued} queued again")
            for note in skipped:
                print(f"  skipped {note}")
    return 0
