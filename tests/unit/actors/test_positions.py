"""Positions and ledger against hand-computed values: fees, partials, buys, sells, flips, dedup, overfill."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.model.orders import Fill, Side
from actors.model.positions import Position, PositionView, fee_in_quote, held_change, split_symbol
from actors.orders.ledger import DUPLICATE, OVERFILL, Ledger

D = Decimal


def fill(trade_id: str, side: Side, size: str, price: str, fee: str = "0", fee_currency: str = "ETH",
         coid: str = "x", symbol: str = "XRP/ETH") -> Fill:
    return Fill(venue="paper", trade_id=trade_id, client_order_id=coid, symbol=symbol, side=side,
                price=D(price), size=D(size), fee=D(fee), fee_currency=fee_currency)


def test_split_symbol_base_quote() -> None:
    assert split_symbol("XRP/ETH") == ("XRP", "ETH")
    assert split_symbol("BTC/USDT:USDT") == ("BTC", "USDT")
    with pytest.raises(ValueError):
        split_symbol("XRPETH")


def test_fee_in_quote_converts_base_fee_at_fill_price() -> None:
    assert fee_in_quote(D("0.1"), "XRP", D("0.0003"), "XRP", "ETH") == D("0.00003")
    assert fee_in_quote(D("0.00003"), "ETH", D("0.0003"), "XRP", "ETH") == D("0.00003")
    assert fee_in_quote(D("0.00003"), "", D("0.0003"), "XRP", "ETH") == D("0.00003")
    assert fee_in_quote(D("0.01"), "BNB", D("0.0003"), "XRP", "ETH") is None


def test_round_trip_with_fees_partials_and_flip_matches_hand_computation() -> None:
    led = Ledger(starting_balances={"ETH": D("10"), "XRP": D("0")})

    # Buy 100.1 @ 0.0003, fee 0.1 XRP (base) = 0.00003 ETH at the fill price: 100 XRP held.
    out = led.apply_fill(fill("t1", Side.BUY, "100.1", "0.0003", "0.1", "XRP"))
    assert out.accepted and out.realized_pnl == D("-0.00003")
    assert led.position("XRP/ETH") == PositionView(
        symbol="XRP/ETH", size=D("100"), avg_price=D("0.0003"), realized_pnl=D("-0.00003"), fees=D("0.00003"),
        fills=1)
    assert led.balances() == {"ETH": D("9.96997"), "XRP": D("100")}

    # Buy 50 @ 0.0006, fee 0.00003 ETH: avg = (0.03 + 0.03) / 150 = 0.0004.
    led.apply_fill(fill("t2", Side.BUY, "50", "0.0006", "0.00003"))
    pos = led.position("XRP/ETH")
    assert (pos.size, pos.avg_price, pos.realized_pnl, pos.fees) == (D("150"), D("0.0004"), D("-0.00006"),
                                                                     D("0.00006"))
    assert led.balances() == {"ETH": D("9.93994"), "XRP": D("150")}

    # Sell 60 @ 0.0005, fee 0.00003: realizes 60 x 0.0001 = 0.006 - fee.
    out = led.apply_fill(fill("t3", Side.SELL, "60", "0.0005", "0.00003"))
    assert out.realized_pnl == D("0.00597")
    pos = led.position("XRP/ETH")
    assert (pos.size, pos.avg_price, pos.realized_pnl) == (D("90"), D("0.0004"), D("0.00591"))
    assert pos.unrealized_pnl(D("0.00045")) == D("0.0045")
    assert pos.total_pnl(D("0.00045")) == D("0.01041")
    assert led.balances() == {"ETH": D("9.96991"), "XRP": D("90")}

    # Sell 150 @ 0.0002, no fee: closes 90 (90 x -0.0002 = -0.018), flips to short 60 @ 0.0002.
    led.apply_fill(fill("t4", Side.SELL, "150", "0.0002"))
    pos = led.position("XRP/ETH")
    assert (pos.size, pos.avg_price, pos.realized_pnl) == (D("-60"), D("0.0002"), D("-0.01209"))
    assert pos.unrealized_pnl(D("0.0001")) == D("0.006")  # a short gains when the price falls
    assert led.balances() == {"ETH": D("9.99991"), "XRP": D("-60")}

    # Buy 60 @ 0.00015, fee 0.000009: covers the short, +60 x 0.00005 = 0.003 - fee; flat.
    led.apply_fill(fill("t5", Side.BUY, "60", "0.00015", "0.000009"))
    pos = led.position("XRP/ETH")
    assert (pos.size, pos.avg_price, pos.realized_pnl, pos.fees) == (D("0"), D("0"), D("-0.009099"),
                                                                     D("0.000099"))
    assert pos.fills == 5
    assert led.balances() == {"ETH": D("9.990901"), "XRP": D("0")}
    # Consistency: the position is the XRP the fills left, and flat, the ETH change is the realized PnL.
    assert D("9.990901") - D("10") == pos.realized_pnl


def btc(trade_id: str, side: Side, size: str, price: str, fee: str = "0", fee_currency: str = "USDT") -> Fill:
    return fill(trade_id, side, size, price, fee, fee_currency, symbol="BTC/USDT")


def test_a_base_fee_buy_holds_the_net_quantity_and_selling_it_leaves_the_position_flat() -> None:
    led = Ledger(starting_balances={"USDT": D("1000")})
    # Buy 1 @ 100 with a 0.001 BTC fee: 0.999 BTC credited and held; the fee (0.1 USDT at the
    # fill price) is expensed, the entry stays at the fill price.
    out = led.apply_fill(btc("b", Side.BUY, "1", "100", "0.001", "BTC"))
    assert out.realized_pnl == D("-0.1")
    assert led.position("BTC/USDT") == PositionView(
        symbol="BTC/USDT", size=D("0.999"), avg_price=D("100"), realized_pnl=D("-0.1"), fees=D("0.1"), fills=1)
    assert led.balances()["BTC"] == led.position("BTC/USDT").size
    # Sell the 0.999 credited @ 110: flat, and the round trip's PnL is quote received - quote paid.
    led.apply_fill(btc("s", Side.SELL, "0.999", "110"))
    pos = led.position("BTC/USDT")
    assert (pos.size, pos.avg_price) == (D("0"), D("0"))
    assert pos.realized_pnl == D("0.999") * D("110") - D("100") == D("9.89")
    assert pos.total_pnl(D("123")) == D("9.89")
    assert led.balances() == {"USDT": D("1009.89"), "BTC": D("0")}


def test_a_base_fee_sell_is_taken_on_top_of_the_size_sold() -> None:
    pos = Position("BTC/USDT")
    pos.apply(Side.BUY, D("1.001"), D("100"), D("0"))
    # Sell 1 @ 110 with a 0.001 BTC fee (0.11 USDT): 1.001 BTC leaves the account.
    realized = pos.apply(Side.SELL, D("1"), D("110"), D("0.11"), base_fee=D("0.001"))
    assert (pos.size, pos.avg_price) == (D("0"), D("0"))
    assert realized == pos.realized_pnl == D("110") - D("100.1") == D("9.9")


def test_a_base_fee_sell_through_zero_flips_by_the_net_quantity_at_the_fill_price() -> None:
    pos = Position("BTC/USDT")
    pos.apply(Side.BUY, D("1"), D("100"), D("0"))
    # Sell 2 @ 90 with a 0.002 BTC fee: closes 1 (-10), opens short 1.002 @ 90, fee 0.18.
    assert pos.apply(Side.SELL, D("2"), D("90"), D("0.18"), base_fee=D("0.002")) == D("-10.18")
    assert (pos.size, pos.avg_price) == (D("-1.002"), D("90"))
    # Buy 1.002 @ 90 covers it: flat; PnL = quote in - quote out = 180 - 100 - 90.18.
    pos.apply(Side.BUY, D("1.002"), D("90"), D("0"))
    assert (pos.size, pos.avg_price, pos.realized_pnl) == (D("0"), D("0"), D("180") - D("100") - D("90.18"))


def test_quote_and_third_asset_fees_leave_the_traded_quantity_held() -> None:
    led = Ledger(starting_balances={"USDT": D("1000"), "BNB": D("1")})
    led.apply_fill(btc("q", Side.BUY, "1", "100", "0.1"))  # fee in USDT
    led.apply_fill(btc("n", Side.BUY, "1", "100", "0.1", ""))  # no currency: the quote asset
    led.apply_fill(btc("bnb", Side.BUY, "1", "100", "0.0003", "BNB"))
    pos = led.position("BTC/USDT")
    assert (pos.size, pos.avg_price, pos.fees) == (D("3"), D("100"), D("0.2"))
    assert led.balances()["BTC"] == D("3")


def test_held_change_is_the_signed_size_less_a_base_fee() -> None:
    assert held_change(btc("a", Side.BUY, "1", "100", "0.001", "BTC")) == D("0.999")
    assert held_change(btc("b", Side.SELL, "1", "100", "0.001", "BTC")) == D("-1.001")
    assert held_change(btc("c", Side.BUY, "1", "100", "0.1")) == D("1")
    assert held_change(btc("d", Side.SELL, "1", "100", "0.0003", "BNB")) == D("-1")
    odd = Fill(venue="paper", trade_id="e", client_order_id="x", symbol="BTCUSDT", side=Side.BUY,
               price=D("1"), size=D("1"), fee=D("0.1"), fee_currency="BTC")
    assert held_change(odd) == D("1")  # no BASE/QUOTE: no fee counts as base


def test_a_restored_position_keeps_its_stored_size() -> None:
    stored = PositionView(symbol="BTC/USDT", size=D("0.00001"), avg_price=D("100"), fills=3)
    led = Ledger()
    led.restore([stored], {"BTC": D("0")})
    assert led.position("BTC/USDT") == stored


def test_short_from_flat_then_partial_cover() -> None:
    led = Ledger(starting_balances={"ETH": D("1"), "XRP": D("500")})
    led.apply_fill(fill("a", Side.SELL, "200", "0.0005"))
    led.apply_fill(fill("b", Side.SELL, "100", "0.0002"))  # avg = (0.1 + 0.02) / 300 = 0.0004
    pos = led.position("XRP/ETH")
    assert (pos.size, pos.avg_price) == (D("-300"), D("0.0004"))
    led.apply_fill(fill("c", Side.BUY, "100", "0.0003", "0.00001"))  # +100 x 0.0001 - fee
    pos = led.position("XRP/ETH")
    assert (pos.size, pos.avg_price, pos.realized_pnl) == (D("-200"), D("0.0004"), D("0.00999"))
    assert led.balances() == {"ETH": D("1.08999"), "XRP": D("300")}


def test_partial_fills_accumulate_and_overfill_is_refused() -> None:
    led = Ledger(starting_balances={"ETH": D("10")})
    led.register_order("c1", symbol="XRP/ETH", side=Side.BUY, size=D("10"))
    o1 = led.apply_fill(fill("t1", Side.BUY, "4", "1", "0.004", coid="c1"))
    assert (o1.accepted, o1.order_filled, o1.order_avg_price, o1.complete) == (True, D("4"), D("1"), False)
    o2 = led.apply_fill(fill("t2", Side.BUY, "4", "1.5", "0.006", coid="c1"))
    assert (o2.order_filled, o2.order_avg_price, o2.order_fees) == (D("8"), D("1.25"), D("0.010"))
    over = led.apply_fill(fill("t3", Side.BUY, "3", "2", coid="c1"))
    assert (over.accepted, over.reason, over.order_filled) == (False, OVERFILL, D("8"))
    assert led.overfills == 1
    assert led.position("XRP/ETH").size == D("8")  # the overfill moved nothing
    again = led.apply_fill(fill("t3", Side.BUY, "3", "2", coid="c1"))  # redelivered: now a duplicate
    assert again.reason == DUPLICATE
    last = led.apply_fill(fill("t4", Side.BUY, "2", "2", coid="c1"))
    assert (last.order_filled, last.order_avg_price, last.complete) == (D("10"), D("1.4"), True)
    assert led.balances() == {"ETH": D("10") - D("14") - D("0.010"), "XRP": D("10")}


def test_duplicate_fill_by_venue_and_trade_id_is_refused() -> None:
    led = Ledger(starting_balances={"ETH": D("1")})
    assert led.apply_fill(fill("t1", Side.BUY, "10", "0.0003")).accepted
    dup = led.apply_fill(fill("t1", Side.BUY, "10", "0.0003"))
    assert (dup.accepted, dup.reason) == (False, DUPLICATE)
    other_venue = Fill(venue="other", trade_id="t1", client_order_id="x", symbol="XRP/ETH", side=Side.BUY,
                       price=D("0.0003"), size=D("10"))
    assert led.apply_fill(other_venue).accepted
    assert led.position("XRP/ETH").size == D("20")
    assert (led.duplicate_fills, led.fills_applied) == (1, 2)


def test_fill_for_unknown_order_is_applied_and_flagged() -> None:
    led = Ledger()
    out = led.apply_fill(fill("t1", Side.BUY, "5", "2", coid="manual"))
    assert out.accepted and not out.known_order
    assert led.unknown_order_fills == 1
    assert led.balances() == {"XRP": D("5"), "ETH": D("-10")}


def test_late_fill_on_closed_order_is_applied_and_checked() -> None:
    led = Ledger()
    led.register_order("c1", symbol="XRP/ETH", side=Side.SELL, size=D("5"))
    led.apply_fill(fill("t1", Side.SELL, "2", "1", coid="c1"))
    led.close_order("c1")
    late = led.apply_fill(fill("t2", Side.SELL, "3", "1", coid="c1"))
    assert late.accepted and late.known_order and late.complete
    assert led.apply_fill(fill("t3", Side.SELL, "1", "1", coid="c1")).reason == OVERFILL


def test_third_currency_fee_kept_out_of_pnl_but_deducted() -> None:
    led = Ledger(starting_balances={"ETH": D("1"), "BNB": D("1")})
    led.apply_fill(fill("t1", Side.BUY, "10", "0.01", "0.002", "BNB"))
    pos = led.position("XRP/ETH")
    assert (pos.realized_pnl, pos.fees) == (D("0"), D("0"))
    assert led.unconverted_fees == {"BNB": D("0.002")}
    assert led.balances() == {"ETH": D("0.9"), "BNB": D("0.998"), "XRP": D("10")}


def test_dedup_memory_is_bounded() -> None:
    led = Ledger(dedup_window=2)
    for t in ("t1", "t2", "t3"):
        led.apply_fill(fill(t, Side.BUY, "1", "1"))
    assert not led.seen("paper", "t1")
    assert led.seen("paper", "t2") and led.seen("paper", "t3")


def test_replay_and_restore_rebuild_the_same_state() -> None:
    fills = [fill("t1", Side.BUY, "100", "0.0003", "0.1", "XRP"), fill("t2", Side.SELL, "40", "0.0004", "0.00001")]
    live = Ledger(starting_balances={"ETH": D("10")})
    for f in fills:
        live.apply_fill(f)
    snap_positions, snap_balances = live.positions(), live.balances()
    restored = Ledger()
    restored.restore(snap_positions, snap_balances)
    assert restored.positions() == snap_positions and restored.balances() == snap_balances
    replayed = Ledger(starting_balances={"ETH": D("10")})
    for f in fills:
        replayed.replay_fill(f)
        replayed.replay_fill(f)  # replay dedups too
    assert replayed.positions() == live.positions() and replayed.balances() == live.balances()


def test_rebase_balances_adopts_venue_truth() -> None:
    led = Ledger(starting_balances={"ETH": D("10"), "XRP": D("5")})
    changes = led.rebase_balances({"ETH": D("9.5"), "XRP": D("5"), "BTC": D("1")})
    assert changes == {"ETH": D("-0.5"), "BTC": D("1")}
    assert led.balances() == {"ETH": D("9.5"), "XRP": D("5"), "BTC": D("1")}
