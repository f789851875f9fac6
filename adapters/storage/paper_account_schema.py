"""The paper venue's account file: its schema, its migrations, and opening it safely.

A paper account (orders, fills, balances, id counters of the simulated exchange) lives in
its own SQLite file, ``paper-venue-<name>.db`` in the state directory, apart from the
daemon's state database: like a real exchange account it outlives the daemon's own state.

It is opened like a state database (WAL journal, ``busy_timeout``, a quick integrity
check, a one-line ``StoreError`` for every failure) and versioned the same way
(``PRAGMA user_version`` plus ordered forward ``Migration`` steps, each in one
transaction with its version bump), but it carries its own ``application_id`` and its own
migrations: it is not a state database and ``open_database`` refuses it.

Files written before the account was versioned (``user_version`` 0, no application id,
no tables but the four below) are adopted by migration 1, whose statements are
``IF NOT EXISTS`` and therefore leave their tables and rows untouched; it only adds the
``account_writes`` view through which a batch is written (code that reads or writes the
four tables directly keeps working).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from adapters.storage.database import SyncMode
from adapters.storage.errors import StoreError
from adapters.storage.migrations import Migration, user_version

__all__ = ["PAPER_ACCOUNT_APPLICATION_ID", "PAPER_ACCOUNT_MIGRATIONS", "PAPER_ACCOUNT_SCHEMA_VERSION",
           "open_paper_account_database"]

PAPER_ACCOUNT_APPLICATION_ID = 0x41415041  # "AAPA": marks a SQLite file as an aaiti paper account

_TABLES = frozenset({"orders", "fills", "balances", "meta"})

_V1 = (
    """CREATE TABLE IF NOT EXISTS orders (
        client_order_id TEXT PRIMARY KEY,
        venue_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        size TEXT NOT NULL,
        price TEXT,
        filled TEXT NOT NULL,
        cost TEXT NOT NULL,
        fees TEXT NOT NULL,
        locked TEXT NOT NULL,
        seq INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        reason TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS orders_status ON orders(status)",
    """CREATE TABLE IF NOT EXISTS fills (
        trade_id TEXT PRIMARY KEY,
        client_order_id TEXT NOT NULL,
        venue_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        price TEXT NOT NULL,
        size TEXT NOT NULL,
        fee TEXT NOT NULL,
        fee_currency TEXT NOT NULL,
        liquidity TEXT NOT NULL,
        ts_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS fills_ts ON fills(ts_ms)",
    "CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, free TEXT NOT NULL, locked TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    # One statement writes a whole batch: each row of ``account_writes`` names the table it
    # goes to (``kind``) and is routed there by a trigger. The writer then commits a batch in
    # one round-trip to the database thread instead of one per table.
    "CREATE VIEW IF NOT EXISTS account_writes AS SELECT NULL AS kind, "
    + ", ".join(f"NULL AS c{i}" for i in range(1, 17)) + " WHERE 0",
    """CREATE TRIGGER IF NOT EXISTS account_writes_order INSTEAD OF INSERT ON account_writes
        WHEN NEW.kind = 'order' BEGIN
        INSERT OR REPLACE INTO orders (client_order_id, venue_order_id, symbol, side, type, status, size, price,
            filled, cost, fees, locked, seq, created_ms, updated_ms, reason)
        VALUES (NEW.c1, NEW.c2, NEW.c3, NEW.c4, NEW.c5, NEW.c6, NEW.c7, NEW.c8, NEW.c9, NEW.c10, NEW.c11, NEW.c12,
            NEW.c13, NEW.c14, NEW.c15, NEW.c16);
    END""",
    """CREATE TRIGGER IF NOT EXISTS account_writes_fill INSTEAD OF INSERT ON account_writes
        WHEN NEW.kind = 'fill' BEGIN
        INSERT OR IGNORE INTO fills (trade_id, client_order_id, venue_order_id, symbol, side, price, size, fee,
            fee_currency, liquidity, ts_ms)
        VALUES (NEW.c1, NEW.c2, NEW.c3, NEW.c4, NEW.c5, NEW.c6, NEW.c7, NEW.c8, NEW.c9, NEW.c10, NEW.c11);
    END""",
    """CREATE TRIGGER IF NOT EXISTS account_writes_balance INSTEAD OF INSERT ON account_writes
        WHEN NEW.kind = 'balance' BEGIN
        INSERT OR REPLACE INTO balances (asset, free, locked) VALUES (NEW.c1, NEW.c2, NEW.c3);
    END""",
    """CREATE TRIGGER IF NOT EXISTS account_writes_meta INSTEAD OF INSERT ON account_writes
        WHEN NEW.kind = 'meta' BEGIN
        INSERT OR REPLACE INTO meta (key, value) VALUES (NEW.c1, NEW.c2);
    END""",
)

PAPER_ACCOUNT_MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "paper account: orders, fills, balances, meta, account_writes (adopts unversioned files)", _V1),
)
PAPER_ACCOUNT_SCHEMA_VERSION = PAPER_ACCOUNT_MIGRATIONS[-1].version


def _describe(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _readonly_uri(path: Path) -> str:
    return f"{path.resolve().as_uri()}?mode=ro"


async def _connect(path: Path, *, busy_timeout_ms: int, readonly: bool) -> aiosqlite.Connection:
    if readonly:
        conn = await aiosqlite.connect(_readonly_uri(path), uri=True, isolation_level=None)
    else:
        conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if readonly:
            await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


async def _scalar(conn: aiosqlite.Connection, sql: str) -> object:
    async with conn.execute(sql) as cur:
        row = await cur.fetchone()
    return row[0] if row else None


async def _table_names(conn: aiosqlite.Connection) -> set[str]:
    async with conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%'") as cur:
        return {str(r[0]) for r in await cur.fetchall()}


async def _migrate(conn: aiosqlite.Connection, current: int) -> list[int]:
    """Apply every paper-account migration above ``current``, each in one transaction with its version bump."""
    applied: list[int] = []
    for m in PAPER_ACCOUNT_MIGRATIONS:
        if m.version <= current:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in m.statements:
                await conn.execute(stmt)
            await conn.execute(f"PRAGMA application_id = {PAPER_ACCOUNT_APPLICATION_ID}")
            await conn.execute(f"PRAGMA user_version = {m.version}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied


async def _check_and_migrate(conn: aiosqlite.Connection, path: Path, *, synchronous: SyncMode,
                             quick_check: bool) -> int:
    try:
        mode = await _scalar(conn, "PRAGMA journal_mode = WAL")
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot switch to WAL journal mode (got {mode})", path=path, reason="io")
        await conn.execute(f"PRAGMA synchronous = {synchronous}")
        version = await user_version(conn)
        app_id = int(str(await _scalar(conn, "PRAGMA application_id") or 0))
        tables = await _table_names(conn)
        if quick_check:
            qc = await _scalar(conn, "PRAGMA quick_check(1)")
            if qc != "ok":
                raise StoreError(f"is corrupt (quick_check: {qc}); restore a backup or move it aside",
                                 path=path, reason="corrupt")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"is not a valid SQLite database or is corrupt ({_describe(exc)}); "
                         "restore a backup or move it aside", path=path, reason="corrupt") from exc
    # A new file, or one written before accounts were versioned (a crash while the old code
    # created it may have left some of its tables out).
    new_or_unversioned = app_id == 0 and version == 0 and tables <= _TABLES
    if app_id != PAPER_ACCOUNT_APPLICATION_ID and not new_or_unversioned:
        raise StoreError("is an SQLite database but not an aaiti paper venue account", path=path, reason="foreign")
    if version > PAPER_ACCOUNT_SCHEMA_VERSION:
        raise StoreError(
            f"has paper account schema version {version}, newer than this aaiti supports "
            f"({PAPER_ACCOUNT_SCHEMA_VERSION}); run the newer aaiti or restore a backup",
            path=path, reason="newer_schema",
        )
    try:
        await _migrate(conn, version)
    except sqlite3.Error as exc:
        raise StoreError(f"migration from paper account schema version {version} failed: {_describe(exc)}",
                         path=path, reason="corrupt") from exc
    return version


async def open_paper_account_database(
    path: Path,
    *,
    synchronous: SyncMode,
    busy_timeout_ms: int = 5000,
    quick_check: bool = True,
) -> tuple[aiosqlite.Connection, aiosqlite.Connection, int]:
    """Open (creating or migrating if needed) a paper account file.

    Returns the write connection, a read-only connection and the schema version the file
    had before migration. The caller holds the file's process lock (``acquire_process_lock``,
    which also creates the directory). Every failure is a ``StoreError`` with a one-line message.
    """
    try:
        writer = await _connect(path, busy_timeout_ms=busy_timeout_ms, readonly=False)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open: {_describe(exc)}", path=path, reason="io") from exc
    try:
        version = await _check_and_migrate(writer, path, synchronous=synchronous, quick_check=quick_check)
        try:
            reader = await _connect(path, busy_timeout_ms=busy_timeout_ms, readonly=True)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open a read connection: {_describe(exc)}", path=path, reason="io") from exc
    except BaseException:
        await writer.close()
        raise
    return writer, reader, version
