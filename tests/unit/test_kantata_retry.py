"""The backoff policy for Kantata calls: full jitter, Retry-After, attempt and time bounds (no network)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kantata_bridge.kantata.errors import (
    AuthenticationError,
    KantataConnectionError,
    KantataError,
    KantataTimeoutError,
    KantataValueError,
    NotFoundError,
    RateLimitError,
    UnavailableError,
    ValidationError,
)
from kantata_bridge.kantata.retry import RetryPolicy, call_with_retry


class FakeTime:
    """A clock that only moves when something sleeps, so budgets are exact and tests never wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def policy(fake: FakeTime, *, random_value: float = 1.0, **kwargs: float) -> RetryPolicy:
    return RetryPolicy(sleep=fake.sleep, clock=fake.clock, random=lambda: random_value, **kwargs)  # type: ignore[arg-type]


class FailingThen:
    """An operation that raises the given errors in turn, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def unavailable() -> UnavailableError:
    return UnavailableError("Kantata GET /x returned 503", status=503)


@pytest.mark.parametrize(
    ("attempt", "random_value", "expected"),
    [
        (1, 1.0, 0.5),  # base_delay
        (2, 1.0, 1.0),
        (3, 1.0, 2.0),
        (5, 1.0, 8.0),  # 0.5 * 16 = 8 = max_delay
        (9, 1.0, 8.0),  # capped at max_delay
        (3, 0.0, 0.0),  # full jitter reaches down to zero
        (3, 0.25, 0.5),
        (10_000, 1.0, 8.0),  # a huge attempt number neither overflows nor escapes the cap
    ],
)
def test_backoff_is_full_jitter_of_an_exponential_capped_at_max_delay(
    attempt: int, random_value: float, expected: float
) -> None:
    # Given the default delays and a pinned random value
    retry = RetryPolicy(random=lambda: random_value)
    # When / Then
    assert retry.backoff(attempt) == pytest.approx(expected)


@given(attempt=st.integers(min_value=1, max_value=100), r=st.floats(min_value=0.0, max_value=0.999999))
def test_backoff_always_lies_between_zero_and_the_capped_exponential(attempt: int, r: float) -> None:
    retry = RetryPolicy(base_delay=0.5, max_delay=8.0, random=lambda: r)
    assert 0.0 <= retry.backoff(attempt) <= min(8.0, 0.5 * 2 ** (attempt - 1))


def test_retryable_error_is_retried_until_success_with_jittered_sleeps() -> None:
    # Given an operation that fails twice with 503 then succeeds
    fake = FakeTime()
    op = FailingThen(unavailable(), KantataConnectionError("dropped"))
    # When
    result = call_with_retry(op, policy(fake, random_value=0.5))
    # Then it was sent three times, sleeping half of 0.5 s then half of 1 s
    assert result == "ok"
    assert op.calls == 3
    assert fake.sleeps == pytest.approx([0.25, 0.5])


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("401", status=401),
        NotFoundError("404", status=404),
        ValidationError("422", status=422),
        KantataValueError("bad colour"),
        KantataError("something else"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_non_retryable_errors_are_raised_after_one_attempt(error: KantataError) -> None:
    fake = FakeTime()
    op = FailingThen(error)
    with pytest.raises(type(error)) as raised:
        call_with_retry(op, policy(fake))
    assert op.calls == 1
    assert raised.value.attempts == 1
    assert fake.sleeps == []


@pytest.mark.parametrize(
    "error_factory",
    [unavailable, lambda: RateLimitError("429", status=429), lambda: KantataTimeoutError("slow")],
    ids=["503", "429", "timeout"],
)
def test_retryable_errors_stop_at_max_attempts_and_raise_the_last_error(error_factory: object) -> None:
    # Given an operation that always fails retryably, and a generous budget
    fake = FakeTime()
    factory = error_factory  # a callable returning a fresh error
    assert callable(factory)
    op = FailingThen(*(factory() for _ in range(10)))
    # When
    with pytest.raises(KantataError) as raised:
        call_with_retry(op, policy(fake, max_attempts=4, total_budget=1000.0))
    # Then it was sent exactly max_attempts times, slept between sends only, and says so
    assert op.calls == 4
    assert len(fake.sleeps) == 3
    assert raised.value.attempts == 4
    assert raised.value.retryable is True


def test_retries_stop_before_a_sleep_would_cross_the_total_budget() -> None:
    # Given delays of 1, 2, 4 s (random pinned at 1) and a 5 s budget
    fake = FakeTime()
    op = FailingThen(*(unavailable() for _ in range(10)))
    # When
    with pytest.raises(UnavailableError) as raised:
        call_with_retry(op, policy(fake, max_attempts=10, base_delay=1.0, max_delay=100.0, total_budget=5.0))
    # Then the 4 s sleep (ending at 7 s) is never taken: three sends, two sleeps, within the budget
    assert op.calls == 3
    assert fake.sleeps == [1.0, 2.0]
    assert fake.now <= 5.0
    assert raised.value.attempts == 3


def test_retry_after_replaces_the_jittered_delay() -> None:
    fake = FakeTime()
    op = FailingThen(RateLimitError("429", status=429, retry_after=3.0))
    assert call_with_retry(op, policy(fake, random_value=0.0)) == "ok"
    assert fake.sleeps == [3.0]


def test_retry_after_is_honoured_on_503_too() -> None:
    fake = FakeTime()
    op = FailingThen(UnavailableError("503", status=503, retry_after=2.0))
    assert call_with_retry(op, policy(fake, random_value=0.0)) == "ok"
    assert fake.sleeps == [2.0]


def test_retry_after_longer_than_the_cap_is_not_slept_through_in_process() -> None:
    # Given a server asking for 60 s when the cap is 10 s
    fake = FakeTime()
    op = FailingThen(RateLimitError("429", status=429, retry_after=60.0))
    # When / Then the error goes to the caller with the hint intact, after one send and no sleep
    with pytest.raises(RateLimitError) as raised:
        call_with_retry(op, policy(fake, retry_after_cap=10.0))
    assert op.calls == 1
    assert fake.sleeps == []
    assert raised.value.retry_after == 60.0


def test_retry_after_that_does_not_fit_the_remaining_budget_gives_up() -> None:
    fake = FakeTime()
    op = FailingThen(RateLimitError("429", status=429, retry_after=8.0))
    with pytest.raises(RateLimitError):
        call_with_retry(op, policy(fake, total_budget=5.0, retry_after_cap=10.0))
    assert op.calls == 1


def test_never_policy_sends_once() -> None:
    op = FailingThen(unavailable())
    with pytest.raises(UnavailableError):
        call_with_retry(op, RetryPolicy.never())
    assert op.calls == 1


def test_exceptions_that_are_not_kantata_errors_propagate_untouched() -> None:
    fake = FakeTime()
    op = FailingThen(RuntimeError("bug"))
    with pytest.raises(RuntimeError, match="bug"):
        call_with_retry(op, policy(fake))
    assert op.calls == 1


def test_on_retry_hook_sees_each_retry_before_its_sleep() -> None:
    fake = FakeTime()
    seen: list[tuple[str, int, float]] = []
    op = FailingThen(unavailable(), unavailable())
    call_with_retry(
        op, policy(fake, random_value=1.0), on_retry=lambda e, n, d: seen.append((type(e).__name__, n, d))
    )
    assert seen == [("UnavailableError", 1, 0.5), ("UnavailableError", 2, 1.0)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"base_delay": -1.0},
        {"max_delay": -1.0},
        {"total_budget": -0.1},
        {"retry_after_cap": -5},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(KantataValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
