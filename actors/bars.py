"""Bars (OHLCV candles) from trade prints or quote mids, and resampling of bars.

``BarBuilder`` buckets events by their own time: the bar of an event is
``ts_ms // timeframe_ms`` and its ``ts_ms`` is the bucket's open time. Per bar: open =
price of the earliest print (by timestamp, the first to arrive on ties), high/low = max/min,
close = price of the latest print (the last to arrive on ties), volume = sum of sizes,
trades = number of prints. On the bundled XRP/ETH tape this reproduces the exchange's own
1m and 5m candles row for row. Periods without prints produce no bar (like the exchange).

Closing rule (watermark + grace). The builder's watermark is the latest event time seen
(or the ``now_ms`` given to ``flush``). A bar whose period ends at ``end`` is emitted, and
is final, once ``watermark >= end + grace_ms``:

- with ``grace_ms = 0`` a bar closes as soon as a print of a later period arrives (or
  ``flush(now_ms)`` with ``now_ms >= end``);
- with ``grace_ms > 0`` the bar stays open for that long after its end: a late print for it
  (an event that arrives after newer ones) that comes while the watermark is still below
  ``end + grace_ms`` is merged into it (by timestamp, so it may change open or close);
- a print for a bar whose period plus grace has already passed the watermark is late: it is
  counted in ``late_dropped`` and dropped. An emitted bar is never amended.

Volume is summed exactly: the sizes of a bar are kept (compacted to Shewchuk's exact
partial sums every 512 prints, so memory stays bounded) and added with ``math.fsum`` when
the bar closes. A running float ``+=`` accumulates a rounding error per print (0.1 + 0.2 !=
0.3) and would make volumes differ from the exchange's, which are exact decimal sums; the
correctly rounded sum matches them. Decimal would also be exact but is ~10x slower per print.

``mode="mid"`` builds bars from ``Quote`` mids instead (volume 0, trades = quotes).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from typing import Literal

from actors.kernel.clock import perf_ns
from actors.model.market import Bar, Quote, Trade
from config.schema.market import timeframe_ms

__all__ = ["BarBuilder", "BarResampler", "exact_partials", "parse_timeframe"]

_NO_BARS: tuple[Bar, ...] = ()
_COMPACT_AT = 512


def parse_timeframe(timeframe: str) -> int:
    """Milliseconds of a timeframe like "1m", "5m", "15m", "1h", "1d"; ValueError otherwise."""
    return timeframe_ms(timeframe)


def exact_partials(values: list[float]) -> list[float]:
    """Shewchuk's non-overlapping partial sums of ``values``: their exact sum, in few floats."""
    partials: list[float] = []
    for x in values:
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]
    return partials


class _Acc:
    """An open bar."""

    __slots__ = ("bucket", "close", "close_ts", "high", "low", "n", "open", "open_ts", "sizes")

    def __init__(self, bucket: int, ts: int, price: float, size: float) -> None:
        self.bucket = bucket
        self.open = self.high = self.low = self.close = price
        self.open_ts = self.close_ts = ts
        self.sizes: list[float] = [size] if size else []
        self.n = 1

    def add(self, ts: int, price: float, size: float) -> None:
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        if ts >= self.close_ts:
            self.close = price
            self.close_ts = ts
        elif ts < self.open_ts:
            self.open = price
            self.open_ts = ts
        if size:
            sizes = self.sizes
            sizes.append(size)
            if len(sizes) > _COMPACT_AT:
                self.sizes = exact_partials(sizes)
        self.n += 1


