"""Latency benchmark: tick-to-submit at a live-like low load (~1k quotes/s, real time).

The full pipeline built by ``daemon.pipeline.build_pipeline`` (feed → strategy host → risk
gate → order manager with its SQLite write-ahead → paper venue on its own SQLite file,
under the real supervisors), on the daemon's event loop (uvloop), in a temporary
directory. Quotes of a seeded random walk (``bench.pipeline.QuoteWalk``) are handed out
at ``--rate`` per second of real time (paced with real sleeps, stamped on hand-out like a
socket read), and a tick-driven strategy (``bench/tick_strategy.py``) sends a market order
on every ``--every``-th quote, alternating buy and sell: one order per ~``every`` events.

Tick-to-submit is measured by the order manager's ``on_submit`` hook, as in
``bench/replay.py``: from the ``recv_ns`` of the quote behind an order to the moment
``venue.submit`` is called. It spans the strategy, the risk gate, the write-ahead commit
(WAL; with ``--fsync-orders`` also its fsync, as live trading runs) and the task switches
between them.

Baseline (same process, after the runs): the two steps every order must take, each alone,
paced as the runs place orders (one per ``every / rate`` seconds, the loop idle in between):
the risk gate's ``decide`` on the tick strategy's order (a ``RiskGate`` of the same config
fed the same quotes) and the order manager's own ``Store.insert_orders`` committing its
record on a fresh file — no actor, channel or venue. It is the floor of "risk-checked and
committed before the venue call" on this machine: at this pacing the CPU idles between
orders and wakes with cold caches, so each step costs several times what it costs back to
back. ``tick_to_submit / write_ahead`` is printed as a ratio of p50s and of p99s.

Prints p50/p90/p99/p99.9 per run and for the median run (by p99) of ``--runs``, then the
baseline; the last line is one JSON object (``tick_to_submit_p50_us``,
``tick_to_submit_p99_us``, ``write_ahead_p50_us``, ``write_ahead_p99_us``, the ratios,
counts). Target at this load: p99 <= 100 µs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actors.kernel.channel import Channel  # noqa: E402
from actors.kernel.clock import (  # noqa: E402
    MarketClock,
    monotonic,
    perf_ns,
)
from actors.model.market import MarketEvent, Quote  # noqa: E402
from actors.model.orders import OrderIntent, Side  # noqa: E402
from actors.orders.submitter import order_record  # noqa: E402
from actors.ports.market_data import SourceStats  # noqa: E402
from actors.ports.portfolio import PortfolioView  # noqa: E402
from actors.risk.checks import Approval  # noqa: E402
from actors.risk.risk_gate import RiskGate  # noqa: E402
from adapters.paper_venue import PaperVenue  # noqa: E402
from adapters.storage.store import Store  # noqa: E402
from bench.pipeline import (  # noqa: E402
    LatencyHistogram,
    PipelineSettings,
    QuoteWalk,
    configure_quiet_logging,
    peak_rss_mb,
)
from bench.pipeline_run import run_in_fresh_loop, run_to_end  # noqa: E402
from config.schema.market import StrategySection  # noqa: E402
from config.schema.root import AaitiConfig  # noqa: E402
from daemon.pipeline import build_pipeline, market_clock_for  # noqa: E402

TICK_STRATEGY = "bench.tick_strategy:EveryNthQuote"


class PacedQuoteSource:
    """``QuoteWalk`` rows as ``Quote`` events handed out at ``rate`` per second of real time.

    Ends after ``max_events``. ``recv_ns`` is stamped when an event is handed out, after
    the wait for its turn, as a live source stamps a message when it reads it.
    """

    def __init__(self, walk: QuoteWalk, symbol: str, *, rate: float, max_events: int,
                 name: str = "paced-walk") -> None:
        self.name = name
        self.symbol = symbol
        self.symbols: tuple[str, ...] = (symbol,)
        self._walk = walk
        self._rate = rate
        self._max = max_events
        self._events = 0
        self._ended = False

    @property
    def start_ts_ms(self) -> int:
        """Market time of the first quote."""
        return self._walk.start_ts_ms

    def stats(self) -> SourceStats:
        """Counters of what was handed out."""
        return SourceStats(name=self.name, events=self._events, quotes=self._events, ended=self._ended)

    async def close(self) -> None:
        """Nothing to release."""

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Yield the quotes, each at its turn."""
        symbol, rate = self.symbol, self._rate
        start = monotonic()
        for i, (ts_ms, bid, ask, bid_size, ask_size) in enumerate(self._walk.rows(self._max)):
            delay = start + i / rate - monotonic()
            # Every event is its own loop turn, as socket reads are; behind schedule, no wait.
            await asyncio.sleep(delay if delay > 0 else 0)
            self._events += 1
            yield Quote(symbol=symbol, ts_ms=ts_ms, recv_ns=perf_ns(), bid=bid, ask=ask,
                        bid_size=bid_size, ask_size=ask_size)
        self._ended = True


