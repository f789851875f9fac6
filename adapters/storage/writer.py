"""``Writer``: the single serialised writer of one SQLite file, committing on the event loop.

One writer per file: every write goes through it, so concurrent tasks never interleave
transactions or meet "database is locked" from our own load. Operations are either
awaited (``submit``: returns once committed) or queued (``enqueue``: committed with the
next batch; ``flush()`` waits for everything queued so far). Queued operations are
committed together, up to ``max_batch`` per transaction (group commit).

Where a transaction runs. In WAL mode with ``synchronous=NORMAL`` a commit does no
fsync: it appends to the WAL in the page cache (~20-60 µs for a small batch). Handing that
to a thread cost more than the write itself (each hop waits for the other thread to wake
and to get the GIL, which a busy event loop holds for up to its switch interval), so a
batch runs *synchronously on the event loop*, as one function: ``BEGIN IMMEDIATE``, its
statements, ``COMMIT``. ``submit`` runs it in the caller's task when nothing else is
committing, so an awaited write costs no task switch at all. Write-behind batches run in
the writer task, which first lets the tasks made ready with them run (a venue submit
should not wait for the audit row queued just before it).

Durable writes (an operation marked ``durable``, or every write of a writer opened with
``synchronous="FULL"``) must survive power loss. They commit like the others, then wait
for an fdatasync of the WAL file, run on the writer's thread: one hop, outside the write
lock, shared by every durable commit made meanwhile (group fsync). Their futures resolve
only after it, so "committed and durable" means the same as with SQLite's
``synchronous=FULL``, but an fsync (~0.2-1 ms on an SSD, several ms on slow disks) never
blocks the event loop nor the commits of other writes. (Why this is as safe as FULL: in
WAL mode NORMAL differs from FULL only by the sync after each commit; a checkpoint syncs
the WAL before and the database after copying, so frames are never overwritten before
they are durable in the database file.)

Never blocking the loop. The write connection has ``busy_timeout = 0``: when another
process holds the write lock (a ``sqlite3`` shell, a backup tool), a batch on the loop
fails to ``BEGIN`` at once and is handed to the thread, which waits up to
``busy_timeout_ms`` for the lock. Automatic checkpoints are off on the write connection
(a checkpoint copies pages and fsyncs, milliseconds): at most every
``checkpoint_interval_s`` after a commit, a passive checkpoint runs on another thread
and its own connection, concurrently with the writer (WAL allows one checkpointer
beside one writer).

Operations: an SQL statement with its parameters (statements of a batch are grouped by
SQL and run with ``executemany``; ``priority`` 0 marks statements that create rows others
may reference, which run first), or a ``call(conn)`` run inside the transaction. A call
runs on the loop or, for a batch that waits for another process's lock, on the writer
thread: it must only use the connection and the data it captured; ``prepare()``, if
given, runs on the loop just before (to take loop-owned state). When a batch fails, it
is rolled back and each of its operations is retried in a transaction of its own, so one
bad operation fails alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import msgspec

from actors.kernel.clock import monotonic
from adapters.storage.errors import StoreError, is_busy, one_line, sqlite_failure

__all__ = ["Call", "SyncMode", "WriteOp", "Writer", "WriterStats"]

SyncMode = Literal["NORMAL", "FULL"]
#: A function run inside the writer's transaction (on the loop or on the writer thread).
Call = Callable[[sqlite3.Connection], Any]
#: Outcome of one operation: (committed, result) or (False, the exception).
_Outcome = tuple[bool, Any]
#: Flushes a file's data (and the metadata needed to read it back) to the disk.
_datasync = getattr(os, "fdatasync", os.fsync)


class WriterStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the writer (for metrics and the admin)."""

    ops: int
    batches: int
    backlog: int
    high_water: int
    failed_ops: int
    last_error: str


class WriteOp:
    """One write: an SQL statement (batched with its neighbours) or a call.

    ``durable``: it completes only once the WAL holding its commit is fsynced (survives
    power loss). ``priority`` 0 marks statements that create rows others may reference (order
    upserts); within a run of statements they execute first. ``prepare`` (optional) runs
    on the event loop right before the batch's transaction; it must not raise.
    """

    __slots__ = ("call", "durable", "future", "params", "prepare", "priority", "sql")

    def __init__(
        self,
        sql: str | None = None,
        params: Any = (),
        *,
        call: Call | None = None,
        prepare: Callable[[], None] | None = None,
        future: asyncio.Future[Any] | None = None,
        durable: bool = False,
        priority: int = 1,
    ) -> None:
        self.sql = sql
        self.params = params
        self.call = call
        self.prepare = prepare
        self.future = future
        self.durable = durable
        self.priority = priority


