"""Every pre-trade check: one case that passes and one that is denied with its reason code."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.model.control import TradingState
from actors.model.orders import Balance, OrderIntent, OrderType, Side
from actors.risk.checks import (
    Approval,
    Denial,
    Reason,
    RiskInputs,
    check_cash,
    check_daily_loss,
    check_drawdown,
    check_gross_exposure,
    check_halted,
    check_instrument,
    check_intent_shape,
    check_kill_switch,
    check_max_order_notional,
    check_max_position,
    check_min_notional,
    check_open_orders,
    check_order_rate,
    check_price_collar,
    check_price_precision,
    check_qty_bounds,
    check_qty_precision,
    check_reduce_only,
    check_reference_price,
    check_stale_data,
    evaluate,
    gross_exposure,
    limits_for,
    mark_to_market,
    resolve_size,
    round_down,
)
from actors.risk.order_flow import RateWindow
from config.schema.trading import InstrumentSection, RiskSection, SymbolRiskSection

D = Decimal
INST = InstrumentSection(
    base="XRP",
    quote="ETH",
    tick_size=D("0.00000001"),
    step_size=D("1"),
    min_qty=D("1"),
    max_qty=D("100000"),
    min_notional=D("0.01"),
)


def intent(**kw: Any) -> OrderIntent:
    base: dict[str, Any] = {"strategy": "s1", "symbol": "XRP/ETH", "side": Side.BUY, "size": D("100")}
    base.update(kw)
    return OrderIntent(**base)


def inputs(**kw: Any) -> RiskInputs:
    risk = kw.pop("risk", RiskSection())
    base: dict[str, Any] = {
        "state": TradingState.ACTIVE,
        "kill_switch": False,
        "instrument": INST,
        "limits": limits_for(risk, "XRP/ETH"),
        "risk": risk,
        "reference_price": D("0.002"),
        "data_age_s": 1.0,
        "quote_free": D("10"),
        "base_free": D("1000"),
    }
    base.update(kw)
    return RiskInputs(**base)


def assert_denied(d: Denial | None, reason: Reason) -> Denial:
    assert d is not None, f"expected {reason}, got a pass"
    assert d.reason == reason
    return d


# -- state and switches --------------------------------------------------------------------------


def test_kill_switch_off_passes() -> None:
    assert check_kill_switch(False) is None


def test_kill_switch_on_denied() -> None:
    assert_denied(check_kill_switch(True), Reason.KILL_SWITCH)


def test_halted_state_active_passes() -> None:
    assert check_halted(TradingState.ACTIVE) is None


def test_halted_state_halted_denied() -> None:
    assert_denied(check_halted(TradingState.HALTED), Reason.TRADING_HALTED)


def test_reduce_only_sell_shrinking_long_passes() -> None:
    assert check_reduce_only(TradingState.REDUCING, Side.SELL, D("50"), D("100")) is None


def test_reduce_only_buy_growing_long_denied() -> None:
    assert_denied(check_reduce_only(TradingState.REDUCING, Side.BUY, D("1"), D("100")), Reason.REDUCE_ONLY)


def test_reduce_only_sell_flipping_position_denied() -> None:
    assert_denied(check_reduce_only(TradingState.REDUCING, Side.SELL, D("150"), D("100")), Reason.REDUCE_ONLY)


def test_reduce_only_with_open_reducing_orders_denied() -> None:
    d = check_reduce_only(TradingState.REDUCING, Side.SELL, D("60"), D("100"), open_reducing=D("50"))
    assert_denied(d, Reason.REDUCE_ONLY)


def test_reduce_only_active_state_any_order_passes() -> None:
    assert check_reduce_only(TradingState.ACTIVE, Side.BUY, D("1"), D("100")) is None


# -- instrument and intent ------------------------------------------------------------------------


def test_instrument_known_tradable_passes() -> None:
    assert check_instrument("XRP/ETH", INST) is None


def test_instrument_unknown_denied() -> None:
    assert_denied(check_instrument("DOGE/ETH", None), Reason.UNKNOWN_INSTRUMENT)


def test_instrument_not_tradable_denied() -> None:
    inst = InstrumentSection(base="XRP", quote="ETH", tradable=False)
    assert_denied(check_instrument("XRP/ETH", inst), Reason.INSTRUMENT_NOT_TRADABLE)


def test_intent_shape_size_only_passes() -> None:
    assert check_intent_shape(intent()) is None


def test_intent_shape_size_and_notional_denied() -> None:
    assert_denied(check_intent_shape(intent(notional=D("1"))), Reason.INVALID_INTENT)


def test_intent_shape_limit_without_price_denied() -> None:
    assert_denied(check_intent_shape(intent(type=OrderType.LIMIT)), Reason.INVALID_INTENT)


def test_reference_price_known_passes() -> None:
    assert check_reference_price("XRP/ETH", D("0.002")) is None


def test_reference_price_missing_denied() -> None:
    assert_denied(check_reference_price("XRP/ETH", None), Reason.NO_REFERENCE_PRICE)


# -- precision and venue filters -------------------------------------------------------------------


def test_price_precision_on_tick_passes() -> None:
    assert check_price_precision(D("0.00201234"), D("0.00000001")) is None


def test_price_precision_off_tick_denied() -> None:
    assert_denied(check_price_precision(D("0.002012345"), D("0.00000001")), Reason.PRICE_PRECISION)


def test_qty_precision_on_step_passes() -> None:
    assert check_qty_precision(D("12"), D("1")) is None


def test_qty_precision_off_step_denied() -> None:
    assert_denied(check_qty_precision(D("12.5"), D("1")), Reason.QTY_PRECISION)


def test_qty_bounds_inside_passes() -> None:
    assert check_qty_bounds(D("10"), D("1"), D("100")) is None


def test_qty_bounds_below_min_denied() -> None:
    assert_denied(check_qty_bounds(D("0.5"), D("1"), D("100")), Reason.QTY_BELOW_MIN)


def test_qty_bounds_above_max_denied() -> None:
    assert_denied(check_qty_bounds(D("101"), D("1"), D("100")), Reason.QTY_ABOVE_MAX)


def test_min_notional_reached_passes() -> None:
    assert check_min_notional(D("0.01"), D("0.01")) is None


def test_min_notional_short_denied() -> None:
    assert_denied(check_min_notional(D("0.0099"), D("0.01")), Reason.MIN_NOTIONAL)


def test_price_collar_within_passes() -> None:
    assert check_price_collar(D("0.00204"), D("0.002"), 500.0) is None


def test_price_collar_outside_denied() -> None:
    d = assert_denied(check_price_collar(D("0.0022"), D("0.002"), 500.0), Reason.PRICE_COLLAR)
    assert d.limit == "price_collar_bps=500"


def test_price_collar_market_order_passes() -> None:
    assert check_price_collar(None, D("0.002"), 1.0) is None


# -- exposure limits ---------------------------------------------------------------------------------


def test_max_order_notional_within_passes() -> None:
    assert check_max_order_notional(D("1"), D("1")) is None


def test_max_order_notional_exceeded_denied() -> None:
    d = assert_denied(check_max_order_notional(D("1.01"), D("1")), Reason.MAX_ORDER_NOTIONAL)
    assert d.limit == "max_order_notional=1"


def test_max_position_within_passes() -> None:
    assert check_max_position(Side.BUY, D("100"), D("800"), D("100"), D("1000")) is None


def test_max_position_exceeded_after_order_denied() -> None:
    assert_denied(check_max_position(Side.BUY, D("101"), D("800"), D("100"), D("1000")), Reason.MAX_POSITION)


def test_max_position_reducing_over_limit_passes() -> None:
    assert check_max_position(Side.SELL, D("100"), D("2000"), D("0"), D("1000")) is None


def test_gross_exposure_within_passes() -> None:
    assert check_gross_exposure(D("1"), D("0"), Side.BUY, D("1000"), D("0.002"), D("5")) is None


def test_gross_exposure_exceeded_denied() -> None:
    d = check_gross_exposure(D("4.5"), D("0"), Side.BUY, D("1000"), D("0.002"), D("5"))
    assert_denied(d, Reason.MAX_GROSS_EXPOSURE)


def test_gross_exposure_reducing_over_limit_passes() -> None:
    # 10 ETH exposure from 5000 XRP at 0.002; selling 1000 lowers it.
    assert check_gross_exposure(D("10"), D("5000"), Side.SELL, D("1000"), D("0.002"), D("5")) is None


def test_gross_exposure_helper_sums_priced_symbols() -> None:
    total = gross_exposure({"A": D("-10"), "B": D("5"), "C": D("3")}, {"A": D("2"), "B": D("1")})
    assert total == D("25")


def test_open_orders_below_limit_passes() -> None:
    assert check_open_orders(9, 10) is None


def test_open_orders_at_limit_denied() -> None:
    assert_denied(check_open_orders(10, 10), Reason.MAX_OPEN_ORDERS)


def test_order_rate_below_limit_passes() -> None:
    assert check_order_rate(59, 60) is None


def test_order_rate_at_limit_denied() -> None:
    assert_denied(check_order_rate(60, 60), Reason.ORDER_RATE)


def test_rate_window_injected_clock_expires_old_entries() -> None:
    w = RateWindow(60.0)
    for t in (0.0, 10.0, 20.0):
        w.record(t)
    assert w.count(30.0) == 3
    assert w.count(65.0) == 2
    assert w.count(80.0) == 0


def test_cash_buy_covered_passes() -> None:
    # 100 x 0.002 = 0.2 + 0.1% fee = 0.2002
    assert check_cash(Side.BUY, D("100"), D("0.002"), 10.0, D("0"), D("0.2002")) is None


def test_cash_buy_fee_not_covered_denied() -> None:
    assert_denied(check_cash(Side.BUY, D("100"), D("0.002"), 10.0, D("0"), D("0.2")), Reason.INSUFFICIENT_CASH)


def test_cash_sell_covered_passes() -> None:
    assert check_cash(Side.SELL, D("100"), D("0.002"), 10.0, D("100"), D("0")) is None


def test_cash_sell_short_base_denied() -> None:
    assert_denied(check_cash(Side.SELL, D("100"), D("0.002"), 10.0, D("99"), D("50")), Reason.INSUFFICIENT_CASH)


# -- data and PnL ------------------------------------------------------------------------------------


def test_stale_data_fresh_passes() -> None:
    assert check_stale_data(5.0, 120.0) is None


def test_stale_data_old_denied() -> None:
    assert_denied(check_stale_data(121.0, 120.0), Reason.STALE_DATA)


def test_stale_data_never_seen_denied() -> None:
    assert_denied(check_stale_data(None, 120.0), Reason.STALE_DATA)


def test_daily_loss_within_passes() -> None:
    assert check_daily_loss(D("-0.49"), D("0.5")) is None


def test_daily_loss_reached_denied() -> None:
    assert_denied(check_daily_loss(D("-0.5"), D("0.5")), Reason.DAILY_LOSS_LIMIT)


def test_daily_loss_unknown_pnl_passes() -> None:
    assert check_daily_loss(None, D("0.5")) is None


def test_drawdown_within_passes() -> None:
    assert check_drawdown(D("81"), D("100"), 20.0) is None


def test_drawdown_reached_denied() -> None:
    assert_denied(check_drawdown(D("80"), D("100"), 20.0), Reason.MAX_DRAWDOWN)


def test_mark_to_market_values_base_in_quote() -> None:
    bal = {"ETH": Balance(asset="ETH", free=D("1"), locked=D("1")), "XRP": Balance(asset="XRP", free=D("500"))}
    assert mark_to_market(bal, {"XRP/ETH": INST}, {"XRP/ETH": D("0.002")}, "ETH") == D("3")


def test_mark_to_market_unpriced_asset_unknown() -> None:
    bal = {"XRP": Balance(asset="XRP", free=D("500"))}
    assert mark_to_market(bal, {"XRP/ETH": INST}, {}, "ETH") is None


# -- sizing and per-symbol limits ----------------------------------------------------------------------


def test_resolve_size_notional_rounds_down_to_step() -> None:
    # 0.5 / 0.003 = 166.67 -> 166
    assert resolve_size(intent(size=None, notional=D("0.5")), D("0.003"), D("1")) == D("166")


def test_resolve_size_limit_notional_uses_limit_price() -> None:
    it = intent(size=None, notional=D("0.5"), type=OrderType.LIMIT, limit_price=D("0.0025"))
    assert resolve_size(it, D("0.003"), D("1")) == D("200")


def test_round_down_fractional_step_truncates() -> None:
    assert round_down(D("1.23456"), D("0.001")) == D("1.234")


def test_limits_for_symbol_override_wins() -> None:
    risk = RiskSection(symbols={"XRP/ETH": SymbolRiskSection(max_position=D("5"), stale_data_s=3.0)})
    lim = limits_for(risk, "XRP/ETH")
    assert lim.max_position == D("5")
    assert lim.stale_data_s == 3.0
    assert lim.max_order_notional == risk.max_order_notional
    assert limits_for(risk, "BTC/ETH").max_position == risk.max_position


# -- evaluate: the whole chain ------------------------------------------------------------------------


def test_evaluate_clean_intent_approved() -> None:
    out = evaluate(intent(), inputs())
    assert out == Approval(size=D("100"), reference_price=D("0.002"))


def test_evaluate_notional_intent_approved_with_rounded_size() -> None:
    out = evaluate(intent(size=None, notional=D("0.5")), inputs(reference_price=D("0.003")))
    assert isinstance(out, Approval)
    assert out.size == D("166")


def test_evaluate_notional_too_small_for_one_step_denied() -> None:
    out = evaluate(intent(size=None, notional=D("0.001")), inputs())
    assert isinstance(out, Denial)
    assert out.reason == Reason.QTY_BELOW_MIN


def test_evaluate_kill_switch_wins_over_everything_denied() -> None:
    out = evaluate(intent(symbol="NOPE"), inputs(kill_switch=True, state=TradingState.HALTED))
    assert isinstance(out, Denial)
    assert out.reason == Reason.KILL_SWITCH


def test_evaluate_per_symbol_notional_override_denied() -> None:
    risk = RiskSection(symbols={"XRP/ETH": SymbolRiskSection(max_order_notional=D("0.1"))})
    out = evaluate(intent(), inputs(risk=risk))
    assert isinstance(out, Denial)
    assert (out.reason, out.limit) == (Reason.MAX_ORDER_NOTIONAL, "max_order_notional=0.1")


def test_evaluate_market_buy_cash_buffer_denied() -> None:
    # 100 x 0.002 = 0.2; with a 50 bps buffer and 10 bps fee it needs ~0.2012.
    out = evaluate(intent(), inputs(quote_free=D("0.201")))
    assert isinstance(out, Denial)
    assert out.reason == Reason.INSUFFICIENT_CASH


def test_evaluate_drawdown_denied() -> None:
    out = evaluate(intent(), inputs(equity=D("7"), equity_peak=D("10")))
    assert isinstance(out, Denial)
    assert out.reason == Reason.MAX_DRAWDOWN


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"data_age_s": 500.0}, Reason.STALE_DATA),
        ({"reference_price": None}, Reason.NO_REFERENCE_PRICE),
        ({"open_orders": 10}, Reason.MAX_OPEN_ORDERS),
        ({"recent_orders": 60}, Reason.ORDER_RATE),
        ({"position": D("950")}, Reason.MAX_POSITION),
        ({"state": TradingState.REDUCING}, Reason.REDUCE_ONLY),
        ({"daily_pnl": D("-1")}, Reason.DAILY_LOSS_LIMIT),
    ],
)
def test_evaluate_each_limit_denied(kw: dict[str, Any], reason: Reason) -> None:
    out = evaluate(intent(), inputs(**kw))
    assert isinstance(out, Denial)
    assert out.reason == reason
