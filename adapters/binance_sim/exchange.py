"""The simulated venue's state machine: orders, fills, balances and public prints.

No networking here. REST handlers call the order methods; the market driver calls
:meth:`SimExchange.market_print` and :meth:`SimExchange.set_background`. Everything that a
client could observe is pushed to listeners (the stream hubs) synchronously and in order, so
an ``executionReport`` is queued before the REST reply that caused it is written.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol

from adapters.binance_sim import errors, payloads
from adapters.binance_sim.account import Account, InsufficientBalance
from adapters.binance_sim.clock import SimClock
from adapters.binance_sim.config import SimulatorConfig, SymbolConfig
from adapters.binance_sim.decimals import ZERO
from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.market_data import MarketStats, PublicTrade
from adapters.binance_sim.matching import BUY, SELL, Level, OrderBook, plan_taker
from adapters.binance_sim.order_params import STOP_TYPES, NewOrder, check_filters
from adapters.binance_sim.orders import Fill, Order, OrderStatus, OrderStore

UserEventKind = Literal["execution", "account", "balance"]
_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One user-data event payload; ``exec_type`` is the report's ``x`` for executions."""

    kind: UserEventKind
    payload: dict[str, Any]
    exec_type: str = ""


class ExchangeListener(Protocol):
    """Receiver of everything observable (implemented by the stream hubs)."""

    def on_public_trade(self, symbol: str, trade: PublicTrade) -> None:
        """A public print happened."""

    def on_book_changed(self, symbol: str) -> None:
        """The aggregated book of ``symbol`` may have changed."""

    def on_user_events(self, events: list[UserEvent]) -> None:
        """User-data events caused by one operation, in emission order."""


@dataclass(slots=True)
class SymbolState:
    """Per-symbol venue state."""

    cfg: SymbolConfig
    book: OrderBook
    stats: MarketStats
    next_trade_id: int = 1
    stops: list[Order] = field(default_factory=list)


