"""``aaiti sweep``: backtest a config over a parameter space and rank the parameter sets.

Exit codes: 0 the sweep ran and at least one trial succeeded (failed trials, if any, are in
the table); 1 every trial failed (the table says why); 2 invalid config, ``--param``,
window, walk-forward split or option, or the Dask scheduler cannot be reached.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon import exit_codes

__all__ = ["NO_TRIAL_SUCCEEDED", "add_sweep_command", "cmd_sweep", "write_sweep"]

DEFAULT_CONFIG = "aaiti.toml"
#: Exit status when the sweep ran but every trial failed.
NO_TRIAL_SUCCEEDED = 1


def add_sweep_command(sub: Any) -> None:
    """Register ``sweep`` on the CLI's sub-command parsers."""
    p = sub.add_parser(
        "sweep",
        help="backtest the config over a parameter space and rank the parameter sets",
        description="Runs the config's backtest once per parameter set, in parallel on a local process pool "
                    "or a Dask cluster, ranks the sets by an objective and writes sweep.json, table.txt, "
                    "best.toml and landscape.html.",
    )
    p.add_argument("--config", "-c", default=None, help=f"config file (default: ./{DEFAULT_CONFIG})")
    p.add_argument("--param", action="append", default=[], metavar="KEY=SPEC", required=True,
                   help="a swept config key: lo:hi:step (ends included), a,b,c, or lo:hi (optuna samplers); "
                        "repeat for more keys (e.g. strategies.0.params.fast=5:20:5)")
    p.add_argument("--sampler", default="grid", choices=("grid", "tpe", "random", "cmaes"),
                   help="grid: every combination (default); tpe/random/cmaes: optuna samplers")
    p.add_argument("--trials", type=int, default=None, metavar="N",
                   help="trials of an optuna sampler (default 50); with grid, a seeded random subset of N points")
    p.add_argument("--objective", default="sharpe", choices=("sharpe", "calmar", "profit", "profit_dd"),
                   help="what to maximise (default sharpe); profit_dd: profit within --max-drawdown-pct")
    p.add_argument("--max-drawdown-pct", type=float, default=None, metavar="X",
                   help="a trial whose max drawdown exceeds X%% scores -inf (required by profit_dd)")
    p.add_argument("--from", dest="start", default=None, metavar="DATE",
                   help="first moment replayed, inclusive: YYYY-MM-DD or an ISO datetime (UTC)")
    p.add_argument("--to", dest="end", default=None, metavar="DATE",
                   help="end of the replay, exclusive: YYYY-MM-DD or an ISO datetime (UTC)")
    p.add_argument("--walk-forward", default=None, metavar="TRAIN:TEST",
                   help="optimise on each train window, test the best on the next: durations (14d:7d) "
                        "or a fold count")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default: the CPU count)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run the trials on this Dask scheduler's workers instead of local processes")
    p.add_argument("--retries", type=int, default=1, metavar="N",
                   help="times a trial whose worker died is run again before it is reported failed (default 1)")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="trials asked and run at once (default: the worker count; grid: all)")
    p.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: sweeps/<config>-<objective>/ next to the config)")
    p.set_defaults(func=cmd_sweep)


def _fail(message: str, code: int = exit_codes.CONFIG_ERROR) -> int:
    print(f"aaiti: sweep: {message}", file=sys.stderr)
    return code


def _progress(line: str) -> None:
    print(f"aaiti: sweep: {line}", file=sys.stderr, flush=True)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the sweep, print the ranked table, write the files; return the exit code."""
    from daemon.backtest.sweep import SweepError, SweepSettings, run_sweep
    from daemon.backtest.sweep_exec import DaskExecutor, ExecutorError, PoolExecutor, TrialExecutor
    from daemon.backtest.sweep_rank import Objective
    from daemon.backtest.sweep_report import default_out_dir, render_table
    from daemon.backtest.sweep_space import SpecError, parse_param
    from daemon.backtest.sweep_windows import parse_walk_forward
    from daemon.backtest.time_range import parse_bound

    for name in ("workers", "trials", "batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return _fail(f"--{name} must be at least 1")
    if args.retries < 0:
        return _fail("--retries must be >= 0")
    path = Path(args.config or DEFAULT_CONFIG)
    try:
        specs = tuple(parse_param(p) for p in args.param)
        settings = SweepSettings(
            config_path=path,
            specs=specs,
            objective=Objective(args.objective, args.max_drawdown_pct),
            sampler=args.sampler,
            trials=args.trials,
            seed=args.seed,
            start_ms=parse_bound(args.start) if args.start else None,
            end_ms=parse_bound(args.end) if args.end else None,
            walk_forward=parse_walk_forward(args.walk_forward) if args.walk_forward else None,
            batch=args.batch,
            retries=args.retries,
        )
        if settings.sampler == "grid":
            from daemon.backtest.sweep_space import grid_size

            grid_size(specs)  # an interval has no grid: say so before any worker starts
    except (SpecError, ValueError) as exc:
        return _fail(str(exc))
    from daemon.logging_setup import LoggingSetup

    LoggingSetup("warning", stream=sys.stderr)  # as a backtest: warnings and errors only (the data file report is info)
    executor: TrialExecutor
    try:
        if args.scheduler:
            executor = DaskExecutor(args.scheduler, args.retries, run_id=path.stem)
        else:
            executor = PoolExecutor(args.workers or os.cpu_count() or 1, args.retries)
    except ExecutorError as exc:
        return _fail(str(exc))
    try:
        sweep = run_sweep(settings, executor, _progress)
    except (SweepError, SpecError) as exc:
        return _fail(str(exc))
    except ExecutorError as exc:
        return _fail(str(exc), NO_TRIAL_SUCCEEDED)
    finally:
        executor.close()
    out_dir = Path(args.out) if args.out else default_out_dir(path, args.objective)
    written = write_sweep(sweep, out_dir, path.read_text(encoding="utf-8"))
    print(render_table(sweep), end="")
    print("")
    best_toml = out_dir / "best.toml"
    if sweep["best"] is not None:
        print(f"Best parameters as config ({best_toml}):\n")
        print(best_toml.read_text(encoding="utf-8"))
    for f in written:
        print(f"  wrote {f}")
    return exit_codes.OK if _any_success(sweep) else NO_TRIAL_SUCCEEDED


def _any_success(sweep: Mapping[str, Any]) -> bool:
    wf = sweep["walk_forward"]
    trials = sweep["trials"] if wf is None else [t for f in wf["folds"] for t in f["trials"]]
    return any(t["status"] != "failed" for t in trials)


def write_sweep(sweep: Mapping[str, Any], out_dir: Path, config_text: str) -> list[Path]:
    """Write sweep.json (canonical JSON), table.txt, best.toml and landscape.html into ``out_dir`` (created)."""
    from daemon.backtest.result import dump_json
    from daemon.backtest.sweep_html import render_landscape
    from daemon.backtest.sweep_report import render_best_toml, render_table

    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "sweep.json": dump_json(sweep),
        "table.txt": render_table(sweep),
        "best.toml": render_best_toml(sweep, config_text),
        "landscape.html": render_landscape(sweep),
    }
    written = []
    for name, text in files.items():
        target = out_dir / name
        target.write_bytes(text.encode("utf-8"))
        written.append(target)
    return written
