"""Drives the simulated market: public prints and the background book around the price.

Every random draw comes from a ``random.Random`` seeded from the config (per symbol), so two
runs with the same seed print the same tape.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from decimal import Decimal

from adapters.binance_sim.config import MarketSourceConfig, SymbolConfig
from adapters.binance_sim.decimals import floor_to_step, round_to_step
from adapters.binance_sim.exchange import SimExchange, SymbolState
from adapters.binance_sim.market_data import Candle, bucket_start
from adapters.binance_sim.tape import TapeTrade, load_tape

Book = dict[Decimal, Decimal]


def build_book(
    price: Decimal,
    cfg: SymbolConfig,
    rng: random.Random,
    *,
    levels: int,
    spacing_bps: float,
    user_best_bid: Decimal | None,
    user_best_ask: Decimal | None,
) -> tuple[Book, Book]:
    """Background bids/asks around ``price``: one tick either side, then ``spacing_bps`` apart.

    The ladder is moved away from the user's resting orders so the public book never
    crosses them (user orders are filled by prints, not by the background).
    """
    tick = cfg.tick_size
    p = max(round_to_step(price, tick), tick * 2)
    spacing = max(tick, round_to_step(p * Decimal(str(spacing_bps)) / 10_000, tick))
    best_bid = p - tick
    best_ask = p + tick
    if user_best_ask is not None and best_bid >= user_best_ask:
        best_bid = user_best_ask - tick
    if user_best_bid is not None and best_ask <= user_best_bid:
        best_ask = user_best_bid + tick
    bids: Book = {}
    asks: Book = {}
    for k in range(levels):
        bid = best_bid - spacing * k
        if bid >= tick:
            bids[bid] = _level_qty(cfg, rng)
        asks[best_ask + spacing * k] = _level_qty(cfg, rng)
    return bids, asks


def _level_qty(cfg: SymbolConfig, rng: random.Random) -> Decimal:
    qty = floor_to_step(cfg.level_qty * Decimal(str(round(0.5 + rng.random(), 6))), cfg.step_size)
    return max(qty, cfg.min_qty)


def _print_qty(cfg: SymbolConfig, rng: random.Random) -> Decimal:
    qty = floor_to_step(cfg.trade_qty * Decimal(str(round(rng.expovariate(1.0), 6))), cfg.step_size)
    return max(qty, cfg.min_qty)


def backfill_history(st: SymbolState, rng: random.Random, *, minutes: int, now_ms: int, vol_bps: float) -> None:
    """Generate ``minutes`` past 1m candles whose last close is the current price."""
    cfg = st.cfg
    tick = cfg.tick_size
    close = st.stats.last_price
    candles: list[Candle] = []
    start = bucket_start("1m", now_ms)
    sigma = vol_bps / 10_000 * 10  # per-minute volatility: roughly 100 prints' worth
    for i in range(1, minutes + 1):
        open_ = max(tick, round_to_step(close * Decimal(str(round(math.exp(-rng.gauss(0, sigma)), 9))), tick))
        wick = Decimal(str(round(abs(rng.gauss(0, sigma / 2)), 9)))
        high = round_to_step(max(open_, close) * (1 + wick), tick)
        low = max(tick, round_to_step(min(open_, close) * (1 - wick), tick))
        trades = rng.randint(20, 120)
        volume = floor_to_step(cfg.trade_qty * trades, cfg.step_size)
        quote = volume * (open_ + close) / 2
        buy_share = Decimal(str(round(rng.random(), 4)))
        candles.append(
            Candle(
                open_time=start - i * 60_000,
                open=open_,
                high=high,
                low=low,
                close=close,
                volume=volume,
                quote_volume=quote,
                trades=trades,
                taker_buy_base=volume * buy_share,
                taker_buy_quote=quote * buy_share,
            )
        )
        close = open_
    last_price = st.stats.last_price
    for candle in reversed(candles):
        st.stats.put_history(candle)
    st.stats.last_price = last_price


class MarketDriver:
    """Base driver: builds the initial books and history, then runs ``_tick`` periodically."""

    def __init__(self, exchange: SimExchange, config: MarketSourceConfig) -> None:
        self.exchange = exchange
        self.config = config
        self.paused = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self._rngs = {name: random.Random(f"{config.seed}:{name}") for name in exchange.symbols}
        self._task: asyncio.Task[None] | None = None

    def rng(self, symbol: str) -> random.Random:
        """The RNG of one symbol."""
        return self._rngs[symbol]

    def prepare(self) -> None:
        """History backfill and first books, before the server starts listening."""
        now = self.exchange.clock.now_ms()
        for name, st in self.exchange.symbols.items():
            if self.config.history_minutes > 0:
                backfill_history(
                    st,
                    self.rng(name),
                    minutes=self.config.history_minutes,
                    now_ms=now,
                    vol_bps=self.config.volatility_bps,
                )
            self.rebuild_book(name)

    def rebuild_book(self, symbol: str) -> None:
        """Rebuild the background book of ``symbol`` around its last price."""
        st = self.exchange.symbols[symbol]
        bids, asks = build_book(
            st.stats.last_price,
            st.cfg,
            self.rng(symbol),
            levels=self.config.book_levels,
            spacing_bps=self.config.level_spacing_bps,
            user_best_bid=st.book.best_user_price(True),
            user_best_ask=st.book.best_user_price(False),
        )
        self.exchange.set_background(symbol, bids, asks)

    def start(self) -> None:
        """Start the driving task."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"binance-sim-{self.config.kind}-driver")

    async def stop(self) -> None:
        """Stop the driving task."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def pause(self) -> None:
        """Stop producing prints (the book stays as it is)."""
        self.paused = True
        self._resumed.clear()

    def resume(self) -> None:
        """Resume producing prints."""
        self.paused = False
        self._resumed.set()

    async def run(self) -> None:
        """Call ``_tick`` every ``tick_interval_ms`` without drifting."""
        loop = asyncio.get_running_loop()
        interval = self.config.tick_interval_ms / 1000
        next_at = loop.time()
        while True:
            if not self.paused:
                await self.step()
            next_at += interval
            delay = next_at - loop.time()
            if delay < 0:
                next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    async def step(self) -> None:
        """Advance the market by one tick (nothing for a static market)."""


class StaticDriver(MarketDriver):
    """A market that only moves when a test injects prints."""

    async def run(self) -> None:
        """Nothing to drive."""
        await asyncio.Event().wait()


class SyntheticDriver(MarketDriver):
    """Seeded random walk in whole ticks; exponential print sizes; random taker side."""

    async def step(self) -> None:
        """Print ``trades_per_tick`` trades per symbol, then re-centre each book."""
        for name, st in self.exchange.symbols.items():
            rng = self.rng(name)
            cfg = st.cfg
            tick = cfg.tick_size
            for _ in range(self.config.trades_per_tick):
                price = st.stats.last_price
                sigma_ticks = float(price) * self.config.volatility_bps / 10_000 / float(tick)
                step = round(rng.gauss(0.0, sigma_ticks))
                new_price = max(tick * 10, round_to_step(price, tick) + tick * step)
                side = "BUY" if rng.random() < 0.5 else "SELL"
                self.exchange.market_print(name, new_price, _print_qty(cfg, rng), side)
            self.rebuild_book(name)


class ReplayDriver(MarketDriver):
    """Replays a CSV tape for one symbol, paced by ``replay_speed`` (<= 0: flat out)."""

    def __init__(self, exchange: SimExchange, config: MarketSourceConfig) -> None:
        super().__init__(exchange, config)
        assert config.replay_path is not None
        self.tape: list[TapeTrade] = load_tape(config.replay_path)
        self.symbol = config.replay_symbol
        self.position = 0
        st = exchange.symbols[self.symbol]
        st.stats.last_price = round_to_step(self.tape[0].price, st.cfg.tick_size)
        st.next_trade_id = self.tape[0].trade_id

    async def run(self) -> None:
        """Print the tape at its own pace, rebuilding the book at most every tick interval."""
        loop = asyncio.get_running_loop()
        st = self.exchange.symbols[self.symbol]
        cfg = st.cfg
        speed = self.config.replay_speed
        rebuild_every = self.config.tick_interval_ms / 1000
        last_rebuild = loop.time()
        batch = max(1, self.config.trades_per_tick)
        while True:
            t0_tape = self.tape[0].ts_ms
            t0_wall = loop.time()
            for i, trade in enumerate(self.tape):
                self.position = i
                if speed > 0:
                    delay = t0_wall + (trade.ts_ms - t0_tape) / 1000 / speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif i % batch == 0:
                    await asyncio.sleep(0)
                await self._resumed.wait()
                price = max(cfg.tick_size, round_to_step(trade.price, cfg.tick_size))
                qty = max(cfg.min_qty, floor_to_step(trade.amount, cfg.step_size))
                self.exchange.market_print(self.symbol, price, qty, trade.side)
                if loop.time() - last_rebuild >= rebuild_every:
                    self.rebuild_book(self.symbol)
                    last_rebuild = loop.time()
            self.rebuild_book(self.symbol)
            if not self.config.replay_loop:
                await asyncio.Event().wait()


def make_driver(exchange: SimExchange, config: MarketSourceConfig) -> MarketDriver:
    """The driver for ``config.kind``."""
    if config.kind == "synthetic":
        return SyntheticDriver(exchange, config)
    if config.kind == "replay":
        return ReplayDriver(exchange, config)
    return StaticDriver(exchange, config)
