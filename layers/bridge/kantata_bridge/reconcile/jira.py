"""Jira reconciliation: find the issue changes the bridge never processed and queue them as deliveries.

Jira retries a failed webhook for a while only, and a change can be lost for good (a long outage, a webhook
Jira dropped or disabled). A run:

1. reads the routed Jira projects from the routing document (the ``project`` of every Jira route);
2. searches ``project in (…) AND updated >= "-<N>m" ORDER BY updated ASC`` through ``POST
   /rest/api/3/search/jql``, page by page (``nextPageToken``), where the window starts at the checkpoint minus
   an overlap. A relative time, not an absolute one: JQL reads an absolute date in the searching account's
   profile time zone and to the minute only, which a run cannot know; "-N minutes" means the same everywhere;
3. builds, for each issue, the body of a ``jira:issue_updated`` webhook from its fields and parses it with the
   worker's own Jira parser, so the object key and version compared below are exactly the worker's;
4. compares that version (``fields.updated``) with what the ordering guard last applied for the issue
   (``OrderingGuard.current``); only a newer state is queued, as a ``DeliveryEnvelope`` with ``origin`` set to
   ``reconciled`` and the delivery id ``reconcile:<key>:<updated>`` (the same change found by two runs is one
   delivery, which idempotency keeps to one outcome). A marker (``pk=RECONCILED#<dedupe key>``) makes sure
   two runs never both queue it;
5. advances the checkpoint to the run's cut-off (``now - settle``), or to the oldest change it could not queue.

Changes in the last ``settle`` minutes are left to their webhook (and the next run): a webhook on its way
would otherwise race the sweep. Either way the ordering guard lets only one of two deliveries carrying the
same version post (the other is skipped as stale), so a sweep never posts a change twice.

Not found by a sweep: deleted issues (a search cannot return them), and an edit whose newer state was
followed by another edit (only the newest state is queued, which is what Kantata must end on).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from kantata_bridge.envelope import INLINE_BODY_LIMIT, DeliveryEnvelope
from kantata_bridge.reconcile.jira_api import JiraApiError, JiraClient
from kantata_bridge.recovery.state import (
    CheckpointStore,
    MarkerStore,
    RunRequestError,
    TimeBudget,
    parse_run_request,
)

TRACKER: Final = "jira"
ORIGIN: Final = "reconciled"
EVENT_TYPE: Final = "jira:issue_updated"
MARKER_PREFIX: Final = "RECONCILED#"
MARKER_TTL_SECONDS: Final = 8 * 86400  # as long as the worker's idempotency records
# The fields the Jira parser reads (kantata_bridge.trackers.jira_events); the Flagged field is added by id.
BASE_FIELDS: Final = (
    "summary",
    "status",
    "project",
    "labels",
    "components",
    "priority",
    "duedate",
    "updated",
)
DEFAULT_OVERLAP_MINUTES: Final = 15
DEFAULT_SETTLE_MINUTES: Final = 2
DEFAULT_INITIAL_LOOKBACK_MINUTES: Final = 60

ENQUEUED: Final = "enqueued"
WOULD_ENQUEUE: Final = "would enqueue"
UP_TO_DATE: Final = "up to date"
ALREADY_ENQUEUED: Final = "already enqueued"
SETTLING: Final = "settling"
DEFERRED: Final = "deferred"
UNMAPPABLE: Final = "unmappable"


class ReconcileSettingsError(ValueError):
    """A setting, the routing document or the credentials cannot be used; the message says which (never a
    secret value)."""


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """The sweep's settings (environment variables in docs/recovery.md)."""

    state_table: str
    queue_url: str
    base_url: str
    credentials_secret_name: str | None = None
    routing_config_file: str | None = None
    routing_config_parameter: str | None = None
    overlap: dt.timedelta = dt.timedelta(minutes=DEFAULT_OVERLAP_MINUTES)
    settle: dt.timedelta = dt.timedelta(minutes=DEFAULT_SETTLE_MINUTES)
    initial_lookback: dt.timedelta = dt.timedelta(minutes=DEFAULT_INITIAL_LOOKBACK_MINUTES)
    extra_fields: tuple[str, ...] = ()

    @property
    def checkpoint_name(self) -> str:
        return f"{TRACKER}:{urlsplit(self.base_url).netloc}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReconcileSettings:
        """Read the settings. Raises ReconcileSettingsError naming the variable that is missing or wrong."""
        env = os.environ if environ is None else environ

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise ReconcileSettingsError(f"{name} is required")
            return value

        base_url = required("JIRA_BASE_URL").rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ReconcileSettingsError(f"JIRA_BASE_URL must be https://<site>; got {base_url!r}")
        config_file = env.get("ROUTING_CONFIG_FILE", "").strip() or None
        config_parameter = env.get("ROUTING_CONFIG_PARAMETER", "").strip() or None
        if not config_file and not config_parameter:
            raise ReconcileSettingsError("set ROUTING_CONFIG_FILE or ROUTING_CONFIG_PARAMETER")
        overlap = _minutes(env, "JIRA_RECONCILE_OVERLAP_MINUTES", DEFAULT_OVERLAP_MINUTES)
        settle = _minutes(env, "JIRA_RECONCILE_SETTLE_MINUTES", DEFAULT_SETTLE_MINUTES)
        if overlap <= settle:
            raise ReconcileSettingsError(
                "JIRA_RECONCILE_OVERLAP_MINUTES must be larger than JIRA_RECONCILE_SETTLE_MINUTES "
                "(else changes between two runs' cut-offs are never searched)"
            )
        extra = tuple(f.strip() for f in env.get("JIRA_RECONCILE_EXTRA_FIELDS", "").split(",") if f.strip())
        return cls(
            state_table=required("STATE_TABLE"),
            queue_url=required("QUEUE_URL"),
            base_url=base_url,
            credentials_secret_name=required("JIRA_CREDENTIALS_SECRET_NAME"),
            routing_config_file=config_file,
            routing_config_parameter=config_parameter,
            overlap=overlap,
            settle=settle,
            initial_lookback=_minutes(
                env, "JIRA_RECONCILE_INITIAL_LOOKBACK_MINUTES", DEFAULT_INITIAL_LOOKBACK_MINUTES
            ),
            extra_fields=extra,
        )


