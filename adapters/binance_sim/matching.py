"""Per-symbol order book: simulated background liquidity plus the user's resting orders.

The public book is the sum of both. Every mutation advances one update-id sequence and marks
the touched price levels dirty for each depth cadence, so the ``@depth`` and
``@depth@100ms`` streams and the REST ``/depth`` snapshot always agree (§4.5 of the spec):
a snapshot at id N contains every change <= N, and a delta covering ``[U, u]`` carries the
absolute quantity of every level changed in that range.

User orders never match each other (one account: that would be a self-trade); they take
background liquidity, and resting ones are filled by public prints (price-time priority).
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from adapters.binance_sim.decimals import ZERO, floor_to_step
from adapters.binance_sim.orders import Order

BUY = "BUY"
SELL = "SELL"
#: Depth stream cadences; each keeps its own dirty set and last-sent id.
CADENCES = ("100ms", "1000ms")

Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class DepthDelta:
    """Changes between two depth events: ids ``[first_update_id, last_update_id]``."""

    first_update_id: int
    last_update_id: int
    bids: list[Level]
    asks: list[Level]


class _BookSide:
    """One side: background levels and FIFO queues of user orders per price."""

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.background: dict[Decimal, Decimal] = {}
        self.bg_prices: list[Decimal] = []
        self.queues: dict[Decimal, deque[Order]] = {}
        self.user_qty: dict[Decimal, Decimal] = {}
        self.user_prices: list[Decimal] = []

    def qty_at(self, price: Decimal) -> Decimal:
        return self.background.get(price, ZERO) + self.user_qty.get(price, ZERO)

    def best_background(self) -> Decimal | None:
        if not self.bg_prices:
            return None
        return self.bg_prices[-1] if self.is_bid else self.bg_prices[0]

    def best_user(self) -> Decimal | None:
        if not self.user_prices:
            return None
        return self.user_prices[-1] if self.is_bid else self.user_prices[0]

    def best(self) -> Decimal | None:
        candidates = [p for p in (self.best_background(), self.best_user()) if p is not None]
        if not candidates:
            return None
        return max(candidates) if self.is_bid else min(candidates)

    def background_levels(self) -> list[Level]:
        prices = reversed(self.bg_prices) if self.is_bid else iter(self.bg_prices)
        return [(p, self.background[p]) for p in prices]

    def levels(self, limit: int) -> list[Level]:
        prices = sorted(set(self.bg_prices) | set(self.user_prices), reverse=self.is_bid)
        return [(p, self.qty_at(p)) for p in prices[:limit]]


class OrderBook:
    """The aggregated book of one symbol with Binance-style update ids."""

    def __init__(self, symbol: str, first_update_id: int = 1_000_000) -> None:
        self.symbol = symbol
        self.update_id = first_update_id
        self._bids = _BookSide(True)
        self._asks = _BookSide(False)
        self._dirty: dict[str, tuple[set[Decimal], set[Decimal]]] = {c: (set(), set()) for c in CADENCES}
        self._last_sent: dict[str, int] = dict.fromkeys(CADENCES, first_update_id)

    # ------------------------------------------------------------ bookkeeping
    def _side(self, is_bid: bool) -> _BookSide:
        return self._bids if is_bid else self._asks

    def _mark(self, is_bid: bool, prices: Iterable[Decimal]) -> None:
        idx = 0 if is_bid else 1
        for dirty in self._dirty.values():
            dirty[idx].update(prices)

    def _bump(self) -> None:
        self.update_id += 1

    # ------------------------------------------------------------ background liquidity
    def set_background(self, bids: Mapping[Decimal, Decimal], asks: Mapping[Decimal, Decimal]) -> None:
        """Replace the background levels (one update id for the whole change)."""
        changed = False
        for side, new in ((self._bids, bids), (self._asks, asks)):
            old = side.background
            touched = [p for p in old.keys() | new.keys() if old.get(p) != new.get(p)]
            if touched:
                changed = True
                side.background = {p: q for p, q in new.items() if q > 0}
                side.bg_prices = sorted(side.background)
                self._mark(side.is_bid, touched)
        if changed:
            self._bump()

    def background_levels(self, is_bid: bool) -> list[Level]:
        """Background levels of one side, best first."""
        return self._side(is_bid).background_levels()

    def consume_background(self, is_bid: bool, price: Decimal, qty: Decimal) -> None:
        """Remove ``qty`` at ``price`` from the background (a user order took it)."""
        side = self._side(is_bid)
        left = side.background.get(price, ZERO) - qty
        if left > 0:
            side.background[price] = left
        else:
            side.background.pop(price, None)
            i = bisect.bisect_left(side.bg_prices, price)
            if i < len(side.bg_prices) and side.bg_prices[i] == price:
                side.bg_prices.pop(i)
        self._mark(is_bid, (price,))
        self._bump()

    # ------------------------------------------------------------ user orders
    def add_resting(self, order: Order) -> None:
        """Queue a user order at its price (behind earlier orders at that price)."""
        side = self._side(order.side == BUY)
        queue = side.queues.get(order.price)
        if queue is None:
            queue = side.queues[order.price] = deque()
            bisect.insort(side.user_prices, order.price)
        queue.append(order)
        if order.iceberg_qty > 0 and order.display_left <= 0:
            order.display_left = min(order.iceberg_qty, order.remaining)
        side.user_qty[order.price] = side.user_qty.get(order.price, ZERO) + order.visible
        self._mark(side.is_bid, (order.price,))
        self._bump()

    def resting_filled(self, order: Order, qty: Decimal) -> None:
        """Account for ``qty`` of a resting order having executed (order already updated).

        An iceberg whose visible slice is used up shows its next slice and, like on Binance,
        goes to the back of its price level.
        """
        side = self._side(order.side == BUY)
        side.user_qty[order.price] = side.user_qty.get(order.price, ZERO) - qty
        if order.remaining <= 0:
            self._unqueue(side, order)
        elif order.iceberg_qty > 0:
            order.display_left -= qty
            if order.display_left <= 0:
                queue = side.queues[order.price]
                queue.remove(order)
                queue.append(order)
                order.display_left = min(order.iceberg_qty, order.remaining)
                side.user_qty[order.price] += order.display_left
        self._mark(side.is_bid, (order.price,))
        self._bump()

    def remove_resting(self, order: Order) -> None:
        """Take a user order out of the book (cancel/expiry)."""
        side = self._side(order.side == BUY)
        queue = side.queues.get(order.price)
        if queue is None or order not in queue:
            return
        side.user_qty[order.price] = side.user_qty.get(order.price, ZERO) - order.visible
        self._unqueue(side, order)
        self._mark(side.is_bid, (order.price,))
        self._bump()

    @staticmethod
    def _unqueue(side: _BookSide, order: Order) -> None:
        queue = side.queues.get(order.price)
        if queue is None or order not in queue:
            return
        queue.remove(order)
        if not queue:
            del side.queues[order.price]
            side.user_qty.pop(order.price, None)
            i = bisect.bisect_left(side.user_prices, order.price)
            side.user_prices.pop(i)

    def best_user_price(self, is_bid: bool) -> Decimal | None:
        """Best resting user price on one side."""
        return self._side(is_bid).best_user()

    def resting_through(self, price: Decimal, *, inclusive: bool) -> list[Order]:
        """Resting user orders a print at ``price`` reaches, in price-time priority.

        Bids at or above the print (strictly above unless ``inclusive``) best price first,
        then asks at or below it; within a price, oldest first.
        """
        out: list[Order] = []
        bids = self._bids.user_prices
        lo = bisect.bisect_left(bids, price) if inclusive else bisect.bisect_right(bids, price)
        for p in reversed(bids[lo:]):
            out.extend(self._bids.queues[p])
        asks = self._asks.user_prices
        hi = bisect.bisect_right(asks, price) if inclusive else bisect.bisect_left(asks, price)
        for p in asks[:hi]:
            out.extend(self._asks.queues[p])
        return out

    # ------------------------------------------------------------ views
    def best_bid(self) -> Level | None:
        """Best aggregated bid (price, qty)."""
        p = self._bids.best()
        return None if p is None else (p, self._bids.qty_at(p))

    def best_ask(self) -> Level | None:
        """Best aggregated ask (price, qty)."""
        p = self._asks.best()
        return None if p is None else (p, self._asks.qty_at(p))

    def snapshot(self, limit: int) -> tuple[int, list[Level], list[Level]]:
        """``(lastUpdateId, bids, asks)`` with up to ``limit`` levels per side."""
        return self.update_id, self._bids.levels(limit), self._asks.levels(limit)

    def drain(self, cadence: str) -> DepthDelta | None:
        """Changes since the previous drain of ``cadence``; ``None`` if nothing changed."""
        bids_dirty, asks_dirty = self._dirty[cadence]
        first = self._last_sent[cadence] + 1
        if self.update_id < first:
            return None
        delta = DepthDelta(
            first_update_id=first,
            last_update_id=self.update_id,
            bids=[(p, self._bids.qty_at(p)) for p in sorted(bids_dirty, reverse=True)],
            asks=[(p, self._asks.qty_at(p)) for p in sorted(asks_dirty)],
        )
        bids_dirty.clear()
        asks_dirty.clear()
        self._last_sent[cadence] = self.update_id
        return delta


def plan_taker(
    levels: list[Level],
    *,
    is_buy: bool,
    limit_price: Decimal | None,
    qty: Decimal | None,
    quote_qty: Decimal | None,
    step: Decimal,
) -> list[Level]:
    """Executions a taker order would get from ``levels`` (best first), without mutating.

    Exactly one of ``qty`` / ``quote_qty`` is set. With ``quote_qty`` the base quantity per
    level is truncated to ``step``, as Binance does for ``quoteOrderQty`` market orders.
    """
    out: list[Level] = []
    left_qty = qty
    left_quote = quote_qty
    for price, available in levels:
        if limit_price is not None and (price > limit_price if is_buy else price < limit_price):
            break
        if left_qty is not None:
            take = min(available, left_qty)
        else:
            assert left_quote is not None
            take = min(available, floor_to_step(left_quote / price, step))
        if take <= 0:
            break
        out.append((price, take))
        if left_qty is not None:
            left_qty -= take
            if left_qty <= 0:
                break
        else:
            assert left_quote is not None
            left_quote -= take * price
    return out
