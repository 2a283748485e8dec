"""GitHub delivery recovery: redeliver the failed deliveries the bridge never saw, once each.

GitHub never retries a failed webhook delivery; it keeps each hook's deliveries for 3 days (GHES: 7) and
redelivers one on request. Following GitHub's "Handling failed webhook deliveries", a run does, per configured
hook (repository or organization):

1. list the hook's deliveries since its checkpoint (minus an overlap), newest first, cursor by cursor;
2. group the attempts by guid (the ``X-GitHub-Delivery`` of the event); a guid with an OK attempt was
   delivered. For the others, the latest attempt is the candidate, when its event is one the bridge handles;
3. skip a candidate the bridge has a record of: an outcome under ``github:<hook id>:<guid>`` (posted, skipped,
   parked or failed; a failed one is still in the queue or the DLQ);
4. claim the candidate in the state table (one conditional write), then ``POST …/deliveries/{id}/attempts``:
   GitHub sends the original body, headers and signature to the receiver, which queues it as usual;
5. advance the checkpoint to the newest delivery seen, or to the oldest one left for later.

Never twice: the claim (``pk=REDELIVERY#github:<hook id>:<guid>``, ``sk=MARKER``) records the attempt id that
was redelivered; a candidate is redelivered only when its latest failed attempt is newer than that one (the
redelivery itself failed: the receiver was still down) and at most ``max_redeliveries`` times per guid. A
redelivery GitHub refused (4xx/5xx answer) releases the claim for a later run; one whose answer was lost
(a timeout) stays claimed as ``uncertain`` and is retried only when, ``uncertain_after`` later, the hook still
shows no newer attempt of the guid (GitHub did not take it).

"No record" and deliveries in flight: the receiver keeps no record of receipt (it must stay minimal), so a
delivery that reached the queue but was not yet attempted by the worker has no outcome. GitHub marks a delivery
failed only when the receiver did not answer 2xx in time, so that is rare (a receiver slower than GitHub's
10 s); if it happens the redelivered copy has the same dedupe key and the worker's idempotency records it as a
duplicate. Nothing is posted twice.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from kantata_bridge.recovery.github_api import (
    DEFAULT_API_URL,
    GitHubApiError,
    GitHubClient,
    GitHubRateLimitedError,
    HookDelivery,
    HookRef,
)
from kantata_bridge.recovery.state import (
    CheckpointStore,
    RunRequestError,
    TimeBudget,
    is_condition_failure,
    parse_run_request,
)

TRACKER: Final = "github"
MARKER_PREFIX: Final = "REDELIVERY#github:"
# GitHub keeps deliveries for 3 days (GHES 7); markers outlive that so a listed delivery always finds its claim.
MARKER_TTL_SECONDS: Final = 8 * 86400
DEFAULT_OVERLAP_MINUTES: Final = 10
DEFAULT_LOOKBACK_HOURS: Final = 72
DEFAULT_MAX_REDELIVERIES: Final = 3
DEFAULT_EVENTS: Final = frozenset({"issues", "pull_request"})
UNCERTAIN_AFTER: Final = dt.timedelta(minutes=10)

# What became of one candidate (the ``result`` of a Candidate row).
REDELIVERED: Final = "redelivered"
WOULD_REDELIVER: Final = "would redeliver"
RECORDED: Final = "recorded"
ALREADY_REDELIVERED: Final = "already redelivered"
GAVE_UP: Final = "gave up"
DEFERRED: Final = "deferred"
REFUSED: Final = "refused"
UNCERTAIN: Final = "uncertain"


class RecoverySettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


# ---------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class RecoverySettings:
    """The recovery's settings (environment variables in docs/recovery.md)."""

    state_table: str
    hooks: tuple[HookRef, ...]
    token_secret_name: str | None = None
    api_url: str = DEFAULT_API_URL
    overlap: dt.timedelta = dt.timedelta(minutes=DEFAULT_OVERLAP_MINUTES)
    lookback: dt.timedelta = dt.timedelta(hours=DEFAULT_LOOKBACK_HOURS)
    max_redeliveries: int = DEFAULT_MAX_REDELIVERIES
    events: frozenset[str] | None = DEFAULT_EVENTS  # None: every event type

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RecoverySettings:
        """Read the settings. Raises RecoverySettingsError naming the variable that is missing or wrong."""
        env = os.environ if environ is None else environ
        state_table = env.get("STATE_TABLE", "").strip()
        if not state_table:
            raise RecoverySettingsError("STATE_TABLE is required")
        secret = env.get("GITHUB_TOKEN_SECRET_NAME", "").strip()
        if not secret:
            raise RecoverySettingsError("GITHUB_TOKEN_SECRET_NAME is required")
        return cls(
            state_table=state_table,
            hooks=parse_hooks(env.get("GITHUB_RECOVERY_HOOKS", ""), "GITHUB_RECOVERY_HOOKS"),
            token_secret_name=secret,
            api_url=env.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL,
            overlap=dt.timedelta(
                minutes=_whole(env, "GITHUB_RECOVERY_OVERLAP_MINUTES", DEFAULT_OVERLAP_MINUTES)
            ),
            lookback=dt.timedelta(
                hours=_whole(env, "GITHUB_RECOVERY_LOOKBACK_HOURS", DEFAULT_LOOKBACK_HOURS, 1)
            ),
            max_redeliveries=_whole(env, "GITHUB_RECOVERY_MAX_REDELIVERIES", DEFAULT_MAX_REDELIVERIES, 1),
            events=parse_events(env.get("GITHUB_RECOVERY_EVENTS", "")),
        )


