"""Contingent orders in the state database (the ``contingent_orders`` table, schema v4).

Rows are upserted whole: the manager owns their content (``body`` is its JSON). The
committed form (``save_contingents``) is the write-ahead, the ``_nowait`` form a
write-behind for state whose loss is harmless (a trailing level is re-derived looser).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from actors.model.contingent import ACTIVE_CONTINGENT_STATUSES, ContingentKind, ContingentRow, ContingentStatus
from actors.model.orders import ExecutionMode
from adapters.storage.writer import WriteOp, Writer

__all__ = ["StoreContingent"]

_COLS = "id, strategy, symbol, kind, mode, status, active, body, created_ms, updated_ms"
_UPSERT = (
    f"INSERT INTO contingent_orders ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT(id) DO UPDATE SET mode = excluded.mode, status = excluded.status, active = excluded.active, "
    "body = excluded.body, updated_ms = excluded.updated_ms"
)


def _params(r: ContingentRow) -> tuple[Any, ...]:
    return (r.id, r.strategy, r.symbol, r.kind.value, r.mode.value, r.status.value,
            1 if r.status in ACTIVE_CONTINGENT_STATUSES else 0, r.body, r.created_ms, r.updated_ms)


def _row(r: Sequence[Any]) -> ContingentRow:
    return ContingentRow(id=r[0], strategy=r[1], symbol=r[2], kind=ContingentKind(r[3]), mode=ExecutionMode(r[4]),
                         status=ContingentStatus(r[5]), body=r[7], created_ms=r[8], updated_ms=r[9])


class StoreContingent:
    """Contingent-order reads and writes of ``Store`` (``actors.ports.stores.ContingentStore``)."""

    _writer: Writer
    _fsync_orders: bool

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError  # provided by StoreQueries

    async def save_contingents(self, rows: Sequence[ContingentRow]) -> None:
        """Upsert in one transaction, committed (and fsynced when orders are) on return."""
        if not rows:
            return
        params = [_params(r) for r in rows]

        def upsert(conn: sqlite3.Connection) -> None:
            conn.executemany(_UPSERT, params)

        await self._writer.submit(WriteOp(call=upsert, durable=self._fsync_orders))

    def save_contingents_nowait(self, rows: Sequence[ContingentRow]) -> None:
        """Upsert behind: queued for the writer's next transaction."""
        for r in rows:
            self._writer.enqueue(WriteOp(_UPSERT, _params(r)))

    async def active_contingents(self) -> list[ContingentRow]:
        """Every contingent order not yet final, oldest first."""
        rows = await self._read(
            f"SELECT {_COLS} FROM contingent_orders WHERE active = 1 ORDER BY created_ms, rowid")
        return [_row(r) for r in rows]

    async def contingents_ended_since(self, status: ContingentStatus, since_ms: int) -> list[ContingentRow]:
        """Final contingent orders of ``status`` last changed at or after ``since_ms``, oldest first
        (at start-up: the failures a notification may not have gone out for)."""
        rows = await self._read(
            f"SELECT {_COLS} FROM contingent_orders WHERE active = 0 AND status = ? AND updated_ms >= ? "
            "ORDER BY updated_ms, rowid", (status.value, since_ms))
        return [_row(r) for r in rows]

    async def contingent(self, contingent_id: str) -> ContingentRow | None:
        """One contingent order by id."""
        rows = await self._read(f"SELECT {_COLS} FROM contingent_orders WHERE id = ?", (contingent_id,))
        return _row(rows[0]) if rows else None

    async def recent_contingents(self, limit: int = 100, *, active_only: bool = False) -> list[ContingentRow]:
        """The newest contingent orders first."""
        where = "WHERE active = 1 " if active_only else ""
        rows = await self._read(
            f"SELECT {_COLS} FROM contingent_orders {where}ORDER BY created_ms DESC, rowid DESC LIMIT ?", (limit,))
        return [_row(r) for r in rows]
