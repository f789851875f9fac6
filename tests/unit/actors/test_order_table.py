"""The order table on its own (no venue, no store, no event loop): transitions and the changes
they ask the owner to carry out, fills, business-time stamps, and the published portfolio view."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from actors.kernel.clock import MarketClock
from actors.model.orders import Fill, OrderStatus, OrderType, Side, VenueOrder
from actors.model.records import OrderRecord
from actors.orders.order_table import OrderTable, PortfolioPublisher
from actors.risk.portfolio import portfolio_snapshot
from config.schema.trading import InstrumentSection

D = Decimal
S = OrderStatus
SYM = "XRP/ETH"
INSTRUMENTS = {SYM: InstrumentSection(base="XRP", quote="ETH")}


class ProcessTime:
    """Process time moved by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def make_table(clock: MarketClock | None = None, process_time: ProcessTime | None = None) -> OrderTable:
    table = OrderTable(clock=clock or MarketClock(1_000_000), process_time=process_time or ProcessTime(),
                       closed_order_window=4)
    table.restore_ledger((), {"ETH": D("5"), "XRP": D("200")})
    return table


def record(coid: str, side: Side = Side.BUY, size: str = "100", price: str | None = "0.002") -> OrderRecord:
    return OrderRecord(
        client_order_id=coid, venue="paper", strategy="s1", symbol=SYM, side=side,
        type=OrderType.LIMIT if price else OrderType.MARKET, size=D(size), status=S.SUBMITTED,
        price=D(price) if price else None, intent_id=f"i-{coid}",
    )


def venue_order(coid: str, status: OrderStatus, filled: str = "0") -> VenueOrder:
    return VenueOrder(venue="paper", client_order_id=coid, venue_order_id=f"v-{coid}", symbol=SYM,
                      side=Side.BUY, type=OrderType.LIMIT, status=status, size=D("100"), filled=D(filled))


def fill(coid: str, trade_id: str, size: str, price: str = "0.002", side: Side = Side.BUY) -> Fill:
    return Fill(venue="paper", trade_id=trade_id, client_order_id=coid, symbol=SYM, side=side, price=D(price),
                size=D(size))


def test_transition_stamps_business_time_and_returns_record_and_event() -> None:
    clock = MarketClock(1_000_000)
    table = make_table(clock)
    table.add_submitted(record("b"))
    clock.advance(1_060_000)
    changes = table.apply_venue_order(venue_order("b", S.ACCEPTED))
    assert [c.record is not None for c in changes] == [True, True]  # venue id learnt, then the transition
    last = changes[-1]
    assert last.refused is None and last.record is not None and last.event is not None
    assert (last.record.status, last.record.venue_order_id, last.record.updated_ms) == (S.ACCEPTED, "v-b", 1_060_000)
    assert (last.event.previous, last.event.status, last.event.ts_ms) == (S.SUBMITTED, S.ACCEPTED, 1_060_000)


def test_illegal_transition_is_refused_counted_and_not_applied() -> None:
    table = make_table()
    table.add_submitted(record("b"))
    table.apply_venue_order(venue_order("b", S.ACCEPTED))
    (refused,) = table.apply_venue_order(VenueOrder(
        venue="paper", client_order_id="b", venue_order_id="v-b", symbol=SYM, side=Side.BUY,
        type=OrderType.LIMIT, status=S.REJECTED, size=D("100")))
    assert refused.refused is not None and refused.record is None and refused.event is None
    assert (refused.refused.record.status, refused.refused.new) == (S.ACCEPTED, S.REJECTED)
    rec = table.order("b")
    assert rec is not None and rec.status is S.ACCEPTED
    assert table.counts.illegal == 1


def test_late_partial_fill_on_a_cancelled_order_records_it_and_stays_cancelled() -> None:
    table = make_table()
    table.add_submitted(record("b"))
    table.apply_venue_order(venue_order("b", S.ACCEPTED))
    table.apply_venue_order(venue_order("b", S.CANCELED))
    out, changes = table.apply_fill(fill("b", "t1", "40"))
    assert out.accepted
    assert [(c.event.previous, c.event.status) for c in changes if c.event is not None] == [
        (S.CANCELED, S.PARTIALLY_FILLED), (S.PARTIALLY_FILLED, S.CANCELED)]
    rec = table.order("b")
    assert rec is not None and rec.status is S.CANCELED and rec.filled == D("40")
    assert table.open_orders() == []


def test_in_flight_age_is_process_time() -> None:
    process_time = ProcessTime()
    table = make_table(process_time=process_time)
    table.add_submitted(record("b"))
    process_time.now += 3.0
    assert [(f.client_order_id, f.age_s) for f in table.in_flight(older_than_s=2.0)] == [("b", 3.0)]
    table.apply_venue_order(venue_order("b", S.ACCEPTED))
    assert table.in_flight() == []


def test_closed_orders_kept_in_a_bounded_window() -> None:
    table = make_table()
    for i in range(6):
        table.add_submitted(record(f"o{i}"))
        table.apply_venue_order(venue_order(f"o{i}", S.CANCELED))
    assert table.sizes()["closed"] == 4
    assert table.order("o0") is None and table.order("o5") is not None


