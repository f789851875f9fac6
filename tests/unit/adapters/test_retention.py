"""Retention, the storage side (``adapters.storage.retention``): what is archived, what stays, and
that the audit chain, positions and the file size survive it."""

from __future__ import annotations

import gzip
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.model.orders import Fill, OrderEvent, OrderStatus, OrderType, Side
from actors.model.positions import PositionView
from actors.model.records import LedgerSnapshot, OrderRecord
from adapters.storage import retention
from adapters.storage.audit import iter_segment, verify_audit
from adapters.storage.errors import StoreError
from adapters.storage.store import Store

DAY = 86_400_000
T0 = 1_700_000_000_000
KEEP = 3 * DAY


async def add_order(store: Store, coid: str, ts: int, *, status: OrderStatus = OrderStatus.FILLED,
                    side: Side = Side.BUY, size: str = "1", strategy: str = "s") -> None:
    """An order written ahead, submitted, filled (unless still open) and audited, all at ``ts``."""
    rec = OrderRecord(client_order_id=coid, venue="paper", strategy=strategy, symbol="X/Y", side=side,
                      type=OrderType.MARKET, size=Decimal(size), status=OrderStatus.SUBMITTED, created_ms=ts,
                      updated_ms=ts)
    await store.insert_orders([rec])
    await store.append_order_event(OrderEvent(client_order_id=coid, strategy=strategy, symbol="X/Y",
                                              status=OrderStatus.SUBMITTED, ts_ms=ts))
    await store.append_audit("order.submitted", {"client_order_id": coid}, ts_ms=ts)
    if status in (OrderStatus.SUBMITTED, OrderStatus.ACCEPTED):
        await store.update_order(msgspec.structs.replace(rec, status=status))
        return
    await store.insert_fill(Fill(venue="paper", trade_id=f"t-{coid}", client_order_id=coid, symbol="X/Y", side=side,
                                 price=Decimal(2), size=Decimal(size), ts_ms=ts))
    await store.append_order_event(OrderEvent(client_order_id=coid, strategy=strategy, symbol="X/Y", status=status,
                                              previous=OrderStatus.SUBMITTED, filled=Decimal(size), ts_ms=ts))
    await store.update_order(msgspec.structs.replace(rec, status=status, filled=Decimal(size)))
    await store.append_audit("order.fill", {"client_order_id": coid}, ts_ms=ts)


async def snapshot(store: Store, ts: int) -> int:
    return await store.save_ledger_snapshot(LedgerSnapshot(ts_ms=ts, balances={"Y": Decimal(100)}))