def _minutes(env: Mapping[str, str], name: str, default: int) -> dt.timedelta:
    raw = env.get(name, "").strip()
    if not raw:
        return dt.timedelta(minutes=default)
    if not raw.isdigit():
        raise ReconcileSettingsError(f"{name} must be a whole number of minutes; got {raw!r}")
    return dt.timedelta(minutes=int(raw))


# ---------------------------------------------------------------------- pure parts


def jira_projects(config: Any) -> list[str]:
    """The projects of the routing document's Jira routes (``BridgeConfig``), sorted, each once."""
    return sorted({route.source for route in config.routes if route.tracker == TRACKER})


def build_jql(projects: Sequence[str], minutes: int) -> str:
    """``project in ("A", "B") AND updated >= "-<minutes>m" ORDER BY updated ASC``."""
    if not projects:
        raise ValueError("no project to search")
    quoted = ", ".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in projects)
    return f'project in ({quoted}) AND updated >= "-{max(1, minutes)}m" ORDER BY updated ASC'


def window_minutes(start: dt.datetime, now: dt.datetime) -> int:
    """Whole minutes from ``start`` to ``now``, rounded up, plus one for JQL's minute precision."""
    return max(1, math.ceil((now - start).total_seconds() / 60)) + 1


def synthetic_body(issue: Mapping[str, Any], timestamp_ms: int | None = None) -> bytes:
    """The body of a ``jira:issue_updated`` webhook for a searched issue (its id, key, self and fields)."""
    doc: dict[str, Any] = {
        "webhookEvent": EVENT_TYPE,
        "issue_event_type_name": "issue_generic",
        "issue": {
            "id": issue.get("id"),
            "key": issue.get("key"),
            "self": issue.get("self"),
            "fields": issue.get("fields") or {},
        },
    }
    if timestamp_ms is not None:
        doc["timestamp"] = timestamp_ms
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode("utf-8")


def delivery_id_for(key: str, version: dt.datetime) -> str:
    """``reconcile:<key>:<updated, UTC, milliseconds>``: the same change always gets the same id."""
    stamp = version.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"reconcile:{key}:{stamp}"


@dataclass(frozen=True, slots=True)
class Synthetic:
    """A searched issue as the delivery the sweep would queue, with the worker's reading of it."""

    envelope: DeliveryEnvelope
    object_key: str
    version: dt.datetime


