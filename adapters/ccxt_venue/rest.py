"""Guarded REST calls of the ccxt venue: circuit breakers, retries, rate limits, time resync.

- Every REST call runs under a circuit breaker (``adapters.circuit_breaker``): ``rest`` for
  reads and cancels, ``orders`` — latching by default — for order submission. While a
  breaker is open, calls fail fast (:class:`~adapters.circuit_breaker.CircuitOpenError`)
  and nothing is sent. The latched order breaker is reset after a complete REST re-read of
  open orders and fills (the user-data engine does it; or :meth:`RestGateway.reset_order_breaker`):
  no trial *orders* are ever used to probe.
- 429 (``DDoSProtection``): every breaker is forced open for ``Retry-After`` (read from
  ``exchange.last_response_headers``; ``rate_limit_pause_s`` when absent) — no REST call goes
  out until it passes. 418 (IP ban): the same until the ban ends (``Retry-After`` or the
  "banned until" time in the body). 400 ``-1015`` (``RateLimitExceeded``, too many new
  orders): only the order breaker pauses.
  A refused submit carries the pause's reason (``RATE_LIMITED`` / ``IP_BANNED``) as a definite
  rejection: Binance places no order when it answers 429 or 418 (see :meth:`RestGateway.pause_reason`).
- ``AuthenticationError`` (our credentials refused): every breaker is forced open for
  ``auth_retry_s``, one error is logged and the venue's update streams end with the error
  (:mod:`adapters.ccxt_venue.auth_refusal`); calls in the meantime raise ``VenueAuthenticationError``.
- ``InvalidNonce`` (-1021, clock skew): ``load_time_difference()`` and one more attempt.
- Reads are retried on ``NetworkError`` with tenacity: exponential backoff with jitter,
  ``read_retry_attempts`` attempts. Never retried: ``InsufficientFunds``, ``InvalidOrder``,
  ``OrderNotFound``, ``AuthenticationError``, ``BadRequest`` (nor rate limits, nor an open
  circuit). Orders and cancels are never retried here (the order path resends only once
  after a time resync: -1021 is a definite refusal).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from actors.kernel.clock import Clock
from actors.ports.venue import AUTHENTICATION, VenueAuthenticationError, VenueUnavailable
from adapters.ccxt_venue import auth_refusal
from adapters.ccxt_venue.auth_refusal import CredentialsGuard
from adapters.ccxt_venue.session import VenueSession
from adapters.circuit_breaker import (
    BreakerPolicy,
    BreakerSnapshot,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    Outcome,
)

_BANNED_UNTIL = re.compile(r"banned until (\d{12,})")
#: Reasons of a breaker forced open by a rate limit or a ban → the definite reason of a refused submit.
_PAUSE_REASONS = {"rate_limited": "RATE_LIMITED", "ip_banned": "IP_BANNED"}
_RATE_LIMIT_NAMES = frozenset({"DDoSProtection", "RateLimitExceeded"})


def _order_outcome(exc: BaseException) -> Outcome:
    """How a submit's error counts on the order breaker.

    A rate limit or a ban is a definite refusal (no order placed) and pauses the breaker by
    itself: counted as a failure it would latch the breaker as if outcomes were unknown.
    """
    if _RATE_LIMIT_NAMES.intersection(cls.__name__ for cls in type(exc).__mro__):
        return Outcome.IGNORE
    return auth_refusal.classify(exc)

#: (ccxt exception class, reason) of ``VenueUnavailable`` after timeouts and rate limits, most
#: specific first.
_UNAVAILABLE_REASONS = (
    ("OnMaintenance", "MAINTENANCE"),
    ("InvalidNonce", "CLOCK_SKEW"),
    ("NetworkError", "NETWORK"),
    ("AuthenticationError", "AUTHENTICATION"),
    ("OperationFailed", "VENUE_ERROR"),
    ("ExchangeError", "EXCHANGE_ERROR"),
)


class RestGateway:
    """The venue's REST calls under its two breakers (see the module doc).

    ``clock`` is business time (epoch ms: when an IP ban ends); ``monotonic`` drives the
    breakers. ``on_order_latched`` is called when the order breaker latches: the venue's
    state must then be re-read over REST before orders may flow again.
    ``on_credentials_refused`` is called once when the venue starts refusing our credentials.
    """

    def __init__(
        self,
        session: VenueSession,
        *,
        clock: Clock,
        monotonic: Callable[[], float],
        on_order_latched: Callable[[], None],
        on_credentials_refused: Callable[[VenueAuthenticationError], None],
    ) -> None:
        self._session = session
        self._clock = clock
        self._on_order_latched = on_order_latched
        self._log = session.log
        cfg = session.config
        self.rest_breaker = CircuitBreaker(
            "rest",
            BreakerPolicy(
                failure_threshold=cfg.breaker_failure_threshold,
                window_s=cfg.breaker_window_s,
                break_s=cfg.breaker_break_s,
                half_open_calls=cfg.breaker_half_open_calls,
            ),
            clock=monotonic,
            classify=auth_refusal.classify,
            on_change=self._on_breaker_change,
        )
        self.order_breaker = CircuitBreaker(
            "orders",
            BreakerPolicy(
                failure_threshold=cfg.order_breaker_failure_threshold,
                window_s=0.0,
                break_s=cfg.breaker_break_s,
                half_open_calls=1,
                latching=cfg.order_breaker_latching,
            ),
            clock=monotonic,
            classify=_order_outcome,
            on_change=self._on_breaker_change,
        )
        self.rate_limited = 0
        self.bans = 0
        self.time_resyncs = 0
        self.credentials = CredentialsGuard(
            session.name,
            cfg.exchange_id,
            breakers=(self.rest_breaker, self.order_breaker),
            retry_s=cfg.auth_retry_s,
            log=self._log,
            credentials=lambda: session.credentials_source,
            on_refused=on_credentials_refused,
        )

    # -- breakers --------------------------------------------------------------------------------
    def breaker_snapshots(self) -> tuple[BreakerSnapshot, BreakerSnapshot]:
        """The rest and the order breaker, in that order."""
        return self.rest_breaker.snapshot(), self.order_breaker.snapshot()

    def reset_order_breaker(self, reason: str = "operator") -> None:
        """Close a latched order circuit (after the operator or the reconciler confirmed venue truth)."""
        if self.order_breaker.state is not BreakerState.CLOSED:
            self._log.warning("ccxt_venue.order_breaker_reset", reason=reason)
        self.order_breaker.reset()

    def _on_breaker_change(self, snap: BreakerSnapshot) -> None:
        log = self._log.warning if snap.state is BreakerState.OPEN else self._log.info
        log(
            "ccxt_venue.breaker_state",
            breaker=snap.name,
            state=snap.state.value,
            reason=snap.reason,
            latched=snap.latched,
            trips_total=snap.trips_total,
            open_for_s=snap.open_remaining_s,
        )
        if snap.latched:
            self._on_order_latched()

    # -- rate limits and clock skew --------------------------------------------------------------
    def _retry_after_s(self) -> float | None:
        headers = getattr(self._session.exchange, "last_response_headers", None) or {}
        try:
            items = headers.items()
        except AttributeError:
            return None
        for key, value in items:
            if str(key).lower() == "retry-after":
                try:
                    return max(0.0, float(value))
                except (TypeError, ValueError):
                    return None
        return None

    def note_rate_limit(self, exc: BaseException, op: str) -> str | None:
        """Pause the breakers if ``exc`` is a rate limit or a ban (429/418/-1015).

        Returns the reason code (``RATE_LIMITED`` / ``IP_BANNED``), None for any other error.
        """
        if self._session.is_a(exc, "DDoSProtection", "RateLimitExceeded"):
            return self._on_rate_limit(exc, op)
        return None

    def note_refusal(self, exc: BaseException, op: str) -> str | None:
        """Handle a rate limit, a ban or a refusal of our credentials; returns its reason code or None."""
        if self.credentials.note(exc, op):
            return AUTHENTICATION
        return self.note_rate_limit(exc, op)

    @staticmethod
    def pause_reason(exc: CircuitOpenError) -> str | None:
        """The reason code of a call a paused breaker refused (rate limit, ban, credentials); None otherwise."""
        if auth_refusal.refused_by_guard(exc):
            return AUTHENTICATION
        return _PAUSE_REASONS.get(exc.reason)

    def _on_rate_limit(self, exc: BaseException, op: str) -> str:
        """Pause every REST call after a 429/418/-1015; returns the reason code."""
        is_a = self._session.is_a
        text = str(exc)
        banned = " 418 " in f" {text} " or "banned" in text.lower()
        pause = self._retry_after_s()
        if banned:
            self.bans += 1
            match = _BANNED_UNTIL.search(text)
            if pause is None and match is not None:
                pause = max(0.0, (int(match.group(1)) - self._clock.now_ms()) / 1000.0)
            reason = "IP_BANNED"
        else:
            self.rate_limited += 1
            reason = "RATE_LIMITED"
        if pause is None:
            pause = self._session.config.rate_limit_pause_s
        # 429/418 are per IP: everything stops. A 400 -1015 (too many new orders) is the
        # order-rate limit: only order entry pauses.
        order_rate_only = is_a(exc, "RateLimitExceeded") and not is_a(exc, "DDoSProtection") and not banned
        breakers = (self.order_breaker,) if order_rate_only else (self.rest_breaker, self.order_breaker)
        for breaker in breakers:
            breaker.force_open(pause, reason.lower())
        self._log.warning("ccxt_venue.rate_limited", op=op, reason=reason, pause_s=pause, error=text[:300])
        return reason

    async def resync_time(self, op: str) -> None:
        """Re-read the venue's clock offset (``load_time_difference``) after a -1021."""
        ex = self._session.exchange
        self.time_resyncs += 1
        before = ex.options.get("timeDifference") if isinstance(getattr(ex, "options", None), dict) else None
        try:
            await self.rest_breaker.call(ex.load_time_difference)
        except Exception as exc:
            # A 429/418 (or refused credentials) on the time request pauses REST like any other.
            self.note_refusal(exc, f"{op}/time_resync")
            raise
        after = ex.options.get("timeDifference") if isinstance(getattr(ex, "options", None), dict) else None
        self._log.warning("ccxt_venue.time_resynced", op=op, time_difference_ms_before=before,
                          time_difference_ms=after)

    # -- classification ------------------------------------------------------------------------
    def unavailable(self, exc: BaseException, op: str) -> VenueUnavailable:
        """The VenueUnavailable for an exception that ended a REST call (the caller handles and logs it)."""
        if isinstance(exc, CircuitOpenError):
            if auth_refusal.refused_by_guard(exc):
                return self.credentials.error(op)
            return VenueUnavailable("CIRCUIT_OPEN", f"{op}: {exc}")
        if isinstance(exc, VenueUnavailable):
            return exc
        if auth_refusal.is_credentials_refusal(exc):
            return self.credentials.error(op)
        is_a = self._session.is_a
        if is_a(exc, "RequestTimeout"):
            reason = "TIMEOUT"
        elif is_a(exc, "DDoSProtection", "RateLimitExceeded"):
            reason = "IP_BANNED" if "banned" in str(exc).lower() else "RATE_LIMITED"
        else:
            reason = next((r for name, r in _UNAVAILABLE_REASONS if is_a(exc, name)), "ADAPTER_ERROR")
        return VenueUnavailable(reason, f"{op}: {type(exc).__name__}: {str(exc)[:300]}")

    def _retryable_read(self, exc: BaseException) -> bool:
        is_a = self._session.is_a
        return is_a(exc, "NetworkError") and not is_a(exc, "DDoSProtection", "RateLimitExceeded", "InvalidNonce")

    # -- calls ---------------------------------------------------------------------------------
    async def read(
        self, op: str, fn: Callable[..., Any], *args: Any, private: bool = True, **kwargs: Any
    ) -> Any:
        """A REST read under the rest breaker: retried on NetworkError, resync on -1021.

        Raises ccxt's OrderNotFound / BadSymbol as they are (callers map them); a refusal of
        our credentials becomes ``VenueAuthenticationError``, anything else that ends the call
        ``VenueUnavailable``. ``private``: a signed call (its success proves the credentials).
        """
        cfg = self._session.config
        is_a = self._session.is_a
        resynced = False
        while True:
            try:
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(cfg.read_retry_attempts),
                    wait=wait_exponential_jitter(
                        multiplier=cfg.read_retry_initial_s, max=cfg.read_retry_max_s, jitter=cfg.read_retry_initial_s
                    ),
                    retry=retry_if_exception(self._retryable_read),
                    reraise=True,
                ):
                    with attempt:
                        try:
                            result = await self.rest_breaker.call(fn, *args, **kwargs)
                        except Exception as exc:
                            self.note_refusal(exc, op)
                            raise
                        if private:
                            self.credentials.accepted()
                        return result
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_a(exc, "InvalidNonce") and not resynced:
                    resynced = True
                    try:
                        await self.resync_time(op)
                    except Exception as sync_exc:
                        raise self.unavailable(sync_exc, f"{op}/time_resync") from None
                    continue
                if is_a(exc, "OrderNotFound", "BadSymbol"):
                    raise
                raise self.unavailable(exc, op) from None
            raise VenueUnavailable("ADAPTER_ERROR", f"{op}: retry loop ended without a result")
