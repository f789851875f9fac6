"""Opening a state database safely, and its single serialised writer.

Settings (each connection): WAL journal (readers never block the writer), foreign keys,
``busy_timeout`` (waits instead of failing if another process briefly holds a lock), and
``synchronous=NORMAL``.

Durability, decided: with WAL and ``synchronous=NORMAL`` a transaction is durable against
a *process* crash as soon as COMMIT returns (it is in the WAL file); only an OS crash or
power loss can roll back the last commits, and the file stays consistent. That is what
"durably stored before the venue sees it" means here: the order's INSERT has committed
before ``venue.submit`` is called. Writes that must survive power loss as well — the
per-boot counter behind client order ids, the kill switch / trading state, and (when the
store is opened with ``fsync_orders=True``, as live trading should) order inserts — are
marked *durable*: their batch runs with ``synchronous=FULL`` (one fsync of the WAL per
commit, ~0.2-1 ms). Paper trading keeps NORMAL for throughput; after a power loss the
reconciler resolves any order the venue knows and we do not, and client order ids never
repeat because the boot counter is fsynced.

One writer per process: every write goes through ``Writer``, a single task that owns the
write connection, takes whatever is queued (up to ``max_batch`` operations) and commits
it as ONE transaction (group commit), so concurrent tasks can never interleave
transactions or meet "database is locked" from our own load. Callers either await their
operation's commit or enqueue it (``*_nowait``) and move on; ``flush()`` waits for
everything queued so far. Reads use a second, read-only connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import msgspec

from adapters.storage.audit import audit_row_hash
from adapters.storage.errors import StoreError
from adapters.storage.migrations import APPLICATION_ID, SCHEMA_VERSION, migrate, user_version

SyncMode = Literal["NORMAL", "FULL"]
Call = Callable[[aiosqlite.Connection], Awaitable[Any]]


class WriterStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the writer (for metrics and the admin)."""

    ops: int
    batches: int
    backlog: int
    high_water: int
    failed_ops: int
    last_error: str


class WriteOp:
    """One queued write: an SQL statement (batched with its neighbours) or a call.

    ``priority`` 0 marks statements that create rows others may reference (order
    inserts/upserts); within a run of statements they execute first.
    """

    __slots__ = ("call", "durable", "future", "params", "priority", "sql")

    def __init__(
        self,
        sql: str | None = None,
        params: Any = (),
        *,
        call: Call | None = None,
        future: asyncio.Future[Any] | None = None,
        durable: bool = False,
        priority: int = 1,
    ) -> None:
        self.sql = sql
        self.params = params
        self.call = call
        self.future = future
        self.durable = durable
        self.priority = priority


def _describe(exc: BaseException) -> str:
    """First line of an exception's message (SQLite messages are one line)."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _readonly_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


def _check_path(path: Path) -> None:
    if path.exists() and not path.is_file():
        raise StoreError("is not a regular file", path=path, reason="io")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot create directory {path.parent}: {exc.strerror}", path=path, reason="io") from exc


async def _connect(path: Path, *, busy_timeout_ms: int, readonly: bool) -> aiosqlite.Connection:
    if readonly:
        conn = await aiosqlite.connect(_readonly_uri(path), uri=True, isolation_level=None)
    else:
        conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        await conn.execute("PRAGMA foreign_keys = ON")
        if readonly:
            await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


def acquire_process_lock(path: Path) -> int:
    """Take an exclusive advisory lock on ``<db>.lock`` so two daemons never share a state file."""
    _check_path(path)
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create lock file {lock_path}: {exc.strerror}", path=path, reason="io") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise StoreError("in use by another aaiti process (lock held)", path=path, reason="locked") from exc
    return fd


def release_process_lock(fd: int) -> None:
    """Release a lock taken by ``acquire_process_lock``."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        os.close(fd)


