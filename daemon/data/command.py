"""The ``aaiti data`` verb: ``aaiti data download ...`` (arguments, exit codes, the printed report).

Exit codes: 0 done (gaps are reported, not an error), 2 bad command line or an exchange,
symbol or timeframe the exchange does not have, 4 an existing data file that does not pass
the strict reader, 8 the exchange could not be reached or refused the requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon import exit_codes

#: How many gap ranges the report lists (the count is always complete).
_GAPS_SHOWN = 5


def parse_time_ms(text: str) -> int:
    """``2019-10-11``, ``2019-10-11T12:30``, ``2019-10-11T12:30:00Z`` (UTC unless an offset is
    given) or epoch milliseconds, as epoch milliseconds; ``ValueError`` otherwise."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_data_commands(sub: Any) -> None:
    """Register ``aaiti data download`` on the top-level sub-parser collection ``sub``."""
    p = sub.add_parser("data", help="market-data files (download history)")
    data = p.add_subparsers(dest="data_command", required=True)
    d = data.add_parser(
        "download",
        help="fetch candles or trades through ccxt into the data directory (resumable)",
        description="Fetch OHLCV candles (--timeframe) or the trade tape (--trades) of one symbol through "
        "ccxt into <out>/<exchange>_<BASE>-<QUOTE>_<timeframe|trades>.csv.gz. Re-running continues after "
        "the file's last row. Missing candles / trade ids in the range are reported at the end.",
    )
    d.add_argument("--exchange", required=True, help="ccxt exchange id, e.g. binance")
    d.add_argument("--symbol", required=True, help="symbol, e.g. XRP/ETH (XRP-ETH and XRPETH work too)")
    what = d.add_mutually_exclusive_group(required=True)
    what.add_argument("--timeframe", help="candle timeframe, e.g. 1m, 5m, 1h, 1d")
    what.add_argument("--trades", action="store_true", help="download the trade tape instead of candles")
    d.add_argument("--since", required=True, help="start (inclusive): 2019-10-11, 2019-10-11T12:00[Z] or epoch ms")
    d.add_argument("--until", default=None, help="end (exclusive), same forms; default: now")
    d.add_argument("--out", default=None,
                   help="data directory (default: data/market next to --config, else under the current directory)")
    d.add_argument("--config", "-c", default=None, help="config file whose directory holds data/market")
    d.add_argument("--base-url", default="", help="REST origin to use instead of the exchange's, e.g. a simulator")
    d.add_argument("--limit", type=int, default=1000, help="rows asked per request (the exchange may cap it)")
    d.add_argument("--retries", type=int, default=5, help="attempts per request on network errors (>= 1)")
    d.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    d.set_defaults(func=cmd_data_download)


def _fail(code: int, message: str) -> int:
    print(f"aaiti: {message}", file=sys.stderr)
    return code


def cmd_data_download(args: argparse.Namespace) -> int:
    """Run ``aaiti data download`` and print its report."""
    from adapters.market_data.errors import DataFileError
    from daemon.data.download import DownloadRequest, DownloadUsageError, VenueUnreachable, download
    from daemon.data.files import TRADES

    try:
        start_ms = parse_time_ms(args.since)
        end_ms = parse_time_ms(args.until) if args.until else None
    except ValueError as exc:
        return _fail(exit_codes.CONFIG_ERROR, f"bad date: {exc}")
    if end_ms is not None and end_ms <= start_ms:
        return _fail(exit_codes.CONFIG_ERROR, "--until must be after --since")
    if args.limit < 1 or args.retries < 1 or args.timeout <= 0:
        return _fail(exit_codes.CONFIG_ERROR, "--limit and --retries must be >= 1 and --timeout > 0")
    if args.out:
        out_dir = Path(args.out)
    else:
        out_dir = (Path(args.config).resolve().parent if args.config else Path.cwd()) / "data" / "market"
    req = DownloadRequest(
        exchange_id=args.exchange,
        symbol=args.symbol,
        kind=TRADES if args.trades else args.timeframe,
        start_ms=start_ms,
        end_ms=end_ms,
        out_dir=out_dir,
        base_url=args.base_url,
        limit=args.limit,
        retries=args.retries,
        request_timeout_s=args.timeout,
    )
    try:
        result = asyncio.run(download(req))
    except DownloadUsageError as exc:
        return _fail(exit_codes.CONFIG_ERROR, str(exc))
    except VenueUnreachable as exc:
        return _fail(exit_codes.VENUE_ERROR, str(exc))
    except DataFileError as exc:
        return _fail(exit_codes.STATE_ERROR, f"data file not usable (nothing appended): {exc}")
    what = "trade ids" if result.kind == TRADES else "candles"
    gaps = [{"first": g.first, "last": g.last, "missing": g.missing} for g in result.gaps.ranges]
    if args.json:
        print(json.dumps({
            "path": str(result.path), "kind": result.kind, "symbol": result.symbol,
            "start_ms": result.start_ms, "end_ms": result.end_ms, "written": result.written,
            "rows_in_range": result.rows_in_range, "resumed_after": result.resumed_after,
            "file_starts_at": result.file_starts_at, "missing": result.gaps.missing, "gaps": gaps,
            "file_anomalies": result.file_report.summary() if result.file_report.duplicates_skipped
            or result.file_report.out_of_order else "clean",
        }))
        return exit_codes.OK
    rows = "trades" if result.kind == TRADES else f"{result.kind} candles"
    resumed = f" (resumed after {result.resumed_after if result.kind == TRADES else _iso(result.resumed_after)})" \
        if result.resumed_after is not None else ""
    print(f"aaiti: wrote {result.written} {rows} to {result.path}{resumed}")
    print(f"aaiti: {_iso(result.start_ms)} .. {_iso(result.end_ms)}: {result.rows_in_range} rows in the file")
    if result.file_starts_at is not None:
        print(f"aaiti: note: the file starts at {_iso(result.file_starts_at)}; earlier rows were not fetched "
              "(rows are only appended: use another --out for an earlier range)")
    if result.gaps.missing:
        shown = ", ".join(
            (f"{_iso(g.first)}..{_iso(g.last)}" if result.kind != TRADES else f"{g.first}..{g.last}")
            + f" ({g.missing})"
            for g in result.gaps.ranges[:_GAPS_SHOWN]
        )
        more = f", ... {len(result.gaps.ranges) - _GAPS_SHOWN} more" if len(result.gaps.ranges) > _GAPS_SHOWN else ""
        print(f"aaiti: gaps: {result.gaps.missing} missing {what} in {len(result.gaps.ranges)} range(s): {shown}{more}")
    else:
        print(f"aaiti: gaps: none (no missing {what} in the range)")
    return exit_codes.OK