@dataclasses.dataclass(frozen=True)
class LatencySettings:
    """What one run feeds and how."""

    rate: float = 1000.0
    seconds: float = 20.0
    every: int = 10
    seed: int = 7
    venue_fsync: bool = True
    fsync_orders: bool = False
    settle_timeout_s: float = 10.0
    floor_samples: int = 1000

    @property
    def events(self) -> int:
        """Quotes one run hands out."""
        return max(1, round(self.rate * self.seconds))

    def config(self, base: PipelineSettings) -> AaitiConfig:
        """The bench pipeline's config (``PipelineSettings.config``) trading the tick strategy instead."""
        strategy = StrategySection(name="tick", strategy=TICK_STRATEGY, symbols=(base.symbol,),
                                   timeframe=base.timeframe, params={"every": self.every, "size": str(base.size)})
        return dataclasses.replace(base.config(), strategies=(strategy,))


@dataclasses.dataclass(frozen=True)
class LatencyResult:
    """What one run did and how fast."""

    events: int
    seconds: float
    signals_skipped: int
    intents: int
    orders: int
    fills: int
    denied: int
    rejected: int
    restarts: int
    latency: LatencyHistogram

    def figures(self) -> dict[str, Any]:
        """Counts and percentiles (µs) of this run."""
        lat = self.latency
        return {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events / self.seconds) if self.seconds > 0 else 0,
            "signals_skipped": self.signals_skipped,
            "intents": self.intents,
            "orders": self.orders,
            "fills": self.fills,
            "denied": self.denied,
            "rejected": self.rejected,
            "restarts": self.restarts,
            "latency_samples": lat.count,
            **{f"tick_to_submit_{k}_us": round(lat.percentile(p) / 1000, 1)
               for k, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9))},
            "tick_to_submit_max_us": round(lat.max_ns / 1000, 1),
        }


async def run_once(settings: LatencySettings, workdir: Path) -> LatencyResult:
    """One paced run of the full pipeline in ``workdir``; returns its figures once the order path settled."""
    base = PipelineSettings(venue_fsync=settings.venue_fsync, lockstep=False)
    cfg = settings.config(base)
    interval_ms = max(1, round(1000 / settings.rate))  # market time advances as real time does
    source = PacedQuoteSource(QuoteWalk(seed=settings.seed, interval_ms=interval_ms), base.symbol,
                              rate=settings.rate, max_events=settings.events)
    clock = market_clock_for(source)
    latency = LatencyHistogram()

    def on_submit(origin_ns: int) -> None:
        if origin_ns:
            latency.record(perf_ns() - origin_ns)

    venue = PaperVenue(workdir / "paper-venue.db", cfg.venue.paper, dict(cfg.instruments), clock=clock)
    await venue.start()
    store = await Store.open(workdir / "state.db", fsync_orders=settings.fsync_orders)
    built = build_pipeline(cfg, store=store, venue=venue, source=source, clock=clock, on_submit=on_submit,
                           lockstep=False)
    try:
        seconds = await run_to_end(built, cfg, name="latency", settle_timeout_s=settings.settle_timeout_s)
    finally:
        await venue.close()
        await store.close()
    counters = built.order_manager.snapshot().counters
    host = built.hosts["tick"]
    return LatencyResult(
        events=built.feed.snapshot().events, seconds=seconds, signals_skipped=getattr(host.strategy, "skipped", 0),
        intents=host.intents_sent,
        orders=counters.submitted, fills=counters.fills_applied, denied=built.risk_gate.snapshot().denied,
        rejected=counters.rejected, restarts=0, latency=latency,
    )


