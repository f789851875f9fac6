"""Backtest benchmark: the replay bench's workload through the backtest runner, against the replay bench.

The workload is ``bench/replay.py``'s: 1M quotes (``--quotes FILE``, ``ts_ms,bid,ask,bid_size,
ask_size``, or else the same seeded walk, written to a temporary quote file first), EmaCross
10/20 on 1-minute bars of the mid, fixed size 0.01, the same config (``bench.pipeline``'s
``PipelineSettings``). It runs twice in this process:

1. the replay bench itself (``bench.replay.main``, its own source, runs and medians);
2. the same config through the backtest path, ``daemon.backtest.runner.run_backtest``: the
   daemon's ``build_pipeline`` on a market clock, in lockstep, over a fresh paper account
   and a fresh state store, replaying the quote file (``QuoteReplaySource``) to its end.

A backtest run is timed end to end (store and paper account opened, the data replayed and
settled, the tree stopped, the orders and fills read back), a replay bench run from its
feed's start to its order path settled, so the comparison does not favour the backtest.
Both are lockstepped and deterministic: their orders and fills must be equal.

Prints each run, then a summary; the last line is one JSON object with ``events_per_s``
(median of the backtest runs), ``peak_rss_mb``, ``orders``, ``fills``, ``replay_events_per_s``
(median of the replay runs) and ``speedup_vs_replay``. ``--profile FILE`` profiles the
first backtest run with cProfile (and the replay bench's first run into ``FILE.replay``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from adapters.market_data.errors import DataFileError  # noqa: E402
from adapters.market_data.quotes import QuoteReplaySource, QuoteTape, read_quotes, write_quotes  # noqa: E402
from bench.pipeline import QuoteWalk, configure_quiet_logging, peak_rss_mb  # noqa: E402
from bench.replay import main as replay_main  # noqa: E402
from bench.replay import parse_args as replay_parse_args  # noqa: E402
from bench.replay import settings_for  # noqa: E402
from config.loader import LoadedConfig  # noqa: E402
from daemon.backtest.run import BacktestRun  # noqa: E402
from daemon.backtest.runner import run_backtest  # noqa: E402
from daemon.runtime import run_loop  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (the replay bench's workload options, same defaults)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=1_000_000, help="quotes to generate (ignored with --quotes)")
    p.add_argument("--quotes", type=Path, help="replay this quote file instead of the generated walk")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--interval-ms", type=int, default=500, help="market time between generated quotes")
    p.add_argument("--symbol", default="BTC/USDT")
    p.add_argument("--size", default="0.01", help="order size in base units")
    p.add_argument("--runs", type=int, default=3, help="runs of each bench; figures are medians")
    p.add_argument("--profile", type=Path, help="profile the first backtest run with cProfile, stats to this file")
    return p.parse_args(argv)


def replay_argv(args: argparse.Namespace) -> list[str]:
    """The replay bench's command line for the same workload."""
    argv = ["--events", str(args.events), "--seed", str(args.seed), "--interval-ms", str(args.interval_ms),
            "--symbol", args.symbol, "--size", args.size, "--runs", str(args.runs)]
    if args.quotes is not None:
        argv += ["--quotes", str(args.quotes)]
    if args.profile is not None:
        argv += ["--profile", f"{args.profile}.replay"]
    return argv


def run_replay_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``bench/replay.py`` on the workload (its output kept, not printed); its figures."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        figures = replay_main(replay_argv(args))
    return figures


def load_tape(args: argparse.Namespace, tmp: Path) -> QuoteTape:
    """The quote file, or the seeded walk written to a quote file in ``tmp`` and read back."""
    path = args.quotes
    if path is None:
        path = tmp / "walk.csv"
        write_quotes(path, QuoteWalk(seed=args.seed, interval_ms=args.interval_ms).rows(args.events))
    try:
        return read_quotes(path)
    except DataFileError as exc:
        raise SystemExit(f"backtest bench: {exc}") from None


