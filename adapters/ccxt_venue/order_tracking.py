"""Per-order tracking of the ccxt venue: what was last handed out, and which reports are news.

Order updates whose ``filled`` decreased, or that repeat or regress the status at the same
``filled``, are dropped and counted (a REST poll and the stream report the same order;
ccxt's caches are re-read after a burst). Fills are de-duplicated by ``<symbol>:<trade id>``
and advance a per-symbol cursor, from which polls read fills. Our client order ids are
remembered by venue order id: Binance REST trades carry only the latter. Every table is
bounded (oldest entries go first).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from actors.model.orders import Fill, OrderStatus, VenueOrder
from actors.ports.venue import VenueUpdate
from adapters.ccxt_venue import normalize

TRACK_MAX = 10_000
_SEEN_FILLS_MAX = 50_000

#: 0: not yet acknowledged, 1: working, 2: a working conditional order that triggered,
#: 3: cancel requested, 4: final. A report ranked at or below the last one at the same filled
#: quantity is stale (a triggered stop is never again merely accepted).
_RANK: Mapping[OrderStatus, int] = MappingProxyType({
    OrderStatus.INITIALIZED: 0,
    OrderStatus.SUBMITTED: 0,
    OrderStatus.ACCEPTED: 1,
    OrderStatus.PENDING_UPDATE: 1,
    OrderStatus.PARTIALLY_FILLED: 1,
    OrderStatus.TRIGGERED: 2,
    OrderStatus.PENDING_CANCEL: 3,
    OrderStatus.DENIED: 4,
    OrderStatus.REJECTED: 4,
    OrderStatus.CANCELED: 4,
    OrderStatus.EXPIRED: 4,
    OrderStatus.FILLED: 4,
})
#: Ranks of orders that are at the venue and not final.
_WORKING_RANKS = frozenset({1, 2, 3})


def trim_oldest(table: OrderedDict[Any, Any], limit: int) -> None:
    """Drop the oldest entries of ``table`` beyond ``limit``."""
    while len(table) > limit:
        table.popitem(last=False)


@dataclass(slots=True)
class TrackedOrder:
    """What we last emitted for an order (regress filter)."""

    symbol: str
    venue_order_id: str
    filled: Decimal
    status: OrderStatus


class OrderTracker:
    """Tracked orders, known fills and client-id lookups; hands news to ``publish``.

    Counters (read by the venue's stats): ``stale`` and ``duplicates`` (order reports
    dropped), ``duplicate_fills``, ``unresolved_fills`` (fills whose order could not be
    mapped to our client order id yet).
    """

    def __init__(self, publish: Callable[[VenueUpdate], None]) -> None:
        self._publish = publish
        self._tracked: OrderedDict[str, TrackedOrder] = OrderedDict()
        self._coid_by_vid: OrderedDict[str, str] = OrderedDict()
        self._seen_fills: OrderedDict[str, None] = OrderedDict()
        self.fill_cursor: dict[str, int] = {}
        self.stale = 0
        self.duplicates = 0
        self.duplicate_fills = 0
        self.unresolved_fills = 0

    # -- orders --------------------------------------------------------------------------------
    def get(self, client_order_id: str) -> TrackedOrder | None:
        """The tracked state of an order (None if not tracked)."""
        return self._tracked.get(client_order_id)

    def track_new(self, client_order_id: str, symbol: str) -> None:
        """Start tracking an order about to be sent."""
        if client_order_id not in self._tracked:
            self._tracked[client_order_id] = TrackedOrder(symbol, "", Decimal(0), OrderStatus.SUBMITTED)
            trim_oldest(self._tracked, TRACK_MAX)

    def forget(self, client_order_id: str) -> None:
        """Stop tracking an order the venue definitely never got (refused before anything was known)."""
        tr = self._tracked.get(client_order_id)
        if tr is not None and tr.status is OrderStatus.SUBMITTED and not tr.venue_order_id:
            del self._tracked[client_order_id]

    def symbols(self) -> tuple[str, ...]:
        """The symbols of tracked orders (oldest first, each once)."""
        return tuple(dict.fromkeys(t.symbol for t in self._tracked.values()))

    def unsettled(self, excluding: Collection[str], limit: int) -> list[tuple[str, str]]:
        """Up to ``limit`` ``(client order id, symbol)`` of working orders not in ``excluding``.

        These are orders that left the venue's open list without us seeing their final state.
        """
        return [
            (coid, tr.symbol)
            for coid, tr in self._tracked.items()
            if _RANK[tr.status] in _WORKING_RANKS and coid not in excluding
        ][:limit]

    def record(self, vo: VenueOrder, *, count: bool = True) -> bool:
        """Note the venue's view of an order; True if it is news (not stale, not a repeat).

        ``count``: count a dropped report (not for re-reads of ccxt's caches).
        """
        self.remember_vid(vo.venue_order_id, vo.client_order_id)
        tr = self._tracked.get(vo.client_order_id)
        if tr is not None:
            if vo.filled < tr.filled:
                self.stale += count
                return False
            if vo.filled == tr.filled:
                if vo.status is tr.status:
                    self.duplicates += count
                    return False
                if _RANK[vo.status] <= _RANK[tr.status]:
                    self.stale += count
                    return False
            tr.filled = vo.filled
            tr.status = vo.status
            tr.venue_order_id = vo.venue_order_id or tr.venue_order_id
            self._tracked.move_to_end(vo.client_order_id)
            return True
        self._tracked[vo.client_order_id] = TrackedOrder(vo.symbol, vo.venue_order_id, vo.filled, vo.status)
        trim_oldest(self._tracked, TRACK_MAX)
        return True

    def emit_order(self, vo: VenueOrder, *, count: bool = True) -> None:
        """Publish ``vo`` if it is news (see :meth:`record`)."""
        if self.record(vo, count=count):
            self._publish(vo)

    # -- client order ids ------------------------------------------------------------------------
    def remember_vid(self, venue_order_id: str, client_order_id: str) -> None:
        """Remember which of our orders a venue order id is."""
        if venue_order_id and client_order_id:
            self._coid_by_vid[venue_order_id] = client_order_id
            self._coid_by_vid.move_to_end(venue_order_id)
            trim_oldest(self._coid_by_vid, TRACK_MAX)

    def coid_for_trade(self, raw: Mapping[str, Any]) -> str:
        """Our client order id of a ccxt trade, from the trade or what we know ("" if unknown)."""
        coid = normalize.trade_client_order_id(raw)
        if coid:
            return coid
        return self._coid_by_vid.get(normalize.trade_order_id(raw), "")

    # -- fills ---------------------------------------------------------------------------------
    def fill_seen(self, trade_id: str) -> bool:
        """True if the fill ``<symbol>:<trade id>`` was already handed out."""
        return trade_id in self._seen_fills

    def emit_fill(self, f: Fill) -> None:
        """Publish ``f`` unless it was already handed out; advance the symbol's fill cursor."""
        if f.trade_id in self._seen_fills:
            self.duplicate_fills += 1
            return
        self._seen_fills[f.trade_id] = None
        trim_oldest(self._seen_fills, _SEEN_FILLS_MAX)
        if f.ts_ms > self.fill_cursor.get(f.symbol, 0):
            self.fill_cursor[f.symbol] = f.ts_ms
        self._publish(f)
