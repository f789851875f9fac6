"""Schema versions: ``PRAGMA user_version`` plus ordered forward migrations.

Each migration runs in its own transaction together with the version bump, so a crash
mid-migration leaves the previous version intact. Migrations are append-only: never edit
a released one, add the next. A file whose version is newer than ``SCHEMA_VERSION`` was
written by a newer aaiti and is refused (``StoreError`` reason ``newer_schema``).
"""

from __future__ import annotations

import dataclasses
import sqlite3

import aiosqlite

APPLICATION_ID = 0x41414954  # "AAIT": marks a SQLite file as an aaiti state database


@dataclasses.dataclass(frozen=True)
class Migration:
    """One forward step to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


_OPEN = "('INITIALIZED','SUBMITTED','ACCEPTED','TRIGGERED','PENDING_UPDATE','PENDING_CANCEL','PARTIALLY_FILLED')"

_V1 = (
    """
    CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        venue           TEXT NOT NULL,
        venue_order_id  TEXT NOT NULL DEFAULT '',
        strategy        TEXT NOT NULL,
        symbol          TEXT NOT NULL,
        side            TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        type            TEXT NOT NULL,
        size            TEXT NOT NULL,
        price           TEXT,
        status          TEXT NOT NULL,
        filled          TEXT NOT NULL DEFAULT '0',
        avg_price       TEXT,
        fees            TEXT NOT NULL DEFAULT '0',
        tag             TEXT NOT NULL DEFAULT '',
        intent_id       TEXT NOT NULL DEFAULT '',
        reason          TEXT NOT NULL DEFAULT '',
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL
    )""",
    f"CREATE INDEX orders_open ON orders(status) WHERE status IN {_OPEN}",
    "CREATE INDEX orders_created ON orders(created_ms)",
    "CREATE INDEX orders_symbol ON orders(symbol, created_ms)",
    "CREATE INDEX orders_strategy ON orders(strategy, created_ms)",
    """
    CREATE TABLE order_events (
        id              INTEGER PRIMARY KEY,
        client_order_id TEXT NOT NULL REFERENCES orders(client_order_id),
        status          TEXT NOT NULL,
        previous        TEXT,
        filled          TEXT NOT NULL,
        reason          TEXT NOT NULL DEFAULT '',
        trade_id        TEXT,
        ts_ms           INTEGER NOT NULL
    )""",
    "CREATE INDEX order_events_order ON order_events(client_order_id)",
    """
    CREATE TABLE fills (
        id              INTEGER PRIMARY KEY,
        venue           TEXT NOT NULL,
        trade_id        TEXT NOT NULL,
        client_order_id TEXT NOT NULL,
        venue_order_id  TEXT NOT NULL DEFAULT '',
        symbol          TEXT NOT NULL,
        side            TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        price           TEXT NOT NULL,
        size            TEXT NOT NULL,
        fee             TEXT NOT NULL DEFAULT '0',
        fee_currency    TEXT NOT NULL DEFAULT '',
        liquidity       TEXT NOT NULL DEFAULT '',
        ts_ms           INTEGER NOT NULL,
        UNIQUE (venue, trade_id)
    )""",
    "CREATE INDEX fills_order ON fills(client_order_id)",
    "CREATE INDEX fills_ts ON fills(ts_ms)",
    """
    CREATE TABLE ledger_snapshots (
        id       INTEGER PRIMARY KEY,
        ts_ms    INTEGER NOT NULL,
        fill_seq INTEGER,
        source   TEXT NOT NULL
    )""",
    """
    CREATE TABLE position_snapshots (
        id           INTEGER PRIMARY KEY,
        snapshot_id  INTEGER NOT NULL REFERENCES ledger_snapshots(id),
        symbol       TEXT NOT NULL,
        size         TEXT NOT NULL,
        avg_price    TEXT NOT NULL,
        realized_pnl TEXT NOT NULL,
        fees         TEXT NOT NULL,
        fills        INTEGER NOT NULL
    )""",
    "CREATE INDEX position_snapshots_snapshot ON position_snapshots(snapshot_id)",
    """
    CREATE TABLE balance_snapshots (
        id          INTEGER PRIMARY KEY,
        snapshot_id INTEGER NOT NULL REFERENCES ledger_snapshots(id),
        asset       TEXT NOT NULL,
        total       TEXT NOT NULL,
        free        TEXT,
        locked      TEXT
    )""",
    "CREATE INDEX balance_snapshots_snapshot ON balance_snapshots(snapshot_id)",
    """
    CREATE TABLE risk_events (
        id          INTEGER PRIMARY KEY,
        ts_ms       INTEGER NOT NULL,
        reason      TEXT NOT NULL,
        strategy    TEXT NOT NULL,
        symbol      TEXT NOT NULL,
        intent_json TEXT NOT NULL,
        limit_value TEXT NOT NULL DEFAULT '',
        detail      TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX risk_events_ts ON risk_events(ts_ms)",
    """
    CREATE TABLE kv (
        key        TEXT PRIMARY KEY,
        value      TEXT NOT NULL,
        updated_ms INTEGER NOT NULL
    )""",
    """
    CREATE TABLE audit_log (
        id        INTEGER PRIMARY KEY,
        ts_ms     INTEGER NOT NULL,
        kind      TEXT NOT NULL,
        payload   TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    )""",
    """
    CREATE TRIGGER audit_log_head AFTER INSERT ON audit_log BEGIN
        INSERT INTO kv(key, value, updated_ms)
        VALUES ('audit.head', json_object('id', NEW.id, 'hash', NEW.hash), NEW.ts_ms)
        ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms;
    END""",
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN "
    "SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN "
    "SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events BEGIN "
    "SELECT RAISE(ABORT, 'order_events is append-only'); END",
    "CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events BEGIN "
    "SELECT RAISE(ABORT, 'order_events is append-only'); END",
    "CREATE TRIGGER fills_no_update BEFORE UPDATE ON fills BEGIN "
    "SELECT RAISE(ABORT, 'fills are immutable'); END",
)