def synthesize(issue: Mapping[str, Any], received_at: str) -> Synthetic:
    """Turn a searched issue into a reconciled delivery. Raises UnmappablePayloadError (the worker's parser
    refuses it; the message names the field) or IgnoredEventError."""
    from kantata_bridge.tracker_event import UnmappablePayloadError
    from kantata_bridge.trackers.jira_events import parse_jira_event

    first = parse_jira_event(synthetic_body(issue), EVENT_TYPE)
    body = synthetic_body(issue, int(first.version.timestamp() * 1000))
    if len(body) > INLINE_BODY_LIMIT:
        raise UnmappablePayloadError(f"issue body is {len(body)} bytes, above the queue's inline limit")
    event = parse_jira_event(body, EVENT_TYPE)
    envelope = DeliveryEnvelope(
        tracker=TRACKER,
        event_type=EVENT_TYPE,
        delivery_id=delivery_id_for(event.ref, event.version),
        received_at=received_at,
        content_type="application/json",
        headers={"content-type": "application/json"},
        body=body,
        origin=ORIGIN,
    )
    return Synthetic(envelope, event.object_key, event.version)


# ---------------------------------------------------------------------- the run


class DeliveryQueueLike(Protocol):
    def send(self, envelope: DeliveryEnvelope) -> None: ...


class VersionReader(Protocol):
    def current(self, object_key: str) -> tuple[int, str] | None: ...


@dataclass(slots=True)
class IssueRow:
    key: str
    updated: str
    result: str
    detail: str = ""
    delivery_id: str | None = None


@dataclass(slots=True)
class ReconcileReport:
    """What one sweep did; ``to_dict`` is its JSON summary."""

    dry_run: bool
    projects: list[str] = field(default_factory=list)
    jql: str | None = None
    window_start: str | None = None
    cutoff: str | None = None
    pages: int = 0
    up_to_date: int = 0
    checkpoint: str | None = None
    checkpoint_advanced: bool = False
    issues: list[IssueRow] = field(default_factory=list)
    error: str | None = None

    def count(self, result: str) -> int:
        return sum(1 for i in self.issues if i.result == result)

    @property
    def enqueued(self) -> int:
        return self.count(ENQUEUED)

    @property
    def ok(self) -> bool:
        return self.error is None and not any(i.result == UNMAPPABLE for i in self.issues)

    def to_dict(self) -> dict[str, Any]:
        counts = {
            name: self.count(result)
            for name, result in (
                ("enqueued", ENQUEUED),
                ("would_enqueue", WOULD_ENQUEUE),
                ("already_enqueued", ALREADY_ENQUEUED),
                ("settling", SETTLING),
                ("deferred", DEFERRED),
                ("unmappable", UNMAPPABLE),
            )
        }
        doc = {k: v for k, v in asdict(self).items() if k != "error"}
        doc.update({"ok": self.ok, **counts})
        if self.error is not None:
            doc["error"] = self.error
        return doc


