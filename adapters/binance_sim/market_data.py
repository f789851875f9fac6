"""Public market statistics per symbol: recent trades, candles, rolling 24 h ticker."""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType

from adapters.binance_sim.decimals import ZERO

_DAY_MS = 86_400_000
_WEEK_OFFSET_MS = 4 * _DAY_MS  # Binance weeks start on Monday; 1970-01-01 was a Thursday

#: Kline intervals (the ccxt timeframe strings); ``None`` marks the calendar month.
TIMEFRAMES_MS: Mapping[str, int | None] = MappingProxyType(
    {
        "1s": 1_000,
        "1m": 60_000,
        "3m": 180_000,
        "5m": 300_000,
        "15m": 900_000,
        "30m": 1_800_000,
        "1h": 3_600_000,
        "2h": 7_200_000,
        "4h": 14_400_000,
        "6h": 21_600_000,
        "8h": 28_800_000,
        "12h": 43_200_000,
        "1d": _DAY_MS,
        "3d": 3 * _DAY_MS,
        "1w": 7 * _DAY_MS,
        "1M": None,
    }
)


def bucket_start(tf: str, t_ms: int) -> int:
    """Open time of the ``tf`` candle containing ``t_ms``."""
    size = TIMEFRAMES_MS[tf]
    if size is None:
        d = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
        return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp() * 1000)
    if tf == "1w":
        return (t_ms - _WEEK_OFFSET_MS) // size * size + _WEEK_OFFSET_MS
    return t_ms // size * size


def next_bucket(tf: str, start_ms: int) -> int:
    """Open time of the candle after the one opening at ``start_ms``."""
    size = TIMEFRAMES_MS[tf]
    if size is not None:
        return start_ms + size
    d = datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)