async def open_database(
    path: Path,
    *,
    synchronous: SyncMode = "NORMAL",
    busy_timeout_ms: int = 5000,
    quick_check: bool = True,
) -> tuple[aiosqlite.Connection, aiosqlite.Connection, int]:
    """Open (creating and migrating if needed) a state database.

    Returns the write connection, a read-only connection and the schema version the file
    had before migration. Every failure is a ``StoreError`` with a one-line message.
    """
    _check_path(path)
    try:
        writer = await _connect(path, busy_timeout_ms=busy_timeout_ms, readonly=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open: {_describe(exc)}", path=path, reason="io") from exc
    try:
        try:
            async with writer.execute("PRAGMA journal_mode = WAL") as cur:
                row = await cur.fetchone()
            if not row or str(row[0]).lower() != "wal":
                raise StoreError(f"cannot switch to WAL journal mode (got {row[0] if row else None})",
                                 path=path, reason="io")
            await writer.execute(f"PRAGMA synchronous = {synchronous}")
            version = await user_version(writer)
            async with writer.execute("PRAGMA application_id") as cur:
                app_row = await cur.fetchone()
            app_id = int(app_row[0]) if app_row else 0
            async with writer.execute("SELECT count(*) FROM sqlite_schema") as cur:
                n_row = await cur.fetchone()
            n_objects = int(n_row[0]) if n_row else 0
            if quick_check:
                async with writer.execute("PRAGMA quick_check(1)") as cur:
                    qc = await cur.fetchone()
                if not qc or qc[0] != "ok":
                    raise StoreError(f"is corrupt (quick_check: {qc[0] if qc else '?'}); restore a backup or "
                                     "move it aside", path=path, reason="corrupt")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"is not a valid SQLite database or is corrupt ({_describe(exc)}); "
                             "restore a backup or move it aside", path=path, reason="corrupt") from exc
        if app_id not in (0, APPLICATION_ID) or (app_id == 0 and n_objects > 0):
            raise StoreError("is an SQLite database but not an aaiti state database", path=path, reason="foreign")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"has schema version {version}, newer than this aaiti supports ({SCHEMA_VERSION}); "
                "run the newer aaiti or restore a backup",
                path=path, reason="newer_schema",
            )
        try:
            await migrate(writer, version)
        except sqlite3.Error as exc:
            raise StoreError(f"migration from schema version {version} failed: {_describe(exc)}",
                             path=path, reason="corrupt") from exc
        await writer.create_function("aaiti_audit_hash", 5, audit_row_hash, deterministic=True)
        try:
            reader = await _connect(path, busy_timeout_ms=busy_timeout_ms, readonly=True)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open a read connection: {_describe(exc)}", path=path,
                             reason="io") from exc
    except BaseException:
        await writer.close()
        raise
    return writer, reader, version