class BarBuilder:
    """Aggregates trades (or quote mids) of one symbol into bars of one timeframe."""

    __slots__ = ("_cur", "_grace", "_older", "_tf", "_wm", "bars_emitted", "late_dropped", "mode", "symbol",
                 "timeframe")

    def __init__(self, symbol: str, timeframe: str, *, grace_ms: int = 0,
                 mode: Literal["trades", "mid"] = "trades") -> None:
        if grace_ms < 0:
            raise ValueError(f"grace_ms must be >= 0, got {grace_ms}")
        self.symbol = symbol
        self.timeframe = timeframe
        self.mode = mode
        self._tf = parse_timeframe(timeframe)
        self._grace = grace_ms
        self._cur: _Acc | None = None
        self._older: dict[int, _Acc] = {}
        self._wm = -1
        self.late_dropped = 0
        self.bars_emitted = 0

    @property
    def timeframe_ms(self) -> int:
        """Length of the timeframe in ms."""
        return self._tf

    @property
    def grace_ms(self) -> int:
        """How long a bar stays open after its period (0: it closes with the first later print)."""
        return self._grace

    @property
    def watermark_ms(self) -> int:
        """Latest event time seen (or flushed to); -1 before the first event."""
        return self._wm

    @property
    def open_bars(self) -> int:
        """Bars currently open (more than one only with a grace period)."""
        return len(self._older) + (self._cur is not None)

    def on_trade(self, trade: Trade) -> tuple[Bar, ...]:
        """Add a trade print; return the bars it closed (usually none, oldest first)."""
        return self.update(trade.ts_ms, trade.price, trade.size, trade.recv_ns)

    def on_quote(self, quote: Quote) -> tuple[Bar, ...]:
        """Add a quote's mid price (mid mode); return the bars it closed."""
        return self.update(quote.ts_ms, (quote.bid + quote.ask) / 2.0, 0.0, quote.recv_ns)

    def update(self, ts_ms: int, price: float, size: float, recv_ns: int = 0) -> tuple[Bar, ...]:
        """Add one print at ``ts_ms``; return the bars that closed, oldest first.

        Closed bars carry the ``recv_ns`` of the event that closed them.
        """
        acc = self._cur
        if acc is not None and ts_ms // self._tf == acc.bucket:
            if price > acc.high:
                acc.high = price
            elif price < acc.low:
                acc.low = price
            if ts_ms >= acc.close_ts:
                acc.close = price
                acc.close_ts = ts_ms
            elif ts_ms < acc.open_ts:
                acc.open = price
                acc.open_ts = ts_ms
            if size:
                sizes = acc.sizes
                sizes.append(size)
                if len(sizes) > _COMPACT_AT:
                    acc.sizes = exact_partials(sizes)
            acc.n += 1
            if ts_ms > self._wm:
                self._wm = ts_ms
                if self._older:
                    return self._close_due(recv_ns)
            return _NO_BARS
        return self._other_bucket(ts_ms, price, size, recv_ns)

    def quiet_until(self, ts_ms: Sequence[int], start: int, stop: int) -> int:
        """How far prints at ``ts_ms[start:stop]`` (non-decreasing) stay inside the open bar.

        Returns the index of the first print that ``update`` must see on its own because it
        may open or close a bar (``start`` when the builder has no open bar, keeps a grace
        period or bars waiting for it, or the first print is older than the bar's close).
        The prints before it can be added in bulk with ``add_run``.
        """
        acc = self._cur
        if acc is None or self._grace or self._older or ts_ms[start] < acc.close_ts:
            return start
        return bisect_left(ts_ms, (acc.bucket + 1) * self._tf, start, stop)

    def add_run(self, ts_ms: Sequence[int], prices: Sequence[float], start: int, stop: int) -> None:
        """Add the size-less prints ``start..stop-1`` that ``quiet_until`` let through.

        Exactly what ``update`` does with each of them in turn: they all fall into the open
        bar, in time order, so they set its close and can only widen its high and low.
        """
        if stop <= start:
            return
        acc = self._cur
        assert acc is not None
        run = prices[start:stop]
        hi = max(run)
        lo = min(run)
        if hi > acc.high:
            acc.high = hi
        if lo < acc.low:
            acc.low = lo
        acc.close = run[-1]
        last = ts_ms[stop - 1]
        acc.close_ts = last
        acc.n += stop - start
        if last > self._wm:
            self._wm = last

    def _other_bucket(self, ts: int, price: float, size: float, recv_ns: int) -> tuple[Bar, ...]:
        tf = self._tf
        b = ts // tf
        cur = self._cur
        if not self._grace and cur is not None and b > cur.bucket and not self._older:
            # Common case: in-order data, no grace: the print opens the next bar, closing this one.
            self._wm = ts
            self._cur = _Acc(b, ts, price, size)
            return (self._bar(cur, recv_ns),)
        if (b + 1) * tf + self._grace <= self._wm:
            self.late_dropped += 1
            return _NO_BARS
        if ts > self._wm:
            self._wm = ts
        if cur is None or b > cur.bucket:
            if cur is not None:
                self._older[cur.bucket] = cur
            self._cur = _Acc(b, ts, price, size)
        else:
            acc = self._older.get(b)
            if acc is None:
                self._older[b] = _Acc(b, ts, price, size)
            else:
                acc.add(ts, price, size)
        return self._close_due(recv_ns)

    def _close_due(self, recv_ns: int) -> tuple[Bar, ...]:
        tf = self._tf
        limit = self._wm - self._grace
        out: list[Bar] = []
        older = self._older
        if older:
            for b in sorted(older):
                if (b + 1) * tf > limit:
                    break
                out.append(self._bar(older.pop(b), recv_ns))
        cur = self._cur
        if cur is not None and not older and (cur.bucket + 1) * tf <= limit:
            out.append(self._bar(cur, recv_ns))
            self._cur = None
        return tuple(out) if out else _NO_BARS

    def _bar(self, acc: _Acc, recv_ns: int) -> Bar:
        self.bars_emitted += 1
        sizes = acc.sizes
        return Bar(
            symbol=self.symbol,
            ts_ms=acc.bucket * self._tf,
            recv_ns=recv_ns,
            timeframe=self.timeframe,
            open=acc.open,
            high=acc.high,
            low=acc.low,
            close=acc.close,
            volume=math.fsum(sizes) if sizes else 0.0,
            trades=acc.n,
        )

    def flush(self, now_ms: int, recv_ns: int = 0) -> tuple[Bar, ...]:
        """Advance the watermark to ``now_ms`` (feed time) and emit the bars that closed."""
        if now_ms > self._wm:
            self._wm = now_ms
        return self._close_due(recv_ns or perf_ns())

    def flush_all(self, recv_ns: int = 0) -> tuple[Bar, ...]:
        """Emit every open bar now (end of data); later prints for them count as late."""
        ns = recv_ns or perf_ns()
        accs = [self._older[b] for b in sorted(self._older)]
        if self._cur is not None:
            accs.append(self._cur)
        self._older.clear()
        self._cur = None
        if not accs:
            return _NO_BARS
        self._wm = max(self._wm, (accs[-1].bucket + 1) * self._tf + self._grace)
        return tuple(self._bar(a, ns) for a in accs)


