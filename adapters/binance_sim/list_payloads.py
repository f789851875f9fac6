"""Wire shapes of order lists: REST list objects and the ``listStatus`` user-data event."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapters.binance_sim.order_lists import OrderList

Json = dict[str, Any]


def list_summary(order_list: OrderList) -> Json:
    """A list as ``GET /orderList``, ``/openOrderList`` and ``/allOrderList`` show it."""
    return {
        "orderListId": order_list.order_list_id,
        "contingencyType": order_list.contingency_type,
        "listStatusType": order_list.list_status_type,
        "listOrderStatus": order_list.list_order_status,
        "listClientOrderId": order_list.list_client_order_id,
        "transactionTime": order_list.transaction_time_ms,
        "symbol": order_list.symbol,
        "orders": [
            {"symbol": o.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id}
            for o in order_list.orders
        ],
    }


def list_result(order_list: OrderList, reports: Iterable[Json]) -> Json:
    """A list placement or cancel answer: the summary plus one report per order."""
    out = list_summary(order_list)
    out["orderReports"] = list(reports)
    return out


def list_status(order_list: OrderList, event_time: int) -> Json:
    """The ``listStatus`` user-data event."""
    return {
        "e": "listStatus",
        "E": event_time,
        "s": order_list.symbol,
        "g": order_list.order_list_id,
        "c": order_list.contingency_type,
        "l": order_list.list_status_type,
        "L": order_list.list_order_status,
        "r": "NONE",
        "C": order_list.list_client_order_id,
        "T": event_time,
        "O": [{"s": o.symbol, "i": o.order_id, "c": o.client_order_id} for o in order_list.orders],
    }