def test_portfolio_view_sums_open_orders_and_follows_fills() -> None:
    table = make_table()
    table.add_submitted(record("b", Side.BUY, "100", "0.002"))
    table.apply_fill(fill("b", "t1", "50"))
    table.add_submitted(record("s", Side.SELL, "30", None))
    table.add_submitted(record("m", Side.BUY, "10", None))
    table.took_in("i-m")
    view = PortfolioPublisher(table).current()
    assert view.positions == {SYM: D("50")}
    assert view.balances == {"ETH": D("4.900"), "XRP": D("250")}
    assert view.open_orders == 3
    assert (view.open_buy, view.open_sell) == ({SYM: D("60")}, {SYM: D("30")})
    assert (view.priced_buy_notional, view.unpriced_buy) == ({SYM: D("0.100")}, {SYM: D("10")})
    assert (view.intent_ids, view.last_intent_id) == (frozenset({"i-b", "i-s", "i-m"}), "i-m")
    # What the risk gate derives from it: the buys' quote and the sell's base are committed.
    snap = portfolio_snapshot(view, INSTRUMENTS, lambda s: D("0.003"), fee_bps=0.0)
    assert snap.balances["ETH"].locked == D("0.130")
    assert snap.balances["XRP"].locked == D("30")


def test_oco_legs_lock_the_base_once_other_lists_and_orders_add_up() -> None:
    # Two native OCOs (take-profit limit + stop) protecting two fills of one entry, and a plain sell.
    table = make_table()
    for list_id, size in (("L1", "40"), ("L2", "60")):
        for leg, price in (("tp", "0.003"), ("sl", None)):
            rec = msgspec.structs.replace(record(f"{list_id}-{leg}", Side.SELL, size, price), list_id=list_id)
            table.add_submitted(rec)
    table.add_submitted(record("s", Side.SELL, "5", None))
    view = PortfolioPublisher(table).current()
    assert view.open_orders == 5  # every leg is an order on the venue
    assert view.open_sell == {SYM: D("105")}  # 40 + 60 + 5, not 205
    # A leg partly filled: the list locks what its fullest leg still has.
    table.apply_fill(fill("L1-tp", "t1", "30", side=Side.SELL))
    assert PortfolioPublisher(table).current().open_sell == {SYM: D("105")}  # the stop still holds 40


def test_publisher_rebuilds_once_per_change() -> None:
    table = make_table()
    publisher = PortfolioPublisher(table)
    first = publisher.current()
    assert publisher.current() is first and publisher.version == first.version
    table.add_submitted(record("b"))
    second = publisher.current()
    assert second is not first and second.version > first.version
    assert second.open_orders == 1 and first.open_orders == 0  # a published view never changes
    assert publisher.current() is second
    table.apply_fill(fill("b", "t1", "100"))
    assert publisher.current().open_orders == 0 and publisher.current().positions == {SYM: D("100")}


def test_reset_keeps_counters_and_moves_the_version_on() -> None:
    table = make_table()
    table.add_submitted(record("b"))
    table.apply_fill(fill("b", "t1", "100"))
    before = table.version
    table.reset()
    assert table.version > before and table.open_orders() == [] and table.balances() == {}
    counters = table.snapshot(loaded=False, events_published=0).counters
    assert (counters.submitted, counters.fills_applied) == (1, 1)


def test_events_carry_the_orders_intent_and_parent() -> None:
    table = make_table()
    rec = msgspec.structs.replace(record("c"), parent="ct-1", intent_id="ct-1:exit:1")
    submitted = table.add_submitted(rec)
    (accepted,) = table.apply_venue_order(msgspec.structs.replace(venue_order("c", S.ACCEPTED), venue_order_id=""))
    _, (filled,) = table.apply_fill(fill("c", "t1", "100"))
    denied = table.deny_unsent(msgspec.structs.replace(rec, client_order_id="d"), "store_unavailable")
    for ev in (submitted, accepted.event, filled.event, denied):
        assert ev is not None and (ev.intent_id, ev.parent) == ("ct-1:exit:1", "ct-1")


@pytest.mark.parametrize("new", [S.TRIGGERED, S.EXPIRED], ids=lambda s: s.value)
@pytest.mark.parametrize("pending_cancel", [False, True], ids=["submitted", "pending_cancel"])
def test_a_native_order_triggered_or_expired_before_we_saw_it_accepted_goes_through_accepted(
    new: OrderStatus, pending_cancel: bool
) -> None:
    """Binance expires the other leg of an OCO that filled, maybe before its submit answer or
    while we cancel it; a native stop may trigger as fast."""
    table = make_table()
    table.add_submitted(msgspec.structs.replace(record("c"), venue_order_id="v-c"))
    start = S.SUBMITTED
    if pending_cancel:
        rec = table.order("c")
        assert rec is not None
        table.transition(rec, S.PENDING_CANCEL)
        start = S.PENDING_CANCEL
    changes = table.apply_venue_order(venue_order("c", new))
    assert [(c.event.previous, c.event.status) for c in changes if c.event is not None] == [
        (start, S.ACCEPTED), (S.ACCEPTED, new)]
    assert table.counts.illegal == 0
    rec = table.order("c")
    assert rec is not None and rec.status is new
    assert table.in_flight() == []


def test_a_final_order_read_back_from_the_store_is_remembered_for_lookups_only() -> None:
    table = make_table()
    version = table.version
    old = msgspec.structs.replace(record("old"), status=S.FILLED, filled=D("100"))
    table.remember_closed(old)
    assert table.order("old") == old and table.open_order("old") is None
    assert table.version == version and table.open_orders() == []
    table.remember_closed(msgspec.structs.replace(record("open"), status=S.ACCEPTED))
    assert table.order("open") is None  # only final orders: open ones are loaded with their fills


def test_letting_a_closed_order_go_is_noted() -> None:
    table = make_table()
    for i in range(4):
        table.add_submitted(record(f"o{i}"))
        table.apply_venue_order(venue_order(f"o{i}", S.CANCELED))
    assert not table.forgot_closed
    table.add_submitted(record("o4"))
    table.apply_venue_order(venue_order("o4", S.CANCELED))
    assert table.forgot_closed
    table.reset()
    assert not table.forgot_closed