def parse_hooks(text: str, name: str = "hooks") -> tuple[HookRef, ...]:
    """Comma- or whitespace-separated hooks (``repos/<owner>/<repo>/hooks/<id>``, ``orgs/<org>/hooks/<id>``).

    Raises RecoverySettingsError when there is none or one is malformed (the message names ``name``).
    """
    entries = [e for e in text.replace(",", " ").split() if e]
    if not entries:
        raise RecoverySettingsError(
            f"{name} names no hook (repos/<owner>/<repo>/hooks/<id> or orgs/<org>/hooks/<id>)"
        )
    hooks: list[HookRef] = []
    for entry in entries:
        try:
            hook = HookRef.parse(entry)
        except ValueError as exc:
            raise RecoverySettingsError(f"{name}: {exc}") from None
        if hook not in hooks:
            hooks.append(hook)
    return tuple(hooks)


def parse_events(text: str) -> frozenset[str] | None:
    """Event types to recover: comma list, ``*`` for all, empty for the receiver's default (issues,
    pull_request)."""
    names = {e.strip().lower() for e in text.split(",") if e.strip()}
    if not names:
        return DEFAULT_EVENTS
    return None if "*" in names else frozenset(names)


def _whole(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise RecoverySettingsError(f"{name} must be a whole number >= {minimum}; got {raw!r}")
    return int(raw)


# ---------------------------------------------------------------------- selection (pure)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A guid with no OK attempt: its latest attempt, and how many redeliveries of it the list shows."""

    latest: HookDelivery
    attempts: int
    redeliveries: int


def select_candidates(
    deliveries: Iterable[HookDelivery], events: frozenset[str] | None
) -> tuple[list[Candidate], int]:
    """The failed guids worth recovering, oldest first, and how many guids were delivered after all.

    A guid with any OK attempt is delivered. Of the rest, the latest attempt (by time, then id) is the
    candidate; guids whose event the bridge does not handle (``events``; None: all) are left out.
    """
    by_guid: dict[str, list[HookDelivery]] = {}
    for delivery in deliveries:
        by_guid.setdefault(delivery.guid, []).append(delivery)
    candidates: list[Candidate] = []
    delivered = 0
    for attempts in by_guid.values():
        if any(a.ok for a in attempts):
            delivered += 1
            continue
        latest = max(attempts, key=lambda a: (a.delivered_at, a.id))
        if events is not None and latest.event.lower() not in events:
            continue
        candidates.append(Candidate(latest, len(attempts), sum(1 for a in attempts if a.redelivery)))
    candidates.sort(key=lambda c: (c.latest.delivered_at, c.latest.id))
    return candidates, delivered


def dedupe_key_for(hook: HookRef, guid: str) -> str:
    """The key the worker records a delivery of ``hook`` under (see envelope.dedupe_key)."""
    from kantata_bridge.envelope import dedupe_key

    return dedupe_key(TRACKER, str(hook.hook_id), guid)


# ---------------------------------------------------------------------- the ledger (state table)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    last_delivery: int
    redeliveries: int
    state: str
    at: dt.datetime


class RedeliveryLedger:
    """Claims on redeliveries, one item per (hook, guid); see the module docstring."""

    def __init__(self, table_name: str, client: Any, *, ttl_seconds: int = MARKER_TTL_SECONDS) -> None:
        self.table_name = table_name
        self.client = client
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def _key(hook: HookRef, guid: str) -> dict[str, Any]:
        return {"pk": {"S": f"{MARKER_PREFIX}{hook.hook_id}:{guid}"}, "sk": {"S": "MARKER"}}

    def get(self, hook: HookRef, guid: str) -> LedgerEntry | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=self._key(hook, guid), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return LedgerEntry(
            last_delivery=int(item["last_delivery"]["N"]),
            redeliveries=int(item.get("redeliveries", {}).get("N", "0")),
            state=item.get("state", {}).get("S", ""),
            at=dt.datetime.fromtimestamp(int(item.get("at", {}).get("N", "0")), dt.UTC),
        )

    def claim(
        self, hook: HookRef, guid: str, delivery_id: int, *, max_redeliveries: int, now: dt.datetime
    ) -> bool:
        """Claim the redelivery of attempt ``delivery_id``; False when another run did or does it, or the
        guid has had ``max_redeliveries`` already."""
        import time

        from botocore.exceptions import ClientError

        stale = int((now - UNCERTAIN_AFTER).timestamp())
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=self._key(hook, guid),
                UpdateExpression="SET #last = :id, #s = :claimed, #at = :now, expires_at = :exp, hook = :hook "
                "ADD #n :one",
                ConditionExpression="attribute_not_exists(pk) OR (#n < :max AND (#last < :id OR "
                "(#last = :id AND (#s = :released OR (#s = :uncertain AND #at < :stale)))))",
                ExpressionAttributeNames={
                    "#last": "last_delivery",
                    "#s": "state",
                    "#at": "at",
                    "#n": "redeliveries",
                },
                ExpressionAttributeValues={
                    ":id": {"N": str(delivery_id)},
                    ":claimed": {"S": "claimed"},
                    ":released": {"S": "released"},
                    ":uncertain": {"S": "uncertain"},
                    ":now": {"N": str(int(now.timestamp()))},
                    ":stale": {"N": str(stale)},
                    ":exp": {"N": str(int(time.time()) + self.ttl_seconds)},
                    ":hook": {"S": hook.path},
                    ":one": {"N": "1"},
                    ":max": {"N": str(max_redeliveries)},
                },
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def _set_state(self, hook: HookRef, guid: str, state: str, *, undo_count: bool = False) -> None:
        expression = "SET #s = :s" + (" ADD #n :minus" if undo_count else "")
        names = {"#s": "state", **({"#n": "redeliveries"} if undo_count else {})}
        values: dict[str, Any] = {":s": {"S": state}}
        if undo_count:
            values[":minus"] = {"N": "-1"}
        self.client.update_item(
            TableName=self.table_name,
            Key=self._key(hook, guid),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def sent(self, hook: HookRef, guid: str) -> None:
        self._set_state(hook, guid, "sent")

    def release(self, hook: HookRef, guid: str) -> None:
        """GitHub refused the redelivery: it did not happen, a later run may claim it again."""
        self._set_state(hook, guid, "released", undo_count=True)

    def uncertain(self, hook: HookRef, guid: str) -> None:
        self._set_state(hook, guid, "uncertain")


# ---------------------------------------------------------------------- the run


@dataclass(slots=True)
class CandidateRow:
    """One failed delivery the run looked at, and what it did (``result``)."""

    hook: str
    guid: str
    delivery_id: int
    event: str
    action: str | None
    delivered_at: str
    status: str
    result: str
    detail: str = ""


@dataclass(slots=True)
class HookReport:
    hook: str
    listed: int = 0
    pages: int = 0
    delivered_guids: int = 0
    window_start: str | None = None
    checkpoint: str | None = None
    checkpoint_advanced: bool = False
    error: str | None = None


@dataclass(slots=True)
class RecoveryReport:
    """What one run did; ``to_dict`` is the JSON summary (Lambda return value, ``--json``)."""

    dry_run: bool
    hooks: list[HookReport] = field(default_factory=list)
    candidates: list[CandidateRow] = field(default_factory=list)
    error: str | None = None

    def count(self, result: str) -> int:
        return sum(1 for c in self.candidates if c.result == result)

    @property
    def redelivered(self) -> int:
        return self.count(REDELIVERED)

    @property
    def ok(self) -> bool:
        """True when every hook was read and nothing was refused or left uncertain (deferred is fine)."""
        if self.error is not None or any(h.error for h in self.hooks):
            return False
        return not any(c.result in (REFUSED, UNCERTAIN) for c in self.candidates)

    def to_dict(self) -> dict[str, Any]:
        counts = {
            name: self.count(result)
            for name, result in (
                ("redelivered", REDELIVERED),
                ("would_redeliver", WOULD_REDELIVER),
                ("recorded", RECORDED),
                ("already_redelivered", ALREADY_REDELIVERED),
                ("gave_up", GAVE_UP),
                ("deferred", DEFERRED),
                ("refused", REFUSED),
                ("uncertain", UNCERTAIN),
            )
        }
        doc: dict[str, Any] = {
            "ok": self.ok,
            "dry_run": self.dry_run,
            **counts,
            "hooks": [asdict(h) for h in self.hooks],
            "candidates": [asdict(c) for c in self.candidates],
        }
        if self.error is not None:
            doc["error"] = self.error
        return doc


class OutcomeReader:
    """What recovery needs from the worker's outcome store: is there any outcome for a dedupe key?"""

    def __init__(self, store: Any) -> None:
        self.store = store

    def has_record(self, dedupe_key: str) -> bool:
        return self.store.get(dedupe_key) is not None


@dataclass
class GitHubRecovery:
    """One recovery run over ``settings.hooks`` (collaborators injected; see ``build_recovery``)."""

    client: GitHubClient
    outcomes: OutcomeReader
    ledger: RedeliveryLedger
    checkpoints: CheckpointStore
    settings: RecoverySettings
    budget: TimeBudget = field(default_factory=TimeBudget)
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))

    def run(self, *, dry_run: bool = False, since: dt.datetime | None = None) -> RecoveryReport:
        """Recover every hook. ``dry_run``: list and decide, change nothing (no claim, no redelivery, no
        checkpoint). ``since``: start the window there instead of at the checkpoint (a window starting after
        the checkpoint leaves the checkpoint alone, so nothing in between is skipped for good)."""
        report = RecoveryReport(dry_run=dry_run)
        for hook in self.settings.hooks:
            self._recover_hook(hook, report, dry_run=dry_run, since=since)
        return report

    def _recover_hook(
        self, hook: HookRef, report: RecoveryReport, *, dry_run: bool, since: dt.datetime | None
    ) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        hook_report = HookReport(hook=hook.path)
        report.hooks.append(hook_report)
        started = self.clock()
        name = f"{TRACKER}:{hook.path}"
        rows: list[CandidateRow] = []
        try:
            checkpoint = self.checkpoints.get(name)
            if since is not None:
                start = since
            elif checkpoint is not None:
                start = checkpoint - self.settings.overlap
            else:
                start = started - self.settings.lookback
            hook_report.window_start = start.isoformat()
            deliveries = self._list(hook, start, hook_report)
            candidates, hook_report.delivered_guids = select_candidates(deliveries, self.settings.events)
            for candidate in candidates:
                rows.append(self._handle(hook, candidate, dry_run=dry_run))
        except GitHubApiError as exc:
            hook_report.error = str(exc)
            return
        except (ClientError, BotoCoreError) as exc:
            hook_report.error = f"state table: {type(exc).__name__}: {exc}"
            return
        finally:
            # Rows handled before a failure still count (their claims are written): report them.
            report.candidates.extend(rows)
        # A deferred candidate holds the checkpoint back, so the next run lists it again.
        held = [
            c.latest.delivered_at for c, row in zip(candidates, rows, strict=True) if row.result == DEFERRED
        ]
        if held:
            position = min(held)
        elif deliveries:
            position = max(d.delivered_at for d in deliveries)
        else:
            position = started
        hook_report.checkpoint = checkpoint.isoformat() if checkpoint else None
        if dry_run or (since is not None and checkpoint is not None and since > checkpoint):
            return
        try:
            hook_report.checkpoint_advanced = self.checkpoints.advance(name, position)
        except (ClientError, BotoCoreError) as exc:
            hook_report.error = f"checkpoint not saved: {type(exc).__name__}"
            return
        if hook_report.checkpoint_advanced:
            hook_report.checkpoint = position.isoformat()

    def _list(self, hook: HookRef, start: dt.datetime, hook_report: HookReport) -> list[HookDelivery]:
        seen: list[HookDelivery] = []
        for page in self.client.list_deliveries(hook):
            hook_report.pages += 1
            seen.extend(d for d in page if d.delivered_at >= start)
            # Newest first: once a page reaches past the window's start, older pages hold nothing for us.
            if not page or min(d.delivered_at for d in page) < start:
                break
        hook_report.listed = len(seen)
        return seen

    def _handle(self, hook: HookRef, candidate: Candidate, *, dry_run: bool) -> CandidateRow:
        latest = candidate.latest
        row = CandidateRow(
            hook=hook.path,
            guid=latest.guid,
            delivery_id=latest.id,
            event=latest.event,
            action=latest.action,
            delivered_at=latest.delivered_at.isoformat(),
            status=f"{latest.status_code} {latest.status}".strip(),
            result="",
        )
        if self.budget.exhausted():
            row.result, row.detail = DEFERRED, "time budget of this run used up"
            return row
        if self.outcomes.has_record(dedupe_key_for(hook, latest.guid)):
            row.result, row.detail = RECORDED, "the bridge has an outcome for this delivery"
            return row
        if dry_run:
            entry = self.ledger.get(hook, latest.guid)
            if entry is not None and entry.last_delivery >= latest.id and entry.state != "released":
                row.result, row.detail = ALREADY_REDELIVERED, f"claimed ({entry.state})"
            elif entry is not None and entry.redeliveries >= self.settings.max_redeliveries:
                row.result = GAVE_UP
            else:
                row.result = WOULD_REDELIVER
            return row
        if not self.ledger.claim(
            hook, latest.guid, latest.id, max_redeliveries=self.settings.max_redeliveries, now=self.clock()
        ):
            entry = self.ledger.get(hook, latest.guid)
            if entry is not None and entry.last_delivery < latest.id:
                row.result = GAVE_UP
                row.detail = f"redelivered {entry.redeliveries} times; redeliver it by hand after a fix"
            else:
                row.result = ALREADY_REDELIVERED
                row.detail = f"claimed ({entry.state})" if entry else "claimed by another run"
            return row
        try:
            self.client.redeliver(hook, latest.id)
        except GitHubRateLimitedError as exc:
            self.ledger.release(hook, latest.guid)
            row.result, row.detail = DEFERRED, str(exc)
            return row
        except GitHubApiError as exc:
            if exc.ambiguous:
                self.ledger.uncertain(hook, latest.guid)
                row.result, row.detail = UNCERTAIN, str(exc)
            else:
                self.ledger.release(hook, latest.guid)
                row.result = DEFERRED if exc.retryable else REFUSED
                row.detail = str(exc)
            return row
        self.ledger.sent(hook, latest.guid)
        row.result = REDELIVERED
        return row


