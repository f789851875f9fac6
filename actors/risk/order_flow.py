"""What the risk gate remembers of its own approvals.

``RateWindow`` counts approvals in a rolling window for the order-rate limit; the gate feeds
it business time, so a replay on market time is limited per market minute. ``PendingApprovals``
holds approvals on their way to the order manager that its published view does not show yet
(process time: they are messages in flight, not business events), so a burst of intents
cannot slip past the open-order, position and cash limits between two views.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

import msgspec

from actors.model.orders import OrderIntent, OrderType, Side
from actors.risk.checks import Approval
from actors.risk.portfolio import PortfolioSnapshot
from config.schema.trading import InstrumentSection, RiskSection

_BPS = Decimal(10_000)
_ZERO = Decimal(0)


class RateWindow:
    """Times of recent approvals in a rolling window (the caller supplies the time, in seconds).

    Memory is bounded by the number of approvals within one window, which the order rate
    limit itself bounds.
    """

    __slots__ = ("_times", "window_s")

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        times = self._times
        while times and times[0] <= horizon:
            times.popleft()

    def count(self, now: float) -> int:
        """Approvals within (now - window_s, now]."""
        self._prune(now)
        return len(self._times)

    def record(self, now: float) -> None:
        """Count one approval at ``now``."""
        self._prune(now)
        self._times.append(now)


class _Pending(msgspec.Struct, frozen=True):
    """One approval the order manager's view does not show yet."""

    t: float
    intent_id: str
    symbol: str
    side: Side
    size: Decimal
    quote: str
    quote_cost: Decimal
    base: str


class PendingExposure(msgspec.Struct, frozen=True):
    """What pending approvals add for one symbol: open quantity per side, and the quote and
    base they commit in that symbol's assets."""

    buy: Decimal = _ZERO
    sell: Decimal = _ZERO
    quote: Decimal = _ZERO
    base: Decimal = _ZERO


def free_after_pending(snap: PortfolioSnapshot, inst: InstrumentSection | None,
                       pending: PendingExposure) -> tuple[Decimal, Decimal]:
    """Free (base, quote) balances of ``inst``'s assets, less what approvals on their way commit."""
    if inst is None:
        return _ZERO - pending.base, _ZERO - pending.quote
    bb = snap.balances.get(inst.base)
    qb = snap.balances.get(inst.quote)
    base_free = bb.free if bb is not None else _ZERO
    quote_free = qb.free if qb is not None else _ZERO
    return base_free - pending.base, quote_free - pending.quote


class PendingApprovals:
    """Approvals sent towards the order manager and not yet in its published view.

    One is forgotten when the view shows it (its intent among the open orders, or it or a
    later approval as the last intent taken in) or after ``pending_approval_ttl_s``.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque[_Pending] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, now: float, intent: OrderIntent, approval: Approval, inst: InstrumentSection | None,
            risk: RiskSection) -> None:
        """Remember an approval made at ``now`` (process time); a buy commits its cost in quote."""
        if risk.pending_approval_ttl_s <= 0 or inst is None:
            return
        cost = _ZERO
        if intent.side is Side.BUY:
            if intent.type is OrderType.LIMIT and intent.limit_price is not None:
                price = intent.limit_price
            else:
                price = approval.reference_price * (1 + Decimal(repr(risk.market_buy_buffer_bps)) / _BPS)
            cost = approval.size * price * (1 + Decimal(repr(risk.assumed_fee_bps)) / _BPS)
        self._items.append(
            _Pending(now, intent.intent_id, intent.symbol, intent.side, approval.size, inst.quote, cost, inst.base)
        )

    def prune(self, now: float, ttl_s: float, snap: PortfolioSnapshot) -> None:
        """Forget approvals older than ``ttl_s`` and those the order manager's view shows."""
        pending = self._items
        if not pending:
            return
        horizon = now - ttl_s
        while pending and pending[0].t <= horizon:
            pending.popleft()
        last = snap.last_intent_id
        if last and pending:
            # Approvals reach the order manager in order: the one it took in last and every
            # earlier one are in its view now (as open orders, or already in balances).
            for i, p in enumerate(pending):
                if p.intent_id == last:
                    for _ in range(i + 1):
                        pending.popleft()
                    break
        if pending and snap.intent_ids:
            known = snap.intent_ids
            self._items = deque(p for p in pending if not (p.intent_id and p.intent_id in known))

    def exposure(self, symbol: str, inst: InstrumentSection | None) -> PendingExposure:
        """Open quantity the pending approvals add to ``symbol``, and the quote and base they
        commit in the assets of ``inst`` (none without an instrument)."""
        buy = sell = quote = base = _ZERO
        for p in self._items:
            if p.symbol == symbol:
                if p.side is Side.BUY:
                    buy += p.size
                else:
                    sell += p.size
            if inst is not None:
                if p.quote == inst.quote:
                    quote += p.quote_cost
                if p.side is Side.SELL and p.base == inst.base:
                    base += p.size
        return PendingExposure(buy, sell, quote, base)
