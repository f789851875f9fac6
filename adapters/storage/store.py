"""``Store``: typed async access to an aaiti state database (orders, fills, risk, audit).

``Store`` is assembled from its parts: this module opens and closes it and issues client
order ids; ``store_writes.StoreWrites`` holds the write paths, ``store_queries.StoreQueries``
the queries, ``store_rows`` the row types and SQL they share, and ``retention.StoreRetention``
the archiving of old rows (retention) and positions across archived fills.

Writes go through the database's single ``Writer`` (``adapters.storage.writer``: group
commit on the event loop; durable writes then wait for an fsync on the writer's thread).
Each write exists in an awaited form (returns once committed) and a ``_nowait`` form
(write-behind; ``await store.flush()`` waits for everything queued). The order manager
writes orders ahead of the venue with the awaited ``insert_orders`` and everything after
write-behind: after a crash, what the write-behind lost is re-established from the venue
by the reconciler. Reads first flush (so they see every write issued before them), then
run on a separate read-only connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
from pathlib import Path

import aiosqlite
import msgspec
import structlog

from adapters.storage.audit import (
    AuditKey,
    anchor_audit_log,
    audit_row_hash,
    default_audit_key_path,
    load_audit_key,
)
from adapters.storage.database import acquire_process_lock, open_database, release_process_lock
from adapters.storage.errors import StoreError, sqlite_failure
from adapters.storage.migrations import SCHEMA_VERSION
from adapters.storage.retention import StoreRetention
from adapters.storage.store_contingent import StoreContingent
from adapters.storage.store_queries import StoreQueries
from adapters.storage.store_rows import AuditEntry, OrderEventRecord, RiskEventRecord
from adapters.storage.store_writes import StoreWrites, bump_boot
from adapters.storage.writer import SyncMode, WriteOp, Writer, WriterStats

__all__ = ["COID_MAX_LEN", "COID_PREFIX_MAX_LEN", "AuditEntry", "OrderEventRecord", "RiskEventRecord", "Store",
           "StoreStats"]

COID_MAX_LEN = 36
COID_PREFIX_MAX_LEN = 12
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out))


class StoreStats(msgspec.Struct, frozen=True, kw_only=True):
    """Store counters for metrics and the admin."""

    path: str
    schema_version: int
    boot: int
    client_order_ids_issued: int
    writer: WriterStats


class Store(StoreWrites, StoreRetention, StoreQueries, StoreContingent):
    """An open state database. Create with ``await Store.open(path)``; ``await close()``."""

    def __init__(
        self,
        path: Path,
        writer: Writer,
        reader: aiosqlite.Connection,
        lock_fd: int | None,
        *,
        schema_version: int,
        fsync_orders: bool,
        audit_key: AuditKey,
    ) -> None:
        """Use ``Store.open``; this only assembles already-open parts."""
        self.path = path
        self.audit_key = audit_key
        self.schema_version = schema_version
        self._writer = writer
        self._reader = reader
        self._lock_fd = lock_fd
        self._fsync_orders = fsync_orders
        self._closed = False
        self.boot = 0
        self._coid_stem = ""
        self._coid_seq = 0

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        synchronous: SyncMode = "NORMAL",
        fsync_orders: bool = False,
        busy_timeout_ms: int = 5000,
        quick_check: bool = True,
        lock: bool = True,
        max_batch: int = 500,
        create: bool = True,
        audit_key: AuditKey | None = None,
    ) -> Store:
        """Open the database at ``path`` (created only if missing and ``create``).

        Raises ``StoreError`` with a one-line message; a file that exists but is empty or
        lost its tables is refused, never started as a fresh account. ``fsync_orders``
        makes order inserts durable against power loss (live trading; each write-ahead
        then also waits for an fsync, one hop to the writer thread); ``synchronous="FULL"``
        makes every write durable. ``lock`` takes an exclusive
        advisory lock so a second process cannot open it. ``max_batch`` caps the writes
        of one transaction. ``audit_key`` keys the audit log; None uses ``load_audit_key``
        on ``audit.key`` beside the database, creating it on first use. A log keyed with
        another key is refused (``audit_key``).
        """
        p = Path(path)
        log = structlog.get_logger("aaiti").bind(actor="store", db=str(p))
        lock_fd = acquire_process_lock(p) if lock else None
        try:
            writer_conn, reader, before = await open_database(
                p, busy_timeout_ms=busy_timeout_ms, quick_check=quick_check, create=create
            )
            try:  # after the file is accepted: a refused file gets no key file made for it
                key = audit_key or load_audit_key(default_audit_key_path(p), create=True)
                if key is None:  # not reached: a missing key file was just created
                    raise StoreError("no audit key", path=p, reason="audit_key")
                anchored = await _anchor_audit_log(p, key, busy_timeout_ms)
            except BaseException:
                await reader.close()
                await asyncio.to_thread(writer_conn.close)
                raise
        except BaseException:
            if lock_fd is not None:
                release_process_lock(lock_fd)
            raise
        writer_conn.create_function("aaiti_audit_hash", 5, audit_row_hash, deterministic=True)
        writer_conn.create_function("aaiti_audit_mac", 3, key.mac, deterministic=True)
        writer = Writer(writer_conn, p, synchronous=synchronous, log=log, max_batch=max_batch,
                        busy_timeout_ms=busy_timeout_ms)
        writer.start()
        store = cls(p, writer, reader, lock_fd, schema_version=SCHEMA_VERSION, fsync_orders=fsync_orders,
                    audit_key=key)
        try:
            store.boot = await writer.submit(WriteOp(call=bump_boot, durable=True))
        except BaseException:
            await store.close()
            raise
        # Per-boot stem: the fsynced boot counter plus 3 random chars (guards a DB restored
        # from an older backup, whose counter would repeat).
        store._coid_stem = _b36(store.boot) + "".join(secrets.choice(_B36) for _ in range(3))
        log.info("store.opened", schema_version=SCHEMA_VERSION, migrated_from=before if before != SCHEMA_VERSION
                 else None, boot=store.boot, synchronous=synchronous, fsync_orders=fsync_orders,
                 audit_key_id=key.key_id, audit_key_source=key.source, audit_anchor=anchored)
        if anchored == "no_record":
            log.warning("store.audit_anchor_missing", detail="the audit log's keyed-from record is missing or "
                        "unsigned under keyed rows; `aaiti audit verify` reports it")
        return store

    async def close(self) -> None:
        """Commit what is queued and close both connections and the lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._writer.stop()
        finally:
            try:
                await self._reader.close()
                await self._writer.close(optimize=True)  # last: its close checkpoints the WAL
            finally:
                if self._lock_fd is not None:
                    release_process_lock(self._lock_fd)
                    self._lock_fd = None

    async def flush(self) -> None:
        """Wait until every write queued before this call has committed."""
        await self._writer.flush()

    @property
    def backlog(self) -> int:
        """Queued writes not yet committed."""
        return self._writer.backlog

    def stats(self) -> StoreStats:
        """Counters."""
        return StoreStats(
            path=str(self.path), schema_version=self.schema_version, boot=self.boot,
            client_order_ids_issued=self._coid_seq, writer=self._writer.stats(),
        )

    # -- client order ids -----------------------------------------------------------------
    def next_client_order_id(self, prefix: str = "aa") -> str:
        """A client order id unique across restarts and crashes: ``<prefix>-<boot stem>-<seq>``.

        Binance-compatible (1 to 36 of ``[A-Za-z0-9-]``). ``prefix`` is 1 to 12 ASCII letters or
        digits. No I/O: the per-boot stem was made durable when the store opened.
        """
        if not (0 < len(prefix) <= COID_PREFIX_MAX_LEN and prefix.isascii() and prefix.isalnum()):
            raise ValueError(f"client order id prefix must be 1-{COID_PREFIX_MAX_LEN} ASCII letters/digits, "
                             f"got {prefix!r}")
        self._coid_seq += 1
        coid = f"{prefix}-{self._coid_stem}-{_b36(self._coid_seq)}"
        if len(coid) > COID_MAX_LEN:
            raise ValueError(f"client order id {coid!r} longer than {COID_MAX_LEN}")
        return coid


async def _anchor_audit_log(path: Path, key: AuditKey, busy_timeout_ms: int) -> str:
    """Run ``anchor_audit_log`` in one fsynced transaction, before the writer starts.

    It is written against aiosqlite, so it runs on a short-lived start-up connection of
    its own rather than as a (synchronous) writer call; nothing else writes yet.
    """
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                anchored = await anchor_audit_log(conn, key, path)
                await conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.execute("ROLLBACK")
                raise
        finally:
            await conn.close()
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, path, doing="write failed (audit anchor)", default_reason="write_failed") from exc
    return anchored
