"""An asyncio circuit breaker for calls to a remote venue.

States
- ``closed``: calls pass; failures are counted — consecutively (a success resets the
  count) or, with ``window_s > 0``, within a rolling window (successes do not reset it).
  ``failure_threshold`` counted failures trip the breaker.
- ``open``: calls fail fast with :class:`CircuitOpenError` for ``break_s`` seconds.
- ``half_open``: at most ``half_open_calls`` trial calls are admitted at a time; the first
  trial that succeeds closes the breaker, a trial that fails reopens it. Calls beyond the
  trial limit fail fast.

Latching (``latching=True``, used for the order path): a trip caused by counted failures
keeps the breaker open — it never goes half-open by itself — until :meth:`reset` is
called. The rationale: a half-open trial on the order path would be a *real order* whose
outcome may again be unknown; the owner instead resets the latch after it re-established
the venue's truth by reads (see ``adapters.ccxt_venue.rest``). A :meth:`force_open`
(418 ban, ``Retry-After``) is different: it has a known end, after which the breaker goes
half-open even when latching (unless failures had latched it before).

Accounting
- The clock is monotonic (injectable for tests); nothing here reads the wall clock.
- A cancelled call (``asyncio.CancelledError``, or any ``BaseException`` that is not an
  ``Exception``) counts as neither success nor failure; its half-open trial slot is freed.
- Exceptions are classified by :func:`classify_exception` (or the ``classify`` callable
  given): timeouts, transport errors, 5xx, rate limits and unknown errors count as
  failures; definite business answers from the venue (insufficient funds, invalid order,
  order not found, bad request, authentication) prove the venue is up and count as
  successes; clock-skew errors (``InvalidNonce``) count as neither — the caller resyncs.
  Classification walks the exception's class names, so ccxt is never imported here.
- Results of calls admitted before the last state change are ignored (a slow call that
  started while closed neither closes a half-open breaker nor extends an open one).
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import msgspec

from actors.kernel.clock import monotonic

T = TypeVar("T")


class BreakerState(StrEnum):
    """Circuit breaker states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(StrEnum):
    """How a call's result counts."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORE = "ignore"


#: Class names (anywhere in the MRO) whose instances count as neither success nor failure.
_IGNORED_NAMES = frozenset({"InvalidNonce"})


def classify_exception(exc: BaseException) -> Outcome:
    """Default classification of an exception raised by a guarded call.

    - not an ``Exception`` (``CancelledError``, ``KeyboardInterrupt``) → IGNORE;
    - ccxt ``InvalidNonce`` / ``ChecksumError`` (clock skew, book desync) → IGNORE;
    - exactly ccxt ``ExchangeError`` (an unrecognised venue error, e.g. a JSON 5xx) → FAILURE;
    - any subclass of ccxt ``ExchangeError`` (InsufficientFunds, InvalidOrder, OrderNotFound,
      BadRequest, BadSymbol, AuthenticationError, …): the venue answered → SUCCESS;
    - everything else — ccxt ``NetworkError`` (RequestTimeout, ExchangeNotAvailable,
      DDoSProtection, RateLimitExceeded, OnMaintenance), ``OperationFailed``, ``TimeoutError``,
      ``OSError``, unknown exceptions → FAILURE.
    """
    if not isinstance(exc, Exception):
        return Outcome.IGNORE
    names = [cls.__name__ for cls in type(exc).__mro__]
    if _IGNORED_NAMES.intersection(names):
        return Outcome.IGNORE
    if names[0] == "ExchangeError":
        return Outcome.FAILURE
    if "ExchangeError" in names:
        return Outcome.SUCCESS
    return Outcome.FAILURE


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Thresholds of one breaker.

    ``failure_threshold`` counted failures trip it: consecutive ones when ``window_s`` is 0,
    else those within the last ``window_s`` seconds. It then stays open ``break_s`` seconds
    and admits ``half_open_calls`` concurrent trial calls. ``latching``: see the module doc.
    """

    failure_threshold: int = 5
    window_s: float = 0.0
    break_s: float = 30.0
    half_open_calls: int = 1
    latching: bool = False

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if self.window_s < 0 or self.break_s < 0:
            raise ValueError("window_s and break_s must be >= 0")
        if self.half_open_calls < 1:
            raise ValueError("half_open_calls must be >= 1")


class BreakerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A point-in-time copy of a breaker (what metrics and the admin server read).

    ``failures`` is the current count towards a trip; ``opened_at`` the monotonic time of
    the last transition to open (None while closed or half-open); ``open_remaining_s`` how
    long it stays open (None while latched, closed or half-open).
    """

    name: str
    state: BreakerState
    trips_total: int
    failures: int
    opened_at: float | None
    open_remaining_s: float | None = None
    latched: bool = False
    reason: str = ""
    successes_total: int = 0
    failures_total: int = 0
    rejected_total: int = 0
    forced_total: int = 0


class CircuitOpenError(Exception):
    """The breaker refused the call without running it (nothing was sent).

    ``retry_after_s`` is how long it stays open (None: latched, until reset).
    """

    def __init__(self, name: str, state: BreakerState, reason: str, retry_after_s: float | None) -> None:
        self.name = name
        self.state = state
        self.reason = reason
        self.retry_after_s = retry_after_s
        wait = "until reset" if retry_after_s is None else f"{retry_after_s:.3f}s"
        super().__init__(f"circuit {name!r} is {state.value} ({reason or 'failures'}); retry {wait}")


class CircuitBreaker:
    """An asyncio circuit breaker (see the module doc for semantics).

    ``clock`` returns monotonic seconds (default ``actors.kernel.clock.monotonic``); ``classify`` maps an
    exception to an :class:`Outcome` (default :func:`classify_exception`); ``on_change``
    is called with a snapshot after every state transition (for logging by the owner).
    Not thread-safe: use it from one event loop.
    """

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = monotonic,
        classify: Callable[[BaseException], Outcome] = classify_exception,
        on_change: Callable[[BreakerSnapshot], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._classify = classify
        self._on_change = on_change
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._consecutive = 0
        self._window: deque[float] = deque()
        self._opened_at: float | None = None
        self._open_until = 0.0
        self._latched = False
        self._reason = ""
        self._trials = 0
        self.trips_total = 0
        self.successes_total = 0
        self.failures_total = 0
        self.rejected_total = 0
        self.forced_total = 0

    # -- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose time is up reads as half-open)."""
        self._advance()
        return self._state

    @property
    def latched(self) -> bool:
        """True while a latching breaker is open until :meth:`reset`."""
        return self._latched

    def _advance(self) -> None:
        if self._state is BreakerState.OPEN and not self._latched and self._clock() >= self._open_until:
            self._transition(BreakerState.HALF_OPEN, self._reason)

    def _transition(self, new: BreakerState, reason: str) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._reason = reason
        self._trials = 0
        if new is BreakerState.OPEN:
            self._opened_at = self._clock()
            if old is not BreakerState.OPEN:
                self.trips_total += 1
        elif new is BreakerState.CLOSED:
            self._opened_at = None
            self._consecutive = 0
            self._window.clear()
            self._latched = False
            self._reason = ""
        else:
            self._opened_at = None
        if self._on_change is not None and old is not new:
            self._on_change(self.snapshot())

    def _failures(self) -> int:
        if self.policy.window_s > 0:
            horizon = self._clock() - self.policy.window_s
            while self._window and self._window[0] < horizon:
                self._window.popleft()
            return len(self._window)
        return self._consecutive

    def _open_remaining(self) -> float | None:
        if self._state is not BreakerState.OPEN or self._latched:
            return None
        return max(0.0, self._open_until - self._clock())

    def snapshot(self) -> BreakerSnapshot:
        """A frozen copy of the state and counters."""
        self._advance()
        return BreakerSnapshot(
            name=self.name,
            state=self._state,
            trips_total=self.trips_total,
            failures=self._failures(),
            opened_at=self._opened_at,
            open_remaining_s=self._open_remaining(),
            latched=self._latched,
            reason=self._reason,
            successes_total=self.successes_total,
            failures_total=self.failures_total,
            rejected_total=self.rejected_total,
            forced_total=self.forced_total,
        )

    # -- admission -----------------------------------------------------------------------------
    def acquire(self) -> int:
        """Admit one call or raise :class:`CircuitOpenError`; returns a permit for :meth:`release`."""
        self._advance()
        state = self._state
        if state is BreakerState.OPEN:
            self.rejected_total += 1
            raise CircuitOpenError(self.name, state, self._reason, self._open_remaining())
        if state is BreakerState.HALF_OPEN:
            if self._trials >= self.policy.half_open_calls:
                self.rejected_total += 1
                raise CircuitOpenError(self.name, state, "half-open trial limit reached", 0.0)
            self._trials += 1
        return self._generation

    def release(self, permit: int, outcome: Outcome) -> None:
        """Record the outcome of an admitted call (``permit`` from :meth:`acquire`)."""
        if outcome is Outcome.SUCCESS:
            self.successes_total += 1
        elif outcome is Outcome.FAILURE:
            self.failures_total += 1
        if permit != self._generation:
            return  # admitted before the last transition: stale
        state = self._state
        if state is BreakerState.HALF_OPEN:
            self._trials = max(0, self._trials - 1)
            if outcome is Outcome.SUCCESS:
                self._transition(BreakerState.CLOSED, "")
            elif outcome is Outcome.FAILURE:
                self._trip("half-open trial failed")
            return
        if state is not BreakerState.CLOSED:
            return
        if outcome is Outcome.SUCCESS:
            self._consecutive = 0
        elif outcome is Outcome.FAILURE:
            self._consecutive += 1
            if self.policy.window_s > 0:
                self._window.append(self._clock())
            if self._failures() >= self.policy.failure_threshold:
                self._trip(f"{self.policy.failure_threshold} failures")

    def _trip(self, reason: str) -> None:
        self._open_until = self._clock() + self.policy.break_s
        if self.policy.latching:
            self._latched = True
        self._consecutive = 0
        self._window.clear()
        self._transition(BreakerState.OPEN, reason)

    # -- calls ---------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def guard(self) -> AsyncIterator[None]:
        """``async with breaker.guard(): ...`` — admit, run the block, record its outcome."""
        permit = self.acquire()
        try:
            yield
        except BaseException as exc:
            self.release(permit, self._classify(exc))
            raise
        self.release(permit, Outcome.SUCCESS)

    async def call(self, fn: Callable[..., Awaitable[T]], *args: object, **kwargs: object) -> T:
        """Run ``await fn(*args, **kwargs)`` under the breaker."""
        async with self.guard():
            return await fn(*args, **kwargs)

    def record_success(self) -> None:
        """Record a success observed outside :meth:`call` (e.g. a stream message)."""
        self.release(self._generation, Outcome.SUCCESS)

    def record_failure(self) -> None:
        """Record a failure observed outside :meth:`call`."""
        self.release(self._generation, Outcome.FAILURE)

    # -- operator / adapter controls -----------------------------------------------------------
    def force_open(self, duration_s: float, reason: str) -> None:
        """Open now for at least ``duration_s`` (418 ban, ``Retry-After``), whatever the state.

        An already open breaker is only extended. After the duration it goes half-open,
        unless failures had latched it.
        """
        now = self._clock()
        self.forced_total += 1
        until = now + max(0.0, duration_s)
        if self._state is BreakerState.OPEN:
            self._open_until = max(self._open_until, until)
            self._reason = reason
            return
        self._open_until = until
        self._transition(BreakerState.OPEN, reason)

    def reset(self) -> None:
        """Close the breaker and clear the latch and the failure count."""
        self._transition(BreakerState.CLOSED, "")
