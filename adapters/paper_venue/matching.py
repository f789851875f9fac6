"""The paper venue's matching engine: orders and market events in, fills out. No I/O.

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

The engine keeps the account in memory (balances, open orders, id counters) and reports
every change to a ``MatchingJournal`` as it makes it; persisting and publishing those
changes is the journal's business. Business time (order and fill stamps) comes from the
injected ``Clock``.

``on_market`` is called for every market event; without resting orders on the symbol it
does two attribute stores and two float comparisons and allocates nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Protocol

from actors.kernel.clock import Clock
from actors.model.market import Bar, MarketEvent, Quote, Trade
from actors.model.orders import Balance, Fill, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.ports.venue import OrderNotFound, OrderRejected
from config.schema.trading import InstrumentSection, PaperVenueSection

__all__ = ["MatchingEngine", "MatchingJournal", "PaperOrder", "Wallet"]

_ZERO = Decimal(0)
_BPS = Decimal(10_000)
_INF = float("inf")


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


class PaperOrder:
    """A paper order (mutable, owned by the engine). ``price_f`` is the limit as a float, for matching."""

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
        """Size not filled yet."""
        return self.size - self.filled

    def view(self, venue: str) -> VenueOrder:
        """The order as the venue reports it."""
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


class Wallet:
    """One asset's balance: ``free`` and ``locked`` by resting orders (mutable, owned by the engine)."""

    __slots__ = ("free", "locked")

    def __init__(self, free: Decimal = _ZERO, locked: Decimal = _ZERO) -> None:
        self.free = free
        self.locked = locked


class MatchingJournal(Protocol):
    """Where the engine reports each change, in the order it makes them (to persist, then publish)."""

    def order_changed(self, order: PaperOrder, view: VenueOrder) -> None:
        """An order was accepted to rest or was canceled; ``view`` is its new state."""
        ...

    def order_filled(self, order: PaperOrder, fill: Fill, view: VenueOrder) -> None:
        """An order executed ``fill``; ``view`` is its state after it."""
        ...

    def balance_changed(self, asset: str, wallet: Wallet) -> None:
        """``asset``'s balance changed."""
        ...

    def order_ids_advanced(self, next_id: int) -> None:
        """An order id was issued; ``next_id`` is the next one."""
        ...

    def trade_ids_advanced(self, next_id: int) -> None:
        """A trade id was issued; ``next_id`` is the next one."""
        ...


