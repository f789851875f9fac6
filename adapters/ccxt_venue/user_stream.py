"""The ccxt venue's user-data engine: order updates and fills from ccxt.pro, backed by REST polls.

One engine task (started by the first subscription, stopped by :meth:`UserStreamEngine.stop`)
keeps ``watch_orders`` and ``watch_my_trades`` pending, each bounded by
``user_stream_idle_timeout_s``. On a stream error, a stall (idle timeout: a zombie stream
and a quiet account look the same), ``eventStreamTerminated``, or a failed subscription
(ccxt raises ``KeyError('spot')``), it closes the ws-API client (the next watch re-dials),
polls REST — open orders, the final state of tracked orders that left the open list, fills
since the last seen — and re-dials with exponential backoff and jitter (reset after
``reconnect_stable_s`` up). While the stream is down it keeps polling every
``poll_interval_s``; after every (re)subscription it polls once more, since events during
the gap are never replayed. Without a user stream (no credentials, or an exchange without
``watchOrders``/``watchMyTrades``) it only polls. A complete poll also lifts a latched order
breaker: the venue's state has been re-read. While the venue refuses our credentials
(:mod:`adapters.ccxt_venue.auth_refusal`) it does not re-dial until that pause ends (its polls
fail fast, unsent, meanwhile).

ccxt.pro handles ``eventStreamTerminated`` by forgetting its subscription and leaving pending watches
hanging; the next ``watch_*`` to start subscribes again without a word. A watch re-armed after a
report but started by the event loop only after ccxt handled the end does just that, so the
subscription's record looks intact again while what executed in between is never sent. The engine
therefore also holds the future ccxt rejects on that event (see :meth:`UserStreamEngine._subscription_end`)
and ends the session when it settles, whatever the record says by then.

ccxt.pro resolves a watch only when a message arrives while it is pending: reports that
land between one ``watch_*`` returning and the next being armed sit in ccxt's cache until
the *next* message (the last fill of a burst could wait for the idle timeout). So after a
burst has been quiet for 0.25 s the engine re-reads the tail of ccxt's ``orders`` and
``myTrades`` caches; the tracker's regress filter and fill de-duplication make that
idempotent.

Reports are validated (``adapters.ccxt_venue.normalize``); a malformed one (bad JSON,
missing fields, unknown symbol, negative size, filled > size…) is logged once with context,
counted by reason and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from actors.kernel.clock import Clock
from actors.ports.venue import VenueAuthenticationError, VenueUnavailable, VenueUpdate
from adapters.ccxt_venue import normalize
from adapters.ccxt_venue.backoff import Backoff, reconnect_backoff
from adapters.ccxt_venue.client import close_ws_clients, ws_clients
from adapters.ccxt_venue.fanout import UpdateFanout
from adapters.ccxt_venue.order_path import OrderPath
from adapters.ccxt_venue.order_tracking import TRACK_MAX, OrderTracker, trim_oldest
from adapters.ccxt_venue.rest import RestGateway
from adapters.ccxt_venue.session import VenueSession
from adapters.ccxt_venue.shared import ClientFilter, current_task_cancelling

_FILL_OVERLAP_MS = 5_000
_FIRST_POLL_LOOKBACK_MS = 60_000
_QUERIES_PER_POLL = 50
_SETTLE_S = 0.25
_DRAIN_TAIL = 50


class _StreamStalled(Exception):
    """No user-data message within the idle timeout."""


class _StreamTerminated(Exception):
    """The session's connection or subscription ended while no watch was pending to see it."""


def user_ws_filter(exchange: Any) -> ClientFilter:
    """Selects the websocket clients of ``exchange`` that carry the user-data stream."""
    url = None
    with contextlib.suppress(Exception):
        url = exchange.urls["api"]["ws"]["ws-api"]["spot"]
    if url:
        return lambda u, _c: u == url

    def user_side(_url: str, client: Any) -> bool:
        keys = list(getattr(client, "subscriptions", None) or {}) + list(getattr(client, "futures", None) or {})
        return any(str(k).startswith(("orders", "myTrades", "balance")) for k in keys)

    return user_side


