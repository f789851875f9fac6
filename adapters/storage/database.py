"""Opening an aaiti SQLite file safely: state databases and paper venue accounts.

Settings of the write connection: WAL journal (readers never block the writer) and
foreign keys; its single ``Writer`` (``adapters.storage.writer``) commits every write.
Reads use a second, read-only connection (aiosqlite, off the loop).

Durability, decided: with WAL and ``synchronous=NORMAL`` a transaction is durable against
a *process* crash as soon as COMMIT returns (it is in the WAL file); only an OS crash or
power loss can roll back the last commits, and the file stays consistent. That is what
"durably stored before the venue sees it" means here: the order's INSERT has committed
before ``venue.submit`` is called. Writes that must survive power loss as well — the
per-boot counter behind client order ids, the kill switch / trading state, and (when the
store is opened with ``fsync_orders=True``, as live trading should) order inserts — are
marked *durable*: they complete only once the WAL holding them is fsynced (as with
``synchronous=FULL``; the writer fsyncs on its thread, outside the write lock, ~0.2-1 ms
on an SSD). Paper trading does without: its write-ahead commits on the event loop in
tens of µs; after a power loss the reconciler resolves any order the venue knows and we
do not, and client order ids never repeat because the boot counter is fsynced.

A file is of one ``DatabaseKind`` (its ``application_id`` and its own migrations): a
state database (``STATE_DATABASE``) or a paper venue account. A fresh file only ever
starts from a *missing* file (created beside it and renamed into place, so a crash never
leaves a half-made one): a file that exists but is empty or lost its tables is refused,
because opening it as new would silently start a fresh account over lost state. A file
another process holds is reported as locked (naming the process when it can), never as
damaged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import sqlite3
from pathlib import Path

import aiosqlite

from adapters.storage.errors import StoreError, one_line, sqlite_failure
from adapters.storage.migrations import APPLICATION_ID, MIGRATIONS, Migration, expected_objects
from adapters.storage.writer import SyncMode, WriteOp, Writer, WriterStats

# The writer used to live here: its names stay importable from this module.
__all__ = ["STATE_DATABASE", "DatabaseKind", "SyncMode", "WriteOp", "Writer", "WriterStats", "acquire_process_lock",
           "check_file_before_open", "lock_holder_pid", "open_database", "release_process_lock"]


@dataclasses.dataclass(frozen=True)
class DatabaseKind:
    """What a kind of aaiti SQLite file is: its name in messages, ``application_id`` and migrations.

    ``legacy_tables``: a file with no application id and ``user_version`` 0 whose tables
    are a non-empty subset of these was written before the kind was versioned; it is
    adopted by migration 1 (whose statements must then be ``IF NOT EXISTS``). Empty: no
    such files exist, and one is refused as foreign.
    """

    label: str
    application_id: int
    migrations: tuple[Migration, ...]
    legacy_tables: frozenset[str] = frozenset()

    @property
    def schema_version(self) -> int:
        """The newest version this code knows."""
        return self.migrations[-1].version


STATE_DATABASE = DatabaseKind("aaiti state database", APPLICATION_ID, MIGRATIONS)


_RESTORE_OR_DELETE = "restore a backup, or delete the file to start a fresh account"


def _readonly_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


def _check_path(path: Path) -> None:
    if path.exists() and not path.is_file():
        raise StoreError("is not a regular file", path=path, reason="io")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StoreError(f"cannot create directory {path.parent}: {exc.strerror}", path=path, reason="io") from exc


async def _connect_reader(path: Path, *, busy_timeout_ms: int) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(_readonly_uri(path), uri=True, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
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


def _migrate(conn: sqlite3.Connection, current: int, kind: DatabaseKind) -> list[int]:
    """Apply every migration of ``kind`` above ``current``, each in one transaction with its version bump.

    A crash mid-migration leaves the previous version intact. ``conn`` is in autocommit mode.
    """
    applied: list[int] = []
    for m in kind.migrations:
        if m.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in m.statements:
                conn.execute(stmt)
            conn.execute(f"PRAGMA application_id = {kind.application_id}")
            conn.execute(f"PRAGMA user_version = {m.version}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied


def _create_database(path: Path, kind: DatabaseKind, *, busy_timeout_ms: int) -> None:
    """Create and migrate a new file beside ``path``, then rename it into place.

    A crash during creation leaves only ``<db>.new`` (removed by the next attempt), never
    a half-made file at ``path`` that the next start would have to refuse.
    """
    tmp = path.with_name(path.name + ".new")
    try:
        for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-journal", "-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _migrate(conn, 0, kind)
        finally:
            conn.close()
        _fsync_path(tmp)
        os.replace(tmp, path)
        _fsync_path(path.parent)
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, path, doing=f"cannot create ({tmp.name})", default_reason="io") from exc
    except OSError as exc:
        raise StoreError(f"cannot create ({tmp.name}): {exc.strerror or exc}", path=path, reason="io") from exc


def _check_identity(path: Path, kind: DatabaseKind, *, app_id: int, version: int, objects: dict[str, str]) -> None:
    """Refuse a file that is not a complete ``kind`` file of a version we know."""
    foreign = StoreError(f"is an SQLite database but not an {kind.label}", path=path, reason="foreign")
    if app_id not in (0, kind.application_id):
        raise foreign
    tables = {name for name, typ in objects.items() if typ == "table" and not name.startswith("sqlite_")}
    if not tables:
        raise StoreError(f"exists but has no tables (an empty SQLite database); refusing to start a fresh account "
                         f"over it: {_RESTORE_OR_DELETE}", path=path, reason="empty")
    if app_id == 0:
        if version == 0 and tables <= kind.legacy_tables:
            return  # written before this kind was versioned: migration 1 adopts it
        raise foreign
    if version > kind.schema_version:
        raise StoreError(
            f"has schema version {version}, newer than this aaiti supports ({kind.schema_version}); "
            "run the newer aaiti or restore a backup",
            path=path, reason="newer_schema",
        )
    if version == 0:
        raise StoreError(f"has tables but no schema version (its creation was interrupted?); refusing to start a "
                         f"fresh account over it: {_RESTORE_OR_DELETE}", path=path, reason="incomplete")
    expected = expected_objects(version, kind.migrations)
    missing = sorted(name for name in expected if name not in objects)
    lost_tables = [name for name in missing if expected[name] == "table"]
    if lost_tables:
        raise StoreError(f"has lost table(s) {', '.join(lost_tables)} of schema version {version}; refusing to "
                         f"start a fresh account over it: {_RESTORE_OR_DELETE}", path=path, reason="incomplete")
    if missing:
        raise StoreError(f"lacks {', '.join(missing)} of schema version {version} (removed outside aaiti?); "
                         "restore a backup", path=path, reason="incomplete")


def _open_writer(path: Path, kind: DatabaseKind, *, busy_timeout_ms: int, quick_check: bool,
                 create: bool) -> tuple[sqlite3.Connection, int]:
    """Check, create or migrate the file and open its write connection (blocking: run off the loop).

    Returns the connection (usable from any thread, one at a time) and the schema version
    the file had before migration (0 for a new file).
    """
    created = check_file_before_open(path, create=create)
    if created:
        _create_database(path, kind, busy_timeout_ms=busy_timeout_ms)
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as exc:
        raise sqlite_failure(exc, path, doing="cannot open", default_reason="io") from exc
    try:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys = ON")
            # Identify the file before changing anything in it (the WAL switch writes its header).
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            app_id = int(conn.execute("PRAGMA application_id").fetchone()[0])
            objects = {str(r[0]): str(r[1]) for r in conn.execute("SELECT name, type FROM sqlite_schema")}
            _check_identity(path, kind, app_id=app_id, version=version, objects=objects)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"cannot switch to WAL journal mode (got {mode})", path=path, reason="io")
            if quick_check:
                qc = [str(r[0]) for r in conn.execute("PRAGMA quick_check(1)")]
                if qc != ["ok"]:
                    raise StoreError(f"is corrupt (quick_check: {one_line(chr(10).join(qc)) or '?'}); restore a "
                                     "backup or move it aside", path=path, reason="corrupt")
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, path) from exc
        try:
            _migrate(conn, version, kind)
        except sqlite3.Error as exc:
            raise sqlite_failure(exc, path, doing=f"migration from schema version {version} failed") from exc
    except BaseException:
        conn.close()
        raise
    return conn, 0 if created else version


async def open_database(
    path: Path,
    *,
    kind: DatabaseKind = STATE_DATABASE,
    busy_timeout_ms: int = 5000,
    quick_check: bool = True,
    create: bool = True,
) -> tuple[sqlite3.Connection, aiosqlite.Connection, int]:
    """Open (creating and migrating if needed) a ``kind`` file (a state database by default).

    Returns the write connection (for a ``Writer``, which sets how it commits), a read-only aiosqlite connection and
    the schema version the file had before migration (0 for a new file). Only a *missing*
    file is created, and only with ``create``: a file that exists but is empty or lost its
    tables is refused (``empty`` / ``incomplete``), never silently started as a fresh
    account. Every failure is a ``StoreError`` with a one-line message.
    """
    writer, before = await asyncio.to_thread(
        _open_writer, path, kind, busy_timeout_ms=busy_timeout_ms, quick_check=quick_check, create=create)
    try:
        reader = await _connect_reader(path, busy_timeout_ms=busy_timeout_ms)
    except BaseException as exc:
        await asyncio.to_thread(writer.close)
        if isinstance(exc, sqlite3.Error):
            raise sqlite_failure(exc, path, doing="cannot open a read connection", default_reason="io") from exc
        raise
    return writer, reader, before
