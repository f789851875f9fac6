"""The paper venue's account file: its schema, its migrations, and opening it safely.

A paper account (orders, fills, balances, id counters of the simulated exchange) lives in
its own SQLite file, ``paper-venue-<name>.db`` in the state directory, apart from the
daemon's state database: like a real exchange account it outlives the daemon's own state.

It is opened by the same ``open_database`` as a state database, as its own
``DatabaseKind`` (``PAPER_ACCOUNT``): the same protections (only a missing file starts a
fresh account, created beside it and renamed into place; a file that exists but is empty
or lost tables is refused; locked and damaged files are told apart; WAL journal, a quick
integrity check, a one-line ``StoreError`` for every failure) and the same versioning
(``PRAGMA user_version`` plus ordered forward ``Migration`` steps, each in one transaction
with its version bump), but its own ``application_id`` and migrations: it is not a state
database and a state database is not an account.

Files written before the account was versioned (``user_version`` 0, no application id,
tables among the four below, at least one) are adopted by migration 1, whose statements
are ``IF NOT EXISTS`` and therefore leave their tables and rows untouched; it only adds
the ``account_writes`` view through which a batch is written (code that reads or writes
the four tables directly keeps working).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

from adapters.storage.database import DatabaseKind, open_database
from adapters.storage.migrations import Migration

__all__ = ["PAPER_ACCOUNT", "PAPER_ACCOUNT_APPLICATION_ID", "PAPER_ACCOUNT_MIGRATIONS", "PAPER_ACCOUNT_SCHEMA_VERSION",
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


PAPER_ACCOUNT = DatabaseKind("aaiti paper venue account", PAPER_ACCOUNT_APPLICATION_ID, PAPER_ACCOUNT_MIGRATIONS,
                             legacy_tables=_TABLES)


async def open_paper_account_database(
    path: Path,
    *,
    busy_timeout_ms: int = 5000,
    quick_check: bool = True,
) -> tuple[sqlite3.Connection, aiosqlite.Connection, int]:
    """Open (creating or migrating if needed) a paper account file, with a state database's protections.

    Returns the write connection, a read-only connection and the schema version the file
    had before migration (0 for a new file). Only a missing file is created (beside it,
    then renamed into place); an existing file that is empty (0 bytes or no tables) is
    refused (``empty``), a locked one is ``locked``, a damaged one ``corrupt``. The caller
    holds the file's process lock (``acquire_process_lock``). Every failure is a
    ``StoreError`` with a one-line message.
    """
    return await open_database(path, kind=PAPER_ACCOUNT, busy_timeout_ms=busy_timeout_ms, quick_check=quick_check,
                               create=True)
