"""``Store``: typed async access to an aaiti state database (orders, fills, risk, audit).

Writes go through the database's single ``Writer`` (group commit). Each write exists in
two forms: ``await store.x(...)`` returns once the write has committed, and
``store.x_nowait(...)`` queues it for the next batch and returns at once (write-behind;
``await store.flush()`` waits for everything queued). The order manager writes orders
ahead of the venue with the awaited form and everything after with the ``_nowait`` form:
after a crash, what the write-behind lost is re-established from the venue by the
reconciler. Reads first flush (so they see every write issued before them), then run on
a separate read-only connection.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec
import structlog

from actors.kernel.clock import wall_ms
from actors.model.orders import (
    OPEN_STATUSES,
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
from adapters.storage.audit import (
    APPEND_AUDIT_SQL,
    AuditKey,
    anchor_audit_log,
    canonical_json,
    default_audit_key_path,
    load_audit_key,
)
from adapters.storage.database import (
    SyncMode,
    WriteOp,
    Writer,
    WriterStats,
    acquire_process_lock,
    open_database,
    release_process_lock,
)
from adapters.storage.errors import StoreError
from adapters.storage.migrations import SCHEMA_VERSION

COID_MAX_LEN = 36
COID_PREFIX_MAX_LEN = 12
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_OPEN_LIST = tuple(sorted({*OPEN_STATUSES, OrderStatus.INITIALIZED}))


def _b36(n: int) -> str:
    if n == 0:
        return "0"
    out = []
    while n:
        n, r = divmod(n, 36)
        out.append(_B36[r])
    return "".join(reversed(out))


def _dec(d: Decimal) -> str:
    return format(d, "f")


def _opt_dec(d: Decimal | None) -> str | None:
    return None if d is None else format(d, "f")


def _to_dec(s: str | None) -> Decimal | None:
    return None if s is None else Decimal(s)


def _now_ms() -> int:
    return wall_ms()


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


class StoreStats(msgspec.Struct, frozen=True, kw_only=True):
    """Store counters for metrics and the admin."""

    path: str
    schema_version: int
    boot: int
    client_order_ids_issued: int
    writer: WriterStats


_ORDER_COLS = (
    "client_order_id, venue, venue_order_id, strategy, symbol, side, type, size, price, status, "
    "filled, avg_price, fees, tag, intent_id, reason, created_ms, updated_ms"
)
_INSERT_ORDER = f"INSERT INTO orders ({_ORDER_COLS}) VALUES ({', '.join('?' * 18)})"
_UPSERT_ORDER = (
    _INSERT_ORDER + " ON CONFLICT(client_order_id) DO UPDATE SET venue_order_id = excluded.venue_order_id, "
    "status = excluded.status, filled = excluded.filled, avg_price = excluded.avg_price, fees = excluded.fees, "
    "reason = excluded.reason, updated_ms = excluded.updated_ms"
)
_INSERT_EVENT = (
    "INSERT INTO order_events (client_order_id, status, previous, filled, reason, trade_id, ts_ms) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_FILL_COLS = (
    "venue, trade_id, client_order_id, venue_order_id, symbol, side, price, size, fee, fee_currency, "
    "liquidity, ts_ms"
)
_INSERT_FILL = (
    f"INSERT INTO fills ({_FILL_COLS}) VALUES ({', '.join('?' * 12)}) ON CONFLICT(venue, trade_id) DO NOTHING"
)
_INSERT_RISK = (
    "INSERT INTO risk_events (ts_ms, reason, strategy, symbol, intent_json, limit_value, detail) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SET_STATE = (
    "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_ms = excluded.updated_ms"
)
def _order_params(r: OrderRecord) -> tuple[Any, ...]:
    return (
        r.client_order_id, r.venue, r.venue_order_id, r.strategy, r.symbol, r.side.value, r.type.value,
        _dec(r.size), _opt_dec(r.price), r.status.value, _dec(r.filled), _opt_dec(r.avg_price), _dec(r.fees),
        r.tag, r.intent_id, r.reason, r.created_ms, r.updated_ms,
    )


def _order_from_row(row: Sequence[Any]) -> OrderRecord:
    return OrderRecord(
        client_order_id=row[0], venue=row[1], venue_order_id=row[2], strategy=row[3], symbol=row[4],
        side=Side(row[5]), type=OrderType(row[6]), size=Decimal(row[7]), price=_to_dec(row[8]),
        status=OrderStatus(row[9]), filled=Decimal(row[10]), avg_price=_to_dec(row[11]), fees=Decimal(row[12]),
        tag=row[13], intent_id=row[14], reason=row[15], created_ms=row[16], updated_ms=row[17],
    )


def _fill_params(f: Fill) -> tuple[Any, ...]:
    return (
        f.venue, f.trade_id, f.client_order_id, f.venue_order_id, f.symbol, f.side.value, _dec(f.price),
        _dec(f.size), _dec(f.fee), f.fee_currency, f.liquidity, f.ts_ms,
    )


def _fill_from_row(row: Sequence[Any]) -> Fill:
    return Fill(
        venue=row[0], trade_id=row[1], client_order_id=row[2], venue_order_id=row[3], symbol=row[4],
        side=Side(row[5]), price=Decimal(row[6]), size=Decimal(row[7]), fee=Decimal(row[8]),
        fee_currency=row[9], liquidity=row[10], ts_ms=row[11],
    )


def _event_params(e: OrderEvent) -> tuple[Any, ...]:
    return (
        e.client_order_id, e.status.value, e.previous.value if e.previous is not None else None,
        _dec(e.filled), e.reason, e.fill.trade_id if e.fill is not None else None, e.ts_ms or _now_ms(),
    )


class Store:
    """An open state database. Create with ``await Store.open(path)``; ``await close()``."""

    def __init__(
        self,
        path: Path,
        writer: Writer,
        reader: aiosqlite.Connection,
        lock_fd: int | None,
        *,
        schema_version: int,
        fsync_orders: bool,
        audit_key: AuditKey,
    ) -> None:
        """Use ``Store.open``; this only assembles already-open parts."""
        self.path = path
        self.audit_key = audit_key
        self.schema_version = schema_version
        self._writer = writer
        self._reader = reader
        self._lock_fd = lock_fd
        self._fsync_orders = fsync_orders
        self._closed = False
        self.boot = 0
        self._coid_stem = ""
        self._coid_seq = 0

    # -- lifecycle ------------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        path: Path | str,
        *,
        synchronous: SyncMode = "NORMAL",
        fsync_orders: bool = False,
        busy_timeout_ms: int = 5000,
        quick_check: bool = True,
        lock: bool = True,
        max_batch: int = 2000,
        create: bool = True,
        audit_key: AuditKey | None = None,
    ) -> Store:
        """Open the database at ``path`` (created only if missing and ``create``).

        Raises ``StoreError`` with a one-line message; a file that exists but is empty or
        lost its tables is refused, never started as a fresh account. ``fsync_orders``
        makes order inserts durable against power loss (live trading); ``lock`` takes an
        exclusive advisory lock so a second process cannot open it. ``audit_key`` keys the
        audit log; None uses ``load_audit_key`` on ``audit.key`` beside the database,
        creating it on first use. A log keyed with another key is refused (``audit_key``).
        """
        p = Path(path)
        log = structlog.get_logger("aaiti").bind(actor="store", db=str(p))
        lock_fd = acquire_process_lock(p) if lock else None
        try:
            writer_conn, reader, before = await open_database(
                p, synchronous=synchronous, busy_timeout_ms=busy_timeout_ms, quick_check=quick_check, create=create
            )
            try:  # after the file is accepted: a refused file gets no key file made for it
                key = audit_key or load_audit_key(default_audit_key_path(p), create=True)
                if key is None:  # not reached: a missing key file was just created
                    raise StoreError("no audit key", path=p, reason="audit_key")
            except BaseException:
                await reader.close()
                await writer_conn.close()
                raise
        except BaseException:
            if lock_fd is not None:
                release_process_lock(lock_fd)
            raise
        await writer_conn.create_function("aaiti_audit_mac", 3, key.mac, deterministic=True)
        writer = Writer(writer_conn, p, synchronous=synchronous, log=log, max_batch=max_batch)
        writer.start()
        store = cls(p, writer, reader, lock_fd, schema_version=SCHEMA_VERSION, fsync_orders=fsync_orders,
                    audit_key=key)

        async def anchor(conn: aiosqlite.Connection) -> str:
            return await anchor_audit_log(conn, key, p)

        try:
            anchored = await writer.submit(WriteOp(call=anchor, durable=True))
            store.boot = await writer.submit(WriteOp(call=_bump_boot, durable=True))
        except BaseException:
            await store.close()
            raise
        # Per-boot stem: the fsynced boot counter plus 3 random chars (guards a DB restored
        # from an older backup, whose counter would repeat).
        store._coid_stem = _b36(store.boot) + "".join(secrets.choice(_B36) for _ in range(3))
        log.info("store.opened", schema_version=SCHEMA_VERSION, migrated_from=before if before != SCHEMA_VERSION
                 else None, boot=store.boot, synchronous=synchronous, fsync_orders=fsync_orders,
                 audit_key_id=key.key_id, audit_key_source=key.source, audit_anchor=anchored)
        if anchored == "no_record":
            log.warning("store.audit_anchor_missing", detail="the audit log's keyed-from record is missing or "
                        "unsigned under keyed rows; `aaiti audit verify` reports it")
        return store

    async def close(self) -> None:
        """Commit what is queued and close both connections and the lock. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._writer.stop()
        finally:
            try:
                await self._reader.close()
                await self._writer_conn_close()
            finally:
                if self._lock_fd is not None:
                    release_process_lock(self._lock_fd)
                    self._lock_fd = None

    async def _writer_conn_close(self) -> None:
        conn = self._writer.connection
        with contextlib.suppress(Exception):  # best effort; closing matters more
            await conn.execute("PRAGMA optimize")
        await conn.close()

    async def flush(self) -> None:
        """Wait until every write queued before this call has committed."""
        await self._writer.flush()

    @property
    def backlog(self) -> int:
        """Queued writes not yet committed."""
        return self._writer.backlog

    def stats(self) -> StoreStats:
        """Counters."""
        return StoreStats(
            path=str(self.path), schema_version=self.schema_version, boot=self.boot,
            client_order_ids_issued=self._coid_seq, writer=self._writer.stats(),
        )

    async def _write(self, op: WriteOp, wait: bool) -> Any:
        if not wait:
            self._writer.enqueue(op)
            return None
        return await self._writer.submit(op)

    # -- client order ids -----------------------------------------------------------------
    def next_client_order_id(self, prefix: str = "aa") -> str:
        """A client order id unique across restarts and crashes: ``<prefix>-<boot stem>-<seq>``.

        Binance-compatible (1 to 36 of ``[A-Za-z0-9-]``). ``prefix`` is 1 to 12 ASCII letters or
        digits. No I/O: the per-boot stem was made durable when the store opened.
        """
        if not (0 < len(prefix) <= COID_PREFIX_MAX_LEN and prefix.isascii() and prefix.isalnum()):
            raise ValueError(f"client order id prefix must be 1-{COID_PREFIX_MAX_LEN} ASCII letters/digits, "
                             f"got {prefix!r}")
        self._coid_seq += 1
        coid = f"{prefix}-{self._coid_stem}-{_b36(self._coid_seq)}"
        if len(coid) > COID_MAX_LEN:
            raise ValueError(f"client order id {coid!r} longer than {COID_MAX_LEN}")
        return coid

    # -- orders -----------------------------------------------------------------------------
    async def insert_order(self, record: OrderRecord) -> None:
        """Write-ahead insert: returns once committed. Duplicate id → StoreError(reason=constraint)."""
        await self.insert_orders((record,))

    async def insert_orders(self, records: Sequence[OrderRecord]) -> None:
        """Write-ahead insert of several orders in one transaction (all or none)."""
        if not records:
            return
        rows = [_order_params(r) for r in records]

        async def insert(conn: aiosqlite.Connection) -> None:
            await conn.executemany(_INSERT_ORDER, rows)

        await self._writer.submit(WriteOp(call=insert, durable=self._fsync_orders))

    async def update_order(self, record: OrderRecord) -> None:
        """Upsert the order's mutable fields (status, fills, venue id, reason); awaits commit."""
        await self._write(WriteOp(_UPSERT_ORDER, _order_params(record), priority=0), True)

    def update_order_nowait(self, record: OrderRecord) -> None:
        """Write-behind ``update_order``."""
        self._writer.enqueue(WriteOp(_UPSERT_ORDER, _order_params(record), priority=0))

    async def append_order_event(self, event: OrderEvent) -> None:
        """Append to the order's event history; awaits commit."""
        await self._write(WriteOp(_INSERT_EVENT, _event_params(event)), True)

    def append_order_event_nowait(self, event: OrderEvent) -> None:
        """Write-behind ``append_order_event``."""
        self._writer.enqueue(WriteOp(_INSERT_EVENT, _event_params(event)))

    async def order(self, client_order_id: str) -> OrderRecord | None:
        """One order by client order id."""
        rows = await self._read(f"SELECT {_ORDER_COLS} FROM orders WHERE client_order_id = ?", (client_order_id,))
        return _order_from_row(rows[0]) if rows else None

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
        sql = f"SELECT {_ORDER_COLS} FROM orders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_ms DESC, rowid DESC LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [_order_from_row(r) for r in await self._read(sql, params)]

    async def open_orders(self) -> list[OrderRecord]:
        """Every order the venue may still act on (oldest first)."""
        sql = (f"SELECT {_ORDER_COLS} FROM orders WHERE status IN ({', '.join('?' * len(_OPEN_LIST))}) "
               "ORDER BY created_ms, rowid")
        return [_order_from_row(r) for r in await self._read(sql, [s.value for s in _OPEN_LIST])]

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
    async def insert_fill(self, fill: Fill) -> bool:
        """Store a fill; False when (venue, trade_id) is already stored. Awaits commit."""
        params = _fill_params(fill)

        async def insert(conn: aiosqlite.Connection) -> bool:
            async with conn.execute(_INSERT_FILL, params) as cur:
                return cur.rowcount == 1

        result: bool = await self._writer.submit(WriteOp(call=insert))
        return result

    def insert_fill_nowait(self, fill: Fill) -> None:
        """Write-behind fill insert (a duplicate is silently ignored by the UNIQUE key)."""
        self._writer.enqueue(WriteOp(_INSERT_FILL, _fill_params(fill)))

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
        sql = f"SELECT {_FILL_COLS} FROM fills"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        params += [limit, offset]
        return [_fill_from_row(r) for r in await self._read(sql, params)]

    async def strategy_positions(self) -> dict[tuple[str, str], Decimal]:
        """Signed position per (strategy, symbol), summed exactly from every stored fill."""
        rows = await self._read(
            "SELECT o.strategy, f.symbol, f.side, f.size FROM fills f "
            "JOIN orders o ON o.client_order_id = f.client_order_id"
        )
        out: dict[tuple[str, str], Decimal] = {}
        for strategy, symbol, side, size in rows:
            qty = Decimal(size)
            key = (str(strategy), str(symbol))
            out[key] = out.get(key, Decimal(0)) + (qty if side == "buy" else -qty)
        return out

    async def fills_after(self, fill_seq: int) -> list[tuple[int, Fill]]:
        """Every fill stored after sequence ``fill_seq`` (restart replay), with its sequence."""
        rows = await self._read(f"SELECT id, {_FILL_COLS} FROM fills WHERE id > ? ORDER BY id", (fill_seq,))
        return [(r[0], _fill_from_row(r[1:])) for r in rows]

    async def fills_for_orders(self, client_order_ids: Iterable[str]) -> list[Fill]:
        """Every stored fill of the given orders, in stored order."""
        ids = list(client_order_ids)
        out: list[tuple[int, Fill]] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = await self._read(
                f"SELECT id, {_FILL_COLS} FROM fills WHERE client_order_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            out.extend((r[0], _fill_from_row(r[1:])) for r in rows)
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
    def _snapshot_op(self, snap: LedgerSnapshot) -> WriteOp:
        positions = [
            (p.symbol, _dec(p.size), _dec(p.avg_price), _dec(p.realized_pnl), _dec(p.fees), p.fills)
            for p in snap.positions
        ]
        balances = [(asset, _dec(total)) for asset, total in sorted(snap.balances.items())]
        is_ledger = snap.source == "ledger"

        async def write(conn: aiosqlite.Connection) -> int:
            if is_ledger:
                # Every fill enqueued before this snapshot is committed by now (FIFO writer).
                async with conn.execute("SELECT coalesce(max(id), 0) FROM fills") as cur:
                    row = await cur.fetchone()
                seq: int | None = int(row[0]) if row else 0
            else:
                seq = None
            async with conn.execute(
                "INSERT INTO ledger_snapshots (ts_ms, fill_seq, source) VALUES (?, ?, ?)",
                (snap.ts_ms, seq, snap.source),
            ) as cur:
                sid = cur.lastrowid
            if positions:
                await conn.executemany(
                    "INSERT INTO position_snapshots (snapshot_id, symbol, size, avg_price, realized_pnl, fees, "
                    "fills) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(sid, *p) for p in positions],
                )
            if balances:
                await conn.executemany(
                    "INSERT INTO balance_snapshots (snapshot_id, asset, total) VALUES (?, ?, ?)",
                    [(sid, *b) for b in balances],
                )
            return seq or 0

        return WriteOp(call=write)

    async def save_ledger_snapshot(self, snapshot: LedgerSnapshot) -> int:
        """Store positions and balances; returns the fill sequence it includes. Awaits commit."""
        seq: int = await self._writer.submit(self._snapshot_op(snapshot))
        return seq

    def save_ledger_snapshot_nowait(self, snapshot: LedgerSnapshot) -> None:
        """Write-behind ``save_ledger_snapshot``."""
        self._writer.enqueue(self._snapshot_op(snapshot))

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
    @staticmethod
    def _risk_op(denial: OrderDenied) -> WriteOp:
        intent = denial.intent
        return WriteOp(
            _INSERT_RISK,
            (denial.ts_ms or _now_ms(), denial.reason, intent.strategy, intent.symbol,
             msgspec.json.encode(intent).decode(), denial.limit, denial.detail),
        )

    async def record_risk_event(self, denial: OrderDenied) -> None:
        """Store a risk-gate denial (reason code, intent, limit, detail); awaits commit."""
        await self._write(self._risk_op(denial), True)

    def record_risk_event_nowait(self, denial: OrderDenied) -> None:
        """Write-behind ``record_risk_event``."""
        self._writer.enqueue(self._risk_op(denial))

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

    async def set_state(self, key: str, value: Any, *, durable: bool = True) -> None:
        """Store a JSON-serialisable value under ``key``; by default fsynced (survives power loss)."""
        await self._write(WriteOp(_SET_STATE, (key, canonical_json(value), _now_ms()), durable=durable), True)

    # -- audit ------------------------------------------------------------------------------------
    def _audit_op(self, kind: str, payload: Any, ts_ms: int | None) -> WriteOp:
        return WriteOp(
            APPEND_AUDIT_SQL, {"ts": ts_ms if ts_ms is not None else _now_ms(), "kind": kind,
                               "payload": canonical_json(payload), "key_id": self.audit_key.key_id},
        )

    async def append_audit(self, kind: str, payload: Mapping[str, Any], *, ts_ms: int | None = None) -> None:
        """Append a hash-chained, HMAC-keyed audit row; awaits commit."""
        await self._write(self._audit_op(kind, payload, ts_ms), True)

    def append_audit_nowait(self, kind: str, payload: Mapping[str, Any], *, ts_ms: int | None = None) -> None:
        """Write-behind ``append_audit``."""
        self._writer.enqueue(self._audit_op(kind, payload, ts_ms))

    async def audit_entries(self, *, after_id: int = 0, limit: int = 100) -> list[AuditEntry]:
        """Audit rows with id > after_id, oldest first."""
        rows = await self._read(
            "SELECT id, ts_ms, kind, payload, prev_hash, hash FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [AuditEntry(id=r[0], ts_ms=r[1], kind=r[2], payload=json.loads(r[3]), prev_hash=r[4], hash=r[5])
                for r in rows]

    # -- reads ------------------------------------------------------------------------------------
    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self._closed:
            raise StoreError("is closed", path=self.path, reason="closed")
        await self._writer.flush()
        try:
            rows = await self._reader.execute_fetchall(sql, params)
        except Exception as exc:
            raise StoreError(f"read failed: {exc}", path=self.path, reason="read_failed") from exc
        return list(rows)


async def _bump_boot(conn: aiosqlite.Connection) -> int:
    await conn.execute(
        "INSERT INTO kv (key, value, updated_ms) VALUES ('coid.boot', '1', ?) "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1, updated_ms = excluded.updated_ms",
        (_now_ms(),),
    )
    async with conn.execute("SELECT value FROM kv WHERE key = 'coid.boot'") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row else 1
