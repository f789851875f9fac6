"""Restart safety: rebuild the order table from the store (and, on a first start, the venue).

At every (re)start the order manager's table is rebuilt from durable state before any
command is taken: the newest ledger snapshot plus the fills stored after it give positions
and balances; the open orders and their fills come back as they were; recent fill keys are
marked seen so a fill the venue reports again is not booked twice. On the very first start
of a database the venue's balances are the starting point.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from actors.kernel.clock import Clock
from actors.model.orders import Fill
from actors.model.records import LedgerSnapshot
from actors.orders.order_table import OrderTable
from actors.ports.stores import OrderStore
from actors.ports.venue import Venue, VenueError

__all__ = ["OrderLoader"]

_VENUE_WAIT_FIRST_S = 1.0
_VENUE_WAIT_MAX_S = 60.0


class OrderLoader:
    """Loads an ``OrderTable`` from the store; owned and driven by the order manager."""

    def __init__(self, table: OrderTable, store: OrderStore, venue: Venue, clock: Clock, *,
                 fills_lookback_ms: int, log: Any) -> None:
        self._table = table
        self._store = store
        self._venue = venue
        self._clock = clock
        self._lookback_ms = fills_lookback_ms
        self._log = log

    async def restore(self) -> bool:
        """Restore the ledger; False on a first start (no snapshot yet: ``first_start`` next)."""
        snap = await self._store.latest_ledger_snapshot()
        if snap is None:
            return False
        table = self._table
        table.restore_ledger(snap.positions, snap.balances)
        replay = await self._store.fills_after(snap.fill_seq)
        for _, f in replay:
            table.replay_fill(f)
        if replay:
            self._log.info("order.fills_replayed", count=len(replay), since_seq=snap.fill_seq)
        return True

    async def first_start(self) -> None:
        """A new database: the venue's balances are the starting point (raises VenueError)."""
        balances = await self._venue_balances()
        await self._start_ledger(balances)

    async def first_start_when_venue_accepts(self, beat: Callable[[], None]) -> None:
        """Retry the venue's balances with back-off until it accepts us, then start the ledger."""
        delay = _VENUE_WAIT_FIRST_S
        while True:
            await asyncio.sleep(delay)
            beat()
            try:
                balances = await self._venue_balances()
            except VenueError as exc:
                self._log.debug("order.venue_still_refusing", reason=exc.reason, retry_s=delay)
                delay = min(delay * 2, _VENUE_WAIT_MAX_S)
                continue
            break
        self._log.info("order.venue_accepted")
        await self._start_ledger(balances)

    async def load_orders(self) -> None:
        """Open orders with their fills, and the recent fill keys (dedup across restarts)."""
        table, store = self._table, self._store
        for venue_name, trade_id in await store.fill_keys_since(self._clock.now_ms() - self._lookback_ms):
            table.mark_seen(venue_name, trade_id)
        open_orders = await store.open_orders()
        per_order: dict[str, list[Fill]] = {}
        for f in await store.fills_for_orders(r.client_order_id for r in open_orders):
            per_order.setdefault(f.client_order_id, []).append(f)
        for rec in open_orders:
            table.load_open_order(rec, per_order.get(rec.client_order_id, ()))
        awaiting = await store.filled_awaiting_fills(self._clock.now_ms() - self._lookback_ms)
        if awaiting:
            fills: dict[str, list[Fill]] = {}
            for f in await store.fills_for_orders(r.client_order_id for r in awaiting):
                fills.setdefault(f.client_order_id, []).append(f)
            for rec in awaiting:
                table.load_filled_awaiting_fills(rec, fills.get(rec.client_order_id, ()))
            self._log.info("order.filled_awaiting_fills", orders=len(awaiting))
        self._log.info("order.loaded", open_orders=table.open_order_count(), in_flight=len(table.in_flight()),
                       positions=len(table.positions()))

    async def _venue_balances(self) -> dict[str, Decimal]:
        return {a: b.total for a, b in (await self._venue.balances()).items()}

    async def _start_ledger(self, balances: dict[str, Decimal]) -> None:
        seq = await self._store.save_ledger_snapshot(LedgerSnapshot(ts_ms=self._clock.now_ms(), balances=balances))
        self._table.restore_ledger((), balances)
        self._log.info("order.first_start", balances={a: str(v) for a, v in balances.items()}, fill_seq=seq)
