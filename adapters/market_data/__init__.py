"""Market-data sources: strict CSV replay, a seeded synthetic market, and the factory."""

from actors.ports.market_data import MarketDataSource, SourceStats
from adapters.market_data.csv_reader import CandleSeries, FileReport, TradeTape, read_candles, read_trades
from adapters.market_data.errors import DataFileError
from adapters.market_data.factory import SourceUnavailable, build_source
from adapters.market_data.replay import ReplaySource
from adapters.market_data.synthetic import SyntheticSource

__all__ = [
    "CandleSeries",
    "DataFileError",
    "FileReport",
    "MarketDataSource",
    "ReplaySource",
    "SourceStats",
    "SourceUnavailable",
    "SyntheticSource",
    "TradeTape",
    "build_source",
    "read_candles",
    "read_trades",
]
