"""The write paths of the state database: orders, events, fills, snapshots, risk, state, audit.

``StoreWrites`` is a part of ``Store`` (``adapters.storage.store``); it needs the store's
``Writer``. Each write exists in two forms: ``await store.x(...)`` returns once the write
has committed, and ``store.x_nowait(...)`` queues it for the next batch and returns at
once (write-behind). The order manager writes orders ahead of the venue with the awaited
form (``insert_orders``) and everything after with the ``_nowait`` form: after a crash,
what the write-behind lost is re-established from the venue by the reconciler.

Calls (``WriteOp(call=...)``) run inside the writer's transaction, on the event loop or on
the writer's thread: they only touch the connection and the rows they captured.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from actors.model.orders import Fill, OrderDenied, OrderEvent
from actors.model.records import LedgerSnapshot, OrderRecord
from adapters.storage.audit import APPEND_AUDIT_SQL, AuditKey, canonical_json
from adapters.storage.store_rows import (
    INSERT_EVENT,
    INSERT_FILL,
    INSERT_ORDER,
    INSERT_RISK,
    SET_STATE,
    UPSERT_ORDER,
    dec,
    event_params,
    fill_params,
    now_ms,
    order_params,
)
from adapters.storage.writer import WriteOp, Writer

__all__ = ["StoreWrites", "bump_boot"]


class StoreWrites:
    """Writes of ``Store`` (see the module docstring)."""

    _writer: Writer
    _fsync_orders: bool
    audit_key: AuditKey

    async def _write(self, op: WriteOp, wait: bool) -> Any:
        if not wait:
            self._writer.enqueue(op)
            return None
        return await self._writer.submit(op)

    # -- orders -----------------------------------------------------------------------------
    async def insert_order(self, record: OrderRecord) -> None:
        """Write-ahead insert: returns once committed. Duplicate id → StoreError(reason=constraint)."""
        await self.insert_orders((record,))

    async def insert_orders(self, records: Sequence[OrderRecord]) -> None:
        """Write-ahead insert of several orders in one transaction (all or none), committed on return.

        Paper (``fsync_orders`` off): commits on the event loop, in this task, when nothing
        else is committing (tens of µs, no thread hop). ``fsync_orders`` (live): then waits
        for an fsync of the WAL on the writer thread (one hop plus the fsync).
        """
        if not records:
            return
        rows = [order_params(r) for r in records]

        def insert(conn: sqlite3.Connection) -> None:
            conn.executemany(INSERT_ORDER, rows)

        await self._writer.submit(WriteOp(call=insert, durable=self._fsync_orders))

    async def update_order(self, record: OrderRecord) -> None:
        """Upsert the order's mutable fields (status, fills, venue id, reason); awaits commit."""
        await self._write(WriteOp(UPSERT_ORDER, order_params(record), priority=0), True)

    def update_order_nowait(self, record: OrderRecord) -> None:
        """Write-behind ``update_order``."""
        self._writer.enqueue(WriteOp(UPSERT_ORDER, order_params(record), priority=0))

    async def append_order_event(self, event: OrderEvent) -> None:
        """Append to the order's event history; awaits commit."""
        await self._write(WriteOp(INSERT_EVENT, event_params(event)), True)

    def append_order_event_nowait(self, event: OrderEvent) -> None:
        """Write-behind ``append_order_event``."""
        self._writer.enqueue(WriteOp(INSERT_EVENT, event_params(event)))

    # -- fills --------------------------------------------------------------------------------
    async def insert_fill(self, fill: Fill) -> bool:
        """Store a fill; False when (venue, trade_id) is already stored. Awaits commit."""
        params = fill_params(fill)

        def insert(conn: sqlite3.Connection) -> bool:
            return conn.execute(INSERT_FILL, params).rowcount == 1

        result: bool = await self._writer.submit(WriteOp(call=insert))
        return result

    def insert_fill_nowait(self, fill: Fill) -> None:
        """Write-behind fill insert (a duplicate is silently ignored by the UNIQUE key)."""
        self._writer.enqueue(WriteOp(INSERT_FILL, fill_params(fill)))

    # -- ledger snapshots -------------------------------------------------------------------
    async def save_ledger_snapshot(self, snapshot: LedgerSnapshot) -> int:
        """Store positions and balances; returns the fill sequence it includes. Awaits commit."""
        seq: int = await self._writer.submit(_snapshot_op(snapshot))
        return seq

    def save_ledger_snapshot_nowait(self, snapshot: LedgerSnapshot) -> None:
        """Write-behind ``save_ledger_snapshot``."""
        self._writer.enqueue(_snapshot_op(snapshot))

    # -- risk events --------------------------------------------------------------------------
    async def record_risk_event(self, denial: OrderDenied) -> None:
        """Store a risk-gate denial (reason code, intent, limit, detail); awaits commit."""
        await self._write(_risk_op(denial), True)

    def record_risk_event_nowait(self, denial: OrderDenied) -> None:
        """Write-behind ``record_risk_event``."""
        self._writer.enqueue(_risk_op(denial))

    # -- key/value state ----------------------------------------------------------------------
    async def set_state(self, key: str, value: Any, *, durable: bool = True) -> None:
        """Store a JSON-serialisable value under ``key``; by default fsynced (survives power loss)."""
        await self._write(WriteOp(SET_STATE, (key, canonical_json(value), now_ms()), durable=durable), True)

    # -- audit ------------------------------------------------------------------------------------
    def _audit_op(self, kind: str, payload: Any, ts_ms: int | None) -> WriteOp:
        return WriteOp(
            APPEND_AUDIT_SQL, {"ts": ts_ms if ts_ms is not None else now_ms(), "kind": kind,
                               "payload": canonical_json(payload), "key_id": self.audit_key.key_id},
        )

    async def append_audit(self, kind: str, payload: Mapping[str, Any], *, ts_ms: int | None = None) -> None:
        """Append a hash-chained, HMAC-keyed audit row; awaits commit."""
        await self._write(self._audit_op(kind, payload, ts_ms), True)

    def append_audit_nowait(self, kind: str, payload: Mapping[str, Any], *, ts_ms: int | None = None) -> None:
        """Write-behind ``append_audit``.

        The payload is copied now (a shallow copy: its values are taken as they are) and
        encoded just before its batch commits, so the caller (the order manager, right before
        a venue submit) does not pay for the JSON. A payload that cannot be encoded makes its
        write fail alone, logged by the writer (``store.write_failed``).
        """
        params: dict[str, Any] = {"ts": ts_ms if ts_ms is not None else now_ms(), "kind": kind, "payload": None,
                                  "key_id": self.audit_key.key_id}
        captured = dict(payload)

        def encode() -> None:
            try:
                params["payload"] = canonical_json(captured)
            except (TypeError, ValueError):  # left NULL: the insert fails (NOT NULL) and is logged
                params["payload"] = None

        self._writer.enqueue(WriteOp(APPEND_AUDIT_SQL, params, prepare=encode))


