"""Exits sized at what the entry's fills credited: a buy's fills net of fees charged in the base
asset, rounded down to the quantity step (emulated children, native OCO chunks, an OTO's pending
exit), the rest below the step named when the bracket is done, quote and BNB fees and sell entries
unchanged, and the fees kept in the row and read back from the store after a restart."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import msgspec

from actors.contingent.book import ContingentBook
from actors.contingent.bracket import Bracket
from actors.contingent.effects import Persist
from actors.contingent.net_fill import BaseFees
from actors.contingent.oto import Oto
from actors.model.contingent import ContingentStatus
from actors.model.orders import ApprovedList, Fill, ListKind, OrderList, OrderType, Side
from actors.model.records import OrderRecord
from tests.unit.actors.contingent.test_bracket import (
    SYM,
    Env,
    Sim,
    approved,
    assert_bracket_invariants,
    assert_exit_invariants,
    bracket,
    entry,
    releases,
    sl,
    tp,
)

D = Decimal
_S = ContingentStatus


def fee_in(currency: str, rate: str = "0.001") -> Callable[[OrderRecord, Decimal], tuple[Decimal, str]]:
    """A venue fee of ``rate`` of the quantity, charged in ``currency`` on buys (sells: quote)."""

    def fee(rec: OrderRecord, qty: Decimal) -> tuple[Decimal, str]:
        if rec.side is Side.SELL:
            return qty * 100 * D(rate), "USDT"
        return qty * D(rate), currency

    return fee


def sim_with(*, step: str = "0", native: bool = False, currency: str = "BTC", side: Side = Side.BUY,
             rate: str = "0.001", carry: str = "0") -> Sim:
    env = Env(native=native, step=D(step))
    exits = (tp(), sl()) if side is Side.BUY else (tp("90", side=Side.BUY), sl("110", side=Side.BUY))
    lst = approved(entry(side=side), *exits)
    lst = msgspec.structs.replace(lst, order_list=msgspec.structs.replace(lst.order_list, carry=D(carry)))
    b = Bracket.from_approved(lst, env.ctx)
    sim = Sim(b, env, check=assert_exit_invariants, quiet_check=assert_bracket_invariants)
    sim.venue.fee = fee_in(currency, rate)
    sim.start()
    return sim


# -- emulated -------------------------------------------------------------------------------------------
def test_emulated_exit_sells_what_the_fills_credited_net_of_base_fees_rounded_down() -> None:
    sim = sim_with(step="0.01")
    b = bracket(sim)
    sim.fill(b.entry_id, "0.4")  # fee 0.0004 BTC
    sim.fill(b.entry_id, "0.6")  # fee 0.0006 BTC: 0.999 credited
    assert (b.entry_filled, b.net_filled, b.target(), b.protected) == (D(1), D("0.999"), D("0.99"), D("0.999"))
    assert D(b.view().protected or "") == D("0.999")
    out = sim.trade("89")
    (child,) = releases(out)
    assert child.side is Side.SELL and child.size == D("0.99")  # never the 1.0 traded, never rounded up
    sim.fill(child.client_order_id, "0.99")
    assert b.status is _S.DONE
    (done,) = [n for n in sim.venue.notices if n.event == "contingent.done"]
    # the rest below the step, no order can sell it: named, at warning
    assert D(done.fields["position_left"]) == D("0.009") and done.level == "warning"


def test_exit_is_exact_net_without_a_step_and_done_leaves_nothing() -> None:
    sim = sim_with()
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    (child,) = releases(sim.trade("111"))
    assert child.size == D("0.999")
    sim.fill(child.client_order_id, "0.999")
    assert b.status is _S.DONE and b.protected == 0
    (done,) = [n for n in sim.venue.notices if n.event == "contingent.done"]
    assert D(done.fields["position_left"]) == 0 and done.level == "info"


def test_entry_fills_after_the_trigger_release_net_children() -> None:
    sim = sim_with(step="0.001")
    b = bracket(sim)
    sim.fill(b.entry_id, "0.4")
    (first,) = releases(sim.trade("89"))
    assert first.size == D("0.399")
    (second,) = releases(sim.fill(b.entry_id, "0.3"))  # racing the entry's cancel
    # the running total is rounded, not each fill: 0.6993 credited, 0.699 sellable, 0.3 more
    assert second.size == D("0.3") and second.client_order_id != first.client_order_id
    assert b.target() == D("0.699")


def test_quote_asset_fee_leaves_the_exit_at_what_the_entry_traded() -> None:
    sim = sim_with(currency="USDT", step="0.01")
    b = bracket(sim)
    sim.fill(b.entry_id, "0.4")
    sim.fill(b.entry_id, "0.6")
    assert b.target() == D(1)
    assert releases(sim.trade("89"))[0].size == D(1)


def test_bnb_fee_leaves_the_exit_at_what_the_entry_traded() -> None:
    sim = sim_with(currency="BNB", step="0.01")
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    assert releases(sim.trade("111"))[0].size == D(1)


def test_sell_entry_buy_back_exit_is_what_the_entry_sold() -> None:
    """A sell's fee (in the quote asset, or in the base asset taken on top) reduces what the sale
    brought in; the buy-back must still buy all that was sold."""
    sim = sim_with(side=Side.SELL, step="0.01")
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    assert b.fill_sources() == ()
    b.restore_fill(Fill(venue="sim", trade_id="x", client_order_id=b.entry_id, symbol=SYM, side=Side.SELL,
                        price=D(100), size=D(1), fee=D("0.001"), fee_currency="BTC"))
    assert b.target() == D(1)
    (child,) = releases(sim.trade("111"))
    assert child.side is Side.BUY and child.size == D(1)


# -- native -----------------------------------------------------------------------------------------------
def test_native_oco_per_fill_covers_the_net_rounded_down_to_the_step() -> None:
    sim = sim_with(native=True, step="0.01")
    b = bracket(sim)
    first = releases(sim.fill(b.entry_id, "0.4"))  # 0.3996 credited: 0.39 sellable
    assert [o.size for o in first] == [D("0.39")] * 2
    second = releases(sim.fill(b.entry_id, "0.6"))  # 0.999 credited: 0.99 sellable
    assert [o.size for o in second] == [D("0.6")] * 2
    assert sum((ch.size for ch in b.exits.chunks), D(0)) == D("0.99") == b.target()


# -- OTO ----------------------------------------------------------------------------------------------------
def _oto(env: Env, pending_side: Side) -> Oto:
    working = entry(OrderType.MARKET)
    pending = tp() if pending_side is Side.SELL else tp("110", side=Side.BUY, type=OrderType.STOP_MARKET)
    ol = OrderList(kind=ListKind.OTO, strategy="s1", symbol=SYM, orders=(working, pending), list_id="L2")
    return Oto.from_approved(ApprovedList(order_list=ol, sizes=(D(1), None), reference_price=D(100)), env.ctx)


def test_oto_pending_exit_follows_the_working_buy_net_of_base_fees() -> None:
    env = Env(step=D("0.01"))
    sim = Sim(_oto(env, Side.SELL), env)
    sim.venue.fee = fee_in("BTC")
    sim.start()
    o = sim.order
    assert isinstance(o, Oto)
    sim.fill(o.working_id, "1")
    assert (o.net_filled, o.target()) == (D("0.999"), D("0.99"))
    (child,) = releases(sim.trade("111"))
    assert child.side is Side.SELL and child.size == D("0.99")


def test_oto_pending_on_the_same_side_is_not_netted() -> None:
    env = Env(step=D("0.01"))
    sim = Sim(_oto(env, Side.BUY), env)
    sim.venue.fee = fee_in("BTC")
    sim.start()
    o = sim.order
    assert isinstance(o, Oto)
    sim.fill(o.working_id, "1")
    assert o.fill_sources() == () and o.target() == D(1)


# -- stored state and restart ---------------------------------------------------------------------------------
def test_fees_and_step_round_trip_through_the_row() -> None:
    sim = sim_with(step="0.01")
    b = bracket(sim)
    sim.fill(b.entry_id, "0.4")
    back = Bracket.from_row(b.row())
    assert (back.step, back.entry_fees, back.target()) == (D("0.01"), b.entry_fees, D("0.39"))


def test_a_row_without_fees_or_step_reads_as_before() -> None:
    sim = sim_with()
    b = bracket(sim)
    sim.fill(b.entry_id, "0.5")
    body = b.body()
    del body["step"], body["entry_fees"]
    old = Bracket.from_body(b.row(), body)
    assert (old.step, old.entry_fees, old.target()) == (D(0), BaseFees(), D("0.5"))


def test_restart_reads_back_fills_the_last_row_missed_each_once() -> None:
    sim = sim_with(step="0.001")
    b = bracket(sim)
    saved = [p for p in sim.venue.durable if p.id == b.id][-1]  # written ahead at start
    sim.fill(b.entry_id, "0.4")
    sim.fill(b.entry_id, "0.6")  # the rows for these fills were lost (kill -9)
    revived = Bracket.from_row(saved)
    assert revived.entry_filled == 0 and revived.fill_sources() == (b.entry_id,)
    book = ContingentBook(sim.ctx)
    book.restore([saved])
    assert book.fill_sources() == [b.entry_id]
    fills = sim.venue.fills[b.entry_id]
    book.restore_fills([*fills, *fills])  # a fill seen twice counts once
    effects = book.resume(sim.venue.lookup)
    again = book.get(b.id)
    assert isinstance(again, Bracket)
    assert (again.entry_filled, again.net_filled, again.target()) == (D(1), D("0.999"), D("0.999"))
    saved_again = [r for e in effects if isinstance(e, Persist) for r in e.rows if r.id == b.id][-1]
    assert Bracket.from_row(saved_again).entry_fees.total == D("0.001")


def test_base_fees_ignore_other_orders_and_assets() -> None:
    fees = BaseFees()
    fill = Fill(venue="v", trade_id="1", client_order_id="e", symbol=SYM, side=Side.BUY, price=D(1), size=D(1),
                fee=D("0.001"), fee_currency="BTC")
    assert fees.record(fill, "BTC") and not fees.record(fill, "BTC")
    assert not fees.record(Fill(venue="v", trade_id="2", client_order_id="e", symbol=SYM, side=Side.BUY,
                                price=D(1), size=D(1), fee=D("0.1"), fee_currency=""), "BTC")  # "" is quote
    assert not fees.record(fill, "")
    assert fees.total == D("0.001")


# -- dust an earlier bracket left -------------------------------------------------------------------------
def test_carried_dust_is_sold_with_the_entry_and_the_rest_stays_below_a_step() -> None:
    sim = sim_with(step="0.01", carry="0.009")  # what the bracket above left: 0.999 credited, 0.99 sold
    b = bracket(sim)
    assert (b.net_filled, b.target()) == (0, 0)  # nothing filled: nothing of the dust is sold either
    sim.fill(b.entry_id, "1")  # 0.999 credited + 0.009 carried = 1.008
    assert (b.net_filled, b.target()) == (D("1.008"), D("1.00"))
    (child,) = releases(sim.trade("89"))
    assert child.size == D("1.00")
    sim.fill(child.client_order_id, "1.00")
    assert b.status is _S.DONE
    (done,) = [n for n in sim.venue.notices if n.event == "contingent.done"]
    assert D(done.fields["position_left"]) == D("0.008")  # below a step again: never adds up


def test_carried_dust_survives_a_restart() -> None:
    sim = sim_with(step="0.01", carry="0.009")
    b = bracket(sim)
    sim.fill(b.entry_id, "0.5")
    back = Bracket.from_row(b.row())
    assert back.carry == D("0.009") and back.body() == b.body() and back.target() == b.target() == D("0.50")
