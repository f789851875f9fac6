"""A paper trading venue: simulated fills against the market feed, a persistent account.

Matching
- Market orders fill at once, in full, against the top of book (ask for buys, bid for
  sells, from Quotes) or else the last trade, moved by ``slippage_bps`` against us and
  rounded to the tick (up for buys, down for sells). Taker fee.
- Limit orders that cross the market on arrival fill at once as taker (at the touch plus
  slippage, never beyond the limit). Others rest, locking funds, and fill as maker at their
  limit price when a Trade prints at or through it — partially when the print is smaller
  than what rests there; one print is shared among our resting orders by price, then time.
  With ``match_on_bars`` bars do the same with their high/low and volume.
- Fees are charged in the quote currency. Buys lock ``size x limit x (1 + max fee)`` of the
  quote asset, sells lock ``size`` of the base asset; fills release the lock.

Persistence
The account (orders, fills, balances, id counters) lives in its own SQLite file, not in
the daemon's store: like a real exchange account it survives restarts of the daemon. All
SQLite work runs on one dedicated thread, so the event loop never blocks on disk. Changes
are applied in memory first and queued; a writer task commits them in batches. ``submit``
and ``cancel`` return only after their batch is committed (write-through: a kill -9 right
after they return loses nothing), and updates are published on the ``updates()`` streams
only after the commit that contains them, so a consumer never sees a fill the venue could
forget in a crash.

``on_market`` is called for every market event; without resting orders on the symbol it
does two attribute stores and two float comparisons and allocates nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import structlog

from actors.model.market import Bar, MarketEvent, Quote, Trade
from actors.model.orders import (
    Balance,
    Fill,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    VenueOrder,
)
from actors.ports.venue import OrderNotFound, OrderRejected, VenueUnavailable, VenueUpdate
from adapters.venue_updates import UpdateStream
from config.schema.trading import InstrumentSection, PaperVenueSection

_ZERO = Decimal(0)
_BPS = Decimal(10_000)
_INF = float("inf")
_SCHEMA_VERSION = "1"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS orders (
        client_order_id TEXT PRIMARY KEY,
        venue_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        size TEXT NOT NULL,
        price TEXT,
        filled TEXT NOT NULL,
        cost TEXT NOT NULL,
        fees TEXT NOT NULL,
        locked TEXT NOT NULL,
        seq INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        reason TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS orders_status ON orders(status)",
    """CREATE TABLE IF NOT EXISTS fills (
        trade_id TEXT PRIMARY KEY,
        client_order_id TEXT NOT NULL,
        venue_order_id TEXT NOT NULL,
        symbol TEXT NOT NULL,
        side TEXT NOT NULL,
        price TEXT NOT NULL,
        size TEXT NOT NULL,
        fee TEXT NOT NULL,
        fee_currency TEXT NOT NULL,
        liquidity TEXT NOT NULL,
        ts_ms INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS fills_ts ON fills(ts_ms)",
    "CREATE TABLE IF NOT EXISTS balances (asset TEXT PRIMARY KEY, free TEXT NOT NULL, locked TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_ORDER_COLS = (
    "client_order_id, venue_order_id, symbol, side, type, status, size, price, filled, cost, fees, locked, "
    "seq, created_ms, updated_ms, reason"
)
_FILL_COLS = "trade_id, client_order_id, venue_order_id, symbol, side, price, size, fee, fee_currency, liquidity, ts_ms"
_OPEN = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})

OrderRow = tuple[str, str, str, str, str, str, str, str | None, str, str, str, str, int, int, int, str]
FillRow = tuple[str, str, str, str, str, str, str, str, str, str, int]


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _dec(value: float) -> Decimal:
    return Decimal(repr(value))