def backtest_config(args: argparse.Namespace, tmp: Path) -> LoadedConfig:
    """The replay bench's config for the same command line, as the loaded config a backtest runs."""
    settings = settings_for(replay_parse_args(replay_argv(args)))
    return LoadedConfig(settings.config(), None, tmp, 0.0)


def run_backtest_once(loaded: LoadedConfig, tape: QuoteTape, symbol: str, workdir: Path,
                      profile: Path | None = None) -> tuple[BacktestRun, float]:
    """One backtest over ``tape`` in a fresh ``workdir``; the run and its wall seconds, end to end."""
    workdir.mkdir(parents=True)

    async def go() -> BacktestRun:
        return await run_backtest(loaded, workdir=workdir, source=QuoteReplaySource(tape, symbol))

    prof = None
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t = time.perf_counter()
    run = _run_on_daemon_loop(go)
    seconds = time.perf_counter() - t
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(profile))
    return run, seconds


def _run_on_daemon_loop(make: Callable[[], Awaitable[BacktestRun]]) -> BacktestRun:
    """Run ``make()`` on the daemon's event loop (uvloop when installed), as the replay bench does."""
    box: dict[str, BacktestRun] = {}

    async def main() -> int:
        box["run"] = await make()
        return 0

    run_loop(main)
    return box["run"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both benches; print the runs, a summary and, last, one JSON line. Returns the figures."""
    args = parse_args(argv)
    configure_quiet_logging()
    replay = run_replay_bench(args)
    print(f"replay bench: median of {replay['runs']} runs {replay['events_per_s']:,} events/s "
          f"(all {replay['events_per_s_all']}), orders {replay['orders']}, fills {replay['fills']}")
    rates: list[float] = []
    runs: list[BacktestRun] = []
    with tempfile.TemporaryDirectory(prefix="aaiti-bench-backtest-") as tmp_name:
        tmp = Path(tmp_name)
        tape = load_tape(args, tmp)
        loaded = backtest_config(args, tmp)
        for i in range(max(1, args.runs)):
            profile = args.profile if i == 0 else None
            run, seconds = run_backtest_once(loaded, tape, args.symbol, tmp / f"run-{i}", profile)
            rates.append(run.events / seconds)
            runs.append(run)
            print(f"backtest run {i + 1}: {run.events:,} events in {seconds:.2f}s = {round(rates[-1]):,} events/s, "
                  f"orders {len(run.orders)}, fills {len(run.fills)}")
        del tape
    run = runs[0]
    orders, fills = len(run.orders), len(run.fills)
    same_every_run = all((len(r.orders), len(r.fills)) == (orders, fills) for r in runs)
    eps = statistics.median(rates)
    out = {
        "source": str(args.quotes) if args.quotes is not None else f"walk(seed={args.seed})",
        "runs": len(runs),
        "events": run.events,
        "events_per_s": round(eps),
        "events_per_s_all": sorted(round(x) for x in rates),
        "bars": sum(len(bars) for tfs in run.bars.values() for bars in tfs.values()),
        "orders": orders,
        "fills": fills,
        "lockstep_timeouts": run.lockstep_timeouts,
        "same_orders_as_replay": same_every_run and (orders, fills) == (replay["orders"], replay["fills"]),
        "replay_events_per_s": replay["events_per_s"],
        "replay_events_per_s_all": replay["events_per_s_all"],
        "speedup_vs_replay": round(eps / replay["events_per_s"], 2) if replay["events_per_s"] else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(f"source {out['source']}: backtest median of {len(runs)} runs {out['events_per_s']:,} events/s, "
          f"replay bench {out['replay_events_per_s']:,} events/s: speedup {out['speedup_vs_replay']}x")
    print(f"orders {orders:,}  fills {fills:,}  (replay bench: {replay['orders']:,} / {replay['fills']:,})  "
          f"peak RSS {out['peak_rss_mb']} MB")
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
