"""Soak: >= 10M quote events through the full pipeline; RSS must not grow with uptime.

The same pipeline as ``bench/replay.py`` (``bench/pipeline.py``: feed → EmaCross → risk gate
→ order manager → paper venue, real SQLite files, real supervisor, lockstep after bars), fed
by a seeded random walk generated on the fly (no 10M-row file). RSS is printed every
``--every`` events; the growth is measured from the end of the warm-up (``--warmup``
events) to the end of the run. The order manager's memory windows (recently closed orders,
fill de-duplication) are set small (``--window``) so that they fill up during the warm-up:
what is measured afterwards is growth that has no bound, not a cache reaching its cap.

Retention runs as in the daemon (``[retention]``, the ``RetentionActor`` that
``build_pipeline`` adds), with a short age in market time (``--keep-days``, default 1 day;
the quotes are 0.5 s apart, so 10M events are ~58 days): finished orders, their events and
fills and the audit rows move to archive segments again and again. The state database's
size (file plus ``-wal`` after a checkpoint) is measured like RSS, from the end of the
warm-up to the end: once retention applies it stays flat (freed pages are reused).

The last line is one JSON object with ``events``, ``rss_growth_mb`` (target < 5) and
``db_growth_mb``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

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
from config.schema.ops import RetentionSection  # noqa: E402
from config.schema.root import AaitiConfig  # noqa: E402
from config.schema.trading import ReconcilerSection  # noqa: E402
from daemon.runtime import run_loop  # noqa: E402


@dataclasses.dataclass(frozen=True)
class SoakSettings(PipelineSettings):
    """The bench pipeline with retention on a short market-time age."""

    keep_days: float = 1.0
    retention_interval_s: float = 3600.0

    def config(self) -> AaitiConfig:
        """The bench config plus ``[retention]`` (and a fill look-back no longer than the age kept)."""
        cfg = super().config()
        return dataclasses.replace(
            cfg,
            retention=RetentionSection(keep_days=self.keep_days, interval_s=self.retention_interval_s,
                                       check_interval_s=0.05),
            reconciler=dataclasses.replace(cfg.reconciler, fills_lookback_s=min(
                ReconcilerSection().fills_lookback_s, self.keep_days * 86400)),
        )


def db_size_mb(path: Path) -> float:
    """Size of a state database in MB: the file plus its ``-wal``, after a checkpoint.

    A TRUNCATE checkpoint (waiting up to 2 s for readers and the daemon's own checkpoint):
    the WAL then holds only what was written since, not its high-water mark.
    """
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("PRAGMA busy_timeout = 2000")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.close()
    wal = path.with_name(path.name + "-wal")
    return (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6


def db_pages(path: Path) -> int:
    """Pages in use by a state database (its page count less its free list)."""
    with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as conn:
        count = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
    conn.close()
    return count - free


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
             seed: int = 11, quiet: bool = False, quiet_logs: bool = True, keep_days: float = 1.0) -> dict[str, Any]:
    """Run the soak; return the figures (RSS and database samples, growth, order accounting, structure sizes).

    ``quiet_logs`` configures structlog (process-wide) to drop records below WARNING.
    ``keep_days`` is the retention age in market time.
    """
    if quiet_logs:
        configure_quiet_logging()
    settings = SoakSettings(closed_order_window=window, dedup_window=window, keep_days=keep_days)
    pipeline = Pipeline(QuoteWalkSource(QuoteWalk(seed=seed), settings.symbol, max_events=events), settings)
    samples: list[tuple[int, float]] = []
    db_samples: list[tuple[int, float, int]] = []
    warm: dict[str, float] = {}
    t0 = time.perf_counter()

    def on_progress(n: int) -> None:
        gc.collect()
        rss = rss_mb()
        samples.append((n, rss))
        store = pipeline.store
        db = (db_size_mb(store.path), db_pages(store.path)) if store is not None else (0.0, 0)
        db_samples.append((n, *db))
        if n == warmup:
            warm["rss"] = rss
            warm["db"] = db[0]
        if not quiet:
            print(f"{n:>12,} events  {time.perf_counter() - t0:7.1f}s  rss {rss:7.1f} MB  db {db[0]:7.2f} MB "
                  f"({db[1]:,} pages)", flush=True)

    box: dict[str, Any] = {}

    async def go() -> int:
        box["result"] = await pipeline.run(progress=on_progress, progress_every=min(every, warmup))
        box["sizes"] = structure_sizes(pipeline)
        keeper = pipeline.built.retention if pipeline.built is not None else None
        box["retention"] = msgspec.to_builtins(keeper.stats()) if keeper is not None else None
        return 0

    run_loop(go)
    r = box["result"]
    # The last sample was taken at the end of the run, before the pipeline was torn down.
    end_rss = samples[-1][1]
    base = warm.get("rss", samples[0][1])
    end_db = db_samples[-1][1]
    base_db = warm.get("db", db_samples[0][1])
    return {
        "events": r.events,
        "seconds": round(r.seconds, 1),
        "events_per_s": round(r.events_per_s),
        "warmup_events": warmup,
        "rss_after_warmup_mb": round(base, 1),
        "rss_end_mb": round(end_rss, 1),
        "rss_growth_mb": round(end_rss - base, 2),
        "db_after_warmup_mb": round(base_db, 2),
        "db_end_mb": round(end_db, 2),
        "db_growth_mb": round(end_db - base_db, 2),
        "retention": box["retention"],
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
        "db_samples": [(n, round(mb, 2), pages) for n, mb, pages in db_samples],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: run the soak and print RSS samples, then one JSON line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--warmup", type=int, default=1_000_000)
    p.add_argument("--every", type=int, default=1_000_000, help="print RSS every N events")
    p.add_argument("--window", type=int, default=256, help="order manager closed-order / fill-dedup windows")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--keep-days", type=float, default=1.0, help="retention age in market time")
    args = p.parse_args(argv)
    out = run_soak(args.events, warmup=args.warmup, every=args.every, window=args.window, seed=args.seed,
                   keep_days=args.keep_days)
    print(f"{out['events']:,} events in {out['seconds']}s ({out['events_per_s']:,}/s); orders {out['orders']:,} "
          f"fills {out['fills']:,}; rss after warm-up {out['rss_after_warmup_mb']} MB, end {out['rss_end_mb']} MB, "
          f"growth {out['rss_growth_mb']} MB; peak {out['peak_rss_mb']} MB; db after warm-up "
          f"{out['db_after_warmup_mb']} MB, end {out['db_end_mb']} MB, db_growth_mb {out['db_growth_mb']}")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
