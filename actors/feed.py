"""The feed actor: market data from a source to bar builders and subscribers.

For every event from the source, in order:

1. ``recv_ns`` is stamped if the source did not (sources stamp it when they hand the event
   over); events of symbols outside ``feed.symbols`` are counted and dropped;
2. per-symbol freshness and counters are updated (``snapshot()``);
3. bar builders run: trades (or quote mids, ``feed.bars_from``) into bars of every
   ``feed.timeframes``; bars from a candle source pass through for their own timeframe and
   are resampled into longer ones;
4. bars closed by the event are published first (they are older), then the event itself.

Each subscriber (one per strategy) gets two channels:

- ``market``: trades and quotes, policy ``conflate`` keyed by (symbol, event type): a slow
  subscriber sees the latest trade and the latest quote per symbol, never a backlog;
- ``bars``: policy ``block``. Bars are never dropped: when a subscriber's bar channel is
  full the feed waits (backpressure on the whole feed — a bar per timeframe and symbol is
  rare, so a full bar channel means a strategy is far behind; ``pending_work`` reports the
  wait so the watchdog sees it).

When a finite source ends, open bars are flushed (the last, possibly partial, bar of each
builder is published) and then, per ``feed.on_end``: ``idle`` keeps the actor alive (data
goes stale in wall time), ``stop`` closes every subscriber's channels and ends the actor.

A source that can hand out batches (``BatchSource``: a replay at full speed) is read a
batch at a time, with the same steps for each event; in a ``QuoteRun`` the quotes between
two bar boundaries update freshness, counters and open bars in bulk, and taps that are all
registered latest-only (``add_tap``) see only the last quote of such a stretch.

The source is not closed by this actor (it is resumable across supervisor restarts); the
owner closes it at shutdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import msgspec

from actors.bars import BarBuilder, BarResampler, parse_timeframe
from actors.feed_state import FeedSnapshot, SymbolState
from actors.kernel.actor import Actor
from actors.kernel.channel import Channel, ChannelClosed, OverflowPolicy
from actors.kernel.clock import perf_ns
from actors.model.market import Bar, BookDelta, BookSnapshot, MarketEvent, Quote, Trade
from actors.ports.market_data import MarketDataSource
from config.schema.market import FeedSection

MarketData = Trade | Quote


@runtime_checkable
class BatchSource(Protocol):
    """A market-data source that can also hand out its events in batches (a replay at full speed).

    ``event_batches`` yields the same events, in the same order, as ``events()`` would, a
    list at a time; it is resumable like ``events()`` (a new call continues after the last
    batch handed out). A batch is handed over as a whole: the feed keeps what it could not
    handle of one (see ``Feed._pump_batch``). Sources yield to the loop between batches.
    """

    def event_batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        """Yield lists of events in order; ends when the source is exhausted."""
        ...


def market_key(event: MarketData) -> Hashable:
    """Conflation key of the market channel: (symbol, event type)."""
    return (event.symbol, type(event))


class _SymbolPath:
    """Everything the per-event loop needs for one symbol, behind a single dict lookup.

    Updated in place when subscriptions change, so the loop never re-reads the route maps.
    """

    __slots__ = ("quote_builders", "quote_routes", "state", "trade_builders", "trade_routes")

    def __init__(self, state: SymbolState, trade_builders: tuple[BarBuilder, ...],
                 quote_builders: tuple[BarBuilder, ...]) -> None:
        self.state = state
        self.trade_builders = trade_builders
        self.quote_builders = quote_builders
        self.trade_routes: tuple[Channel[MarketData], ...] = ()
        self.quote_routes: tuple[Channel[MarketData], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class FeedSubscription:
    """One subscriber's view: what it receives and the channels it reads."""

    name: str
    symbols: frozenset[str]
    timeframes: frozenset[str]
    trades: bool
    quotes: bool
    market: Channel[MarketData]
    bars: Channel[Bar]


