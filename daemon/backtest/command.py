"""``aaiti backtest``: run a config's strategies over its recorded data and write the report.

Exit codes: 0 the run reached the end of the data (strategy errors, if any, are in the
report); 2 invalid config, command line, window or symbol, or a strategy that cannot load;
3 the supervisor gave up on a crashing strategy, so the run stopped early (the report is
still written); 4 a data file is missing or malformed (or the work directory's databases
cannot be created).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from config.errors import ConfigError
from daemon import exit_codes

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
    from daemon.backtest.runner import BacktestError, log_finished, quiet_logging, run_backtest
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
    with tempfile.TemporaryDirectory(prefix="aaiti-backtest-") as tmp:
        try:
            run = asyncio.run(run_backtest(loaded, start_ms=start_ms, end_ms=end_ms, workdir=Path(tmp)))
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
    print(render_table(result), end="")
    print("")
    for f in written:
        print(f"  wrote {f}")
    log_finished(setup, result)
    return exit_codes.SUPERVISOR_GAVE_UP if result["summary"]["gave_up"] else exit_codes.OK


def _write_html(result: dict[str, Any], out_dir: Path) -> Path:
    from daemon.backtest.html_report import render_html

    path = out_dir / "report.html"
    path.write_bytes(render_html(result).encode("utf-8"))
    return path