# Version 2: audit rows carry an HMAC under a key kept outside the database (see audit.py).
# Rows written before stay unkeyed (NULL). The head recorded in ``kv`` gets its own HMAC,
# computed by ``aaiti_audit_mac`` — a function only a writer holding the key registers,
# so an INSERT from any other connection fails.
_V2 = (
    "ALTER TABLE audit_log ADD COLUMN key_id TEXT",
    "ALTER TABLE audit_log ADD COLUMN mac TEXT",
    "DROP TRIGGER audit_log_head",
    """
    CREATE TRIGGER audit_log_head AFTER INSERT ON audit_log BEGIN
        INSERT INTO kv(key, value, updated_ms)
        VALUES ('audit.head', json_object('id', NEW.id, 'hash', NEW.hash, 'key_id', NEW.key_id,
                                          'mac', aaiti_audit_mac('head', NEW.id, NEW.hash)), NEW.ts_ms)
        ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms;
    END""",
    # From which row on every row must be keyed; the first writer holding the key signs it.
    # Written in the migration's own transaction, so no window exists in which rows could
    # be added or stripped while the record is missing.
    "INSERT INTO kv(key, value, updated_ms) "
    "SELECT 'audit.keyed_from', json_object('id', coalesce(max(id), 0) + 1), "
    "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM audit_log",
)

_TERMINAL = "('DENIED','REJECTED','FILLED','CANCELED','EXPIRED')"