class QuoteRun(list[Quote]):
    """A batch of two-sided quotes (bid > 0, ask > 0) of one symbol in time order (non-decreasing ``ts_ms``).

    A ``BatchSource`` that knows this of a batch hands it out as a QuoteRun, so the feed can
    take the quotes inside a bar in bulk (``Feed._pump_quote_run``). Every quote carries
    its ``recv_ns``; ``ts_ms`` are the quotes' timestamps, in the same order.
    """

    __slots__ = ("symbol", "ts_ms")

    def __init__(self, symbol: str, quotes: Iterable[Quote], ts_ms: Sequence[int]) -> None:
        super().__init__(quotes)
        self.symbol = symbol
        self.ts_ms = ts_ms


class Feed(Actor):
    """Reads a MarketDataSource, builds bars and publishes to subscribers."""

    kind = "feed"

    def __init__(self, feed: FeedSection, source: MarketDataSource, *, name: str = "feed",
                 market_capacity: int = 1024, bar_capacity: int = 1024) -> None:
        super().__init__(name)
        self.feed = feed
        self.source = source
        self.market_capacity = market_capacity
        self.bar_capacity = bar_capacity
        self.symbols = tuple(feed.symbols)
        self.timeframes = tuple(feed.timeframes)
        for tf in self.timeframes:
            parse_timeframe(tf)
        mode = feed.bars_from
        self._builders: dict[str, tuple[BarBuilder, ...]] = {
            s: tuple(BarBuilder(s, tf, grace_ms=feed.bar_grace_ms, mode=mode) for tf in self.timeframes)
            for s in self.symbols
        }
        empty: tuple[BarBuilder, ...] = ()
        self._trade_builders = {s: (b if mode == "trades" else empty) for s, b in self._builders.items()}
        self._quote_builders = {s: (b if mode == "mid" else empty) for s, b in self._builders.items()}
        self._resamplers: dict[tuple[str, str], tuple[BarResampler, ...]] = {}
        self._states = {s: SymbolState() for s in self.symbols}
        self._subs: dict[str, FeedSubscription] = {}
        self._trade_routes: dict[str, tuple[Channel[MarketData], ...]] = {}
        self._quote_routes: dict[str, tuple[Channel[MarketData], ...]] = {}
        self._bar_routes: dict[tuple[str, str], tuple[Channel[Bar], ...]] = {}
        self._paths = {
            s: _SymbolPath(self._states[s], self._trade_builders[s], self._quote_builders[s]) for s in self.symbols
        }
        self._rebuild_routes()
        self._feed_ms = -1
        #: Timestamp of the first event the feed accepted (-1 before it).
        self.first_event_ms = -1
        self._events = 0
        # Events of a batch that a failed run did not get to (handed out, not yet handled).
        self._carry: tuple[MarketEvent, ...] = ()
        self._unknown = 0
        self._bars_published = 0
        self._blocked = 0
        self._ended = False
        self._idle = asyncio.Event()
        # Synchronous observers of every event, before bars are published: the paper
        # venue matches on them and the risk gate keeps reference prices. They see every
        # event (no conflation) and must be cheap. ``_latest_only``: every tap is; ``_guards``:
        # their ``quiet`` conditions (``add_tap``).
        self._taps: tuple[Callable[[MarketEvent], None], ...] = ()
        self._latest_only = True
        self._guards: tuple[Callable[[str], bool], ...] = ()
        # Set by the composition root once start-up reconciliation is done: no market data
        # reaches strategies before our view of orders and balances matches the venue's.
        self.start_gate: asyncio.Event | None = None
        # Awaited after bars were published, instead of a single yield to the loop. A
        # composition root can hold the feed here until subscribers, and the orders they
        # set off, have acted on the bars (a lockstep replay, like a backtest engine).
        self.after_bars: Callable[[], Awaitable[None]] | None = None

    def add_tap(self, tap: Callable[[MarketEvent], None], *, latest_only: bool = False,
                quiet: Callable[[str], bool] | None = None) -> None:
        """Call ``tap(event)`` for every market event, before bars and subscribers.

        ``latest_only`` declares that what the tap keeps after a stretch of two-sided quotes
        of one symbol is what it keeps after the stretch's last quote alone, while
        ``quiet(symbol)`` (if given) holds at the stretch's start. Then, when every tap is
        latest-only and every ``quiet`` holds, the taps see only the last quote of a
        ``QuoteRun`` stretch without a bar boundary (``_pump_quote_run``): nothing else runs
        during a stretch (no await), so only its end can be observed. Otherwise they see
        every quote. Raises ValueError for a ``quiet`` without ``latest_only``.
        """
        if quiet is not None and not latest_only:
            raise ValueError("feed: a tap's quiet guard only applies to a latest-only tap")
        self._taps = (*self._taps, tap)
        self._latest_only = self._latest_only and latest_only
        if quiet is not None:
            self._guards = (*self._guards, quiet)

    # -- subscriptions -----------------------------------------------------------------
    def subscribe(self, name: str, *, symbols: Iterable[str], timeframes: Iterable[str] = (), trades: bool = False,
                  quotes: bool = False, market_capacity: int | None = None,
                  bar_capacity: int | None = None) -> FeedSubscription:
        """Create ``name``'s channels for ``symbols``: bars of ``timeframes``, trades and/or quotes.

        Raises ValueError for an unknown symbol or a timeframe the feed does not build.
        """
        if name in self._subs:
            raise ValueError(f"feed: subscriber {name!r} already exists")
        syms = frozenset(symbols)
        tfs = frozenset(timeframes)
        unknown = sorted(syms - set(self.symbols))
        if unknown:
            raise ValueError(f"feed: subscriber {name!r}: symbols {unknown} are not in feed.symbols")
        missing = sorted(tfs - set(self.timeframes))
        if missing:
            raise ValueError(
                f"feed: subscriber {name!r}: timeframes {missing} are not built (feed.timeframes = "
                f"{list(self.timeframes)})"
            )
        market: Channel[MarketData] = Channel(
            f"md.{name}", market_capacity or self.market_capacity, OverflowPolicy.CONFLATE, key=market_key
        )
        bars: Channel[Bar] = Channel(f"bars.{name}", bar_capacity or self.bar_capacity, OverflowPolicy.BLOCK)
        sub = FeedSubscription(name, syms, tfs, trades, quotes, market, bars)
        self._subs[name] = sub
        self._rebuild_routes()
        return sub

    def unsubscribe(self, name: str) -> None:
        """Stop publishing to ``name`` and close its channels (its reader then drains and ends)."""
        sub = self._subs.pop(name, None)
        if sub is None:
            return
        self._rebuild_routes()
        sub.market.close()
        sub.bars.close()

    def _rebuild_routes(self) -> None:
        subs = list(self._subs.values())
        self._trade_routes = {s: tuple(x.market for x in subs if x.trades and s in x.symbols) for s in self.symbols}
        self._quote_routes = {s: tuple(x.market for x in subs if x.quotes and s in x.symbols) for s in self.symbols}
        for s, path in self._paths.items():
            path.trade_routes = self._trade_routes[s]
            path.quote_routes = self._quote_routes[s]
        self._bar_routes = {
            (s, tf): tuple(x.bars for x in subs if s in x.symbols and tf in x.timeframes)
            for s in self.symbols
            for tf in self.timeframes
        }

    def _drop_closed(self, channel: Channel[Any]) -> None:
        for name, sub in list(self._subs.items()):
            if sub.market is channel or sub.bars is channel:
                self.log.warning("feed.subscriber_channel_closed", subscriber=name, channel=channel.name)
                self.unsubscribe(name)

    # -- state ---------------------------------------------------------------------------
    def pending_work(self) -> int:
        """1 while the feed waits for room in a subscriber's bar channel, else 0."""
        return self._blocked

    def data_age_s(self, symbol: str) -> float | None:
        """Age in seconds of ``symbol``'s last event (the larger of feed-time and wall-clock age).

        None when the symbol is unknown or has seen no event yet. Cheap: the risk gate calls
        it for every intent.
        """
        st = self._states.get(symbol)
        if st is None or st.last_recv_ns == 0:
            return None
        wall = (perf_ns() - st.last_recv_ns) / 1e9
        feed = (self._feed_ms - st.last_ts_ms) / 1000.0 if st.last_ts_ms >= 0 else 0.0
        return max(wall, feed)

    def snapshot(self) -> FeedSnapshot:
        """Immutable freshness and counters (cheap; for the risk gate, watchdog and admin)."""
        now = perf_ns()
        late: dict[str, int] = {s: sum(b.late_dropped for b in bs) for s, bs in self._builders.items()}
        limit = self.feed.stale_after_s
        return FeedSnapshot(
            taken_ns=now,
            source=self.source.name,
            live=self._feed_ms >= 0,
            ended=self._ended,
            feed_time_ms=self._feed_ms if self._feed_ms >= 0 else None,
            stale_after_s=limit,
            events=self._events,
            unknown_symbol=self._unknown,
            bars_published=self._bars_published,
            symbols=tuple(
                st.freeze(s, self._feed_ms, now, limit, late[s]) for s, st in self._states.items()
            ),
            source_stats=self.source.stats(),
        )

    # -- publishing ----------------------------------------------------------------------
    async def _publish_bars(self, bars: tuple[Bar, ...]) -> None:
        for bar in bars:
            self._bars_published += 1
            st = self._states.get(bar.symbol)
            if st is not None:
                st.bars += 1
            for ch in self._bar_routes.get((bar.symbol, bar.timeframe), ()):
                try:
                    if not ch.try_send(bar):
                        self._blocked = 1
                        try:
                            await ch.send(bar)
                        finally:
                            self._blocked = 0
                except ChannelClosed:
                    self._drop_closed(ch)
        # Let subscribers act on the bar before more data is pumped (a fast replay would
        # otherwise run far ahead of the order path's answers). Bars are rare: cheap.
        after = self.after_bars
        if after is None:
            await asyncio.sleep(0)
        else:
            await after()

    def _send_market(self, routes: tuple[Channel[MarketData], ...], event: MarketData) -> None:
        for ch in routes:
            try:
                ch.try_send(event)
            except ChannelClosed:
                self._drop_closed(ch)

    def _resamplers_for(self, symbol: str, source_tf: str) -> tuple[BarResampler, ...]:
        key = (symbol, source_tf)
        rs = self._resamplers.get(key)
        if rs is None:
            src_ms = parse_timeframe(source_tf)
            rs = tuple(
                BarResampler(symbol, source_tf, tf)
                for tf in self.timeframes
                if parse_timeframe(tf) > src_ms and parse_timeframe(tf) % src_ms == 0
            )
            self._resamplers[key] = rs
        return rs

    async def _on_bar_in(self, bar: Bar) -> None:
        if bar.timeframe in self.timeframes:
            await self._publish_bars((bar,))
        for r in self._resamplers_for(bar.symbol, bar.timeframe):
            out = r.on_bar(bar)
            if out:
                await self._publish_bars(out)

    async def _flush_all(self) -> None:
        ns = perf_ns()
        for builders in self._builders.values():
            for b in builders:
                out = b.flush_all(ns)
                if out:
                    await self._publish_bars(out)
        for rs in self._resamplers.values():
            for r in rs:
                out = r.flush_all(ns)
                if out:
                    await self._publish_bars(out)

    # -- main loop -----------------------------------------------------------------------
    async def run(self) -> None:
        """Pump the source until it ends (then flush and idle or stop, per feed.on_end).

        A source that hands out events in batches (``BatchSource``) is pumped batch by batch
        (``_pump_batch``), any other one event by event; both do the same for each event.
        Progress (``beat``) is recorded once per batch, or once per 256 events and at least
        once per millisecond of event arrival time, rather than per event.
        """
        if self.start_gate is not None and not self.start_gate.is_set():
            self.log.info("feed.waiting_for_start_gate")
            await self.start_gate.wait()
        source = self.source
        if isinstance(source, BatchSource):
            carry, self._carry = self._carry, ()
            if carry:  # what a failed run left of its batch: the source already handed it out
                await self._pump_batch(carry)
            async for batch in source.event_batches():
                if type(batch) is QuoteRun:
                    await self._pump_quote_run(batch)
                else:
                    await self._pump_batch(batch)
        else:
            await self._pump_events()
        await self._flush_all()
        self._ended = True
        self.log.info("feed.source_ended", events=self._events, on_end=self.feed.on_end)
        if self.feed.on_end == "stop":
            for name in list(self._subs):
                self.unsubscribe(name)
            return
        await self._idle.wait()

    async def _pump_events(self) -> None:
        """Handle the source's events one by one until it ends."""
        paths = self._paths
        perf = perf_ns
        publish = self._publish_bars
        send = self._send_market
        ev: MarketEvent
        taps = self._taps
        n = 0
        beat_ns = 0
        async for ev in self.source.events():
            recv_ns = ev.recv_ns
            if recv_ns == 0:
                recv_ns = perf()
                ev = msgspec.structs.replace(ev, recv_ns=recv_ns)
            path = paths.get(ev.symbol)
            if path is None:
                self._unknown += 1
                continue
            st = path.state
            ts = ev.ts_ms
            if ts > st.last_ts_ms:
                st.last_ts_ms = ts
                if ts > self._feed_ms:
                    if self._feed_ms < 0:
                        self.first_event_ms = ts
                    self._feed_ms = ts
            st.last_recv_ns = recv_ns
            self._events += 1
            for tap in taps:
                tap(ev)
            cls = type(ev)
            if cls is Quote:
                st.quotes += 1
                builders = path.quote_builders
                if builders:
                    mid = (ev.bid + ev.ask) / 2.0  # type: ignore[attr-defined]
                    for b in builders:
                        bars = b.update(ts, mid, 0.0, recv_ns)
                        if bars:
                            await publish(bars)
                routes = path.quote_routes
                if routes:
                    send(routes, ev)  # type: ignore[arg-type]
            elif cls is Trade:
                st.trades += 1
                for b in path.trade_builders:
                    bars = b.update(ts, ev.price, ev.size, recv_ns)  # type: ignore[attr-defined]
                    if bars:
                        await publish(bars)
                routes = path.trade_routes
                if routes:
                    send(routes, ev)  # type: ignore[arg-type]
            elif cls is Bar:
                await self._on_bar_in(ev)  # type: ignore[arg-type]
            elif cls is BookSnapshot or cls is BookDelta:
                st.books += 1
            n += 1
            if n >= 256 or recv_ns - beat_ns > 1_000_000:
                self.beat(n)
                n = 0
                beat_ns = recv_ns
        if n:
            self.beat(n)

    async def _pump_batch(self, batch: Sequence[MarketEvent]) -> None:
        """Handle one batch of events: for each one exactly what ``_pump_events`` does.

        A separate loop, not a per-event call shared with ``_pump_events``: that call would
        cost more than the rest. If handling an event raises (or the feed is cancelled while
        it publishes), the events after it are handled first when the feed runs again.
        """
        paths = self._paths
        perf = perf_ns
        publish = self._publish_bars
        send = self._send_market
        taps = self._taps
        i = -1
        ev: MarketEvent
        try:
            for i, ev in enumerate(batch):  # noqa: B007 - ``i`` is read after the loop
                recv_ns = ev.recv_ns
                if recv_ns == 0:
                    recv_ns = perf()
                    ev = msgspec.structs.replace(ev, recv_ns=recv_ns)
                path = paths.get(ev.symbol)
                if path is None:
                    self._unknown += 1
                    continue
                st = path.state
                ts = ev.ts_ms
                if ts > st.last_ts_ms:
                    st.last_ts_ms = ts
                    if ts > self._feed_ms:
                        if self._feed_ms < 0:
                            self.first_event_ms = ts
                        self._feed_ms = ts
                st.last_recv_ns = recv_ns
                self._events += 1
                for tap in taps:
                    tap(ev)
                cls = type(ev)
                if cls is Quote:
                    st.quotes += 1
                    builders = path.quote_builders
                    if builders:
                        mid = (ev.bid + ev.ask) / 2.0  # type: ignore[attr-defined]
                        for b in builders:
                            bars = b.update(ts, mid, 0.0, recv_ns)
                            if bars:
                                await publish(bars)
                    routes = path.quote_routes
                    if routes:
                        send(routes, ev)  # type: ignore[arg-type]
                elif cls is Trade:
                    st.trades += 1
                    for b in path.trade_builders:
                        bars = b.update(ts, ev.price, ev.size, recv_ns)  # type: ignore[attr-defined]
                        if bars:
                            await publish(bars)
                    routes = path.trade_routes
                    if routes:
                        send(routes, ev)  # type: ignore[arg-type]
                elif cls is Bar:
                    await self._on_bar_in(ev)  # type: ignore[arg-type]
                elif cls is BookSnapshot or cls is BookDelta:
                    st.books += 1
        except BaseException:
            self._carry = tuple(batch[i + 1:])
            raise
        if i >= 0:
            self.beat(i + 1)

    async def _pump_quote_run(self, run: QuoteRun) -> None:
        """Handle a ``QuoteRun``: what ``_pump_batch`` does, with the quotes inside a bar taken in bulk.

        Between quotes that may open or close a bar (``BarBuilder.quiet_until``; those go
        through ``_pump_batch``) nothing is published or awaited, so freshness, counters and
        open bars take the quotes at once (``_take_run``), and the taps see either every
        quote, in order, or, when all are latest-only and quiet (``add_tap``), the last one.
        Quotes that a subscriber reads, or bars with a grace period: per event, the whole run.
        """
        symbol = run.symbol
        path = self._paths.get(symbol)
        builders = path.quote_builders if path is not None else ()
        if path is None or path.quote_routes or any(b.grace_ms for b in builders):
            await self._pump_batch(run)
            return
        taps = self._taps
        latest = self._latest_only and bool(taps)
        guards = self._guards
        ts = run.ts_ms
        n = len(run)
        mids = [(q.bid + q.ask) / 2.0 for q in run] if builders else []
        i = 0  # the next quote to handle
        k = -1  # the quote whose taps run, in a bulk stretch
        single = False  # quote i is going through ``_pump_batch``
        singles = 0
        try:
            while i < n:
                j = n
                for b in builders:
                    q = b.quiet_until(ts, i, n)
                    if q < j:
                        j = q
                if j > i:
                    if latest and all(quiet(symbol) for quiet in guards):
                        k = j - 1
                        ev = run[k]
                        for tap in taps:
                            tap(ev)
                    else:
                        for k in range(i, j):
                            ev = run[k]
                            for tap in taps:
                                tap(ev)
                    k = -1
                    self._take_run(path, run, mids, i, j, j)
                    i = j
                    continue
                single = True
                await self._pump_batch(run[i:i + 1])  # beats for it
                single = False
                singles += 1
                i += 1
        except BaseException:
            if k >= 0:
                # A tap raised on quote k (in a latest-only stretch, its last): the quotes
                # before it were handled; quote k was only counted as an event, as in ``_pump_batch``.
                self._take_run(path, run, mids, i, k + 1, k)
                self._carry = tuple(run[k + 1:])
            else:
                self._carry = tuple(run[i + 1:] if single else run[i:])
            raise
        self.beat(n - singles)

    def _take_run(self, path: _SymbolPath, run: QuoteRun, mids: list[float], start: int, counted: int,
                  built: int) -> None:
        """Book quotes ``start..counted-1`` in freshness and the event count, ``start..built-1`` in quotes and bars.

        (``_pump_batch`` counts an event before its taps run and a quote after them.)
        """
        if counted > start:
            st = path.state
            last = run[counted - 1]
            ts = last.ts_ms  # the newest: the run is in time order
            if ts > st.last_ts_ms:
                st.last_ts_ms = ts
                if ts > self._feed_ms:
                    if self._feed_ms < 0:
                        self.first_event_ms = run[start].ts_ms
                    self._feed_ms = ts
            st.last_recv_ns = last.recv_ns
            self._events += counted - start
        if built > start:
            path.state.quotes += built - start
            for b in path.quote_builders:
                b.add_run(run.ts_ms, mids, start, built)
