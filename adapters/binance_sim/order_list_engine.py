"""Order lists on the simulated venue: placing OCO / OTO / OTOCO, their contingencies, cancels.

The exchange calls in at three points: :meth:`OrderListEngine.touch` whenever a list order
trades or ends, :meth:`OrderListEngine.on_triggered` when a list's stop leg triggers (before
it executes), and :meth:`OrderListEngine.settle` before every batch of user events goes out.
``settle`` applies the rules of :mod:`adapters.binance_sim.order_lists` (OCO legs expire each
other, a filled working order releases its pending legs...) and sends ``listStatus`` when a
list is done.

Funds: an OCO pair holds one reservation, the larger of its legs' needs, on its LIMIT_MAKER
leg (else its first leg); a stop leg that triggers takes it over. Pending legs reserve
nothing until they are released.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from adapters.binance_sim import errors, payloads
from adapters.binance_sim.decimals import ZERO
from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.list_params import (
    OCO_LEG_TYPES,
    WORKING_TYPES,
    check_oco_prices,
    check_oco_types,
    from_legacy_oco,
    list_client_id,
    oco_type_refused,
    parse_leg,
    stop_loss_first,
)
from adapters.binance_sim.list_payloads import list_result, list_status
from adapters.binance_sim.order_entry import reservation
from adapters.binance_sim.order_lists import CanceledList, OrderList, OrderListStore
from adapters.binance_sim.order_params import NewOrder
from adapters.binance_sim.orders import Fill, Order, OrderStatus
from adapters.binance_sim.user_events import UserEvent
from adapters.binance_sim.venue_state import SymbolState, VenueOps

Json = dict[str, Any]


def _activated(order: Order) -> bool:
    """An OCO leg that traded, triggered or ended: its siblings must go."""
    return order.executed_qty > 0 or not order.is_open or (order.is_stop and order.is_working)


def _oco_reservation(legs: Sequence[Order], last_price: Decimal) -> tuple[Order, Decimal]:
    holder = next((o for o in legs if o.type == "LIMIT_MAKER"), legs[0])
    return holder, max(reservation(o, last_price) for o in legs)


class OrderListEngine:
    """Order lists of one venue (the :class:`~adapters.binance_sim.exchange.SimExchange`)."""

    def __init__(self, exchange: VenueOps) -> None:
        self._ex = exchange
        self.store = OrderListStore(exchange.config.order_history_max)
        self._dirty: list[OrderList] = []

    # ------------------------------------------------------------------ placement
    def place_oco(self, params: Mapping[str, str]) -> Json:
        """``POST /api/v3/orderList/oco``: the list answer (``orderReports`` per ``newOrderRespType``)."""
        ex = self._ex
        check_oco_types(params, "aboveType", "belowType", "side")
        legs = [
            parse_leg(params, ex.configs, prefix, side="side", quantity="quantity", allowed=OCO_LEG_TYPES,
                      refusal=oco_type_refused())
            for prefix in ("above", "below")
        ]
        st = ex.state(legs[0].symbol)
        check_oco_prices(legs[0], legs[1], st.stats.last_price)
        ordered = stop_loss_first((legs[0], legs[1]))
        for leg in ordered:
            ex.validate(leg)
        return self._place(st, params, active=ordered, pending=())

    def place_legacy_oco(self, params: Mapping[str, str]) -> Json:
        """``POST /api/v3/order/oco`` (deprecated form, same list)."""
        return self.place_oco(from_legacy_oco(params))

    def place_oto(self, params: Mapping[str, str]) -> Json:
        """``POST /api/v3/orderList/oto``: a working LIMIT/LIMIT_MAKER and one pending order."""
        ex = self._ex
        working = self._working_leg(params)
        pending = parse_leg(params, ex.configs, "pending", side="pendingSide", quantity="pendingQuantity",
                            allowed=ex.configs[working.symbol].order_types, refusal=_invalid_type())
        st = ex.validate(working)
        ex.validate(pending, pending=True)
        return self._place(st, params, active=(working,), pending=(pending,))

    def place_otoco(self, params: Mapping[str, str]) -> Json:
        """``POST /api/v3/orderList/otoco``: a working order and a pending OCO pair."""
        ex = self._ex
        working = self._working_leg(params)
        check_oco_types(params, "pendingAboveType", "pendingBelowType", "pendingSide")
        pair = [
            parse_leg(params, ex.configs, prefix, side="pendingSide", quantity="pendingQuantity",
                      allowed=OCO_LEG_TYPES, refusal=oco_type_refused())
            for prefix in ("pendingAbove", "pendingBelow")
        ]
        st = ex.validate(working)
        check_oco_prices(pair[0], pair[1], st.stats.last_price)
        ordered = stop_loss_first((pair[0], pair[1]))
        for leg in ordered:
            ex.validate(leg, pending=True)
        return self._place(st, params, active=(working,), pending=ordered)

    def _working_leg(self, params: Mapping[str, str]) -> NewOrder:
        return parse_leg(params, self._ex.configs, "working", side="workingSide", quantity="workingQuantity",
                         allowed=WORKING_TYPES, refusal=_invalid_type())

    def _place(
        self, st: SymbolState, params: Mapping[str, str], *, active: Sequence[NewOrder], pending: Sequence[NewOrder]
    ) -> Json:
        """Reserve, register and start a validated list; the answer shows it before any release."""
        ex = self._ex
        client_id = list_client_id(params) or ex.random_id()
        if any(lst.list_client_order_id == client_id for lst in self.store.open_lists()):
            raise errors.duplicate_order()
        resp_type = params.get("newOrderRespType") or "FULL"
        now = ex.clock.now_ms()
        last = st.stats.last_price
        working = [ex.new_order(st, leg, now) for leg in active]
        waiting = [ex.new_order(st, leg, now, pending=True) for leg in pending]
        if pending:
            ex.reserve(working[0], reservation(working[0], last), now)
        else:
            holder, amount = _oco_reservation(working, last)
            ex.reserve(holder, amount, now)
        lst = OrderList(self.store.next_id(), "OCO" if not pending else "OTO", st.cfg.symbol, client_id, now)
        for order in [*working, *waiting]:
            order.order_list_id = lst.order_list_id
            ex.register(order)
            lst.orders.append(order)
        if pending:
            lst.working, lst.pending = working[0], waiting
            lst.oco = waiting if len(waiting) == 2 else []
        else:
            lst.oco = working
        self.store.add(lst)
        events: list[UserEvent] = [ex.report(o, "NEW", now) for o in lst.orders]
        events.append(self._status_event(lst, now))
        fills: dict[int, list[Fill]] = {o.order_id: [] for o in lst.orders}
        for order in working:
            ex.start(st, order, events, fills[order.order_id], now)
        body = list_result(lst, (payloads.order_result(o, fills[o.order_id], resp_type, now) for o in lst.orders))
        ex.emit_user(events)
        ex.book_changed(st.cfg.symbol)
        return body

    # ------------------------------------------------------------------ contingencies
    def touch(self, order: Order) -> None:
        """``order`` traded or ended: its list (if any) needs settling."""
        if order.order_list_id < 0:
            return
        lst = self.store.get(order.order_list_id)
        if lst is not None and not lst.done and lst not in self._dirty:
            self._dirty.append(lst)

    def on_triggered(self, order: Order, events: list[UserEvent], now: int) -> None:
        """An OCO stop leg triggered: it takes over the pair's reservation; the others expire."""
        lst = self.store.get(order.order_list_id) if order.order_list_id >= 0 else None
        if lst is None or order not in lst.oco:
            return
        st = self._ex.symbols[lst.symbol]
        for sibling in lst.oco:
            if sibling is order or not sibling.is_open:
                continue
            if order.locked == 0 and sibling.locked > 0:
                order.locked, sibling.locked = sibling.locked, ZERO
            self._ex.expire(st, sibling, events, now)

    def settle(self, events: list[UserEvent], now: int) -> None:
        """Apply the list rules to every touched list (may trade, so may touch more lists)."""
        while self._dirty:
            lst = self._dirty.pop(0)
            if not lst.done:
                self._settle(lst, events, now)

    def _settle(self, lst: OrderList, events: list[UserEvent], now: int) -> None:
        ex = self._ex
        st = ex.symbols[lst.symbol]
        group = [o for o in lst.oco if o.status != OrderStatus.PENDING_NEW]
        if any(_activated(o) for o in group):
            for order in group:
                if order.is_open and not _activated(order):
                    ex.expire(st, order, events, now)
        working = lst.working
        if working is not None:
            waiting = [o for o in lst.pending if o.status == OrderStatus.PENDING_NEW]
            if waiting and working.status == OrderStatus.FILLED:
                self._release(st, waiting, events, now)
            elif waiting and not working.is_open:
                for order in waiting:
                    ex.expire(st, order, events, now)
            elif working.is_open and any(not o.is_open for o in lst.pending):
                for order in [working, *waiting]:
                    if order.is_open:
                        ex.expire(st, order, events, now)
        if all(not o.is_open for o in lst.orders):
            self.store.mark_done(lst)
            events.append(self._status_event(lst, now))

    def _release(self, st: SymbolState, waiting: list[Order], events: list[UserEvent], now: int) -> None:
        """The working order filled: reserve for the pending legs and put them to work."""
        ex = self._ex
        holder, amount = _oco_reservation(waiting, st.stats.last_price)
        try:
            ex.reserve(holder, amount, now)
        except ApiError:
            for order in waiting:
                ex.expire(st, order, events, now)
            return
        for order in waiting:
            if not order.is_open:
                continue  # expired by its sibling while this loop ran
            order.status = OrderStatus.NEW
            order.working_time_ms = -1 if order.is_stop else now
            events.append(ex.report(order, "NEW", now))
            if order.type == "LIMIT_MAKER" and ex.would_take(st, order.side, order.price):
                ex.expire(st, order, events, now)
                continue
            ex.start(st, order, events, [], now)
        ex.book_changed(st.cfg.symbol)

    @staticmethod
    def _status_event(lst: OrderList, now: int) -> UserEvent:
        return UserEvent("list", list_status(lst, now))

    # ------------------------------------------------------------------ cancels and queries
    def cancel(
        self, symbol: str | None, list_id: int | None, list_client_order_id: str | None, new_client_id: str | None
    ) -> CanceledList:
        """``DELETE /api/v3/orderList``: cancel every open order of the list under one cancel id."""
        ex = self._ex
        st = ex.state(symbol)
        if list_id is None and not list_client_order_id:
            raise ApiError(
                400, -1102, "Param 'orderListId' or 'listClientOrderId' must be sent, but both were empty/null!"
            )
        lst = self._find(list_id, list_client_order_id)
        if lst is None or lst.done or lst.symbol != st.cfg.symbol:
            raise ApiError(400, -2011, "Unknown order list sent.")
        now = ex.clock.now_ms()
        cancel_id = new_client_id or ex.random_id()
        events: list[UserEvent] = []
        canceled = [o for o in lst.orders if o.is_open]
        for order in canceled:
            ex.cancel_into(st, order, cancel_id, now, events)
        ex.emit_user(events)
        ex.book_changed(st.cfg.symbol)
        return CanceledList(lst, tuple(canceled), cancel_id, now)

    def query(self, list_id: int | None, orig_client_id: str | None) -> OrderList:
        """``GET /api/v3/orderList`` (-2013 when unknown)."""
        if list_id is None and not orig_client_id:
            raise ApiError(
                400, -1102, "Param 'orderListId' or 'origClientOrderId' must be sent, but both were empty/null!"
            )
        lst = self._find(list_id, orig_client_id)
        if lst is None:
            raise ApiError(400, -2013, "Order list does not exist.")
        return lst

    def _find(self, list_id: int | None, client_id: str | None) -> OrderList | None:
        if list_id is not None:
            return self.store.get(list_id)
        return self.store.get_by_client_id(client_id or "")

    def all_lists(
        self, *, from_id: int | None, start_ms: int | None, end_ms: int | None, limit: int
    ) -> list[OrderList]:
        """``GET /api/v3/allOrderList`` selection (``fromId`` excludes a time window: -1128)."""
        lists = self.store.all_lists()
        if from_id is not None:
            if start_ms is not None or end_ms is not None:
                raise ApiError(400, -1128, "Combination of optional parameters invalid.")
            return [lst for lst in lists if lst.order_list_id >= from_id][:limit]
        if start_ms is not None or end_ms is not None:
            lo = start_ms if start_ms is not None else 0
            hi = end_ms if end_ms is not None else 1 << 62
            selected = [lst for lst in lists if lo <= lst.transaction_time_ms <= hi]
            return selected[:limit] if start_ms is not None else selected[-limit:]
        return lists[-limit:]


def _invalid_type() -> ApiError:
    return ApiError(400, -1116, "Invalid orderType.")