class _LockedOut(Exception):
    """Another process holds the write lock; a batch on the loop does not wait for it."""


def _describe(exc: BaseException) -> str:
    """An exception's message on one line."""
    return one_line(str(exc)) or type(exc).__name__


class Writer:
    """The single writer of one database: group commit on the loop; durable writes fsynced apart.

    ``conn`` is the open write connection (``isolation_level=None``,
    ``check_same_thread=False``); the writer owns it from now on and closes it in
    ``close()``. ``synchronous="FULL"`` makes every write durable (see the module
    docstring; the connection itself runs with NORMAL). ``log`` is a structlog logger.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        synchronous: SyncMode,
        log: Any,
        max_batch: int = 500,
        busy_timeout_ms: int = 5000,
        checkpoint_interval_s: float = 1.0,
    ) -> None:
        conn.execute("PRAGMA busy_timeout = 0")  # a batch on the loop never waits for a lock
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # checkpoints run on a thread (_checkpoint)
        conn.execute("PRAGMA synchronous = NORMAL")  # durable writes are fsynced apart (_fsync)
        self._conn = conn
        self._path = path
        self._sync = synchronous
        self._log = log
        self._max_batch = max(1, max_batch)
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._checkpoint_interval_s = checkpoint_interval_s
        self._queue: deque[WriteOp] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = False  # a batch is running on the writer thread
        self._locked_out = False  # the queue's head met another process's lock: next batch waits on the thread
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"store-writer:{path.name}")
        self._checkpoint_thread = ThreadPoolExecutor(1, thread_name_prefix=f"store-checkpoint:{path.name}")
        self._checkpoint_conn: sqlite3.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._last_checkpoint = monotonic()
        self._unsynced: list[tuple[WriteOp, Any]] = []  # durable writes committed, awaiting an fsync
        self._fsync_task: asyncio.Task[None] | None = None
        self._closed = False
        self.fsyncs = 0
        self.checkpoints = 0
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
        """Commit (and fsync) everything queued, then end the task and a checkpoint in progress."""
        self._stopping = True
        self._wake.set()
        try:
            if self._task is not None:
                try:
                    await self._task
                finally:
                    self._task = None
        finally:
            for task in (self._fsync_task, self._checkpoint_task):
                if task is not None:
                    await asyncio.gather(task, return_exceptions=True)

    async def close(self, *, optimize: bool = False) -> None:
        """``stop()``, then close the connections off the loop (``optimize``: ``PRAGMA optimize`` first).

        The last connection to close checkpoints the WAL into the file (fsyncs): that runs
        on the writer thread. Idempotent.
        """
        if self._closed:
            return
        try:
            await self.stop()
        finally:
            self._closed = True
            loop = asyncio.get_running_loop()
            try:
                if self._checkpoint_conn is not None:
                    await loop.run_in_executor(self._checkpoint_thread, self._checkpoint_conn.close)
                await loop.run_in_executor(self._thread, self._close_sync, optimize)
            finally:
                self._checkpoint_conn = None
                self._checkpoint_thread.shutdown(wait=False)
                self._thread.shutdown(wait=False)

    def _close_sync(self, optimize: bool) -> None:
        conn = self._conn
        if optimize:
            with contextlib.suppress(sqlite3.Error):  # best effort; closing matters more
                conn.execute("PRAGMA optimize")
        conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The write connection (for inspection while nothing is committing)."""
        return self._conn

    @property
    def backlog(self) -> int:
        """Operations queued and not yet committed (excluding a batch in progress)."""
        return len(self._queue)

    def stats(self) -> WriterStats:
        """Counters."""
        return WriterStats(
            ops=self.ops, batches=self.batches, backlog=len(self._queue), high_water=self.high_water,
            failed_ops=self.failed_ops, last_error=self.last_error,
        )

    # -- writing ------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._stopping or self._task is None or self._task.done():
            raise StoreError("is closed", path=self._path, reason="closed")

    def enqueue(self, op: WriteOp) -> None:
        """Queue an operation; it commits with the next batch."""
        self._check_open()
        q = self._queue
        q.append(op)
        if len(q) > self.high_water:
            self.high_water = len(q)
        if not self._wake.is_set():
            self._wake.set()

    async def submit(self, op: WriteOp) -> Any:
        """Commit an operation (with everything queued before it); returns a call's result.

        When nothing else is committing, it commits right here, on the loop, without a task
        switch (a durable one then waits for its fsync). Raises the operation's ``StoreError``.
        """
        self._check_open()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        op.future = fut
        q = self._queue
        if not self._busy and not self._locked_out and len(q) < self._max_batch:
            batch = [*q, op]
            q.clear()
            self._commit_on_loop(batch)
        else:
            self.enqueue(op)
        return await fut

    async def flush(self) -> None:
        """Wait until every operation queued before this call has committed (or failed), durable ones fsynced."""
        if not self._queue and not self._busy and not self._unsynced and self._fsync_task is None:
            return
        await self.submit(WriteOp(durable=bool(self._unsynced) or self._fsync_task is not None))

    # -- committing ---------------------------------------------------------------------
    async def _loop(self) -> None:
        q = self._queue
        while True:
            if not q or self._busy:
                if self._stopping and not q and not self._busy:
                    return
                self._wake.clear()
                await self._wake.wait()
                # Let the tasks made ready with this write run first (the venue submit after
                # the write-ahead's audit row); more writes join the batch meanwhile.
                await asyncio.sleep(0)
                continue
            batch = [q.popleft() for _ in range(min(len(q), self._max_batch))]
            if self._locked_out:
                self._locked_out = False
                await self._commit_on_thread(batch)
            else:
                self._commit_on_loop(batch)
            if q:
                await asyncio.sleep(0)  # let other tasks run between batches of a long queue

    def _commit_on_loop(self, batch: list[WriteOp]) -> None:
        """Commit on the loop; what meets another process's lock goes back to the queue's head."""
        _prepare(batch)
        try:
            outcomes = self._execute(batch, wait_for_lock=False)
        except Exception as exc:  # the connection itself failed (not one operation)
            outcomes = [(False, exc)] * len(batch)
        self._settle(batch, outcomes)
        if len(outcomes) < len(batch):
            self._queue.extendleft(reversed(batch[len(outcomes):]))
            self._locked_out = True
            self._wake.set()

    async def _commit_on_thread(self, batch: list[WriteOp]) -> None:
        """Commit on the writer thread, waiting for another process's write lock: one hop."""
        _prepare(batch)
        self._busy = True
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                self._thread, self._execute, batch, True)
        except asyncio.CancelledError:
            # The thread finishes (commits or rolls back) on its own; the outcome is unknown here.
            for op in batch:
                if op.future is not None and not op.future.done():
                    op.future.cancel()
            raise
        except Exception as exc:  # the connection itself failed (not one operation)
            outcomes = [(False, exc)] * len(batch)
        finally:
            self._busy = False
            if self._queue or self._stopping:
                self._wake.set()
        self._settle(batch, outcomes)

    def _execute(self, batch: list[WriteOp], wait_for_lock: bool) -> list[_Outcome]:
        """Run ``batch`` in one transaction, else each operation in its own (on the loop or the thread).

        Returns the outcomes of a prefix of ``batch``: all of it, unless a run on the loop
        (``wait_for_lock`` False) found the write lock held by another process.
        """
        conn = self._conn
        if wait_for_lock:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
        try:
            try:
                return [(True, r) for r in self._transaction(batch, wait_for_lock)]
            except _LockedOut:
                return []
            except Exception as exc:
                if len(batch) == 1:
                    return [(False, exc)]
            outcomes: list[_Outcome] = []
            for op in batch:  # isolate the bad operation(s)
                try:
                    (result,) = self._transaction([op], wait_for_lock)
                except _LockedOut:
                    break
                except Exception as exc:
                    outcomes.append((False, exc))
                else:
                    outcomes.append((True, result))
            return outcomes
        finally:
            if wait_for_lock:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA busy_timeout = 0")

    def _transaction(self, batch: list[WriteOp], wait_for_lock: bool) -> list[Any]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not wait_for_lock and is_busy(exc):
                raise _LockedOut from exc
            raise
        try:
            results: list[Any] = [None] * len(batch)
            segment: list[WriteOp] = []
            for i, op in enumerate(batch):
                if op.call is not None:
                    _statements(conn, segment)
                    segment = []
                    results[i] = op.call(conn)
                elif op.sql is not None:
                    segment.append(op)
            _statements(conn, segment)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise
        return results

    def _settle(self, batch: list[WriteOp], outcomes: list[_Outcome]) -> None:
        """Resolve the operations that have an outcome (on the loop); durable ones after their fsync."""
        if not outcomes:
            return
        self.batches += 1
        all_durable = self._sync == "FULL"
        for op, (ok, value) in zip(batch, outcomes, strict=False):
            if not ok:
                self._fail(op, value)
                continue
            self.ops += 1
            if all_durable or op.durable:
                self._unsynced.append((op, value))
            else:
                _resolve(op, value)
        if self._unsynced and self._fsync_task is None:
            self._fsync_task = asyncio.get_running_loop().create_task(
                self._fsync(), name=f"store-fsync:{self._path.name}")
        self._maybe_checkpoint()

    async def _fsync(self) -> None:
        """Fsync the WAL for the durable writes committed so far, again while more arrive (group fsync)."""
        loop = asyncio.get_running_loop()
        waiting: list[tuple[WriteOp, Any]] = []
        try:
            while self._unsynced:
                waiting, self._unsynced = self._unsynced, []
                try:
                    await loop.run_in_executor(self._thread, self._fsync_sync)
                except OSError as exc:
                    err = StoreError(f"write failed: fsync: {exc.strerror or exc}", path=self._path,
                                     reason="write_failed")
                    for op, _ in waiting:
                        self._fail(op, err)
                else:
                    self.fsyncs += 1
                    for op, value in waiting:
                        _resolve(op, value)
                waiting = []
        except asyncio.CancelledError:
            for op, _ in (*waiting, *self._unsynced):
                if op.future is not None and not op.future.done():
                    op.future.cancel()
            self._unsynced = []
            raise
        finally:
            self._fsync_task = None

    def _fsync_sync(self) -> None:
        """Make every commit so far survive power loss (on the writer thread)."""
        wal = self._path.with_name(self._path.name + "-wal")
        try:
            fd = os.open(wal, os.O_RDONLY)
        except FileNotFoundError:  # checkpointed and removed: the commits are in the file itself
            fd = os.open(self._path, os.O_RDONLY)
        try:
            _datasync(fd)
        finally:
            os.close(fd)

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

    # -- checkpoints --------------------------------------------------------------------
    def _maybe_checkpoint(self) -> None:
        if self._checkpoint_task is not None or self._stopping:
            return
        now = monotonic()
        if now - self._last_checkpoint < self._checkpoint_interval_s:
            return
        self._last_checkpoint = now
        self._checkpoint_task = asyncio.get_running_loop().create_task(
            self._checkpoint(), name=f"store-checkpoint:{self._path.name}")

    async def _checkpoint(self) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._checkpoint_thread, self._checkpoint_sync)
        except Exception as exc:  # the WAL only grows until the next one succeeds
            self._log.warning("store.checkpoint_failed", error=_describe(exc))
        else:
            self.checkpoints += 1
        finally:
            self._checkpoint_task = None

    def _checkpoint_sync(self) -> None:
        conn = self._checkpoint_conn
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA synchronous = NORMAL")  # a checkpoint syncs the WAL and the file anyway
            self._checkpoint_conn = conn
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _resolve(op: WriteOp, value: Any) -> None:
    fut = op.future
    if fut is not None and not fut.done():
        fut.set_result(value)


def _prepare(batch: list[WriteOp]) -> None:
    """Run each operation's ``prepare`` once, on the loop."""
    for op in batch:
        prepare = op.prepare
        if prepare is not None:
            op.prepare = None
            prepare()


def _statements(conn: sqlite3.Connection, ops: list[WriteOp]) -> None:
    """Run a run of statements grouped by SQL (one ``executemany`` per distinct statement).

    Same-SQL statements keep their relative order; row-creating statements (priority 0)
    go first so rows referenced by later statements exist.
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
    for sql, (_, params) in sorted(groups.items(), key=lambda kv: kv[1][0]):
        if len(params) == 1:
            conn.execute(sql, params[0])
        else:
            conn.executemany(sql, params)
