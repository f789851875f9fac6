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

A fresh database only ever starts from a *missing* file (created beside it and renamed
into place, so a crash never leaves a half-made one): a file that exists but is empty or
lost its tables is refused, because opening it as new would silently start a fresh
account over lost state. A file another process holds is reported as locked (naming the
process when it can), never as damaged.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal

import aiosqlite
import msgspec

from actors.kernel.clock import monotonic
from adapters.storage.audit import audit_row_hash
from adapters.storage.errors import StoreError, is_busy, one_line, sqlite_failure
from adapters.storage.migrations import APPLICATION_ID, SCHEMA_VERSION, expected_objects, migrate, user_version

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


_RESTORE_OR_DELETE = "restore a backup, or delete the file to start a fresh account"


def _describe(exc: BaseException) -> str:
    """An exception's message on one line."""
    return one_line(str(exc)) or type(exc).__name__


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


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def lock_holder_pid(path: Path) -> int | None:
    """The pid recorded in ``<db>.lock`` by the process that holds (or last held) the lock."""
    try:
        text = _lock_path(path).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def acquire_process_lock(path: Path) -> int:
    """Take an exclusive advisory lock on ``<db>.lock`` so two daemons never share a state file.

    The holder writes its pid into the lock file, so a refused second process can name it.
    """
    _check_path(path)
    lock_path = _lock_path(path)
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot create lock file {lock_path}: {exc.strerror}", path=path, reason="io") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        pid = lock_holder_pid(path)
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        raise StoreError(f"is locked: in use by another aaiti process ({holder}, holding {lock_path.name}); "
                         "stop that process first", path=path, reason="locked") from exc
    with contextlib.suppress(OSError):  # the pid is only informative; the flock is the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release_process_lock(fd: int) -> None:
    """Release a lock taken by ``acquire_process_lock``."""
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    with contextlib.suppress(OSError):
        os.close(fd)


def check_file_before_open(path: Path, *, create: bool) -> bool:
    """Refuse what must never become a fresh database; True when ``path`` does not exist yet.

    A file that exists is never re-initialised: zero bytes is ``StoreError`` reason
    ``empty``. A missing file is ``missing`` unless ``create``, and also when its ``-wal``
    file is left (a new database would replay a log that is not its own).
    """
    _check_path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if not create:
            raise StoreError("does not exist", path=path, reason="missing") from None
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            raise StoreError(
                f"does not exist, but its write-ahead log {wal.name} does: a new database would replay it. "
                f"Restore the database file, or delete {wal.name} as well to start a fresh account",
                path=path, reason="missing") from None
        return True
    except OSError as exc:
        raise StoreError(f"cannot stat: {exc.strerror}", path=path, reason="io") from exc
    if size == 0:
        raise StoreError(f"exists but is empty (0 bytes); refusing to start a fresh account over it: "
                         f"{_RESTORE_OR_DELETE}", path=path, reason="empty")
    return False


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def _create_database(path: Path, *, busy_timeout_ms: int) -> None:
    """Create and migrate a new database beside ``path``, then rename it into place.

    A crash during creation leaves only ``<db>.new`` (removed by the next attempt), never
    a half-made file at ``path`` that the next start would have to refuse.
    """
    tmp = path.with_name(path.name + ".new")
    try:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-journal", "-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        conn = await aiosqlite.connect(tmp, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            await migrate(conn, 0)
        finally:
            await conn.close()
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(path.parent)
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, path, doing=f"cannot create ({tmp.name})", default_reason="io") from exc
    except OSError as exc:
        raise StoreError(f"cannot create ({tmp.name}): {exc.strerror or exc}", path=path, reason="io") from exc


async def _scalar(conn: aiosqlite.Connection, sql: str) -> Any:
    async with conn.execute(sql) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


