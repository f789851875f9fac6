"""Sweep benchmark: 16 parameter sets on 1 worker vs 2, on a process pool and on a local Dask cluster.

Each trial is a real backtest (``run_backtest_sync`` through ``sweep_worker.run_trial``) of
the bundled config cut to its EmaCross strategy, over ``--hours`` of the bundled XRP/ETH
tape; the 16 sets are the grid fast 4..11 x slow 30, 40. Both executors are the ones
``aaiti sweep`` uses (``PoolExecutor``; ``DaskExecutor`` on a ``distributed.LocalCluster``
with real worker processes over TCP on 127.0.0.1). Workers are warmed up (one trial each)
before timing, so imports are not measured. Each configuration runs ``--runs`` times;
``sweep_speedup`` = median 1-worker time / median 2-worker time. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actors.kernel.clock import monotonic  # noqa: E402
from daemon.backtest.sweep import SweepSettings, run_sweep  # noqa: E402
from daemon.backtest.sweep_exec import DaskExecutor, PoolExecutor, TrialExecutor  # noqa: E402
from daemon.backtest.sweep_rank import Objective  # noqa: E402
from daemon.backtest.sweep_space import parse_param  # noqa: E402
from daemon.backtest.time_range import parse_bound  # noqa: E402

PARAMS = ("strategies.0.params.fast=4:11:1", "strategies.0.params.slow=30,40")  # 8 x 2 = 16 sets


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs per configuration (median reported)")
    p.add_argument("--hours", type=float, default=48.0, help="hours of data per trial, from 2019-10-11")
    p.add_argument("--skip-dask", action="store_true", help="only the process pool")
    return p.parse_args(argv)


def bench_config(directory: Path) -> Path:
    """The bundled aaiti.toml with its first strategy only and an absolute data path."""
    text = (ROOT / "aaiti.toml").read_text()
    text = re.sub(r'(?m)^path = "data/', f'path = "{ROOT}/data/', text)
    first = text.index("[[strategies]]")
    text = text[:text.index("[[strategies]]", first + 1)]
    path = directory / "bench-sweep.toml"
    path.write_text(text)
    return path


def timed_runs(executor: TrialExecutor, settings: SweepSettings, runs: int) -> list[float]:
    """Seconds of each of ``runs`` sweeps of ``settings`` (after a warm-up trial per worker)."""
    # One short trial per worker, all at once, so every worker has imported and read the data once.
    fast = f"strategies.0.params.fast=5:{4 + executor.slots}:1"
    start = settings.start_ms or 0
    run_sweep(SweepSettings(settings.config_path, (parse_param(fast),), settings.objective, start_ms=start,
                            end_ms=start + 3_600_000), executor)
    out = []
    for _ in range(runs):
        started = monotonic()
        sweep = run_sweep(settings, executor)
        out.append(monotonic() - started)
        failed = [t for t in sweep["trials"] if t["status"] == "failed"]
        if failed:
            raise SystemExit(f"bench: a trial failed: {failed[0]['error']}")
    return out


@contextmanager
def dask_cluster(workers: int) -> Iterator[str]:
    """A LocalCluster with ``workers`` single-threaded worker processes; yields the scheduler address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        yield str(cluster.scheduler_address)


def compare(label: str, make: Callable[[int], Any], settings: SweepSettings, runs: int) -> float:
    """Median seconds on 1 and 2 workers; print them and the speedup; return the speedup."""
    medians = {}
    for workers in (1, 2):
        with make(workers) as executor:
            times = timed_runs(executor, settings, runs)
        medians[workers] = statistics.median(times)
        print(f"{label}: {workers} worker(s): 16 trials in {medians[workers]:.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in times)})", flush=True)
    speedup = medians[1] / medians[2]
    print(f"{label}: sweep_speedup {speedup:.2f}", flush=True)
    return speedup


@contextmanager
def pool(workers: int) -> Iterator[TrialExecutor]:
    """A PoolExecutor, closed afterwards."""
    ex = PoolExecutor(workers)
    try:
        yield ex
    finally:
        ex.close()


@contextmanager
def dask(workers: int) -> Iterator[TrialExecutor]:
    """A DaskExecutor on a fresh local cluster, closed afterwards."""
    with dask_cluster(workers) as address:
        ex = DaskExecutor(address)
        try:
            yield ex
        finally:
            ex.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the figures and a JSON summary line."""
    from daemon.logging_setup import LoggingSetup

    args = parse_args(argv)
    LoggingSetup("warning", stream=sys.stderr)
    start = parse_bound("2019-10-11")
    with tempfile.TemporaryDirectory(prefix="aaiti-bench-sweep-") as tmp:
        config = bench_config(Path(tmp))
        settings = SweepSettings(config, tuple(parse_param(p) for p in PARAMS), Objective("profit"),
                                 start_ms=start, end_ms=start + int(args.hours * 3_600_000))
        summary: dict[str, Any] = {"trials": 16, "hours_per_trial": args.hours, "runs": args.runs}
        summary["sweep_speedup"] = round(compare("process pool", pool, settings, args.runs), 3)
        if not args.skip_dask:
            summary["sweep_speedup_dask"] = round(compare("dask", dask, settings, args.runs), 3)
    print(json.dumps(summary, sort_keys=True))
    return summary


if __name__ == "__main__":
    main()
