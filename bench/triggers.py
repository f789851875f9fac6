"""Trigger benchmark: emulated stop trigger-to-submit latency, under replay load and at low load.

The full pipeline built by ``daemon.pipeline.build_pipeline`` (feed → strategy host → risk
gate → contingent-order manager → risk gate again → order manager with its SQLite
write-ahead → paper venue on its own SQLite file, under the real supervisors), on the
daemon's event loop (uvloop), in a temporary directory. The strategy
(``bench/trigger_strategy.py``) keeps a bracket's two exits armed a few bps from the mid
whenever it is flat; the paper venue has no native conditional orders, so every exit is
an emulated trigger evaluated by the contingent-order manager's feed tap on each quote.

Measured: for each child an emulated trigger released, the time from the ``recv_ns`` of
the market event that crossed the trigger to the moment that child reaches
``venue.submit`` (``build_pipeline(on_trigger_submit=...)``). The manager also releases a
bracket's entry with the strategy's ``origin_ns``; those releases are not counted (the
strategy remembers its entries' origins, ``ArmedExits.entry_origins``). The path: feed tap
(``ContingencyManager.on_market``) → effects queue → the manager's task → durable write-ahead
of the trigger (SQLite commit) → intents channel → risk gate → order manager write-ahead →
its submit → ``venue.submit``.

Two loads, ``--runs`` runs each (fresh loop and files per run):

- load: a seeded quote walk (``bench.pipeline.QuoteWalkSource``) replayed unpaced on the
  market clock, as ``bench/replay.py`` does: the feed hands the taps 256 quotes per loop
  turn and waits at bar closes until the order path caught up (lockstep). ``--free-run``
  drops the lockstep; the feed then starves the strategy and few triggers happen;
- low: the same walk paced at ``--rate`` quotes per second of real time
  (``bench.latency.PacedQuoteSource``, stamped on hand-out), as ``bench/latency.py`` does.

``--mode trailing`` (market entry, then a standalone trailing stop) works at low load; in a
lockstep replay each armed stop currently stalls the feed for ``Lockstep.timeout_s`` (the
lockstep wakes only when a strategy host goes idle, and arming a stop reaches no host).

Prints per-run figures and a summary (medians over runs of each run's p50 and p99); the
last line is one JSON object with ``trigger_to_submit_p{50,99}_us_{load,low}``,
``triggers_{load,low}`` and the targets (p99 ≤ 5,000 µs under load, ≤ 1,000 µs at low load).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actors.ports.market_data import MarketDataSource  # noqa: E402
from adapters.paper_venue import PaperVenue  # noqa: E402
from adapters.storage.store import Store  # noqa: E402
from bench.latency import PacedQuoteSource  # noqa: E402
from bench.pipeline import (  # noqa: E402
    LatencyHistogram,
    PipelineSettings,
    QuoteWalk,
    QuoteWalkSource,
    configure_quiet_logging,
    peak_rss_mb,
)
from bench.pipeline_run import run_in_fresh_loop, run_to_end  # noqa: E402
from config.schema.market import StrategySection  # noqa: E402
from config.schema.root import AaitiConfig  # noqa: E402
from daemon.pipeline import build_pipeline, market_clock_for  # noqa: E402

__all__ = ["TARGET_LOAD_P99_US", "TARGET_LOW_P99_US", "TriggerResult", "TriggerSettings", "main", "run_mode",
           "run_once", "summarize"]

TRIGGER_STRATEGY = "bench.trigger_strategy:ArmedExits"
STRATEGY_NAME = "trig"
#: Targets of issue 11 (µs, p99).
TARGET_LOAD_P99_US = 5_000
TARGET_LOW_P99_US = 1_000
MODES = ("load", "low")


@dataclasses.dataclass(frozen=True)
class TriggerSettings:
    """What the two kinds of run feed and how."""

    load_events: int = 200_000
    load_interval_ms: int = 500
    lockstep: bool = True
    rate: float = 1000.0
    low_seconds: float = 20.0
    seed: int = 7
    delta_bps: int = 3
    mode: str = "bracket"
    trigger: str = "bid_ask"
    size: Decimal = Decimal("0.01")
    venue_fsync: bool = True
    fsync_orders: bool = False
    settle_timeout_s: float = 10.0

    @property
    def low_events(self) -> int:
        """Quotes one low-load run hands out."""
        return max(1, round(self.rate * self.low_seconds))

    def config(self, base: PipelineSettings) -> AaitiConfig:
        """The bench pipeline's config (``PipelineSettings.config``) trading the trigger strategy instead."""
        params = {"size": str(self.size), "delta_bps": self.delta_bps, "mode": self.mode, "trigger": self.trigger}
        strategy = StrategySection(name=STRATEGY_NAME, strategy=TRIGGER_STRATEGY, symbols=(base.symbol,),
                                   timeframe=base.timeframe, params=params)
        return dataclasses.replace(base.config(), strategies=(strategy,))

    def source(self, mode: str, symbol: str) -> MarketDataSource:
        """The market data of one run: the unpaced walk (``load``) or the paced one (``low``)."""
        if mode == "load":
            return QuoteWalkSource(QuoteWalk(seed=self.seed, interval_ms=self.load_interval_ms), symbol,
                                   max_events=self.load_events)
        interval_ms = max(1, round(1000 / self.rate))  # market time advances as real time does
        return PacedQuoteSource(QuoteWalk(seed=self.seed, interval_ms=interval_ms), symbol, rate=self.rate,
                                max_events=self.low_events)


