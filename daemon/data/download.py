"""Download market history through ccxt into a strict-format data file, resumably.

One download = one exchange, one symbol and either one candle timeframe or the trade tape,
over ``[start_ms, end_ms)``:

1. the exchange is built like the live venue's (``adapters.ccxt_venue.client.build_exchange``:
   ccxt's rate limiter on, optionally pointed at ``base_url``) and its markets loaded; an
   unknown exchange, symbol or timeframe is a :class:`DownloadUsageError`;
2. an existing file is read with the strict reader and paging continues after its last row
   (a file that does not pass the reader is never appended to: ``DataFileError``);
3. pages are fetched (``fetch_ohlcv`` / ``fetch_trades``) and appended as they arrive, each
   call retried on network errors (rate limits included) with exponential backoff and jitter;
4. the whole file is read back with the strict reader and the gaps of the range reported.

Only complete candles are written: the candle still open at ``now`` is left for a later run.
ccxt is imported when a download starts, never at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.kernel.clock import WallClock
from adapters.market_data.csv_reader import (
    CANDLE_HEADER,
    TRADE_HEADER,
    CandleRow,
    FileReport,
    TradeRow,
)
from config.schema.market import timeframe_ms
from daemon.data.files import (
    TRADES,
    append_lines,
    candle_line,
    data_file_name,
    read_back_candles,
    read_back_trades,
    trade_line,
)
from daemon.data.paging import (
    CandlePager,
    GapReport,
    PagingStuck,
    TradePager,
    align_up,
    candle_gaps,
    trade_id_gaps,
)

__all__ = [
    "DownloadError",
    "DownloadRequest",
    "DownloadResult",
    "DownloadUsageError",
    "VenueUnreachable",
    "download",
]

#: ccxt's Binance ``fetch_trades(since=...)`` asks ``aggTrades`` for ``[since, since + 1 h]``.
_BINANCE_TRADES_WINDOW_MS = 3_600_000
_BINANCE_IDS = frozenset({"binance", "binanceus"})


class DownloadError(Exception):
    """A download that cannot go on; ``str()`` is the one-line reason."""


class DownloadUsageError(DownloadError):
    """The request names something the exchange does not have (exchange, symbol, timeframe)."""


class VenueUnreachable(DownloadError):
    """The exchange could not be reached (after the retries) or refused the requests."""


@dataclass(frozen=True, slots=True)
class DownloadRequest:
    """What to download; ``kind`` is a timeframe (``"1m"``) or ``"trades"``; ``end_ms`` None = now."""

    exchange_id: str
    symbol: str
    kind: str
    start_ms: int
    end_ms: int | None
    out_dir: Path
    base_url: str = ""
    limit: int = 1000
    retries: int = 5
    request_timeout_s: float = 10.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0


@dataclass(frozen=True, slots=True)
class DownloadResult:
    """What a download did and what the file now holds over the requested range.

    ``resumed_after`` is the open time (candles) or trade id (trades) of the file's last row
    before this run (None: a new file); ``file_starts_at`` is the existing file's first row
    when the exchange has rows between ``start_ms`` and it (one probe request finds out): that
    earlier part is not fetched, rows are only ever appended.
    """

    path: Path
    kind: str
    symbol: str
    start_ms: int
    end_ms: int
    written: int
    rows_in_range: int
    resumed_after: int | None
    file_starts_at: int | None
    gaps: GapReport
    file_report: FileReport


def _ccxt_errors() -> Any:
    import ccxt.async_support as ccxt_async  # its namespace carries ccxt's exception classes

    return ccxt_async


def _build(req: DownloadRequest) -> Any:
    from adapters.ccxt_venue.client import ExchangeConfigError, build_exchange
    from config.schema.trading import CcxtVenueSection

    cfg = CcxtVenueSection(exchange_id=req.exchange_id, base_url=req.base_url,
                           request_timeout_s=req.request_timeout_s)
    try:
        # Public data only: no credentials (``environ={}``: none taken from the environment).
        return build_exchange(cfg, pro=False, environ={})
    except ExchangeConfigError as exc:
        raise DownloadUsageError(str(exc)) from None


class _Caller:
    """Runs ccxt calls with retries on network errors and maps ccxt's errors to ours."""

    def __init__(self, req: DownloadRequest) -> None:
        self._req = req
        self._errors = _ccxt_errors()

    async def __call__(self, what: str, fn: Callable[[], Any]) -> Any:
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

        errors = self._errors
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self._req.retries)),
            wait=wait_exponential_jitter(initial=self._req.retry_initial_s, max=self._req.retry_max_s),
            retry=retry_if_exception_type(errors.NetworkError),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await fn()
        except errors.BadSymbol as exc:
            raise DownloadUsageError(f"{what}: unknown symbol: {exc}") from None
        except errors.NetworkError as exc:
            raise VenueUnreachable(
                f"{what}: {self._req.exchange_id} not reachable after {self._req.retries} attempt(s): "
                f"{type(exc).__name__}: {exc}"
            ) from None
        except errors.BaseError as exc:
            raise VenueUnreachable(f"{what}: {self._req.exchange_id} refused: {type(exc).__name__}: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity either returns or raises


def _resolve_symbol(exchange: Any, symbol: str) -> str:
    markets: dict[str, Any] = exchange.markets or {}
    for candidate in (symbol, symbol.replace("-", "/").upper()):
        if candidate in markets:
            return candidate
    by_id = getattr(exchange, "markets_by_id", None) or {}
    if symbol.upper() in by_id:
        entry = by_id[symbol.upper()]
        market = entry[0] if isinstance(entry, list) else entry
        return str(market["symbol"])
    examples = ", ".join(sorted(markets)[:5])
    raise DownloadUsageError(f"unknown symbol {symbol!r} on {exchange.id} (markets include: {examples})")


def _check_timeframe(exchange: Any, timeframe: str) -> int:
    offered = dict(getattr(exchange, "timeframes", None) or {})
    if not exchange.has.get("fetchOHLCV"):
        raise DownloadUsageError(f"{exchange.id} does not serve candles (fetchOHLCV)")
    if timeframe not in offered:
        raise DownloadUsageError(
            f"unknown timeframe {timeframe!r} on {exchange.id} (offered: {', '.join(offered)})"
        )
    try:
        return timeframe_ms(timeframe)
    except ValueError:
        raise DownloadUsageError(
            f"timeframe {timeframe!r} cannot be stored: candle files need open times that are multiples of "
            "a fixed length (seconds, minutes, hours or days)"
        ) from None


def _candle_rows(page: Sequence[Sequence[Any]]) -> list[CandleRow]:
    rows = []
    for r in page:
        if any(v is None for v in r[:6]):
            raise VenueUnreachable(f"the exchange sent a candle with missing values: {list(r)!r}")
        rows.append(CandleRow(int(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5])))
    return rows


