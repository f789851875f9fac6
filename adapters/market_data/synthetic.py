"""Seeded random-walk market: quotes with a spread, plus trade prints.

Every tick (``tick_interval_ms`` of market time) each symbol, in configured order, takes one
step of a geometric random walk of its mid price (``mid *= exp(volatility * N(0, 1))``) and
emits a ``Quote`` (bid/ask ``spread_bps`` apart around the mid); every ``trade_every``-th
quote of a symbol is followed by a ``Trade`` at the ask (taker buy) or the bid (taker sell),
side and size (exponential, mean ``mean_trade_size``) drawn from the same generator.

One ``random.Random(seed)`` drives everything, so the same seed and settings give the same
events in the same order. Prices are rounded to a fixed number of decimals chosen from the
start price (about 8 significant digits). ``max_events`` (0 = unbounded) ends the source.
The source is resumable: a new ``events()`` call continues where the last one stopped.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections import deque
from collections.abc import AsyncIterator

from actors.kernel.clock import perf_ns, wall_ms
from actors.model.market import MarketEvent, Quote, Trade
from actors.ports.market_data import SourceStats
from adapters.market_data.pacing import Pacer, Sleep

# A generated event before it is handed out: (symbol, ts_ms, bid, ask) for a quote,
# (symbol, ts_ms, price, size, side, trade_id) for a trade.
_Pending = tuple[str, int, float, float] | tuple[str, int, float, float, str, int]


def price_decimals(start_price: float) -> int:
    """Decimals that give a price about 8 significant digits (at least 2)."""
    return max(2, 8 - math.floor(math.log10(start_price)) - 1)


class SyntheticSource:
    """Deterministic random-walk quotes and trades for one or more symbols."""

    def __init__(
        self,
        symbols: tuple[str, ...],
        *,
        seed: int = 7,
        start_price: float = 100.0,
        volatility_bps: float = 5.0,
        spread_bps: float = 2.0,
        tick_interval_ms: int = 100,
        trade_every: int = 1,
        mean_trade_size: float = 1.0,
        start_ts_ms: int = 1_700_006_400_000,
        speed: float = 0.0,
        max_events: int = 0,
        sleep: Sleep | None = None,
        name: str = "synthetic",
    ) -> None:
        if not symbols:
            raise ValueError("synthetic source needs at least one symbol")
        if start_price <= 0 or tick_interval_ms < 1 or mean_trade_size <= 0:
            raise ValueError("start_price, tick_interval_ms and mean_trade_size must be > 0")
        self.name = name
        self.symbols = tuple(symbols)
        self._rng = random.Random(seed)
        self._sigma = volatility_bps / 10_000.0
        self._half_spread = spread_bps / 20_000.0
        self._interval = tick_interval_ms
        self._trade_every = trade_every
        self._mean_size = mean_trade_size
        self._decimals = price_decimals(start_price)
        self._start_ts = start_ts_ms if start_ts_ms > 0 else (wall_ms() // 1000) * 1000
        self._max_events = max_events
        self.pacer = Pacer(speed, sleep=sleep)
        self._mids = [start_price] * len(self.symbols)
        self._quote_counts = [0] * len(self.symbols)
        self._tick = 0
        self._trade_id = 0
        self._pending: deque[_Pending] = deque()
        self._events = 0
        self._trades = 0
        self._quotes = 0
        self._ended = False

    @property
    def start_ts_ms(self) -> int:
        """Market time of the data's first event (a market clock starts here)."""
        return self._start_ts

    def set_speed(self, speed: float) -> None:
        """Change the pacing speed (hot reload)."""
        self.pacer.set_speed(speed)

    def stats(self) -> SourceStats:
        """Counters of what was handed out."""
        return SourceStats(name=self.name, events=self._events, trades=self._trades, quotes=self._quotes,
                           ended=self._ended)

    async def close(self) -> None:
        """Nothing to release."""

    def _step(self) -> None:
        """Generate one tick's events into the pending queue (stamped when handed out)."""
        rng = self._rng
        ts = self._start_ts + self._tick * self._interval
        self._tick += 1
        nd = self._decimals
        for i, symbol in enumerate(self.symbols):
            mid = self._mids[i] * math.exp(self._sigma * rng.gauss(0.0, 1.0))
            self._mids[i] = mid
            bid = round(mid * (1.0 - self._half_spread), nd)
            ask = round(mid * (1.0 + self._half_spread), nd)
            if ask <= bid:
                ask = round(bid + 10.0**-nd, nd)
            self._pending.append((symbol, ts, bid, ask))
            self._quote_counts[i] += 1
            if self._trade_every and self._quote_counts[i] % self._trade_every == 0:
                buy = rng.random() < 0.5
                size = max(round(rng.expovariate(1.0 / self._mean_size), 6), 1e-6)
                self._trade_id += 1
                self._pending.append((symbol, ts, ask if buy else bid, size, "buy" if buy else "sell",
                                      self._trade_id))

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Yield events from the current position on."""
        pending = self._pending
        wait = self.pacer.wait_until
        perf = perf_ns
        limit = self._max_events
        pacer = self.pacer
        yields = 0
        while not self._ended:
            if limit and self._events >= limit:
                self._ended = True
                return
            if not pending:
                self._step()
            ev = pending[0]
            if pacer.speed > 0.0:
                await wait(ev[1])
            else:
                yields += 1
                if yields >= 256:  # as fast as possible, but let other tasks run
                    yields = 0
                    await asyncio.sleep(0)
            pending.popleft()
            self._events += 1
            if len(ev) == 6:
                self._trades += 1
                yield Trade(symbol=ev[0], ts_ms=ev[1], recv_ns=perf(), price=ev[2], size=ev[3], side=ev[4],
                            trade_id=ev[5])
            else:
                self._quotes += 1
                yield Quote(symbol=ev[0], ts_ms=ev[1], recv_ns=perf(), bid=ev[2], ask=ev[3])
