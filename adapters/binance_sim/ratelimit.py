"""Binance-style request-weight and order-count limits, with 429 → 418 escalation (§3.5)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from adapters.binance_sim.errors import ApiError
from adapters.binance_sim.faults import FaultPlan

_MINUTE_MS = 60_000
_TEN_S_MS = 10_000

# Spot weights of the endpoints served (Binance's published values).
_FIXED_WEIGHTS: Mapping[tuple[str, str], int] = MappingProxyType(
    {
        ("GET", "/api/v3/ping"): 1,
        ("GET", "/api/v3/time"): 1,
        ("GET", "/api/v3/exchangeInfo"): 20,
        ("GET", "/api/v3/klines"): 2,
        ("GET", "/api/v3/aggTrades"): 4,
        ("GET", "/api/v3/trades"): 25,
        ("GET", "/api/v3/historicalTrades"): 25,
        ("GET", "/api/v3/avgPrice"): 2,
        ("GET", "/api/v3/account"): 20,
        ("POST", "/api/v3/order"): 1,
        ("POST", "/api/v3/order/test"): 1,
        ("GET", "/api/v3/order"): 4,
        ("DELETE", "/api/v3/order"): 1,
        ("DELETE", "/api/v3/openOrders"): 1,
        ("GET", "/api/v3/myTrades"): 20,
        ("GET", "/api/v3/allOrders"): 20,
        ("POST", "/api/v3/orderList/oco"): 1,
        ("POST", "/api/v3/orderList/oto"): 1,
        ("POST", "/api/v3/orderList/otoco"): 1,
        ("POST", "/api/v3/order/oco"): 1,
        ("GET", "/api/v3/orderList"): 4,
        ("DELETE", "/api/v3/orderList"): 1,
        ("GET", "/api/v3/openOrderList"): 6,
        ("GET", "/api/v3/allOrderList"): 20,
    }
)


def request_weight(method: str, path: str, params: Mapping[str, str]) -> int:
    """Weight Binance charges for one request."""
    fixed = _FIXED_WEIGHTS.get((method, path))
    if fixed is not None:
        return fixed
    if path == "/api/v3/depth":
        try:
            limit = int(params.get("limit", "100"))
        except ValueError:
            limit = 100
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    if path in ("/api/v3/ticker/24hr", "/api/v3/ticker/price", "/api/v3/ticker/bookTicker"):
        return 2 if "symbol" in params else 80 if path.endswith("24hr") else 4
    if path == "/api/v3/openOrders":
        return 6 if "symbol" in params else 80
    return 1


class RateLimiter:
    """Fixed one-minute weight window and ten-second order window, like Binance's.

    Once limited, a client that sends more than ``ban_after_429s`` further requests inside
    the window is banned through the fault plan (418 until the ban expires).
    """

    def __init__(
        self,
        *,
        weight_limit: int,
        order_limit_10s: int,
        ban_after_429s: int,
        ban_seconds: float,
        faults: FaultPlan,
    ) -> None:
        self._weight_limit = weight_limit
        self._order_limit = order_limit_10s
        self._ban_after = ban_after_429s
        self._ban_seconds = ban_seconds
        self._faults = faults
        self._window = -1
        self._weight = 0
        self._order_window = -1
        self._orders = 0
        self._rejected_in_window = 0

    def used_weight(self, now_ms: int) -> int:
        """Weight used in the current minute."""
        return self._weight if now_ms // _MINUTE_MS == self._window else 0

    def order_count(self, now_ms: int) -> int:
        """Orders placed in the current ten-second window."""
        return self._orders if now_ms // _TEN_S_MS == self._order_window else 0

    def banned(self, now_ms: int) -> ApiError | None:
        """The 418 reply while a ban is in force."""
        left = self._faults.ban_remaining_s()
        if left <= 0:
            return None
        until = now_ms + int(left * 1000)
        return ApiError(
            418,
            -1003,
            f"Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            {"Retry-After": str(max(1, math.ceil(left)))},
        )

    def admit(self, method: str, path: str, params: Mapping[str, str], now_ms: int) -> ApiError | None:
        """Charge a request's weight; the 429 (or 418 after escalation) reply if over the limit."""
        window = now_ms // _MINUTE_MS
        if window != self._window:
            self._window, self._weight, self._rejected_in_window = window, 0, 0
        self._weight += request_weight(method, path, params)
        if self._weight <= self._weight_limit:
            return None
        self._rejected_in_window += 1
        if self._rejected_in_window > self._ban_after:
            self._faults.ban(self._ban_seconds)
            return self.banned(now_ms)
        retry_after = max(1, math.ceil(((window + 1) * _MINUTE_MS - now_ms) / 1000))
        return ApiError(
            429,
            -1003,
            f"Too much request weight used; current limit is {self._weight_limit} request weight per 1 MINUTE. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
            {"Retry-After": str(retry_after)},
        )

    def admit_order(self, now_ms: int) -> ApiError | None:
        """Count a new order; the 429 ``-1015`` reply when over the ten-second order limit."""
        window = now_ms // _TEN_S_MS
        if window != self._order_window:
            self._order_window, self._orders = window, 0
        self._orders += 1
        if self._orders <= self._order_limit:
            return None
        retry_after = max(1, math.ceil(((window + 1) * _TEN_S_MS - now_ms) / 1000))
        return ApiError(
            429,
            -1015,
            f"Too many new orders; current limit is {self._order_limit} orders per 10 SECOND.",
            {"Retry-After": str(retry_after)},
        )