class BarResampler:
    """Builds bars of a longer timeframe from in-order bars of a shorter one (e.g. 1m -> 5m).

    A resampled bar is emitted as soon as the sub-bar that ends its period arrives, or when a
    sub-bar of a later period arrives (the period had missing sub-bars). A sub-bar older than
    the open period (out of order) is counted in ``late_dropped`` and dropped.
    """

    __slots__ = ("_cur", "_cur_trades", "_src_tf", "_tf", "bars_emitted", "late_dropped", "symbol", "timeframe")

    def __init__(self, symbol: str, source_timeframe: str, timeframe: str) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self._src_tf = parse_timeframe(source_timeframe)
        self._tf = parse_timeframe(timeframe)
        if self._tf % self._src_tf or self._tf <= self._src_tf:
            raise ValueError(f"cannot build {timeframe} bars from {source_timeframe} bars")
        self._cur: _Acc | None = None
        self._cur_trades = 0
        self.late_dropped = 0
        self.bars_emitted = 0

    def on_bar(self, bar: Bar) -> tuple[Bar, ...]:
        """Add a sub-bar; return the resampled bars it completed (oldest first)."""
        tf = self._tf
        b = bar.ts_ms // tf
        out: list[Bar] = []
        cur = self._cur
        if cur is not None and b != cur.bucket:
            if b < cur.bucket:
                self.late_dropped += 1
                return _NO_BARS
            out.append(self._bar(cur, bar.recv_ns))
            cur = None
        if cur is None:
            cur = _Acc(b, bar.ts_ms, bar.open, bar.volume)
            cur.high, cur.low, cur.close = bar.high, bar.low, bar.close
            self._cur_trades = bar.trades
            self._cur = cur
        else:
            cur.high = max(cur.high, bar.high)
            cur.low = min(cur.low, bar.low)
            cur.close = bar.close
            cur.close_ts = bar.ts_ms
            if bar.volume:
                cur.sizes.append(bar.volume)
            cur.n += 1
            self._cur_trades += bar.trades
        if bar.ts_ms + self._src_tf >= (b + 1) * tf:
            out.append(self._bar(cur, bar.recv_ns))
            self._cur = None
        return tuple(out) if out else _NO_BARS

    def _bar(self, acc: _Acc, recv_ns: int) -> Bar:
        self.bars_emitted += 1
        return Bar(symbol=self.symbol, ts_ms=acc.bucket * self._tf, recv_ns=recv_ns, timeframe=self.timeframe,
                   open=acc.open, high=acc.high, low=acc.low, close=acc.close,
                   volume=math.fsum(acc.sizes) if acc.sizes else 0.0, trades=self._cur_trades)

    def flush_all(self, recv_ns: int = 0) -> tuple[Bar, ...]:
        """Emit the open (incomplete) bar, if any (end of data)."""
        cur = self._cur
        if cur is None:
            return _NO_BARS
        self._cur = None
        return (self._bar(cur, recv_ns or perf_ns()),)
