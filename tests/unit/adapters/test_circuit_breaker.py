"""The asyncio circuit breaker: transitions with an injected clock, classification, latching."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import ccxt
import pytest

from adapters.circuit_breaker import (
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    Outcome,
    classify_exception,
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def ok() -> str:
    return "ok"


async def timeout() -> None:
    raise ccxt.RequestTimeout("binance GET https://api/x request timed out")


def state(cb: CircuitBreaker) -> BreakerState:
    """The breaker's state (a call, so type checkers do not narrow it across awaits)."""
    return cb.state


def breaker(clock: FakeClock, **policy: object) -> CircuitBreaker:
    return CircuitBreaker("test", BreakerPolicy(**policy), clock=clock)  # type: ignore[arg-type]


async def fail_times(cb: CircuitBreaker, n: int, fn: Callable[[], Awaitable[object]] = timeout) -> None:
    for _ in range(n):
        with pytest.raises(ccxt.RequestTimeout):
            await cb.call(fn)


# -- closed → open ----------------------------------------------------------------------------------
async def test_consecutive_failures_reaching_threshold_open_the_breaker() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=3, break_s=10)
    await fail_times(cb, 2)
    assert state(cb) is BreakerState.CLOSED and cb.snapshot().failures == 2
    await fail_times(cb, 1)
    snap = cb.snapshot()
    assert snap.state is BreakerState.OPEN and snap.trips_total == 1 and snap.opened_at == clock.now
    assert snap.open_remaining_s == 10


async def test_success_between_failures_resets_consecutive_count() -> None:
    cb = breaker(FakeClock(), failure_threshold=3)
    await fail_times(cb, 2)
    assert await cb.call(ok) == "ok"
    await fail_times(cb, 2)
    assert state(cb) is BreakerState.CLOSED and cb.snapshot().failures == 2


async def test_window_counts_failures_within_window_only() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=3, window_s=10, break_s=5)
    await fail_times(cb, 2)
    assert await cb.call(ok) == "ok"  # successes do not clear a window
    clock.advance(11)  # ... but age does
    assert cb.snapshot().failures == 0
    await fail_times(cb, 2)
    clock.advance(5)
    await fail_times(cb, 1)
    assert state(cb) is BreakerState.OPEN


# -- open → half-open → closed / open ---------------------------------------------------------------
async def test_open_breaker_fails_fast_without_calling() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, break_s=10)
    await fail_times(cb, 1)
    called = False

    async def probe() -> None:
        nonlocal called
        called = True

    with pytest.raises(CircuitOpenError) as info:
        await cb.call(probe)
    assert not called and info.value.retry_after_s == 10 and cb.snapshot().rejected_total == 1


async def test_break_duration_elapsed_goes_half_open_and_success_closes() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, break_s=10)
    await fail_times(cb, 1)
    clock.advance(9.9)
    assert state(cb) is BreakerState.OPEN
    clock.advance(0.1)
    assert state(cb) is BreakerState.HALF_OPEN
    assert await cb.call(ok) == "ok"
    snap = cb.snapshot()
    assert snap.state is BreakerState.CLOSED and snap.failures == 0 and snap.opened_at is None


async def test_half_open_trial_failure_reopens_for_another_break() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, break_s=10)
    await fail_times(cb, 1)
    clock.advance(10)
    await fail_times(cb, 1)
    snap = cb.snapshot()
    assert snap.state is BreakerState.OPEN and snap.trips_total == 2 and snap.open_remaining_s == 10


async def test_half_open_admits_only_trial_limit_concurrently() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, break_s=1, half_open_calls=2)
    await fail_times(cb, 1)
    clock.advance(1)
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "done"

    trials = [asyncio.ensure_future(cb.call(slow)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError, match="trial limit"):
        await cb.call(ok)
    gate.set()
    assert await asyncio.gather(*trials) == ["done", "done"]
    assert state(cb) is BreakerState.CLOSED


# -- cancellation and classification ----------------------------------------------------------------
async def test_cancelled_call_counts_as_neither_success_nor_failure() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=2, break_s=1)
    await fail_times(cb, 1)
    task = asyncio.ensure_future(cb.call(asyncio.sleep, 10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    snap = cb.snapshot()
    assert snap.failures == 1 and snap.successes_total == 0 and snap.failures_total == 1


async def test_cancelled_half_open_trial_frees_its_slot() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, break_s=1, half_open_calls=1)
    await fail_times(cb, 1)
    clock.advance(1)
    task = asyncio.ensure_future(cb.call(asyncio.sleep, 10))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state(cb) is BreakerState.HALF_OPEN
    assert await cb.call(ok) == "ok"
    assert state(cb) is BreakerState.CLOSED


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ccxt.RequestTimeout("t"), Outcome.FAILURE),
        (ccxt.ExchangeNotAvailable("503"), Outcome.FAILURE),
        (ccxt.DDoSProtection("429"), Outcome.FAILURE),
        (ccxt.RateLimitExceeded("-1015"), Outcome.FAILURE),
        (ccxt.OnMaintenance("maint"), Outcome.FAILURE),
        (ccxt.OperationFailed("-1001"), Outcome.FAILURE),
        (ccxt.ExchangeError("-1008 server busy"), Outcome.FAILURE),
        (TimeoutError(), Outcome.FAILURE),
        (ConnectionResetError(), Outcome.FAILURE),
        (ccxt.InsufficientFunds("-2010"), Outcome.SUCCESS),
        (ccxt.InvalidOrder("LOT_SIZE"), Outcome.SUCCESS),
        (ccxt.OrderNotFound("-2013"), Outcome.SUCCESS),
        (ccxt.BadRequest("-1100"), Outcome.SUCCESS),
        (ccxt.BadSymbol("-1121"), Outcome.SUCCESS),
        (ccxt.AuthenticationError("-2015"), Outcome.SUCCESS),
        (ccxt.InvalidNonce("-1021"), Outcome.IGNORE),
        (asyncio.CancelledError(), Outcome.IGNORE),
    ],
)
def test_classify_exception_maps_venue_errors(exc: BaseException, expected: Outcome) -> None:
    assert classify_exception(exc) is expected