class SimExchange:
    """Single-account spot venue with price-time priority among the user's resting orders."""

    def __init__(self, config: SimulatorConfig, clock: SimClock) -> None:
        self.config = config
        self.clock = clock
        self.account = Account(
            config.initial_balances, maker_fee_bps=config.maker_fee_bps, taker_fee_bps=config.taker_fee_bps
        )
        self.orders = OrderStore(config.order_history_max)
        self.symbols: dict[str, SymbolState] = {
            s.symbol: SymbolState(
                cfg=s,
                book=OrderBook(s.symbol),
                stats=MarketStats(
                    s.symbol,
                    s.initial_price,
                    recent_max=config.recent_trades_max,
                    minutes_max=config.candle_history_minutes,
                ),
            )
            for s in config.symbols
        }
        self.configs: Mapping[str, SymbolConfig] = {s.symbol: s for s in config.symbols}
        self._rng = random.Random(config.seed)
        self._listeners: list[ExchangeListener] = []

    # ------------------------------------------------------------------ plumbing
    def add_listener(self, listener: ExchangeListener) -> None:
        """Subscribe a hub to venue events."""
        self._listeners.append(listener)

    def state(self, symbol: str | None) -> SymbolState:
        """Per-symbol state, raising -1102/-1121 like Binance for a missing/unknown symbol."""
        if not symbol:
            raise errors.mandatory("symbol")
        st = self.symbols.get(symbol.upper())
        if st is None:
            raise errors.bad_symbol()
        return st

    def random_id(self, prefix: str = "") -> str:
        """A Binance-looking random client id (seeded, so runs are reproducible)."""
        return prefix + "".join(self._rng.choice(_ID_ALPHABET) for _ in range(22 - len(prefix)))

    def _emit_user(self, events: list[UserEvent]) -> None:
        changed = self.account.take_changed()
        if changed:
            events.append(UserEvent("account", payloads.account_position(self.account, changed, self.clock.now_ms())))
        if events:
            for listener in self._listeners:
                listener.on_user_events(events)

    def _book_changed(self, symbol: str) -> None:
        for listener in self._listeners:
            listener.on_book_changed(symbol)

    def _publish_trade(self, st: SymbolState, price: Decimal, qty: Decimal, buyer_is_maker: bool, now: int) -> None:
        trade = PublicTrade(st.next_trade_id, price, qty, now, buyer_is_maker)
        st.next_trade_id += 1
        st.stats.record(trade)
        for listener in self._listeners:
            listener.on_public_trade(st.cfg.symbol, trade)

    @staticmethod
    def _report(order: Order, exec_type: str, now: int, fill: Fill | None = None) -> UserEvent:
        return UserEvent(
            "execution",
            payloads.execution_report(order, exec_type=exec_type, event_time=now, fill=fill),
            exec_type,
        )

    # ------------------------------------------------------------------ order entry
    def _plan(self, st: SymbolState, order: Order, *, qty: Decimal | None, quote_qty: Decimal | None) -> list[Level]:
        is_buy = order.side == BUY
        limit = None if order.type == "MARKET" else order.price
        levels = st.book.background_levels(not is_buy)
        plan = plan_taker(levels, is_buy=is_buy, limit_price=limit, qty=qty, quote_qty=quote_qty, step=st.cfg.step_size)
        if order.time_in_force == "FOK" and sum((q for _, q in plan), ZERO) < order.orig_qty:
            return []
        return plan

    def validate(self, req: NewOrder) -> SymbolState:
        """All checks of an order short of reserving funds (also serves ``/order/test``)."""
        st = self.state(req.symbol)
        check_filters(req, st.cfg, st.stats.last_price)
        if req.client_order_id and self.orders.open_with_client_id(st.cfg.symbol, req.client_order_id):
            raise errors.duplicate_order()
        if req.type == "LIMIT_MAKER":
            assert req.price is not None
            opposite = st.book.best_ask() if req.side == BUY else st.book.best_bid()
            if opposite is not None and (req.price >= opposite[0] if req.side == BUY else req.price <= opposite[0]):
                raise errors.would_take()
        if req.type in STOP_TYPES:
            assert req.stop_price is not None
            if self._stop_triggered(req.type, req.side, req.stop_price, st.stats.last_price):
                raise ApiError(400, -2010, "Stop price would trigger immediately.")
        return st

    def place_order(self, req: NewOrder) -> tuple[Order, list[Fill], int]:
        """Accept (or refuse with :class:`ApiError`) a new order; returns ``(order, fills, transactTime)``."""
        st = self.validate(req)
        cfg = st.cfg
        now = self.clock.now_ms()
        is_buy = req.side == BUY
        is_stop = req.type in STOP_TYPES
        order = Order(
            symbol=cfg.symbol,
            order_id=0,
            client_order_id=req.client_order_id or self.random_id(),
            side=req.side,
            type=req.type,
            time_in_force=req.time_in_force,
            price=req.price if req.price is not None else ZERO,
            orig_qty=req.quantity if req.quantity is not None else ZERO,
            orig_quote_qty=req.quote_qty if req.quote_qty is not None else ZERO,
            stop_price=req.stop_price if req.stop_price is not None else ZERO,
            time_ms=now,
            locked_asset=cfg.quote_asset if is_buy else cfg.base_asset,
            locked=ZERO,
            seq=0,
            working_time_ms=-1 if is_stop else now,
            self_trade_prevention=req.stp_mode,
            update_time_ms=now,
        )
        plan: list[Level] = []
        if not is_stop:
            plan = self._plan(st, order, qty=req.quantity, quote_qty=req.quote_qty)
        if req.type == "MARKET":
            planned_qty = sum((q for _, q in plan), ZERO)
            planned_cost = sum((p * q for p, q in plan), ZERO)
            if req.quantity is None:
                order.orig_qty = planned_qty
            if is_buy:
                lock = req.quote_qty if req.quote_qty is not None else planned_cost
            else:
                lock = order.orig_qty
        else:
            lock = order.price * order.orig_qty if is_buy else order.orig_qty
        try:
            self.account.lock(order.locked_asset, lock)
        except InsufficientBalance:
            raise errors.insufficient_balance() from None
        self.account.update_time_ms = now
        order.locked = lock
        order.order_id = self.orders.next_order_id()
        order.seq = self.orders.next_seq()
        self.orders.add(order)

        events = [self._report(order, "NEW", now)]
        fills: list[Fill] = []
        if is_stop:
            st.stops.append(order)
        else:
            self._take(st, order, plan, events, fills, now)
        self._emit_user(events)
        self._book_changed(cfg.symbol)
        return order, fills, now

    def _take(
        self, st: SymbolState, order: Order, plan: list[Level], events: list[UserEvent], fills: list[Fill], now: int
    ) -> None:
        """Execute ``plan`` against background liquidity, then rest or expire the rest."""
        is_buy = order.side == BUY
        for price, qty in plan:
            st.book.consume_background(not is_buy, price, qty)
            fill = self._execute(st, order, price, qty, maker=False, now=now)
            fills.append(fill)
            events.append(self._report(order, "TRADE", now, fill))
        if order.status == OrderStatus.FILLED:
            return
        if order.type == "MARKET" or order.time_in_force in ("IOC", "FOK"):
            order.status = OrderStatus.EXPIRED
            order.update_time_ms = now
            self._finish(order)
            events.append(self._report(order, "EXPIRED", now))
        else:
            st.book.add_resting(order)

    def _execute(self, st: SymbolState, order: Order, price: Decimal, qty: Decimal, *, maker: bool, now: int) -> Fill:
        """Settle one execution of ``order``: balances, commission, order state, public print."""
        cfg = st.cfg
        quote = price * qty
        acct = self.account
        if order.side == BUY:
            reserve = quote if order.type == "MARKET" else order.price * qty
            acct.debit_locked(cfg.quote_asset, quote)
            acct.unlock(cfg.quote_asset, reserve - quote)
            order.locked -= reserve
            commission = acct.commission(qty, maker=maker, precision=cfg.base_asset_precision)
            acct.credit(cfg.base_asset, qty - commission)
            commission_asset = cfg.base_asset
        else:
            acct.debit_locked(cfg.base_asset, qty)
            order.locked -= qty
            commission = acct.commission(quote, maker=maker, precision=cfg.quote_asset_precision)
            acct.credit(cfg.quote_asset, quote - commission)
            commission_asset = cfg.quote_asset
        acct.update_time_ms = now
        order.executed_qty += qty
        order.cum_quote += quote
        order.update_time_ms = now
        order.status = OrderStatus.FILLED if order.remaining <= 0 else OrderStatus.PARTIALLY_FILLED
        fill = Fill(
            symbol=cfg.symbol,
            trade_id=st.next_trade_id,
            order_id=order.order_id,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote,
            commission=commission,
            commission_asset=commission_asset,
            time_ms=now,
            is_maker=maker,
        )
        order.fills.append(fill)
        self.orders.add_fill(fill)
        self._publish_trade(st, price, qty, (order.side == BUY) == maker, now)
        if order.status == OrderStatus.FILLED:
            self._finish(order)
        return fill

    def _finish(self, order: Order) -> None:
        """Release what a final order still holds and close it."""
        if order.locked:
            self.account.unlock(order.locked_asset, order.locked)
            order.locked = ZERO
        self.orders.mark_closed(order)

    # ------------------------------------------------------------------ queries and cancels
    def find_order(self, st: SymbolState, order_id: int | None, orig_client_id: str | None) -> Order | None:
        """Look an order up by id (preferred) or client id."""
        if order_id is not None:
            return self.orders.get(st.cfg.symbol, order_id)
        if orig_client_id:
            return self.orders.get_by_client_id(st.cfg.symbol, orig_client_id)
        raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")

    def query_order(self, symbol: str | None, order_id: int | None, orig_client_id: str | None) -> Order:
        """``GET /order`` (-2013 when unknown)."""
        order = self.find_order(self.state(symbol), order_id, orig_client_id)
        if order is None:
            raise errors.order_not_found()
        return order

    def cancel_order(
        self, symbol: str | None, order_id: int | None, orig_client_id: str | None, new_client_id: str | None = None
    ) -> tuple[Order, str, int]:
        """``DELETE /order``; returns ``(order, cancel client id, transactTime)`` (-2011 when not open)."""
        st = self.state(symbol)
        order = self.find_order(st, order_id, orig_client_id)
        if order is None or not order.is_open:
            raise errors.unknown_order()
        now = self.clock.now_ms()
        cancel_id = new_client_id or self.random_id()
        self._cancel(st, order, cancel_id, now)
        return order, cancel_id, now

    def _cancel(self, st: SymbolState, order: Order, cancel_id: str, now: int) -> None:
        if order in st.stops:
            st.stops.remove(order)
        else:
            st.book.remove_resting(order)
        order.status = OrderStatus.CANCELED
        order.update_time_ms = now
        self._finish(order)
        self.account.update_time_ms = now
        event = UserEvent(
            "execution",
            payloads.execution_report(order, exec_type="CANCELED", event_time=now, cancel_client_id=cancel_id),
            "CANCELED",
        )
        self._emit_user([event])
        self._book_changed(st.cfg.symbol)

    def cancel_all(self, symbol: str | None) -> list[tuple[Order, str, int]]:
        """``DELETE /openOrders`` for one symbol (-2011 when nothing is open, as on Binance)."""
        st = self.state(symbol)
        open_orders = self.orders.open_orders(st.cfg.symbol)
        if not open_orders:
            raise errors.unknown_order()
        out = []
        for order in open_orders:
            now = self.clock.now_ms()
            cancel_id = self.random_id()
            self._cancel(st, order, cancel_id, now)
            out.append((order, cancel_id, now))
        return out

    def open_orders(self, symbol: str | None) -> list[Order]:
        """Open orders of one symbol, or all symbols when ``symbol`` is None."""
        if symbol is None:
            return self.orders.open_orders()
        return self.orders.open_orders(self.state(symbol).cfg.symbol)

    def all_orders(
        self, symbol: str | None, *, order_id: int | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[Order]:
        """``GET /allOrders`` selection."""
        orders = self.orders.all_orders(self.state(symbol).cfg.symbol)
        if order_id is not None:
            return [o for o in orders if o.order_id >= order_id][:limit]
        if start_ms is not None or end_ms is not None:
            lo = start_ms if start_ms is not None else 0
            hi = end_ms if end_ms is not None else 1 << 62
            selected = [o for o in orders if lo <= o.time_ms <= hi]
            return selected[:limit] if start_ms is not None else selected[-limit:]
        return orders[-limit:]

    def my_trades(
        self,
        symbol: str | None,
        *,
        order_id: int | None,
        from_id: int | None,
        start_ms: int | None,
        end_ms: int | None,
        limit: int,
    ) -> list[Fill]:
        """``GET /myTrades`` selection."""
        fills = self.orders.fills(self.state(symbol).cfg.symbol)
        if order_id is not None:
            fills = [f for f in fills if f.order_id == order_id]
        if from_id is not None:
            return [f for f in fills if f.trade_id >= from_id][:limit]
        if start_ms is not None or end_ms is not None:
            lo = start_ms if start_ms is not None else 0
            hi = end_ms if end_ms is not None else 1 << 62
            selected = [f for f in fills if lo <= f.time_ms <= hi]
            return selected[:limit] if start_ms is not None else selected[-limit:]
        return fills[-limit:]

    # ------------------------------------------------------------------ market side
    @staticmethod
    def _stop_triggered(otype: str, side: str, stop: Decimal, last: Decimal) -> bool:
        rising = (otype == "STOP_LOSS_LIMIT") == (side == BUY)
        return last >= stop if rising else last <= stop

    def market_print(
        self, symbol: str, price: Decimal, qty: Decimal, taker_side: str, *, time_ms: int | None = None
    ) -> None:
        """A public trade of ``qty`` at ``price``; resting user orders it reaches fill first.

        User orders get ``min(order remaining, print remaining)`` at their own limit price
        (they are makers), best price then oldest first; what is left of the print is
        published as its own trade.
        """
        st = self.symbols[symbol]
        now = time_ms if time_ms is not None else self.clock.now_ms()
        events: list[UserEvent] = []
        left = qty
        for order in st.book.resting_through(price, inclusive=self.config.fill_on_touch):
            if left <= 0:
                break
            take = min(order.remaining, left)
            fill = self._execute(st, order, order.price, take, maker=True, now=now)
            st.book.resting_filled(order, take)
            events.append(self._report(order, "TRADE", now, fill))
            left -= take
        if left > 0:
            self._publish_trade(st, price, left, taker_side == SELL, now)
        triggered = self._trigger_stops(st, price, events, now) if st.stops else False
        self._emit_user(events)
        if events or triggered:
            self._book_changed(symbol)

    def _trigger_stops(self, st: SymbolState, last: Decimal, events: list[UserEvent], now: int) -> bool:
        """Activate stop orders ``last`` reaches; True if any did."""
        triggered = False
        for order in list(st.stops):
            if not self._stop_triggered(order.type, order.side, order.stop_price, last):
                continue
            triggered = True
            st.stops.remove(order)
            order.working_time_ms = now
            order.update_time_ms = now
            plan = self._plan(st, order, qty=order.orig_qty, quote_qty=None)
            self._take(st, order, plan, events, [], now)
        return triggered

    def set_background(self, symbol: str, bids: Mapping[Decimal, Decimal], asks: Mapping[Decimal, Decimal]) -> None:
        """Replace the simulated liquidity of ``symbol``."""
        self.symbols[symbol].book.set_background(bids, asks)
        self._book_changed(symbol)

    def deposit(self, asset: str, amount: Decimal, *, with_position: bool = True) -> None:
        """Credit (or, negative, debit) ``asset`` and emit ``balanceUpdate`` (+ position)."""
        now = self.clock.now_ms()
        try:
            self.account.credit(asset, amount)
        except InsufficientBalance:
            raise errors.insufficient_balance() from None
        self.account.update_time_ms = now
        events = [UserEvent("balance", payloads.balance_update(asset, amount, now))]
        if not with_position:
            self.account.take_changed()
            for listener in self._listeners:
                listener.on_user_events(events)
            return
        self._emit_user(events)
