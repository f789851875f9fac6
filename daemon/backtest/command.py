"""``aaiti backtest``: run a config's strategies over its recorded data and write the report.

Exit codes: 0 the run reached the end of the data (strategy errors, if any, are in the
report); 2 invalid config, command line, window or symbol, or a strategy that cannot load;
3 the supervisor gave up on a crashing strategy, so the run stopped early (the report is
still written); 4 a data file is missing or malformed (or the work directory's databases
cannot be created); 9 (``--check-lookahead``) a strategy's earlier decisions depend on
later data (``daemon.backtest.lookahead``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.errors import ConfigError
from daemon import exit_codes

if TYPE_CHECKING:
    from config.loader import LoadedConfig
    from daemon.backtest.lookahead import Signal
    from daemon.backtest.run import BacktestRun

__all__ = ["add_backtest_command", "cmd_backtest"]

DEFAULT_CONFIG = "aaiti.toml"


def add_backtest_command(sub: Any) -> None:
    """Register ``backtest`` on the CLI's sub-command parsers."""
    p = sub.add_parser(
        "backtest",
        help="run the config's strategies over its recorded data and report",
        description="Replays the config's market data once, as fast as possible, through the daemon's own "
                    "pipeline with a fresh paper account, then prints a summary and writes result.json, "
                    "trades.csv and report.html.",
    )
    p.add_argument("--config", "-c", default=None, help=f"config file (default: ./{DEFAULT_CONFIG})")
    p.add_argument("--from", dest="start", default=None, metavar="DATE",
                   help="first moment to replay, inclusive: YYYY-MM-DD or an ISO datetime (UTC)")
    p.add_argument("--to", dest="end", default=None, metavar="DATE",
                   help="end of the replay, exclusive: YYYY-MM-DD or an ISO datetime (UTC)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output directory (default: backtests/<config>-<from>-<to>/ next to the config)")
    p.add_argument("--check-lookahead", action="store_true",
                   help="also re-run on data cut at 5 times inside the range and check that no strategy's "
                        "decisions before a cut change (writes lookahead.json; exit 9 when one does)")
    p.set_defaults(func=cmd_backtest)


def _fail(message: str, code: int) -> int:
    print(f"aaiti: backtest: {message}", file=sys.stderr)
    return code


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run the backtest, print the table, write the files; return the exit code."""
    from adapters.market_data.errors import DataFileError
    from adapters.storage.errors import StoreError
    from daemon.backtest.inputs import load_for_backtest
    from daemon.backtest.result import build_result, default_out_dir, write_result
    from daemon.backtest.runner import BacktestError, log_finished, quiet_logging
    from daemon.backtest.table import render_table
    from daemon.backtest.time_range import parse_bound

    try:
        start_ms = parse_bound(args.start) if args.start else None
        end_ms = parse_bound(args.end) if args.end else None
    except ValueError as exc:
        return _fail(str(exc), exit_codes.CONFIG_ERROR)
    path = args.config or DEFAULT_CONFIG
    try:
        loaded = load_for_backtest(path)
    except ConfigError as exc:
        print(f"aaiti: invalid config ({len(exc.issues)} problem(s)):", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue.render(exc.source)}", file=sys.stderr)
        return exit_codes.CONFIG_ERROR
    setup = quiet_logging()
    check: bool = args.check_lookahead
    with tempfile.TemporaryDirectory(prefix="aaiti-backtest-") as tmp:
        try:
            run, signals = asyncio.run(_full_run(loaded, start_ms, end_ms, Path(tmp), check))
        except BacktestError as exc:
            return _fail(str(exc), exc.exit_code)
        except DataFileError as exc:
            return _fail(f"market data file unusable: {exc}", exit_codes.STATE_ERROR)
        except StoreError as exc:  # the work directory's fresh databases (disk full, permissions)
            return _fail(f"work database unusable: {exc}", exit_codes.STATE_ERROR)
    result = build_result(run)
    out_dir = Path(args.out) if args.out else default_out_dir(loaded.path, result)
    written = write_result(result, out_dir)
    written.append(_write_html(result, out_dir))
    # A check left by an earlier run in this directory would describe another run.
    (out_dir / "lookahead.json").unlink(missing_ok=True)
    print(render_table(result), end="")
    print("")
    for f in written:
        print(f"  wrote {f}")
    log_finished(setup, result)
    if result["summary"]["gave_up"]:
        if check:
            print("\nLookahead check skipped: the run stopped early.")
        return exit_codes.SUPERVISOR_GAVE_UP
    if check and signals is not None:
        return _check_lookahead(loaded, run, signals, start_ms, out_dir)
    return exit_codes.OK


async def _full_run(loaded: LoadedConfig, start_ms: int | None, end_ms: int | None, workdir: Path,
                    check: bool) -> tuple[BacktestRun, dict[str, tuple[Signal, ...]] | None]:
    """The backtest, and with ``check`` its signals (read from the work directory while it exists)."""
    from daemon.backtest.lookahead import collect_signals
    from daemon.backtest.runner import run_backtest

    run = await run_backtest(loaded, start_ms=start_ms, end_ms=end_ms, workdir=workdir)
    return run, (await collect_signals(run, workdir) if check else None)


def _check_lookahead(loaded: LoadedConfig, run: BacktestRun, signals: dict[str, tuple[Signal, ...]],
                     start_ms: int | None, out_dir: Path) -> int:
    """Run the cut runs, print the verdicts, write ``lookahead.json``; return the exit code."""
    from adapters.market_data.errors import DataFileError
    from adapters.storage.errors import StoreError
    from daemon.backtest.lookahead import LOOKAHEAD_FOUND, check_lookahead, render_lookahead, write_lookahead
    from daemon.backtest.runner import BacktestError

    try:
        report = asyncio.run(check_lookahead(loaded, run, signals, start_ms=start_ms))
    except BacktestError as exc:
        return _fail(f"lookahead check: {exc}", exc.exit_code)
    except ConfigError as exc:  # the config reloaded with a data-file parameter pointed at a cut copy
        return _fail(f"lookahead check: invalid config: {'; '.join(i.render(exc.source) for i in exc.issues)}",
                     exit_codes.CONFIG_ERROR)
    except DataFileError as exc:
        return _fail(f"lookahead check: market data file unusable: {exc}", exit_codes.STATE_ERROR)
    except StoreError as exc:
        return _fail(f"lookahead check: work database unusable: {exc}", exit_codes.STATE_ERROR)
    path = write_lookahead(report, out_dir)
    print("")
    print(render_lookahead(report), end="")
    print(f"  wrote {path}")
    return LOOKAHEAD_FOUND if report.flagged else exit_codes.OK


def _write_html(result: dict[str, Any], out_dir: Path) -> Path:
    from daemon.backtest.html_report import render_html

    path = out_dir / "report.html"
    path.write_bytes(render_html(result).encode("utf-8"))
    return path
