"""The keyed audit log: rewrites without the key are caught; old unkeyed rows still verify."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from adapters.storage import Store, StoreError, verify_audit
from adapters.storage.audit import (
    GENESIS_HASH,
    AuditKey,
    audit_row_hash,
    default_audit_key_path,
    load_audit_key,
)
from adapters.storage.migrations import APPLICATION_ID, MIGRATIONS


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "aaiti-paper-paper.db"


async def write_rows(db: Path, n: int, key: AuditKey | None = None) -> None:
    store = await Store.open(db, audit_key=key)
    for i in range(n):
        await store.append_audit("admin.command", {"i": i})
    await store.close()


def tamper(db: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    con = sqlite3.connect(db)
    for (name,) in con.execute("SELECT name FROM sqlite_schema WHERE type = 'trigger'").fetchall():
        con.execute(f"DROP TRIGGER {name}")  # someone with write access to the file drops the guards
    for sql, params in statements:
        con.execute(sql, params)
    con.commit()
    con.close()


def rechain(db: Path, *, strip_macs: bool = False) -> None:
    """Recompute every hash (and the head) the way anyone can without the key."""
    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, ts_ms, kind, payload FROM audit_log ORDER BY id").fetchall()
    prev = GENESIS_HASH
    for row_id, ts_ms, kind, payload in rows:
        h = audit_row_hash(prev, row_id, ts_ms, kind, payload)
        con.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?", (prev, h, row_id))
        if strip_macs:
            con.execute("UPDATE audit_log SET mac = NULL, key_id = NULL WHERE id = ?", (row_id,))
        prev = h
    head = json.loads(con.execute("SELECT value FROM kv WHERE key = 'audit.head'").fetchone()[0])
    head.update(id=rows[-1][0], hash=prev)
    con.execute("UPDATE kv SET value = ? WHERE key = 'audit.head'", (json.dumps(head),))
    con.commit()
    con.close()


def key_in_file(key_file: Path, db: Path) -> bool:
    return key_file.read_text().strip().encode() in db.read_bytes()


async def test_new_rows_are_keyed_and_verify_with_the_key_file_beside_the_database(db: Path) -> None:
    await write_rows(db, 4)
    key_file = default_audit_key_path(db)
    assert key_file == db.parent / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = load_audit_key(key_file)
    assert key is not None
    con = sqlite3.connect(db)
    macs = con.execute("SELECT key_id, mac FROM audit_log").fetchall()
    con.close()
    assert all(k == key.key_id and m for k, m in macs)
    assert not key_in_file(key_file, db)
    report = verify_audit(db)
    assert report.ok and report.rows == 4, report.summary()
    assert key.key_id in report.summary() and "unkeyed" not in report.summary()
    assert report.integrity == "ok"


async def test_deleting_the_last_row_and_rewriting_the_head_is_caught(db: Path) -> None:
    await write_rows(db, 6)
    con = sqlite3.connect(db)
    row5 = con.execute("SELECT id, hash, key_id, mac FROM audit_log WHERE id = 5").fetchone()
    con.close()
    forged = json.dumps({"id": 5, "hash": row5[1], "key_id": row5[2], "mac": row5[3]})
    tamper(db, ("DELETE FROM audit_log WHERE id = 6", ()),
           ("UPDATE kv SET value = ? WHERE key = 'audit.head'", (forged,)))
    report = verify_audit(db)
    assert not report.ok and report.bad_id is None
    assert "BROKEN at chain head" in report.summary() and "not signed" in report.problem


async def test_recomputing_the_whole_chain_is_caught_at_the_first_changed_row(db: Path) -> None:
    await write_rows(db, 6)
    tamper(db, ("UPDATE audit_log SET payload = ? WHERE id = 3", ('{"i":99}',)))
    rechain(db)
    report = verify_audit(db)
    assert not report.ok and report.bad_id == 3, report.summary()
    assert "HMAC mismatch" in report.problem and "BROKEN at row 3" in report.summary()


async def test_stripping_the_macs_and_recomputing_is_caught(db: Path) -> None:
    await write_rows(db, 3)
    tamper(db)
    rechain(db, strip_macs=True)
    report = verify_audit(db)
    assert not report.ok and report.bad_id == 1 and "not keyed" in report.problem


async def test_rewriting_the_keyed_from_record_is_caught(db: Path) -> None:
    await write_rows(db, 3)
    tamper(db, ("UPDATE kv SET value = json_set(value, '$.id', 3) WHERE key = 'audit.keyed_from'", ()))
    report = verify_audit(db)
    assert not report.ok and "keyed-from record" in report.summary()


async def test_deleting_every_row_and_the_head_is_caught(db: Path) -> None:
    await write_rows(db, 3)
    tamper(db, ("DELETE FROM audit_log", ()), ("DELETE FROM kv WHERE key = 'audit.head'", ()))
    report = verify_audit(db)
    assert not report.ok and "head" in report.problem


async def test_another_key_is_refused_at_open_and_fails_verify(db: Path, tmp_path: Path) -> None:
    await write_rows(db, 2)
    other = AuditKey(b"x" * 40, "test:other")
    with pytest.raises(StoreError) as err:
        await Store.open(db, audit_key=other)
    assert err.value.reason == "audit_key" and other.key_id in str(err.value)
    report = verify_audit(db, other)
    assert not report.ok and "key id" in report.problem


async def test_keyed_log_without_a_key_cannot_be_verified(db: Path) -> None:
    await write_rows(db, 2)
    default_audit_key_path(db).unlink()
    with pytest.raises(StoreError) as err:
        verify_audit(db)
    assert err.value.reason == "audit_key" and "--key-file" in str(err.value)


async def test_credential_key_takes_precedence(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "audit_key").write_text("c" * 64 + "\n")
    key = load_audit_key(tmp_path / "audit.key", create=True, environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert key is not None and key.source.startswith("credential:")
    assert not (tmp_path / "audit.key").exists()
    (creds / "audit_key").write_text("short")
    with pytest.raises(StoreError) as err:
        load_audit_key(tmp_path / "audit.key", environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert err.value.reason == "audit_key" and "too short" in str(err.value)


def write_v1_database(db: Path, rows: int) -> None:
    """A state database as aaiti wrote it before audit keys (schema version 1)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(db, isolation_level=None)
    for stmt in MIGRATIONS[0].statements:
        con.execute(stmt)
    con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    con.execute("PRAGMA user_version = 1")
    prev = GENESIS_HASH
    for i in range(1, rows + 1):
        payload = json.dumps({"i": i})
        h = audit_row_hash(prev, i, 1000 + i, "old", payload)
        con.execute("INSERT INTO audit_log VALUES (?, ?, 'old', ?, ?, ?)", (i, 1000 + i, payload, prev, h))
        prev = h
    con.close()


