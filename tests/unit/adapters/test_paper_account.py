"""The paper account file: earlier files still open, foreign files are refused, failed commits retry."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.model.market import Quote, Trade
from actors.model.orders import Fill, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.ports.venue import VenueUnavailable
from adapters.paper_venue import PaperVenue
from adapters.storage import Store, StoreError
from adapters.storage import writer as writer_module
from adapters.storage.paper_account_schema import (
    PAPER_ACCOUNT_APPLICATION_ID,
    PAPER_ACCOUNT_SCHEMA_VERSION,
    open_paper_account_database,
)
from config.schema.trading import InstrumentSection, PaperVenueSection

D = Decimal
SYM = "XRP/ETH"
INSTRUMENTS = {
    SYM: InstrumentSection(
        base="XRP", quote="ETH", tick_size=D("0.00000001"), step_size=D("1"), min_qty=D("1"),
        max_qty=D("1000000"), min_notional=D("0.001"),
    )
}

# The account file exactly as the paper venue wrote it before it was versioned.
UNVERSIONED_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS orders (
        client_order_id TEXT PRIMARY KEY, venue_order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
        type TEXT NOT NULL, status TEXT NOT NULL, size TEXT NOT NULL, price TEXT, filled TEXT NOT NULL,
        cost TEXT NOT NULL, fees TEXT NOT NULL, locked TEXT NOT NULL, seq INTEGER NOT NULL,
        created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, reason TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS orders_status ON orders(status)",
    """CREATE TABLE IF NOT EXISTS fills (
        trade_id TEXT PRIMARY KEY, client_order_id TEXT NOT NULL, venue_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, size TEXT NOT NULL, fee TEXT NOT NULL,
        fee_currency TEXT NOT NULL, liquidity TEXT NOT NULL, ts_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS fills_ts ON fills(ts_ms)",
    "CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, free TEXT NOT NULL, locked TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def config(**kw: Any) -> PaperVenueSection:
    base: dict[str, Any] = {"maker_fee_bps": 10.0, "taker_fee_bps": 10.0, "slippage_bps": 10.0, "fsync": False,
                            "initial_balances": {"ETH": D("10"), "XRP": D("1000")}}
    base.update(kw)
    return PaperVenueSection(**base)


def req(cid: str, side: Side, size: str, price: str | None = None) -> OrderRequest:
    return OrderRequest(client_order_id=cid, symbol=SYM, side=side,
                        type=OrderType.LIMIT if price is not None else OrderType.MARKET,
                        size=D(size), price=D(price) if price is not None else None)


def write_unversioned_account(path: Path) -> None:
    """An account with one filled market buy and one resting limit sell, as the old code left it."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        for stmt in UNVERSIONED_SCHEMA:
            con.execute(stmt)
        con.execute("INSERT INTO orders VALUES ('m1','P1','XRP/ETH','buy','market','FILLED','100',NULL,'100',"
                    "'0.2002','0.0002002','0',1,1000,1000,'')")
        con.execute("INSERT INTO orders VALUES ('l1','P2','XRP/ETH','sell','limit','ACCEPTED','50','0.0021','0',"
                    "'0','0','50',2,2000,2000,'')")
        con.execute("INSERT INTO fills VALUES ('paper-1','m1','P1','XRP/ETH','buy','0.002002','100','0.0002002',"
                    "'ETH','taker',1000)")
        con.executemany("INSERT INTO balances VALUES (?, ?, ?)",
                        [("ETH", "9.7995998", "0"), ("XRP", "1050", "50")])
        con.executemany("INSERT INTO meta VALUES (?, ?)", [
            ("initialized", "500"), ("schema_version", "1"), ("next_order_id", "3"), ("next_trade_id", "2"),
        ])
    finally:
        con.close()


def pragma(path: Path, name: str) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        con.close()


async def test_an_account_written_before_versioning_opens_with_its_state(tmp_path: Path) -> None:
    path = tmp_path / "paper-venue-paper.db"
    write_unversioned_account(path)
    v = PaperVenue(path, config(initial_balances={"ETH": D("999")}), INSTRUMENTS)
    await v.start()
    try:
        bal = await v.balances()
        assert (bal["ETH"].free, bal["XRP"].free, bal["XRP"].locked) == (D("9.7995998"), D("1050"), D("50"))
        [open_order] = await v.open_orders()
        assert (open_order.client_order_id, open_order.venue_order_id) == ("l1", "P2")
        m1 = await v.query("m1", SYM)
        assert m1 is not None and (m1.status, m1.avg_price) == (OrderStatus.FILLED, D("0.002002"))
        assert [f.trade_id for f in await v.fills_since(0)] == ["paper-1"]
        v.on_market(Trade(symbol=SYM, ts_ms=3, price=0.0021, size=100.0, side="buy"))
        fills = await v.fills_since(0)
        assert [(f.trade_id, f.client_order_id) for f in fills] == [("paper-1", "m1"), ("paper-2", "l1")]
        v.on_market(Quote(symbol=SYM, ts_ms=4, bid=0.002, ask=0.0021))
        out = await v.submit(req("m2", Side.SELL, "10"))
        assert out.venue_order_id == "P3"
    finally:
        await v.close()
    assert pragma(path, "user_version") == PAPER_ACCOUNT_SCHEMA_VERSION
    assert pragma(path, "application_id") == PAPER_ACCOUNT_APPLICATION_ID
    con = sqlite3.connect(path)  # the tables are the same: plain readers of the file keep working
    try:
        assert con.execute("SELECT status FROM orders WHERE client_order_id = 'l1'").fetchone() == ("FILLED",)
    finally:
        con.close()


async def test_a_state_database_is_refused_as_foreign_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "aaiti-paper-paper.db"
    store = await Store.open(path)
    await store.close()
    v = PaperVenue(path, config(), INSTRUMENTS)
    with pytest.raises(StoreError) as err:
        await v.start()
    assert err.value.reason == "foreign"
    store = await Store.open(path)  # still a good state database
    await store.close()


async def test_a_paper_account_is_not_a_state_database(tmp_path: Path) -> None:
    path = tmp_path / "paper-venue-paper.db"
    v = PaperVenue(path, config(), INSTRUMENTS)
    await v.start()
    await v.close()
    with pytest.raises(StoreError) as err:
        await Store.open(path)
    assert err.value.reason == "foreign"


async def test_a_newer_account_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    v = PaperVenue(path, config(), INSTRUMENTS)
    await v.start()
    await v.close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {PAPER_ACCOUNT_SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(StoreError) as err:
        await PaperVenue(path, config(), INSTRUMENTS).start()
    assert err.value.reason == "newer_schema"


async def test_a_second_venue_on_the_same_account_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    v1 = PaperVenue(path, config(), INSTRUMENTS)
    await v1.start()
    try:
        with pytest.raises(StoreError) as err:
            await PaperVenue(path, config(), INSTRUMENTS).start()
        assert err.value.reason == "locked"
    finally:
        await v1.close()
    v2 = PaperVenue(path, config(), INSTRUMENTS)  # the lock went with the first venue
    await v2.start()
    await v2.close()


@pytest.mark.parametrize("fsync", [True, False])
async def test_fsync_option_fsyncs_the_wal_before_a_change_completes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    synced: list[str] = []  # files fdatasynced by the writer, in order

    def datasync(fd: int) -> None:
        os.fsync(fd)
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(writer_module, "_datasync", datasync)
    path = tmp_path / "p.db"
    v = PaperVenue(path, config(fsync=fsync), INSTRUMENTS)
    await v.start()
    try:
        writer = v._store._writer
        assert writer is not None
        # The commit itself never fsyncs (it runs on the event loop): 1 = NORMAL.
        assert writer.connection.execute("PRAGMA synchronous").fetchone() == (1,)
        v.on_market(Quote(symbol=SYM, ts_ms=1, bid=0.00199, ask=0.002))
        before = len(synced)
        order = await v.submit(req("c1", Side.BUY, "100"))
        assert order.status is OrderStatus.FILLED
        if fsync:  # the change completed only after the WAL holding it was fsynced
            assert len(synced) > before and synced[-1] == str(path.resolve()) + "-wal"
            assert writer.fsyncs == len(synced)
        else:
            assert synced == [] and writer.fsyncs == 0
    finally:
        await v.close()


async def test_failed_commit_fails_the_caller_keeps_the_change_and_publishes_it_after_the_retry(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.db"
    v = PaperVenue(path, config(), INSTRUMENTS)
    await v.start()
    try:
        stream = v.updates()
        v.on_market(Quote(symbol=SYM, ts_ms=1, bid=0.00199, ask=0.002))
        con = sqlite3.connect(path, isolation_level=None)
        con.execute("CREATE TRIGGER no_fills BEFORE INSERT ON fills BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        with pytest.raises(VenueUnavailable) as err:
            await v.submit(req("c1", Side.BUY, "100"))
        assert err.value.reason == "STORAGE"
        assert v.storage_errors == 1
        con.execute("DROP TRIGGER no_fills")
        con.close()
        fill, order = [await asyncio.wait_for(anext(stream), 5.0) for _ in range(2)]
        assert isinstance(fill, Fill) and fill.client_order_id == "c1"
        assert isinstance(order, VenueOrder) and order.status is OrderStatus.FILLED
        assert [f.client_order_id for f in await v.fills_since(0)] == ["c1"]
    finally:
        await v.close()


# -- the file's protections (the same as a state database's) ----------------------------------
async def start_refused(path: Path) -> StoreError:
    with pytest.raises(StoreError) as err:
        await PaperVenue(path, config(), INSTRUMENTS).start()
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    return err.value


async def test_a_zero_byte_account_file_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(b"")
    err = await start_refused(path)
    assert err.reason == "empty" and "0 bytes" in str(err)
    assert path.stat().st_size == 0  # not started over as a fresh account


async def test_an_account_file_without_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    con = sqlite3.connect(path)  # a valid SQLite file that holds nothing (its tables were dropped)
    con.execute("CREATE TABLE t (x)")
    con.execute("DROP TABLE t")
    con.close()
    assert path.stat().st_size > 0
    err = await start_refused(path)
    assert err.reason == "empty" and "no tables" in str(err)


async def test_an_account_that_lost_a_table_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    v = PaperVenue(path, config(), INSTRUMENTS)
    await v.start()
    await v.close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE fills")
    con.close()
    err = await start_refused(path)
    assert err.reason == "incomplete" and "fills" in str(err)


async def test_a_garbage_account_file_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.write_bytes(b"this is not a database at all\n" * 200)
    assert (await start_refused(path)).reason == "corrupt"


async def test_an_account_file_locked_by_another_process_is_locked_not_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    holder = sqlite3.connect(path, isolation_level=None)  # rollback journal: a write lock keeps readers out
    try:
        for stmt in UNVERSIONED_SCHEMA:
            holder.execute(stmt)
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("INSERT INTO meta VALUES ('k', 'v')")
        with pytest.raises(StoreError) as err:
            await open_paper_account_database(path, busy_timeout_ms=20)
        assert err.value.reason == "locked" and "is locked" in str(err.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_a_missing_account_file_with_a_leftover_wal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.with_name(path.name + "-wal").write_bytes(b"\x37\x7f\x06\x82" + b"\0" * 60)
    err = await start_refused(path)
    assert err.reason == "missing" and "-wal" in str(err)
    assert not path.exists()


async def test_a_new_account_is_made_beside_the_file_and_renamed_into_place(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    path.with_name(path.name + ".new").write_bytes(b"half-written by a crash")
    v = PaperVenue(path, config(), INSTRUMENTS)
    await v.start()
    await v.close()
    assert not path.with_name(path.name + ".new").exists()
    assert pragma(path, "application_id") == PAPER_ACCOUNT_APPLICATION_ID
    assert pragma(path, "user_version") == PAPER_ACCOUNT_SCHEMA_VERSION