# Version 3: retention (``adapters.storage.retention``). Finished orders with their events
# and fills, old risk denials and the oldest audit rows move to archive segment files.
# The append-only guards stay, narrowed to what may never go: rows of an order that is not
# finished, and audit rows after the recorded cut (``kv`` ``audit.cut``, signed with the
# audit key and written in the deleting transaction itself). ``archived_positions`` carries
# the per-strategy position sums of archived fills (``Store.strategy_positions`` adds them).
_V3 = (
    "DROP TRIGGER audit_log_no_delete",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "WHEN OLD.id > coalesce((SELECT json_extract(value, '$.id') FROM kv WHERE key = 'audit.cut'), 0) BEGIN "
    "SELECT RAISE(ABORT, 'audit_log is append-only after the recorded archive cut'); END",
    "DROP TRIGGER order_events_no_delete",
    "CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events "
    "WHEN coalesce((SELECT status FROM orders WHERE client_order_id = OLD.client_order_id), 'FILLED') "
    f"NOT IN {_TERMINAL} BEGIN SELECT RAISE(ABORT, 'order_events of an unfinished order are append-only'); END",
    "CREATE TRIGGER fills_no_delete BEFORE DELETE ON fills "
    "WHEN coalesce((SELECT status FROM orders WHERE client_order_id = OLD.client_order_id), 'FILLED') "
    f"NOT IN {_TERMINAL} BEGIN SELECT RAISE(ABORT, 'fills of an unfinished order cannot be deleted'); END",
    f"CREATE TRIGGER orders_no_delete BEFORE DELETE ON orders WHEN OLD.status NOT IN {_TERMINAL} BEGIN "
    "SELECT RAISE(ABORT, 'an unfinished order cannot be deleted'); END",
    """
    CREATE TABLE archived_positions (
        strategy TEXT NOT NULL,
        symbol   TEXT NOT NULL,
        size     TEXT NOT NULL,
        PRIMARY KEY (strategy, symbol)
    )""",
)

# Version 4: protective and algorithmic orders. Native conditional orders keep their
# trigger, trailing delta and iceberg display size; every order may belong to a contingent
# order (``parent``) and a native order list (``list_id``). ``contingent_orders`` holds the
# contingent-order manager's write-ahead state: one row per stop, take-profit, trailing
# stop, OCO, OTO, bracket, iceberg or TWAP, its state as JSON in ``body``.
_V4 = (
    "ALTER TABLE orders ADD COLUMN trigger_price TEXT",
    "ALTER TABLE orders ADD COLUMN trailing_bps INTEGER",
    "ALTER TABLE orders ADD COLUMN display_size TEXT",
    "ALTER TABLE orders ADD COLUMN parent TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE orders ADD COLUMN list_id TEXT NOT NULL DEFAULT ''",
    """
    CREATE TABLE contingent_orders (
        id         TEXT PRIMARY KEY,
        strategy   TEXT NOT NULL,
        symbol     TEXT NOT NULL,
        kind       TEXT NOT NULL,
        mode       TEXT NOT NULL CHECK (mode IN ('native', 'emulated')),
        status     TEXT NOT NULL,
        active     INTEGER NOT NULL CHECK (active IN (0, 1)),
        body       TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX contingent_orders_active ON contingent_orders(active) WHERE active = 1",
    "CREATE INDEX contingent_orders_created ON contingent_orders(created_ms)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _V1),
    Migration(2, "keyed audit log (HMAC per row and on the head)", _V2),
    Migration(3, "retention: archive cut, archived positions, guarded deletes", _V3),
    Migration(4, "protective orders: conditional order columns, contingent orders", _V4),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def expected_objects(version: int, migrations: tuple[Migration, ...] = MIGRATIONS) -> dict[str, str]:
    """Name → type (table, index, trigger, view) of every schema object a file at ``version`` has.

    Computed by applying the migrations to an empty in-memory database, so it can never
    drift from them. Used to refuse a file that lost tables or triggers.
    """
    conn = sqlite3.connect(":memory:")
    try:
        for m in migrations:
            if m.version > version:
                break
            for stmt in m.statements:
                conn.execute(stmt)
        rows = conn.execute("SELECT name, type FROM sqlite_schema").fetchall()
    finally:
        conn.close()
    return {str(name): str(kind) for name, kind in rows}


async def user_version(conn: aiosqlite.Connection) -> int:
    """The schema version recorded in the file (0 for a new file)."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: aiosqlite.Connection, current: int, target: int = SCHEMA_VERSION) -> list[int]:
    """Apply every migration above ``current`` up to ``target``; return the versions applied.

    ``conn`` must be in autocommit mode (isolation_level=None). Callers check first that
    ``current`` is not newer than the code.
    """
    applied: list[int] = []
    for m in MIGRATIONS:
        if m.version <= current or m.version > target:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for stmt in m.statements:
                await conn.execute(stmt)
            await conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            await conn.execute(f"PRAGMA user_version = {m.version}")
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        applied.append(m.version)
    return applied