def _snapshot_op(snap: LedgerSnapshot) -> WriteOp:
    positions = [
        (p.symbol, dec(p.size), dec(p.avg_price), dec(p.realized_pnl), dec(p.fees), p.fills)
        for p in snap.positions
    ]
    balances = [(asset, dec(total)) for asset, total in sorted(snap.balances.items())]
    is_ledger = snap.source == "ledger"

    def write(conn: sqlite3.Connection) -> int:
        seq: int | None = None
        if is_ledger:
            # Every fill enqueued before this snapshot is committed by now (FIFO writer).
            row = conn.execute("SELECT coalesce(max(id), 0) FROM fills").fetchone()
            seq = int(row[0]) if row else 0
        sid = conn.execute(
            "INSERT INTO ledger_snapshots (ts_ms, fill_seq, source) VALUES (?, ?, ?)",
            (snap.ts_ms, seq, snap.source),
        ).lastrowid
        if positions:
            conn.executemany(
                "INSERT INTO position_snapshots (snapshot_id, symbol, size, avg_price, realized_pnl, fees, "
                "fills) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(sid, *p) for p in positions],
            )
        if balances:
            conn.executemany(
                "INSERT INTO balance_snapshots (snapshot_id, asset, total) VALUES (?, ?, ?)",
                [(sid, *b) for b in balances],
            )
        return seq or 0

    return WriteOp(call=write)


def _risk_op(denial: OrderDenied) -> WriteOp:
    intent = denial.intent
    return WriteOp(
        INSERT_RISK,
        (denial.ts_ms or now_ms(), denial.reason, intent.strategy, intent.symbol,
         msgspec.json.encode(intent).decode(), denial.limit, denial.detail),
    )


def bump_boot(conn: sqlite3.Connection) -> int:
    """Increment the per-boot counter behind client order ids; returns the new value (a writer call)."""
    conn.execute(
        "INSERT INTO kv (key, value, updated_ms) VALUES ('coid.boot', '1', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1, updated_ms = excluded.updated_ms",
        (now_ms(),),
    )
    row = conn.execute("SELECT value FROM kv WHERE key = 'coid.boot'").fetchone()
    return int(row[0]) if row else 1
