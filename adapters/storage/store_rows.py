"""Rows of the state database: the stored record types, the SQL text, and record ↔ row conversions.

Shared by the write paths (``store_writes``) and the queries (``store_queries``). Decimals
are stored as text (``format(d, "f")``), so they round-trip exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from actors.kernel.clock import wall_ms
from actors.model.orders import Fill, OrderEvent, OrderIntent, OrderStatus, OrderType, Side
from actors.model.records import OrderRecord

__all__ = [
    "FILL_COLS",
    "INSERT_EVENT",
    "INSERT_FILL",
    "INSERT_ORDER",
    "INSERT_RISK",
    "ORDER_COLS",
    "SET_STATE",
    "UPSERT_ORDER",
    "AuditEntry",
    "OrderEventRecord",
    "RiskEventRecord",
    "dec",
    "event_params",
    "fill_from_row",
    "fill_params",
    "now_ms",
    "order_from_row",
    "order_params",
]


class OrderEventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One stored order event (append-only history of an order)."""

    id: int
    client_order_id: str
    status: OrderStatus
    previous: OrderStatus | None
    filled: Decimal
    reason: str
    trade_id: str | None
    ts_ms: int


class RiskEventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One stored risk denial."""

    id: int
    ts_ms: int
    reason: str
    strategy: str
    symbol: str
    intent: OrderIntent
    limit: str
    detail: str


class AuditEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One audit-log row."""

    id: int
    ts_ms: int
    kind: str
    payload: Any
    prev_hash: str
    hash: str


ORDER_COLS = (
    "client_order_id, venue, venue_order_id, strategy, symbol, side, type, size, price, status, "
    "filled, avg_price, fees, tag, intent_id, reason, created_ms, updated_ms, "
    "trigger_price, trailing_bps, display_size, parent, list_id"
)
INSERT_ORDER = f"INSERT INTO orders ({ORDER_COLS}) VALUES ({', '.join('?' * 23)})"
UPSERT_ORDER = (
    INSERT_ORDER + " ON CONFLICT(client_order_id) DO UPDATE SET venue_order_id = excluded.venue_order_id, "
    "status = excluded.status, filled = excluded.filled, avg_price = excluded.avg_price, fees = excluded.fees, "
    "reason = excluded.reason, updated_ms = excluded.updated_ms"
)
INSERT_EVENT = (
    "INSERT INTO order_events (client_order_id, status, previous, filled, reason, trade_id, ts_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
FILL_COLS = (
    "venue, trade_id, client_order_id, venue_order_id, symbol, side, price, size, fee, fee_currency, "
    "liquidity, ts_ms"
)
INSERT_FILL = (
    f"INSERT INTO fills ({FILL_COLS}) VALUES ({', '.join('?' * 12)}) ON CONFLICT(venue, trade_id) DO NOTHING"
)
INSERT_RISK = (
    "INSERT INTO risk_events (ts_ms, reason, strategy, symbol, intent_json, limit_value, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
SET_STATE = (
    "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms"
)


def dec(d: Decimal) -> str:
    """A Decimal as stored (plain notation, exact)."""
    return format(d, "f")


def _opt_dec(d: Decimal | None) -> str | None:
    return None if d is None else format(d, "f")


def _to_dec(s: str | None) -> Decimal | None:
    return None if s is None else Decimal(s)


def now_ms() -> int:
    """Wall time for rows written without a timestamp of their own."""
    return wall_ms()


def order_params(r: OrderRecord) -> tuple[Any, ...]:
    """An order as the parameters of ``INSERT_ORDER`` / ``UPSERT_ORDER``."""
    return (
        r.client_order_id, r.venue, r.venue_order_id, r.strategy, r.symbol, r.side.value, r.type.value,
        dec(r.size), _opt_dec(r.price), r.status.value, dec(r.filled), _opt_dec(r.avg_price), dec(r.fees),
        r.tag, r.intent_id, r.reason, r.created_ms, r.updated_ms,
        _opt_dec(r.trigger_price), r.trailing_bps, _opt_dec(r.display_size), r.parent, r.list_id,
    )


def order_from_row(row: Sequence[Any]) -> OrderRecord:
    """An order from a row of ``ORDER_COLS``."""
    return OrderRecord(
        client_order_id=row[0], venue=row[1], venue_order_id=row[2], strategy=row[3], symbol=row[4],
        side=Side(row[5]), type=OrderType(row[6]), size=Decimal(row[7]), price=_to_dec(row[8]),
        status=OrderStatus(row[9]), filled=Decimal(row[10]), avg_price=_to_dec(row[11]), fees=Decimal(row[12]),
        tag=row[13], intent_id=row[14], reason=row[15], created_ms=row[16], updated_ms=row[17],
        trigger_price=_to_dec(row[18]), trailing_bps=row[19], display_size=_to_dec(row[20]), parent=row[21],
        list_id=row[22],
    )


def fill_params(f: Fill) -> tuple[Any, ...]:
    """A fill as the parameters of ``INSERT_FILL``."""
    return (
        f.venue, f.trade_id, f.client_order_id, f.venue_order_id, f.symbol, f.side.value, dec(f.price),
        dec(f.size), dec(f.fee), f.fee_currency, f.liquidity, f.ts_ms,
    )


def fill_from_row(row: Sequence[Any]) -> Fill:
    """A fill from a row of ``FILL_COLS``."""
    return Fill(
        venue=row[0], trade_id=row[1], client_order_id=row[2], venue_order_id=row[3], symbol=row[4],
        side=Side(row[5]), price=Decimal(row[6]), size=Decimal(row[7]), fee=Decimal(row[8]),
        fee_currency=row[9], liquidity=row[10], ts_ms=row[11],
    )


def event_params(e: OrderEvent) -> tuple[Any, ...]:
    """An order event as the parameters of ``INSERT_EVENT``."""
    return (
        e.client_order_id, e.status.value, e.previous.value if e.previous is not None else None,
        dec(e.filled), e.reason, e.fill.trade_id if e.fill is not None else None, e.ts_ms or now_ms(),
    )
