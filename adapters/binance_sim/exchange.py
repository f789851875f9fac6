"""The simulated venue's state machine: orders, fills, balances and public prints.

No networking here. REST handlers call the order methods; the market driver calls
:meth:`SimExchange.market_print` and :meth:`SimExchange.set_background`. Everything that a
client could observe is pushed to listeners (the stream hubs) synchronously and in order, so
an ``executionReport`` is queued before the REST reply that caused it is written.

Stop orders (STOP_LOSS, TAKE_PROFIT and their LIMIT forms, plain or trailing) wait in
``SymbolState.stops`` until a print triggers them (:mod:`adapters.binance_sim.triggers`); a
triggered stop is reported ``NEW`` again, now working, and then executes like a MARKET or LIMIT
order. Order lists live in :class:`~adapters.binance_sim.order_list_engine.OrderListEngine`.
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

from adapters.binance_sim import errors, payloads
from adapters.binance_sim.account import Account, InsufficientBalance
from adapters.binance_sim.clock import SimClock
from adapters.binance_sim.config import SimulatorConfig, SymbolConfig
from adapters.binance_sim.decimals import ZERO
from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.market_data import MarketStats, PublicTrade
from adapters.binance_sim.matching import BUY, SELL, Level, OrderBook, plan_taker
from adapters.binance_sim.order_entry import build_order, reservation
from adapters.binance_sim.order_list_engine import OrderListEngine
from adapters.binance_sim.order_lists import CanceledList
from adapters.binance_sim.order_params import NewOrder, check_filters
from adapters.binance_sim.orders import Fill, Order, OrderStatus, OrderStore
from adapters.binance_sim.triggers import advance, start_trailing, stop_reached
from adapters.binance_sim.user_events import UserEvent, UserEventKind
from adapters.binance_sim.venue_state import SymbolState

_ID_ALPHABET = string.ascii_letters + string.digits


class ExchangeListener(Protocol):
    """Receiver of everything observable (implemented by the stream hubs)."""

    def on_public_trade(self, symbol: str, trade: PublicTrade) -> None:
        """A public print happened."""

    def on_book_changed(self, symbol: str) -> None:
        """The aggregated book of ``symbol`` may have changed."""

    def on_user_events(self, events: list[UserEvent]) -> None:
        """User-data events caused by one operation, in emission order."""


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
        #: Order lists (OCO, OTO, OTOCO): placement, contingencies, cancels and queries.
        self.lists = OrderListEngine(self)

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

    def emit_user(self, events: list[UserEvent]) -> None:
        """Resolve order-list consequences, add the account position, hand ``events`` to the hubs."""
        self.lists.settle(events, self.clock.now_ms())
        changed = self.account.take_changed()
        if changed:
            events.append(UserEvent("account", payloads.account_position(self.account, changed, self.clock.now_ms())))
        if events:
            for listener in self._listeners:
                listener.on_user_events(events)

    def book_changed(self, symbol: str) -> None:
        """Tell the hubs that the book of ``symbol`` may have changed."""
        for listener in self._listeners:
            listener.on_book_changed(symbol)

    def _publish_trade(self, st: SymbolState, price: Decimal, qty: Decimal, buyer_is_maker: bool, now: int) -> None:
        trade = PublicTrade(st.next_trade_id, price, qty, now, buyer_is_maker)
        st.next_trade_id += 1
        st.stats.record(trade)
        for listener in self._listeners:
            listener.on_public_trade(st.cfg.symbol, trade)

    @staticmethod
    def report(order: Order, exec_type: str, now: int, fill: Fill | None = None) -> UserEvent:
        """An ``executionReport`` user event for ``order`` as it is now."""
        return UserEvent(
            "execution",
            payloads.execution_report(order, exec_type=exec_type, event_time=now, fill=fill),
            exec_type,
        )

    # ------------------------------------------------------------------ order entry
    def _plan(self, st: SymbolState, order: Order, *, qty: Decimal | None, quote_qty: Decimal | None) -> list[Level]:
        is_buy = order.side == BUY
        limit = None if order.executes_as_market else order.price
        levels = st.book.background_levels(not is_buy)
        plan = plan_taker(levels, is_buy=is_buy, limit_price=limit, qty=qty, quote_qty=quote_qty, step=st.cfg.step_size)
        if order.time_in_force == "FOK" and sum((q for _, q in plan), ZERO) < order.remaining:
            return []
        return plan

    def would_take(self, st: SymbolState, side: str, price: Decimal) -> bool:
        """True when a LIMIT_MAKER at ``price`` would cross the book."""
        opposite = st.book.best_ask() if side == BUY else st.book.best_bid()
        return opposite is not None and (price >= opposite[0] if side == BUY else price <= opposite[0])

    def validate(self, req: NewOrder, *, pending: bool = False) -> SymbolState:
        """All checks of an order short of reserving funds (also serves ``/order/test``).

        ``pending``: an order list leg that waits for its working order; whether a
        LIMIT_MAKER would take is decided when it is placed, not now.
        """
        st = self.state(req.symbol)
        check_filters(req, st.cfg, st.stats.last_price)
        if req.client_order_id and self.orders.open_with_client_id(st.cfg.symbol, req.client_order_id):
            raise errors.duplicate_order()
        if req.type == "LIMIT_MAKER" and not pending:
            assert req.price is not None
            if self.would_take(st, req.side, req.price):
                raise errors.would_take()
        if req.stop_price is not None and stop_reached(req.type, req.side, req.stop_price, st.stats.last_price):
            raise ApiError(400, -2010, "Stop price would trigger immediately.")
        return st

    def new_order(
        self, st: SymbolState, req: NewOrder, now: int, *, order_list_id: int = -1, pending: bool = False
    ) -> Order:
        """An unregistered order for a validated ``req`` (nothing reserved yet)."""
        client_id = req.client_order_id or self.random_id()
        status = OrderStatus.PENDING_NEW if pending else OrderStatus.NEW
        return build_order(st.cfg, req, now, client_id, order_list_id=order_list_id, status=status)

    def reserve(self, order: Order, amount: Decimal, now: int) -> None:
        """Lock ``amount`` for ``order`` (-2010 insufficient balance)."""
        try:
            self.account.lock(order.locked_asset, amount)
        except InsufficientBalance:
            raise errors.insufficient_balance() from None
        self.account.update_time_ms = now
        order.locked += amount

    def register(self, order: Order) -> None:
        """Give ``order`` its id and time priority and make it queryable."""
        order.order_id = self.orders.next_order_id()
        order.seq = self.orders.next_seq()
        self.orders.add(order)

    def place_order(self, req: NewOrder) -> tuple[Order, list[Fill], int]:
        """Accept (or refuse with :class:`ApiError`) a new order; returns ``(order, fills, transactTime)``."""
        st = self.validate(req)
        now = self.clock.now_ms()
        order = self.new_order(st, req, now)
        plan: list[Level] = []
        if req.type == "MARKET":
            plan = self._plan(st, order, qty=req.quantity, quote_qty=req.quote_qty)
            planned_cost = sum((p * q for p, q in plan), ZERO)
            if req.quantity is None:
                order.orig_qty = sum((q for _, q in plan), ZERO)
            if order.side == BUY:
                lock = req.quote_qty if req.quote_qty is not None else planned_cost
            else:
                lock = order.orig_qty
        else:
            lock = reservation(order, st.stats.last_price)
        self.reserve(order, lock, now)
        self.register(order)
        events = [self.report(order, "NEW", now)]
        fills: list[Fill] = []
        self.start(st, order, events, fills, now, plan=plan if req.type == "MARKET" else None)
        self.emit_user(events)
        self.book_changed(st.cfg.symbol)
        return order, fills, now

    def start(
        self,
        st: SymbolState,
        order: Order,
        events: list[UserEvent],
        fills: list[Fill],
        now: int,
        *,
        plan: list[Level] | None = None,
    ) -> None:
        """Put an accepted order to work: arm a stop, or take liquidity and rest/expire the rest."""
        order.status = OrderStatus.NEW
        if order.is_stop:
            order.working_time_ms = -1
            if order.trailing_delta > 0 and order.stop_price == 0:
                start_trailing(order, st.stats.last_price, now)
            st.stops.append(order)
            return
        order.working_time_ms = now
        if plan is None:
            plan = self._plan(st, order, qty=order.remaining, quote_qty=None)
        self._take(st, order, plan, events, fills, now)

    def _take(
        self, st: SymbolState, order: Order, plan: list[Level], events: list[UserEvent], fills: list[Fill], now: int
    ) -> None:
        """Execute ``plan`` against background liquidity, then rest or expire the rest."""
        is_buy = order.side == BUY
        for price, qty in plan:
            st.book.consume_background(not is_buy, price, qty)
            fill = self._execute(st, order, price, qty, maker=False, now=now)
            fills.append(fill)
            events.append(self.report(order, "TRADE", now, fill))
        if order.status == OrderStatus.FILLED:
            return
        if order.executes_as_market or order.time_in_force in ("IOC", "FOK"):
            self.expire(st, order, events, now)
        else:
            st.book.add_resting(order)

    def _execute(self, st: SymbolState, order: Order, price: Decimal, qty: Decimal, *, maker: bool, now: int) -> Fill:
        """Settle one execution of ``order``: balances, commission, order state, public print."""
        cfg = st.cfg
        quote = price * qty
        acct = self.account
        if order.side == BUY:
            reserve = quote if order.executes_as_market else order.price * qty
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
            order_list_id=order.order_list_id,
        )
        order.fills.append(fill)
        self.orders.add_fill(fill)
        self._publish_trade(st, price, qty, (order.side == BUY) == maker, now)
        if order.status == OrderStatus.FILLED:
            self._finish(order)
        else:
            self.lists.touch(order)
        return fill

    def _finish(self, order: Order) -> None:
        """Release what a final order still holds and close it."""
        if order.locked:
            self.account.unlock(order.locked_asset, order.locked)
            order.locked = ZERO
        self.orders.mark_closed(order)
        self.lists.touch(order)

    def _withdraw(self, st: SymbolState, order: Order) -> None:
        """Take an order off the book / out of the waiting stops (no-op if it is in neither)."""
        if order in st.stops:
            st.stops.remove(order)
        else:
            st.book.remove_resting(order)

    def expire(self, st: SymbolState, order: Order, events: list[UserEvent], now: int) -> None:
        """End an open order as EXPIRED (by the venue's rules, not by the user)."""
        self._withdraw(st, order)
        order.status = OrderStatus.EXPIRED
        order.update_time_ms = now
        self._finish(order)
        self.account.update_time_ms = now
        events.append(self.report(order, "EXPIRED", now))

    def cancel_into(self, st: SymbolState, order: Order, cancel_id: str, now: int, events: list[UserEvent]) -> None:
        """End an open order as CANCELED by the user; its report goes to ``events``."""
        self._withdraw(st, order)
        order.status = OrderStatus.CANCELED
        order.update_time_ms = now
        self._finish(order)
        self.account.update_time_ms = now
        events.append(
            UserEvent(
                "execution",
                payloads.execution_report(order, exec_type="CANCELED", event_time=now, cancel_client_id=cancel_id),
                "CANCELED",
            )
        )

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
        events: list[UserEvent] = []
        self.cancel_into(st, order, cancel_id, now, events)
        self.emit_user(events)
        self.book_changed(st.cfg.symbol)

    def cancel_all(self, symbol: str | None) -> list[tuple[Order, str, int] | CanceledList]:
        """``DELETE /openOrders`` for one symbol (-2011 when nothing is open, as on Binance).

        Orders of an order list are canceled with their list, which is returned in their place.
        """
        st = self.state(symbol)
        open_orders = self.orders.open_orders(st.cfg.symbol)
        if not open_orders:
            raise errors.unknown_order()
        singles: list[tuple[Order, str, int] | CanceledList] = []
        lists: list[tuple[Order, str, int] | CanceledList] = []
        for order in open_orders:
            if not order.is_open:
                continue  # closed meanwhile, together with its list
            if order.order_list_id >= 0:
                lists.append(self.lists.cancel(st.cfg.symbol, order.order_list_id, None, None))
                continue
            now = self.clock.now_ms()
            cancel_id = self.random_id()
            self._cancel(st, order, cancel_id, now)
            singles.append((order, cancel_id, now))
        return singles + lists

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
    def market_print(
        self, symbol: str, price: Decimal, qty: Decimal, taker_side: str, *, time_ms: int | None = None
    ) -> None:
        """A public trade of ``qty`` at ``price``; resting user orders it reaches fill first.

        User orders get ``min(visible quantity, print remaining)`` at their own limit price
        (they are makers), best price then oldest first; what is left of the print is
        published as its own trade. Then waiting stops see the price.
        """
        st = self.symbols[symbol]
        now = time_ms if time_ms is not None else self.clock.now_ms()
        events: list[UserEvent] = []
        left = qty
        for order in st.book.resting_through(price, inclusive=self.config.fill_on_touch):
            if left <= 0:
                break
            if not order.is_open:
                continue  # expired by its order list earlier in this print
            take = min(order.visible, left)
            fill = self._execute(st, order, order.price, take, maker=True, now=now)
            st.book.resting_filled(order, take)
            events.append(self.report(order, "TRADE", now, fill))
            left -= take
            self.lists.settle(events, now)
        if left > 0:
            self._publish_trade(st, price, left, taker_side == SELL, now)
        triggered = self._trigger_stops(st, price, events, now) if st.stops else False
        self.emit_user(events)
        if events or triggered:
            self.book_changed(symbol)

    def _trigger_stops(self, st: SymbolState, last: Decimal, events: list[UserEvent], now: int) -> bool:
        """Let waiting stops see ``last``; activate those it triggers. True if any did."""
        triggered = False
        for order in list(st.stops):
            if order not in st.stops or not advance(order, last, now):
                continue  # expired by a sibling meanwhile, or not triggered
            triggered = True
            st.stops.remove(order)
            order.working_time_ms = now
            order.update_time_ms = now
            events.append(self.report(order, "NEW", now))
            self.lists.on_triggered(order, events, now)
            if order.executes_as_market and not self._rereserve(st, order, now):
                self.expire(st, order, events, now)
                continue
            self._take(st, order, self._plan(st, order, qty=order.remaining, quote_qty=None), events, [], now)
            self.lists.settle(events, now)
        return triggered

    def _rereserve(self, st: SymbolState, order: Order, now: int) -> bool:
        """Swap a triggered BUY stop-market's estimate for its real cost; False if unaffordable."""
        if order.side != BUY:
            return True
        plan = self._plan(st, order, qty=order.remaining, quote_qty=None)
        cost = sum((p * q for p, q in plan), ZERO)
        self.account.unlock(order.locked_asset, order.locked)
        order.locked = ZERO
        try:
            self.reserve(order, cost, now)
        except ApiError:
            return False
        return True

    def set_background(self, symbol: str, bids: Mapping[Decimal, Decimal], asks: Mapping[Decimal, Decimal]) -> None:
        """Replace the simulated liquidity of ``symbol``."""
        self.symbols[symbol].book.set_background(bids, asks)
        self.book_changed(symbol)

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
        self.emit_user(events)


__all__ = ["ExchangeListener", "SimExchange", "SymbolState", "UserEvent", "UserEventKind"]
