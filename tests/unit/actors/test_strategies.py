"""Built-in strategies: expected intents on crafted series; params errors; the strategy API."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actors.model.market import Bar
from actors.model.orders import Fill, OrderDenied, OrderEvent, OrderIntent, OrderStatus, OrderType, Side
from actors.strategies import BollingerRevert, EmaCross, RsiMacd, StochRsiTrend
from actors.strategy_api import (
    Strategy,
    StrategyContext,
    StrategyLoadError,
    StrategyParamsError,
    load_strategy_class,
)
from actors.strategy_portfolio import TrackingPortfolio
from adapters.market_data.csv_reader import read_candles

SYM = "XRP/ETH"
DATA = Path(__file__).resolve().parents[3] / "data" / "market"


class Harness:
    """Drives one strategy with bars; fills every intent at the bar's close unless told not to."""

    def __init__(self, cls: type[Strategy[Any]], params: dict[str, Any], *, auto_fill: bool = True) -> None:
        self.intents: list[OrderIntent] = []
        self.portfolio = TrackingPortfolio()
        self.strategy = cls(StrategyContext("s1", (SYM,), "1m", params), emitter=self.intents.append,
                            portfolio=self.portfolio)
        self.strategy.on_start()
        self.auto_fill = auto_fill
        self.signals: list[tuple[int, Side, Decimal]] = []
        self.i = -1

    def bar(self, close: float, recv_ns: int = 0) -> None:
        self.i += 1
        n = len(self.intents)
        self.strategy.handle_bar(Bar(symbol=SYM, ts_ms=self.i * 60_000, recv_ns=recv_ns, timeframe="1m",
                                     open=close, high=close, low=close, close=close, volume=1.0))
        for intent in self.intents[n:]:
            assert intent.size is not None
            self.signals.append((self.i, intent.side, intent.size))
            if self.auto_fill:
                self.fill(intent, close)

    def run(self, closes: Sequence[float] | np.ndarray) -> list[tuple[int, Side, Decimal]]:
        for c in closes:
            self.bar(float(c))
        return self.signals

    def fill(self, intent: OrderIntent, price: float) -> None:
        assert intent.size is not None
        ev = OrderEvent(
            client_order_id=intent.intent_id, strategy=intent.strategy, symbol=intent.symbol,
            status=OrderStatus.FILLED, filled=intent.size, size=intent.size,
            fill=Fill(venue="paper", trade_id=intent.intent_id, client_order_id=intent.intent_id, symbol=SYM,
                      side=intent.side, price=Decimal(repr(price)), size=intent.size),
        )
        self.portfolio.apply(ev)
        self.strategy.handle_order_event(ev)


def _alternates(signals: list[tuple[int, Side, Decimal]]) -> None:
    """Long-only and position-aware: buy, sell, buy, ... and every sell closes the position."""
    for n, (_, side, _) in enumerate(signals):
        assert side == (Side.BUY if n % 2 == 0 else Side.SELL)
    for (_, s1, q1), (_, s2, q2) in zip(signals[::2], signals[1::2], strict=False):
        assert (s1, s2) == (Side.BUY, Side.SELL) and q1 == q2


# -- EmaCross ------------------------------------------------------------------------------
def test_ema_cross_crafted_series_buys_on_golden_cross_and_sells_on_death_cross() -> None:
    h = Harness(EmaCross, {"fast": 2, "slow": 4, "kind": "sma", "size": "1.5"})
    closes = [10, 10, 10, 10, 10, 12, 14, 8, 6, 6]
    # SMA2/SMA4: idx5 11 > 10.5 (cross up); idx7 11 == 11; idx8 7 < 10 (cross down).
    assert h.run(closes) == [(5, Side.BUY, Decimal("1.5")), (8, Side.SELL, Decimal("1.5"))]
    assert h.portfolio.position(SYM) == 0


def test_ema_cross_no_second_entry_while_first_is_in_flight() -> None:
    h = Harness(EmaCross, {"fast": 2, "slow": 4, "kind": "sma"}, auto_fill=False)
    h.run([10, 10, 10, 10, 10, 12, 14, 8, 6, 6, 12, 16])  # two golden crosses (idx5, idx10)
    assert [(i, s) for i, s, _ in h.signals] == [(5, Side.BUY)]
    assert h.strategy.in_flight(SYM) == 1


def test_ema_cross_denied_entry_allows_the_next_signal() -> None:
    h = Harness(EmaCross, {"fast": 2, "slow": 4, "kind": "sma"}, auto_fill=False)
    h.run([10, 10, 10, 10, 10, 12])
    (intent,) = h.intents
    h.strategy.handle_order_event(OrderDenied(intent=intent, reason="max_position"))
    assert h.strategy.in_flight(SYM) == 0
    h.run([14, 8, 6, 6, 12])
    assert [(i, s) for i, s, _ in h.signals] == [(5, Side.BUY), (10, Side.BUY)]