def _check_identity(path: Path, *, app_id: int, version: int, objects: dict[str, str]) -> None:
    """Refuse a file that is not a complete aaiti state database of a version we know."""
    if app_id not in (0, APPLICATION_ID):
        raise StoreError("is an SQLite database but not an aaiti state database", path=path, reason="foreign")
    if not objects:
        raise StoreError(f"exists but has no tables (an empty SQLite database); refusing to start a fresh account "
                         f"over it: {_RESTORE_OR_DELETE}", path=path, reason="empty")
    if app_id == 0:
        raise StoreError("is an SQLite database but not an aaiti state database", path=path, reason="foreign")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"has schema version {version}, newer than this aaiti supports ({SCHEMA_VERSION}); "
            "run the newer aaiti or restore a backup",
            path=path, reason="newer_schema",
        )
    if version == 0:
        raise StoreError(f"has tables but no schema version (its creation was interrupted?); refusing to start a "
                         f"fresh account over it: {_RESTORE_OR_DELETE}", path=path, reason="incomplete")
    expected = expected_objects(version)
    missing = sorted(name for name in expected if name not in objects)
    lost_tables = [name for name in missing if expected[name] == "table"]
    if lost_tables:
        raise StoreError(f"has lost table(s) {', '.join(lost_tables)} of schema version {version}; refusing to "
                         f"start a fresh account over it: {_RESTORE_OR_DELETE}", path=path, reason="incomplete")
    if missing:
        raise StoreError(f"lacks {', '.join(missing)} of schema version {version} (removed outside aaiti?); "
                         "restore a backup", path=path, reason="incomplete")


async def open_database(
    path: Path,
    *,
    synchronous: SyncMode = "NORMAL",
    busy_timeout_ms: int = 5000,
    quick_check: bool = True,
    create: bool = True,
) -> tuple[aiosqlite.Connection, aiosqlite.Connection, int]:
    """Open (creating and migrating if needed) a state database.

    Returns the write connection, a read-only connection and the schema version the file
    had before migration (0 for a new file). Only a *missing* file is created, and only
    with ``create``: a file that exists but is empty or lost its tables is refused
    (``empty`` / ``incomplete``), never silently started as a fresh account. Every failure
    is a ``StoreError`` with a one-line message.
    """
    created = check_file_before_open(path, create=create)
    if created:
        await _create_database(path, busy_timeout_ms=busy_timeout_ms)
    try:
        writer = await _connect(path, busy_timeout_ms=busy_timeout_ms, readonly=False)
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, path, doing="cannot open", default_reason="io") from exc
    try:
        try:
            # Identify the file before changing anything in it (the WAL switch writes its header).
            version = await user_version(writer)
            app_id = int(await _scalar(writer, "PRAGMA application_id") or 0)
            async with writer.execute("SELECT name, type FROM sqlite_schema") as cur:
                objects = {str(r[0]): str(r[1]) for r in await cur.fetchall()}
            _check_identity(path, app_id=app_id, version=version, objects=objects)
            mode = await _scalar(writer, "PRAGMA journal_mode = WAL")
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot switch to WAL journal mode (got {mode})", path=path, reason="io")
            await writer.execute(f"PRAGMA synchronous = {synchronous}")
            if quick_check:
                qc = [str(r[0]) for r in await writer.execute_fetchall("PRAGMA quick_check(1)")]
                if qc != ["ok"]:
                    raise StoreError(f"is corrupt (quick_check: {one_line(chr(10).join(qc)) or '?'}); restore a "
                                     "backup or move it aside", path=path, reason="corrupt")
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, path) from exc
        try:
            await migrate(writer, version)
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, path, doing=f"migration from schema version {version} failed") from exc
        await writer.create_function("aaiti_audit_hash", 5, audit_row_hash, deterministic=True)
        try:
            reader = await _connect(path, busy_timeout_ms=busy_timeout_ms, readonly=True)
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, path, doing="cannot open a read connection", default_reason="io") from exc
    except BaseException:
        await writer.close()
        raise
    return writer, reader, 0 if created else version


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
        if isinstance(exc, StoreError):
            err = exc
        elif isinstance(exc, sqlite3.Error) and is_busy(exc):
            err = sqlite_failure(exc, self._path, doing="write failed")
        else:
            reason = "constraint" if isinstance(exc, sqlite3.IntegrityError) else "write_failed"
            err = StoreError(f"write failed: {_describe(exc)}", path=self._path, reason=reason)
        self.last_error = str(err)
        fut = op.future
        if fut is not None:
            if not fut.done():
                err.__cause__ = exc
                fut.set_exception(err)
            return
        # Nobody waits for this one: log it here (rate-limited), once.
        now = monotonic()
        if now - self._last_error_log >= 5.0:
            self._log.error("store.write_failed", error=str(err), sql=(op.sql or "call")[:80],
                            suppressed=self._suppressed)
            self._last_error_log = now
            self._suppressed = 0
        else:
            self._suppressed += 1
