"""Soak: >= 10M quote events through the full pipeline; RSS must not grow with uptime.

The same pipeline as ``bench/replay.py`` (``bench/pipeline.py``: feed → EmaCross → risk gate
→ order manager → paper venue, real SQLite files, real supervisor, lockstep after bars), fed
by a seeded random walk generated on the fly (no 10M-row file). RSS is printed every
``--every`` events; the growth is measured from the end of the warm-up (``--warmup``
events) to the end of the run. The order manager's memory windows (recently closed orders,
fill de-duplication) are set small (``--window``) so that they fill up during the warm-up:
what is measured afterwards is growth that has no bound, not a cache reaching its cap.

The last line is one JSON object with ``events`` and ``rss_growth_mb`` (target < 5).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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


def structure_sizes(p: Pipeline) -> dict[str, int]:
    """Sizes of the structures that could grow with uptime (for the report and the test)."""
    om, gate, host, venue = p.om, p.gate, p.host, p.venue
    assert om is not None and gate is not None and host is not None and venue is not None
    tracking = host._tracking
    return {
        **om.sizes(),
        **gate.sizes(),
        "strategy_fill_keys": len(tracking._fills) if tracking is not None else 0,
        "strategy_open": len(tracking._open) if tracking is not None else 0,
        "venue_open": len(venue._open),
        "store_backlog": p.store.backlog if p.store is not None else 0,
        "channels_max_depth": max((len(ch) for ch in p.channels), default=0),
    }


def run_soak(events: int, *, warmup: int = 1_000_000, every: int = 1_000_000, window: int = 256,
             seed: int = 11, quiet: bool = False, quiet_logs: bool = True) -> dict[str, Any]:
    """Run the soak; return the figures (RSS samples, growth, order accounting, structure sizes).

    ``quiet_logs`` configures structlog (process-wide) to drop records below WARNING.
    """
    if quiet_logs:
        configure_quiet_logging()
    settings = PipelineSettings(closed_order_window=window, dedup_window=window)
    pipeline = Pipeline(QuoteWalkSource(QuoteWalk(seed=seed), settings.symbol, max_events=events), settings)
    samples: list[tuple[int, float]] = []
    warm: dict[str, float] = {}
    t0 = time.perf_counter()

    def on_progress(n: int) -> None:
        gc.collect()
        rss = rss_mb()
        samples.append((n, rss))
        if n == warmup:
            warm["rss"] = rss
        if not quiet:
            print(f"{n:>12,} events  {time.perf_counter() - t0:7.1f}s  rss {rss:7.1f} MB", flush=True)

    box: dict[str, Any] = {}

    async def go() -> int:
        box["result"] = await pipeline.run(progress=on_progress, progress_every=min(every, warmup))
        box["sizes"] = structure_sizes(pipeline)
        return 0

    run_loop(go)
    r = box["result"]
    # The last sample was taken at the end of the run, before the pipeline was torn down.
    end_rss = samples[-1][1]
    base = warm.get("rss", samples[0][1])
    return {
        "events": r.events,
        "seconds": round(r.seconds, 1),
        "events_per_s": round(r.events_per_s),
        "warmup_events": warmup,
        "rss_after_warmup_mb": round(base, 1),
        "rss_end_mb": round(end_rss, 1),
        "rss_growth_mb": round(end_rss - base, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "orders": r.orders,
        "fills": r.fills,
        "denied": r.denied,
        "rejected": r.rejected,
        "bars": r.bars,
        "intents": r.intents,
        "lockstep_timeouts": r.lockstep_timeouts,
        "order_counts": r.order_counts,
        "window": window,
        "sizes": box["sizes"],
        "rss_samples_mb": [(n, round(v, 1)) for n, v in samples],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: run the soak and print RSS samples, then one JSON line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--warmup", type=int, default=1_000_000)
    p.add_argument("--every", type=int, default=1_000_000, help="print RSS every N events")
    p.add_argument("--window", type=int, default=256, help="order manager closed-order / fill-dedup windows")
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args(argv)
    out = run_soak(args.events, warmup=args.warmup, every=args.every, window=args.window, seed=args.seed)
    print(f"{out['events']:,} events in {out['seconds']}s ({out['events_per_s']:,}/s); orders {out['orders']:,} "
          f"fills {out['fills']:,}; rss after warm-up {out['rss_after_warmup_mb']} MB, end {out['rss_end_mb']} MB, "
          f"growth {out['rss_growth_mb']} MB; peak {out['peak_rss_mb']} MB")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
