"""One SQS batch → one recorded outcome per delivery.

Per batch (``Worker.start_batch``): every record's envelope is parsed and its payload turned into a
TrackerEvent up front, so that within the batch only the newest event per object is applied and the others
are skipped as *superseded* (a burst of edits makes one report).

Per record (``BatchRun.process_record``), inside Powertools idempotency keyed on the delivery's dedupe key:
claim the object's version (ordering guard, written with the in-progress record in one transaction; see
idempotency.py) → route → map → POST /status_reports → outcome (one UpdateItem that completes the record).

Failure classes:

- retryable (Kantata 429/5xx/timeout/connection, DynamoDB or S3 trouble, a broken routing config): the record
  fails, SQS redelivers it and the DLQ takes it after maxReceiveCount. The failed outcome replaces the
  in-progress record, so the redelivery is not blocked; the version claim stays with this delivery, so the
  redelivery is not mistaken for a stale event.
- permanent (Kantata 400/401/403/404/422, an unmappable payload, a bad envelope, a missing claim-checked body):
  the delivery is *parked* with the reason and its envelope and the record succeeds, so it never loops.
  A parked delivery may run again (a redrive after a fix processes it).
- not enough time left in the invocation, or the object busy in another invocation for longer than this one
  can wait: the record is *deferred*: sent to the queue again as a new message and deleted, so running out of
  time never counts towards maxReceiveCount (a slow but healthy Kantata never dead-letters a delivery).

Exactly once: a POST that failed ambiguously (a timeout or a dropped connection after sending) may have
created the report. The failed outcome marks the object's claim as ambiguous for this delivery. A later attempt
that still holds the claim (a reclaim), or that finds the object claimed by a newer delivery since, lists the
object's reports by external reference and looks for its delivery marker (see mapping.rules) before posting or
calling itself stale: if the report is there, the delivery is recorded as posted with that report's id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NoReturn, Protocol

from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from kantata_bridge.envelope import DeliveryEnvelope, EnvelopeError
from kantata_bridge.kantata.errors import (
    AuthenticationError,
    KantataConnectionError,
    KantataError,
    MalformedResponseError,
    UnavailableError,
)
from kantata_bridge.kantata.models import StatusReport
from kantata_bridge.mapping.config import BridgeConfig, ConfigError, Route
from kantata_bridge.mapping.links import WorkspaceLinks
from kantata_bridge.mapping.routing import route_event
from kantata_bridge.mapping.rules import delivery_marker, map_event
from kantata_bridge.observability import logger, metrics
from kantata_bridge.tracker_event import IgnoredEventError, TrackerEvent, UnmappablePayloadError
from kantata_bridge.worker.claim_check import ClaimCheckError
from kantata_bridge.worker.idempotency import CURRENT_CLAIM, ClaimRequest, ObjectBusyError
from kantata_bridge.worker.ordering import Claim, OrderingGuard, VersionChange, version_number, version_text
from kantata_bridge.worker.outcomes import Outcome, OutcomeKind, OutcomeStore, now_iso
from kantata_bridge.worker.tasks import TaskLink, TaskResult, TaskSync, link_change, outcome_fields

# Do not start a POST with less time left than this: connect + read timeout (3.05 + 10 s) plus room to
# record the outcome (one DynamoDB write, bounded retries). Starting it anyway risks a Lambda timeout
# mid-request (an ambiguous failure).
DEFAULT_POST_MARGIN_MS: Final = 16_000
# Do not start a delivery that will write to Kantata with less time left than this (the claim, the POST and
# the completion): it is deferred instead (sent to the queue again).
DEFAULT_RECORD_BUDGET_MS: Final = 20_000
# Longest a delivery waits in-process for another invocation to finish writing the same object.
DEFAULT_BUSY_WAIT_MS: Final = 15_000


class RetryableDeliveryError(Exception):
    """The delivery failed for a reason that may pass (the record fails; SQS redelivers it)."""


class ParkDeliveryError(Exception):
    """The delivery cannot succeed as it is (it is parked with this reason; the record succeeds)."""


class KantataWriter(Protocol):
    """What the worker needs from the Kantata client."""

    def create_status_report(self, report: StatusReport) -> StatusReport: ...

    def list_status_reports(
        self,
        *,
        workspace_id: str | int | None = ...,
        external_reference_service_name: str | None = ...,
        external_reference_service_model: str | None = ...,
        external_reference_service_model_refs: Sequence[str] | None = ...,
    ) -> Iterable[StatusReport]: ...


class Requeue(Protocol):
    """Sends a record's message to the queue again, as a new message (a deferral)."""

    def __call__(self, message: str, attributes: Mapping[str, Any], delay_seconds: int) -> None: ...


