"""The paper venue's matching engine: orders and market events in, fills out. No I/O.

The fill rules (visible liquidity, the walk through it, slippage, when a print reaches a
limit) are the fill model's, ``adapters.paper_venue.fill_model``; the filters an order must
pass are in ``adapters.paper_venue.filters``. This module applies them to orders and balances:

- An order is checked (filters, funds) and booked at its submission (business time from the
  injected ``Clock``). With ``latency_ms`` on a simulated clock it is ACCEPTED and reaches
  the book at the first market event with ``ts_ms >= submission + latency_ms``; without, at once.
- A market order reaching the book takes the visible liquidity as of then (and the simulated
  depth with ``fill_at_worst``) as taker; with ``partial_then_next_events`` it stays open,
  PARTIALLY_FILLED, and takes each later event's fresh liquidity until filled or canceled.
  A market buy locks nothing: a fill it cannot pay for is cut to what the free quote balance
  pays and the rest EXPIRES (reason ``INSUFFICIENT_FUNDS``). A market sell locks its size.
- A limit order reaching the book fills as taker what it can while the market is at or
  better than its limit (same walk, capped at the limit); the rest rests and fills as maker,
  at its limit, when a print or quote reaches it (``limit_fill``), partially when that offers
  less (``trade_volume_limited``); one print is shared by our orders by price, then time.
  With ``match_on_bars`` bars do the same with their low/high and volume.
- Fees are charged in the quote currency per fill: taker fee for executions on arrival and
  of market orders, maker fee for resting fills. Buys lock ``size x limit x (1 + max fee)``
  of the quote asset, sells lock ``size`` of the base asset; fills release the lock.

The engine keeps the account in memory (balances, open orders, id counters) and reports
every change to a ``MatchingJournal`` as it makes it; persisting and publishing those
changes is the journal's business.

``on_market`` is called for every market event; on a symbol where none of our orders rests,
waits or works (``quiet_on``) it does one attribute store and one test and allocates nothing:
its state after a stretch of quotes is then that of the stretch's last quote.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Protocol

from actors.kernel.clock import Clock
from actors.model.market import Bar, BookDelta, BookSnapshot, MarketEvent, Quote, Trade
from actors.model.orders import Balance, Fill, OrderRequest, OrderStatus, OrderType, Side, VenueOrder
from actors.ports.venue import OrderNotFound, OrderRejected
from adapters.paper_venue.fill_model import FillModel, MarketState, dec, round_to
from adapters.paper_venue.filters import check_notional, check_order
from config.schema.trading import InstrumentSection, PaperVenueSection

__all__ = ["MatchingEngine", "MatchingJournal", "PaperOrder", "Wallet"]

_ZERO = Decimal(0)
_BPS = Decimal(10_000)
_INF = float("inf")
#: ``wake_ms`` values: no order waits or works / a market order works on every event.
_NEVER = 1 << 62
_ALWAYS = -(1 << 62)
#: Reason of a market order's remainder that expired because the account could not pay for it.
INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"


class PaperOrder:
    """A paper order (mutable, owned by the engine). ``price_f`` is the limit as a float, for matching.

    ``due_ms`` is the market time it reaches the book while it travels there (0 once there).
    """

    __slots__ = (
        "cid", "cost", "created_ms", "due_ms", "fees", "filled", "locked", "price", "price_f", "reason", "seq",
        "side", "size", "status", "symbol", "type", "updated_ms", "vid",
    )

    def __init__(
        self, cid: str, vid: str, symbol: str, side: Side, type_: OrderType, size: Decimal, price: Decimal | None,
        seq: int, now_ms: int,
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
        self.due_ms = 0

    @property
    def remaining(self) -> Decimal:
        """Size not filled yet."""
        return self.size - self.filled

    def view(self, venue: str) -> VenueOrder:
        """The order as the venue reports it."""
        return VenueOrder(
            venue=venue, client_order_id=self.cid, venue_order_id=self.vid, symbol=self.symbol, side=self.side,
            type=self.type, status=self.status, size=self.size, filled=self.filled, price=self.price,
            avg_price=(self.cost / self.filled) if self.filled else None, ts_ms=self.updated_ms, reason=self.reason,
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
        """An order was accepted, canceled or expired without a fill; ``view`` is its new state."""
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


class _Book(MarketState):
    """One symbol's market state and our orders on it.

    ``buys``/``sells`` rest (best price first, then oldest); ``pending`` travel to the book
    (oldest first); ``working`` are market orders taking liquidity event by event.
    ``buy_at``/``sell_at`` are the prices at/beyond which a print or quote reaches the best
    resting order; ``wake_ms`` the event time from which ``pending``/``working`` need the
    event; ``armed`` says any of that exists (the one test ``on_market`` makes otherwise).
    """

    __slots__ = ("armed", "buy_at", "buys", "pending", "sell_at", "sells", "symbol", "wake_ms", "working")

    def __init__(self, symbol: str) -> None:
        super().__init__()
        self.symbol = symbol
        self.buys: list[PaperOrder] = []
        self.sells: list[PaperOrder] = []
        self.pending: list[PaperOrder] = []
        self.working: list[PaperOrder] = []
        self.buy_at = -_INF
        self.sell_at = _INF
        self.wake_ms = _NEVER
        self.armed = False

    def reindex(self, model: FillModel) -> None:
        self.buys.sort(key=lambda o: (-o.price_f, o.seq))
        self.sells.sort(key=lambda o: (o.price_f, o.seq))
        self.buy_at = model.buy_trigger(self.buys[0].price_f) if self.buys else -_INF
        self.sell_at = model.sell_trigger(self.sells[0].price_f) if self.sells else _INF
        self.wake_ms = _ALWAYS if self.working else (self.pending[0].due_ms if self.pending else _NEVER)
        self.armed = bool(self.buys or self.sells or self.pending or self.working)

    def discard(self, o: PaperOrder) -> None:
        for orders in (self.buys, self.sells, self.pending, self.working):
            if o in orders:
                orders.remove(o)


class MatchingEngine:
    """Decides fills of paper orders against the market (fill model, fees); keeps the account in memory.

    ``name`` is the venue name stamped on orders, fills and trade ids; every change is
    reported to ``journal``. ``on_market`` must be fed every market event. ``latency_ms``
    applies in market time only when ``clock`` is simulated; on the wall clock the caller
    waits it out before calling ``place`` (``PaperVenue`` does).
    """

    def __init__(
        self, config: PaperVenueSection, instruments: Mapping[str, InstrumentSection], name: str, clock: Clock,
        journal: MatchingJournal,
    ) -> None:
        self.name = name
        self._instruments = dict(instruments)
        self._clock = clock
        self._journal = journal
        self._model = FillModel(config)
        self._maker = dec(config.maker_fee_bps) / _BPS
        self._taker = dec(config.taker_fee_bps) / _BPS
        self._lock_fee = max(self._maker, self._taker)
        self._latency_ms = math.ceil(config.latency_ms) if clock.simulated else 0
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
        """Replace the account with a stored one: open ``orders`` (oldest first) are on their books.

        Limit orders rest; market orders work on the next events (time has passed: what was
        travelling to the book has reached it).
        """
        self.wallets = dict(wallets)
        self._next_order = next_order_id
        self._next_trade = next_trade_id
        self.clear()
        for o in orders:
            self.open[o.cid] = o
            book = self._books.get(o.symbol)
            if book is None:  # instrument removed from the config: keep the order open, unmatched
                continue
            if o.type is OrderType.MARKET:
                book.working.append(o)
            else:
                (book.buys if o.side is Side.BUY else book.sells).append(o)
        for book in self._books.values():
            book.reindex(self._model)

    def fund(self, balances: Mapping[str, Decimal]) -> None:
        """Set the free balance of each asset (a new account's initial balances)."""
        for asset, amount in balances.items():
            self.wallets[asset] = Wallet(amount, _ZERO)
            self._journal.balance_changed(asset, self.wallets[asset])

    def clear(self) -> None:
        """Forget the open orders (market state stays)."""
        self.open.clear()
        for book in self._books.values():
            for orders in (book.buys, book.sells, book.pending, book.working):
                orders.clear()
            book.reindex(self._model)

    def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open orders, oldest first (optionally of one symbol)."""
        orders = sorted(self.open.values(), key=lambda o: o.seq)
        return [o.view(self.name) for o in orders if symbol is None or o.symbol == symbol]

    def balances(self) -> dict[str, Balance]:
        """Balances by asset (free is net of what open orders lock)."""
        return {a: Balance(asset=a, free=b.free, locked=b.locked) for a, b in self.wallets.items()}

    # -- orders -----------------------------------------------------------------------------
    def place(self, req: OrderRequest) -> VenueOrder:
        """Check and place an order; it fills, rests, travels to the book or is refused (``OrderRejected``)."""
        inst = self._instruments.get(req.symbol)
        if inst is None:
            raise OrderRejected("UNKNOWN_SYMBOL", f"{req.symbol!r} is not traded here")
        if req.client_order_id in self.open:
            raise OrderRejected("DUPLICATE_CLIENT_ORDER_ID", f"{req.client_order_id!r} is already open")
        check_order(req, inst)
        book = self._books[req.symbol]
        if req.type is OrderType.LIMIT:
            assert req.price is not None
            return self._place_limit(req, inst, book, req.price)
        return self._place_market(req, inst, book)

    def cancel(self, client_order_id: str) -> VenueOrder:
        """Cancel an open order, releasing what it locks. Raises ``OrderNotFound`` when not open."""
        o = self.open.get(client_order_id)
        if o is None:
            raise OrderNotFound("ORDER_NOT_FOUND", f"no open order {client_order_id!r}")
        if o.symbol not in self._instruments:
            raise OrderNotFound("UNKNOWN_SYMBOL", f"{o.symbol!r} is no longer configured")
        return self._end(o, OrderStatus.CANCELED, "canceled")

    def _place_limit(self, req: OrderRequest, inst: InstrumentSection, book: _Book, price: Decimal) -> VenueOrder:
        size = req.size
        if req.side is Side.BUY:
            lock_asset, lock = inst.quote, size * price * (1 + self._lock_fee)
        else:
            lock_asset, lock = inst.base, size
        self._require_free(lock_asset, lock)
        o = self._new_order(req)
        self._lock(o, lock_asset, lock)
        if self._latency_ms:
            return self._send(o, book)
        return self._arrive_limit(o, book, inst, announce=True)

    def _place_market(self, req: OrderRequest, inst: InstrumentSection, book: _Book) -> VenueOrder:
        side, size, model = req.side, req.size, self._model
        ref = book.reference(side)
        if ref <= 0.0:
            raise OrderRejected("NO_MARKET_DATA", f"no price for {req.symbol} yet")
        check_notional(size, model.taker_price(side, dec(ref), inst, None), inst)
        plan = model.plan(model.visible(book, side), side, size, inst, None) if not self._latency_ms else []
        if side is Side.BUY:
            # What it costs now; a remainder taken later is valued at the last price of the plan.
            cost = sum((q * p for q, p in plan), _ZERO)
            rest = size - sum((q for q, _ in plan), _ZERO)
            last = plan[-1][1] if plan else model.taker_price(side, dec(ref), inst, None)
            self._require_free(inst.quote, (cost + rest * last) * (1 + self._taker))
        else:
            self._require_free(inst.base, size)
        o = self._new_order(req)
        if side is Side.SELL:
            # Locked from the start, so a sell left open (travelling, working) is stored with its lock.
            self._lock(o, inst.base, size)
        if self._latency_ms:
            return self._send(o, book)
        return self._take(o, book, inst, plan, announce=True)

    def _new_order(self, req: OrderRequest) -> PaperOrder:
        seq = self._next_order
        self._next_order += 1
        self._journal.order_ids_advanced(self._next_order)
        o = PaperOrder(
            req.client_order_id, f"P{seq}", req.symbol, req.side, req.type, req.size, req.price, seq,
            self._clock.now_ms(),
        )
        self.open[o.cid] = o
        return o

    def _send(self, o: PaperOrder, book: _Book) -> VenueOrder:
        """Accept ``o`` now; it reaches the book at the first event ``latency_ms`` of market time later."""
        o.due_ms = o.created_ms + self._latency_ms
        book.pending.append(o)
        book.reindex(self._model)
        view = o.view(self.name)
        self._journal.order_changed(o, view)
        return view

    def _arrive_limit(self, o: PaperOrder, book: _Book, inst: InstrumentSection, *, announce: bool) -> VenueOrder:
        """``o`` reaches the book: taker fills while the market is at or better than its limit, then it rests.

        ``announce``: report the order as accepted if it rests without a fill (not yet reported).
        """
        side, model = o.side, self._model
        ref = book.reference(side)
        if ref > 0.0 and (o.price_f >= ref if side is Side.BUY else o.price_f <= ref):
            for qty, price in model.plan(model.visible(book, side), side, o.remaining, inst, o.price):
                view = self._fill(o, qty, price, "taker", inst)
                if o.status is OrderStatus.FILLED:
                    return view
                announce = False  # the fill's report shows it open
        (book.buys if side is Side.BUY else book.sells).append(o)
        book.reindex(model)
        view = o.view(self.name)
        if announce:
            self._journal.order_changed(o, view)
        return view

    def _take(
        self, o: PaperOrder, book: _Book, inst: InstrumentSection, plan: list[tuple[Decimal, Decimal]],
        *, announce: bool,
    ) -> VenueOrder:
        """Execute a market order's ``plan`` as taker; what is left works on the next events.

        A buy the free quote balance cannot pay for fills what it can and EXPIRES.
        ``announce``: report the order as accepted if it stays open without a fill.
        """
        buy = o.side is Side.BUY
        for qty, price in plan:
            affordable = self._affordable(inst, qty, price) if buy else qty
            if affordable > 0:
                self._fill(o, affordable, price, "taker", inst)
                announce = False
            if affordable < qty:
                return self._end(o, OrderStatus.EXPIRED, INSUFFICIENT_FUNDS)
        if o.status is OrderStatus.FILLED:
            return o.view(self.name)
        # What the visible liquidity (and, with fill_at_worst, the simulated depth) left works on
        # the next events.
        if o not in book.working:
            book.working.append(o)
            book.reindex(self._model)
        view = o.view(self.name)
        if announce:
            self._journal.order_changed(o, view)
        return view

    def _affordable(self, inst: InstrumentSection, qty: Decimal, price: Decimal) -> Decimal:
        """Most of ``qty`` at ``price`` (plus the taker fee) the free quote balance pays, on the step."""
        free = self._wallet(inst.quote).free
        if qty * price * (1 + self._taker) <= free:
            return qty
        if free <= 0:
            return _ZERO
        return min(qty, round_to(free / (price * (1 + self._taker)), inst.step_size, ROUND_FLOOR))

    def _require_free(self, asset: str, amount: Decimal) -> None:
        bal = self.wallets.get(asset)
        free = bal.free if bal is not None else _ZERO
        if amount > free:
            raise OrderRejected("INSUFFICIENT_FUNDS", f"needs {amount} {asset}, {free} free")

    # -- market data -------------------------------------------------------------------------
    def quiet_on(self, symbol: str) -> bool:
        """True when no order of ours rests, travels to the book or works on ``symbol`` (cheap)."""
        book = self._books.get(symbol)
        return book is None or not book.armed

    def on_market(self, event: MarketEvent) -> None:
        """Record the market state and serve our orders on the symbol. Cheap; call for every event.

        Per event type: record it; if any order of ours rests, travels or works on the symbol
        (``armed``), let due and working orders meet it (``wake_ms``), then fill the resting
        orders it reaches (one comparison per side). Quotes and trades are inlined: they are
        nearly every event.
        """
        book = self._books.get(event.symbol)
        if book is None:
            return
        cls = type(event)
        if cls is Quote:
            book.top = event  # type: ignore[assignment]
            if book.armed:
                if event.ts_ms >= book.wake_ms:
                    self._wake(book, event)
                ask, bid = event.ask, event.bid  # type: ignore[attr-defined]
                if (0.0 < ask <= book.buy_at) or (bid > 0.0 and bid >= book.sell_at):
                    self._match(book, ask, bid, event.ask_size, event.bid_size, shared=False)  # type: ignore[attr-defined]
        elif cls is Trade:
            book.trade = event  # type: ignore[assignment]
            if book.armed:
                if event.ts_ms >= book.wake_ms:
                    self._wake(book, event)
                px = event.price  # type: ignore[attr-defined]
                if px <= book.buy_at or px >= book.sell_at:
                    size = event.size  # type: ignore[attr-defined]
                    self._match(book, px, px, size, size, shared=True)
        elif cls is Bar:
            book.bar = event  # type: ignore[assignment]
            if book.armed:
                self._serve_bar(book, event)  # type: ignore[arg-type]
        elif cls is BookSnapshot or cls is BookDelta:
            book.apply_book(event)  # type: ignore[arg-type]
            if book.armed:
                self._serve_book(book, event)

    def _serve_bar(self, book: _Book, bar: Bar) -> None:
        """A bar meets our orders: due and working ones; resting ones with ``match_on_bars`` (low/high, volume)."""
        if bar.ts_ms >= book.wake_ms:
            self._wake(book, bar)
        if self._match_on_bars and (bar.low <= book.buy_at or bar.high >= book.sell_at):
            self._match(book, bar.low, bar.high, bar.volume, bar.volume, shared=True)

    def _serve_book(self, book: _Book, event: MarketEvent) -> None:
        """A book event meets our orders: due and working ones; resting ones against its best levels."""
        if event.ts_ms >= book.wake_ms:
            self._wake(book, event)
        ask, ask_size = book.touch(Side.BUY)
        bid, bid_size = book.touch(Side.SELL)
        if (0.0 < ask <= book.buy_at) or (bid > 0.0 and bid >= book.sell_at):
            self._match(book, ask, bid, ask_size, bid_size, shared=False)

    def _wake(self, book: _Book, event: MarketEvent) -> None:
        """Working market orders take ``event``'s liquidity; then orders due by its time reach the book."""
        model = self._model
        inst = self._instruments[book.symbol]
        for o in list(book.working):
            if o.cid in self.open:
                levels = model.fresh(book, event, o.side)
                if levels:
                    self._take(o, book, inst, model.plan(levels, o.side, o.remaining, inst, None), announce=False)
        ts = event.ts_ms
        while book.pending and book.pending[0].due_ms <= ts:
            o = book.pending.pop(0)
            o.due_ms = 0
            if o.type is OrderType.LIMIT:
                self._arrive_limit(o, book, inst, announce=False)
            else:
                self._take(o, book, inst, model.plan(model.visible(book, o.side), o.side, o.remaining, inst, None),
                           announce=False)
        book.reindex(model)

    def _match(self, book: _Book, low: float, high: float, low_size: float, high_size: float, *, shared: bool) -> None:
        """Fill resting buys reached by ``low`` and sells reached by ``high``, as maker at their limits.

        ``low_size``/``high_size`` is the size at each side's market price: one shared print
        (or bar) when ``shared``, else a quote's two sides. Orders are served best price
        first, then oldest first; a partial share is rounded down to the step size.
        """
        model = self._model
        inst = self._instruments[book.symbol]
        buys = [o for o in book.buys if model.reaches_buy(o.price_f, low)] if low > 0.0 else []
        sells = [o for o in book.sells if model.reaches_sell(o.price_f, high)] if high > 0.0 else []
        avail = model.available(low_size) if shared else model.quoted(low_size)
        avail = self._fill_resting(buys, avail, inst)
        if not shared:
            avail = model.quoted(high_size)
        self._fill_resting(sells, avail, inst)
        book.reindex(model)

    def _fill_resting(self, orders: list[PaperOrder], avail: Decimal | None, inst: InstrumentSection) -> Decimal | None:
        """Fill ``orders`` in turn from ``avail`` (None: unlimited); returns what is left."""
        for o in orders:
            if avail is not None and avail <= 0:
                break
            remaining = o.remaining
            qty = remaining if avail is None or avail >= remaining else round_to(avail, inst.step_size, ROUND_FLOOR)
            if qty <= 0 or o.price is None:
                continue
            self._fill(o, qty, o.price, "maker", inst)
            if avail is not None:
                avail -= qty
        return avail

    # -- executions and endings ----------------------------------------------------------------
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

    def _end(self, o: PaperOrder, status: OrderStatus, reason: str) -> VenueOrder:
        """Close an open order without a fill (canceled, expired), releasing its lock; report it."""
        inst = self._instruments[o.symbol]
        asset = inst.quote if o.side is Side.BUY else inst.base
        self._release(asset, o.locked)
        o.locked = _ZERO
        o.status = status
        o.reason = reason
        o.updated_ms = self._clock.now_ms()
        self._close_order(o)
        self._journal.balance_changed(asset, self._wallet(asset))
        view = o.view(self.name)
        self._journal.order_changed(o, view)
        return view

    # -- books and balances -----------------------------------------------------------------------
    def _close_order(self, o: PaperOrder) -> None:
        if self.open.pop(o.cid, None) is None:
            return
        book = self._books.get(o.symbol)
        if book is not None:
            book.discard(o)
            book.reindex(self._model)

    def _lock(self, o: PaperOrder, asset: str, amount: Decimal) -> None:
        bal = self._wallet(asset)
        bal.free -= amount
        bal.locked += amount
        o.locked += amount
        self._journal.balance_changed(asset, bal)

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
