"""Replay benchmark: >= 1M quote events through the real pipeline, as fast as possible.

feed → strategy (EmaCross fast 10 / slow 20 on 1m bars of the mid, fixed small size) →
risk gate → order manager (write-ahead to SQLite) → paper venue (own SQLite file), under a
real supervisor, in a temporary directory (see ``bench/pipeline.py``).

Input: ``--quotes FILE.csv[.gz]`` (``ts_ms,bid,ask,bid_size,ask_size``, read strictly by
``adapters.market_data.quotes``), or else a seeded random walk of quotes generated on the
fly; ``--write-quotes FILE`` writes that walk as a quote file first, so another engine can
be fed exactly the same input.

Prints events/s, tick-to-submit latency (market event entering the daemon → the venue
submit call) p50/p99/p99.9 in µs, orders and fills, and peak RSS. The last line is one
JSON object. ``--profile FILE`` runs under cProfile and writes the stats to FILE.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actors.ports.market_data import MarketDataSource  # noqa: E402
from adapters.market_data.errors import DataFileError  # noqa: E402
from adapters.market_data.quotes import QuoteReplaySource, read_quotes, write_quotes  # noqa: E402
from bench.pipeline import (  # noqa: E402
    Pipeline,
    PipelineSettings,
    QuoteWalk,
    QuoteWalkSource,
    configure_quiet_logging,
    peak_rss_mb,
    rss_mb,
)
from daemon.runtime import run_loop  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="quotes to generate (ignored with --quotes)")
    p.add_argument("--quotes", type=Path, help="replay this quote file instead of the generated walk")
    p.add_argument("--write-quotes", type=Path, help="write the generated walk to this file first")
    p.add_argument("--write-only", action="store_true", help="with --write-quotes: write the file and exit")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--interval-ms", type=int, default=500, help="market time between generated quotes")
    p.add_argument("--symbol", default="BTC/USDT")
    p.add_argument("--size", default="0.01", help="order size in base units")
    p.add_argument("--no-fsync", action="store_true", help="paper venue account without synchronous=FULL")
    p.add_argument("--free-run", action="store_true",
                   help="do not hold the feed after a bar until the strategy's orders are back (no lockstep)")
    p.add_argument("--profile", type=Path, help="run under cProfile and dump the stats here")
    p.add_argument("--runs", type=int, default=3, help="runs in this process; figures are medians (2 noisy cores)")
    return p.parse_args(argv)


def build_source(args: argparse.Namespace) -> MarketDataSource:
    """The quote file's replay source, or the seeded walk."""
    if args.quotes is not None:
        return QuoteReplaySource(read_quotes(args.quotes), args.symbol)
    walk = QuoteWalk(seed=args.seed, interval_ms=args.interval_ms)
    return QuoteWalkSource(walk, args.symbol, max_events=args.events)


def settings_for(args: argparse.Namespace) -> PipelineSettings:
    """Pipeline settings from the options."""
    base, _, quote = args.symbol.partition("/")
    return PipelineSettings(symbol=args.symbol, base=base, quote=quote or "USDT", size=Decimal(args.size),
                            venue_fsync=not args.no_fsync, lockstep=not args.free_run)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print a summary and, last, one JSON line. Returns the figures."""
    args = parse_args(argv)
    configure_quiet_logging()
    if args.write_quotes is not None:
        t = time.perf_counter()
        n = write_quotes(args.write_quotes, QuoteWalk(seed=args.seed, interval_ms=args.interval_ms).rows(args.events))
        print(f"wrote {n:,} quotes to {args.write_quotes} in {time.perf_counter() - t:.1f}s")
        if args.write_only:
            return {"written": n}
    t = time.perf_counter()
    try:
        quotes = read_quotes(args.quotes) if args.quotes is not None else None
    except DataFileError as exc:
        raise SystemExit(f"replay: {exc}") from None
    load_s = time.perf_counter() - t
    rss_before = rss_mb()
    runs: list[Any] = []
    for i in range(max(1, args.runs)):
        if quotes is not None:
            source: MarketDataSource = QuoteReplaySource(quotes, args.symbol)
        else:
            source = build_source(args)
        pipeline = Pipeline(source, settings_for(args))
        result_box: dict[str, Any] = {}

        async def go(pipeline: Pipeline = pipeline, box: dict[str, Any] = result_box) -> int:
            box["r"] = await pipeline.run()
            return 0

        if args.profile is not None and i == 0:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
            run_loop(go)
            prof.disable()
            prof.dump_stats(str(args.profile))
        else:
            run_loop(go)
        run = result_box["r"]
        runs.append(run)
        print(f"run {i + 1}: {run.events:,} events in {run.seconds:.2f}s = {round(run.events_per_s):,} events/s, "
              f"tick-to-submit p99 {run.latency.percentile(99) / 1000:.0f} us")
    # The median run by throughput supplies every figure, so they stay mutually consistent.
    r = sorted(runs, key=lambda x: x.events_per_s)[len(runs) // 2]
    lat = r.latency
    out = {
        "source": str(args.quotes) if args.quotes is not None else f"walk(seed={args.seed})",
        "runs": len(runs),
        "events": r.events,
        "seconds": round(r.seconds, 3),
        "events_per_s": round(r.events_per_s),
        "events_per_s_all": sorted(round(x.events_per_s) for x in runs),
        "bars": r.bars,
        "lockstep": not args.free_run,
        "venue_fsync": not args.no_fsync,
        "lockstep_timeouts": r.lockstep_timeouts,
        "intents": r.intents,
        "orders": r.orders,
        "fills": r.fills,
        "denied": r.denied,
        "rejected": r.rejected,
        "tick_to_submit_p50_us": round(lat.percentile(50) / 1000, 1),
        "tick_to_submit_p99_us": round(lat.percentile(99) / 1000, 1),
        "tick_to_submit_p999_us": round(lat.percentile(99.9) / 1000, 1),
        "tick_to_submit_max_us": round(lat.max_ns / 1000, 1),
        "latency_samples": lat.count,
        "load_s": round(load_s, 2),
        "rss_before_run_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(f"source {out['source']}: median of {len(runs)} runs: {r.events:,} quote events in {r.seconds:.2f}s "
          f"= {out['events_per_s']:,} events/s")
    print(f"bars {r.bars:,}  intents {r.intents:,}  orders {r.orders:,}  fills {r.fills:,}  "
          f"denied {r.denied}  rejected {r.rejected}")
    print(f"tick-to-submit µs: p50 {out['tick_to_submit_p50_us']}  p99 {out['tick_to_submit_p99_us']}  "
          f"p99.9 {out['tick_to_submit_p999_us']}  max {out['tick_to_submit_max_us']}  (n={lat.count})")
    print(f"peak RSS {out['peak_rss_mb']} MB")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
