"""The daemon's resources: state store, venue, market-data source, the optional simulator.

``Resources`` opens them in the order their dependencies need and closes them in reverse,
turning every failure into a ``StartupError`` with the documented exit code. The
composition root (``daemon.app``) owns one and hands the opened resources to
``daemon.pipeline.build_pipeline``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import structlog

from actors.kernel.clock import Clock, MarketClock
from actors.ports.capabilities import HasStartTime
from actors.ports.market_data import MarketDataSource
from actors.ports.venue import Venue
from actors.strategy_api import OpenOrder
from actors.strategy_portfolio import TrackingPortfolio
from adapters.market_data.factory import build_source
from adapters.storage.paths import state_db_path
from adapters.storage.store import Store
from config.loader import LoadedConfig
from config.schema.trading import CcxtVenueSection
from daemon import exit_codes

__all__ = ["Resources", "StartupError"]


class StartupError(Exception):
    """Start-up cannot proceed (bad state file, bad data file); carries the exit code."""

    def __init__(self, message: str, exit_code: int = exit_codes.STATE_ERROR) -> None:
        self.exit_code = exit_code
        super().__init__(message)


class Resources:
    """Opens and closes the store, the venue, the market-data source and the simulator."""

    def __init__(self, loaded: LoadedConfig, state_dir: Path, clock: Clock) -> None:
        self.loaded = loaded
        self.state_dir = state_dir
        self.clock = clock
        self.log: Any = structlog.get_logger("aaiti").bind(actor="app")
        self.store: Store | None = None
        self.venue: Venue | None = None
        self.source: MarketDataSource | None = None
        self.simulator: Any = None

    async def open(self) -> tuple[Store, Venue, MarketDataSource]:
        """Simulator (if asked for), store, then venue and source in dependency order."""
        cfg = self.loaded.config
        await self._start_simulator()
        self.store = await self._open_store()
        if cfg.venue.kind == "ccxt":
            # The market source shares the venue's ccxt client: venue first.
            self.venue = await self._open_venue()
            self.source = self._open_source()
        else:
            self.source = self._open_source()
            self.venue = await self._open_venue()
        return self.store, self.venue, self.source

    async def close(self) -> None:
        """Close source, venue, store and simulator, in that order; log (not raise) failures."""
        closers: list[tuple[str, Any]] = [("source", self.source and self.source.close),
                                          ("venue", self.venue and self.venue.close),
                                          ("store", self.store and self.store.close),
                                          ("simulator", self.simulator and self.simulator.stop)]
        for name, close in closers:
            if close is None:
                continue
            try:
                await close()
            except Exception as exc:
                self.log.error("daemon.close_failed", resource=name, error=repr(exc))

    async def strategy_portfolios(self) -> dict[str, TrackingPortfolio]:
        """Each strategy's positions and open orders as stored, so a restart resumes them."""
        assert self.store is not None
        views = {s.name: TrackingPortfolio() for s in self.loaded.config.strategies}
        for (strategy, symbol), size in (await self.store.strategy_positions()).items():
            if strategy in views and size != 0:
                views[strategy].set_position(symbol, size)
        for rec in await self.store.open_orders():
            view = views.get(rec.strategy)
            if view is not None:
                view.add_open_order(OpenOrder(client_order_id=rec.client_order_id, symbol=rec.symbol, side=rec.side,
                                              size=rec.size, filled=rec.filled, price=rec.price,
                                              strategy=rec.strategy))
        return views

    async def cancel_open_orders(self, reason: str) -> None:
        """Cancel every stored open order directly at the venue (exit policy)."""
        if self.store is None or self.venue is None:
            return
        for rec in await self.store.open_orders():
            try:
                await self.venue.cancel(rec.client_order_id, rec.symbol)
                self.log.info("order.cancel_on_exit", client_order_id=rec.client_order_id, reason=reason)
            except Exception as exc:
                self.log.error("order.cancel_on_exit_failed", client_order_id=rec.client_order_id,
                               error=repr(exc))

    # -- opening ---------------------------------------------------------------------------
    async def _open_store(self) -> Store:
        from adapters.storage.errors import StoreError

        cfg = self.loaded.config
        path = state_db_path(self.state_dir, cfg.daemon.mode, cfg.venue.name)
        try:
            return await Store.open(path, fsync_orders=cfg.daemon.mode == "live")
        except StoreError as exc:
            raise StartupError(f"state database unusable: {exc}") from None

    async def _open_venue(self) -> Venue:
        cfg = self.loaded.config
        venue: Venue
        if cfg.venue.kind == "paper":
            from adapters.paper_venue import PaperVenue

            venue = PaperVenue(
                self.state_dir / f"paper-venue-{cfg.venue.name}.db",
                cfg.venue.paper,
                cfg.instruments,
                venue_name=cfg.venue.name,
                clock=self.clock,
            )
        else:
            from adapters.ccxt_venue.venue import CcxtVenue

            venue = CcxtVenue(self.ccxt_section(), name=cfg.venue.name, symbols=cfg.feed.symbols, clock=self.clock)
        try:
            await venue.start()
        except Exception as exc:
            # Release whatever the half-started venue opened (client sessions, files).
            with contextlib.suppress(Exception):
                await venue.close()
            # A paper venue fails on its account file (state); a network venue on the network,
            # which the operator fixes elsewhere: its own exit code.
            code = exit_codes.STATE_ERROR if cfg.venue.kind == "paper" else exit_codes.VENUE_ERROR
            raise StartupError(f"venue {cfg.venue.name} could not start: {exc}", code) from None
        return venue

    async def _start_simulator(self) -> None:
        """Start the in-process Binance simulator when the config asks for it."""
        cfg = self.loaded.config
        section = cfg.venue.ccxt
        if not section.start_simulator or (cfg.venue.kind != "ccxt" and cfg.feed.source != "ccxt"):
            return
        from daemon.embedded_simulator import start_simulator

        try:
            self.simulator = await start_simulator(section)
        except OSError as exc:
            raise StartupError(f"cannot start the simulator on port {section.simulator_port}: {exc.strerror}",
                               exit_codes.CONFIG_ERROR) from None
        self.log.info("simulator.started", base_url=self.simulator.base_url)

    def ccxt_section(self) -> CcxtVenueSection:
        """The ccxt section, pointed at the in-process simulator's actual address if one runs."""
        section = self.loaded.config.venue.ccxt
        if self.simulator is not None:
            return dataclasses.replace(section, base_url=self.simulator.base_url)
        return section

    def _open_source(self) -> MarketDataSource:
        from adapters.market_data.errors import DataFileError

        cfg = self.loaded.config
        exchange: Any = None
        if cfg.venue.kind == "ccxt" and self.venue is not None:
            from adapters.ccxt_venue.venue import CcxtVenue

            # One ccxt client for the venue and the market data (one rate-limit budget).
            if isinstance(self.venue, CcxtVenue):
                exchange = self.venue.exchange
        try:
            source = build_source(cfg.feed, self.loaded.resolve, ccxt=self.ccxt_section(), exchange=exchange)
        except DataFileError as exc:
            raise StartupError(f"market data file unusable: {exc}") from None
        except Exception as exc:
            raise StartupError(f"market data source unusable: {exc}", exit_codes.CONFIG_ERROR) from None
        src: object = source
        if isinstance(self.clock, MarketClock) and isinstance(src, HasStartTime):
            self.clock.advance(src.start_ts_ms)
        return source
