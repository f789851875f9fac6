"""State database: migrations, WAL, one writer under concurrency, typed errors, fills, audit, ids."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from actors.model.orders import (
    Fill,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
)
from actors.model.positions import PositionView
from actors.model.records import LedgerSnapshot, OrderRecord
from adapters.storage import Store, StoreError, state_db_path, verify_audit
from adapters.storage import writer as writer_module
from adapters.storage.migrations import APPLICATION_ID, SCHEMA_VERSION
from adapters.storage.writer import WriteOp, Writer

D = Decimal


def order(coid: str, status: OrderStatus = OrderStatus.SUBMITTED, **kw: object) -> OrderRecord:
    fields: dict[str, object] = {
        "client_order_id": coid, "venue": "paper", "strategy": "s1", "symbol": "XRP/ETH", "side": Side.BUY,
        "type": OrderType.LIMIT, "size": D("10"), "price": D("0.00031"), "status": status,
        "created_ms": 1000, "updated_ms": 1000,
    }
    fields.update(kw)
    return OrderRecord(**fields)  # type: ignore[arg-type]


def fill(trade_id: str, coid: str = "c1", **kw: object) -> Fill:
    fields: dict[str, object] = {
        "venue": "paper", "trade_id": trade_id, "client_order_id": coid, "symbol": "XRP/ETH", "side": Side.BUY,
        "price": D("0.0003"), "size": D("4"), "fee": D("0.0000012"), "fee_currency": "ETH", "ts_ms": 2000,
    }
    fields.update(kw)
    return Fill(**fields)  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "aaiti-paper-paper.db"


async def test_new_database_migrated_to_current_version(db: Path) -> None:
    store = await Store.open(db)
    await store.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    finally:
        con.close()
    assert {"orders", "order_events", "fills", "position_snapshots", "balance_snapshots", "risk_events", "kv",
            "audit_log", "ledger_snapshots"} <= tables


async def test_reopen_existing_database_keeps_rows(db: Path) -> None:
    store = await Store.open(db)
    await store.insert_order(order("c1"))
    await store.close()
    store = await Store.open(db)
    try:
        got = await store.order("c1")
        assert got is not None and got.size == D("10") and got.price == D("0.00031")
        assert store.schema_version == SCHEMA_VERSION
    finally:
        await store.close()


async def test_concurrent_writers_and_readers_never_database_locked(db: Path) -> None:
    store = await Store.open(db)
    # An outside reader holding a read transaction open the whole time (WAL: must not block us).
    outside = sqlite3.connect(db, timeout=0.1)
    outside.execute("BEGIN")
    outside.execute("SELECT count(*) FROM orders").fetchone()

    async def worker(w: int) -> None:
        for i in range(25):
            coid = f"w{w}-{i}"
            await store.insert_order(order(coid))
            store.update_order_nowait(order(coid, OrderStatus.ACCEPTED))
            store.append_order_event_nowait(
                OrderEvent(client_order_id=coid, strategy="s1", symbol="XRP/ETH", status=OrderStatus.ACCEPTED))
            assert await store.insert_fill(fill(f"t-{w}-{i}", coid))
            await store.set_state(f"k{w}", i, durable=(i % 10 == 0))
            await store.append_audit("test", {"w": w, "i": i})
            if i % 5 == 0:
                await store.open_orders()

    try:
        await asyncio.gather(*(worker(w) for w in range(40)))
        assert len(await store.orders(limit=10_000)) == 1000
        assert len(await store.orders(status=OrderStatus.ACCEPTED, limit=10_000)) == 1000
        assert len(await store.fills(limit=10_000)) == 1000
        assert await store.get_state("k7") == 24
        assert store.stats().writer.failed_ops == 0
    finally:
        outside.rollback()
        outside.close()
        await store.close()
    report = verify_audit(db)
    assert report.ok and report.rows == 1000, report.summary()


def write_garbage(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database at all\n" * 200)


def trash_pages(db: Path, page: int = 4096) -> None:
    """Keep the header page, overwrite the start of every later page."""
    data = bytearray(db.read_bytes())
    for p in range(1, len(data) // page):
        data[p * page : p * page + 16] = b"\xff" * 16
    db.write_bytes(bytes(data))


async def test_garbage_file_raises_store_error_naming_file(db: Path) -> None:
    write_garbage(db)
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "corrupt"
    assert str(db) in str(err.value) and "\n" not in str(err.value)


async def test_malformed_database_raises_store_error(db: Path) -> None:
    store = await Store.open(db)
    await store.insert_orders([order(f"c{i}") for i in range(2000)])
    await store.close()
    trash_pages(db)
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "corrupt"
    assert str(db) in str(err.value)


async def test_newer_schema_version_raises_store_error(db: Path) -> None:
    store = await Store.open(db)
    await store.close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "newer_schema"
    assert f"schema version {SCHEMA_VERSION + 1}" in str(err.value) and str(db) in str(err.value)


async def test_foreign_sqlite_file_raises_store_error(db: Path) -> None:
    db.parent.mkdir(parents=True)
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE something_else (x)")
    con.close()
    with pytest.raises(StoreError) as err:
        await Store.open(db)
    assert err.value.reason == "foreign"


async def test_second_open_of_same_file_raises_locked(db: Path) -> None:
    store = await Store.open(db)
    try:
        with pytest.raises(StoreError) as err:
            await Store.open(db)
        assert err.value.reason == "locked"
    finally:
        await store.close()
    again = await Store.open(db)  # the lock is released on close
    await again.close()


async def test_insert_fill_duplicate_trade_id_returns_false(db: Path) -> None:
    store = await Store.open(db)
    try:
        assert await store.insert_fill(fill("t1"))
        assert not await store.insert_fill(fill("t1", size=D("99")))
        assert await store.insert_fill(fill("t1", venue="other"))  # unique per venue
        store.insert_fill_nowait(fill("t1"))  # write-behind duplicate: ignored, not an error
        stored = await store.fills(limit=10)
        assert [(f.venue, f.size) for f in stored] == [("paper", D("4")), ("other", D("4"))]
        assert stored[0] == fill("t1")
        assert store.stats().writer.failed_ops == 0
    finally:
        await store.close()


async def test_duplicate_client_order_id_raises_constraint_and_spares_neighbours(db: Path) -> None:
    store = await Store.open(db)
    try:
        await store.insert_order(order("c1"))
        store.append_audit_nowait("before", {})
        dup = asyncio.ensure_future(store.insert_order(order("c1")))
        store.append_audit_nowait("after", {})
        with pytest.raises(StoreError) as err:
            await dup
        assert err.value.reason == "constraint"
        assert [e.kind for e in await store.audit_entries()] == ["before", "after"]
    finally:
        await store.close()
    assert verify_audit(db).ok


async def test_audit_chain_verifies_ok(db: Path) -> None:
    store = await Store.open(db)
    try:
        for i in range(5):
            await store.append_audit("kill_switch", {"on": i % 2 == 0, "amount": D("1.50"), "i": i})
        for i in range(5):
            store.append_audit_nowait("reconcile.discrepancy", {"i": i})
        await store.flush()
        # Readable while the daemon has it open.
        report = verify_audit(db)
    finally:
        await store.close()
    assert report.ok, report.summary()
    assert report.rows == 10 and report.last_id == 10
    assert "OK" in report.summary()


async def test_write_behind_audit_keeps_the_payload_as_given_and_an_unencodable_one_fails_alone(db: Path) -> None:
    store = await Store.open(db)
    try:
        payload: dict[str, object] = {"size": D("1.50"), "side": Side.BUY}
        store.append_audit_nowait("first", payload)
        payload["size"] = D("9")  # changed after the call: the row keeps what was given
        store.append_audit_nowait("bad", {"x": object()})
        store.append_audit_nowait("last", {"i": 1})
        await store.flush()
        entries = await store.audit_entries()
        assert store.stats().writer.failed_ops == 1
    finally:
        await store.close()
    assert [e.kind for e in entries] == ["first", "last"]
    assert entries[0].payload == {"side": "buy", "size": "1.50"}
    assert verify_audit(db).ok


async def test_audit_tampered_row_found_by_id(db: Path) -> None:
    store = await Store.open(db)
    for i in range(6):
        await store.append_audit("admin.command", {"i": i})
    await store.close()
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_log_no_update")
    con.execute("UPDATE audit_log SET payload = '{\"i\":99}' WHERE id = 4")
    con.commit()
    con.close()
    report = verify_audit(db)
    assert not report.ok
    assert report.bad_id == 4
    assert "hash mismatch" in report.problem
    assert "row 4" in report.summary()


async def test_audit_deleted_rows_detected(db: Path) -> None:
    store = await Store.open(db)
    for i in range(6):
        await store.append_audit("admin.command", {"i": i})
    await store.close()
    con = sqlite3.connect(db)
    con.execute("DROP TRIGGER audit_log_no_delete")
    con.execute("DELETE FROM audit_log WHERE id = 6")
    con.commit()
    con.close()
    tail = verify_audit(db)
    assert not tail.ok and tail.bad_id is None and "head" in tail.problem
    con = sqlite3.connect(db)
    con.execute("DELETE FROM audit_log WHERE id = 2")
    con.commit()
    con.close()
    middle = verify_audit(db)
    assert not middle.ok and middle.bad_id == 3


async def test_audit_log_rejects_update_through_sql(db: Path) -> None:
    store = await Store.open(db)
    await store.append_audit("x", {})
    await store.close()
    con = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE audit_log SET kind = 'y'")
    con.close()


def test_verify_audit_missing_file_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as err:
        verify_audit(tmp_path / "nope.db")
    assert err.value.reason == "missing"


async def test_client_order_ids_unique_across_reopen(db: Path) -> None:
    seen: set[str] = set()
    pattern = re.compile(r"^[A-Za-z0-9._:/-]{1,36}$")
    boots = []
    for _ in range(3):
        store = await Store.open(db)
        boots.append(store.boot)
        for _ in range(500):
            coid = store.next_client_order_id("mm1")
            assert pattern.match(coid), coid
            assert coid not in seen
            seen.add(coid)
        await store.close()  # and a "crash": the next open never reuses the boot stem
    assert boots == [1, 2, 3]
    assert len(seen) == 1500


async def test_client_order_id_bad_prefix_raises(db: Path) -> None:
    store = await Store.open(db)
    try:
        for bad in ("", "has space", "x" * 13, "é"):
            with pytest.raises(ValueError):
                store.next_client_order_id(bad)
    finally:
        await store.close()


async def test_write_behind_rows_visible_to_reads(db: Path) -> None:
    store = await Store.open(db)
    try:
        await store.insert_order(order("c1"))
        store.update_order_nowait(order("c1", OrderStatus.PARTIALLY_FILLED, filled=D("4"), avg_price=D("0.0003")))
        store.append_order_event_nowait(OrderEvent(
            client_order_id="c1", strategy="s1", symbol="XRP/ETH", status=OrderStatus.PARTIALLY_FILLED,
            previous=OrderStatus.SUBMITTED, filled=D("4"), fill=fill("t1"), ts_ms=5))
        got = await store.order("c1")
        assert got is not None and got.status is OrderStatus.PARTIALLY_FILLED and got.filled == D("4")
        events = await store.order_events("c1")
        assert [(e.previous, e.status, e.trade_id) for e in events] == [
            (OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED, "t1")]
        assert [o.client_order_id for o in await store.open_orders()] == ["c1"]
        store.update_order_nowait(order("c1", OrderStatus.CANCELED))
        assert await store.open_orders() == []
    finally:
        await store.close()


async def test_order_queries_filter_and_page(db: Path) -> None:
    store = await Store.open(db)
    try:
        await store.insert_orders([
            order(f"c{i}", symbol="XRP/ETH" if i % 2 else "ADA/ETH", strategy=f"s{i % 3}", created_ms=1000 + i)
            for i in range(10)
        ])
        assert [o.client_order_id for o in await store.orders(limit=3)] == ["c9", "c8", "c7"]
        assert [o.client_order_id for o in await store.orders(limit=3, offset=3)] == ["c6", "c5", "c4"]
        assert {o.symbol for o in await store.orders(symbol="ADA/ETH")} == {"ADA/ETH"}
        assert len(await store.orders(strategy="s0")) == 4
        assert len(await store.orders(since_ms=1008)) == 2
        assert await store.order("missing") is None
    finally:
        await store.close()


async def test_state_survives_reopen(db: Path) -> None:
    store = await Store.open(db)
    await store.set_state("risk.kill_switch", {"on": True, "reason": "operator"})
    await store.set_state("risk.trading_state", "HALTED")
    await store.close()
    store = await Store.open(db)
    try:
        assert await store.get_state("risk.kill_switch") == {"on": True, "reason": "operator"}
        assert await store.get_state("risk.trading_state") == "HALTED"
        assert await store.get_state("nope", "dflt") == "dflt"
    finally:
        await store.close()


async def test_risk_event_roundtrip(db: Path) -> None:
    store = await Store.open(db)
    try:
        intent = OrderIntent(strategy="s1", symbol="XRP/ETH", side=Side.BUY, size=D("100"), tag="x")
        await store.record_risk_event(OrderDenied(intent=intent, reason="MAX_POSITION", limit="1000",
                                                  detail="would be 1100", ts_ms=7))
        store.record_risk_event_nowait(OrderDenied(intent=intent, reason="STALE_DATA", ts_ms=8))
        events = await store.risk_events()
        assert [e.reason for e in events] == ["STALE_DATA", "MAX_POSITION"]
        assert events[1].intent == intent and events[1].limit == "1000" and events[1].detail == "would be 1100"
        assert [e.reason for e in await store.risk_events(reason="MAX_POSITION")] == ["MAX_POSITION"]
    finally:
        await store.close()


async def test_ledger_snapshot_records_fill_sequence(db: Path) -> None:
    store = await Store.open(db)
    try:
        store.insert_fill_nowait(fill("t1"))
        store.insert_fill_nowait(fill("t2"))
        snap = LedgerSnapshot(
            ts_ms=9, positions=(PositionView(symbol="XRP/ETH", size=D("8"), avg_price=D("0.0003"), fills=2),),
            balances={"ETH": D("9.9976"), "XRP": D("8")},
        )
        store.save_ledger_snapshot_nowait(snap)
        store.insert_fill_nowait(fill("t3"))
        latest = await store.latest_ledger_snapshot()
        assert latest is not None and latest.fill_seq == 2
        assert latest.positions == snap.positions and latest.balances == snap.balances
        after = await store.fills_after(latest.fill_seq)
        assert [(seq, f.trade_id) for seq, f in after] == [(3, "t3")]
        assert await store.latest_ledger_snapshot("venue") is None
        assert [f.trade_id for f in await store.fills_for_orders(["c1"])] == ["t1", "t2", "t3"]
        assert await store.fill_keys_since(0) == [("paper", "t1"), ("paper", "t2"), ("paper", "t3")]
    finally:
        await store.close()


async def test_closed_store_refuses_writes(db: Path) -> None:
    store = await Store.open(db)
    await store.close()
    with pytest.raises(StoreError) as err:
        store.update_order_nowait(order("c1"))
    assert err.value.reason == "closed"
    with pytest.raises(StoreError):
        await store.open_orders()
    await store.close()  # idempotent


def test_state_db_path_paper_and_live_never_share(tmp_path: Path) -> None:
    paper = state_db_path(tmp_path, "paper", "binance")
    live = state_db_path(tmp_path, "live", "binance")
    assert paper != live
    assert paper == tmp_path / "aaiti-paper-binance.db"
    assert live == tmp_path / "aaiti-live-binance.db"
    assert state_db_path(tmp_path, "live", "../../etc/x").parent == tmp_path
    with pytest.raises(ValueError):
        state_db_path(tmp_path, "demo", "x")  # type: ignore[arg-type]


# -- the writer: commits on the loop, durable writes fsynced apart, other processes' locks ------
@pytest.fixture
def datasyncs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Files the writers fdatasync, in order."""
    synced: list[str] = []

    def datasync(fd: int) -> None:
        os.fsync(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(writer_module, "_datasync", datasync)
    return synced


async def test_idle_writer_commits_an_awaited_write_in_the_callers_task(db: Path) -> None:
    store = await Store.open(db)
    try:
        others_ran = asyncio.Event()
        asyncio.get_running_loop().call_soon(others_ran.set)
        await store.insert_order(order("c1"))  # committed without yielding to the loop
        assert not others_ran.is_set()
        outside = sqlite3.connect(db)
        try:
            assert outside.execute("SELECT status FROM orders WHERE client_order_id = 'c1'").fetchone() == (
                "SUBMITTED",)
        finally:
            outside.close()
        await others_ran.wait()
    finally:
        await store.close()


def wal_of(db: Path) -> str:
    return str(db.resolve()) + "-wal"


async def test_durable_writes_complete_after_an_fsync_of_the_wal(db: Path, datasyncs: list[str]) -> None:
    wal = wal_of(db)
    store = await Store.open(db)  # the boot counter is durable
    try:
        assert datasyncs == [wal]
        await store.insert_order(order("c1"))  # paper: no fsync
        store.append_audit_nowait("x", {})
        await store.flush()
        assert datasyncs == [wal]
        await store.set_state("risk.trading_state", "HALTED")  # durable by default
        assert datasyncs == [wal, wal]
        await store.set_state("k", 1, durable=False)
        assert len(datasyncs) == 2
    finally:
        await store.close()
    store = await Store.open(db, fsync_orders=True)  # live: every write-ahead is fsynced before it returns
    try:
        before = len(datasyncs)
        await store.insert_orders([order("c2"), order("c3")])
        assert datasyncs[before:] == [wal]
        assert store.stats().writer.failed_ops == 0
    finally:
        await store.close()


async def test_concurrent_durable_writes_share_fsyncs(db: Path, datasyncs: list[str]) -> None:
    store = await Store.open(db, fsync_orders=True)
    try:
        before = len(datasyncs)
        await asyncio.gather(*(store.insert_order(order(f"c{i}")) for i in range(50)))
        assert 1 <= len(datasyncs) - before < 50
        assert len(await store.orders(limit=100)) == 50
    finally:
        await store.close()


async def test_write_lock_held_by_another_process_is_waited_for_off_the_loop(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_thread = asyncio.Event()
    commit_on_thread = Writer._commit_on_thread

    async def watched(self: Writer, batch: list[WriteOp]) -> None:
        on_thread.set()
        await commit_on_thread(self, batch)

    monkeypatch.setattr(Writer, "_commit_on_thread", watched)
    store = await Store.open(db)
    outside = sqlite3.connect(db, isolation_level=None)
    try:
        outside.execute("BEGIN IMMEDIATE")  # another process's write transaction
        insert = asyncio.ensure_future(store.insert_order(order("c1")))
        await on_thread.wait()  # the write moved to the writer thread, to wait for the lock there
        assert not insert.done()  # ... while the event loop runs on
        outside.execute("ROLLBACK")
        await insert
        assert (await store.order("c1")) is not None
        await store.insert_order(order("c2"))  # and the next write commits on the loop again
        assert store.stats().writer.failed_ops == 0
    finally:
        outside.close()
        await store.close()


async def test_writer_checkpoints_the_wal_on_its_own_thread(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (x)")
    writer = Writer(conn, path, synchronous="NORMAL", log=structlog.get_logger(), checkpoint_interval_s=0.0)
    writer.start()
    try:
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)  # never on the loop
        await writer.submit(WriteOp("INSERT INTO t VALUES (?)", (1,)))
        task = writer._checkpoint_task
        assert task is not None
        await task
        assert writer.checkpoints == 1
    finally:
        await writer.close()
    assert not path.with_name("w.db-wal").exists()  # the last close checkpointed and removed it