# ---------------------------------------------------------------------- production wiring


@functools.cache
def dynamodb_client() -> Any:
    import boto3

    return boto3.client("dynamodb")


def build_recovery(
    settings: RecoverySettings,
    token: str,
    *,
    dynamodb: Any = None,
    budget: TimeBudget | None = None,
    client: GitHubClient | None = None,
) -> GitHubRecovery:
    """A GitHubRecovery wired to the state table and GitHub (clients may be passed in by tests and tools)."""
    from kantata_bridge.worker.outcomes import OutcomeStore

    ddb = dynamodb if dynamodb is not None else dynamodb_client()
    return GitHubRecovery(
        client=client if client is not None else GitHubClient(token, settings.api_url),
        outcomes=OutcomeReader(OutcomeStore(settings.state_table, ddb)),
        ledger=RedeliveryLedger(settings.state_table, ddb),
        checkpoints=CheckpointStore(settings.state_table, ddb),
        settings=settings,
        budget=budget or TimeBudget(),
    )


def read_token(secret_name: str) -> str:
    """The PAT from Secrets Manager (Powertools, cached 5 min). Raises RecoverySettingsError without the value."""
    from aws_lambda_powertools.utilities import parameters

    from kantata_bridge.kantata.secret import fetch_token

    try:
        token = fetch_token(secret_name, max_age=300)
    except parameters.GetParameterError:
        raise RecoverySettingsError(f"secret {secret_name!r} could not be read") from None
    if not token:
        raise RecoverySettingsError(f"secret {secret_name!r} is empty")
    return token


def run_job(event: Any, context: Any = None, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The Lambda's work: settings, token, one run. Returns the JSON summary; never raises for a setting or
    an unreadable secret (``ok`` false with ``error`` instead)."""
    try:
        settings = RecoverySettings.from_env(environ)
        dry_run, since = parse_run_request(event)
        token = read_token(str(settings.token_secret_name))
    except (RecoverySettingsError, RunRequestError) as exc:
        return {"ok": False, "error": "settings_invalid", "message": str(exc), "redelivered": 0}
    recovery = build_recovery(settings, token, budget=TimeBudget.from_context(context))
    try:
        return recovery.run(dry_run=dry_run, since=since).to_dict()
    finally:
        recovery.client.close()


def summarize(rows: Sequence[CandidateRow]) -> str:
    """One line per result for logs and the CLI: ``redelivered 3, recorded 1``."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.result] = counts.get(row.result, 0) + 1
    return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "nothing to recover"