class _Book:
    """Per-symbol market state and our resting orders (buys best first, sells best first)."""

    __slots__ = ("ask", "bar_close", "best_buy", "best_sell", "bid", "buys", "last", "sells", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bid = 0.0
        self.ask = 0.0
        self.last = 0.0
        self.bar_close = 0.0
        self.buys: list[PaperOrder] = []
        self.sells: list[PaperOrder] = []
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


class MatchingEngine:
    """Decides fills of paper orders against the market, with fees and slippage; keeps the account in memory.

    ``name`` is the venue name stamped on orders, fills and trade ids; every change is
    reported to ``journal``. ``on_market`` must be fed every market event.
    """

    def __init__(
        self,
        config: PaperVenueSection,
        instruments: Mapping[str, InstrumentSection],
        name: str,
        clock: Clock,
        journal: MatchingJournal,
    ) -> None:
        self.name = name
        self._instruments = dict(instruments)
        self._clock = clock
        self._journal = journal
        self._maker = Decimal(repr(config.maker_fee_bps)) / _BPS
        self._taker = Decimal(repr(config.taker_fee_bps)) / _BPS
        self._lock_fee = max(self._maker, self._taker)
        self._slip = Decimal(repr(config.slippage_bps)) / _BPS
        self._match_on_bars = config.match_on_bars
        self._books: dict[str, _Book] = {s: _Book(s) for s in self._instruments}
        self.open: dict[str, PaperOrder] = {}
        """Open orders by client order id."""
        self.wallets: dict[str, Wallet] = {}
        """Balances by asset."""
        self._next_trade = 1
        self._next_order = 1

    # -- account state ----------------------------------------------------------------------
    def load(
        self, orders: Iterable[PaperOrder], wallets: Mapping[str, Wallet], next_order_id: int, next_trade_id: int
    ) -> None:
        """Replace the account with a stored one: open ``orders`` (oldest first) rest on their books."""
        self.wallets = dict(wallets)
        self._next_order = next_order_id
        self._next_trade = next_trade_id
        self.clear()
        for o in orders:
            self.open[o.cid] = o
            self._rest(o)
        for book in self._books.values():
            book.reindex()

    def fund(self, balances: Mapping[str, Decimal]) -> None:
        """Set the free balance of each asset (a new account's initial balances)."""
        for asset, amount in balances.items():
            self.wallets[asset] = Wallet(amount, _ZERO)
            self._journal.balance_changed(asset, self.wallets[asset])

    def clear(self) -> None:
        """Forget the open orders (market state stays)."""
        self.open.clear()
        for book in self._books.values():
            book.buys.clear()
            book.sells.clear()
            book.reindex()

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open orders, oldest first (optionally of one symbol)."""
        orders = sorted(self.open.values(), key=lambda o: o.seq)
        return [o.view(self.name) for o in orders if symbol is None or o.symbol == symbol]

    def balances(self) -> dict[str, Balance]:
        """Balances by asset (free is net of what open orders lock)."""
        return {a: Balance(asset=a, free=b.free, locked=b.locked) for a, b in self.wallets.items()}

    # -- orders -----------------------------------------------------------------------------
    def place(self, req: OrderRequest) -> VenueOrder:
        """Check and place an order; it fills, rests or is refused (``OrderRejected``)."""
        inst = self._instruments.get(req.symbol)
        if inst is None:
            raise OrderRejected("UNKNOWN_SYMBOL", f"{req.symbol!r} is not traded here")
        if req.client_order_id in self.open:
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
        return self._fill(o, size, fill_price, "taker", inst)

    def cancel(self, client_order_id: str) -> VenueOrder:
        """Cancel an open order, releasing what it locks. Raises ``OrderNotFound`` when not open."""
        o = self.open.get(client_order_id)
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
        o.updated_ms = self._clock.now_ms()
        self._close_order(o)
        self._journal.balance_changed(asset, self._wallet(asset))
        view = o.view(self.name)
        self._journal.order_changed(o, view)
        return view

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
        bal = self._wallet(lock_asset)
        bal.free -= lock
        bal.locked += lock
        o.locked = lock
        self._journal.balance_changed(lock_asset, bal)
        marketable = ref_f > 0.0 and (
            (req.side is Side.BUY and o.price_f >= ref_f) or (req.side is Side.SELL and o.price_f <= ref_f)
        )
        if marketable:
            return self._fill(o, size, self._taker_price(req.side, _dec(ref_f), inst, price), "taker", inst)
        view = o.view(self.name)
        self._journal.order_changed(o, view)
        self.open[o.cid] = o
        self._rest(o)
        book.reindex()
        return view

    def _new_order(self, req: OrderRequest) -> PaperOrder:
        seq = self._next_order
        self._next_order += 1
        self._journal.order_ids_advanced(self._next_order)
        return PaperOrder(
            req.client_order_id, f"P{seq}", req.symbol, req.side, req.type, req.size, req.price, seq,
            self._clock.now_ms(),
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
        bal = self.wallets.get(asset)
        free = bal.free if bal is not None else _ZERO
        if amount > free:
            raise OrderRejected("INSUFFICIENT_FUNDS", f"needs {amount} {asset}, {free} free")

    # -- market data -------------------------------------------------------------------------
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
                self._match(book, px, px, event.size)  # type: ignore[attr-defined]
        elif type(event) is Bar:
            book.bar_close = event.close
            if self._match_on_bars and (event.low <= book.best_buy or event.high >= book.best_sell):
                self._match(book, event.low, event.high, event.volume)

    def _match(self, book: _Book, low: float, high: float, size: float) -> None:
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

    def _fill(
        self, o: PaperOrder, qty: Decimal, price: Decimal, liquidity: str, inst: InstrumentSection
    ) -> VenueOrder:
        """Apply one execution to the order and balances, report it; returns the order's new state."""
        notional = qty * price
        fee = notional * (self._maker if liquidity == "maker" else self._taker)
        quote = self._wallet(inst.quote)
        base = self._wallet(inst.base)
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
        now = self._clock.now_ms()
        o.updated_ms = now
        o.status = OrderStatus.FILLED if o.filled >= o.size else OrderStatus.PARTIALLY_FILLED
        trade_id = f"{self.name}-{self._next_trade}"
        self._next_trade += 1
        fill = Fill(
            venue=self.name, trade_id=trade_id, client_order_id=o.cid, venue_order_id=o.vid, symbol=o.symbol,
            side=o.side, price=price, size=qty, fee=fee, fee_currency=inst.quote, liquidity=liquidity, ts_ms=now,
        )
        journal = self._journal
        journal.trade_ids_advanced(self._next_trade)
        journal.balance_changed(inst.quote, quote)
        journal.balance_changed(inst.base, base)
        if o.status is OrderStatus.FILLED:
            self._close_order(o)
        view = o.view(self.name)
        journal.order_filled(o, fill, view)
        return view

    # -- books and balances -----------------------------------------------------------------------
    def _rest(self, o: PaperOrder) -> None:
        book = self._books.get(o.symbol)
        if book is None:  # instrument removed from the config: keep the order open, unmatched
            return
        (book.buys if o.side is Side.BUY else book.sells).append(o)

    def _close_order(self, o: PaperOrder) -> None:
        if self.open.pop(o.cid, None) is None:
            return
        book = self._books.get(o.symbol)
        if book is not None:
            side = book.buys if o.side is Side.BUY else book.sells
            with contextlib.suppress(ValueError):
                side.remove(o)
            book.reindex()

    def _wallet(self, asset: str) -> Wallet:
        bal = self.wallets.get(asset)
        if bal is None:
            bal = self.wallets[asset] = Wallet()
        return bal

    def _release(self, asset: str, amount: Decimal) -> None:
        if amount:
            bal = self._wallet(asset)
            bal.locked -= amount
            bal.free += amount
