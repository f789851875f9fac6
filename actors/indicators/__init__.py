"""Incremental indicators: O(1) work and bounded memory per update, TA-Lib-compatible values."""

from actors.indicators.atr import ATR
from actors.indicators.base import Indicator
from actors.indicators.bollinger import BollingerBands
from actors.indicators.ema import EMA
from actors.indicators.macd import MACD
from actors.indicators.rsi import RSI
from actors.indicators.sma import SMA
from actors.indicators.stochrsi import StochRSI

__all__ = ["ATR", "EMA", "MACD", "RSI", "SMA", "BollingerBands", "Indicator", "StochRSI"]