def test_ema_cross_ema_kind_on_real_candles_alternates_buy_and_sell() -> None:
    closes = [r.close for r in read_candles(DATA / "binance_XRP-ETH_1m_2019-10.csv.gz", "1m", 60_000).rows]
    h = Harness(EmaCross, {"fast": 12, "slow": 26})
    signals = h.run(closes)
    assert len(signals) > 10
    _alternates(signals)


# -- reference rule evaluations with TA-Lib (test-only) for the other strategies -------------
talib = pytest.importorskip("talib")


def _series() -> np.ndarray:
    """A deterministic wavy price path with trend changes (crafted to trigger every rule)."""
    t = np.arange(400)
    return 100.0 + 6.0 * np.sin(t / 9.0) + 3.0 * np.sin(t / 3.1) + 0.02 * t


def test_rsi_macd_crafted_series_follows_the_documented_rule() -> None:
    closes = _series()
    p = {"rsi_period": 14, "macd_fast": 12, "macd_slow": 26, "macd_signal": 9, "rsi_entry_max": 70.0,
         "rsi_exit": 80.0}
    signals = Harness(RsiMacd, p).run(closes)
    rsi = talib.RSI(closes, 14)
    _, _, hist = talib.MACD(closes, 12, 26, 9)
    expected: list[tuple[int, Side, Decimal]] = []
    long = False
    for i in range(1, len(closes)):
        if np.isnan(hist[i]) or np.isnan(rsi[i]):
            continue
        prev = hist[i - 1]
        if not np.isnan(prev) and prev <= 0.0 < hist[i] and rsi[i] < 70.0:
            if not long:
                expected.append((i, Side.BUY, Decimal(1)))
                long = True
        elif long and ((not np.isnan(prev) and prev >= 0.0 > hist[i]) or rsi[i] >= 80.0):
            expected.append((i, Side.SELL, Decimal(1)))
            long = False
    assert len(expected) >= 4
    assert signals == expected


def test_bollinger_revert_crafted_series_follows_the_documented_rule() -> None:
    closes = _series()
    signals = Harness(BollingerRevert, {"period": 20, "entry_z": 1.5, "exit_z": 0.0, "size": 2}).run(closes)
    up, mid, _ = talib.BBANDS(closes, 20, 1.0, 1.0, 0)
    sd = up - mid
    expected: list[tuple[int, Side, Decimal]] = []
    long = False
    for i in range(len(closes)):
        if np.isnan(mid[i]) or sd[i] == 0:
            continue
        z = (closes[i] - mid[i]) / sd[i]
        if z <= -1.5:
            if not long:
                expected.append((i, Side.BUY, Decimal(2)))
                long = True
        elif z >= 0.0 and long:
            expected.append((i, Side.SELL, Decimal(2)))
            long = False
    assert len(expected) >= 4
    assert signals == expected


def test_stochrsi_trend_crafted_series_follows_the_documented_rule() -> None:
    closes = _series()
    signals = Harness(StochRsiTrend, {"trend_period": 30, "oversold": 30.0, "overbought": 70.0}).run(closes)
    k, d = talib.STOCHRSI(closes, 14, 5, 3, 0)
    ema = talib.EMA(closes, 30)
    expected: list[tuple[int, Side, Decimal]] = []
    long = False
    for i in range(1, len(closes)):
        if np.isnan(k[i]) or np.isnan(ema[i]):
            continue
        pk, pd = k[i - 1], d[i - 1]
        has_prev = not np.isnan(pk) and not np.isnan(ema[i - 1])
        up = has_prev and pk <= pd and k[i] > d[i]
        down = has_prev and pk >= pd and k[i] < d[i]
        if closes[i] > ema[i] and d[i] < 30.0 and up:
            if not long:
                expected.append((i, Side.BUY, Decimal(1)))
                long = True
        elif long and (closes[i] < ema[i] or (d[i] > 70.0 and down)):
            expected.append((i, Side.SELL, Decimal(1)))
            long = False
    assert len(expected) >= 2
    assert signals == expected


@pytest.mark.parametrize("cls", [RsiMacd, BollingerRevert, StochRsiTrend])
def test_builtin_on_real_candles_is_long_only_and_alternates(cls: type[Strategy[Any]]) -> None:
    closes = [r.close for r in read_candles(DATA / "binance_ETH-BTC_5m_2018-01.csv.gz", "5m", 300_000).rows]
    signals = Harness(cls, {}).run(closes)
    assert len(signals) > 10
    _alternates(signals)


