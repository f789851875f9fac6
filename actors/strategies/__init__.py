"""Built-in strategies (spot, long-only, position-aware)."""

from actors.strategies.bollinger_revert import BollingerRevert
from actors.strategies.ema_cross import EmaCross
from actors.strategies.rsi_macd import RsiMacd
from actors.strategies.stochrsi_trend import StochRsiTrend

__all__ = ["BollingerRevert", "EmaCross", "RsiMacd", "StochRsiTrend"]
