"""Latest-only feed taps through the backtest runner: the same orders and fills as event by event.

The same quote file is backtested twice: replayed in ``QuoteRun`` batches (the feed hands
the market clock, the risk gate's marks and the paper venue only the last quote of a quiet
stretch inside a bar) and one event at a time (every tap sees every quote). A strategy that
rests limit buys below the market (they fill as maker in the middle of a bar), exits with
market orders that wait out the venue's latency and take thin quotes in parts over several
events, on 1m bars whose boundaries fall inside batches, must trade exactly the same.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.model.market import Bar, MarketEvent
from actors.model.orders import OrderType
from actors.ports.market_data import SourceStats
from actors.risk.marks import MarketMarks
from actors.strategy_api import Strategy
from adapters.market_data.quotes import QuoteReplaySource, read_quotes, write_quotes
from config.loader import LoadedConfig
from config.schema.kernel import SupervisorSection
from config.schema.market import FeedSection, StrategySection
from config.schema.root import AaitiConfig
from config.schema.trading import InstrumentSection, PaperVenueSection, RiskSection, VenueSection
from daemon.backtest.run import BacktestRun
from daemon.backtest.runner import run_backtest

SYM = "BTC/USDT"
T0 = 1_600_000_000_000


class DipParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Parameters of DipThenExit."""

    size: Decimal = Decimal("1")
    offset_bps: float = 4.0


class DipThenExit(Strategy[DipParams]):
    """Flat: every other bar, a limit buy ``offset_bps`` under the close. Long: a market sell of it all."""

    params_type = DipParams

    def on_start(self) -> None:
        """Count bars from here."""
        self.bars = 0

    def on_bar(self, bar: Bar) -> None:
        """One order at a time: rest a dip buy when flat, exit at market when long."""
        self.bars += 1
        symbol = bar.symbol
        if self.open_orders(symbol) or self.in_flight(symbol):
            return
        position = self.position(symbol)
        if position > 0:
            self.sell(symbol, size=position, tag="exit")
        elif self.bars % 2 == 0:
            limit = Decimal(f"{bar.close * (1.0 - self.params.offset_bps / 10_000):.2f}")
            self.buy(symbol, size=self.params.size, type=OrderType.LIMIT, limit_price=limit, tag="dip")


def write_walk(path: Path, n: int, seed: int = 11) -> None:
    """``n`` quotes ~500 ms apart (some at the same ms), a noisy mid around 100, thin sizes."""
    rng = random.Random(seed)
    mid, ts, rows = 100.0, T0, []
    for _ in range(n):
        mid *= 1.0 + rng.gauss(0.0, 0.0004)
        ts += rng.choice((0, 500, 500, 1_000))
        half = rng.choice((0.01, 0.02))
        rows.append((ts, round(mid - half, 2), round(mid + half, 2), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.9)))
    write_quotes(path, rows)


class OneByOne:
    """The same replay, handed out event by event (no ``event_batches``: the feed's per-event path)."""

    def __init__(self, inner: QuoteReplaySource) -> None:
        self.inner = inner
        self.name = inner.name
        self.symbols = inner.symbols

    @property
    def start_ts_ms(self) -> int:
        return self.inner.start_ts_ms

    def events(self) -> AsyncIterator[MarketEvent]:
        return self.inner.events()

    def stats(self) -> SourceStats:
        return self.inner.stats()

    async def close(self) -> None:
        await self.inner.close()


def config() -> AaitiConfig:
    return AaitiConfig(
        supervisor=SupervisorSection(max_restarts=0, period_s=5.0),
        feed=FeedSection(source="synthetic", symbols=(SYM,), timeframes=("1m",), bars_from="mid", on_end="stop"),
        strategies=(StrategySection(name="dip", strategy=f"{__name__}:DipThenExit", symbols=(SYM,), timeframe="1m",
                                    params={"size": "1", "offset_bps": 4.0}),),
        instruments={SYM: InstrumentSection(base="BTC", quote="USDT", tick_size=Decimal("0.01"),
                                            step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"),
                                            max_qty=Decimal("1000"), min_notional=Decimal(0))},
        risk=RiskSection(max_order_notional=Decimal("1000000"), max_position=Decimal("100"),
                         max_gross_exposure=Decimal("1000000"), max_open_orders=10,
                         max_orders_per_minute=1000, price_collar_bps=500.0, stale_data_s=120.0,
                         daily_loss_limit=Decimal("1000000"), max_drawdown_pct=90.0),
        venue=VenueSection(kind="paper", name="paper", paper=PaperVenueSection(
            fsync=False, latency_ms=1_200.0, market_remainder="partial_then_next_events",
            initial_balances={"USDT": Decimal("100000"), "BTC": Decimal(0)})),
    )


