"""Backtest metrics: FIFO round trips, the equity curve, drawdown and ratio definitions."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from actors.model.market import Bar
from actors.model.orders import Fill, OrderStatus, OrderType
from actors.model.records import OrderRecord
from daemon.backtest import metrics as m

D = Decimal
QUOTE, BASES = "ETH", {"XRP/ETH": "XRP"}


def order(coid: str, strategy: str = "s", tag: str = "") -> OrderRecord:
    return OrderRecord(client_order_id=coid, venue="paper", strategy=strategy, symbol="XRP/ETH", side="buy",
                       type=OrderType.MARKET, size=D(1), status=OrderStatus.FILLED, tag=tag)


def fill(coid: str, side: str, size: str, price: str, ts: int, fee: str = "0", ccy: str = "ETH") -> Fill:
    return Fill(venue="paper", trade_id=f"{coid}-{ts}", client_order_id=coid, symbol="XRP/ETH", side=side,  # type: ignore[arg-type]
                price=D(price), size=D(size), fee=D(fee), fee_currency=ccy, ts_ms=ts)


def test_round_trips_match_fifo_per_strategy_and_take_the_exit_tag_and_both_fee_shares() -> None:
    orders = [order("b1"), order("b2"), order("x1", tag="exit.signal"), order("o1", strategy="other"),
              order("o2", strategy="other", tag="stop")]
    fills = [
        fill("b1", "buy", "2", "1.0", 1000, fee="0.002"),
        fill("b2", "buy", "2", "2.0", 2000, fee="0.004"),
        fill("o1", "buy", "1", "5", 2500),
        fill("x1", "sell", "3", "3.0", 3000, fee="0.009"),  # closes b1 fully, half of b2
        fill("o2", "sell", "1", "4", 3500),
        fill("x1", "sell", "1", "3.0", 4000, fee="0.003"),  # the rest of b2, same exit order
    ]
    other, a, b = (t for t in sorted(m.round_trips(fills, orders, QUOTE, BASES), key=lambda t: (t.strategy,
                                                                                               t.entry_ts_ms)))
    assert (other.strategy, other.entry_price, other.exit_price, other.profit, other.exit_reason) == (
        "other", D(5), D(4), D(-1), "stop")
    assert (a.size, a.entry_price, a.exit_price, a.entry_ts_ms, a.exit_ts_ms) == (D(2), D(1), D(3), 1000, 3000)
    assert a.fees == D("0.002") + D("0.009") * 2 / 3
    assert a.profit == D(4) - a.fees and a.exit_reason == "exit.signal" and a.holding_ms == 2000
    # b2 was closed by two fills of the same exit order: one trade, exit at the last fill.
    assert (b.size, b.entry_price, b.exit_ts_ms) == (D(2), D(2), 4000)
    assert b.fees == D("0.004") + D("0.009") / 3 + D("0.003")
    assert b.profit_pct == m.sig(float((D(2) - b.fees) / D(4) * 100))


def test_a_sell_without_an_open_lot_is_not_a_trade_and_base_fees_convert_at_the_fill_price() -> None:
    orders = [order("x0", tag="exit"), order("b1"), order("x1", tag="exit")]
    fills = [fill("x0", "sell", "1", "1", 10), fill("b1", "buy", "1", "2", 20, fee="0.01", ccy="XRP"),
             fill("x1", "sell", "1", "3", 30)]
    [t] = m.round_trips(fills, orders, QUOTE, BASES)
    assert t.fees == D("0.02") and t.profit == D(1) - D("0.02")
    assert m.round_trips(fills, [], QUOTE, BASES)[0].exit_reason == "untagged"


def bar(ts: int, o: float, c: float) -> Bar:
    return Bar(symbol="XRP/ETH", ts_ms=ts, recv_ns=0, timeframe="1m", open=o, high=max(o, c), low=min(o, c),
               close=c, volume=1.0)


def test_equity_is_marked_at_each_bar_close_after_the_fills_before_it() -> None:
    bars = {"XRP/ETH": [bar(0, 1.0, 1.0), bar(60_000, 1.0, 2.0), bar(120_000, 2.0, 1.5)]}
    fills = [fill("b", "buy", "10", "1.0", 60_000, fee="0.01")]  # inside the second bar
    start, points, final = m.equity_curve(bars, "1m", fills, {"ETH": D(100)}, QUOTE, BASES)
    assert start == D(100)
    assert [(p.ts_ms, p.equity) for p in points] == [(60_000, D(100)), (120_000, D("109.99")),
                                                    (180_000, D("104.99"))]
    assert points[2].drawdown_pct == pytest.approx(5 / 109.99 * 100)
    assert final == D("104.99")
    dd = m.drawdown(0, start, points)
    assert (dd.max_abs, dd.max_duration_ms) == (D(5), 60_000)
    assert dd.max_pct == points[2].drawdown_pct


def test_daily_returns_and_ratios() -> None:
    day = m.DAY_MS
    points = [m.EquityPoint(day, D(110), 0.0), m.EquityPoint(day + 60_000, D(99), 10.0),
              m.EquityPoint(2 * day, D(99), 10.0), m.EquityPoint(3 * day, D("108.9"), 1.0)]
    r = m.daily_returns(D(100), points)  # a sample at midnight closes the day before
    assert r == pytest.approx([0.10, -0.10, 0.10])
    mean, sd = sum(r) / 3, math.sqrt(sum((x - sum(r) / 3) ** 2 for x in r) / 2)
    assert m.sharpe(r) == pytest.approx(mean / sd * math.sqrt(365))
    assert m.sortino(r) == pytest.approx(mean / math.sqrt(0.01 / 3) * math.sqrt(365))
    assert m.sharpe([0.1]) == m.sortino([0.1]) == 0.0 and m.sharpe([0.1, 0.1]) == 0.0
    assert m.sortino([0.1, 0.2]) == 0.0  # no downside
    assert m.cagr_pct(D(100), D(121), 730.0) == pytest.approx(10.0)
    assert m.cagr_pct(D(100), D(200), 0.5) == 0.0  # under a day: not annualised
    assert m.calmar(10.0, 5.0) == 2.0 and m.calmar(10.0, 0.0) == 0.0


def test_group_stats_and_periods() -> None:
    def rt(profit: str, exit_ts: int) -> m.RoundTrip:
        return m.RoundTrip(strategy="s", symbol="XRP/ETH", entry_ts_ms=exit_ts - 1000, exit_ts_ms=exit_ts,
                           entry_price=D(1), exit_price=D(1), size=D(1), profit=D(profit), profit_pct=0.0,
                           fees=D(0), exit_reason="x")

    trades = [rt("3", 1_570_838_400_000), rt("-1", 1_570_838_400_001), rt("0", 1_573_000_000_000)]
    g = m.group_stats(trades, D("0.5"))
    assert (g["trades"], g["wins"], g["losses"], g["total_profit"], g["profit_factor"]) == (3, 1, 1, D(2), 3.0)
    assert g["expectancy"] == D(2) / 3 and g["avg_holding_ms"] == 1000 and g["fees_paid"] == D("0.5")
    assert m.group_stats(trades[:1], D(0))["profit_factor"] is None
    assert m.group_stats([], D(0))["win_rate_pct"] == 0.0
    p = m.periods(trades)
    assert p["day"] == [("2019-10-12", D(2), 2), ("2019-11-06", D(0), 1)]
    assert p["week"] == [("2019-W41", D(2), 2), ("2019-W45", D(0), 1)]
    assert p["month"] == [("2019-10", D(2), 2), ("2019-11", D(0), 1)]