@dataclass
class JiraReconciler:
    """One sweep (collaborators injected; see ``build_reconciler``)."""

    client: JiraClient
    guard: VersionReader
    markers: MarkerStore
    checkpoints: CheckpointStore
    queue: DeliveryQueueLike
    projects: Callable[[], list[str]]
    settings: ReconcileSettings
    budget: TimeBudget = field(default_factory=TimeBudget)
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def run(self, *, dry_run: bool = False, since: dt.datetime | None = None) -> ReconcileReport:
        """Sweep once. ``dry_run``: search and compare, queue nothing, write nothing. ``since``: start the
        window there (a window starting after the checkpoint leaves the checkpoint alone)."""
        from botocore.exceptions import BotoCoreError, ClientError

        report = ReconcileReport(dry_run=dry_run)
        now = self.clock()
        cutoff = now - self.settings.settle
        report.cutoff = cutoff.isoformat()
        try:
            report.projects = self.projects()
        except ReconcileSettingsError as exc:
            report.error = str(exc)
            return report
        if not report.projects:
            return report  # no Jira route: nothing to reconcile
        name = self.settings.checkpoint_name
        try:
            checkpoint = self.checkpoints.get(name)
        except (ClientError, BotoCoreError) as exc:
            report.error = f"state table: {type(exc).__name__}"
            return report
        report.checkpoint = checkpoint.isoformat() if checkpoint else None
        if since is not None:
            start = since
        elif checkpoint is not None:
            start = checkpoint - self.settings.overlap
        else:
            start = now - self.settings.initial_lookback
        report.window_start = start.isoformat()
        report.jql = build_jql(report.projects, window_minutes(start, now))
        held: list[dt.datetime] = []
        try:
            fields = [*BASE_FIELDS, *self._flag_fields(), *self.settings.extra_fields]
            for page in self.client.search(report.jql, fields):
                report.pages += 1
                for issue in page:
                    row, version = self._reconcile(issue, start, cutoff, dry_run=dry_run)
                    if row is None:
                        continue
                    if row.result == UP_TO_DATE:
                        report.up_to_date += 1  # the common case: counted, not listed
                        continue
                    report.issues.append(row)
                    if row.result == DEFERRED and version is not None:
                        held.append(version)
        except JiraApiError as exc:
            report.error = f"search: {exc}"
            return report
        except (ClientError, BotoCoreError) as exc:
            report.error = f"state table: {type(exc).__name__}"
            return report
        if dry_run or (since is not None and checkpoint is not None and since > checkpoint):
            return report
        position = min(held) if held else cutoff
        try:
            report.checkpoint_advanced = self.checkpoints.advance(name, position)
        except (ClientError, BotoCoreError) as exc:
            report.error = f"checkpoint not saved: {type(exc).__name__}"
            return report
        if report.checkpoint_advanced:
            report.checkpoint = position.isoformat()
        return report

    def _flag_fields(self) -> list[str]:
        # Best effort: without the Flagged field a reconciled report can miss the "flagged → red" rule, but
        # it is still the issue's newest state, so a failure here must not stop the sweep.
        try:
            return self.client.field_ids("Flagged")
        except JiraApiError:
            return []

    def _reconcile(
        self, issue: Mapping[str, Any], start: dt.datetime, cutoff: dt.datetime, *, dry_run: bool
    ) -> tuple[IssueRow | None, dt.datetime | None]:
        from kantata_bridge.receiver.errors import EnqueueError
        from kantata_bridge.tracker_event import IgnoredEventError, UnmappablePayloadError
        from kantata_bridge.worker.ordering import version_number

        key = str(issue.get("key") or "?")
        raw_fields = issue.get("fields")
        updated = str(raw_fields.get("updated") or "") if isinstance(raw_fields, Mapping) else ""
        try:
            synthetic = synthesize(issue, _iso_now(self.clock()))
        except (UnmappablePayloadError, IgnoredEventError) as exc:
            return IssueRow(key, updated, UNMAPPABLE, str(exc)), None
        version = synthetic.version
        delivery_id = synthetic.envelope.delivery_id
        if version < start:
            return None, None  # JQL's minute precision reaches a little before the window
        if version > cutoff:
            return IssueRow(key, updated, SETTLING, "changed in the last minutes: left to its webhook"), None
        current = self.guard.current(synthetic.object_key)
        if current is not None and current[0] >= version_number(version):
            return IssueRow(key, updated, UP_TO_DATE), None
        if self.budget.exhausted():
            return IssueRow(key, updated, DEFERRED, "time budget of this run used up", delivery_id), version
        held = f"the bridge holds {_version_text(current[0])}" if current else "the bridge has no version"
        if dry_run:
            return IssueRow(key, updated, WOULD_ENQUEUE, held, delivery_id), version
        dedupe = synthetic.envelope.dedupe_key
        if not self.markers.claim(dedupe, object_key=synthetic.object_key):
            return IssueRow(key, updated, ALREADY_ENQUEUED, "queued by an earlier run", delivery_id), version
        try:
            self.queue.send(synthetic.envelope)
        except EnqueueError as exc:
            self.markers.release(dedupe)
            return IssueRow(key, updated, DEFERRED, str(exc), delivery_id), version
        return IssueRow(key, updated, ENQUEUED, held, delivery_id), version


