"""MatchingEngine on its own: no file, no loop; every change reported to the journal in order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.model.market import Quote, Trade
from actors.model.orders import Fill, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.ports.venue import OrderNotFound, OrderRejected
from adapters.paper_venue.matching import MatchingEngine, PaperOrder, Wallet
from config.schema.trading import InstrumentSection, PaperVenueSection

D = Decimal
SYM = "XRP/ETH"
INSTRUMENTS = {
    SYM: InstrumentSection(
        base="XRP", quote="ETH", tick_size=D("0.00000001"), step_size=D("1"), min_qty=D("1"),
        max_qty=D("1000000"), min_notional=D("0.001"),
    )
}
CONFIG = PaperVenueSection(maker_fee_bps=10.0, taker_fee_bps=10.0, slippage_bps=10.0, fsync=False)


class FakeClock:
    simulated = True

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.ms


class RecordingJournal:
    """Records what the engine reports, as (kind, payload) pairs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def order_changed(self, order: PaperOrder, view: VenueOrder) -> None:
        self.calls.append(("order", view))

    def order_filled(self, order: PaperOrder, fill: Fill, view: VenueOrder) -> None:
        self.calls.append(("fill", (fill, view)))

    def balance_changed(self, asset: str, wallet: Wallet) -> None:
        self.calls.append(("balance", (asset, wallet.free, wallet.locked)))

    def order_ids_advanced(self, next_id: int) -> None:
        self.calls.append(("next_order", next_id))

    def trade_ids_advanced(self, next_id: int) -> None:
        self.calls.append(("next_trade", next_id))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.calls]


def engine(clock: FakeClock | None = None) -> tuple[MatchingEngine, RecordingJournal]:
    journal = RecordingJournal()
    e = MatchingEngine(CONFIG, INSTRUMENTS, "paper", clock or FakeClock(), journal)
    e.load([], {"ETH": Wallet(D("10")), "XRP": Wallet(D("1000"))}, 1, 1)
    return e, journal


def req(cid: str, side: Side, size: str, price: str | None = None) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=SYM, side=side,
                        type=OrderType.LIMIT if price is not None else OrderType.MARKET,
                        size=D(size), price=D(price) if price is not None else None)


def test_market_buy_reports_counter_balances_then_fill_and_order() -> None:
    clock = FakeClock()
    e, journal = engine(clock)
    e.on_market(Quote(symbol=SYM, ts_ms=1, bid=0.00199, ask=0.002))
    out = e.place(req("c1", Side.BUY, "100"))
    assert (out.status, out.avg_price, out.ts_ms) == (OrderStatus.FILLED, D("0.00200200"), clock.ms)
    assert journal.kinds() == ["next_order", "next_trade", "balance", "balance", "fill"]
    fill, view = journal.calls[-1][1]
    assert (fill.trade_id, fill.liquidity, fill.fee, fill.ts_ms) == ("paper-1", "taker", D("0.0002002"), clock.ms)
    assert view == out
    assert journal.calls[2][1] == ("ETH", D("10") - D("0.2002") - D("0.0002002"), D(0))
    assert journal.calls[3][1] == ("XRP", D("1100"), D(0))
    assert e.open == {}


def test_quotes_and_trades_without_resting_orders_report_nothing() -> None:
    e, journal = engine()
    for i in range(100):
        e.on_market(Quote(symbol=SYM, ts_ms=i, bid=0.00199, ask=0.002))
        e.on_market(Trade(symbol=SYM, ts_ms=i, price=0.0019, size=10.0, side="sell"))
    assert journal.calls == []


def test_resting_limit_reports_lock_and_acceptance_then_maker_fill_on_print() -> None:
    e, journal = engine()
    e.on_market(Quote(symbol=SYM, ts_ms=1, bid=0.00199, ask=0.002))
    out = e.place(req("b1", Side.BUY, "100", "0.0019"))
    assert out.status is OrderStatus.ACCEPTED
    lock = D("100") * D("0.0019") * D("1.001")
    assert journal.calls == [("next_order", 2), ("balance", ("ETH", D("10") - lock, lock)), ("order", out)]
    journal.calls.clear()
    e.on_market(Trade(symbol=SYM, ts_ms=2, price=0.0019, size=40.0, side="sell"))
    assert journal.kinds() == ["next_trade", "balance", "balance", "fill"]
    fill, view = journal.calls[-1][1]
    assert (fill.size, fill.price, fill.liquidity) == (D("40"), D("0.0019"), "maker")
    assert (view.status, view.filled) == (OrderStatus.PARTIALLY_FILLED, D("40"))
    assert list(e.open) == ["b1"]


def test_cancel_releases_the_lock_and_reports_balance_then_order() -> None:
    e, journal = engine()
    e.on_market(Quote(symbol=SYM, ts_ms=1, bid=0.00199, ask=0.002))
    e.place(req("s1", Side.SELL, "100", "0.003"))
    journal.calls.clear()
    view = e.cancel("s1")
    assert view.status is OrderStatus.CANCELED
    assert journal.calls == [("balance", ("XRP", D("1000"), D("0"))), ("order", view)]
    with pytest.raises(OrderNotFound):
        e.cancel("s1")


def test_refusals_report_nothing() -> None:
    e, journal = engine()
    with pytest.raises(OrderRejected) as err:
        e.place(req("c1", Side.BUY, "10"))
    assert err.value.reason == "NO_MARKET_DATA"
    e.on_market(Quote(symbol=SYM, ts_ms=1, bid=0.00199, ask=0.002))
    with pytest.raises(OrderRejected) as err:
        e.place(req("c2", Side.BUY, "5000", "0.002"))
    assert err.value.reason == "INSUFFICIENT_FUNDS"
    assert journal.calls == []


def test_loaded_orders_rest_and_match_with_the_stored_counters() -> None:
    journal = RecordingJournal()
    e = MatchingEngine(CONFIG, INSTRUMENTS, "paper", FakeClock(), journal)
    o = PaperOrder("old", "P7", SYM, Side.SELL, OrderType.LIMIT, D("10"), D("0.0021"), 7, 1)
    o.locked = D("10")
    e.load([o], {"XRP": Wallet(D("0"), D("10")), "ETH": Wallet(D("1"))}, 8, 5)
    e.on_market(Trade(symbol=SYM, ts_ms=2, price=0.0021, size=100.0, side="buy"))
    fill, view = journal.calls[-1][1]
    assert (fill.trade_id, fill.venue_order_id, view.status) == ("paper-5", "P7", OrderStatus.FILLED)
    assert e.balances()["XRP"].locked == 0
    assert e.open == {}