@dataclasses.dataclass(frozen=True)
class TriggerResult:
    """What one run did and how fast its triggered children reached the venue."""

    mode: str
    events: int
    seconds: float
    entries: int
    released: int
    orders: int
    fills: int
    denied: int
    denials: dict[str, int]
    rejected: int
    restarts: int
    lockstep_timeouts: int
    contingents: dict[str, int]
    latency: LatencyHistogram

    def figures(self) -> dict[str, Any]:
        """Counts and percentiles (µs) of this run."""
        lat = self.latency
        return {
            "mode": self.mode,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events / self.seconds) if self.seconds > 0 else 0,
            "entries": self.entries,
            "triggers_released": self.released,
            "triggers": lat.count,
            "orders": self.orders,
            "fills": self.fills,
            "denied": self.denied,
            "denials": self.denials,
            "rejected": self.rejected,
            "restarts": self.restarts,
            "lockstep_timeouts": self.lockstep_timeouts,
            "contingents": self.contingents,
            **{f"p{k}_us": round(lat.percentile(p) / 1000, 1)
               for k, p in (("50", 50), ("90", 90), ("99", 99), ("999", 99.9))},
            "max_us": round(lat.max_ns / 1000, 1),
        }


async def run_once(settings: TriggerSettings, mode: str, workdir: Path) -> TriggerResult:
    """One run of ``mode`` (``load`` or ``low``) of the full pipeline in ``workdir``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    lockstep = settings.lockstep and mode == "load"
    base = PipelineSettings(size=settings.size, venue_fsync=settings.venue_fsync, lockstep=lockstep)
    cfg = settings.config(base)
    source = settings.source(mode, base.symbol)
    clock = market_clock_for(source)
    latency = LatencyHistogram()
    released = [0]

    def on_trigger_submit(latency_ns: int) -> None:
        latency.record(latency_ns)

    venue = PaperVenue(workdir / "paper-venue.db", cfg.venue.paper, dict(cfg.instruments), clock=clock)
    await venue.start()
    store = await Store.open(workdir / "state.db", fsync_orders=settings.fsync_orders)
    built = build_pipeline(cfg, store=store, venue=venue, source=source, clock=clock,
                           on_trigger_submit=on_trigger_submit, lockstep=lockstep)
    trigger_hook = built.contingent.on_trigger
    host = built.hosts[STRATEGY_NAME]

    def count_release(origin_ns: int) -> None:
        # Called for every release with an origin: a bracket's entry carries the strategy's
        # quote, an exit the quote that crossed its trigger. Only exits are measured.
        if origin_ns in getattr(host.strategy, "entry_origins", ()):
            return
        released[0] += 1
        if trigger_hook is not None:
            trigger_hook(origin_ns)

    built.contingent.on_trigger = count_release
    if built.lockstep is not None:
        built.lockstep.timeout_s = base.lockstep_timeout_s
    try:
        seconds = await run_to_end(built, cfg, name=f"triggers-{mode}", settle_timeout_s=settings.settle_timeout_s)
    finally:
        await venue.close()
        await store.close()
    counters = built.order_manager.snapshot().counters
    contingents = {f"{k.value}/{m.value}/{s.value}": n for (k, m, s), n in sorted(built.contingent.completed().items())}
    return TriggerResult(
        mode=mode, events=built.feed.snapshot().events, seconds=seconds,
        entries=getattr(host.strategy, "entries", 0), released=released[0],
        orders=counters.submitted, fills=counters.fills_applied, denied=built.risk_gate.snapshot().denied,
        denials=dict(getattr(host.strategy, "denials", {})),
        rejected=counters.rejected, restarts=0,
        lockstep_timeouts=built.lockstep.timeouts if built.lockstep is not None else 0,
        contingents=contingents, latency=latency,
    )


def run_mode(settings: TriggerSettings, mode: str, runs: int, *, quiet: bool = False) -> list[TriggerResult]:
    """``runs`` runs of ``mode``, each on a fresh event loop and files."""
    results: list[TriggerResult] = []
    for i in range(max(1, runs)):
        r = run_in_fresh_loop(lambda workdir: run_once(settings, mode, workdir), f"aaiti-triggers-{mode}-")
        results.append(r)
        if not quiet:
            f = r.figures()
            print(f"{mode} run {i + 1}: {r.events:,} quotes in {r.seconds:.1f}s ({f['events_per_s']:,}/s), "
                  f"{r.entries:,} entries, {f['triggers']:,} triggers; trigger-to-submit µs p50 {f['p50_us']}  "
                  f"p90 {f['p90_us']}  p99 {f['p99_us']}  p99.9 {f['p999_us']}  max {f['max_us']}", flush=True)
    return results


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1) if values else 0.0


def summarize(settings: TriggerSettings, results: dict[str, list[TriggerResult]]) -> dict[str, Any]:
    """The final figures: per mode, the medians over runs of each run's p50 and p99 (µs), counts, targets."""
    out: dict[str, Any] = {
        "runs": max((len(v) for v in results.values()), default=0),
        "strategy_mode": settings.mode,
        "trigger_source": settings.trigger,
        "delta_bps": settings.delta_bps,
        "load_events": settings.load_events,
        "load_lockstep": settings.lockstep,
        "low_rate": settings.rate,
        "low_events": settings.low_events,
        "venue_fsync": settings.venue_fsync,
        "fsync_orders": settings.fsync_orders,
    }
    for mode, rs in results.items():
        figs = [r.figures() for r in rs]
        for k in ("p50", "p90", "p99", "p999"):
            out[f"trigger_to_submit_{k}_us_{mode}"] = _median([f[f"{k}_us"] for f in figs])
        out[f"trigger_to_submit_max_us_{mode}"] = max((f["max_us"] for f in figs), default=0.0)
        out[f"trigger_to_submit_p99_us_{mode}_runs"] = [f["p99_us"] for f in figs]
        out[f"triggers_{mode}"] = sum(f["triggers"] for f in figs)
        out[f"triggers_{mode}_runs"] = [f["triggers"] for f in figs]
        out[f"triggers_released_{mode}"] = sum(f["triggers_released"] for f in figs)
        out[f"events_per_s_{mode}"] = round(statistics.median(f["events_per_s"] for f in figs)) if figs else 0
        out[f"denied_{mode}"] = sum(f["denied"] for f in figs)
        reasons: dict[str, int] = {}
        for r in rs:
            for reason, n in r.denials.items():
                reasons[reason] = reasons.get(reason, 0) + n
        out[f"denials_{mode}"] = reasons
        out[f"rejected_{mode}"] = sum(f["rejected"] for f in figs)
        out[f"lockstep_timeouts_{mode}"] = sum(f["lockstep_timeouts"] for f in figs)
    out["targets"] = {"trigger_to_submit_p99_us_load": TARGET_LOAD_P99_US,
                      "trigger_to_submit_p99_us_low": TARGET_LOW_P99_US}
    out["target_met"] = {
        f"trigger_to_submit_p99_us_{m}": (out[f"triggers_{m}"] > 0
                                          and out[f"trigger_to_submit_p99_us_{m}"] <= out["targets"][
                                              f"trigger_to_submit_p99_us_{m}"])
        for m in MODES if m in results
    }
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    d = TriggerSettings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="runs per load; figures are medians over runs")
    p.add_argument("--quick", action="store_true", help="a few seconds in all: 1 run of each, short data")
    p.add_argument("--only", choices=MODES, help="run only this load")
    p.add_argument("--load-events", type=int, default=d.load_events, help="quotes of one load run")
    p.add_argument("--interval-ms", type=int, default=d.load_interval_ms,
                   help="market time between quotes of the load run")
    p.add_argument("--free-run", action="store_true",
                   help="load run without lockstep: the feed runs ahead of the order path")
    p.add_argument("--rate", type=float, default=d.rate, help="quotes per second of real time at low load")
    p.add_argument("--seconds", type=float, default=d.low_seconds, help="length of one low-load run")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--delta-bps", type=int, default=d.delta_bps, help="distance of the exits from the mid")
    p.add_argument("--mode", choices=("bracket", "trailing"), default=d.mode,
                   help="bracket exits, or a trailing stop after a market entry")
    p.add_argument("--trigger", choices=("bid_ask", "mid"), default=d.trigger, help="price the triggers watch")
    p.add_argument("--no-venue-fsync", action="store_true", help="paper venue account without fsync")
    p.add_argument("--fsync-orders", action="store_true",
                   help="fsync every write-ahead before the venue call, as live trading does")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> tuple[TriggerSettings, int]:
    """Settings and runs per load from the options (``--quick`` shrinks both)."""
    s = TriggerSettings(
        load_events=args.load_events, load_interval_ms=args.interval_ms, lockstep=not args.free_run,
        rate=args.rate, low_seconds=args.seconds, seed=args.seed, delta_bps=args.delta_bps, mode=args.mode,
        trigger=args.trigger, venue_fsync=not args.no_venue_fsync, fsync_orders=args.fsync_orders,
    )
    runs = args.runs
    if args.quick:
        s = dataclasses.replace(s, load_events=min(s.load_events, 20_000), low_seconds=min(s.low_seconds, 2.0))
        runs = 1
    return s, runs


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print per-run figures, a summary and, last, one JSON line. Returns the figures."""
    args = parse_args(argv)
    configure_quiet_logging()
    settings, runs = settings_from(args)
    modes = (args.only,) if args.only else MODES
    results = {m: run_mode(settings, m, runs) for m in modes}
    out = summarize(settings, results)
    for m in modes:
        target = out["targets"][f"trigger_to_submit_p99_us_{m}"]
        met = "met" if out["target_met"][f"trigger_to_submit_p99_us_{m}"] else "MISSED"
        print(f"{m}: median of {len(results[m])} runs, {out[f'triggers_{m}']:,} triggers "
              f"({out[f'events_per_s_{m}']:,} quotes/s): trigger-to-submit µs p50 "
              f"{out[f'trigger_to_submit_p50_us_{m}']}  p99 {out[f'trigger_to_submit_p99_us_{m}']}  "
              f"(per run p99 {out[f'trigger_to_submit_p99_us_{m}_runs']}); target p99 <= {target:,}: {met}")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
