"""Contingent orders in the state database: round trip, active set, and the writer's ordering that
lets a crossed trigger's state ride with its child's write-ahead."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus
from actors.model.orders import ExecutionMode, OrderStatus, OrderType, Side
from actors.model.records import OrderRecord
from adapters.storage import Store


def row(cid: str, status: ContingentStatus = ContingentStatus.WORKING, created_ms: int = 1,
        **kw: object) -> ContingentRow:
    base: dict[str, object] = dict(id=cid, strategy="s1", symbol="XRP/ETH", kind=ContingentKind.BRACKET,
                                   mode=ExecutionMode.EMULATED, status=status, body='{"child": "c1"}',
                                   created_ms=created_ms, updated_ms=created_ms)
    base.update(kw)
    return ContingentRow(**base)  # type: ignore[arg-type]


async def test_rows_round_trip_and_only_unfinished_ones_are_active(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        await store.save_contingents([row("k1"), row("k2", created_ms=2), row("k3", ContingentStatus.DONE, 3)])
        assert [r.id for r in await store.active_contingents()] == ["k1", "k2"]
        assert await store.contingent("k1") == row("k1")
        # An upsert changes status, body and mode but never identity or creation time.
        await store.save_contingents([row("k1", ContingentStatus.CANCELED, created_ms=99, body='{"x": 1}',
                                          updated_ms=5, mode=ExecutionMode.NATIVE)])
        k1 = await store.contingent("k1")
        assert k1 is not None and (k1.status, k1.body, k1.created_ms, k1.updated_ms, k1.mode) == (
            ContingentStatus.CANCELED, '{"x": 1}', 1, 5, ExecutionMode.NATIVE)
        assert [r.id for r in await store.active_contingents()] == ["k2"]
        assert [r.id for r in await store.recent_contingents(2)] == ["k3", "k2"]
        assert [r.id for r in await store.recent_contingents(10, active_only=True)] == ["k2"]
        assert await store.contingent("nope") is None
    finally:
        await store.close()


async def test_ended_since_finds_final_rows_of_a_status_changed_in_the_window(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "s.db")
    try:
        F = ContingentStatus.FAILED
        await store.save_contingents([
            row("old", F, created_ms=1, updated_ms=10), row("new", F, created_ms=2, updated_ms=30),
            row("newer", F, created_ms=3, updated_ms=40), row("done", ContingentStatus.DONE, 4, updated_ms=50),
            row("working", created_ms=5, updated_ms=60),
        ])
        assert [r.id for r in await store.contingents_ended_since(F, 30)] == ["new", "newer"]
        assert [r.id for r in await store.contingents_ended_since(ContingentStatus.DONE, 0)] == ["done"]
        assert await store.contingents_ended_since(F, 41) == []
    finally:
        await store.close()


async def test_state_queued_behind_commits_with_the_next_write_ahead(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = await Store.open(path)
    try:
        store.save_contingents_nowait([row("k1", ContingentStatus.TRIGGERED)])
        child = OrderRecord(client_order_id="c1", venue="paper", strategy="s1", symbol="XRP/ETH", side=Side.SELL,
                            type=OrderType.MARKET, size=Decimal(5), status=OrderStatus.SUBMITTED, parent="k1",
                            created_ms=1, updated_ms=1)
        await store.insert_orders([child])  # the child's write-ahead: returns once committed
        # Another connection (no flush of our queue) sees both: the trigger's state committed no
        # later than the child it released.
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            assert con.execute("SELECT status FROM contingent_orders WHERE id = 'k1'").fetchone() == ("TRIGGERED",)
            assert con.execute("SELECT parent FROM orders WHERE client_order_id = 'c1'").fetchone() == ("k1",)
        finally:
            con.close()
    finally:
        await store.close()
