"""The queries of the state database: orders, events, fills, positions, snapshots, risk, state, audit.

``StoreQueries`` is a part of ``Store`` (``adapters.storage.store``). Every read first
flushes the writer (so it sees every write issued before it), then runs on the separate
read-only connection, off the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from actors.model.orders import OPEN_STATUSES, Fill, OrderIntent, OrderStatus
from actors.model.positions import PositionView, held_quantity
from actors.model.records import LedgerSnapshot, OrderRecord
from adapters.storage.errors import StoreError
from adapters.storage.store_rows import (
    FILL_COLS,
    ORDER_COLS,
    AuditEntry,
    OrderEventRecord,
    RiskEventRecord,
    fill_from_row,
    order_from_row,
)
from adapters.storage.writer import Writer

__all__ = ["StoreQueries"]

_OPEN_LIST = tuple(sorted({*OPEN_STATUSES, OrderStatus.INITIALIZED}))


class StoreQueries:
    """Reads of ``Store`` (see the module docstring)."""

    path: Path
    _writer: Writer
    _reader: aiosqlite.Connection
    _closed: bool

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._closed:
            raise StoreError("is closed", path=self.path, reason="closed")
        await self._writer.flush()
        try:
            rows = await self._reader.execute_fetchall(sql, params)
        except Exception as exc:
            raise StoreError(f"read failed: {exc}", path=self.path, reason="read_failed") from exc
        return list(rows)

    # -- orders -----------------------------------------------------------------------------
    async def order(self, client_order_id: str) -> OrderRecord | None:
        """One order by client order id."""
        rows = await self._read(f"SELECT {ORDER_COLS} FROM orders WHERE client_order_id = ?", (client_order_id,))
        return order_from_row(rows[0]) if rows else None

    async def orders(
        self,
        *,
        status: OrderStatus | Iterable[OrderStatus] | None = None,
        symbol: str | None = None,
        strategy: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[OrderRecord]:
        """Orders, newest first, filtered by status(es), symbol, strategy and creation time."""
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            statuses = [status] if isinstance(status, OrderStatus) else list(status)
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(s.value for s in statuses)
        if symbol is not None:
            where.append("symbol = ?")
            params.append(symbol)
        if strategy is not None:
            where.append("strategy = ?")
            params.append(strategy)
        if since_ms is not None:
            where.append("created_ms >= ?")
            params.append(since_ms)
        sql = f"SELECT {ORDER_COLS} FROM orders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_ms DESC, rowid DESC LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [order_from_row(r) for r in await self._read(sql, params)]

    async def open_orders(self) -> list[OrderRecord]:
        """Every order the venue may still act on (oldest first)."""
        sql = (f"SELECT {ORDER_COLS} FROM orders WHERE status IN ({', '.join('?' * len(_OPEN_LIST))}) "
               "ORDER BY created_ms, rowid")
        return [order_from_row(r) for r in await self._read(sql, [s.value for s in _OPEN_LIST])]

    async def filled_awaiting_fills(self, since_ms: int) -> list[OrderRecord]:
        """Orders the venue reported FILLED (changed at or after ``since_ms``) whose stored fills do not
        add up to their size yet: their fills were still on their way when the daemon stopped."""
        sql = (f"SELECT {ORDER_COLS} FROM orders WHERE status = ? AND updated_ms >= ? AND filled != size "
               "ORDER BY created_ms, rowid")
        rows = [order_from_row(r) for r in await self._read(sql, (OrderStatus.FILLED.value, since_ms))]
        return [r for r in rows if r.filled < r.size]  # text compare above; exact decimals here

    async def order_events(self, client_order_id: str) -> list[OrderEventRecord]:
        """An order's event history, oldest first."""
        rows = await self._read(
            "SELECT id, client_order_id, status, previous, filled, reason, trade_id, ts_ms FROM order_events "
            "WHERE client_order_id = ? ORDER BY id",
            (client_order_id,),
        )
        return [
            OrderEventRecord(
                id=r[0], client_order_id=r[1], status=OrderStatus(r[2]),
                previous=OrderStatus(r[3]) if r[3] is not None else None, filled=Decimal(r[4]), reason=r[5],
                trade_id=r[6], ts_ms=r[7],
            )
            for r in rows
        ]

    # -- fills --------------------------------------------------------------------------------
    async def fills(
        self,
        *,
        client_order_id: str | None = None,
        symbol: str | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Fill]:
        """Fills in the order they were stored, filtered by order, symbol and venue time."""
        where: list[str] = []
        params: list[Any] = []
        if client_order_id is not None:
            where.append("client_order_id = ?")
            params.append(client_order_id)
        if symbol is not None:
            where.append("symbol = ?")
            params.append(symbol)
        if since_ms is not None:
            where.append("ts_ms >= ?")
            params.append(since_ms)
        sql = f"SELECT {FILL_COLS} FROM fills"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [fill_from_row(r) for r in await self._read(sql, params)]

    async def strategy_positions(self) -> dict[tuple[str, str], Decimal]:
        """Signed position per (strategy, symbol), summed exactly from every stored fill, each
        net of a fee charged in the base asset (``positions.held_quantity``, as the ledger counts)."""
        rows = await self._read(
            "SELECT o.strategy, f.symbol, f.side, f.size, f.fee, f.fee_currency FROM fills f "
            "JOIN orders o ON o.client_order_id = f.client_order_id"
        )
        out: dict[tuple[str, str], Decimal] = {}
        for strategy, symbol, side, size, fee, fee_currency in rows:
            key = (str(strategy), str(symbol))
            held = held_quantity(str(symbol), str(side), Decimal(size), Decimal(fee or 0), str(fee_currency or ""))
            out[key] = out.get(key, Decimal(0)) + held
        return out

    async def fills_after(self, fill_seq: int) -> list[tuple[int, Fill]]:
        """Every fill stored after sequence ``fill_seq`` (restart replay), with its sequence."""
        rows = await self._read(f"SELECT id, {FILL_COLS} FROM fills WHERE id > ? ORDER BY id", (fill_seq,))
        return [(r[0], fill_from_row(r[1:])) for r in rows]

    async def fills_for_orders(self, client_order_ids: Iterable[str]) -> list[Fill]:
        """Every stored fill of the given orders, in stored order."""
        ids = list(client_order_ids)
        out: list[tuple[int, Fill]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = await self._read(
                f"SELECT id, {FILL_COLS} FROM fills WHERE client_order_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            out.extend((r[0], fill_from_row(r[1:])) for r in rows)
        out.sort(key=lambda t: t[0])
        return [f for _, f in out]

    async def fill_keys_since(self, since_ms: int, limit: int = 1_000_000) -> list[tuple[str, str]]:
        """(venue, trade_id) of fills with venue time >= since_ms, newest ``limit``, oldest first."""
        rows = await self._read(
            "SELECT venue, trade_id FROM (SELECT id, venue, trade_id FROM fills WHERE ts_ms >= ? "
            "ORDER BY id DESC LIMIT ?) ORDER BY id",
            (since_ms, limit),
        )
        return [(r[0], r[1]) for r in rows]

    # -- ledger snapshots -------------------------------------------------------------------
    async def latest_ledger_snapshot(self, source: str = "ledger") -> LedgerSnapshot | None:
        """The newest snapshot of ``source`` ("ledger", or "venue" for recorded venue balances)."""
        head = await self._read(
            "SELECT id, ts_ms, fill_seq FROM ledger_snapshots WHERE source = ? ORDER BY id DESC LIMIT 1", (source,)
        )
        if not head:
            return None
        sid, ts_ms, seq = head[0]
        prow = await self._read(
            "SELECT symbol, size, avg_price, realized_pnl, fees, fills FROM position_snapshots "
            "WHERE snapshot_id = ? ORDER BY symbol",
            (sid,),
        )
        brow = await self._read("SELECT asset, total FROM balance_snapshots WHERE snapshot_id = ?", (sid,))
        return LedgerSnapshot(
            ts_ms=ts_ms,
            fill_seq=seq or 0,
            source=source,
            positions=tuple(
                PositionView(symbol=r[0], size=Decimal(r[1]), avg_price=Decimal(r[2]),
                             realized_pnl=Decimal(r[3]), fees=Decimal(r[4]), fills=r[5])
                for r in prow
            ),
            balances={r[0]: Decimal(r[1]) for r in brow},
        )

    # -- risk events --------------------------------------------------------------------------
    async def risk_events(
        self, *, reason: str | None = None, since_ms: int | None = None, limit: int = 100, offset: int = 0
    ) -> list[RiskEventRecord]:
        """Denials, newest first."""
        where: list[str] = []
        params: list[Any] = []
        if reason is not None:
            where.append("reason = ?")
            params.append(reason)
        if since_ms is not None:
            where.append("ts_ms >= ?")
            params.append(since_ms)
        sql = "SELECT id, ts_ms, reason, strategy, symbol, intent_json, limit_value, detail FROM risk_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [
            RiskEventRecord(
                id=r[0], ts_ms=r[1], reason=r[2], strategy=r[3], symbol=r[4],
                intent=msgspec.json.decode(r[5], type=OrderIntent), limit=r[6], detail=r[7],
            )
            for r in await self._read(sql, params)
        ]

    # -- key/value state ----------------------------------------------------------------------
    async def get_state(self, key: str, default: Any = None) -> Any:
        """A JSON value stored under ``key`` (kill switch, trading state, …), or ``default``."""
        rows = await self._read("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    # -- audit ------------------------------------------------------------------------------------
    async def audit_entries(self, *, after_id: int = 0, limit: int = 100) -> list[AuditEntry]:
        """Audit rows with id > after_id, oldest first."""
        rows = await self._read(
            "SELECT id, ts_ms, kind, payload, prev_hash, hash FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [AuditEntry(id=r[0], ts_ms=r[1], kind=r[2], payload=json.loads(r[3]), prev_hash=r[4], hash=r[5])
                for r in rows]
