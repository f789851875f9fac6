"""Replay of a validated trade tape or candle file as market events.

Emits, in file order (deterministic):

- trade tapes: one ``Trade`` per row; with ``derive_quotes`` also, right after each trade,
  a ``Quote`` centred on the trade price with ``quote_spread_bps`` spread (a last-trade
  proxy so that strategies and bars on the mid can run on a tape; it is not a real book);
- candle files: one ``Bar`` per row with the file's timeframe (``trades`` = 0: unknown).

``speed``: 1 = real time, N = N times faster, 0 = as fast as possible (see ``Pacer``).

``loop``: at the end of the file start over with every timestamp shifted forward by the
file's span rounded up to a whole hour (or a whole candle timeframe when that is longer),
so time keeps increasing and bars of up to 1h keep the same boundaries on every pass; trade
ids are shifted by the id span so they stay unique.

The source is resumable: a new ``events()`` call continues after the last event handed out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from actors.kernel.clock import perf_ns
from actors.model.market import Bar, MarketEvent, Quote, Trade
from actors.ports.market_data import SourceStats
from adapters.market_data.csv_reader import CandleSeries, TradeTape
from adapters.market_data.pacing import Pacer, Sleep

_LOOP_ALIGN_MS = 3_600_000


def _loop_shift(first_ts: int, last_ts: int, align_ms: int) -> int:
    span = last_ts - first_ts + 1
    return -(-span // align_ms) * align_ms


class ReplaySource:
    """Replays a ``TradeTape`` or ``CandleSeries`` for one symbol."""

    def __init__(
        self,
        data: TradeTape | CandleSeries,
        symbol: str,
        *,
        speed: float = 0.0,
        loop: bool = False,
        derive_quotes: bool = False,
        quote_spread_bps: float = 0.0,
        sleep: Sleep | None = None,
        name: str = "replay",
    ) -> None:
        if not data.rows:
            raise ValueError(f"{data.path}: nothing to replay")
        self.name = name
        self.symbols: tuple[str, ...] = (symbol,)
        self.symbol = symbol
        self.data = data
        self.loop = loop
        self.derive_quotes = derive_quotes and isinstance(data, TradeTape)
        self._half_spread = quote_spread_bps / 20_000.0
        self.pacer = Pacer(speed, sleep=sleep)
        rows = data.rows
        if isinstance(data, CandleSeries):
            align = max(_LOOP_ALIGN_MS, data.timeframe_ms)
            self._id_shift = 0
        else:
            align = _LOOP_ALIGN_MS
            ids = [r.trade_id for r in data.rows]
            self._id_shift = max(ids) - min(ids) + 1
        self._ts_shift = _loop_shift(min(r.ts_ms for r in rows), max(r.ts_ms for r in rows), align)
        self._start_ts = min(r.ts_ms for r in rows)
        self._pass = 0
        self._pos = 0
        self._quote_due = False
        self._ended = False
        self._trades = 0
        self._quotes = 0
        self._bars = 0

    @property
    def start_ts_ms(self) -> int:
        """Market time of the data's first event (a market clock starts here)."""
        return self._start_ts

    def set_speed(self, speed: float) -> None:
        """Change the replay speed (hot reload)."""
        self.pacer.set_speed(speed)

    def stats(self) -> SourceStats:
        """Counters of the file and of what was handed out."""
        rep = self.data.report
        return SourceStats(
            name=self.name,
            events=self._trades + self._quotes + self._bars,
            trades=self._trades,
            quotes=self._quotes,
            bars=self._bars,
            rows=rep.rows,
            duplicates_skipped=rep.duplicates_skipped,
            out_of_order=rep.out_of_order,
            gaps=rep.gaps,
            passes=self._pass,
            ended=self._ended,
        )

    async def close(self) -> None:
        """Nothing to release: the file was read at start-up."""

    def events(self) -> AsyncIterator[MarketEvent]:
        """Yield the events from the current position on."""
        if isinstance(self.data, CandleSeries):
            return self._bar_events(self.data)
        return self._trade_events(self.data)

    def _advance_pass(self) -> bool:
        self._pos = 0
        self._pass += 1
        if not self.loop:
            self._ended = True
            return False
        return True

    async def _trade_events(self, tape: TradeTape) -> AsyncIterator[MarketEvent]:
        rows = tape.rows
        n = len(rows)
        symbol = self.symbol
        wait = self.pacer.wait_until
        perf = perf_ns
        half = self._half_spread
        derive = self.derive_quotes
        pacer = self.pacer
        yields = 0
        while not self._ended:
            ts_off = self._pass * self._ts_shift
            id_off = self._pass * self._id_shift
            while self._pos < n or self._quote_due:
                if self._quote_due:
                    # Derived quote of the trade handed out last (also after a resume).
                    self._quote_due = False
                    ts, _, _, price, _ = rows[self._pos - 1]
                    self._quotes += 1
                    yield Quote(symbol=symbol, ts_ms=ts + ts_off, recv_ns=perf(), bid=price * (1.0 - half),
                                ask=price * (1.0 + half))
                    continue
                ts, trade_id, side, price, size = rows[self._pos]
                ts += ts_off
                if pacer.speed > 0.0:
                    await wait(ts)
                else:
                    yields += 1
                    if yields >= 256:  # as fast as possible, but let other tasks run
                        yields = 0
                        await asyncio.sleep(0)
                self._pos += 1
                self._quote_due = derive
                self._trades += 1
                yield Trade(symbol=symbol, ts_ms=ts, recv_ns=perf(), price=price, size=size, side=side,
                            trade_id=trade_id + id_off)
            if not self._advance_pass():
                return

    async def _bar_events(self, series: CandleSeries) -> AsyncIterator[MarketEvent]:
        rows = series.rows
        n = len(rows)
        symbol = self.symbol
        tf = series.timeframe
        wait = self.pacer.wait_until
        perf = perf_ns
        while not self._ended:
            ts_off = self._pass * self._ts_shift
            while self._pos < n:
                ts, o, h, lo, c, v = rows[self._pos]
                ts += ts_off
                # A candle is complete at the end of its period: pace it at its close time.
                await wait(ts + series.timeframe_ms)
                self._pos += 1
                self._bars += 1
                yield Bar(symbol=symbol, ts_ms=ts, recv_ns=perf(), timeframe=tf, open=o, high=h, low=lo,
                          close=c, volume=v)
            if not self._advance_pass():
                return
