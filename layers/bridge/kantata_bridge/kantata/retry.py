"""Backoff for Kantata calls that are safe to repeat: exponential with full jitter, bounded twice.

Kantata documents 429 (with no rate-limit headers) and 503, and asks only for "a retry after a short delay"
(CONTRACT §5). The policy here retries errors whose ``retryable`` flag is set (429, 503 and other 5xx,
connection errors and timeouts), sleeping ``random() * min(max_delay, base_delay * 2**(attempt-1))``
("full jitter", so many Lambdas throttled together do not retry in lock-step), or the server's ``Retry-After``
when it sends one. It stops at ``max_attempts`` sends or when the next sleep would end past ``total_budget``
seconds since the first send, whichever comes first, and then raises the last error unchanged (its
``attempts`` says how many sends were made), so the caller (SQS redelivery) takes over.

Why a hand-written loop and not urllib3's ``Retry``: urllib3 decides by HTTP method only (it cannot repeat
``POST /external_references/create_or_update`` while never repeating other POSTs), has no bound on total
time, cannot inject the sleep/random/clock that tests pin, and when it gives up raises ``MaxRetryError`` or
returns the last response instead of our typed error. The loop below is the small part none of it covers.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kantata_bridge.kantata.errors import KantataError, KantataValueError


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to repeat a call that is safe to repeat.

    ``max_attempts`` counts sends (1 = never retry). ``total_budget`` bounds the seconds from the first send to
    the end of the last sleep; one send can still take up to the client's connect + read timeout on top.
    ``retry_after_cap``: a server ``Retry-After`` longer than this is not slept through in-process; the error is
    raised (with its ``retry_after``) so the caller can come back later. ``sleep``, ``random`` (in [0, 1)) and
    ``clock`` (monotonic seconds) are injectable so tests pin them.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    total_budget: float = 20.0
    retry_after_cap: float = 10.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    random: Callable[[], float] = field(default=_random.random, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise KantataValueError(f"max_attempts must be at least 1; got {self.max_attempts!r}")
        for name in ("base_delay", "max_delay", "total_budget", "retry_after_cap"):
            value = getattr(self, name)
            if value < 0:
                raise KantataValueError(f"{name} must not be negative; got {value!r}")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that sends once and never repeats."""
        return cls(max_attempts=1)

    def backoff(self, attempt: int) -> float:
        """The full-jitter sleep after send number ``attempt`` (1-based) failed."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(max(0, attempt - 1), 60))
        return float(self.random()) * ceiling

    def delay_before_retry(self, attempt: int, error: KantataError, elapsed: float) -> float | None:
        """Seconds to sleep before the next send, or None to give up and raise ``error``.

        Gives up when the error is not retryable, ``attempt`` sends have been made already, the server's
        ``Retry-After`` exceeds ``retry_after_cap``, or the sleep would end past ``total_budget``.
        """
        if not error.retryable or attempt >= self.max_attempts:
            return None
        if error.retry_after is not None:
            if error.retry_after > self.retry_after_cap:
                return None
            delay = error.retry_after
        else:
            delay = self.backoff(attempt)
        if elapsed + delay > self.total_budget:
            return None
        return delay


def call_with_retry[T](
    operation: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[KantataError, int, float], None] | None = None,
) -> T:
    """Run ``operation`` and repeat it on retryable KantataErrors as ``policy`` allows.

    Only for operations that are safe to repeat. Raises the last KantataError (with ``attempts`` set) when
    the policy gives up; any other exception propagates at once. ``on_retry(error, attempt, delay)`` is called
    before each sleep (for logging).
    """
    start = policy.clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return operation()
        except KantataError as exc:
            exc.attempts = attempt
            delay = policy.delay_before_retry(attempt, exc, policy.clock() - start)
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            policy.sleep(delay)
