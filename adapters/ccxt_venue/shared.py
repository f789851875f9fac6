"""Helpers the ccxt venue and the ccxt market source share.

- :class:`CcxtErrors`: ccxt's exception classes, imported when an adapter starts (importing
  ccxt costs ~0.6 s), and the classification of an exception by their names;
- :class:`MalformedCounter`: malformed reports counted by reason and logged (the first ones
  per reason, then every 1000th), including websocket frames ccxt could not parse;
- :func:`open_exchange` / :func:`release_exchange`: build the ccxt.pro instance or adopt a
  shared one, and give it back (closing it, or only the websockets the adapter used);
- :func:`epoch_ms_or_now` (timestamp coercion), :func:`current_task_cancelling`,
  :func:`breaker_view`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from actors.kernel.clock import Clock
from actors.ports.capabilities import BreakerView
from adapters.ccxt_venue.client import (
    MalformedHook,
    build_exchange,
    close_ws_clients,
    install_message_guard,
    ws_clients,
)
from adapters.circuit_breaker import BreakerSnapshot
from config.schema.trading import CcxtVenueSection

#: ``predicate(url, client)``: selects websocket clients of an exchange.
ClientFilter = Callable[[str, Any], bool]

_LOG_FIRST = 10
_LOG_EVERY = 1000


class CcxtErrors:
    """ccxt's exception classes, looked up by name once :meth:`load` ran.

    ccxt is imported by :meth:`load` (at adapter start), not at import time: a daemon
    trading on the paper venue never pays for it. Before :meth:`load` nothing matches.
    """

    __slots__ = ("_module",)

    def __init__(self) -> None:
        self._module: Any = None

    def load(self) -> None:
        """Import ccxt's error module (idempotent)."""
        from ccxt.base import errors

        self._module = errors

    def is_a(self, exc: BaseException, *names: str) -> bool:
        """True when ``exc`` is an instance of any of ccxt's exception classes ``names``."""
        errors = self._module
        return errors is not None and any(isinstance(exc, getattr(errors, n)) for n in names)


class MalformedCounter:
    """Malformed reports by reason: counted, and logged as ``event`` (first ones, then every 1000th)."""

    __slots__ = ("_event", "_log", "by_reason")

    def __init__(self, log: Any, event: str) -> None:
        self._log = log
        self._event = event
        self.by_reason: dict[str, int] = {}

    @property
    def total(self) -> int:
        """Malformed reports of every reason."""
        return sum(self.by_reason.values())

    def count(self, reason: str, **context: Any) -> None:
        """Count one malformed report; log it when it is among the first or every 1000th."""
        n = self.by_reason.get(reason, 0) + 1
        self.by_reason[reason] = n
        if n <= _LOG_FIRST or n % _LOG_EVERY == 0:
            self._log.warning(self._event, reason=reason, count=n, **context)

    def on_undecodable_frame(self, url: str, excerpt: str, exc: BaseException) -> None:
        """The websocket guard's hook (:data:`adapters.ccxt_venue.client.MalformedHook`)."""
        self.count("undecodable_frame", url=url, frame=excerpt, error=repr(exc)[:300])


def open_exchange(
    config: CcxtVenueSection,
    exchange: Any | None,
    *,
    environ: Mapping[str, str] | None,
    on_malformed: MalformedHook,
) -> tuple[Any, bool]:
    """The exchange an adapter uses, and whether the adapter owns it.

    ``exchange`` None: one is built from ``config`` (owned: the adapter closes it). Else the
    given, shared instance gets the websocket guard and stays its builder's to close.
    """
    if exchange is None:
        return build_exchange(config, environ=environ, on_malformed=on_malformed), True
    install_message_guard(exchange, on_malformed)
    return exchange, False


async def release_exchange(exchange: Any, *, owned: bool, ours: Sequence[ClientFilter]) -> None:
    """Give ``exchange`` back: close it if ``owned``, else close only the clients selected by ``ours``.

    A shared exchange lives on for its other users; the sockets this adapter subscribed on
    would otherwise keep streaming into ccxt's caches.
    """
    if owned:
        with contextlib.suppress(Exception):  # a half-dead exchange may fail to close: nothing to do about it
            await exchange.close()
        return
    for predicate in ours:
        await close_ws_clients(exchange, ws_clients(exchange, predicate))


def epoch_ms_or_now(value: Any, clock: Clock) -> int:
    """``value`` if it is a positive integer of epoch milliseconds, else the clock's now."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else clock.now_ms()


def current_task_cancelling() -> bool:
    """True when the running task is being cancelled (not merely a watch it awaited)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def breaker_view(snap: BreakerSnapshot) -> BreakerView:
    """A breaker snapshot as operators see it (``ReportsConnectionHealth``)."""
    return BreakerView(
        name=snap.name,
        state=str(snap.state),
        trips=snap.trips_total,
        latched=snap.latched,
        open_remaining_s=snap.open_remaining_s,
        reason=snap.reason,
    )