class UserStreamEngine:
    """Produces the venue's ``VenueUpdate``s for every subscriber (see the module doc).

    ``clock`` is business time (where fill polls start); ``monotonic`` measures idle
    timeouts, poll intervals and backoff; ``rng`` seeds the backoff jitter.
    """

    def __init__(
        self,
        session: VenueSession,
        rest: RestGateway,
        orders: OrderPath,
        tracker: OrderTracker,
        fanout: UpdateFanout,
        *,
        clock: Clock,
        monotonic: Callable[[], float],
        rng: random.Random,
    ) -> None:
        self._session = session
        self._rest = rest
        self._orders = orders
        self._tracker = tracker
        self._fanout = fanout
        self._clock = clock
        self._monotonic = monotonic
        self._rng = rng
        self._log = session.log
        self._task: asyncio.Task[None] | None = None
        self._resync_wanted = asyncio.Event()
        self._venue_started = asyncio.Event()
        self._malformed_seen: OrderedDict[tuple[Any, ...], None] = OrderedDict()
        self.connected = False
        self.last_message_at: float | None = None
        self.reconnects: dict[str, int] = {"user": 0}
        self.stalls = 0
        self.polls = 0
        self.poll_failures = 0

    # -- control ---------------------------------------------------------------------------------
    def subscribe(self) -> AsyncIterator[VenueUpdate]:
        """A new subscription to order updates and fills; starts the engine if it is not running."""
        if self._session.closing:
            return self._fanout.subscribe(ended=True)
        stream = self._fanout.subscribe()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self._session.name}.user-data")
        return stream

    def venue_started(self) -> None:
        """The venue is started: the engine may read it."""
        self._venue_started.set()

    def request_resync(self) -> None:
        """Re-read the venue's state over REST soon (the order breaker latched)."""
        self._resync_wanted.set()

    def last_message_age_s(self) -> float | None:
        """Seconds since the last user-data message (None before the first)."""
        last = self.last_message_at
        return None if last is None else max(0.0, self._monotonic() - last)

    async def stop(self) -> None:
        """Stop the engine and end every subscriber's stream."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fanout.end_all()
        self.connected = False
        self._venue_started.clear()

    # -- the exchange's user-data sockets ------------------------------------------------------
    def _stream_supported(self) -> bool:
        ex = self._session.exchange
        has = getattr(ex, "has", None) or {}
        return bool(has.get("watchOrders")) and bool(has.get("watchMyTrades")) and bool(getattr(ex, "apiKey", ""))

    def _user_ws_clients(self) -> list[Any]:
        ex = self._session.exchange
        return ws_clients(ex, user_ws_filter(ex))

    def _session_lost(self, client: Any) -> str:
        """Why the user-data session ended unseen ("" while it holds).

        A socket that closes while no watch is pending (between one resolving and the next
        being armed) fails nobody: ccxt just deregisters the client, and the next ``watch_*``
        re-dials silently. Likewise ccxt drops its subscription record on Binance's
        ``eventStreamTerminated`` and leaves pending watches hanging; the next ``watch_*``
        subscribes again silently. Either way executions in between are never sent, so the
        session must end and REST be polled. ``client`` is the session's ws client (None:
        not identifiable; rely on errors and the idle timeout).
        """
        if client is None:
            return ""
        if client not in self._user_ws_clients():
            return "the user-data socket closed between watches"
        if getattr(self._session.exchange, "ensure_user_data_stream_ws_subscribe_signature", None) is not None and (
            "spot" not in (getattr(client, "subscriptions", None) or {})
        ):
            return "the venue ended the user-data subscription"
        return ""

    def _subscription_end(self, client: Any) -> asyncio.Future[Any] | None:
        """A future that settles when the venue ends the user-data subscription (None: no such signal).

        ccxt.pro (Binance spot) rejects the future registered under the account type ("spot") on
        ``eventStreamTerminated`` and on a refused subscription, and never resolves it; an end it
        handles while no such future is pending is kept and handed to the next one. Holding it
        pending for the whole session catches the end even after a watch started since has
        subscribed again (:meth:`_session_lost` then sees the subscription record back).
        """
        if client is None or getattr(self._session.exchange, "ensure_user_data_stream_ws_subscribe_signature",
                                     None) is None:
            return None
        future = getattr(client, "future", None)
        if not callable(future):
            return None
        end: asyncio.Future[Any] = future("spot")
        return end

    async def _await_user_ready(self) -> None:
        """Wait until the user-data subscription is confirmed (Binance spot); else return at once."""
        ensure = getattr(self._session.exchange, "ensure_user_data_stream_ws_subscribe_signature", None)
        if ensure is not None:
            await ensure("spot")

    def _arm(self, key: str) -> asyncio.Task[Any]:
        ex = self._session.exchange
        coro = ex.watch_orders() if key == "orders" else ex.watch_my_trades()
        return asyncio.ensure_future(coro)

    # -- the engine ------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug here must not end updates silently: end the subscribers' streams, so they
            # subscribe again (which starts a new engine) and the reconciler covers the gap.
            self._log.error("ccxt_venue.engine_crashed", error=repr(exc))
            self._fanout.end_all()
        finally:
            self.connected = False

    async def _loop(self) -> None:
        cfg = self._session.config
        await self._venue_started.wait()
        now = self._clock.now_ms()
        for sym in self._session.symbols:
            self._tracker.fill_cursor.setdefault(sym, now - _FIRST_POLL_LOOKBACK_MS)
        if not self._stream_supported():
            self._log.warning("ccxt_venue.user_stream_unavailable", polling_every_s=cfg.poll_interval_s)
            while True:
                await self._poll_safe("no_stream")
                await asyncio.sleep(cfg.poll_interval_s)
        backoff = reconnect_backoff(cfg, rng=self._rng, clock=self._monotonic)
        first = True
        while True:
            await self._wait_out_credentials_refusal()
            reason = await self._session_once(backoff, first)
            first = False
            self.connected = False
            self.reconnects["user"] += 1
            await close_ws_clients(self._session.exchange, self._user_ws_clients())
            delay = backoff.next_delay()
            # An idle timeout is routine on a quiet account; anything else is worth a warning.
            log = self._log.info if reason.startswith("stall:") else self._log.warning
            log("ccxt_venue.user_stream_down", reason=reason, redial_in_s=round(delay, 3), attempt=backoff.attempt)
            await self._poll_while_down(delay)

    async def _wait_out_credentials_refusal(self) -> None:
        """While the venue refuses our credentials, wait for the pause to end instead of re-dialling."""
        guard, breaker = self._rest.credentials, self._rest.rest_breaker
        while guard.refused is not None:
            remaining = breaker.snapshot().open_remaining_s
            if remaining is None or remaining <= 0:
                return  # the pause is over: this dial is the trial
            await asyncio.sleep(remaining)

    def _note_failure(self, exc: BaseException) -> None:
        """A refusal of our credentials by the user-data stream pauses the venue like a REST one."""
        self._rest.credentials.note(exc, "user_stream")

    async def _session_once(self, backoff: Backoff, first: bool) -> str:
        """One connection of the user-data stream; returns why it ended."""
        cfg = self._session.config
        is_a = self._session.is_a
        now = self._monotonic
        watches: dict[str, asyncio.Task[Any]] = {}
        wake: asyncio.Task[Any] | None = None
        ended: asyncio.Future[Any] | None = None
        try:
            watches = {"trades": self._arm("trades"), "orders": self._arm("orders")}
            await asyncio.wait_for(self._await_user_ready(), cfg.dial_timeout_s)
            clients = self._user_ws_clients()
            session_client = clients[0] if len(clients) == 1 else None
            ended = self._subscription_end(session_client)
            self.connected = True
            backoff.connected()
            self.last_message_at = now()
            self._log.info("ccxt_venue.user_stream_up", reconnect=not first)
            poll_pending = not await self._poll_safe("connect" if first else "reconnect")
            next_poll = now() + cfg.poll_interval_s
            settle_at: float | None = now()
            while True:
                if self._rest.order_breaker.latched:
                    poll_pending = True
                idle_left = cfg.user_stream_idle_timeout_s - (now() - (self.last_message_at or 0.0))
                timeout = max(0.0, idle_left)
                if poll_pending:
                    timeout = min(timeout, max(0.0, next_poll - now()))
                if settle_at is not None:
                    timeout = min(timeout, max(0.0, settle_at - now()))
                if wake is None or wake.done():
                    self._resync_wanted.clear()
                    wake = asyncio.ensure_future(self._resync_wanted.wait())
                waits: list[asyncio.Future[Any]] = [*watches.values(), wake]
                if ended is not None:
                    waits.append(ended)
                done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for key in ("trades", "orders"):
                    task = watches[key]
                    if task in done:
                        result = task.result()  # raises the stream's error
                        self.last_message_at = now()
                        if key == "trades":
                            await self._on_trades(result)
                        else:
                            self._on_orders(result)
                        settle_at = now() + _SETTLE_S
                lost = self._session_lost(session_client) or _ended(ended)
                if lost:
                    # Re-arming a watch now would quietly re-dial or subscribe again, and whatever
                    # happened in between would never be polled: end the session like any drop.
                    raise _StreamTerminated(lost)
                for key in ("trades", "orders"):
                    if watches[key] in done:
                        watches[key] = self._arm(key)
                if wake in done:
                    poll_pending = True
                    next_poll = now()
                if settle_at is not None and not done and now() >= settle_at:
                    settle_at = None
                    await self._drain_caches()
                backoff.reset_if_stable()
                if not done and now() - (self.last_message_at or 0.0) >= cfg.user_stream_idle_timeout_s:
                    raise _StreamStalled(f"no user-data message for {cfg.user_stream_idle_timeout_s}s")
                if poll_pending and now() >= next_poll:
                    poll_pending = not await self._poll_safe("retry")
                    next_poll = now() + cfg.poll_interval_s
        except asyncio.CancelledError:
            if current_task_cancelling():
                raise
            return "client closed"
        except _StreamStalled as exc:
            self.stalls += 1
            return f"stall: {exc}"
        except _StreamTerminated as exc:
            return f"terminated: {exc}"
        except TimeoutError:
            self.stalls += 1
            return f"subscription not confirmed within {cfg.dial_timeout_s}s"
        except KeyError as exc:
            # ccxt's failed-subscribe quirk: the real error is the exception's context.
            cause = exc.__context__
            if cause is not None and is_a(cause, "InvalidNonce"):
                with contextlib.suppress(Exception):
                    await self._rest.resync_time("user_stream")
            if cause is not None:
                self._note_failure(cause)
            return f"subscription failed: {cause!r}"
        except Exception as exc:
            self._note_failure(exc)
            if is_a(exc, "InvalidNonce"):
                with contextlib.suppress(Exception):
                    await self._rest.resync_time("user_stream")
            return repr(exc)[:300]
        finally:
            if ended is not None:
                if not ended.done():
                    ended.cancel()  # ccxt replaces a cancelled future; a rejection of it later would go unread
                elif not ended.cancelled():
                    ended.exception()  # rejected with the client's close: the watches carry that error
            pending = [t for t in (*watches.values(), wake) if t is not None and not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                # asyncio.wait neither raises the tasks' errors nor swallows our own cancellation.
                await asyncio.wait(pending)
            for task in watches.values():  # consume results/errors nobody will read
                if task.done() and not task.cancelled():
                    task.exception()

    # -- REST polls ------------------------------------------------------------------------------
    async def _poll_while_down(self, delay_s: float) -> None:
        """Poll REST now and every ``poll_interval_s`` until ``delay_s`` has passed."""
        deadline = self._monotonic() + delay_s
        while True:
            await self._poll_safe("stream_down")
            left = deadline - self._monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, self._session.config.poll_interval_s))
            if self._monotonic() >= deadline:
                return

    async def _poll_safe(self, why: str) -> bool:
        """One REST poll; True when complete. Errors are logged here and counted."""
        order_breaker = self._rest.order_breaker
        latched_before = order_breaker.latched
        try:
            await self._poll(why)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.poll_failures += 1
            if not isinstance(exc, VenueAuthenticationError):  # that one was logged once, when it began
                self._log.warning("ccxt_venue.poll_failed", why=why, error=repr(exc)[:300])
            return False
        if latched_before and order_breaker.latched:
            self._rest.reset_order_breaker("venue state re-read over REST")
        return True

    async def _poll(self, why: str) -> None:
        """Re-read open orders, tracked orders that left the open list, and fills since the last seen."""
        orders, tracker, markets = self._orders, self._tracker, self._session.markets
        self.polls += 1
        vos = await orders.open_orders()
        open_ids = set()
        for vo in vos:
            open_ids.add(vo.client_order_id)
            tracker.emit_order(vo)
        for coid, symbol in tracker.unsettled(open_ids, _QUERIES_PER_POLL):
            found = await orders.fetch_by_client_id(coid, symbol)
            if found is not None:
                tracker.emit_order(found)
        for sym in orders.fill_symbols():
            if sym not in markets:
                continue
            since = tracker.fill_cursor.get(sym, self._clock.now_ms() - _FIRST_POLL_LOOKBACK_MS) - _FILL_OVERLAP_MS
            for f in await orders.fills_of(sym, since):
                tracker.emit_fill(f)

    # -- stream reports --------------------------------------------------------------------------
    def _known_bad(self, key: tuple[Any, ...]) -> bool:
        """True if this exact structure was already judged malformed (and counted); else remember it."""
        if key in self._malformed_seen:
            return True
        self._malformed_seen[key] = None
        trim_oldest(self._malformed_seen, TRACK_MAX)
        return False

    async def _on_trades(self, result: Any, *, where: str = "watch_my_trades") -> None:
        session, tracker = self._session, self._tracker
        for raw in result or ():
            if not isinstance(raw, Mapping):
                session.malformed.count("not_an_object", where=where, item=repr(raw)[:200])
                continue
            key = ("trade", raw.get("symbol"), raw.get("id"))
            if tracker.fill_seen(f"{raw.get('symbol')}:{raw.get('id')}") or key in self._malformed_seen:
                if where == "watch_my_trades":
                    tracker.duplicate_fills += 1
                continue
            try:
                coid = await self._orders.resolve_coid(raw)
            except VenueUnavailable as exc:
                tracker.unresolved_fills += 1
                self._log.warning("ccxt_venue.fill_unresolved", where=where, error=str(exc))
                continue
            if not coid:
                tracker.unresolved_fills += 1
                self._log.warning("ccxt_venue.fill_unresolved", where=where, trade_id=str(raw.get("id")),
                                  order_id=normalize.trade_order_id(raw), symbol=str(raw.get("symbol")))
                continue
            try:
                f = normalize.fill(session.name, raw, session.markets, coid)
            except normalize.Malformed as exc:
                if not self._known_bad(key):
                    session.malformed.count(exc.reason, where=where, detail=exc.detail, trade=_excerpt(raw))
                continue
            tracker.emit_fill(f)

    def _on_orders(self, result: Any, *, where: str = "watch_orders") -> None:
        session = self._session
        count = where == "watch_orders"
        for raw in result or ():
            if not isinstance(raw, Mapping):
                session.malformed.count("not_an_object", where=where, item=repr(raw)[:200])
                continue
            try:
                vo = normalize.venue_order(session.name, raw, session.markets)
            except normalize.Malformed as exc:
                key = ("order", raw.get("symbol"), raw.get("id"), raw.get("status"), raw.get("filled"),
                       raw.get("amount"))
                if not self._known_bad(key):
                    session.malformed.count(exc.reason, where=where, detail=exc.detail, report=_excerpt(raw))
                continue
            self._tracker.emit_order(vo, count=count)

    async def _drain_caches(self) -> None:
        """Hand out what ccxt cached while no watch was pending (see the module doc)."""
        ex = self._session.exchange
        trades = getattr(ex, "myTrades", None)
        orders = getattr(ex, "orders", None)
        if trades:
            await self._on_trades(_tail(trades, _DRAIN_TAIL), where="cache")
        if orders:
            self._on_orders(_tail(orders, _DRAIN_TAIL), where="cache")


def _ended(end: asyncio.Future[Any] | None) -> str:
    """Why the subscription ended, if ``end`` (see ``UserStreamEngine._subscription_end``) settled; else ""."""
    if end is None or not end.done():
        return ""
    if not end.cancelled():
        end.exception()  # read: ccxt's error says no more than the reason below
    return "the venue ended the user-data subscription"


def _tail(cache: Any, n: int) -> list[Any]:
    """The last ``n`` items of a ccxt cache (oldest first)."""
    out: list[Any] = []
    with contextlib.suppress(Exception):
        for item in reversed(cache):
            out.append(item)
            if len(out) >= n:
                break
    out.reverse()
    return out


def _excerpt(raw: Mapping[str, Any]) -> str:
    info = raw.get("info")
    return repr(info if info is not None else raw)[:300]
