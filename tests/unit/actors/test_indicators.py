"""Incremental indicators agree with TA-Lib (test-only reference) on the bundled real candles.

Warm-up: TA-Lib's default "unstable period" is 0 for every function, so its first output is
at the plain lookback; each indicator here returns None exactly where TA-Lib returns NaN and
is compared from its first value on — no extra warm-up is skipped. Tolerance: 1e-9
relative. The MACD histogram is a difference of two nearly equal numbers, so near its zero
crossings a relative comparison is meaningless; there an absolute floor of 1e-9 times the
series' typical MACD magnitude applies (documented per check below).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from actors.indicators import ATR, EMA, MACD, RSI, SMA, BollingerBands, StochRSI
from adapters.market_data.csv_reader import CandleSeries, read_candles

talib = pytest.importorskip("talib")

DATA = Path(__file__).resolve().parents[3] / "data" / "market"
FILES = [
    ("binance_XRP-ETH_1m_2019-10.csv.gz", "1m", 60_000),
    ("binance_ETH-BTC_5m_2018-01.csv.gz", "5m", 300_000),
    ("binance_ALT-BTC_1m_2017-11.csv.gz", "1m", 60_000),
]
REL = 1e-9


@pytest.fixture(scope="module", params=FILES, ids=[f[0].split("_")[1] + "_" + f[1] for f in FILES])
def candles(request: pytest.FixtureRequest) -> CandleSeries:
    name, tf, ms = request.param
    return read_candles(DATA / name, tf, ms)


def _arrays(c: CandleSeries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = c.rows
    return (np.array([r.high for r in rows]), np.array([r.low for r in rows]), np.array([r.close for r in rows]))


def _assert_matches(name: str, mine: Sequence[float | None], ref: np.ndarray, abs_floor: float = 0.0) -> None:
    assert len(mine) == len(ref)
    warm = [v is None for v in mine]
    assert warm == [bool(math.isnan(x)) for x in ref], f"{name}: warm-up differs from TA-Lib"
    checked = 0
    for i, (a, b) in enumerate(zip(mine, ref, strict=True)):
        if a is None:
            continue
        assert math.isclose(a, b, rel_tol=REL, abs_tol=abs_floor), f"{name}[{i}]: {a!r} != {b!r}"
        checked += 1
    assert checked > 500


def test_sma_matches_talib(candles: CandleSeries) -> None:
    _, _, close = _arrays(candles)
    ind = SMA(20)
    _assert_matches("SMA", [ind.update(x) for x in close], talib.SMA(close, 20))


@pytest.mark.parametrize("period", [9, 21, 50])
def test_ema_matches_talib(candles: CandleSeries, period: int) -> None:
    _, _, close = _arrays(candles)
    ind = EMA(period)
    _assert_matches("EMA", [ind.update(x) for x in close], talib.EMA(close, period))


def test_rsi_matches_talib(candles: CandleSeries) -> None:
    _, _, close = _arrays(candles)
    ind = RSI(14)
    _assert_matches("RSI", [ind.update(x) for x in close], talib.RSI(close, 14))


def test_macd_matches_talib(candles: CandleSeries) -> None:
    _, _, close = _arrays(candles)
    ind = MACD(12, 26, 9)
    line: list[float | None] = []
    signal: list[float | None] = []
    hist: list[float | None] = []
    for x in close:
        ind.update(x)
        line.append(ind.macd if ind.ready else None)
        signal.append(ind.signal)
        hist.append(ind.hist)
    ref_line, ref_signal, ref_hist = talib.MACD(close, 12, 26, 9)
    _assert_matches("MACD", line, ref_line)
    _assert_matches("MACD signal", signal, ref_signal)
    scale = float(np.nanmedian(np.abs(ref_line)))
    _assert_matches("MACD hist", hist, ref_hist, abs_floor=REL * scale)


def test_bollinger_matches_talib(candles: CandleSeries) -> None:
    _, _, close = _arrays(candles)
    ind = BollingerBands(20, 2.0)
    up: list[float | None] = []
    mid: list[float | None] = []
    lo: list[float | None] = []
    for x in close:
        ind.update(x)
        up.append(ind.upper)
        mid.append(ind.middle)
        lo.append(ind.lower)
    ref_up, ref_mid, ref_lo = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    _assert_matches("BB upper", up, ref_up)
    _assert_matches("BB middle", mid, ref_mid)
    _assert_matches("BB lower", lo, ref_lo)


def test_stochrsi_matches_talib(candles: CandleSeries) -> None:
    _, _, close = _arrays(candles)
    ind = StochRSI(14, 5, 3)
    k: list[float | None] = []
    d: list[float | None] = []
    for x in close:
        ind.update(x)
        k.append(ind.k)
        d.append(ind.d)
    ref_k, ref_d = talib.STOCHRSI(close, 14, 5, 3, 0)
    _assert_matches("StochRSI %K", k, ref_k)
    _assert_matches("StochRSI %D", d, ref_d)


def test_atr_matches_talib(candles: CandleSeries) -> None:
    high, low, close = _arrays(candles)
    ind = ATR(14)
    mine = [ind.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)]
    _assert_matches("ATR", mine, talib.ATR(high, low, close, 14))


def test_indicators_keep_bounded_state_over_long_input() -> None:
    inds: list[Any] = [SMA(20), BollingerBands(20), MACD(), StochRSI()]
    for i in range(20_000):
        x = 100.0 + math.sin(i / 7.0)
        for ind in inds:
            ind.update(x)
    assert len(inds[0]._buf) == 20
    assert len(inds[1]._buf) == 20
    assert len(inds[2]._recent) == 0
    assert len(inds[3]._window) == 5


def test_indicator_value_and_ready_track_warm_up() -> None:
    ema = EMA(3)
    states = []
    for x in (1.0, 2.0, 3.0):
        states.append((ema.update(x), ema.ready, ema.value))
    assert states == [(None, False, None), (None, False, None), (2.0, True, 2.0)]


@pytest.mark.parametrize("make", [lambda: SMA(0), lambda: EMA(-1), lambda: RSI(1), lambda: ATR(True),
                                  lambda: BollingerBands(1), lambda: MACD(1, 26, 9)])
def test_indicator_bad_period_raises(make: object) -> None:
    with pytest.raises(ValueError, match="period"):
        make()  # type: ignore[operator]
