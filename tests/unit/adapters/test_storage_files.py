"""State database files: only a missing file starts fresh; locks and damage are told apart, on one line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.storage import Store, StoreError
from adapters.storage.database import open_database
from tests.unit.adapters.test_storage import order


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "aaiti-paper-paper.db"


async def make_db(db: Path, orders: int = 0) -> None:
    store = await Store.open(db)
    if orders:
        await store.insert_orders([order(f"c{i}") for i in range(orders)])
    await store.append_audit("test", {"n": 1})
    await store.close()


def size(path: Path) -> int | None:
    return path.stat().st_size if path.exists() else None


def truncate(path: Path) -> None:
    os.truncate(path, 0)  # truncate -s 0


def garble_page(db: Path, index: int, page: int = 4096) -> None:
    data = bytearray(db.read_bytes())
    data[index * page : index * page + 8] = b"\x0d\x00\x00\xff\xff\x00\x00\x00"  # a b-tree page header that lies
    db.write_bytes(bytes(data))


async def test_zero_byte_database_is_refused_and_left_as_it_is(db: Path) -> None:
    await make_db(db)
    truncate(db)
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "empty"
    msg = str(err.value)
    assert str(db) in msg and "\n" not in msg and "0 bytes" in msg and "delete the file" in msg
    assert size(db) == 0  # not re-initialised as a fresh account


async def test_database_that_lost_every_table_is_refused(db: Path) -> None:
    await make_db(db)
    con = sqlite3.connect(db)
    for (name,) in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table'").fetchall():
        con.execute(f"DROP TABLE {name}")
    con.commit()
    con.close()
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "empty" and "no tables" in str(err.value)


async def test_database_that_lost_some_tables_is_refused_naming_them(db: Path) -> None:
    await make_db(db)
    con = sqlite3.connect(db)
    con.execute("DROP TABLE fills")
    con.commit()
    con.close()
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "incomplete" and "fills" in str(err.value) and "\n" not in str(err.value)


async def test_database_without_its_append_only_trigger_is_refused(db: Path) -> None:
    await make_db(db)
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_log_no_delete")
    con.commit()
    con.close()
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "incomplete" and "audit_log_no_delete" in str(err.value)


async def test_missing_file_is_created_only_when_asked(db: Path) -> None:
    with pytest.raises(StoreError) as err:
        await open_database(db, create=False)
    assert err.value.reason == "missing" and size(db) is None
    with pytest.raises(StoreError):
        await Store.open(db, create=False)
    assert size(db) is None


async def test_missing_file_with_a_leftover_wal_is_refused(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.with_name(db.name + "-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 60)
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "missing" and "-wal" in str(err.value)
    assert size(db) is None


async def test_leftover_of_an_interrupted_creation_is_discarded(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.with_name(db.name + ".new").write_bytes(b"half-written")
    store = await Store.open(db)
    await store.close()
    assert not db.with_name(db.name + ".new").exists()
    assert has_orders_table(db)


def has_orders_table(db: Path) -> bool:
    con = sqlite3.connect(db)
    try:
        return bool(con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'orders'").fetchone()[0] == 1)
    finally:
        con.close()


async def test_second_daemon_is_told_who_holds_the_lock(db: Path) -> None:
    store = await Store.open(db)
    try:
        with pytest.raises(StoreError) as err:
            await Store.open(db)
    finally:
        await store.close()
    msg = str(err.value)
    assert err.value.reason == "locked"
    assert f"pid {os.getpid()}" in msg and "move it aside" not in msg and "corrupt" not in msg


HOLD_SQLITE_LOCK = """
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA locking_mode = EXCLUSIVE")
con.execute("BEGIN EXCLUSIVE")
con.execute("INSERT INTO kv (key, value, updated_ms) VALUES ('held', '1', 0)")
print("held", flush=True)
sys.stdin.read()
"""


def hold_sqlite_lock(db: Path) -> subprocess.Popen[str]:
    """Another process holding an exclusive SQLite lock on ``db`` (returns once it holds it)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SQLITE_LOCK, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def proc_locks_readable() -> bool:
    return os.access("/proc/locks", os.R_OK)


async def test_database_locked_by_another_process_is_reported_locked_not_corrupt(db: Path) -> None:
    await make_db(db)
    holder = hold_sqlite_lock(db)
    try:
        with pytest.raises(StoreError) as err:
            await Store.open(db, busy_timeout_ms=50)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    msg = str(err.value)
    assert err.value.reason == "locked", msg
    assert "locked" in msg and "move it aside" not in msg and "corrupt" not in msg and "\n" not in msg
    if proc_locks_readable():
        assert f"pid {holder.pid}" in msg
    store = await Store.open(db)  # the file was fine all along
    await store.close()


async def test_garbled_page_is_corrupt_on_one_line(db: Path) -> None:
    await make_db(db, orders=2000)
    garble_page(db, 2)
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "corrupt"
    assert "\n" not in str(err.value) and "quick_check" in str(err.value)


def test_store_error_messages_are_one_line() -> None:
    err = StoreError("is corrupt (quick_check: *** in database main ***\nPage 3: bad\n)", path="x.db")
    assert str(err) == "state database x.db: is corrupt (quick_check: *** in database main ***; Page 3: bad; )"
