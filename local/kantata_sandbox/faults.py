"""Fault injection for the Kantata sandbox: random 429/503, scripted statuses, latency and dropped connections.

A ``FaultPlan`` is consulted once per API request (never for the ``/_sandbox/`` control routes) and answers
with a ``FaultDecision``. Everything is guarded by one lock because the server handles requests on threads.
Randomness comes from a ``random.Random`` seeded on request, so a seeded run injects the same faults in the
same order (given the same request order).
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

# A scripted entry: an HTTP status to answer with, None to serve the request normally, "drop" to close the
# socket without answering (the request is not processed), or "drop_after" to process the request (state
# changes) and then close the socket without answering: the "lost response" case a retrying client must survive.
ScriptEntry = int | Literal["drop", "drop_after"] | None
DROP: Final = "drop"
DROP_AFTER: Final = "drop_after"

FaultAction = Literal["status", "drop", "drop_after"]


class FaultPlanError(ValueError):
    """A fault setting is out of range or malformed (e.g. a rate outside 0..1, a status outside 100..599)."""


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do with one request: wait ``latency`` seconds, then either serve it (``action`` None),
    answer ``status`` instead (``action`` "status"), or drop the connection ("drop"/"drop_after")."""

    latency: float = 0.0
    action: FaultAction | None = None
    status: int | None = None
    retry_after: str | None = None
    source: str | None = None  # "script", "rate" or "drop_rate", for the request log


@dataclass(slots=True)
class _Script:
    entries: deque[ScriptEntry]
    method: str | None
    path_prefix: str | None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.path_prefix is None or _api_path(path).startswith(_api_path(self.path_prefix))


def _api_path(path: str) -> str:
    """``/api/v1/status_reports.json`` and ``/status_reports`` both become ``/status_reports``."""
    if path.startswith("/api/v1"):
        path = path[len("/api/v1") :]
    if not path.startswith("/"):
        path = "/" + path
    return path.removesuffix(".json")


def _check_rate(name: str, rate: float) -> float:
    if not 0.0 <= float(rate) <= 1.0:
        raise FaultPlanError(f"{name} must be between 0 and 1; got {rate!r}")
    return float(rate)


def _check_status(status: object) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise FaultPlanError(f"a fault status must be an HTTP status 100..599; got {status!r}")
    return status


def _check_entry(entry: object) -> ScriptEntry:
    if entry is None or entry in (DROP, DROP_AFTER):
        return entry
    if isinstance(entry, str) and entry.lower() in ("none", "null", "ok", ""):
        return None
    if isinstance(entry, str) and entry.isdigit():
        return _check_status(int(entry))
    return _check_status(entry)


def parse_script(text: str) -> list[ScriptEntry]:
    """A script given as text, e.g. ``"503,503,none,drop"`` (the ``--script`` option): comma-separated HTTP
    statuses (100..599), ``none``/``ok``/``-`` for a normal answer, ``drop`` or ``drop_after``.
    Raises FaultPlanError naming the first entry that is none of these."""
    entries: list[ScriptEntry] = []
    for position, raw in enumerate(text.split(","), start=1):
        word = raw.strip().lower()
        if word in ("none", "null", "ok", "-", ""):
            entries.append(None)
        elif word == DROP:
            entries.append(DROP)
        elif word == DROP_AFTER:
            entries.append(DROP_AFTER)
        elif word.isdigit() and 100 <= int(word) <= 599:
            entries.append(int(word))
        else:
            raise FaultPlanError(
                f"script entry {position} is {raw.strip()!r}: use an HTTP status 100..599, none, drop or "
                "drop_after"
            )
    return entries