@pytest.fixture(scope="module")
def tape(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("walk") / "walk.csv"
    write_walk(path, 30_000)
    return read_quotes(path)


def fresh(path: Path) -> Path:
    """``path``, created empty (a backtest's work directory)."""
    path.mkdir()
    return path


async def backtest(source: Any, workdir: Path, monkeypatch: pytest.MonkeyPatch,
                   **window: int) -> tuple[BacktestRun, int]:
    """A backtest of ``source``; and how many times the risk gate's marks were handed an event."""
    calls = [0]
    observe = MarketMarks.observe

    def counting(self: MarketMarks, event: MarketEvent) -> None:
        calls[0] += 1
        observe(self, event)

    monkeypatch.setattr(MarketMarks, "observe", counting)
    loaded = LoadedConfig(config(), None, fresh(workdir), 0.0)
    run = await run_backtest(loaded, workdir=workdir, source=source, **window)
    monkeypatch.setattr(MarketMarks, "observe", observe)
    return run, calls[0]


def trading(run: BacktestRun) -> tuple[list[Any], list[Any], dict[str, Decimal]]:
    """Orders, fills and final balances, with client order ids (a per-run prefix) replaced by their order's rank."""
    rank = {o.client_order_id: str(i) for i, o in enumerate(run.orders)}
    orders = [msgspec.structs.replace(o, client_order_id=rank[o.client_order_id]) for o in run.orders]
    fills = [msgspec.structs.replace(f, client_order_id=rank[f.client_order_id]) for f in run.fills]
    return orders, fills, run.final_balances


def bars(run: BacktestRun) -> list[Bar]:
    """The run's bars without ``recv_ns`` (the wall time a quote was handed out)."""
    return [msgspec.structs.replace(b, recv_ns=0) for tfs in run.bars.values() for bs in tfs.values() for b in bs]


async def test_batched_latest_only_backtest_trades_exactly_as_event_by_event(
        tape: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batched, batched_calls = await backtest(QuoteReplaySource(tape, SYM), tmp_path / "batched", monkeypatch)
    single, single_calls = await backtest(OneByOne(QuoteReplaySource(tape, SYM)), tmp_path / "single", monkeypatch)
    assert single_calls == single.events == batched.events == len(tape)
    assert batched_calls < len(tape) // 2  # quiet stretches went latest-only
    assert not batched.strategy_errors and batched.lockstep_timeouts == 0
    assert trading(batched) == trading(single)
    assert bars(batched) == bars(single)
    fills = batched.fills
    makers = [f for f in fills if f.liquidity == "maker"]
    assert len(makers) > 10  # resting dip buys filled ...
    assert any(f.ts_ms % 60_000 >= 2_000 for f in makers)  # ... inside bars, on quotes in the middle of a stretch
    by_order: dict[str, int] = {}
    for f in fills:
        by_order[f.client_order_id] = by_order.get(f.client_order_id, 0) + 1
    exits = [o for o in batched.orders if o.tag == "exit"]
    assert exits and any(by_order.get(o.client_order_id, 0) > 1 for o in exits)  # remainders over later events
    assert all(f.ts_ms >= o.created_ms + 1_200 for o in exits for f in fills if f.client_order_id == o.client_order_id)


async def test_a_windowed_backtest_keeps_the_batch_path_and_the_same_trades(
        tape: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start, end = tape.ts_ms[3_000] + 17, tape.ts_ms[20_000] + 3
    window = {"start_ms": start, "end_ms": end}
    batched, batched_calls = await backtest(QuoteReplaySource(tape, SYM), tmp_path / "b", monkeypatch, **window)
    single, single_calls = await backtest(OneByOne(QuoteReplaySource(tape, SYM)), tmp_path / "s", monkeypatch,
                                          **window)
    inside = sum(1 for ts in tape.ts_ms if start <= ts < end)
    assert single_calls == single.events == batched.events == inside
    assert batched_calls < inside // 2
    assert trading(batched) == trading(single) and len(batched.fills) > 10
    assert bars(batched) == bars(single)