async def test_business_rejects_do_not_trip_and_reset_consecutive_count() -> None:
    cb = breaker(FakeClock(), failure_threshold=2)

    async def insufficient() -> None:
        raise ccxt.InsufficientFunds("binance Account has insufficient balance for requested action.")

    for _ in range(5):
        with pytest.raises(ccxt.InsufficientFunds):
            await cb.call(insufficient)
    await fail_times(cb, 1)
    with pytest.raises(ccxt.InsufficientFunds):
        await cb.call(insufficient)
    await fail_times(cb, 1)
    assert state(cb) is BreakerState.CLOSED


async def test_clock_skew_errors_count_as_neither() -> None:
    cb = breaker(FakeClock(), failure_threshold=1)

    async def skew() -> None:
        raise ccxt.InvalidNonce("-1021")

    for _ in range(3):
        with pytest.raises(ccxt.InvalidNonce):
            await cb.call(skew)
    snap = cb.snapshot()
    assert snap.state is BreakerState.CLOSED and snap.failures_total == 0 and snap.successes_total == 0


async def test_stale_result_from_before_trip_is_ignored() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, break_s=5)
    gate = asyncio.Event()

    async def slow() -> str:
        await gate.wait()
        return "late"

    slow_call = asyncio.ensure_future(cb.call(slow))
    await asyncio.sleep(0)
    await fail_times(cb, 1)
    clock.advance(5)
    assert state(cb) is BreakerState.HALF_OPEN
    gate.set()
    assert await slow_call == "late"
    assert state(cb) is BreakerState.HALF_OPEN  # a call admitted while closed is no trial


# -- latching, forced open, reset -------------------------------------------------------------------
async def test_latching_breaker_stays_open_until_reset() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=2, break_s=1, latching=True)
    await fail_times(cb, 2)
    clock.advance(3600)
    snap = cb.snapshot()
    assert snap.state is BreakerState.OPEN and snap.latched and snap.open_remaining_s is None
    with pytest.raises(CircuitOpenError, match="until reset"):
        await cb.call(ok)
    cb.reset()
    assert state(cb) is BreakerState.CLOSED and not cb.latched
    assert await cb.call(ok) == "ok"


async def test_force_open_blocks_for_duration_then_half_opens() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=5, break_s=1, latching=True)
    cb.force_open(120, "ip_ban")
    snap = cb.snapshot()
    assert snap.state is BreakerState.OPEN and snap.reason == "ip_ban" and not snap.latched
    assert snap.trips_total == 1 and snap.forced_total == 1
    clock.advance(119)
    with pytest.raises(CircuitOpenError, match="ip_ban"):
        await cb.call(ok)
    clock.advance(1)
    assert state(cb) is BreakerState.HALF_OPEN


async def test_force_open_extends_but_never_shortens_an_open_breaker() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, break_s=30)
    await fail_times(cb, 1)
    cb.force_open(5, "retry_after")
    clock.advance(6)
    assert state(cb) is BreakerState.OPEN
    cb.force_open(60, "ban")
    clock.advance(30)
    assert state(cb) is BreakerState.OPEN
    clock.advance(30)
    assert state(cb) is BreakerState.HALF_OPEN
    assert cb.snapshot().trips_total == 1


async def test_force_open_on_latched_breaker_keeps_the_latch() -> None:
    clock = FakeClock()
    cb = breaker(clock, failure_threshold=1, latching=True)
    await fail_times(cb, 1)
    cb.force_open(1, "retry_after")
    clock.advance(2)
    assert state(cb) is BreakerState.OPEN and cb.latched


async def test_on_change_sees_every_transition() -> None:
    clock = FakeClock()
    seen: list[BreakerSnapshot] = []
    cb = CircuitBreaker("t", BreakerPolicy(failure_threshold=1, break_s=1), clock=clock, on_change=seen.append)
    await fail_times(cb, 1)
    clock.advance(1)
    assert await cb.call(ok) == "ok"
    assert [s.state for s in seen] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_policy_with_invalid_thresholds_is_refused() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(failure_threshold=0)
    with pytest.raises(ValueError):
        BreakerPolicy(half_open_calls=0)


def test_snapshot_is_frozen() -> None:
    snap = CircuitBreaker("x").snapshot()
    with pytest.raises(AttributeError):
        snap.state = BreakerState.OPEN  # type: ignore[misc]