def _round_to(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    try:
        return (value / step).to_integral_value(rounding=rounding) * step
    except InvalidOperation:
        return value


def _multiple(value: Decimal, step: Decimal) -> bool:
    try:
        return value % step == 0
    except InvalidOperation:
        return False


class _Order:
    """A paper order (mutable, owned by the venue)."""

    __slots__ = (
        "cid",
        "cost",
        "created_ms",
        "fees",
        "filled",
        "locked",
        "price",
        "price_f",
        "reason",
        "seq",
        "side",
        "size",
        "status",
        "symbol",
        "type",
        "updated_ms",
        "vid",
    )

    def __init__(
        self,
        cid: str,
        vid: str,
        symbol: str,
        side: Side,
        type_: OrderType,
        size: Decimal,
        price: Decimal | None,
        seq: int,
        now_ms: int,
    ) -> None:
        self.cid = cid
        self.vid = vid
        self.symbol = symbol
        self.side = side
        self.type = type_
        self.size = size
        self.price = price
        self.price_f = float(price) if price is not None else 0.0
        self.status = OrderStatus.ACCEPTED
        self.filled = _ZERO
        self.cost = _ZERO
        self.fees = _ZERO
        self.locked = _ZERO
        self.seq = seq
        self.created_ms = now_ms
        self.updated_ms = now_ms
        self.reason = ""

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled

    def view(self, venue: str) -> VenueOrder:
        return VenueOrder(
            venue=venue,
            client_order_id=self.cid,
            venue_order_id=self.vid,
            symbol=self.symbol,
            side=self.side,
            type=self.type,
            status=self.status,
            size=self.size,
            filled=self.filled,
            price=self.price,
            avg_price=(self.cost / self.filled) if self.filled else None,
            ts_ms=self.updated_ms,
            reason=self.reason,
        )

    def row(self) -> OrderRow:
        return (
            self.cid,
            self.vid,
            self.symbol,
            self.side.value,
            self.type.value,
            self.status.value,
            str(self.size),
            str(self.price) if self.price is not None else None,
            str(self.filled),
            str(self.cost),
            str(self.fees),
            str(self.locked),
            self.seq,
            self.created_ms,
            self.updated_ms,
            self.reason,
        )

    @classmethod
    def from_row(cls, r: Any) -> _Order:
        o = cls(
            r[0], r[1], r[2], Side(r[3]), OrderType(r[4]), Decimal(r[6]),
            Decimal(r[7]) if r[7] is not None else None, int(r[12]), int(r[13]),
        )
        o.status = OrderStatus(r[5])
        o.filled = Decimal(r[8])
        o.cost = Decimal(r[9])
        o.fees = Decimal(r[10])
        o.locked = Decimal(r[11])
        o.updated_ms = int(r[14])
        o.reason = r[15]
        return o


class _Book:
    """Per-symbol market state and our resting orders (buys best first, sells best first)."""

    __slots__ = ("ask", "bar_close", "best_buy", "best_sell", "bid", "buys", "last", "sells", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bid = 0.0
        self.ask = 0.0
        self.last = 0.0
        self.bar_close = 0.0
        self.buys: list[_Order] = []
        self.sells: list[_Order] = []
        self.best_buy = -_INF
        self.best_sell = _INF

    def reindex(self) -> None:
        self.buys.sort(key=lambda o: (-o.price_f, o.seq))
        self.sells.sort(key=lambda o: (o.price_f, o.seq))
        self.best_buy = self.buys[0].price_f if self.buys else -_INF
        self.best_sell = self.sells[0].price_f if self.sells else _INF

    def reference(self, side: Side) -> float:
        """Price a taker of ``side`` would trade at now (0.0: unknown)."""
        touch = self.ask if side is Side.BUY else self.bid
        if touch > 0.0:
            return touch
        return self.last if self.last > 0.0 else self.bar_close


class _Bal:
    __slots__ = ("free", "locked")

    def __init__(self, free: Decimal = _ZERO, locked: Decimal = _ZERO) -> None:
        self.free = free
        self.locked = locked


class _Batch:
    """Changes committed together, then published."""

    __slots__ = ("balances", "fills", "meta", "orders", "updates", "waiters")

    def __init__(self) -> None:
        self.orders: dict[str, OrderRow] = {}
        self.balances: dict[str, tuple[str, str, str]] = {}
        self.fills: list[FillRow] = []
        self.meta: dict[str, str] = {}
        self.updates: list[VenueUpdate] = []
        self.waiters: list[asyncio.Future[None]] = []

    def empty(self) -> bool:
        return not (self.orders or self.balances or self.fills or self.meta or self.updates or self.waiters)

    def merge_newer(self, newer: _Batch) -> None:
        """Fold a newer batch into this (older, failed) one, keeping the newest row per key."""
        self.orders.update(newer.orders)
        self.balances.update(newer.balances)
        self.fills.extend(newer.fills)
        self.meta.update(newer.meta)
        self.updates.extend(newer.updates)
        self.waiters.extend(newer.waiters)


class PaperVenue:
    """A simulated venue implementing ``actors.ports.venue.Venue`` with a persistent paper account.

    ``path`` is the account's SQLite file; ``instruments`` maps symbols to their assets and
    filters; ``clock_ms`` stamps orders and fills (default: wall clock, as an exchange would).
    Call ``on_market`` with every market event to drive matching.
    """

    def __init__(
        self,
        path: str | Path,
        config: PaperVenueSection,
        instruments: Mapping[str, InstrumentSection],
        venue_name: str = "paper",
        *,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.name = venue_name
        self._path = Path(path)
        self._cfg = config
        self._instruments = dict(instruments)
        self._clock_ms = clock_ms
        self._log: Any = structlog.get_logger("aaiti").bind(component="paper_venue", venue=venue_name)
        self._maker = Decimal(repr(config.maker_fee_bps)) / _BPS
        self._taker = Decimal(repr(config.taker_fee_bps)) / _BPS
        self._lock_fee = max(self._maker, self._taker)
        self._slip = Decimal(repr(config.slippage_bps)) / _BPS
        self._match_on_bars = config.match_on_bars
        self._books: dict[str, _Book] = {s: _Book(s) for s in self._instruments}
        self._open: dict[str, _Order] = {}
        self._bal: dict[str, _Bal] = {}
        self._next_trade = 1
        self._next_order = 1
        self._batch = _Batch()
        self._streams: list[UpdateStream] = []
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._con: sqlite3.Connection | None = None
        self._writer: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._started = False
        self._closing = False
        self.storage_errors = 0

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open (or create) the account file and load its state. Idempotent."""
        if self._started:
            return
        self._closing = False
        self._batch = _Batch()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="paper-venue-db")
        try:
            state = await self._db(self._db_open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        orders, balances, meta = state
        self._bal = {asset: _Bal(Decimal(free), Decimal(locked)) for asset, free, locked in balances}
        self._next_trade = int(meta.get("next_trade_id", "1"))
        self._next_order = int(meta.get("next_order_id", "1"))
        self._open.clear()
        for book in self._books.values():
            book.buys.clear()
            book.sells.clear()
        for row in orders:
            o = _Order.from_row(row)
            self._open[o.cid] = o
            self._rest(o)
        for book in self._books.values():
            book.reindex()
        self._wake = asyncio.Event()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name=f"{self.name}.writer")
        self._started = True
        if "initialized" not in meta:
            for asset, amount in self._cfg.initial_balances.items():
                self._bal[asset] = _Bal(amount, _ZERO)
                self._dirty_balance(asset)
            self._batch.meta["initialized"] = str(self._clock_ms())
            self._batch.meta["schema_version"] = _SCHEMA_VERSION
            await self._commit()
        self._log.info("paper_venue.started", path=str(self._path), open_orders=len(self._open))

    async def close(self) -> None:
        """Commit what is pending, stop the writer, close the file and end update streams. Idempotent."""
        if not self._started:
            return
        self._closing = True
        with contextlib.suppress(Exception):
            await self._commit()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        self._writer = None
        self._wake = None
        for w in self._batch.waiters:  # changes that raced with close: outcome unknown to their callers
            if not w.done():
                w.set_exception(VenueUnavailable("CLOSED", f"paper venue {self.name} closed"))
        self._batch.waiters.clear()
        with contextlib.suppress(Exception):
            await self._db(self._db_close)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._executor = None
        self._started = False
        self._open.clear()
        for book in self._books.values():
            book.buys.clear()
            book.sells.clear()
            book.reindex()
        for stream in self._streams:
            stream.end()
        self._streams.clear()

    # -- Venue protocol ------------------------------------------------------------------------
    async def submit(self, request: OrderRequest) -> VenueOrder:
        """Place an order; returns once it is durably recorded. Raises OrderRejected / VenueUnavailable."""
        self._require_started()
        if self._cfg.latency_ms > 0:
            await asyncio.sleep(self._cfg.latency_ms / 1000.0)
            self._require_started()
        order = self._place(request)
        await self._commit()
        return order

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder:
        """Cancel an open order. Raises OrderNotFound when unknown or already closed."""
        self._require_started()
        if self._cfg.latency_ms > 0:
            await asyncio.sleep(self._cfg.latency_ms / 1000.0)
            self._require_started()
        o = self._open.get(client_order_id)
        if o is None:
            raise OrderNotFound("ORDER_NOT_FOUND", f"no open order {client_order_id!r}")
        inst = self._instruments.get(o.symbol)
        if inst is None:
            raise OrderNotFound("UNKNOWN_SYMBOL", f"{o.symbol!r} is no longer configured")
        asset = inst.quote if o.side is Side.BUY else inst.base
        self._release(asset, o.locked)
        o.locked = _ZERO
        o.status = OrderStatus.CANCELED
        o.reason = "canceled"
        o.updated_ms = self._clock_ms()
        self._close_order(o)
        self._dirty_balance(asset)
        view = o.view(self.name)
        self._batch.orders[o.cid] = o.row()
        self._batch.updates.append(view)
        await self._commit()
        return view

    async def query(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """Look an order up by client order id, open or closed; None if never seen."""
        self._require_started()
        o = self._open.get(client_order_id)
        if o is not None:
            return o.view(self.name)
        await self._commit()
        row = await self._db(self._db_order, client_order_id)
        return _Order.from_row(row).view(self.name) if row is not None else None

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open orders, oldest first (optionally of one symbol)."""
        self._require_started()
        orders = sorted(self._open.values(), key=lambda o: o.seq)
        return [o.view(self.name) for o in orders if symbol is None or o.symbol == symbol]

    async def fills_since(self, since_ms: int, symbol: str | None = None) -> list[Fill]:
        """Committed fills with ts_ms >= since_ms, oldest first."""
        self._require_started()
        await self._commit()
        rows = await self._db(self._db_fills, since_ms, symbol)
        return [
            Fill(
                venue=self.name, trade_id=r[0], client_order_id=r[1], venue_order_id=r[2], symbol=r[3],
                side=Side(r[4]), price=Decimal(r[5]), size=Decimal(r[6]), fee=Decimal(r[7]), fee_currency=r[8],
                liquidity=r[9], ts_ms=int(r[10]),
            )
            for r in rows
        ]

    async def balances(self) -> dict[str, Balance]:
        """Balances by asset (free is net of what open orders lock)."""
        self._require_started()
        return {a: Balance(asset=a, free=b.free, locked=b.locked) for a, b in self._bal.items()}

    def updates(self) -> AsyncIterator[VenueUpdate]:
        """A new subscription to order updates and fills, published after they are committed."""
        stream = UpdateStream(self._cfg.update_buffer, self._unsubscribe)
        if not self._started and self._closing:
            stream.end()
        else:
            self._streams.append(stream)
        return stream

    # -- market data -----------------------------------------------------------------------------
    def on_market(self, event: MarketEvent) -> None:
        """Update top of book / last trade and match resting orders. Cheap; call for every event."""
        book = self._books.get(event.symbol)
        if book is None:
            return
        cls = type(event)
        if cls is Quote:
            book.bid = event.bid  # type: ignore[attr-defined]
            book.ask = event.ask  # type: ignore[attr-defined]
        elif cls is Trade:
            px = event.price  # type: ignore[attr-defined]
            book.last = px
            if px <= book.best_buy or px >= book.best_sell:
                self._match(book, px, px, event.size, event.ts_ms)  # type: ignore[attr-defined]
        elif type(event) is Bar:
            book.bar_close = event.close
            if self._match_on_bars and (event.low <= book.best_buy or event.high >= book.best_sell):
                self._match(book, event.low, event.high, event.volume, event.ts_ms)

    # -- diagnostics -----------------------------------------------------------------------------
    @property
    def dropped_updates(self) -> int:
        """Updates dropped because a subscriber's buffer was full."""
        return sum(s.dropped for s in self._streams)

    # -- order placement --------------------------------------------------------------------------
    def _place(self, req: OrderRequest) -> VenueOrder:
        inst = self._instruments.get(req.symbol)
        if inst is None:
            raise OrderRejected("UNKNOWN_SYMBOL", f"{req.symbol!r} is not traded here")
        if req.client_order_id in self._open:
            raise OrderRejected("DUPLICATE_CLIENT_ORDER_ID", f"{req.client_order_id!r} is already open")
        size = req.size
        if not size.is_finite() or size <= 0 or not _multiple(size, inst.step_size):
            raise OrderRejected("INVALID_QUANTITY", f"size {size} (step {inst.step_size})")
        if size < inst.min_qty or size > inst.max_qty:
            raise OrderRejected("INVALID_QUANTITY", f"size {size} outside [{inst.min_qty}, {inst.max_qty}]")
        book = self._books[req.symbol]
        ref_f = book.reference(req.side)
        if req.type is OrderType.LIMIT:
            price = req.price
            if price is None or not price.is_finite() or price <= 0 or not _multiple(price, inst.tick_size):
                raise OrderRejected("INVALID_PRICE", f"limit price {price} (tick {inst.tick_size})")
            if size * price < inst.min_notional:
                raise OrderRejected("MIN_NOTIONAL", f"notional {size * price} < {inst.min_notional}")
            return self._place_limit(req, inst, book, price, ref_f)
        if req.price is not None:
            raise OrderRejected("INVALID_PRICE", "market orders take no price")
        if ref_f <= 0.0:
            raise OrderRejected("NO_MARKET_DATA", f"no price for {req.symbol} yet")
        fill_price = self._taker_price(req.side, _dec(ref_f), inst, None)
        if size * fill_price < inst.min_notional:
            raise OrderRejected("MIN_NOTIONAL", f"notional {size * fill_price} < {inst.min_notional}")
        if req.side is Side.BUY:
            need = size * fill_price * (1 + self._taker)
            self._require_free(inst.quote, need)
        else:
            self._require_free(inst.base, size)
        o = self._new_order(req)
        self._fill(o, size, fill_price, "taker", inst)
        return o.view(self.name)

    def _place_limit(
        self, req: OrderRequest, inst: InstrumentSection, book: _Book, price: Decimal, ref_f: float
    ) -> VenueOrder:
        size = req.size
        if req.side is Side.BUY:
            lock_asset, lock = inst.quote, size * price * (1 + self._lock_fee)
        else:
            lock_asset, lock = inst.base, size
        self._require_free(lock_asset, lock)
        o = self._new_order(req)
        bal = self._balance(lock_asset)
        bal.free -= lock
        bal.locked += lock
        o.locked = lock
        self._dirty_balance(lock_asset)
        marketable = ref_f > 0.0 and (
            (req.side is Side.BUY and o.price_f >= ref_f) or (req.side is Side.SELL and o.price_f <= ref_f)
        )
        if marketable:
            self._fill(o, size, self._taker_price(req.side, _dec(ref_f), inst, price), "taker", inst)
            return o.view(self.name)
        self._batch.orders[o.cid] = o.row()
        self._batch.updates.append(o.view(self.name))
        self._open[o.cid] = o
        self._rest(o)
        book.reindex()
        return o.view(self.name)

    def _new_order(self, req: OrderRequest) -> _Order:
        seq = self._next_order
        self._next_order += 1
        self._batch.meta["next_order_id"] = str(self._next_order)
        return _Order(
            req.client_order_id, f"P{seq}", req.symbol, req.side, req.type, req.size, req.price, seq,
            self._clock_ms(),
        )

    def _taker_price(self, side: Side, ref: Decimal, inst: InstrumentSection, cap: Decimal | None) -> Decimal:
        if side is Side.BUY:
            p = _round_to(ref * (1 + self._slip), inst.tick_size, ROUND_CEILING)
            return min(p, cap) if cap is not None else p
        p = _round_to(ref * (1 - self._slip), inst.tick_size, ROUND_FLOOR)
        if p <= 0:
            p = inst.tick_size
        return max(p, cap) if cap is not None else p

    def _require_free(self, asset: str, amount: Decimal) -> None:
        bal = self._bal.get(asset)
        free = bal.free if bal is not None else _ZERO
        if amount > free:
            raise OrderRejected("INSUFFICIENT_FUNDS", f"needs {amount} {asset}, {free} free")

    # -- matching ---------------------------------------------------------------------------------
    def _match(self, book: _Book, low: float, high: float, size: float, ts_ms: int) -> None:
        """Fill resting buys priced >= ``low`` and sells priced <= ``high`` from a print of ``size``.

        Orders are served best price first, then oldest first; a print of unknown size (0)
        fills everything it reaches. A partial share is rounded down to the step size.
        """
        inst = self._instruments[book.symbol]
        step = inst.step_size
        avail: Decimal | None = _dec(size) if size > 0.0 else None
        for o in [o for o in book.buys if o.price_f >= low] + [o for o in book.sells if o.price_f <= high]:
            if avail is not None and avail <= 0:
                break
            remaining = o.remaining
            qty = remaining if avail is None or avail >= remaining else _round_to(avail, step, ROUND_FLOOR)
            if qty <= 0 or o.price is None:
                continue
            self._fill(o, qty, o.price, "maker", inst)
            if avail is not None:
                avail -= qty
        book.reindex()

    def _fill(self, o: _Order, qty: Decimal, price: Decimal, liquidity: str, inst: InstrumentSection) -> None:
        """Apply one execution to the order and balances; queue its rows and updates."""
        notional = qty * price
        fee = notional * (self._maker if liquidity == "maker" else self._taker)
        quote = self._balance(inst.quote)
        base = self._balance(inst.base)
        remaining_before = o.remaining
        if o.side is Side.BUY:
            if o.locked > 0:
                assert o.price is not None
                release = o.locked if qty == remaining_before else qty * o.price * (1 + self._lock_fee)
                o.locked -= release
                quote.locked -= release
                quote.free += release - notional - fee
            else:
                quote.free -= notional + fee
            base.free += qty
        else:
            if o.locked > 0:
                release = o.locked if qty == remaining_before else qty
                o.locked -= release
                base.locked -= release
            else:
                base.free -= qty
            quote.free += notional - fee
        o.filled += qty
        o.cost += notional
        o.fees += fee
        now = self._clock_ms()
        o.updated_ms = now
        o.status = OrderStatus.FILLED if o.filled >= o.size else OrderStatus.PARTIALLY_FILLED
        trade_id = f"{self.name}-{self._next_trade}"
        self._next_trade += 1
        fill = Fill(
            venue=self.name, trade_id=trade_id, client_order_id=o.cid, venue_order_id=o.vid, symbol=o.symbol,
            side=o.side, price=price, size=qty, fee=fee, fee_currency=inst.quote, liquidity=liquidity, ts_ms=now,
        )
        b = self._batch
        b.meta["next_trade_id"] = str(self._next_trade)
        b.fills.append(
            (trade_id, o.cid, o.vid, o.symbol, o.side.value, str(price), str(qty), str(fee), inst.quote,
             liquidity, now)
        )
        self._dirty_balance(inst.quote)
        self._dirty_balance(inst.base)
        if o.status is OrderStatus.FILLED:
            self._close_order(o)
        b.orders[o.cid] = o.row()
        b.updates.append(fill)
        b.updates.append(o.view(self.name))
        if self._wake is not None:
            self._wake.set()

    def _rest(self, o: _Order) -> None:
        book = self._books.get(o.symbol)
        if book is None:  # instrument removed from the config: keep the order open, unmatched
            return
        (book.buys if o.side is Side.BUY else book.sells).append(o)

    def _close_order(self, o: _Order) -> None:
        if self._open.pop(o.cid, None) is None:
            return
        book = self._books.get(o.symbol)
        if book is not None:
            side = book.buys if o.side is Side.BUY else book.sells
            with contextlib.suppress(ValueError):
                side.remove(o)
            book.reindex()

    def _balance(self, asset: str) -> _Bal:
        bal = self._bal.get(asset)
        if bal is None:
            bal = self._bal[asset] = _Bal()
        return bal

    def _release(self, asset: str, amount: Decimal) -> None:
        if amount:
            bal = self._balance(asset)
            bal.locked -= amount
            bal.free += amount

    def _dirty_balance(self, asset: str) -> None:
        bal = self._balance(asset)
        self._batch.balances[asset] = (asset, str(bal.free), str(bal.locked))

    # -- persistence ------------------------------------------------------------------------------
    def _require_started(self) -> None:
        if not self._started or self._closing:
            raise VenueUnavailable("NOT_STARTED", f"paper venue {self.name} is not started")

    async def _commit(self) -> None:
        """Wait until everything changed so far is committed (raises VenueUnavailable on storage errors)."""
        if self._wake is None:
            raise VenueUnavailable("NOT_STARTED", f"paper venue {self.name} is not started")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.waiters.append(fut)
        self._wake.set()
        await fut

    async def _write_loop(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while True:
            await wake.wait()
            wake.clear()
            while not self._batch.empty():
                batch, self._batch = self._batch, _Batch()
                try:
                    await self._db(self._db_write, batch)
                except asyncio.CancelledError:
                    batch.merge_newer(self._batch)
                    self._batch = batch
                    raise
                except Exception as exc:
                    self.storage_errors += 1
                    self._log.error("paper_venue.commit_failed", error=repr(exc))
                    waiters, batch.waiters = batch.waiters, []
                    for w in waiters:
                        if not w.done():
                            w.set_exception(VenueUnavailable("STORAGE", repr(exc)))
                    batch.merge_newer(self._batch)
                    self._batch = batch
                    await asyncio.sleep(0.5)
                    continue
                for item in batch.updates:
                    for stream in self._streams:
                        stream.push(item)
                for w in batch.waiters:
                    if not w.done():
                        w.set_result(None)

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._executor is None:
            raise VenueUnavailable("NOT_STARTED", f"paper venue {self.name} is not started")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _unsubscribe(self, stream: UpdateStream) -> None:
        with contextlib.suppress(ValueError):
            self._streams.remove(stream)

    # The _db_* functions run on the venue's database thread only.
    def _db_open(self) -> tuple[list[Any], list[tuple[str, str, str]], dict[str, str]]:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={'FULL' if self._cfg.fsync else 'NORMAL'}")
        con.execute("PRAGMA busy_timeout=5000")
        for stmt in _SCHEMA:
            con.execute(stmt)
        self._con = con
        open_statuses = tuple(s.value for s in _OPEN)
        orders = con.execute(
            f"SELECT {_ORDER_COLS} FROM orders WHERE status IN (?, ?) ORDER BY seq", open_statuses
        ).fetchall()
        balances = con.execute("SELECT asset, free, locked FROM balances").fetchall()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        return orders, balances, meta

    def _db_write(self, batch: _Batch) -> None:
        con = self._con
        if con is None:
            raise RuntimeError("database closed")
        if not (batch.orders or batch.balances or batch.fills or batch.meta):
            return
        con.execute("BEGIN IMMEDIATE")
        try:
            if batch.orders:
                con.executemany(
                    f"INSERT OR REPLACE INTO orders ({_ORDER_COLS}) VALUES ({', '.join('?' * 16)})",
                    batch.orders.values(),
                )
            if batch.fills:
                con.executemany(
                    f"INSERT OR IGNORE INTO fills ({_FILL_COLS}) VALUES ({', '.join('?' * 11)})", batch.fills
                )
            if batch.balances:
                con.executemany("INSERT OR REPLACE INTO balances VALUES (?, ?, ?)", batch.balances.values())
            if batch.meta:
                con.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", batch.meta.items())
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _db_order(self, cid: str) -> Any:
        con = self._con
        if con is None:
            raise RuntimeError("database closed")
        return con.execute(f"SELECT {_ORDER_COLS} FROM orders WHERE client_order_id = ?", (cid,)).fetchone()

    def _db_fills(self, since_ms: int, symbol: str | None) -> list[Any]:
        con = self._con
        if con is None:
            raise RuntimeError("database closed")
        sql = f"SELECT {_FILL_COLS} FROM fills WHERE ts_ms >= ?"
        args: Iterable[Any] = (since_ms,)
        if symbol is not None:
            sql += " AND symbol = ?"
            args = (since_ms, symbol)
        return con.execute(sql + " ORDER BY ts_ms, rowid", tuple(args)).fetchall()

    def _db_close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()