def _trade_rows(page: Sequence[dict[str, Any]]) -> list[TradeRow]:
    rows = []
    for t in page:
        try:
            trade_id = int(t["id"])
        except (TypeError, ValueError):
            raise DownloadUsageError(
                f"trade id {t.get('id')!r} is not an integer: the trade tape format needs integer ids"
            ) from None
        if t.get("side") not in ("buy", "sell") or t.get("timestamp") is None:
            raise VenueUnreachable(f"the exchange sent a trade without side or time: {t.get('info')!r}")
        rows.append(TradeRow(int(t["timestamp"]), trade_id, str(t["side"]), float(t["price"]), float(t["amount"])))
    return rows


async def _download_candles(
    exchange: Any, call: _Caller, req: DownloadRequest, symbol: str, path: Path, now_ms: int
) -> DownloadResult:
    tf_ms = _check_timeframe(exchange, req.kind)
    # The candle still open at ``now`` would change: only complete ones are written.
    end_ms = min(req.end_ms if req.end_ms is not None else now_ms, now_ms // tf_ms * tf_ms)
    existing = read_back_candles(path, req.kind, tf_ms)
    last_ts = existing.rows[-1].ts_ms if existing and existing.rows else None
    first_ts = existing.rows[0].ts_ms if existing and existing.rows else None
    pager = CandlePager(start_ms=req.start_ms, end_ms=end_ms, tf_ms=tf_ms, last_ts=last_ts)
    missed_head = None
    if first_ts is not None and first_ts > align_up(req.start_ms, tf_ms):
        probe = await call(f"fetch_ohlcv({symbol}, {req.kind}, since={req.start_ms}, limit=1)",
                           lambda: exchange.fetch_ohlcv(symbol, req.kind, since=req.start_ms, limit=1))
        missed_head = first_ts if probe and int(probe[0][0]) < first_ts else None
    written = 0
    while not pager.done:
        since = pager.since
        page = await call(
            f"fetch_ohlcv({symbol}, {req.kind}, since={since})",
            functools.partial(exchange.fetch_ohlcv, symbol, req.kind, since=since, limit=req.limit),
        )
        rows = pager.accept(_candle_rows(page))
        append_lines(path, CANDLE_HEADER, [candle_line(r) for r in rows])
        written += len(rows)
    final = read_back_candles(path, req.kind, tf_ms)
    times = [r.ts_ms for r in final.rows] if final else []
    in_range = sum(1 for t in times if req.start_ms <= t < end_ms)
    return DownloadResult(
        path, req.kind, symbol, req.start_ms, end_ms, written, in_range, last_ts, missed_head,
        candle_gaps(times, req.start_ms, end_ms, tf_ms),
        final.report if final else FileReport(str(path), 0, 0, kind="candles"),
    )


async def _download_trades(
    exchange: Any, call: _Caller, req: DownloadRequest, symbol: str, path: Path, now_ms: int
) -> DownloadResult:
    if not exchange.has.get("fetchTrades"):
        raise DownloadUsageError(f"{exchange.id} does not serve trades (fetchTrades)")
    end_ms = min(req.end_ms if req.end_ms is not None else now_ms, now_ms)
    existing = read_back_trades(path)
    last = max(existing.rows, key=lambda r: r.trade_id) if existing and existing.rows else None
    first_ts = min(r.ts_ms for r in existing.rows) if existing and existing.rows else None
    binance_aggs = exchange.id in _BINANCE_IDS and exchange.options.get("fetchTradesMethod") in (
        None, "publicGetAggTrades")
    pager = TradePager(
        start_ms=req.start_ms, end_ms=end_ms, limit=req.limit, by_id=binance_aggs,
        window_ms=_BINANCE_TRADES_WINDOW_MS if exchange.id in _BINANCE_IDS else None,
        last=last, ids_at_last_ts=[r.trade_id for r in existing.rows if last and r.ts_ms == last.ts_ms]
        if existing else (),
    )
    missed_head = None
    if first_ts is not None and first_ts > req.start_ms:
        probe = await call(f"fetch_trades({symbol}, since={req.start_ms}, limit=1)",
                           lambda: exchange.fetch_trades(symbol, since=req.start_ms, limit=1))
        missed_head = first_ts if probe and int(probe[0]["timestamp"]) < first_ts else None
    written = 0
    while not pager.done:
        ask = pager.request()
        params: dict[str, Any] = {} if ask.from_id is None else {"fromId": ask.from_id}
        page = await call(
            f"fetch_trades({symbol}, since={ask.since}, fromId={ask.from_id})",
            functools.partial(exchange.fetch_trades, symbol, since=ask.since, limit=req.limit, params=params),
        )
        try:
            rows = pager.accept(_trade_rows(page))
        except PagingStuck as exc:
            raise VenueUnreachable(str(exc)) from None
        append_lines(path, TRADE_HEADER, [trade_line(r) for r in rows])
        written += len(rows)
    final = read_back_trades(path)
    ids = [r.trade_id for r in final.rows if req.start_ms <= r.ts_ms < end_ms] if final else []
    return DownloadResult(
        path, TRADES, symbol, req.start_ms, end_ms, written, len(ids),
        last.trade_id if last else None, missed_head,
        trade_id_gaps(ids),
        final.report if final else FileReport(str(path), 0, 0, kind="trades"),
    )


async def download(req: DownloadRequest, *, now_ms: Callable[[], int] | None = None) -> DownloadResult:
    """Run one download (see the module doc); ``now_ms`` (default: the wall clock) ends an open range.

    Raises :class:`DownloadUsageError` (bad exchange, symbol or timeframe),
    :class:`VenueUnreachable` (network, refusals) or ``DataFileError`` (an existing file that
    is not valid, or a written file that does not read back).
    """
    exchange = _build(req)
    try:
        call = _Caller(req)
        await call("load_markets", lambda: exchange.load_markets())
        symbol = _resolve_symbol(exchange, req.symbol)
        path = req.out_dir / data_file_name(exchange.id, symbol, req.kind)
        now = (now_ms or WallClock().now_ms)()
        if req.kind == TRADES:
            return await _download_trades(exchange, call, req, symbol, path, now)
        return await _download_candles(exchange, call, req, symbol, path, now)
    finally:
        await exchange.close()
