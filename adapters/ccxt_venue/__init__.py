"""A live venue and market-data source through ccxt / ccxt.pro.

Importing this package does not import ccxt (``import ccxt.pro`` costs ~0.6 s and
~100 MB); the exchange is built when a venue or source starts.
"""

from adapters.ccxt_venue.client import Credentials, ExchangeConfigError, build_exchange, resolve_credentials
from adapters.ccxt_venue.market_source import CcxtMarketSource, CcxtSourceStats
from adapters.ccxt_venue.venue import CcxtVenue, CcxtVenueStats

__all__ = [
    "CcxtMarketSource",
    "CcxtSourceStats",
    "CcxtVenue",
    "CcxtVenueStats",
    "Credentials",
    "ExchangeConfigError",
    "build_exchange",
    "resolve_credentials",
]
