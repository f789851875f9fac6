"""Market-data path cost: source -> bar builder -> one strategy with indicators (no orders).

Pure path: the replay source (bundled XRP/ETH tape, looped, speed 0) iterated directly,
every trade into a 1m BarBuilder and the strategy's on_trade, every closed bar into the
strategy's on_bar, which updates SMA, EMA x2, RSI, MACD, Bollinger, StochRSI and ATR.
Actor path: the same through Feed + StrategyHost and their channels.
Indicator cost: ns per ``update`` call (Python call included) over real closes.
Figures are medians over several runs. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.bars import BarBuilder  # noqa: E402
from actors.feed import Feed  # noqa: E402
from actors.indicators import ATR, EMA, MACD, RSI, SMA, BollingerBands, StochRSI  # noqa: E402
from actors.kernel.channel import Channel  # noqa: E402
from actors.model.market import Bar, MarketEvent, Trade  # noqa: E402
from actors.model.orders import OrderIntent  # noqa: E402
from actors.strategy_api import Strategy, StrategyContext  # noqa: E402
from actors.strategy_host import OrderFeedback, StrategyHost  # noqa: E402
from actors.strategy_portfolio import TrackingPortfolio  # noqa: E402
from adapters.market_data import ReplaySource, SourceStats, TradeTape, read_candles, read_trades  # noqa: E402
from config.schema.market import FeedSection  # noqa: E402

SYM = "XRP/ETH"
DATA = ROOT / "data" / "market"


class IndicatorStrategy(Strategy[Any]):
    """Updates a full indicator set on every bar; reads every trade; never orders."""

    subscribe_trades = True

    def on_start(self) -> None:
        self.sma = SMA(20)
        self.ema_fast = EMA(12)
        self.ema_slow = EMA(26)
        self.rsi = RSI(14)
        self.macd = MACD(12, 26, 9)
        self.bb = BollingerBands(20, 2.0)
        self.srsi = StochRSI(14, 5, 3)
        self.atr = ATR(14)
        self.bars = 0
        self.trades = 0
        self.last = 0.0

    def on_bar(self, bar: Bar) -> None:
        c = bar.close
        self.sma.update(c)
        self.ema_fast.update(c)
        self.ema_slow.update(c)
        self.rsi.update(c)
        self.macd.update(c)
        self.bb.update(c)
        self.srsi.update(c)
        self.atr.update(bar.high, bar.low, c)
        self.bars += 1

    def on_trade(self, trade: Trade) -> None:
        self.trades += 1
        self.last = trade.price


def _strategy(emit: Callable[[OrderIntent], None] = lambda i: None) -> IndicatorStrategy:
    s = IndicatorStrategy(StrategyContext("bench", (SYM,), "1m"), emitter=emit, portfolio=TrackingPortfolio())
    s.on_start()
    return s


async def pure_path(tape: TradeTape, n: int) -> tuple[float, int]:
    """Events/s straight through source -> builder -> strategy callbacks."""
    src = ReplaySource(tape, SYM, loop=True)
    builder = BarBuilder(SYM, "1m")
    strategy = _strategy()
    update = builder.update
    handle_trade = strategy.handle_trade
    handle_bar = strategy.handle_bar
    count = 0
    t0 = time.perf_counter_ns()
    async for ev in src.events():
        bars = update(ev.ts_ms, ev.price, ev.size, ev.recv_ns)  # type: ignore[attr-defined]
        if bars:
            for b in bars:
                handle_bar(b)
        handle_trade(ev)  # type: ignore[arg-type]
        count += 1
        if count >= n:
            break
    dt = time.perf_counter_ns() - t0
    assert strategy.trades == n
    return n / (dt / 1e9), strategy.bars


class Limited:
    """A replay source that ends after ``n`` events."""

    name = "replay-limited"

    def __init__(self, tape: TradeTape, n: int) -> None:
        self.inner = ReplaySource(tape, SYM, loop=True)
        self.symbols = self.inner.symbols
        self.n = n

    async def events(self) -> AsyncIterator[MarketEvent]:
        i = 0
        async for ev in self.inner.events():
            yield ev
            i += 1
            if i >= self.n:
                return

    def stats(self) -> SourceStats:
        return self.inner.stats()

    async def close(self) -> None:
        await self.inner.close()


async def actor_path(tape: TradeTape, n: int) -> tuple[float, int]:
    """Events/s through Feed + StrategyHost (channels, conflation, dispatch)."""
    feed = Feed(FeedSection(symbols=(SYM,), timeframes=("1m",), on_end="stop"), Limited(tape, n))
    events: Channel[OrderFeedback] = Channel("events", 64)
    intents: Channel[OrderIntent] = Channel("intents", 64)
    host = StrategyHost.attach(feed, StrategyContext("bench", (SYM,), "1m"), IndicatorStrategy,
                               order_events=events, intents=intents)
    t0 = time.perf_counter_ns()
    host_task = asyncio.create_task(host.main())
    await feed.main()
    await host_task
    dt = time.perf_counter_ns() - t0
    assert isinstance(host.strategy, IndicatorStrategy)
    return n / (dt / 1e9), host.strategy.bars


def indicator_costs(rounds: int, n: int) -> dict[str, float]:
    """Median ns per update of each indicator over real 1m closes."""
    rows = read_candles(DATA / "binance_ALT-BTC_1m_2017-11.csv.gz", "1m", 60_000).rows
    reps = n // len(rows) + 1
    closes = [r.close for r in rows] * reps
    hlc = [(r.high, r.low, r.close) for r in rows] * reps
    closes, hlc = closes[:n], hlc[:n]
    makers: dict[str, Callable[[], Any]] = {
        "SMA(20)": lambda: SMA(20),
        "EMA(20)": lambda: EMA(20),
        "RSI(14)": lambda: RSI(14),
        "MACD(12,26,9)": lambda: MACD(12, 26, 9),
        "BBANDS(20,2)": lambda: BollingerBands(20, 2.0),
        "STOCHRSI(14,5,3)": lambda: StochRSI(14, 5, 3),
        "ATR(14)": lambda: ATR(14),
    }
    out: dict[str, float] = {}
    for name, make in makers.items():
        samples = []
        for _ in range(rounds):
            ind = make()
            update = ind.update
            if name.startswith("ATR"):
                t0 = time.perf_counter_ns()
                for h, lo, c in hlc:
                    update(h, lo, c)
            else:
                t0 = time.perf_counter_ns()
                for x in closes:
                    update(x)
            samples.append((time.perf_counter_ns() - t0) / n)
        out[name] = round(statistics.median(samples), 1)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tape = read_trades(DATA / "binance_XRP-ETH_trades_2019-10.csv.gz")
    await pure_path(tape, 20_000)  # warm-up
    pure = [await pure_path(tape, args.events) for _ in range(args.rounds)]
    actor = [await actor_path(tape, args.events) for _ in range(args.rounds)]
    return {
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "events": args.events,
        "rounds": args.rounds,
        "bars": pure[0][1],
        "events_per_s": round(statistics.median(r for r, _ in pure)),
        "ns_per_event": round(1e9 / statistics.median(r for r, _ in pure), 1),
        "actor_events_per_s": round(statistics.median(r for r, _ in actor)),
        "actor_bars": actor[0][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--indicator-updates", type=int, default=100_000)
    args = parser.parse_args()
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    from daemon.runtime import run_loop

    result: dict[str, Any] = {}

    async def run() -> int:
        result.update(await main_async(args))
        return 0

    run_loop(run)
    result["indicator_ns"] = indicator_costs(args.rounds, args.indicator_updates)
    print(f"loop={result['loop']} events={result['events']} rounds={result['rounds']} (medians)")
    print(f"pure path  source -> 1m bars -> strategy({result['bars']} bars, 8 indicators): "
          f"{result['events_per_s']:,} events/s ({result['ns_per_event']} ns/event)")
    print(f"actor path Feed -> channels -> StrategyHost: {result['actor_events_per_s']:,} events/s")
    print("indicator update cost (ns, Python call included): "
          + ", ".join(f"{k} {v}" for k, v in result["indicator_ns"].items()))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