def prev_bucket(tf: str, start_ms: int) -> int:
    """Open time of the candle before the one opening at ``start_ms``."""
    size = TIMEFRAMES_MS[tf]
    if size is not None:
        return start_ms - size
    return bucket_start(tf, start_ms - 1)


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One public print (``buyer_is_maker`` is Binance's ``m``: True means a sell taker)."""

    trade_id: int
    price: Decimal
    qty: Decimal
    time_ms: int
    buyer_is_maker: bool


@dataclass(slots=True)
class Candle:
    """OHLCV with Binance's extra kline fields."""

    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO
    quote_volume: Decimal = ZERO
    trades: int = 0
    taker_buy_base: Decimal = ZERO
    taker_buy_quote: Decimal = ZERO
    first_trade_id: int = -1
    last_trade_id: int = -1

    @classmethod
    def flat(cls, open_time: int, price: Decimal) -> Candle:
        """A candle without trades at ``price``."""
        return cls(open_time, price, price, price, price)

    def add(self, trade: PublicTrade) -> None:
        """Fold one trade into the candle."""
        if self.trades == 0 and self.volume == 0:
            self.open = self.high = self.low = trade.price
        self.high = max(self.high, trade.price)
        self.low = min(self.low, trade.price)
        self.close = trade.price
        quote = trade.price * trade.qty
        self.volume += trade.qty
        self.quote_volume += quote
        self.trades += 1
        if not trade.buyer_is_maker:
            self.taker_buy_base += trade.qty
            self.taker_buy_quote += quote
        if self.first_trade_id < 0:
            self.first_trade_id = trade.trade_id
        self.last_trade_id = trade.trade_id

    def merge(self, later: Candle) -> None:
        """Extend this candle with a later one (aggregation to a longer timeframe)."""
        self.high = max(self.high, later.high)
        self.low = min(self.low, later.low)
        self.close = later.close
        self.volume += later.volume
        self.quote_volume += later.quote_volume
        self.trades += later.trades
        self.taker_buy_base += later.taker_buy_base
        self.taker_buy_quote += later.taker_buy_quote
        if self.first_trade_id < 0:
            self.first_trade_id = later.first_trade_id
        if later.last_trade_id >= 0:
            self.last_trade_id = later.last_trade_id


class CandleSeries:
    """Candles of one fixed resolution, keyed by open time, bounded in length."""

    def __init__(self, resolution_ms: int, max_len: int) -> None:
        self.resolution_ms = resolution_ms
        self._max_len = max(1, max_len)
        self._times: list[int] = []
        self._candles: dict[int, Candle] = {}

    @property
    def first_time(self) -> int | None:
        """Open time of the oldest stored candle."""
        return self._times[0] if self._times else None

    def _slot(self, open_time: int, price: Decimal) -> Candle:
        candle = self._candles.get(open_time)
        if candle is None:
            candle = self._candles[open_time] = Candle.flat(open_time, price)
            if not self._times or open_time > self._times[-1]:
                self._times.append(open_time)
            else:
                bisect.insort(self._times, open_time)
            # Trim in batches so the list copy is amortised.
            if len(self._times) > self._max_len + self._max_len // 4 + 1:
                for t in self._times[: len(self._times) - self._max_len]:
                    del self._candles[t]
                del self._times[: len(self._times) - self._max_len]
        return candle

    def add_trade(self, trade: PublicTrade) -> None:
        """Fold a trade into its candle."""
        open_time = trade.time_ms // self.resolution_ms * self.resolution_ms
        self._slot(open_time, trade.price).add(trade)

    def put(self, candle: Candle) -> None:
        """Store a complete candle (history backfill)."""
        self._slot(candle.open_time, candle.open)
        self._candles[candle.open_time] = candle

    def between(self, start_ms: int, end_ms: int) -> list[Candle]:
        """Stored candles with ``start_ms <= open_time < end_ms``."""
        lo = bisect.bisect_left(self._times, start_ms)
        hi = bisect.bisect_left(self._times, end_ms)
        return [self._candles[t] for t in self._times[lo:hi]]

    def close_before(self, t_ms: int) -> Decimal | None:
        """Close of the last stored candle opening before ``t_ms``."""
        i = bisect.bisect_left(self._times, t_ms)
        return self._candles[self._times[i - 1]].close if i > 0 else None


@dataclass(frozen=True, slots=True)
class RollingStats:
    """24 h rolling window, the basis of ``ticker/24hr`` and the ticker streams."""

    open_time: int
    close_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    last: Decimal
    last_qty: Decimal
    volume: Decimal
    quote_volume: Decimal
    first_id: int
    last_id: int
    count: int
    prev_close: Decimal


class MarketStats:
    """Everything public about one symbol except the book."""

    def __init__(self, symbol: str, initial_price: Decimal, *, recent_max: int, minutes_max: int) -> None:
        self.symbol = symbol
        self.last_price = initial_price
        self.last_qty = ZERO
        self.recent: deque[PublicTrade] = deque(maxlen=recent_max)
        self._seconds = CandleSeries(1_000, 3_600)
        self._minutes = CandleSeries(60_000, minutes_max)

    def record(self, trade: PublicTrade) -> None:
        """Account for a public trade."""
        self.last_price = trade.price
        self.last_qty = trade.qty
        self.recent.append(trade)
        self._seconds.add_trade(trade)
        self._minutes.add_trade(trade)

    def put_history(self, candle: Candle) -> None:
        """Backfill a past 1m candle."""
        self._minutes.put(candle)
        self.last_price = candle.close

    def _series(self, tf: str) -> CandleSeries:
        return self._seconds if tf == "1s" else self._minutes

    def candle_at(self, tf: str, start: int) -> Candle | None:
        """The ``tf`` candle opening at ``start`` (flat if nothing traded; None before any data)."""
        series = self._series(tf)
        end = next_bucket(tf, start)
        stored = series.between(start, end)
        if not stored:
            prev = series.close_before(start)
            return None if prev is None else Candle.flat(start, prev)
        prev = series.close_before(start)
        first = stored[0]
        # Flat leading minutes carry the previous close, so the open is continuous.
        agg = replace(first, open_time=start)
        if prev is not None and first.open_time > start:
            agg.open = prev
            agg.high = max(agg.high, prev)
            agg.low = min(agg.low, prev)
        for candle in stored[1:]:
            agg.merge(candle)
        return agg

    def klines(self, tf: str, *, start_ms: int | None, end_ms: int | None, limit: int, now_ms: int) -> list[Candle]:
        """Candles as ``GET /klines`` returns them (oldest first, the open one included)."""
        first = self._series(tf).first_time
        if first is None:
            return []
        earliest = bucket_start(tf, first)
        last = bucket_start(tf, min(end_ms, now_ms) if end_ms is not None else now_ms)
        out: list[Candle] = []
        if start_ms is not None:
            b = bucket_start(tf, start_ms)
            if b < start_ms:
                b = next_bucket(tf, b)
            b = max(b, earliest)
            while b <= last and len(out) < limit:
                candle = self.candle_at(tf, b)
                if candle is not None:
                    out.append(candle)
                b = next_bucket(tf, b)
            return out
        b = last
        while b >= earliest and len(out) < limit:
            candle = self.candle_at(tf, b)
            if candle is not None:
                out.append(candle)
            b = prev_bucket(tf, b)
        out.reverse()
        return out

    def current_candle(self, tf: str, now_ms: int) -> Candle:
        """The open ``tf`` candle at ``now_ms`` (flat at the last price if nothing traded)."""
        start = bucket_start(tf, now_ms)
        return self.candle_at(tf, start) or Candle.flat(start, self.last_price)

    def rolling_24h(self, now_ms: int) -> RollingStats:
        """Stats over the last 24 h at minute granularity."""
        start = now_ms - _DAY_MS
        candles = self._minutes.between(bucket_start("1m", start), now_ms + 1)
        if not candles:
            p = self.last_price
            return RollingStats(start, now_ms, p, p, p, p, self.last_qty, ZERO, ZERO, -1, -1, 0, p)
        agg = replace(candles[0])
        for candle in candles[1:]:
            agg.merge(candle)
        prev_close = self._minutes.close_before(candles[0].open_time) or agg.open
        return RollingStats(
            open_time=start,
            close_time=now_ms,
            open=agg.open,
            high=agg.high,
            low=agg.low,
            last=self.last_price,
            last_qty=self.last_qty,
            volume=agg.volume,
            quote_volume=agg.quote_volume,
            first_id=agg.first_trade_id,
            last_id=agg.last_trade_id,
            count=agg.trades,
            prev_close=prev_close,
        )

    def agg_trades(
        self, *, from_id: int | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[PublicTrade]:
        """Recent public trades filtered like ``GET /aggTrades`` (one trade per aggregate)."""
        trades: list[PublicTrade] = list(self.recent)
        if from_id is not None:
            return [t for t in trades if t.trade_id >= from_id][:limit]
        if start_ms is not None or end_ms is not None:
            lo = start_ms if start_ms is not None else 0
            hi = end_ms if end_ms is not None else 1 << 62
            return [t for t in trades if lo <= t.time_ms <= hi][:limit]
        return trades[-limit:]
