"""``PaperVenue``: a simulated venue with a persistent paper account.

It joins two parts behind the ``Venue`` port and the ``MarketTap`` capability:

- the matching engine (``adapters.paper_venue.matching``), which decides fills against
  the market feed by the fill model of ``[venue.paper]`` (``adapters.paper_venue.fill_model``:
  latency, liquidity, slippage, limit triggers) with fees, and keeps the account in memory;
- the account store (``adapters.storage.paper_account``), the account's own SQLite file
  (``paper-venue-<name>.db`` in the state directory), written through the storage layer's
  single writer. Like a real exchange account it survives restarts of the daemon.

Every change is applied in memory first and committed in batches. ``submit`` and
``cancel`` return only after their change is committed (write-through: a kill -9 right
after they return loses nothing; with ``fsync`` it survives power loss too), and updates
are published on the ``updates()`` streams only after the commit that contains them, so a
consumer never sees a fill the venue could forget in a crash.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog

from actors.kernel.clock import Clock, WallClock
from actors.model.market import MarketEvent
from actors.model.orders import Balance, Fill, OrderRequest, VenueOrder
from actors.ports.venue import VenueUnavailable, VenueUpdate
from adapters.paper_venue.journal import AccountJournal, fill_from_row, order_from_row
from adapters.paper_venue.matching import MatchingEngine, PaperOrder, Wallet
from adapters.storage.errors import StoreError
from adapters.storage.paper_account import PaperAccountStore
from adapters.venue_updates import UpdateStream
from config.schema.trading import InstrumentSection, PaperVenueSection

__all__ = ["PaperVenue"]

#: Written to a new account's meta table (files of earlier versions have it too).
_ACCOUNT_FORMAT = "1"


class PaperVenue:
    """A simulated venue implementing ``actors.ports.venue.Venue`` with a persistent paper account.

    ``path`` is the account's SQLite file; ``instruments`` maps symbols to their assets and
    filters; ``clock`` stamps orders and fills (business time; default the wall clock, as an
    exchange would) and decides how ``latency_ms`` passes: in market time on a simulated
    clock (a submit returns the order ACCEPTED; its fills follow on ``updates()``), in real
    time on the wall clock (submit and cancel wait it out). ``on_market(event)`` (the
    ``MarketTap`` capability) must be called with every market event, on the loop: it records
    the market state and serves our orders; it is cheap and never blocks. While
    ``quiet_on(symbol)`` holds, it keeps only the symbol's latest state (a latest-only tap).

    It takes plain market and limit orders only and does not implement ``NativeOrders``: a
    stop, take-profit, trailing delta or display size is refused with ``UNSUPPORTED_ORDER_TYPE``
    (the daemon emulates them, so paper and backtests behave alike).
    """

    on_market: Callable[[MarketEvent], None]
    quiet_on: Callable[[str], bool]

    def __init__(
        self,
        path: str | Path,
        config: PaperVenueSection,
        instruments: Mapping[str, InstrumentSection],
        venue_name: str = "paper",
        *,
        clock: Clock = WallClock(),
    ) -> None:
        self.name = venue_name
        self._path = Path(path)
        self._cfg = config
        self._clock = clock
        self._delay_s = (config.ack_delay_ms + (0.0 if clock.simulated else config.latency_ms)) / 1000.0
        self._log: Any = structlog.get_logger("aaiti").bind(component="paper_venue", venue=venue_name)
        self._streams: list[UpdateStream] = []
        self._store = PaperAccountStore(self._path, fsync=config.fsync, on_committed=self._publish, log=self._log)
        self._engine = MatchingEngine(config, instruments, venue_name, clock, AccountJournal(self._store))
        # The feed calls this for every market event: bind the engine's own method, no extra frame.
        self.on_market = self._engine.on_market
        # True when no order of ours rests, travels or works on the symbol: ``on_market``
        # then only records the market (the feed may hand it the latest quote only).
        self.quiet_on = self._engine.quiet_on
        self._started = False
        self._closing = False

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open (or create) the account file and load its state. Idempotent. Raises ``StoreError``."""
        if self._started:
            return
        self._closing = False
        stored = await self._store.open()
        meta = stored.meta
        self._engine.load(
            (order_from_row(row) for row in stored.open_orders),
            {asset: Wallet(Decimal(free), Decimal(locked)) for asset, free, locked in stored.balances},
            int(meta.get("next_order_id", "1")),
            int(meta.get("next_trade_id", "1")),
        )
        self._started = True
        if "initialized" not in meta:
            self._engine.fund(self._cfg.initial_balances)
            self._store.pending.meta["initialized"] = str(self._clock.now_ms())
            self._store.pending.meta["schema_version"] = _ACCOUNT_FORMAT
            await self._commit()
        self._log.info("paper_venue.started", path=str(self._path), open_orders=len(self._engine.open))

    async def close(self) -> None:
        """Commit what is pending, close the file and end update streams. Idempotent."""
        if not self._started:
            return
        self._closing = True
        try:
            await self._store.close()
        finally:
            self._started = False
            self._engine.clear()
            for stream in self._streams:
                stream.end()
            self._streams.clear()

    # -- Venue protocol ------------------------------------------------------------------------
    async def submit(self, request: OrderRequest) -> VenueOrder:
        """Place an order; returns once it is durably recorded. Raises OrderRejected / VenueUnavailable."""
        await self._acknowledge()
        order = self._engine.place(request)
        await self._commit()
        return order

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder:
        """Cancel an open order. Raises OrderNotFound when unknown or already closed."""
        await self._acknowledge()
        view = self._engine.cancel(client_order_id)
        await self._commit()
        return view

    async def query(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """Look an order up by client order id, open or closed; None if never seen."""
        self._require_started()
        o = self._engine.open.get(client_order_id)
        if o is not None:
            return o.view(self.name)
        try:
            row = await self._store.order(client_order_id)
        except StoreError as exc:
            raise self._unavailable(exc) from exc
        return order_from_row(row).view(self.name) if row is not None else None

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open orders, oldest first (optionally of one symbol)."""
        self._require_started()
        return self._engine.open_orders(symbol)

    async def fills_since(self, since_ms: int, symbol: str | None = None) -> list[Fill]:
        """Committed fills with ts_ms >= since_ms, oldest first."""
        self._require_started()
        try:
            rows = await self._store.fills_since(since_ms, symbol)
        except StoreError as exc:
            raise self._unavailable(exc) from exc
        return [fill_from_row(self.name, r) for r in rows]

    async def balances(self) -> dict[str, Balance]:
        """Balances by asset (free is net of what open orders lock)."""
        self._require_started()
        return self._engine.balances()

    def updates(self) -> AsyncIterator[VenueUpdate]:
        """A new subscription to order updates and fills, published after they are committed."""
        stream = UpdateStream(self._cfg.update_buffer, self._unsubscribe)
        if not self._started and self._closing:
            stream.end()
        else:
            self._streams.append(stream)
        return stream

    # -- diagnostics -----------------------------------------------------------------------------
    @property
    def dropped_updates(self) -> int:
        """Updates dropped because a subscriber's buffer was full."""
        return sum(s.dropped for s in self._streams)

    @property
    def storage_errors(self) -> int:
        """Account commits that failed (each is retried)."""
        return self._store.errors

    @property
    def _open(self) -> dict[str, PaperOrder]:
        """Open orders by client order id (read by the soak benchmark)."""
        return self._engine.open

    @property
    def _bal(self) -> dict[str, Wallet]:
        """Balances by asset, live (tests tamper with them to provoke reconcile discrepancies)."""
        return self._engine.wallets

    # -- internals -------------------------------------------------------------------------------
    def _require_started(self) -> None:
        if not self._started or self._closing:
            raise VenueUnavailable("NOT_STARTED", f"paper venue {self.name} is not started")

    async def _acknowledge(self) -> None:
        """Check the venue is up, after the simulated round trip.

        That is ``ack_delay_ms`` of real time, plus ``latency_ms`` on the wall clock, where
        market time is real time (on a simulated clock the engine applies the latency in
        market time instead).
        """
        self._require_started()
        if self._delay_s > 0:
            await asyncio.sleep(self._delay_s)
            self._require_started()

    async def _commit(self) -> None:
        """Wait until everything changed so far is committed (raises VenueUnavailable on storage errors)."""
        try:
            await self._store.commit()
        except StoreError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: StoreError) -> VenueUnavailable:
        if exc.reason == "closed":
            return VenueUnavailable("CLOSED", f"paper venue {self.name} closed")
        return VenueUnavailable("STORAGE", repr(exc))

    def _publish(self, updates: list[VenueUpdate]) -> None:
        streams = self._streams
        for item in updates:
            for stream in streams:
                stream.push(item)

    def _unsubscribe(self, stream: UpdateStream) -> None:
        if stream in self._streams:
            self._streams.remove(stream)