def _iso_now(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _version_text(number: int) -> str:
    from kantata_bridge.worker.ordering import version_text

    return version_text(number)


# ---------------------------------------------------------------------- production wiring


@functools.cache
def dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb")


class RoutingProjects:
    """The routed Jira projects, read from the routing document (bundled file or SSM, cached 5 minutes)."""

    def __init__(self, settings: ReconcileSettings) -> None:
        self.settings = settings

    def __call__(self) -> list[str]:
        from kantata_bridge.mapping.config import ConfigError, parse_config

        s = self.settings
        if s.routing_config_file:
            try:
                with open(s.routing_config_file, encoding="utf-8") as stream:
                    text = stream.read()
            except OSError as exc:
                raise ReconcileSettingsError(
                    f"{s.routing_config_file}: cannot read ({exc.strerror})"
                ) from None
            except UnicodeDecodeError as exc:
                raise ReconcileSettingsError(
                    f"{s.routing_config_file}: not UTF-8 text (byte {exc.start})"
                ) from None
            source = s.routing_config_file
        else:
            from aws_lambda_powertools.utilities import parameters

            try:
                text = str(parameters.get_parameter(str(s.routing_config_parameter), max_age=300))
            except parameters.GetParameterError:
                raise ReconcileSettingsError(
                    f"ssm:{s.routing_config_parameter}: cannot read the routing document"
                ) from None
            source = f"ssm:{s.routing_config_parameter}"
        try:
            return jira_projects(parse_config(text, source))
        except ConfigError as exc:
            raise ReconcileSettingsError(f"routing document invalid: {exc}") from None


def read_credentials(secret_name: str) -> tuple[str, str]:
    """(email, API token) from the secret's JSON ``{"email": "...", "api_token": "..."}``.

    Raises ReconcileSettingsError (never with the value) when unreadable or incomplete.
    """
    from aws_lambda_powertools.utilities import parameters

    try:
        raw = parameters.get_secret(secret_name, max_age=300)
    except parameters.GetParameterError:
        raise ReconcileSettingsError(f"secret {secret_name!r} could not be read") from None
    try:
        doc = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except ValueError:
        raise ReconcileSettingsError(f'secret {secret_name!r} is not JSON {{"email", "api_token"}}') from None
    email = doc.get("email") if isinstance(doc, dict) else None
    token = doc.get("api_token") if isinstance(doc, dict) else None
    if not isinstance(email, str) or not email.strip() or not isinstance(token, str) or not token.strip():
        raise ReconcileSettingsError(f"secret {secret_name!r} needs non-empty 'email' and 'api_token'")
    return email.strip(), token.strip()


def build_reconciler(
    settings: ReconcileSettings,
    email: str,
    api_token: str,
    *,
    dynamodb: Any = None,
    queue: DeliveryQueueLike | None = None,
    budget: TimeBudget | None = None,
    client: JiraClient | None = None,
    projects: Callable[[], list[str]] | None = None,
) -> JiraReconciler:
    """A JiraReconciler wired to the state table, the events queue and Jira (parts may be passed in)."""
    from kantata_bridge.receiver.queue import SqsDeliveryQueue
    from kantata_bridge.worker.ordering import OrderingGuard

    ddb = dynamodb if dynamodb is not None else dynamodb_client()
    return JiraReconciler(
        client=client if client is not None else JiraClient(settings.base_url, email, api_token),
        guard=OrderingGuard(settings.state_table, ddb),
        markers=MarkerStore(settings.state_table, ddb, prefix=MARKER_PREFIX, ttl_seconds=MARKER_TTL_SECONDS),
        checkpoints=CheckpointStore(settings.state_table, ddb),
        queue=queue if queue is not None else SqsDeliveryQueue(settings.queue_url),
        projects=projects if projects is not None else RoutingProjects(settings),
        settings=settings,
        budget=budget or TimeBudget(),
    )


def run_job(event: Any, context: Any = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Lambda's work: settings, credentials, one sweep. Returns the JSON summary; a setting or secret
    that cannot be used gives ``ok`` false with ``error``, never an exception."""
    try:
        settings = ReconcileSettings.from_env(environ)
        dry_run, since = parse_run_request(event)
        email, token = read_credentials(str(settings.credentials_secret_name))
    except (ReconcileSettingsError, RunRequestError) as exc:
        return {"ok": False, "error": "settings_invalid", "message": str(exc), "enqueued": 0}
    reconciler = build_reconciler(settings, email, token, budget=TimeBudget.from_context(context))
    try:
        return reconciler.run(dry_run=dry_run, since=since).to_dict()
    finally:
        reconciler.client.close()