class _StaticPortfolio:
    """A ``PortfolioSource`` that never changes: the bench account before its first order."""

    version = 1

    def __init__(self, balances: Mapping[str, Decimal]) -> None:
        self._view = PortfolioView(version=1, balances=dict(balances))

    def current(self) -> PortfolioView:
        """The account."""
        return self._view


@dataclasses.dataclass(frozen=True)
class Floor:
    """The baseline's histograms: the risk decision alone, the write-ahead alone, and both."""

    decision: LatencyHistogram
    write_ahead: LatencyHistogram
    both: LatencyHistogram


async def write_ahead_floor(settings: LatencySettings, workdir: Path) -> Floor:
    """The baseline: ``floor_samples`` orders' two required steps alone, paced as the runs' orders.

    For each: a quote handed to a ``RiskGate`` of the runs' config (its feed tap), the gate's
    ``decide`` on the tick strategy's market order (timed), then the order manager's
    ``Store.insert_orders`` of its SUBMITTED record (built by the order manager's own
    ``order_record``) on a fresh store in ``workdir`` (timed around the awaited call). No actor,
    channel or venue is involved.
    """
    base = PipelineSettings(venue_fsync=settings.venue_fsync, lockstep=False)
    cfg = settings.config(base)
    interval_s = settings.every / settings.rate
    floor = Floor(LatencyHistogram(), LatencyHistogram(), LatencyHistogram())
    clock = MarketClock(0)
    store = await Store.open(workdir / "floor.db", fsync_orders=settings.fsync_orders)
    sink: Channel[Any] = Channel("floor-sink", 16)
    gate = RiskGate(intents=Channel("floor-intents", 16), orders=sink, strategy_events=sink, risk=cfg.risk,
                    instruments=cfg.instruments, portfolio=_StaticPortfolio(cfg.venue.paper.initial_balances),
                    events=store, state_store=store, clock=clock)
    walk = QuoteWalk(seed=settings.seed, interval_ms=max(1, round(1000 * interval_s))).rows(settings.floor_samples)
    try:
        for i, (ts_ms, bid, ask, bid_size, ask_size) in enumerate(walk):
            await asyncio.sleep(interval_s)
            clock.advance(ts_ms)
            gate.on_market(Quote(symbol=base.symbol, ts_ms=ts_ms, recv_ns=perf_ns(), bid=bid, ask=ask,
                                 bid_size=bid_size, ask_size=ask_size))
            intent = OrderIntent(strategy="tick", symbol=base.symbol, side=Side.BUY, size=base.size,
                                 tag="tick.buy", intent_id=f"floor-{i}")
            t0 = perf_ns()
            decision = gate.decide(intent)
            t1 = perf_ns()
            if not isinstance(decision, Approval):
                raise RuntimeError(f"the baseline's decision was a denial: {decision}")
            rec = order_record(intent, decision.size, store.next_client_order_id("fl"), "paper", ts_ms)
            t2 = perf_ns()
            await store.insert_orders([rec])
            t3 = perf_ns()
            floor.decision.record(t1 - t0)
            floor.write_ahead.record(t3 - t2)
            floor.both.record(t1 - t0 + t3 - t2)
    finally:
        await store.close()
    return floor


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b > 0 else 0.0


