"""``PaperAccountStore``: the paper venue's durable account (orders, fills, balances, counters).

The venue changes its account in memory first and puts the rows of each change, and the
updates to publish once they are durable, into ``pending`` (an ``AccountBatch``), then
calls ``changed()``. The store commits pending batches through the storage layer's single
``Writer`` (one writer per file, group commit; see ``adapters.storage.writer``): a batch
commits on the event loop in tens of µs; with ``fsync`` it completes only after the WAL
is fsynced on the writer's thread (one hop, shared by the batches committed meanwhile).
At most one batch operation waits in the writer's queue, and it takes *everything* pending when the writer runs it (its
``prepare``, on the loop), so a burst of fills costs one transaction. After a
batch has committed, its updates go to ``on_committed`` (in commit order) and then its
waiters (``commit()``) are released: nobody sees a change the file could forget in a crash.

A batch that fails to commit fails its waiters with the ``StoreError``, is folded back in
front of what is pending, and is retried after ``retry_delay_s`` (``errors`` counts the
failures). Reads (``order``, ``fills_since``) first wait for every change made before
them, then run on a separate read-only connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, cast

import aiosqlite

from actors.model.orders import Fill, OrderStatus, VenueOrder
from adapters.storage.database import SyncMode, WriteOp, Writer, acquire_process_lock, release_process_lock
from adapters.storage.errors import StoreError
from adapters.storage.paper_account_schema import open_paper_account_database

__all__ = ["AccountBatch", "AccountSnapshot", "BalanceRow", "FillRow", "OrderRow", "PaperAccountStore"]

#: client_order_id, venue_order_id, symbol, side, type, status, size, price, filled, cost, fees,
#: locked, seq, created_ms, updated_ms, reason (Decimals as ``str``).
OrderRow = tuple[str, str, str, str, str, str, str, str | None, str, str, str, str, int, int, int, str]
#: trade_id, client_order_id, venue_order_id, symbol, side, price, size, fee, fee_currency, liquidity, ts_ms.
FillRow = tuple[str, str, str, str, str, str, str, str, str, str, int]
#: asset, free, locked.
BalanceRow = tuple[str, str, str]
AccountUpdate = VenueOrder | Fill

_ORDER_COLS = (
    "client_order_id, venue_order_id, symbol, side, type, status, size, price, filled, cost, fees, locked, "
    "seq, created_ms, updated_ms, reason"
)
_FILL_COLS = "trade_id, client_order_id, venue_order_id, symbol, side, price, size, fee, fee_currency, liquidity, ts_ms"
#: One row per table row of a batch: ``kind`` then the row, padded to the view's 16 columns.
_INSERT_WRITES = f"INSERT INTO account_writes VALUES ({', '.join('?' * 17)})"
_PAD_FILL = (None,) * 5
_PAD_BALANCE = (None,) * 13
_PAD_META = (None,) * 14
#: Statuses of orders that still rest on the paper book.
_OPEN_STATUSES = (OrderStatus.ACCEPTED.value, OrderStatus.PARTIALLY_FILLED.value)


class AccountSnapshot(NamedTuple):
    """The account as stored: open orders (oldest first), balances and the meta key/values."""

    open_orders: list[OrderRow]
    balances: list[BalanceRow]
    meta: dict[str, str]


class AccountBatch:
    """Changes committed together, then published: the newest row per order and asset, fills, meta."""

    __slots__ = ("balances", "fills", "meta", "orders", "updates", "waiters")

    def __init__(self) -> None:
        self.orders: dict[str, OrderRow] = {}
        self.balances: dict[str, BalanceRow] = {}
        self.fills: list[FillRow] = []
        self.meta: dict[str, str] = {}
        self.updates: list[AccountUpdate] = []
        self.waiters: list[asyncio.Future[None]] = []

    def merge_newer(self, newer: AccountBatch) -> None:
        """Fold a newer batch into this (older, failed) one, keeping the newest row per key."""
        self.orders.update(newer.orders)
        self.balances.update(newer.balances)
        self.fills.extend(newer.fills)
        self.meta.update(newer.meta)
        self.updates.extend(newer.updates)
        self.waiters.extend(newer.waiters)


class _BatchWrite:
    """The writer operation that commits one batch: what is pending when the writer runs it.

    ``take`` (the operation's ``prepare``, on the loop) takes the batch once; the call
    writes it (on the loop or the writer thread), so the writer's one-op-at-a-time retry
    of a failed transaction writes the same rows again.
    """

    __slots__ = ("_store", "batch")

    def __init__(self, store: PaperAccountStore) -> None:
        self._store = store
        self.batch: AccountBatch | None = None

    def take(self) -> None:
        """Take what is pending (on the loop, just before the writer's transaction)."""
        if self.batch is None:
            self.batch = self._store._take_pending(self)

    def __call__(self, conn: sqlite3.Connection) -> None:
        b = self.batch
        if b is not None and (b.orders or b.fills or b.balances or b.meta):
            conn.executemany(_INSERT_WRITES, _write_rows(b))


def _write_rows(b: AccountBatch) -> list[tuple[Any, ...]]:
    """The batch as rows of the ``account_writes`` view (one statement, one round-trip)."""
    rows: list[tuple[Any, ...]] = [("order", *r) for r in b.orders.values()]
    rows.extend(("fill", *r, *_PAD_FILL) for r in b.fills)
    rows.extend(("balance", *r, *_PAD_BALANCE) for r in b.balances.values())
    rows.extend(("meta", k, v, *_PAD_META) for k, v in b.meta.items())
    return rows


class PaperAccountStore:
    """The paper account file of one venue. ``await open()`` (returns what is stored), ``await close()``.

    ``fsync``: a commit completes once fsynced (survives power loss, like ``synchronous=FULL``);
    without, once in the WAL (survives a process crash). ``on_committed`` receives each committed batch's
    updates, in commit order. ``log`` is a structlog logger.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        fsync: bool,
        on_committed: Callable[[list[AccountUpdate]], None],
        log: Any,
        retry_delay_s: float = 0.5,
    ) -> None:
        self.path = Path(path)
        self._sync: SyncMode = "FULL" if fsync else "NORMAL"
        self._on_committed = on_committed
        self._log = log
        self._retry_delay_s = retry_delay_s
        self.pending = AccountBatch()
        """Changes not yet handed to the writer; add rows and updates, then call ``changed()``."""
        self.errors = 0
        """Batches that failed to commit (each is retried)."""
        self._writer: Writer | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock_fd: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queued: _BatchWrite | None = None
        self._retry: asyncio.TimerHandle | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def open(self) -> AccountSnapshot:
        """Lock and open (creating or migrating) the file; returns the stored account. Raises ``StoreError``."""
        if self._writer is not None:
            raise StoreError("is already open", path=self.path, reason="io")
        lock_fd = acquire_process_lock(self.path)
        try:
            conn, reader, _ = await open_paper_account_database(self.path)
        except BaseException:
            release_process_lock(lock_fd)
            raise
        try:
            snapshot = await _load(reader)
        except BaseException:
            await reader.close()
            await asyncio.to_thread(conn.close)
            release_process_lock(lock_fd)
            raise
        self._lock_fd, self._reader = lock_fd, reader
        self._loop = asyncio.get_running_loop()
        self.pending = AccountBatch()
        self._queued = None
        self._writer = Writer(conn, self.path, synchronous=self._sync, log=self._log)
        self._writer.start()
        return snapshot

    async def close(self) -> None:
        """Commit what is pending (one last try), close the file and release its lock. Idempotent.

        Waiters of changes that could not be committed fail with ``StoreError`` (reason ``closed``).
        """
        writer = self._writer
        if writer is None:
            return
        self._cancel_retry()  # one last try now
        with contextlib.suppress(Exception):
            await self.commit()
        self._cancel_retry()  # the last try failed: no more
        self._writer = None
        try:
            await writer.stop()
        finally:
            closed = StoreError("is closed", path=self.path, reason="closed")
            for w in self.pending.waiters:  # changes that raced with close: their outcome is unknown
                if not w.done():
                    w.set_exception(closed)
            self.pending.waiters.clear()
            try:
                if self._reader is not None:
                    await self._reader.close()
                await writer.close()
            finally:
                self._reader = None
                if self._lock_fd is not None:
                    release_process_lock(self._lock_fd)
                    self._lock_fd = None

    # -- writes ---------------------------------------------------------------------------
    def changed(self) -> None:
        """Schedule a commit of what is pending (no-op while one is queued, backing off, or closed)."""
        writer = self._writer
        if self._queued is not None or self._retry is not None or writer is None or self._loop is None:
            return
        write = _BatchWrite(self)
        op = WriteOp(call=write, prepare=write.take, future=self._loop.create_future())
        try:
            writer.enqueue(op)
        except StoreError:  # closing: what is pending stays pending
            return
        self._queued = write
        assert op.future is not None
        op.future.add_done_callback(lambda fut: self._written(write, fut))

    async def commit(self) -> None:
        """Wait until every change made so far is committed. Raises ``StoreError``."""
        if self._writer is None or self._loop is None:
            raise StoreError("is closed", path=self.path, reason="closed")
        fut: asyncio.Future[None] = self._loop.create_future()
        self.pending.waiters.append(fut)
        self.changed()
        await fut

    def _take_pending(self, write: _BatchWrite) -> AccountBatch:
        """Hand the writer what is pending (on the loop, right before the writer's transaction)."""
        if self._queued is write:
            self._queued = None
        if self._retry is not None:  # a batch failed just before: it waits for its retry
            return AccountBatch()
        batch, self.pending = self.pending, AccountBatch()
        return batch

    def _written(self, write: _BatchWrite, fut: asyncio.Future[Any]) -> None:
        """Publish a committed batch, or fold a failed one back for a retry."""
        exc = StoreError("write cancelled", path=self.path, reason="closed") if fut.cancelled() else fut.exception()
        if exc is None:
            batch = write.batch
            if batch is not None:
                if batch.updates:
                    self._on_committed(batch.updates)
                for w in batch.waiters:
                    if not w.done():
                        w.set_result(None)
            return
        batch = write.batch if write.batch is not None else self._take_pending(write)
        self.errors += 1
        self._log.error("paper_venue.commit_failed", error=repr(exc))
        waiters, batch.waiters = batch.waiters, []
        for w in waiters:
            if not w.done():
                w.set_exception(exc)
        batch.merge_newer(self.pending)
        self.pending = batch
        if self._writer is not None and self._loop is not None and self._retry is None:
            self._retry = self._loop.call_later(self._retry_delay_s, self._retry_now)

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _retry_now(self) -> None:
        self._retry = None
        self.changed()

    # -- reads --------------------------------------------------------------------------------
    async def order(self, client_order_id: str) -> OrderRow | None:
        """The stored row of an order (open or closed), after every change made so far is committed."""
        reader = await self._read()
        async with reader.execute(
            f"SELECT {_ORDER_COLS} FROM orders WHERE client_order_id = ?", (client_order_id,)
        ) as cur:
            row = await cur.fetchone()
        return cast(OrderRow | None, row)

    async def fills_since(self, since_ms: int, symbol: str | None = None) -> list[FillRow]:
        """Stored fills with ``ts_ms >= since_ms`` (optionally of one symbol), oldest first."""
        reader = await self._read()
        sql = f"SELECT {_FILL_COLS} FROM fills WHERE ts_ms >= ?"
        args: tuple[Any, ...] = (since_ms,)
        if symbol is not None:
            sql += " AND symbol = ?"
            args = (since_ms, symbol)
        async with reader.execute(sql + " ORDER BY ts_ms, rowid", args) as cur:
            rows = await cur.fetchall()
        return cast(list[FillRow], rows)

    async def _read(self) -> aiosqlite.Connection:
        await self.commit()
        if self._reader is None:
            raise StoreError("is closed", path=self.path, reason="closed")
        return self._reader


async def _load(reader: aiosqlite.Connection) -> AccountSnapshot:
    async with reader.execute(
        f"SELECT {_ORDER_COLS} FROM orders WHERE status IN (?, ?) ORDER BY seq", _OPEN_STATUSES
    ) as cur:
        orders = cast(list[OrderRow], await cur.fetchall())
    async with reader.execute("SELECT asset, free, locked FROM balances") as cur:
        balances = cast(list[BalanceRow], await cur.fetchall())
    async with reader.execute("SELECT key, value FROM meta") as cur:
        meta = {str(k): str(v) for k, v in await cur.fetchall()}
    return AccountSnapshot(orders, balances, meta)
