"""The ccxt venue's native order lists: OCO and OTO on Binance spot (``NativeOrders.submit_list``).

ccxt has no unified call for them: they go to the implicit endpoints
``private_post_orderlist_oco`` / ``private_post_orderlist_oto`` with the parameters of
:func:`adapters.ccxt_venue.native_orders.list_params`, under the order breaker and with the
error mapping of a single submit (:meth:`adapters.ccxt_venue.order_path.OrderPath.send`):
a definite refusal → ``OrderRejected`` (nothing placed; ``UNSUPPORTED_ORDER_TYPE`` when the
venue does not run that list or leg type), anything else → ``VenueUnavailable`` (each leg is
then resolved by a query by its client order id; the list is never resent).

The answer's ``orderReports`` become the legs' ``VenueOrder``s in request order (matched by
client order id, not by position: Binance lists an OCO's stop leg first); executions in a
FULL answer (an OTO working order that filled at once) are handed out like a submit's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from actors.model.orders import ListKind, OrderListRequest, VenueOrder
from actors.ports.venue import VenueUnavailable
from adapters.ccxt_venue import native_orders
from adapters.ccxt_venue.order_path import OrderPath
from adapters.ccxt_venue.order_tracking import OrderTracker
from adapters.ccxt_venue.session import VenueSession

#: ccxt implicit method of each list kind.
_ENDPOINTS = {ListKind.OCO: "private_post_orderlist_oco", ListKind.OTO: "private_post_orderlist_oto"}


class OrderListPath:
    """Places native order lists (see the module doc); replies go through ``tracker``."""

    def __init__(self, session: VenueSession, orders: OrderPath, tracker: OrderTracker) -> None:
        self._session = session
        self._orders = orders
        self._tracker = tracker

    def _check(self, ex: Any, request: OrderListRequest) -> str:
        """Refuse (unsent) a list the venue cannot take; returns the market id."""
        support = native_orders.native_support(self._session.config.exchange_id)
        if request.kind not in support.lists:
            raise native_orders.unsupported(f"{request.kind.value} lists are not run natively here")
        native_orders.list_shape(request)
        wire_types = native_orders.list_wire_types(request)
        for leg, wire_type in zip(request.orders, wire_types, strict=True):
            self._orders.check_request(ex, leg, wire_type=wire_type)
        symbol = request.orders[0].symbol
        market = ex.market(symbol)
        info = market.get("info") if isinstance(market, Mapping) else None
        info = info if isinstance(info, Mapping) else {}
        native_orders.refuse_unsupported_list(info, request.kind)
        for leg, wire_type in zip(request.orders, wire_types, strict=True):
            native_orders.refuse_unsupported(info, leg, wire_type)
        return str(market["id"])

    async def submit_list(self, request: OrderListRequest) -> list[VenueOrder]:
        """Place ``request``; the legs' venue orders in ``request.orders`` order.

        Raises ``OrderRejected`` (nothing placed) or ``VenueUnavailable`` (outcome unknown).
        """
        ex = self._session.require_started()
        market_id = self._check(ex, request)
        params = native_orders.list_params(request, market_id)
        coids = [leg.client_order_id for leg in request.orders]
        for leg in request.orders:
            self._tracker.track_new(leg.client_order_id, leg.symbol)
        raw = await self._orders.send(
            f"submit_list {request.list_client_id}", coids, getattr(ex, _ENDPOINTS[request.kind]), params
        )
        return self._legs(ex, raw, request)

    def _legs(self, ex: Any, raw: Any, request: OrderListRequest) -> list[VenueOrder]:
        session = self._session
        reports = raw.get("orderReports") if isinstance(raw, Mapping) else None
        by_coid = {
            str(r.get("clientOrderId")): r for r in reports or () if isinstance(r, Mapping)
        } if isinstance(reports, list) else {}
        symbol = request.orders[0].symbol
        parsed: list[tuple[Any, str]] = []
        for leg in request.orders:
            report = by_coid.get(leg.client_order_id)
            if report is None:
                session.malformed.count("missing_field", where="submit_list_reply",
                                        client_order_id=leg.client_order_id, detail="orderReports")
                raise VenueUnavailable(
                    "MALFORMED_REPLY", f"submit_list {request.list_client_id}: no report of {leg.client_order_id}"
                )
            try:
                unified = ex.parse_order(dict(report), ex.market(symbol))
            except Exception as exc:
                session.malformed.count("unparsable", where="submit_list_reply",
                                        client_order_id=leg.client_order_id, detail=repr(exc)[:200])
                raise VenueUnavailable(
                    "MALFORMED_REPLY", f"submit_list {request.list_client_id}: {leg.client_order_id}: {exc!r}"
                ) from None
            parsed.append((unified, leg.client_order_id))
        out: list[VenueOrder] = []
        for unified, coid in parsed:
            vo = self._orders.reply(unified, coid, "submit_list")
            out.append(vo)
        for (unified, _coid), vo in zip(parsed, out, strict=True):
            self._tracker.record(vo)
            self._orders.emit_reply_trades(unified, vo)
        return out
