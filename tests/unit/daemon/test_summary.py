"""``daemon.summary`` every interval and ``daemon.final_summary`` at shutdown: one readable line each."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import structlog

from actors.model.control import TradingState
from actors.model.positions import PositionView
from config.loader import parse_config_text
from config.schema.root import AaitiConfig
from daemon.logging_setup import LoggingSetup
from daemon.summary import DaemonSummary


@dataclasses.dataclass
class Counters:
    submitted: int = 0
    fills_applied: int = 0


@dataclasses.dataclass
class Orders:
    """The parts of an OrderManagerSnapshot the summary reads."""

    counters: Counters = dataclasses.field(default_factory=Counters)
    open_orders: tuple[Any, ...] = ()
    positions: tuple[PositionView, ...] = ()


@dataclasses.dataclass
class Risk:
    """The parts of a RiskSnapshot the summary reads."""

    equity: Decimal | None = None
    denied: int = 0


class FakeDaemon:
    """A ``SummarySource`` whose snapshots a test sets."""

    def __init__(self, config: AaitiConfig) -> None:
        self.config = config
        self.orders = Orders()
        self.risk = Risk()
        self.marks: dict[str, Decimal] = {}

    def order_snapshot(self) -> Any:
        return self.orders

    def risk_snapshot(self) -> Any:
        return self.risk

    def reference_price(self, symbol: str) -> Decimal | None:
        return self.marks.get(symbol)

    def trading_state(self) -> tuple[TradingState, bool]:
        return TradingState.ACTIVE, False


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    LoggingSetup("info", 10, stream=stream)
    yield stream
    structlog.reset_defaults()


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_summary_counts_since_the_previous_one_and_the_final_since_start(out: io.StringIO) -> None:
    daemon = FakeDaemon(AaitiConfig())  # XRP/ETH: ETH money at 8 places
    summary = DaemonSummary(daemon)
    daemon.orders = Orders(Counters(submitted=3, fills_applied=2), open_orders=("o1",),
                           positions=(PositionView(symbol="XRP/ETH", size=Decimal(500),
                                                   avg_price=Decimal("0.00141"), realized_pnl=Decimal("-0.0007")),))
    daemon.risk = Risk(equity=Decimal("4.999300000000000000000000001"), denied=7)
    daemon.marks = {"XRP/ETH": Decimal("0.00142")}
    summary.summary(60.0)
    daemon.orders = dataclasses.replace(daemon.orders, counters=Counters(submitted=4, fills_applied=4), open_orders=())
    daemon.risk = Risk(equity=Decimal("5.0043"), denied=7)
    summary.summary(60.0)
    summary.final()
    first, second, final = records(out)
    assert first["event"] == "daemon.summary" and first["level"] == "info"
    assert {k: first[k] for k in ("equity", "equity_asset", "pnl", "realized_pnl", "open_orders", "orders",
                                  "fills", "denials", "trading_state", "interval_s")} == {
        "equity": "4.99930000", "equity_asset": "ETH",
        "pnl": "0.00430000",  # -0.0007 realized + 500 * (0.00142 - 0.00141) unrealized
        "realized_pnl": "-0.00070000", "open_orders": 1, "orders": 3, "fills": 2, "denials": 7,
        "trading_state": "ACTIVE", "interval_s": 60.0,
    }
    assert (second["orders"], second["fills"], second["denials"], second["open_orders"]) == (1, 2, 0, 0)
    assert second["equity"] == "5.00430000"
    assert final["event"] == "daemon.final_summary"
    assert (final["orders"], final["fills"], final["denials"]) == (4, 4, 7)


def test_restarted_actor_counts_from_zero_again(out: io.StringIO) -> None:
    daemon = FakeDaemon(AaitiConfig())
    summary = DaemonSummary(daemon)
    daemon.orders = Orders(Counters(submitted=5))
    summary.summary(1.0)
    daemon.orders = Orders(Counters(submitted=2))  # the order manager was restarted
    summary.summary(1.0)
    summary.final()
    assert [r["orders"] for r in records(out)] == [5, 2, 7]


def test_before_the_tree_exists_the_figures_are_empty(out: io.StringIO) -> None:
    class Empty(FakeDaemon):
        def order_snapshot(self) -> Any:
            return None

        def risk_snapshot(self) -> Any:
            return None

    summary = DaemonSummary(Empty(AaitiConfig()))
    fields = summary.final()
    assert fields["equity"] is None and fields["pnl"] == "0" and fields["orders"] == 0


def test_pnl_per_quote_asset_when_instruments_differ(out: io.StringIO) -> None:
    cfg = parse_config_text(
        "[feed]\nsymbols = ['XRP/ETH', 'BTC/USDT']\n[instruments.'XRP/ETH']\nbase = 'XRP'\nquote = 'ETH'\n"
        "[instruments.'BTC/USDT']\nbase = 'BTC'\nquote = 'USDT'\ntick_size = '0.01'\nstep_size = '0.00001'\n", "t")
    daemon = FakeDaemon(cfg)
    daemon.orders = Orders(positions=(PositionView(symbol="XRP/ETH", realized_pnl=Decimal("0.1")),
                                      PositionView(symbol="BTC/USDT", realized_pnl=Decimal("-12.345"))))
    fields = DaemonSummary(daemon).summary(60.0)
    assert fields["pnl"] == {"ETH": "0.10000000", "USDT": "-12.34"}


async def test_run_logs_one_summary_per_interval(out: io.StringIO) -> None:
    daemon = FakeDaemon(AaitiConfig())
    ticks: asyncio.Queue[float] = asyncio.Queue()
    slept = asyncio.Event()

    async def sleep(seconds: float) -> None:  # the test decides when an interval has passed
        slept.set()
        await ticks.get()

    task = asyncio.create_task(DaemonSummary(daemon).run(30.0, sleep=sleep))
    for _ in range(2):
        await slept.wait()
        slept.clear()
        ticks.put_nowait(30.0)
    await slept.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [(r["event"], r["interval_s"]) for r in records(out)] == [("daemon.summary", 30.0)] * 2