class KantataSource(Protocol):
    def __call__(self) -> KantataWriter: ...

    def invalidate(self) -> None: ...


def parse_delivery(envelope: DeliveryEnvelope) -> TrackerEvent:
    """The envelope's (inline) body as a TrackerEvent, by the tracker's own parser (see trackers.registry).

    Raises IgnoredEventError (not reported) or UnmappablePayloadError (no adapter, or bad payload).
    """
    from kantata_bridge.trackers.registry import find_event_parser

    body = envelope.body
    if body is None:
        raise UnmappablePayloadError("envelope body is not loaded")
    parse = find_event_parser(envelope.tracker)
    if parse is None:
        raise UnmappablePayloadError(f"tracker {envelope.tracker!r}: no event adapter")
    return parse(envelope.event_type, body, envelope.content_type, envelope.headers)


@dataclass(slots=True)
class Prepared:
    """One SQS record after parsing, before any write."""

    message_id: str
    message: str
    receive_count: int
    position: int
    attributes: Mapping[str, Any] = field(default_factory=dict)
    envelope: DeliveryEnvelope | None = None
    event: TrackerEvent | None = None
    skip_reason: str | None = None
    park_reason: str | None = None
    retry_reason: str | None = None
    superseded_by: str | None = None
    queued: DeliveryEnvelope | None = None  # as it came off the queue (a claim-checked body not yet fetched)

    @property
    def kept_message(self) -> str:
        """What a parked outcome keeps to replay the delivery: the self-contained (v1) envelope, or the raw
        message when it is not an envelope at all."""
        return self.queued.to_message() if self.queued is not None else self.message

    @property
    def writes(self) -> bool:
        """Whether handling this record may write to Kantata (so it claims the object first)."""
        return self.event is not None and not (
            self.skip_reason or self.park_reason or self.retry_reason or self.superseded_by
        )

    @property
    def dedupe_key(self) -> str:
        if self.envelope is not None:
            return self.envelope.dedupe_key
        # No envelope, no delivery id: the SQS message id is the only identity left.
        return f"sqs:{self.message_id}"


def prepare_records(
    records: Sequence[Mapping[str, Any]], fetch_body: Callable[[DeliveryEnvelope], DeliveryEnvelope]
) -> dict[str, Prepared]:
    """Parse every record of a batch and mark the events that a newer event of the same object in the same
    batch supersedes. Only ``fetch_body`` does I/O (claim-checked bodies)."""
    out: dict[str, Prepared] = {}
    for position, record in enumerate(records):
        attrs = record.get("attributes") or {}
        try:
            receive_count = int(attrs.get("ApproximateReceiveCount", 1))
        except (TypeError, ValueError):
            receive_count = 1
        p = Prepared(
            message_id=str(record.get("messageId", position)),
            message=str(record.get("body", "")),
            receive_count=receive_count,
            position=position,
            attributes=record.get("messageAttributes") or {},
        )
        out[p.message_id] = p
        try:
            p.envelope = p.queued = DeliveryEnvelope.from_sqs(p.message, p.attributes)
        except EnvelopeError as exc:
            p.park_reason = f"bad envelope: {exc}"
            continue
        try:
            p.envelope = fetch_body(p.envelope)
        except ClaimCheckError as exc:
            if exc.retryable:
                p.retry_reason = str(exc)
            else:
                p.park_reason = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - one record's trouble must not fail the whole batch
            p.retry_reason = f"claim-checked body: unexpected {type(exc).__name__}"
            continue
        try:
            p.event = parse_delivery(p.envelope)
        except IgnoredEventError as exc:
            p.skip_reason = f"ignored: {exc.reason}"
        except UnmappablePayloadError as exc:
            p.park_reason = f"unmappable payload: {exc}"
        except Exception as exc:  # noqa: BLE001 - a parser bug on one payload must not fail the whole batch
            # Parsing is pure: a retry would fail the same way, so park it (with its envelope) for a fix.
            # Only the type is named: the message could quote the payload.
            p.park_reason = f"unmappable payload: the parser failed ({type(exc).__name__})"
    _mark_superseded(list(out.values()))
    return out