# -- params ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "params", "key", "fragment"),
    [
        (EmaCross, {"fast": 30, "slow": 10}, "fast", "less than slow"),
        (EmaCross, {"fast": "x"}, "fast", "Expected `int`"),
        (EmaCross, {"fast": 1}, "fast", ">= 2"),
        (EmaCross, {"kind": "wma"}, "kind", "Invalid enum value"),
        (EmaCross, {"size": -1}, "size", "> 0"),
        (EmaCross, {"sizee": 1}, "sizee", "unknown key"),
        (RsiMacd, {"rsi_entry_max": 90, "rsi_exit": 80}, "rsi_exit", ">= rsi_entry_max"),
        (RsiMacd, {"macd_fast": 30}, "macd_fast", "less than macd_slow"),
        (RsiMacd, {"rsi_exit": 101}, "rsi_exit", "<= 100"),
        (BollingerRevert, {"entry_z": 2.0, "exit_z": -3.0}, "exit_z", "above -entry_z"),
        (BollingerRevert, {"nbdev": 0}, "nbdev", "> 0"),
        (StochRsiTrend, {"oversold": 90}, "oversold", "below overbought"),
        (StochRsiTrend, {"size": "abc"}, "size", "Invalid decimal"),
    ],
)
def test_bad_params_raise_error_naming_the_key(cls: type[Strategy[Any]], params: dict[str, Any], key: str,
                                               fragment: str) -> None:
    with pytest.raises(StrategyParamsError) as info:
        Harness(cls, params)
    assert info.value.key == key
    assert f"params.{key}" in str(info.value) and "'s1'" in str(info.value)
    assert fragment in str(info.value)


def test_reconfigure_is_validated_at_once_and_applied_at_the_next_bar() -> None:
    h = Harness(EmaCross, {"fast": 2, "slow": 4, "kind": "sma"})
    h.run([10, 10, 10, 10, 10])
    with pytest.raises(StrategyParamsError, match=r"params\.fast"):
        h.strategy.reconfigure({"fast": 9, "slow": 4})
    h.strategy.reconfigure({"fast": 2, "slow": 4, "kind": "sma", "size": "3"})
    pending_before = (h.strategy.reconfigure_pending, h.strategy.params.size)
    h.run([12])
    assert pending_before == (True, Decimal(1))
    assert h.strategy.reconfigure_pending is False
    assert h.signals == [(5, Side.BUY, Decimal(3))]


def test_reconfigure_of_periods_rebuilds_indicators() -> None:
    h = Harness(EmaCross, {"fast": 2, "slow": 4, "kind": "sma"})
    h.run([10, 10, 10, 10, 10])
    h.strategy.reconfigure({"fast": 3, "slow": 5, "kind": "sma"})
    h.run([12, 14])  # averages warm up again from the bar of the change: no signal yet
    assert h.signals == []


# -- strategy API ------------------------------------------------------------------------------
def test_intents_carry_strategy_ids_and_origin_of_the_triggering_event() -> None:
    h = Harness(EmaCross, {"fast": 2, "slow": 4, "kind": "sma"})
    for i, c in enumerate([10, 10, 10, 10, 10, 12]):
        h.bar(c, recv_ns=1000 + i)
    (intent,) = h.intents
    assert (intent.strategy, intent.symbol, intent.side, intent.type) == ("s1", SYM, Side.BUY, OrderType.MARKET)
    assert intent.intent_id == "s1-1" and intent.origin_ns == 1005 and intent.tag == "ema_cross.entry"


def test_buy_rejects_bad_arguments() -> None:
    h = Harness(EmaCross, {})
    s = h.strategy
    with pytest.raises(ValueError, match="exactly one of size or notional"):
        s.buy(SYM, size=1, notional=1)
    with pytest.raises(ValueError, match="not one of its symbols"):
        s.buy("BTC/USDT", size=1)
    with pytest.raises(ValueError, match="limit_price"):
        s.buy(SYM, size=1, type=OrderType.LIMIT)
    with pytest.raises(ValueError, match="> 0"):
        s.sell(SYM, size=0)
    intent = s.buy(SYM, notional=0.1, type=OrderType.LIMIT, limit_price=0.0014)
    assert intent.notional == Decimal("0.1") and intent.limit_price == Decimal("0.0014")


@pytest.mark.parametrize(
    ("path", "fragment"),
    [("actors.strategies.nope:X", "cannot import module"), ("actors.strategies:Nope", "has no attribute"),
     ("actors.bars:BarBuilder", "not a Strategy subclass"), ("no colon", "expected 'package.module:ClassName'")],
)
def test_load_strategy_class_bad_path_raises_clear_error(path: str, fragment: str) -> None:
    with pytest.raises(StrategyLoadError, match=fragment):
        load_strategy_class(path)


def test_load_strategy_class_good_path_returns_class() -> None:
    assert load_strategy_class("actors.strategies.ema_cross:EmaCross") is EmaCross