class Writer:
    """The single writer task of one database: group commit of queued operations."""

    def __init__(
        self,
        conn: aiosqlite.Connection,
        path: Path,
        *,
        synchronous: SyncMode,
        log: Any,
        max_batch: int = 2000,
    ) -> None:
        self._conn = conn
        self._path = path
        self._sync = synchronous
        self._log = log
        self._max_batch = max_batch
        self._queue: deque[WriteOp] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = False
        self.ops = 0
        self.batches = 0
        self.high_water = 0
        self.failed_ops = 0
        self.last_error = ""
        self._last_error_log = 0.0
        self._suppressed = 0

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer task."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"store-writer:{self._path.name}")

    async def stop(self) -> None:
        """Commit everything queued, then end the task."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await self._task
            finally:
                self._task = None

    @property
    def connection(self) -> aiosqlite.Connection:
        """The write connection (use only after ``stop()``)."""
        return self._conn

    @property
    def backlog(self) -> int:
        """Operations queued and not yet committed (excluding the batch in progress)."""
        return len(self._queue)

    def stats(self) -> WriterStats:
        """Counters."""
        return WriterStats(
            ops=self.ops, batches=self.batches, backlog=len(self._queue), high_water=self.high_water,
            failed_ops=self.failed_ops, last_error=self.last_error,
        )

    # -- enqueueing ---------------------------------------------------------------------
    def enqueue(self, op: WriteOp) -> None:
        """Queue an operation; it commits with the next batch."""
        if self._stopping or self._task is None or self._task.done():
            raise StoreError("is closed", path=self._path, reason="closed")
        q = self._queue
        q.append(op)
        if len(q) > self.high_water:
            self.high_water = len(q)
        if not self._wake.is_set():
            self._wake.set()

    async def submit(self, op: WriteOp) -> Any:
        """Queue an operation and wait for its commit; returns a call's result."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        op.future = fut
        self.enqueue(op)
        return await fut

    async def flush(self) -> None:
        """Wait until every operation queued before this call has committed (or failed)."""
        if not self._queue and not self._busy:
            return
        await self.submit(WriteOp())

    # -- the task -------------------------------------------------------------------------
    async def _loop(self) -> None:
        q = self._queue
        while True:
            if not q:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            n = min(len(q), self._max_batch)
            batch = [q.popleft() for _ in range(n)]
            self._busy = True
            try:
                await self._commit(batch)
            finally:
                self._busy = False

    async def _commit(self, batch: list[WriteOp]) -> None:
        try:
            results = await self._run(batch)
        except asyncio.CancelledError:
            await self._rollback()
            for op in batch:
                if op.future is not None and not op.future.done():
                    op.future.cancel()
            raise
        except Exception as exc:
            await self._rollback()
            if len(batch) == 1:
                self._fail(batch[0], exc)
                return
            # Isolate the bad operation(s): retry one transaction per op.
            for op in batch:
                try:
                    (result,) = await self._run([op])
                except Exception as one_exc:
                    await self._rollback()
                    self._fail(op, one_exc)
                else:
                    self._resolve(op, result)
            return
        for op, result in zip(batch, results, strict=True):
            self._resolve(op, result)

    async def _run(self, batch: list[WriteOp]) -> list[Any]:
        conn = self._conn
        durable = self._sync != "FULL" and any(op.durable for op in batch)
        if durable:
            await conn.execute("PRAGMA synchronous = FULL")
        try:
            await conn.execute("BEGIN IMMEDIATE")
            results: list[Any] = [None] * len(batch)
            segment: list[WriteOp] = []
            for i, op in enumerate(batch):
                if op.call is not None:
                    await self._statements(segment)
                    segment = []
                    results[i] = await op.call(conn)
                elif op.sql is not None:
                    segment.append(op)
            await self._statements(segment)
            await conn.execute("COMMIT")
        finally:
            if durable and not conn.in_transaction:
                await conn.execute(f"PRAGMA synchronous = {self._sync}")
        self.batches += 1
        self.ops += len(batch)
        return results

    async def _statements(self, ops: list[WriteOp]) -> None:
        """Run a run of statements grouped by SQL (one round-trip per distinct statement).

        Same-SQL statements keep their relative order; row-creating statements (priority
        0) go first so rows referenced by later statements exist.
        """
        if not ops:
            return
        groups: dict[str, tuple[int, list[Any]]] = {}
        for op in ops:
            assert op.sql is not None
            g = groups.get(op.sql)
            if g is None:
                groups[op.sql] = (op.priority, [op.params])
            else:
                g[1].append(op.params)
        conn = self._conn
        for sql, (_, params) in sorted(groups.items(), key=lambda kv: kv[1][0]):
            if len(params) == 1:
                await conn.execute(sql, params[0])
            else:
                await conn.executemany(sql, params)

    async def _rollback(self) -> None:
        conn = self._conn
        with contextlib.suppress(sqlite3.Error):
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
        with contextlib.suppress(sqlite3.Error):
            await conn.execute(f"PRAGMA synchronous = {self._sync}")

    def _resolve(self, op: WriteOp, result: Any) -> None:
        fut = op.future
        if fut is not None and not fut.done():
            fut.set_result(result)

    def _fail(self, op: WriteOp, exc: Exception) -> None:
        self.failed_ops += 1
        reason = "constraint" if isinstance(exc, sqlite3.IntegrityError) else "write_failed"
        err = exc if isinstance(exc, StoreError) else StoreError(
            f"write failed: {_describe(exc)}", path=self._path, reason=reason)
        self.last_error = str(err)
        fut = op.future
        if fut is not None:
            if not fut.done():
                err.__cause__ = exc
                fut.set_exception(err)
            return
        # Nobody waits for this one: log it here (rate-limited), once.
        now = time.monotonic()
        if now - self._last_error_log >= 5.0:
            self._log.error("store.write_failed", error=str(err), sql=(op.sql or "call")[:80],
                            suppressed=self._suppressed)
            self._last_error_log = now
            self._suppressed = 0
        else:
            self._suppressed += 1