def _mark_superseded(prepared: list[Prepared]) -> None:
    events = [(p, p.event) for p in prepared if p.event is not None]
    newest: dict[str, tuple[Prepared, TrackerEvent]] = {}
    for p, event in events:
        best = newest.get(event.object_key)
        # Ties (equal versions) go to the later record: SQS gives no order, the later one is as good a guess.
        if best is None or event.version >= best[1].version:
            newest[event.object_key] = (p, event)
    for p, event in events:
        winner, winner_event = newest[event.object_key]
        # Copies of the same delivery are not superseded by each other: idempotency makes one of them count.
        if winner.dedupe_key != p.dedupe_key:
            p.superseded_by = (
                f"superseded by delivery {winner.dedupe_key} "
                f"(version {winner_event.version.isoformat()}) in the same batch"
            )


@dataclass
class Worker:
    """The record flow with its collaborators injected (see runtime.py for the production wiring).

    ``idempotent``: the Powertools-wrapped ``deliver_once`` and its config (None: no idempotency, and the
    worker writes outcomes itself; used by tests of the flow alone).
    """

    guard: OrderingGuard
    outcomes: OutcomeStore
    config: Callable[[], BridgeConfig]
    kantata: KantataSource
    fetch_body: Callable[[DeliveryEnvelope], DeliveryEnvelope]
    idempotent: tuple[Callable[..., dict[str, Any]], Any] | None = None
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    post_margin_ms: int = DEFAULT_POST_MARGIN_MS
    record_budget_ms: int = DEFAULT_RECORD_BUDGET_MS
    busy_wait_ms: int = DEFAULT_BUSY_WAIT_MS
    requeue: Requeue | None = None
    tasks: TaskSync = field(default_factory=TaskSync)
    links: WorkspaceLinks | None = None  # Kantata workspaces linked to a tracker source (mapping/links.py)

    def start_batch(self, records: Sequence[Mapping[str, Any]], context: Any = None) -> BatchRun:
        """Parse the batch and return the run whose ``process_record`` the batch processor calls."""
        if self.idempotent is not None and context is not None:
            self.idempotent[1].register_lambda_context(context)
        return BatchRun(self, prepare_records(records, self.fetch_body), context)

    # ------------------------------------------------------------------ the flow of one delivery

    def deliver(self, p: Prepared, run: BatchRun) -> Outcome:
        """Route, map, claim, post. Returns the outcome, or raises Retryable/ParkDeliveryError."""
        if p.retry_reason:
            raise RetryableDeliveryError(p.retry_reason)
        if p.park_reason:
            raise ParkDeliveryError(p.park_reason)
        if p.skip_reason:
            return self._outcome(p, OutcomeKind.SKIPPED, p.skip_reason)
        event = p.event
        assert event is not None  # prepare_records sets a reason whenever it sets no event
        if p.superseded_by:
            return self._outcome(p, OutcomeKind.SKIPPED, p.superseded_by)
        try:
            config = self.config()
        except ConfigError as exc:
            raise RetryableDeliveryError(str(exc)) from None
        try:
            route = resolve_route(event, config, self.links)
        except KantataError as exc:
            self._fail(exc, what="links")
        if route is None:
            where = " and no Kantata workspace is linked to it" if config.links.enabled and self.links else ""
            return self._outcome(
                p, OutcomeKind.SKIPPED, f"unrouted: no route for {event.tracker} {event.project}{where}"
            )
        try:
            report = map_event(
                event,
                route,
                config.rules,
                dedupe_key=p.dedupe_key,
                today=self.clock().astimezone(dt.UTC).date(),
            )
            report.to_body()  # checks the enumerations before anything is written
        except KantataError as exc:
            raise ParkDeliveryError(f"mapping: {exc}") from None
        claim = run.claim_of(p) or self._claim(p, event)
        if not claim.granted:
            if claim.ambiguous:
                # An earlier attempt of this delivery sent its create and lost the answer; a newer delivery
                # has claimed the object since. Kantata may hold this delivery's report: say so if it does.
                found = self._find_earlier_report(self._client(), report, event, p.dedupe_key)
                if found is not None:
                    run.change.remove_ambiguous = p.dedupe_key
                    return self._outcome(
                        p,
                        OutcomeKind.POSTED,
                        "posted by an earlier attempt whose answer was lost (found by its delivery marker); "
                        f"a newer update (delivery {claim.current_delivery}) has been posted since",
                        workspace_id=route.workspace_id,
                        report_id=found,
                    )
            held = version_text(claim.current_version) if claim.current_version is not None else "?"
            return self._outcome(
                p,
                OutcomeKind.SKIPPED,
                f"stale: version {event.version.isoformat()} is not newer than {held} "
                f"(delivery {claim.current_delivery})",
                workspace_id=route.workspace_id,
            )
        client = self._client()
        report_id: str | None = None
        reason = "posted"
        if claim.reclaimed:
            found = self._find_earlier_report(client, report, event, p.dedupe_key)
            if found is not None:
                if claim.ambiguous:
                    run.change.remove_ambiguous = p.dedupe_key
                report_id, reason = found, "posted by an earlier attempt (found by its delivery marker)"
        if report_id is None:
            run.ensure_time_for_post(self.post_margin_ms)
            try:
                report_id = client.create_status_report(report).id
            except KantataError as exc:
                if is_ambiguous(exc):
                    run.change.add_ambiguous = p.dedupe_key
                self._fail(exc)
        task = self._sync_task(client, event, route, config.rules.message_limit, run)
        return self._outcome(
            p,
            OutcomeKind.POSTED,
            reason,
            workspace_id=route.workspace_id,
            report_id=report_id,
            **outcome_fields(task),
        )

    def _sync_task(
        self, client: Any, event: TrackerEvent, route: Route, message_limit: int, run: BatchRun
    ) -> TaskResult | None:
        """Keep the object's linked Kantata task in step (worker/tasks.py), when the route asks for it."""
        if route.tasks.mode == "off":
            return None
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            item = self.guard.read_item(event.object_key)
        except (BotoCoreError, ClientError) as exc:
            raise RetryableDeliveryError(f"task link: {type(exc).__name__}") from None
        cached = TaskLink.from_item(item)
        try:
            result = self.tasks.sync(
                client,
                event,
                route,
                cached,
                lambda: run.ensure_time_for_post(self.post_margin_ms),
                message_limit=message_limit,
            )
        except KantataError as exc:
            self._fail(exc, what="task")
        if not result.keep_link:
            run.change.task_sets, run.change.task_removes = link_change(result.link)
        metrics.add_metric(name=f"Tasks{result.action.title().replace(' ', '')}", unit="Count", value=1)
        return result

    def _claim(self, p: Prepared, event: TrackerEvent) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.guard.claim(event.object_key, version_number(event.version), p.dedupe_key)
        except (ClientError, BotoCoreError) as exc:
            raise RetryableDeliveryError(f"ordering guard: {type(exc).__name__}: {exc}") from None

    def _client(self) -> KantataWriter:
        try:
            return self.kantata()
        except Exception as exc:  # noqa: BLE001 - token fetch or client set-up: an outage or a config fix away
            # The message names only the error type: a token must never reach a log line.
            raise RetryableDeliveryError(f"kantata client: {type(exc).__name__}") from None

    def _fail(self, exc: KantataError, *, what: str = "") -> NoReturn:
        prefix = f"kantata ({what})" if what else "kantata"
        if exc.retryable:
            raise RetryableDeliveryError(f"{prefix}: {exc}") from None
        if isinstance(exc, AuthenticationError):
            # The token may have been rotated: make the next delivery fetch it again.
            self.kantata.invalidate()
        raise ParkDeliveryError(f"{prefix}: {exc}") from None

    def _find_earlier_report(
        self, client: KantataWriter, report: StatusReport, event: TrackerEvent, dedupe_key: str
    ) -> str | None:
        marker = delivery_marker(dedupe_key)
        try:
            for existing in client.list_status_reports(
                workspace_id=report.workspace_id,
                external_reference_service_name=event.tracker,
                external_reference_service_model=event.model.value,
                external_reference_service_model_refs=[event.ref],
            ):
                if marker in existing.description.splitlines():
                    return existing.id
        except KantataError as exc:
            self._fail(exc)
        return None

    def _outcome(self, p: Prepared, kind: OutcomeKind, reason: str, **extra: Any) -> Outcome:
        env = p.envelope
        event = p.event
        return Outcome(
            dedupe_key=p.dedupe_key,
            kind=kind,
            reason=reason,
            recorded_at=now_iso(),
            tracker=env.tracker if env else None,
            event_type=env.event_type if env else None,
            delivery_id=env.delivery_id if env else None,
            object_key=event.object_key if event else None,
            version=event.version.isoformat() if event else None,
            attempt=p.receive_count,
            envelope=p.kept_message if kind is OutcomeKind.PARKED else None,
            origin=env.origin if env else None,
            **extra,
        )


