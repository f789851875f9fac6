"""The whole trading pipeline, built from the real actors, for the replay and soak benches.

feed (quotes → 1m bars of the mid) → strategy host (EmaCross 10/20, fixed small size) →
risk gate (every check evaluated per intent; denials stored) → order manager (write-ahead
to a real SQLite store) → paper venue (its own SQLite account file; market orders fill at
the touch) → order events back through the event router to the strategy. Everything runs
under real ``Supervisor``s wired like ``daemon.app`` (order path ``rest_for_one``: order
manager, risk gate, router; then the strategy host; then the feed), on the daemon's event
loop (uvloop when installed), in a temporary directory.

Market data comes from a ``MarketDataSource``: ``QuoteWalkSource`` (a seeded random walk of
quotes, generated on the fly, so 10M events cost no memory) or a recorded quote file
(``adapters.market_data.quotes``). ``QuoteWalk.rows`` produces exactly the rows the source
replays, so ``write_quotes`` can hand the same input to another engine.

Lockstep (default): after publishing bars the feed awaits ``daemon.lockstep.Lockstep`` (the
feed's ``after_bars`` hook), which returns once the strategy host has handled them and the
strategy has no intent in flight — its order was written ahead, submitted, filled, and the
fill reported back — and the store's write-behind queue is committed. Like a backtest
engine, every signal is traded against the market of its bar and a run is deterministic
(same input, same orders). While it waits the loop is idle, as it would be live; without
lockstep a replay at full speed runs thousands of bars ahead of its own orders.

Tick-to-submit latency is measured by the order manager's ``on_submit`` hook: from the
``recv_ns`` of the market event that closed the bar behind an intent to the moment
``venue.submit`` is called, in a bounded log-bucket histogram.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import random
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from actors.event_router import EventRouter
from actors.feed import Feed
from actors.kernel.actor import Actor, ActorState
from actors.kernel.channel import Channel
from actors.kernel.clock import MarketClock
from actors.kernel.supervisor import Supervisor
from actors.model.market import MarketEvent, Quote
from actors.orders.order_manager import OrderManager
from actors.ports.market_data import MarketDataSource, SourceStats
from actors.risk.risk_gate import RiskGate
from actors.strategy_host import StrategyHost
from adapters.market_data.quotes import QuoteRow
from adapters.paper_venue import PaperVenue
from adapters.storage.store import Store
from config.schema.kernel import ChannelsSection, DaemonSection, SupervisorSection
from config.schema.market import FeedSection, StrategySection
from config.schema.root import AaitiConfig
from config.schema.trading import InstrumentSection, PaperVenueSection, RiskSection, VenueSection
from daemon.lockstep import Lockstep
from daemon.pipeline import Pipeline as BuiltPipeline
from daemon.pipeline import build_pipeline, market_clock_for, supervisor_policy

__all__ = [
    "LatencyHistogram",
    "Pipeline",
    "PipelineResult",
    "PipelineSettings",
    "QuoteWalk",
    "QuoteWalkSource",
    "configure_quiet_logging",
    "peak_rss_mb",
    "rss_mb",
]

_PAGE = os.sysconf("SC_PAGE_SIZE")


# -- memory ----------------------------------------------------------------------------------
def rss_mb() -> float:
    """Current resident set size of this process in MB (from /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (getrusage ru_maxrss, KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def configure_quiet_logging(level: int = logging.WARNING) -> None:
    """Drop log records below ``level`` before they are rendered (hot paths log nothing anyway)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(level))


# -- latency ---------------------------------------------------------------------------------
class LatencyHistogram:
    """Bounded histogram of nanosecond durations with ~1.6 % relative resolution.

    Values are bucketed by their bit length and the next 6 bits (64 sub-buckets per power
    of two), so memory is fixed (a list of 64 x 64 counts) however long it runs. A
    percentile is reported as the midpoint of its bucket.
    """

    __slots__ = ("_counts", "count", "max_ns", "min_ns", "total_ns")

    _SUB = 6

    def __init__(self) -> None:
        self._counts = [0] * (64 << self._SUB)
        self.count = 0
        self.total_ns = 0
        self.min_ns = 0
        self.max_ns = 0

    def _index(self, v: int) -> int:
        b = v.bit_length()
        if b <= self._SUB:
            return v
        return ((b - self._SUB) << self._SUB) | ((v >> (b - self._SUB - 1)) & ((1 << self._SUB) - 1))

    def _value(self, i: int) -> float:
        e, m = i >> self._SUB, i & ((1 << self._SUB) - 1)
        if e == 0:
            return float(m)
        lo = ((1 << self._SUB) | m) << (e - 1)
        return lo + (1 << (e - 1)) / 2.0

    def record(self, ns: int) -> None:
        """Add one duration (negative values count as 0)."""
        v = ns if ns > 0 else 0
        self._counts[self._index(v)] += 1
        if self.count == 0 or v < self.min_ns:
            self.min_ns = v
        if v > self.max_ns:
            self.max_ns = v
        self.count += 1
        self.total_ns += v

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile (0-100) in ns; 0.0 when empty."""
        if not self.count:
            return 0.0
        rank = max(1, -(-self.count * p // 100))
        seen = 0
        for i, c in enumerate(self._counts):
            seen += c
            if seen >= rank:
                return min(max(self._value(i), float(self.min_ns)), float(self.max_ns))
        return float(self.max_ns)


# -- market data -----------------------------------------------------------------------------
Block = tuple[list[int], list[float], list[float], list[float], list[float]]


class QuoteWalk:
    """A seeded random walk of top-of-book quotes on a price grid.

    The mid moves by -1, 0, 0 or +1 tick per quote; the spread is 1 or 2 ticks; sizes are
    0.01 .. 0.64. Prices are integer ticks divided by ``10**decimals``, so every price is the
    float nearest to a short decimal (it prints and round-trips as, e.g., ``100.01``).
    One ``random.Random(seed)`` drives everything: the same arguments give the same rows.
    """

    def __init__(self, *, seed: int = 7, start_price: float = 100.0, decimals: int = 2,
                 interval_ms: int = 500, start_ts_ms: int = 1_700_006_400_000) -> None:
        if start_price <= 0 or interval_ms < 1 or decimals < 0:
            raise ValueError("start_price and interval_ms must be > 0, decimals >= 0")
        self.seed = seed
        self.start_price = start_price
        self.decimals = decimals
        self.interval_ms = interval_ms
        self.start_ts_ms = start_ts_ms

    def blocks(self, n: int = 0, size: int = 256) -> Iterator[Block]:
        """Yield the first ``n`` rows (0 = endlessly) column-wise, ``size`` rows per block:
        (ts_ms, bid, ask, bid_size, ask_size) lists."""
        getrandbits = random.Random(self.seed).getrandbits
        scale = 10**self.decimals
        sizes = [(k + 1) / 100 for k in range(64)]
        mid = max(2, round(self.start_price * scale))
        ts = self.start_ts_ms
        step = self.interval_ms
        left = n
        while True:
            k = size if not n else min(size, left)
            if k <= 0:
                return
            left -= k
            bids = [0.0] * k
            asks = [0.0] * k
            bsz = [0.0] * k
            asz = [0.0] * k
            for j in range(k):
                r = getrandbits(20)
                move = r & 3
                if move == 0:
                    mid = mid - 1 if mid > 2 else mid + 1
                elif move == 3:
                    mid += 1
                bids[j] = (mid - 1) / scale
                asks[j] = (mid + ((r >> 2) & 1)) / scale
                bsz[j] = sizes[(r >> 3) & 63]
                asz[j] = sizes[(r >> 9) & 63]
            yield list(range(ts, ts + k * step, step)), bids, asks, bsz, asz
            ts += k * step

    def rows(self, n: int = 0) -> Iterator[QuoteRow]:
        """Yield ``n`` rows (0 = endlessly): (ts_ms, bid, ask, bid_size, ask_size)."""
        for block in self.blocks(n):
            yield from zip(*block, strict=True)


class QuoteWalkSource:
    """``QuoteWalk`` rows as ``Quote`` events of one symbol (a resumable ``MarketDataSource``).

    Ends after ``max_events`` (0 = never). Yields to the loop every 256 events, like the
    other sources at speed 0. ``recv_ns`` is stamped when each event is handed out.
    """

    def __init__(self, walk: QuoteWalk, symbol: str, *, max_events: int = 0, name: str = "quote-walk") -> None:
        self.name = name
        self.symbol = symbol
        self.symbols: tuple[str, ...] = (symbol,)
        self._blocks = walk.blocks(max_events)
        self._start_ts = walk.start_ts_ms
        self._block: Block = ([], [], [], [], [])
        self._pos = 0
        self._done = 0  # events of the blocks before the current one
        self._ended = False

    @property
    def start_ts_ms(self) -> int:
        """Market time of the first quote."""
        return self._start_ts

    def stats(self) -> SourceStats:
        """Counters of what was handed out."""
        events = self._done + self._pos
        return SourceStats(name=self.name, events=events, quotes=events, ended=self._ended)

    async def close(self) -> None:
        """Nothing to release."""

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Yield quotes from the current position on."""
        symbol = self.symbol
        perf = time.perf_counter_ns
        sleep = asyncio.sleep
        while not self._ended:
            ts_l, bids, asks, bsz, asz = self._block
            i = self._pos
            k = len(ts_l)
            if i >= k:
                nxt = next(self._blocks, None)
                if nxt is None:
                    self._ended = True
                    return
                self._done += k
                self._block, self._pos = nxt, 0
                await sleep(0)  # as fast as possible, but let other tasks run
                continue
            while i < k:
                ev = Quote(symbol=symbol, ts_ms=ts_l[i], recv_ns=perf(), bid=bids[i], ask=asks[i],
                           bid_size=bsz[i], ask_size=asz[i])
                i += 1
                self._pos = i  # resumable: the next call continues after this event
                yield ev


# -- the pipeline ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """What the bench pipeline trades and how its bounded structures are sized."""

    symbol: str = "BTC/USDT"
    base: str = "BTC"
    quote: str = "USDT"
    size: Decimal = Decimal("0.01")
    fast: int = 10
    slow: int = 20
    timeframe: str = "1m"
    initial_quote: Decimal = Decimal("1000000")
    venue_fsync: bool = True
    # Order manager memory windows (None: the order manager's defaults).
    dedup_window: int | None = None
    closed_order_window: int | None = None
    channel_capacity: int = 1024
    # Hold the feed after each bar until the strategy has handled it and has no intent in
    # flight (its orders filled and reported back), like a backtest engine: every cross
    # becomes an order and a run is deterministic. False: the feed runs free (a replay then
    # runs far ahead of the order path, whose round trips take wall-clock time).
    lockstep: bool = True
    lockstep_timeout_s: float = 5.0
    lockstep_flush: bool = True

    def instrument(self) -> InstrumentSection:
        """The traded instrument: fine tick and step so any recorded price scale works."""
        return InstrumentSection(base=self.base, quote=self.quote, tick_size=Decimal("0.00000001"),
                                 step_size=Decimal("0.00000001"), min_qty=Decimal("0.00000001"),
                                 max_qty=Decimal("1000000000"), min_notional=Decimal(0))

    def risk(self) -> RiskSection:
        """Real limits, wide enough that a healthy run is never denied (every check still runs)."""
        return RiskSection(
            max_order_notional=Decimal("1000000"), max_position=Decimal("1000000"),
            max_gross_exposure=Decimal("1000000000"), max_open_orders=100, max_orders_per_minute=10_000_000,
            price_collar_bps=500.0, stale_data_s=120.0, daily_loss_limit=Decimal("1000000"),
            max_drawdown_pct=50.0,
        )

    def config(self) -> AaitiConfig:
        """The daemon config this bench runs: one EmaCross on quote-mid bars, paper venue."""
        cap = self.channel_capacity
        return AaitiConfig(
            daemon=DaemonSection(order_drain_timeout_s=10.0),
            supervisor=SupervisorSection(max_restarts=3, period_s=5.0),
            channels=ChannelsSection(market_capacity=1024, intent_capacity=cap, order_capacity=cap,
                                     event_capacity=cap),
            feed=FeedSection(source="synthetic", symbols=(self.symbol,), timeframes=(self.timeframe,),
                             bars_from="mid", on_end="stop"),
            strategies=(StrategySection(
                name="ema", strategy="actors.strategies.ema_cross:EmaCross", symbols=(self.symbol,),
                timeframe=self.timeframe, params={"fast": self.fast, "slow": self.slow, "size": str(self.size)},
            ),),
            instruments={self.symbol: self.instrument()},
            risk=self.risk(),
            venue=VenueSection(kind="paper", name="paper", paper=PaperVenueSection(
                fsync=self.venue_fsync, initial_balances={self.quote: self.initial_quote, self.base: Decimal(0)},
            )),
        )


@dataclasses.dataclass(frozen=True)
class PipelineResult:
    """What one run did and how fast."""

    events: int
    seconds: float
    bars: int
    lockstep_timeouts: int
    intents: int
    orders: int
    fills: int
    denied: int
    rejected: int
    restarts: int
    latency: LatencyHistogram
    order_counts: dict[str, int]

    @property
    def events_per_s(self) -> float:
        """Market events per second over the whole run (feed start to order path settled)."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


Progress = Callable[[int], Awaitable[None] | None]


class Pipeline:
    """Builds, runs and tears down the full pipeline over one ``MarketDataSource``."""

    def __init__(self, source: MarketDataSource, settings: PipelineSettings | None = None,
                 workdir: Path | None = None) -> None:
        self.source = source
        self.settings = settings or PipelineSettings()
        self._workdir = workdir
        self.latency = LatencyHistogram()
        self.feed: Feed | None = None
        self.host: StrategyHost | None = None
        self.gate: RiskGate | None = None
        self.om: OrderManager | None = None
        self.router: EventRouter | None = None
        self.venue: PaperVenue | None = None
        self.store: Store | None = None
        self.root: Supervisor | None = None
        self.built: BuiltPipeline | None = None
        self.channels: list[Channel[Any]] = []
        self.lockstep: Lockstep | None = None

    def _on_submit(self, origin_ns: int) -> None:
        if origin_ns:
            self.latency.record(time.perf_counter_ns() - origin_ns)

    def _build(self, store: Store, venue: PaperVenue, clock: MarketClock) -> Supervisor:
        """The daemon's own pipeline (``daemon.pipeline.build_pipeline``) plus the lockstep hook."""
        s = self.settings
        om_kw: dict[str, Any] = {}
        if s.dedup_window is not None:
            om_kw["dedup_window"] = s.dedup_window
        if s.closed_order_window is not None:
            om_kw["closed_order_window"] = s.closed_order_window
        cfg = s.config()
        built = build_pipeline(cfg, store=store, venue=venue, source=self.source, clock=clock,
                               on_submit=self._on_submit, order_manager_options=om_kw, lockstep=s.lockstep)
        self.lockstep = built.lockstep
        if self.lockstep is not None:
            self.lockstep.timeout_s = s.lockstep_timeout_s
            self.lockstep.flush = s.lockstep_flush
        self.built = built
        self.feed, self.host, self.gate, self.om, self.router = (
            built.feed, built.hosts["ema"], built.risk_gate, built.order_manager, built.router)
        self.channels = [built.intents, built.commands, built.events, built.strategy_events["ema"]]
        return Supervisor("root", built.children(), supervisor_policy(cfg.supervisor))

    async def run(self, *, progress: Progress | None = None, progress_every: int = 1_000_000,
                  settle_timeout_s: float = 5.0) -> PipelineResult:
        """Run until the source ends and the order path has settled; tear everything down.

        ``progress(events)`` is called (from a monitor task, every ~50 ms of checking) each
        time another ``progress_every`` events went through the feed, and once more with the
        final count when the order path has settled (before anything is torn down) unless
        that count was just reported.
        """
        if self._workdir is not None:
            return await self._run_in(self._workdir, progress, progress_every, settle_timeout_s)
        with tempfile.TemporaryDirectory(prefix="aaiti-bench-") as tmp:
            return await self._run_in(Path(tmp), progress, progress_every, settle_timeout_s)

    async def _run_in(self, tmp: Path, progress: Progress | None, progress_every: int,
                      settle_timeout_s: float) -> PipelineResult:
        s = self.settings
        clock = market_clock_for(self.source)
        venue = PaperVenue(tmp / "paper-venue.db", PaperVenueSection(
            fsync=s.venue_fsync, initial_balances={s.quote: s.initial_quote, s.base: Decimal(0)},
        ), {s.symbol: s.instrument()}, clock=clock)
        await venue.start()
        store = await Store.open(tmp / "state.db")
        self.venue, self.store = venue, store
        root = self._build(store, venue, clock)
        self.root = root
        feed, host, om, gate = self.feed, self.host, self.om, self.gate
        assert feed is not None and host is not None and om is not None and gate is not None
        assert feed.start_gate is not None
        root_task = asyncio.create_task(root.main(), name="bench-root")
        try:
            assert self.built is not None
            await asyncio.wait_for(self.built.reconciler.ready.wait(), 30)
            t0 = time.perf_counter()
            feed.start_gate.set()
            next_mark = progress_every
            while not (feed.state is ActorState.STOPPED and host.state is ActorState.STOPPED
                       and feed.snapshot().ended):
                if root_task.done():
                    root_task.result()
                    raise RuntimeError("supervision tree ended early")
                await asyncio.sleep(0.05)
                if progress is not None:
                    n = feed.snapshot().events
                    while n >= next_mark:
                        out = progress(next_mark)
                        if out is not None:
                            await out
                        next_mark += progress_every
                self._check_alive()
            await self._settle(settle_timeout_s)
            seconds = time.perf_counter() - t0
            self._check_alive()
            if progress is not None:
                n = feed.snapshot().events
                if n != next_mark - progress_every:
                    out = progress(n)
                    if out is not None:
                        await out
        finally:
            root_task.cancel()
            await asyncio.gather(root_task, return_exceptions=True)
            await venue.close()
            await store.close()
        snap = om.snapshot()
        c = snap.counters
        fsnap = feed.snapshot()
        gsnap = gate.snapshot()
        return PipelineResult(
            events=fsnap.events, seconds=seconds, bars=fsnap.bars_published,
            lockstep_timeouts=self.lockstep.timeouts if self.lockstep is not None else 0, intents=host.intents_sent,
            orders=c.submitted, fills=c.fills_applied, denied=gsnap.denied, rejected=c.rejected,
            restarts=root.total_restarts, latency=self.latency, order_counts=dict(c.transitions),
        )

    def _check_alive(self) -> None:
        for actor in (self.om, self.gate, self.router, self.host, self.feed):
            if isinstance(actor, Actor) and actor.state is ActorState.FAILED:
                raise RuntimeError(f"{actor.name} failed: {actor.error!r}")
        if self.root is not None and self.root.total_restarts:
            raise RuntimeError(f"supervisor restarted a child: {self.root.last_errors}")

    async def _settle(self, timeout_s: float) -> None:
        """Wait until every intent became an order, every order is final and every event was delivered."""
        om, gate = self.om, self.gate
        assert om is not None and gate is not None
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while quiet < 3:
            # The strategy host has ended (its market data ended): its own event channel is not read.
            busy = (any(len(ch) for ch in self.channels[:3]) or om.open_order_count() or om.pending_work()
                    or gate.pending_work())
            quiet = 0 if busy else quiet + 1
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"order path did not settle: channels {[(ch.name, len(ch)) for ch in self.channels]}, "
                    f"open orders {om.open_order_count()}, order manager pending {om.pending_work()}, "
                    f"risk gate pending {gate.pending_work()}"
                )
            await asyncio.sleep(0.005)