async def test_unkeyed_rows_of_an_old_database_verify_and_new_rows_are_keyed(db: Path) -> None:
    write_v1_database(db, 3)
    old = verify_audit(db)
    assert old.ok and "unkeyed" in old.summary(), old.summary()
    await write_rows(db, 2)  # migrates to version 2 and signs "keyed from row 4"
    report = verify_audit(db)
    assert report.ok and report.rows == 5 and report.keyed_from == 4, report.summary()
    assert "unkeyed before row 4" in report.summary()
    # Rewriting an unkeyed row and recomputing the chain changes the first keyed row's hash.
    tamper(db, ("UPDATE audit_log SET payload = ? WHERE id = 2", ('{"i":99}',)))
    rechain(db)
    broken = verify_audit(db)
    assert not broken.ok and broken.bad_id == 4 and "HMAC" in broken.problem


async def test_integrity_check_failure_is_reported(db: Path) -> None:
    store = await Store.open(db)
    await store.insert_orders([])
    await store.append_audit("x", {})
    await store.close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA writable_schema = ON")
    # Declare an index the rows were never entered into: integrity_check finds them missing.
    con.execute("UPDATE sqlite_schema SET sql = 'CREATE INDEX orders_created ON orders(symbol)' "
                "WHERE name = 'orders_created'")
    con.commit()
    con.close()
    con = sqlite3.connect(db)
    con.execute("INSERT INTO orders (client_order_id, venue, strategy, symbol, side, type, size, status, "
                "created_ms, updated_ms) VALUES ('c', 'p', 's', 'X', 'buy', 'limit', '1', 'NEW', 1, 1)")
    con.commit()
    con.close()
    con = sqlite3.connect(db)
    con.execute("PRAGMA writable_schema = ON")
    con.execute("UPDATE sqlite_schema SET sql = 'CREATE INDEX orders_created ON orders(created_ms)' "
                "WHERE name = 'orders_created'")
    con.commit()
    con.close()
    report = verify_audit(db)
    assert not report.ok and "integrity_check" in report.problem, report.summary()
    assert "BROKEN at database file" in report.summary() and "\n" not in report.summary()