def resolve_route(event: TrackerEvent, config: BridgeConfig, links: WorkspaceLinks | None) -> Route | None:
    """The route for ``event``: the first matching route of the document, else (when ``links`` are on) the
    Kantata workspace linked to the event's source, with the ``links`` section's task settings. Raises
    KantataError when Kantata cannot be asked."""
    route = route_event(event, config)
    if route is not None or links is None or not config.links.enabled:
        return route
    links.max_age_seconds = float(config.links.max_age_seconds)
    ids = links.workspaces_for(event.tracker, event.project)
    if not ids:
        return None
    if len(ids) > 1:
        logger.warning(
            "several Kantata workspaces are linked to one source; using the first",
            extra={"tracker": event.tracker, "source": event.project, "workspaces": list(ids)},
        )
    return Route(
        tracker=event.tracker,
        source=event.project,
        workspace_id=ids[0],
        name=f"kantata link: {event.tracker} {event.project}",
        tasks=config.links.tasks,
    )


def is_ambiguous(exc: KantataError) -> bool:
    """Whether a failed create may have been made in Kantata after all: no answer arrived (a timeout, a
    dropped connection) or a 5xx other than 503 came back, or a 2xx the client could not read. A 429, a 503
    or a 4xx means Kantata did not make it."""
    if isinstance(exc, KantataConnectionError | MalformedResponseError):
        return True
    return isinstance(exc, UnavailableError) and getattr(exc, "status", None) != 503


