"""Build the configured market-data source (validating data files before trading starts)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from actors.ports.market_data import MarketDataSource
from adapters.market_data.csv_reader import read_candles, read_trades
from adapters.market_data.replay import ReplaySource
from adapters.market_data.synthetic import SyntheticSource
from config.schema.market import FeedSection, timeframe_ms
from config.schema.trading import CcxtVenueSection

Resolve = Callable[[str], Path]


class SourceUnavailable(Exception):
    """The configured source kind cannot be built here (e.g. not implemented)."""


def build_source(
    feed: FeedSection, resolve: Resolve, *, ccxt: CcxtVenueSection | None = None, exchange: Any | None = None
) -> MarketDataSource:
    """Create the source ``feed.source`` names.

    ``resolve`` turns a configured relative path into a path (``LoadedConfig.resolve``).
    A replay file is read and validated completely here, so a missing, malformed or
    truncated file raises ``DataFileError`` (file, line, problem) before trading starts, and
    what it tolerated (duplicates, out-of-order rows, gaps) is logged once and kept in the
    source's ``stats()``.
    ``source = "ccxt"`` streams ``feed.symbols`` live with the ``venue.ccxt`` settings
    (``ccxt``; defaults when None); ``exchange`` optionally shares an already built ccxt.pro
    instance (e.g. the live venue's). ccxt is imported only when the source starts.
    """
    if feed.source == "replay":
        rp = feed.replay
        path = resolve(rp.path)
        symbol = rp.symbol or feed.symbols[0]
        # The reader logs the file's report (rows, anomalies and what was done with them) once.
        log = structlog.get_logger("aaiti").bind(component="market_data", source="replay", symbol=symbol)
        data = (
            read_trades(path, log=log)
            if rp.format == "trades"
            else read_candles(path, rp.candle_timeframe, timeframe_ms(rp.candle_timeframe), log=log)
        )
        return ReplaySource(
            data,
            symbol,
            speed=rp.speed,
            loop=rp.loop,
            derive_quotes=rp.derive_quotes,
            quote_spread_bps=rp.quote_spread_bps,
        )
    if feed.source == "synthetic":
        sp = feed.synthetic
        return SyntheticSource(
            feed.symbols,
            seed=sp.seed,
            start_price=sp.start_price,
            volatility_bps=sp.volatility_bps,
            spread_bps=sp.spread_bps,
            tick_interval_ms=sp.tick_interval_ms,
            trade_every=sp.trade_every,
            mean_trade_size=sp.mean_trade_size,
            start_ts_ms=sp.start_ts_ms,
            speed=sp.speed,
            max_events=sp.max_events,
        )
    if feed.source == "ccxt":
        from adapters.ccxt_venue.market_source import CcxtMarketSource

        return CcxtMarketSource(ccxt or CcxtVenueSection(), feed.symbols, exchange=exchange)
    raise SourceUnavailable(
        f"feed.source = {feed.source!r}: no market-data adapter for it is built yet (use 'replay' or 'synthetic')"
    )
