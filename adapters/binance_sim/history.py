"""Recorded market history served like Binance's database endpoints.

A symbol with recorded files (:class:`~adapters.binance_sim.config.HistoryFile`) answers
``GET /api/v3/klines``, ``/aggTrades`` and ``/historicalTrades`` from them instead of from its
live market: the recording is the exchange's past, paged exactly as Binance pages it. Live
streams, the book, ``GET /trades`` and trading are unaffected.

Where the candles of an interval come from, first that applies:

1. a candle file of that interval, as recorded (gaps stay gaps);
2. a candle file of a shorter interval that divides it, aggregated (a bucket without any
   recorded candle has no candle);
3. the recorded trades, aggregated (a bucket without trades has no candle).

Otherwise the interval is served from the live market. Every recorded print is its own
aggregate trade (``a == f == l``), so aggregate ids are the tape's trade ids.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from adapters.binance_sim.config import HistoryFile
from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.market_data import TIMEFRAMES_MS, Candle, PublicTrade, bucket_start
from adapters.binance_sim.tape import load_candles, load_tape

_DAY_MS = 86_400_000
#: Longest ``endTime - startTime`` ``GET /aggTrades`` accepts (Binance: "less than 1 hour").
AGG_TRADES_MAX_WINDOW_MS = 3_600_000


def window_too_long() -> ApiError:
    """-1127: ``startTime``/``endTime`` further apart than one hour."""
    return ApiError(400, -1127, "More than 1 hours between startTime and endTime.")


def invalid_combination() -> ApiError:
    """-1128: ``fromId`` sent together with a time window."""
    return ApiError(400, -1128, "Combination of optional parameters invalid.")


class _Series:
    """Candles of one interval sorted by open time."""

    def __init__(self, candles: Iterable[Candle]) -> None:
        self.candles = sorted(candles, key=lambda c: c.open_time)
        self.times = [c.open_time for c in self.candles]

    def window(self, start_ms: int | None, end_ms: int | None, limit: int) -> list[Candle]:
        """Like ``GET /klines``: from ``start_ms`` forward, else the last ``limit`` up to ``end_ms``."""
        hi = len(self.times) if end_ms is None else bisect.bisect_right(self.times, end_ms)
        if start_ms is not None:
            lo = bisect.bisect_left(self.times, start_ms)
            return self.candles[lo:min(hi, lo + limit)]
        return self.candles[max(0, hi - limit):hi]


def _aggregate(tf: str, candles: Sequence[Candle]) -> list[Candle]:
    """Merge ``candles`` (oldest first) into ``tf`` buckets."""
    out: list[Candle] = []
    for candle in candles:
        start = bucket_start(tf, candle.open_time)
        if out and out[-1].open_time == start:
            out[-1].merge(candle)
        else:
            out.append(replace(candle, open_time=start))
    return out


def _from_trades(tf: str, trades: Sequence[PublicTrade]) -> list[Candle]:
    """``tf`` candles of the buckets that have trades."""
    out: list[Candle] = []
    for trade in trades:
        start = bucket_start(tf, trade.time_ms)
        if not out or out[-1].open_time != start:
            out.append(Candle.flat(start, trade.price))
        out[-1].add(trade)
    return out


def _divides(source_tf: str, tf: str) -> bool:
    """True when ``source_tf`` buckets nest exactly inside ``tf`` buckets."""
    src, dst = TIMEFRAMES_MS[source_tf], TIMEFRAMES_MS[tf]
    if src is None:
        return False
    if dst is None or tf == "1w":  # calendar months and Monday weeks are made of whole days
        return _DAY_MS % src == 0
    return src < dst and dst % src == 0


class RecordedHistory:
    """The recorded trades and candles of one symbol (see the module doc)."""

    def __init__(
        self, trades: Sequence[PublicTrade] = (), candles: Mapping[str, Sequence[Candle]] | None = None
    ) -> None:
        self.trades = sorted(trades, key=lambda t: t.trade_id)
        self._ids = [t.trade_id for t in self.trades]
        # aggTrades by time needs time order; tapes are in time order except for rare late prints.
        self._by_time = sorted(self.trades, key=lambda t: (t.time_ms, t.trade_id))
        self._times = [t.time_ms for t in self._by_time]
        self._recorded = {tf: _Series(rows) for tf, rows in (candles or {}).items()}
        self._derived: dict[str, _Series | None] = {}

    def _series(self, tf: str) -> _Series | None:
        if tf in self._recorded:
            return self._recorded[tf]
        if tf not in self._derived:
            sources = [s for s in self._recorded if _divides(s, tf)]
            if sources:
                finest = max(sources, key=lambda s: TIMEFRAMES_MS[s] or 0)
                self._derived[tf] = _Series(_aggregate(tf, self._recorded[finest].candles))
            elif self.trades:
                self._derived[tf] = _Series(_from_trades(tf, self._by_time))
            else:
                self._derived[tf] = None
        return self._derived[tf]

    def serves_klines(self, tf: str) -> bool:
        """True when ``tf`` candles come from the recording."""
        return self._series(tf) is not None

    def klines(self, tf: str, *, start_ms: int | None, end_ms: int | None, limit: int) -> list[Candle]:
        """``GET /klines``: open time in ``[startTime, endTime]``, the first ``limit`` from
        ``startTime`` or, without it, the last ``limit`` up to ``endTime`` (or the end)."""
        series = self._series(tf)
        return [] if series is None else series.window(start_ms, end_ms, limit)

    @property
    def serves_trades(self) -> bool:
        """True when trades come from the recording."""
        return bool(self.trades)

    def agg_trades(
        self, *, from_id: int | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[PublicTrade]:
        """``GET /aggTrades``: ``fromId`` onwards, or inside ``[startTime, endTime]`` (inclusive,
        at most one hour apart), the first ``limit``; without either the most recent ``limit``."""
        if from_id is not None:
            if start_ms is not None or end_ms is not None:
                raise invalid_combination()
            return self.historical_trades(from_id=from_id, limit=limit)
        if start_ms is not None and end_ms is not None and end_ms - start_ms > AGG_TRADES_MAX_WINDOW_MS:
            raise window_too_long()
        if start_ms is not None:
            lo = bisect.bisect_left(self._times, start_ms)
            hi = len(self._times) if end_ms is None else bisect.bisect_right(self._times, end_ms)
            return self._by_time[lo:min(hi, lo + limit)]
        hi = len(self._times) if end_ms is None else bisect.bisect_right(self._times, end_ms)
        return self._by_time[max(0, hi - limit):hi]

    def historical_trades(self, *, from_id: int | None, limit: int) -> list[PublicTrade]:
        """``GET /historicalTrades``: ``limit`` trades from id ``fromId``, else the most recent."""
        if from_id is None:
            return self.trades[-limit:]
        lo = bisect.bisect_left(self._ids, from_id)
        return self.trades[lo:lo + limit]


def _tape_trades(path: str) -> list[PublicTrade]:
    return [
        PublicTrade(t.trade_id, t.price, t.amount, t.ts_ms, buyer_is_maker=t.side == "SELL")
        for t in load_tape(path)
    ]


def _candles(path: str) -> list[Candle]:
    return [
        Candle(c.ts_ms, c.open, c.high, c.low, c.close, volume=c.volume)
        for c in load_candles(path)
    ]


def load_history(files: Sequence[HistoryFile]) -> dict[str, RecordedHistory]:
    """Read every recorded file; one :class:`RecordedHistory` per symbol that has any.

    Raises ``ValueError`` naming the file for an unknown interval or an unreadable file.
    """
    trades: dict[str, list[PublicTrade]] = {}
    candles: dict[str, dict[str, list[Candle]]] = {}
    for item in files:
        if item.kind == "trades":
            trades.setdefault(item.symbol, []).extend(_tape_trades(item.path))
        elif item.kind in TIMEFRAMES_MS:
            if item.kind in candles.get(item.symbol, {}):
                raise ValueError(f"{item.path}: a second {item.kind} candle file for {item.symbol}")
            candles.setdefault(item.symbol, {})[item.kind] = _candles(item.path)
        else:
            raise ValueError(f"{item.path}: kind must be 'trades' or a kline interval, got {item.kind!r}")
    return {
        symbol: RecordedHistory(trades.get(symbol, ()), candles.get(symbol))
        for symbol in sorted(set(trades) | set(candles))
    }


__all__ = ["AGG_TRADES_MAX_WINDOW_MS", "RecordedHistory", "load_history"]