def deliver_once(*, delivery: dict[str, str], prepared: Prepared, run: BatchRun) -> dict[str, Any]:
    """The unit Powertools idempotency wraps (its module and name are part of the idempotency key: keep them)."""
    return run.worker.deliver(prepared, run).to_dict()


class BatchRun:
    """One invocation's batch: the prepared records and the per-record entry point.

    Per record it also carries what the record's attempt learnt (its claim, an ambiguous create) from the
    flow to the outcome write; records are handled one at a time.
    """

    def __init__(self, worker: Worker, prepared: dict[str, Prepared], context: Any) -> None:
        self.worker = worker
        self.prepared = prepared
        self.context = context
        self.started = 0  # records that began writing in this invocation
        self._request: ClaimRequest | None = None
        # What the current record changes on its object's VERSION item, written with its outcome.
        self.change = VersionChange()
        self.object_key: str | None = None

    def remaining_ms(self) -> int | None:
        remaining = getattr(self.context, "get_remaining_time_in_millis", None)
        return int(remaining()) if remaining is not None else None

    def ensure_time_for_post(self, margin_ms: int) -> None:
        remaining = self.remaining_ms()
        if remaining is not None and remaining < margin_ms:
            raise RetryableDeliveryError("not enough time left in this invocation to post safely")

    def claim_of(self, p: Prepared) -> Claim | None:
        """The claim the record store took for ``p`` with its in-progress record, if it did."""
        request = self._request
        if request is not None and request.dedupe_key == p.dedupe_key:
            return request.claim
        return None

    def process_record(self, record: Any) -> dict[str, Any]:
        """Handle one SQS record (a Powertools SQSRecord or a raw dict). Returns the outcome as a dict.

        Raises RetryableDeliveryError (or an idempotency error) to fail the record so SQS redelivers it.
        """
        message_id = record["messageId"] if isinstance(record, Mapping) else record.message_id
        p = self.prepared[message_id]
        worker = self.worker
        if p.envelope is None:
            return self._finish(worker._outcome(p, OutcomeKind.PARKED, p.park_reason or "bad envelope"))
        self.change = VersionChange()
        self.object_key = p.event.object_key if p.event is not None else None
        if p.writes:
            remaining = self.remaining_ms()
            if remaining is not None and remaining < worker.record_budget_ms and self.started:
                return self._defer(p, "not enough time left in this invocation", delay_seconds=0)
            self.started += 1
        try:
            if worker.idempotent is None:
                outcome = worker.deliver(p, self)
                worker.outcomes.put(outcome, self._version_items())
            else:
                result = self._deliver_once(p)
                if result.get("duplicate"):
                    return self._duplicate(p, result)
                outcome = Outcome.from_dict(result)
        except ParkDeliveryError as exc:
            return self._finish(worker._outcome(p, OutcomeKind.PARKED, str(exc)))
        except RetryableDeliveryError as exc:
            self._finish(worker._outcome(p, OutcomeKind.FAILED, str(exc)))
            raise
        except IdempotencyAlreadyInProgressError:
            # Another invocation holds this delivery right now; SQS will hand it to us again later.
            logger.info("delivery in progress elsewhere", extra={"dedupe_key": p.dedupe_key})
            metrics.add_metric(name="DeliveriesInProgressElsewhere", unit="Count", value=1)
            raise
        except ObjectBusyError as exc:
            return self._defer(p, f"object busy: {exc}", delay_seconds=5)
        except Exception as exc:
            reason = f"unexpected: {type(exc).__name__}: {str(exc)[:300]}"
            self._finish(worker._outcome(p, OutcomeKind.FAILED, reason))
            raise
        self._log(outcome)
        return outcome.to_dict()

    def _deliver_once(self, p: Prepared) -> dict[str, Any]:
        """The Powertools-wrapped delivery, with the object's claim written with its in-progress record."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyPersistenceLayerError
        from botocore.exceptions import BotoCoreError, ClientError

        worker = self.worker
        assert worker.idempotent is not None
        request = None
        if p.writes and p.event is not None:
            remaining = self.remaining_ms() or 900_000
            request = ClaimRequest(
                object_key=p.event.object_key,
                version=version_number(p.event.version),
                dedupe_key=p.dedupe_key,
                # The lease lasts as long as this invocation can: it cannot expire while this one may write.
                lease_ms=remaining + 1_000,
                wait_budget_s=max(0.0, min(worker.busy_wait_ms, remaining - worker.record_budget_ms) / 1000),
                completion_items=self._version_items,
            )
        self._request = request
        token = CURRENT_CLAIM.set(request)
        try:
            return worker.idempotent[0](delivery={"dedupe_key": p.dedupe_key}, prepared=p, run=self)
        except IdempotencyPersistenceLayerError as exc:
            cause = exc.__cause__
            if isinstance(cause, ObjectBusyError):
                raise cause from None
            if isinstance(cause, BotoCoreError | ClientError):
                raise RetryableDeliveryError(f"delivery record: {type(cause).__name__}: {cause}") from None
            raise
        finally:
            CURRENT_CLAIM.reset(token)
            self._request = None
            # A granted claim holds the object's lease: whatever comes of the delivery, its outcome write
            # releases it (the completion, or the failed / parked outcome written after).
            if request is not None and request.claim is not None and request.claim.granted:
                self.change.release_lease = True

    def _version_items(self) -> list[dict[str, Any]]:
        """The transaction items the current record's outcome write carries for its object (maybe none)."""
        if self.object_key is None:
            return []
        request = self._request
        if request is not None and request.claim is not None and request.claim.granted:
            self.change.release_lease = True  # the completion runs inside the claim: it ends the lease
        update = self.worker.guard.change_update(self.object_key, self.change)
        return [{"Update": update}] if update is not None else []

    def _defer(self, p: Prepared, why: str, *, delay_seconds: int) -> dict[str, Any]:
        """Send the record's message to the queue again as a new message and let this one go (it is deleted):
        a deferral never counts towards maxReceiveCount. Without a way to requeue, the record fails instead."""
        requeue = self.worker.requeue
        fields = {"dedupe_key": p.dedupe_key, "reason": why, "attempt": p.receive_count}
        if requeue is None:
            raise RetryableDeliveryError(f"deferred: {why}")
        try:
            requeue(p.message, p.attributes, delay_seconds)
        except Exception as exc:  # noqa: BLE001 - could not requeue: fail the record, SQS keeps it
            raise RetryableDeliveryError(f"deferred: {why}; requeue failed ({type(exc).__name__})") from None
        logger.info("delivery deferred", extra=fields)
        metrics.add_metric(name="DeliveriesDeferred", unit="Count", value=1)
        return {"dedupe_key": p.dedupe_key, "kind": "deferred", "reason": why}

    def _finish(self, outcome: Outcome) -> dict[str, Any]:
        # Parked and failed outcomes are written here, over the in-progress record (see idempotency.py). A
        # failure to write them is logged; for a failed record SQS still holds the message.
        # With it go the VERSION item's changes: the lease released, and for an ambiguous create the note that
        # tells later attempts of this delivery to look for its report before calling themselves stale.
        try:
            self.worker.outcomes.put(outcome, self._version_items())
        except Exception as exc:  # noqa: BLE001 - the outcome write must not hide the delivery's own result
            logger.error(
                "could not record outcome", extra={**outcome.log_fields(), "error": type(exc).__name__}
            )
            if outcome.kind is OutcomeKind.PARKED:
                # Not recorded anywhere yet: fail the record so SQS keeps the delivery.
                raise RetryableDeliveryError("could not record the parked outcome") from None
        self._log(outcome)
        return outcome.to_dict()

    def _duplicate(self, p: Prepared, result: dict[str, Any]) -> dict[str, Any]:
        logger.info(
            "delivery outcome",
            extra={
                "outcome": "skipped",
                "reason": "duplicate: already processed",
                "dedupe_key": p.dedupe_key,
                "original_outcome": result.get("kind"),
                "report_id": result.get("report_id"),
                "attempt": p.receive_count,
            },
        )
        metrics.add_metric(name="DeliveriesDuplicate", unit="Count", value=1)
        return result

    @staticmethod
    def _log(outcome: Outcome) -> None:
        level = logger.warning if outcome.kind in (OutcomeKind.PARKED, OutcomeKind.FAILED) else logger.info
        level("delivery outcome", extra=outcome.log_fields())
        metrics.add_metric(name=f"Deliveries{outcome.kind.value.capitalize()}", unit="Count", value=1)