def segment_rows(archive: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for f in sorted(archive.glob("segment-*.jsonl.gz")):
        for line in iter_segment(f):
            if "table" in line:
                out.setdefault(line["table"], []).append(line["row"])
    return out


def live_ids(db: Path, sql: str) -> list[Any]:
    with sqlite3.connect(db) as conn:
        rows = [r[0] for r in conn.execute(sql)]
    conn.close()
    return rows


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = await Store.open(tmp_path / "state.db")
    yield s
    await s.close()


async def test_archives_finished_old_orders_with_their_rows_and_keeps_the_rest(store: Store, tmp_path: Path) -> None:
    for day in range(5):
        await add_order(store, f"old{day}", T0 + day * DAY)
    await add_order(store, "open-old", T0 + DAY, status=OrderStatus.ACCEPTED)
    await add_order(store, "recent", T0 + 9 * DAY)
    await snapshot(store, T0 + 10 * DAY)
    archive = tmp_path / "archive"
    seg = await store.archive_segment(now_ms=T0 + 10 * DAY, keep_ms=KEEP, archive_dir=archive)
    assert seg is not None
    assert (seg.seq, seg.orders, seg.order_events, seg.fills, seg.skipped_orders) == (1, 5, 10, 5, 0)
    assert await store.archive_segment(now_ms=T0 + 10 * DAY, keep_ms=KEEP, archive_dir=archive) is None
    rows = segment_rows(archive)
    assert sorted(r["client_order_id"] for r in rows["orders"]) == [f"old{d}" for d in range(5)]
    assert {r["client_order_id"] for r in rows["order_events"]} == {f"old{d}" for d in range(5)}
    assert {r["client_order_id"] for r in rows["fills"]} == {f"old{d}" for d in range(5)}
    # Audit rows older than the cutoff (stamped with business time here), as a prefix of the chain.
    assert [r["id"] for r in rows["audit_log"]] == list(range(1, 1 + seg.audit_rows))
    assert all(r["ts_ms"] < T0 + 7 * DAY for r in rows["audit_log"])
    db = store.path
    assert sorted(live_ids(db, "SELECT client_order_id FROM orders")) == ["open-old", "recent"]
    assert set(live_ids(db, "SELECT client_order_id FROM order_events")) == {"open-old", "recent"}
    assert live_ids(db, "SELECT client_order_id FROM fills") == ["recent"]
    assert min(live_ids(db, "SELECT id FROM audit_log")) == seg.audit_rows + 1


async def test_an_open_orders_rows_are_never_archived_and_the_schema_refuses_it(store: Store, tmp_path: Path) -> None:
    await add_order(store, "open", T0, status=OrderStatus.ACCEPTED)
    for day in range(1, 4):
        await add_order(store, f"done{day}", T0 + day * DAY)
    await snapshot(store, T0 + 30 * DAY)
    while await store.archive_segment(now_ms=T0 + 30 * DAY, keep_ms=KEEP, archive_dir=tmp_path / "a"):
        pass
    assert "open" not in {r["client_order_id"] for r in segment_rows(tmp_path / "a")["orders"]}
    assert (await store.order("open")) is not None and len(await store.order_events("open")) == 1
    await store.close()
    with sqlite3.connect(store.path) as conn:
        for sql in ("DELETE FROM orders WHERE client_order_id = 'open'",
                    "DELETE FROM order_events WHERE client_order_id = 'open'"):
            with pytest.raises(sqlite3.IntegrityError, match="unfinished order"):
                conn.execute(sql)
        with pytest.raises(sqlite3.IntegrityError, match="append-only after the recorded archive cut"):
            conn.execute("DELETE FROM audit_log")
    conn.close()


async def test_fills_after_the_newest_ledger_snapshot_keep_their_orders_live(store: Store, tmp_path: Path) -> None:
    await snapshot(store, T0)  # before any fill: a restart replays every fill
    for day in range(3):
        await add_order(store, f"o{day}", T0 + day * DAY)
    await add_order(store, "newest", T0 + 20 * DAY)
    seg = await store.archive_segment(now_ms=T0 + 20 * DAY, keep_ms=KEEP, archive_dir=tmp_path / "a")
    assert seg is not None and seg.orders == 0 and seg.audit_rows == 6
    await snapshot(store, T0 + 20 * DAY)
    seg = await store.archive_segment(now_ms=T0 + 20 * DAY, keep_ms=KEEP, archive_dir=tmp_path / "a")
    assert seg is not None and seg.orders == 3


async def test_positions_are_unchanged_by_archival(store: Store, tmp_path: Path) -> None:
    sides = [Side.BUY, Side.BUY, Side.SELL, Side.BUY, Side.SELL, Side.BUY]
    for i, side in enumerate(sides):
        await add_order(store, f"o{i}", T0 + i * DAY, side=side, size=str(i + 1), strategy=f"s{i % 2}")
    position = PositionView(symbol="X/Y", size=Decimal(4), avg_price=Decimal(2), realized_pnl=Decimal(0),
                            fees=Decimal(0), fills=5)
    await store.save_ledger_snapshot(LedgerSnapshot(ts_ms=T0 + 5 * DAY, positions=(position,)))
    await add_order(store, "after", T0 + 9 * DAY)  # after the snapshot: replayed at a restart
    before = (await store.strategy_positions(), await store.latest_ledger_snapshot(),
              await store.fills_after((await store.latest_ledger_snapshot() or LedgerSnapshot(ts_ms=0)).fill_seq))
    seg = await store.archive_segment(now_ms=T0 + 10 * DAY, keep_ms=KEEP, archive_dir=tmp_path / "a")
    assert seg is not None and seg.fills == 6
    snap = await store.latest_ledger_snapshot()
    assert snap is not None
    after = (await store.strategy_positions(), snap, await store.fills_after(snap.fill_seq))
    assert after == before
    assert before[0] == {("s0", "X/Y"): Decimal(1 - 3 - 5), ("s1", "X/Y"): Decimal(2 + 4 + 6), ("s", "X/Y"): 1}


async def test_verify_passes_across_the_cut_with_and_without_the_archive(store: Store, tmp_path: Path) -> None:
    for day in range(12):
        await add_order(store, f"o{day}", T0 + day * DAY)
    await snapshot(store, T0 + 12 * DAY)
    archive = tmp_path / "a"
    segs = []
    while seg := await store.archive_segment(now_ms=T0 + 12 * DAY, keep_ms=KEEP, archive_dir=archive,
                                             max_orders=2, max_audit_rows=3):
        segs.append(seg)
    assert len(segs) > 3 and sum(s.audit_rows for s in segs) == 18  # days 0-8, two rows each
    await store.close()
    live = verify_audit(store.path)
    assert live.ok, live.summary()
    assert live.cut_id == 18 and live.archived_rows is None and "give --archive" in live.summary()
    full = verify_audit(store.path, archive_dir=archive)
    assert full.ok, full.summary()
    assert (full.rows, full.archived_rows, full.segments) == (24, 18, len(segs))


def _rewrite_segment(path: Path, change: Any) -> None:
    lines = list(iter_segment(path))
    change(lines)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for obj in lines:
            f.write(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n")


async def test_a_tampered_or_removed_segment_is_caught_only_with_the_archive(store: Store, tmp_path: Path) -> None:
    for day in range(8):
        await add_order(store, f"o{day}", T0 + day * DAY)
    await snapshot(store, T0 + 8 * DAY)
    archive = tmp_path / "a"
    while await store.archive_segment(now_ms=T0 + 8 * DAY, keep_ms=KEEP, archive_dir=archive, max_orders=2):
        pass
    await store.close()
    first, second = sorted(archive.glob("segment-*.jsonl.gz"))[:2]

    def edit_fill(lines: list[dict[str, Any]]) -> None:
        fill = next(x for x in lines if x.get("table") == "fills")
        fill["row"]["size"] = "1000"

    _rewrite_segment(second, edit_fill)
    assert verify_audit(store.path).ok  # the live rows and the signed records are intact
    bad = verify_audit(store.path, archive_dir=archive)
    assert not bad.ok and bad.scope == f"archive segment {second}" and "content changed" in bad.problem
    first.unlink()
    gone = verify_audit(store.path, archive_dir=archive)
    assert not gone.ok and gone.scope == f"archive segment {first}" and "missing" in gone.problem


async def test_a_crash_between_the_segment_write_and_the_delete_is_idempotent(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in range(6):
        await add_order(store, f"o{day}", T0 + day * DAY)
    await snapshot(store, T0 + 6 * DAY)
    archive = tmp_path / "a"
    real_delete = retention._delete

    def crash(export: Any, key: Any, now_ms: int) -> Any:
        def call(conn: sqlite3.Connection) -> None:
            raise OSError("power lost")
        return call

    monkeypatch.setattr(retention, "_delete", crash)
    with pytest.raises(StoreError):
        await store.archive_segment(now_ms=T0 + 6 * DAY, keep_ms=KEEP, archive_dir=archive)
    leftover = archive / "segment-00000001.jsonl.gz"
    assert leftover.is_file()  # written and durable, but never recorded: every row is still live
    (archive / "segment-00000002.jsonl.gz.tmp").write_bytes(b"half")
    assert len(await store.orders(limit=100)) == 6
    assert verify_audit(store.path, archive_dir=archive).ok
    monkeypatch.setattr(retention, "_delete", real_delete)
    seg = await store.archive_segment(now_ms=T0 + 6 * DAY, keep_ms=KEEP, archive_dir=archive)
    assert seg is not None and seg.seq == 1 and seg.orders == 3
    assert sorted(p.name for p in archive.iterdir()) == ["segment-00000001.jsonl.gz"]
    rows = segment_rows(archive)
    assert len(rows["orders"]) == len({r["client_order_id"] for r in rows["orders"]}) == 3
    assert len(await store.orders(limit=100)) == 3
    await store.close()
    assert verify_audit(store.path, archive_dir=archive).ok


async def test_an_order_changed_after_the_export_stays_live(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in range(3):
        await add_order(store, f"o{day}", T0 + day * DAY)
    await add_order(store, "newest", T0 + 9 * DAY)
    await snapshot(store, T0 + 9 * DAY)
    real_delete = retention._delete

    def late_event_first(export: Any, key: Any, now_ms: int) -> Any:
        delete = real_delete(export, key, now_ms)

        def call(conn: sqlite3.Connection) -> Any:  # a late event for o1 lands between export and delete
            conn.execute("INSERT INTO order_events (client_order_id, status, previous, filled, reason, trade_id, "
                         "ts_ms) VALUES ('o1', 'FILLED', 'FILLED', '1', 'late', NULL, ?)", (T0 + DAY,))
            return delete(conn)
        return call

    monkeypatch.setattr(retention, "_delete", late_event_first)
    seg = await store.archive_segment(now_ms=T0 + 9 * DAY, keep_ms=KEEP, archive_dir=tmp_path / "a")
    assert seg is not None and (seg.orders, seg.skipped_orders) == (2, 1)
    assert (await store.order("o1")) is not None and len(await store.order_events("o1")) == 3


async def test_audit_rows_stamped_with_another_clock_are_archived_by_business_time_marks(
    store: Store, tmp_path: Path
) -> None:
    for i in range(4):  # no ts_ms: stamped with the wall clock, years after this market time
        await store.append_audit("replay.event", {"i": i})
    archive = tmp_path / "a"
    assert await store.archive_segment(now_ms=T0, keep_ms=KEEP, archive_dir=archive) is None  # marks row 4 at T0
    await store.append_audit("replay.event", {"i": 4})
    seg = await store.archive_segment(now_ms=T0 + KEEP, keep_ms=KEEP, archive_dir=archive)
    assert seg is not None and seg.audit_rows == 4  # written before T0, one keep ago in business time
    await store.close()
    assert verify_audit(store.path, archive_dir=archive).ok


async def test_the_live_database_stops_growing_once_retention_applies(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "a"
    pages: list[int] = []
    for day in range(36):
        for i in range(40):
            await add_order(store, f"d{day}-{i}", T0 + day * DAY + i)
        await snapshot(store, T0 + day * DAY + 100)
        while await store.archive_segment(now_ms=T0 + day * DAY + 100, keep_ms=KEEP, archive_dir=archive):
            pass
        await store.flush()
        pages.append(int(live_ids(store.path, "PRAGMA page_count")[0]))
    assert len(await store.orders(limit=1000)) <= 4 * 40  # about keep_days' worth stays live
    # Freed pages are reused (no VACUUM): the file stops growing once a keep's worth is archived each day
    # (after the indexes settled into their churn): the last 18 days add at most a page or two.
    assert max(pages[18:]) - pages[18] <= 2, pages
    assert pages[18] > pages[0]
    assert len(list(archive.glob("segment-*.jsonl.gz"))) >= 30


async def test_rows_removed_behind_a_forged_cut_are_caught_without_the_archive(store: Store, tmp_path: Path) -> None:
    for day in range(6):
        await add_order(store, f"o{day}", T0 + day * DAY)
    await snapshot(store, T0 + 6 * DAY)
    assert await store.archive_segment(now_ms=T0 + 6 * DAY, keep_ms=KEEP, archive_dir=tmp_path / "a")
    await store.close()
    with sqlite3.connect(store.path) as conn:  # without the key: move the cut on and delete what it now covers
        cut = json.loads(conn.execute("SELECT value FROM kv WHERE key = 'audit.cut'").fetchone()[0])
        row_id, row_hash = conn.execute("SELECT id, hash FROM audit_log WHERE id = ?", (cut["id"] + 2,)).fetchone()
        conn.execute("UPDATE kv SET value = ? WHERE key = 'audit.cut'",
                     (json.dumps({**cut, "id": row_id, "hash": row_hash}),))
        conn.execute("DELETE FROM audit_log WHERE id <= ?", (row_id,))
    conn.close()
    bad = verify_audit(store.path)
    assert not bad.ok and bad.scope == "archive cut" and "HMAC" in bad.problem
    with sqlite3.connect(store.path) as conn:  # or drop the cut altogether
        conn.execute("DELETE FROM kv WHERE key = 'audit.cut'")
    conn.close()
    gone = verify_audit(store.path)
    assert not gone.ok and "first row is not id 1" in gone.problem