@dataclass(slots=True)
class FaultPlan:
    """The faults to inject. Build it up front (``FaultPlan(rate=0.3, seed=1)``) or change it at run time
    through the methods below; every method is thread-safe and takes effect on the next request."""

    rate: float = 0.0
    statuses: tuple[int, ...] = (429, 503)
    seed: int | None = None
    latency: float = 0.0
    jitter: float = 0.0  # up to this many seconds more latency, drawn per request
    drop_rate: float = 0.0
    retry_after: float | None = None  # seconds, sent as a Retry-After header on injected 429s
    _scripts: list[_Script] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)
    # Re-entrant: configure() holds it while it applies several settings through the methods below.
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        _check_rate("rate", self.rate)
        _check_rate("drop_rate", self.drop_rate)
        self.statuses = tuple(_check_status(s) for s in self.statuses)
        if self.latency < 0:
            raise FaultPlanError(f"latency must be >= 0 seconds; got {self.latency!r}")
        self._rng = random.Random(self.seed)

    def set_rate(self, rate: float, statuses: Iterable[int] = (429, 503), seed: int | None = None) -> None:
        """Answer a fraction ``rate`` (0..1) of requests with a status drawn from ``statuses``.
        A ``seed`` makes the draw repeatable. Raises FaultPlanError on a bad rate or status."""
        checked = tuple(_check_status(s) for s in statuses)
        if not checked:
            raise FaultPlanError("statuses must name at least one HTTP status")
        with self._lock:
            self.rate = _check_rate("rate", rate)
            self.statuses = checked
            if seed is not None:
                self.seed = seed
                self._rng = random.Random(seed)

    def script(
        self,
        statuses: Sequence[ScriptEntry],
        *,
        method: str | None = None,
        path_prefix: str | None = None,
    ) -> None:
        """Queue ``statuses`` to be consumed one per matching request, e.g. ``[503, 503, None]``: two 503s, then
        one normal answer. ``method`` and ``path_prefix`` (``/status_reports``, with or without ``/api/v1``)
        restrict which requests consume it. Scripts take precedence over the random rate and drops."""
        entries = deque(_check_entry(s) for s in statuses)
        with self._lock:
            self._scripts.append(
                _Script(entries=entries, method=method.upper() if method else None, path_prefix=path_prefix)
            )

    def set_latency(self, seconds: float, *, jitter: float = 0.0) -> None:
        """Delay every API answer by ``seconds`` (>= 0), plus a random extra of up to ``jitter`` seconds (so
        concurrent requests can finish out of the order they were sent)."""
        if seconds < 0 or jitter < 0:
            raise FaultPlanError(f"latency and jitter must be >= 0 seconds; got {seconds!r}, {jitter!r}")
        with self._lock:
            self.latency = float(seconds)
            self.jitter = float(jitter)

    def set_drop_rate(self, rate: float) -> None:
        """Close the connection without an answer for a fraction ``rate`` (0..1) of requests."""
        with self._lock:
            self.drop_rate = _check_rate("drop_rate", rate)

    def set_retry_after(self, seconds: float | None) -> None:
        """Send ``Retry-After: <seconds>`` on injected 429 answers (None: no header, as Kantata documents)."""
        if seconds is not None and seconds < 0:
            raise FaultPlanError(f"retry_after must be >= 0 seconds; got {seconds!r}")
        with self._lock:
            self.retry_after = seconds

    def clear(self) -> None:
        """Remove every fault: no rate, no scripts, no latency, no drops, no Retry-After."""
        with self._lock:
            self.rate = 0.0
            self.statuses = (429, 503)
            self.latency = 0.0
            self.jitter = 0.0
            self.drop_rate = 0.0
            self.retry_after = None
            self._scripts.clear()
            self._rng = random.Random(self.seed)

    @property
    def pending_script(self) -> list[dict[str, Any]]:
        """The scripted entries not consumed yet, per script."""
        with self._lock:
            return [
                {"statuses": list(s.entries), "method": s.method, "path_prefix": s.path_prefix}
                for s in self._scripts
                if s.entries
            ]

    def decide(self, method: str, path: str) -> FaultDecision:
        """Consume the fault (if any) for one request to ``path``."""
        with self._lock:
            latency = self.latency + (self._rng.uniform(0.0, self.jitter) if self.jitter else 0.0)
            for script in self._scripts:
                if script.entries and script.matches(method, path):
                    entry = script.entries.popleft()
                    if entry is None:
                        return FaultDecision(latency=latency, source="script")
                    if entry in (DROP, DROP_AFTER):
                        return FaultDecision(latency=latency, action=entry, source="script")
                    return self._status(latency, int(entry), "script")
            if self.drop_rate and self._rng.random() < self.drop_rate:
                return FaultDecision(latency=latency, action=DROP, source="drop_rate")
            if self.rate and self._rng.random() < self.rate:
                return self._status(latency, self._rng.choice(self.statuses), "rate")
            return FaultDecision(latency=latency)

    def _status(self, latency: float, status: int, source: str) -> FaultDecision:
        retry_after = None
        if status == 429 and self.retry_after is not None:
            retry_after = f"{self.retry_after:g}"
        return FaultDecision(
            latency=latency, action="status", status=status, retry_after=retry_after, source=source
        )

    def describe(self) -> dict[str, Any]:
        """The plan as JSON-ready data (``GET /_sandbox/faults``)."""
        scripts = self.pending_script
        with self._lock:
            return {
                "rate": self.rate,
                "statuses": list(self.statuses),
                "seed": self.seed,
                "latency_ms": round(self.latency * 1000, 3),
                "drop_rate": self.drop_rate,
                "retry_after": self.retry_after,
                "scripts": scripts,
            }

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Apply the JSON settings of ``POST /_sandbox/faults``: any of ``clear`` (bool, applied first),
        ``rate``, ``statuses``, ``seed``, ``latency_ms``, ``drop_rate``, ``retry_after``, and ``script``
        (``{"statuses": [503, null], "method": "POST", "path_prefix": "/status_reports"}``).
        Raises FaultPlanError naming the bad setting; nothing is applied in that case."""
        known = {"clear", "rate", "statuses", "seed", "latency_ms", "drop_rate", "retry_after", "script"}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise FaultPlanError(
                f"unknown fault settings: {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        clear = bool(settings.get("clear"))
        # With clear, unset settings fall back to "no fault"; without it they keep their current value.
        base = FaultPlan() if clear else self
        try:
            rate = _check_rate("rate", settings.get("rate", base.rate))
            statuses = tuple(_check_status(s) for s in settings.get("statuses", base.statuses))
            if not statuses:
                raise FaultPlanError("statuses must name at least one HTTP status")
            drop_rate = _check_rate("drop_rate", settings.get("drop_rate", base.drop_rate))
            latency_ms = float(settings.get("latency_ms", base.latency * 1000))
            retry_after = settings.get("retry_after", base.retry_after)
            seed = settings.get("seed")
            script = settings.get("script")
            if script is not None and (not isinstance(script, Mapping) or "statuses" not in script):
                raise FaultPlanError('script must be an object like {"statuses": [503, null]}')
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise FaultPlanError(f"seed must be an integer; got {seed!r}")
            if retry_after is not None:
                retry_after = float(retry_after)
            if latency_ms < 0:
                raise FaultPlanError(f"latency_ms must be >= 0; got {latency_ms!r}")
            if script is not None:
                entries = [_check_entry(s) for s in script["statuses"]]
                for name in ("method", "path_prefix"):
                    if not isinstance(script.get(name, ""), str | None):
                        raise FaultPlanError(f"script.{name} must be a string; got {script[name]!r}")
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FaultPlanError):
                raise
            raise FaultPlanError(f"bad fault setting: {exc}") from None
        with self._lock:  # all at once: a request served meanwhile sees the old plan or the new one
            if clear:
                self.clear()
            self.set_rate(rate, statuses, seed)
            self.set_drop_rate(drop_rate)
            self.set_latency(latency_ms / 1000)
            self.set_retry_after(retry_after)
            if script is not None:
                self.script(entries, method=script.get("method"), path_prefix=script.get("path_prefix"))