def run_latency(settings: LatencySettings, runs: int = 3, *, quiet: bool = False) -> dict[str, Any]:
    """``runs`` runs, each on a fresh event loop and files, then the write-ahead baseline.

    Returns the median run's figures (by p99) with the baseline's (none when
    ``floor_samples`` is 0).
    """
    results: list[LatencyResult] = []
    for i in range(max(1, runs)):
        r = run_in_fresh_loop(lambda workdir: run_once(settings, workdir), "aaiti-latency-")
        results.append(r)
        if not quiet:
            f = r.figures()
            print(f"run {i + 1}: {r.events:,} quotes in {r.seconds:.1f}s ({f['events_per_s']:,}/s), {r.orders:,} "
                  f"orders; tick-to-submit µs p50 {f['tick_to_submit_p50_us']}  p90 {f['tick_to_submit_p90_us']}  "
                  f"p99 {f['tick_to_submit_p99_us']}  p99.9 {f['tick_to_submit_p999_us']}")
    by_p99 = sorted(results, key=lambda x: x.latency.percentile(99))
    median = by_p99[len(by_p99) // 2]
    floor: dict[str, Any] = {}
    if settings.floor_samples > 0:
        fl = run_in_fresh_loop(lambda workdir: write_ahead_floor(settings, workdir), "aaiti-latency-floor-")
        p50, p99 = fl.write_ahead.percentile(50), fl.write_ahead.percentile(99)
        floor = {
            "write_ahead_samples": fl.write_ahead.count,
            "write_ahead_p50_us": round(p50 / 1000, 1),
            "write_ahead_p99_us": round(p99 / 1000, 1),
            "decision_p50_us": round(fl.decision.percentile(50) / 1000, 1),
            "decision_p99_us": round(fl.decision.percentile(99) / 1000, 1),
            "decision_and_write_ahead_p50_us": round(fl.both.percentile(50) / 1000, 1),
            "decision_and_write_ahead_p99_us": round(fl.both.percentile(99) / 1000, 1),
            "ratio_p50_vs_write_ahead": _ratio(median.latency.percentile(50), p50),
            "ratio_p99_vs_write_ahead": _ratio(median.latency.percentile(99), p99),
        }
    return {
        "runs": len(results),
        "rate": settings.rate,
        "every": settings.every,
        "venue_fsync": settings.venue_fsync,
        "fsync_orders": settings.fsync_orders,
        **median.figures(),
        "tick_to_submit_p99_us_all": [round(x.latency.percentile(99) / 1000, 1) for x in by_p99],
        **floor,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    d = LatencySettings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=d.rate, help="quotes per second of real time")
    p.add_argument("--seconds", type=float, default=d.seconds, help="length of one run")
    p.add_argument("--every", type=int, default=d.every, help="one order per this many quotes")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--runs", type=int, default=3, help="runs; figures are of the median run by p99")
    p.add_argument("--no-venue-fsync", action="store_true", help="paper venue account without fsync")
    p.add_argument("--floor-samples", type=int, default=d.floor_samples,
                   help="write-ahead commits of the baseline (0: no baseline)")
    p.add_argument("--fsync-orders", action="store_true",
                   help="fsync every write-ahead before the venue call, as live trading does")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print a summary and, last, one JSON line. Returns the figures."""
    args = parse_args(argv)
    configure_quiet_logging()
    settings = LatencySettings(rate=args.rate, seconds=args.seconds, every=args.every, seed=args.seed,
                               venue_fsync=not args.no_venue_fsync, fsync_orders=args.fsync_orders,
                               floor_samples=args.floor_samples)
    out = run_latency(settings, args.runs)
    print(f"median of {out['runs']} runs (by p99): {out['events']:,} quotes at {out['events_per_s']:,}/s, "
          f"{out['orders']:,} orders, {out['fills']:,} fills, denied {out['denied']}, rejected {out['rejected']}"
          f"{', write-ahead fsynced' if settings.fsync_orders else ''}")
    print(f"tick-to-submit µs: p50 {out['tick_to_submit_p50_us']}  p90 {out['tick_to_submit_p90_us']}  "
          f"p99 {out['tick_to_submit_p99_us']}  p99.9 {out['tick_to_submit_p999_us']}  "
          f"max {out['tick_to_submit_max_us']}  (n={out['latency_samples']:,})")
    if "write_ahead_p99_us" in out:
        print(f"baseline at the same pacing (n={out['write_ahead_samples']:,}), each step alone, µs: "
              f"risk decision p50 {out['decision_p50_us']}  p99 {out['decision_p99_us']}; "
              f"write-ahead commit p50 {out['write_ahead_p50_us']}  p99 {out['write_ahead_p99_us']}; "
              f"the two p50 {out['decision_and_write_ahead_p50_us']}  p99 {out['decision_and_write_ahead_p99_us']}")
        print(f"tick-to-submit / write-ahead: p50 x{out['ratio_p50_vs_write_ahead']}  "
              f"p99 x{out['ratio_p99_vs_write_ahead']}")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
