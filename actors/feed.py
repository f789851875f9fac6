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

The source is not closed by this actor (it is resumable across supervisor restarts); the
owner closes it at shutdown.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

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


class Feed(Actor):
    """Reads a MarketDataSource, builds bars and publishes to subscribers."""

    kind = "feed"

    def __init__(
        self,
        feed: FeedSection,
        source: MarketDataSource,
        *,
        name: str = "feed",
        market_capacity: int = 1024,
        bar_capacity: int = 1024,
    ) -> None:
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
        self._events = 0
        self._unknown = 0
        self._bars_published = 0
        self._blocked = 0
        self._ended = False
        self._idle = asyncio.Event()
        # Synchronous observers of every event, before bars are published: the paper
        # venue matches on them and the risk gate keeps reference prices. They see every
        # event (no conflation) and must be cheap.
        self._taps: tuple[Callable[[MarketEvent], None], ...] = ()
        # Set by the composition root once start-up reconciliation is done: no market data
        # reaches strategies before our view of orders and balances matches the venue's.
        self.start_gate: asyncio.Event | None = None
        # Awaited after bars were published, instead of a single yield to the loop. A
        # composition root can hold the feed here until subscribers, and the orders they
        # set off, have acted on the bars (a lockstep replay, like a backtest engine).
        self.after_bars: Callable[[], Awaitable[None]] | None = None

    def add_tap(self, tap: Callable[[MarketEvent], None]) -> None:
        """Call ``tap(event)`` for every market event, before bars and subscribers."""
        self._taps = (*self._taps, tap)

    # -- subscriptions -----------------------------------------------------------------
    def subscribe(
        self,
        name: str,
        *,
        symbols: Iterable[str],
        timeframes: Iterable[str] = (),
        trades: bool = False,
        quotes: bool = False,
        market_capacity: int | None = None,
        bar_capacity: int | None = None,
    ) -> FeedSubscription:
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

        Progress (``beat``) is recorded once per 256 events, and at least once per
        millisecond of event arrival time, rather than per event.
        """
        paths = self._paths
        perf = perf_ns
        publish = self._publish_bars
        send = self._send_market
        ev: MarketEvent
        if self.start_gate is not None and not self.start_gate.is_set():
            self.log.info("feed.waiting_for_start_gate")
            await self.start_gate.wait()
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
        await self._flush_all()
        self._ended = True
        self.log.info("feed.source_ended", events=self._events, on_end=self.feed.on_end)
        if self.feed.on_end == "stop":
            for name in list(self._subs):
                self.unsubscribe(name)
            return
        await self._idle.wait()
