"""The ledger: positions and balances derived from fills, with dedup and overfill refusal.

Pure and synchronous (the order manager owns one). A fill is applied once:

- duplicates by (venue, trade_id) are refused (reason ``duplicate``); the memory of seen
  trade ids is a bounded window (``dedup_window``), backed by the store's UNIQUE
  constraint and, on restart, reloaded from the store's recent fills;
- a fill that would take its order's filled quantity above the order size is refused
  (reason ``overfill``) and remembered as seen, so a redelivery counts as a duplicate;
- a fill for an order the ledger does not know (placed outside aaiti, or forgotten long
  ago) is still applied — the money moved — and flagged ``known_order=False``.

Balances are starting balances + fills - fees (fees deducted from the asset they are
charged in). Positions follow ``positions.Position``: a fill changes a position by its
signed size less a fee charged in the base asset, so a position moves with the base
balance its fills produced.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal

import msgspec

from actors.model.orders import Fill, Side
from actors.model.positions import ZERO, Position, PositionView, base_fee, fee_in_quote, split_symbol

DUPLICATE = "duplicate"
OVERFILL = "overfill"


class FillOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What applying one fill did. ``reason`` is empty when accepted, else a reason code."""

    accepted: bool
    reason: str = ""
    known_order: bool = True
    order_size: Decimal = ZERO
    order_filled: Decimal = ZERO
    order_avg_price: Decimal | None = None
    order_fees: Decimal = ZERO
    complete: bool = False
    realized_pnl: Decimal = ZERO


class OrderFills(msgspec.Struct, frozen=True, kw_only=True):
    """Cumulative fills of one order as the ledger sees them."""

    client_order_id: str
    symbol: str
    side: Side
    size: Decimal
    filled: Decimal = ZERO
    notional: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def avg_price(self) -> Decimal | None:
        """Volume-weighted fill price, None before the first fill."""
        return self.notional / self.filled if self.filled else None


class LedgerCounters(msgspec.Struct, frozen=True, kw_only=True):
    """Counters for the snapshot and metrics."""

    fills_applied: int = 0
    duplicate_fills: int = 0
    overfills: int = 0
    unknown_order_fills: int = 0


class Ledger:
    """Positions, balances and per-order fill totals from fills."""

    def __init__(
        self,
        *,
        starting_balances: Mapping[str, Decimal] | None = None,
        dedup_window: int = 200_000,
        closed_order_window: int = 50_000,
    ) -> None:
        if dedup_window < 1 or closed_order_window < 0:
            raise ValueError("dedup_window must be >= 1 and closed_order_window >= 0")
        self._balances: dict[str, Decimal] = dict(starting_balances or {})
        self._positions: dict[str, Position] = {}
        self._assets: dict[str, tuple[str, str]] = {}
        self._seen: set[tuple[str, str]] = set()
        self._seen_order: deque[tuple[str, str]] = deque()
        self._dedup_window = dedup_window
        self._orders: dict[str, OrderFills] = {}
        self._closed: dict[str, OrderFills] = {}
        self._closed_order: deque[str] = deque()
        self._closed_window = closed_order_window
        self.unconverted_fees: dict[str, Decimal] = {}
        self.fills_applied = 0
        self.duplicate_fills = 0
        self.overfills = 0
        self.unknown_order_fills = 0

    # -- orders -----------------------------------------------------------------------
    def register_order(
        self,
        client_order_id: str,
        *,
        symbol: str,
        side: Side,
        size: Decimal,
        filled: Decimal = ZERO,
        notional: Decimal = ZERO,
        fees: Decimal = ZERO,
    ) -> None:
        """Start tracking an order's fills (at submit, or on restart with its totals so far)."""
        self._orders[client_order_id] = OrderFills(
            client_order_id=client_order_id, symbol=symbol, side=side, size=size,
            filled=filled, notional=notional, fees=fees,
        )

    def close_order(self, client_order_id: str) -> None:
        """The order is finished: keep it (bounded) for late fills and overfill checks."""
        of = self._orders.pop(client_order_id, None)
        if of is None or self._closed_window == 0:
            return
        if client_order_id not in self._closed:
            self._closed_order.append(client_order_id)
        self._closed[client_order_id] = of
        while len(self._closed_order) > self._closed_window:
            self._closed.pop(self._closed_order.popleft(), None)

    def _order_fills(self, client_order_id: str) -> OrderFills | None:
        """Fill totals of an order the ledger knows (open or recently closed)."""
        return self._orders.get(client_order_id) or self._closed.get(client_order_id)

    # -- fills ------------------------------------------------------------------------
    def seen(self, venue: str, trade_id: str) -> bool:
        """True when this (venue, trade_id) was applied or refused recently."""
        return (venue, trade_id) in self._seen

    def mark_seen(self, venue: str, trade_id: str) -> None:
        """Remember a trade id (bounded window)."""
        key = (venue, trade_id)
        if key in self._seen:
            return
        self._seen.add(key)
        self._seen_order.append(key)
        if len(self._seen_order) > self._dedup_window:
            self._seen.discard(self._seen_order.popleft())

    def apply_fill(self, fill: Fill) -> FillOutcome:
        """Apply one fill unless it is a duplicate or an overfill."""
        if (fill.venue, fill.trade_id) in self._seen:
            self.duplicate_fills += 1
            return self._refused(DUPLICATE, fill.client_order_id)
        coid = fill.client_order_id
        of = self._orders.get(coid)
        closed = False
        if of is None:
            of = self._closed.get(coid)
            closed = of is not None
        if of is not None and of.filled + fill.size > of.size:
            self.overfills += 1
            self.mark_seen(fill.venue, fill.trade_id)
            return self._refused(OVERFILL, coid)
        self.mark_seen(fill.venue, fill.trade_id)
        realized, fee_q = self._apply_money(fill)
        self.fills_applied += 1
        if of is None:
            self.unknown_order_fills += 1
            return FillOutcome(accepted=True, known_order=False, realized_pnl=realized)
        of = msgspec.structs.replace(
            of,
            filled=of.filled + fill.size,
            notional=of.notional + fill.size * fill.price,
            fees=of.fees + fee_q,
        )
        (self._closed if closed else self._orders)[coid] = of
        return FillOutcome(
            accepted=True,
            order_size=of.size,
            order_filled=of.filled,
            order_avg_price=of.avg_price,
            order_fees=of.fees,
            complete=of.filled >= of.size,
            realized_pnl=realized,
        )

    def replay_fill(self, fill: Fill) -> None:
        """Re-apply a stored fill to positions and balances only (restart from a snapshot)."""
        if (fill.venue, fill.trade_id) in self._seen:
            return
        self.mark_seen(fill.venue, fill.trade_id)
        self._apply_money(fill)

    def _refused(self, reason: str, client_order_id: str) -> FillOutcome:
        of = self._order_fills(client_order_id)
        if of is None:
            return FillOutcome(accepted=False, reason=reason, known_order=False)
        return FillOutcome(
            accepted=False,
            reason=reason,
            order_size=of.size,
            order_filled=of.filled,
            order_avg_price=of.avg_price,
            order_fees=of.fees,
            complete=of.filled >= of.size,
        )

    def _apply_money(self, fill: Fill) -> tuple[Decimal, Decimal]:
        assets = self._assets.get(fill.symbol)
        if assets is None:
            assets = self._assets[fill.symbol] = split_symbol(fill.symbol)
        base, quote = assets
        fee_q = fee_in_quote(fill.fee, fill.fee_currency, fill.price, base, quote)
        if fee_q is None:  # a third-asset fee: deducted from that asset's balance below, not from PnL
            self.unconverted_fees[fill.fee_currency] = self.unconverted_fees.get(fill.fee_currency, ZERO) + fill.fee
            fee_q = ZERO
        pos = self._positions.get(fill.symbol)
        if pos is None:
            pos = self._positions[fill.symbol] = Position(fill.symbol)
        realized = pos.apply(fill.side, fill.size, fill.price, fee_q,
                             base_fee=base_fee(fill.fee, fill.fee_currency, base))
        bal = self._balances
        notional = fill.size * fill.price
        if fill.side is Side.BUY:
            bal[base] = bal.get(base, ZERO) + fill.size
            bal[quote] = bal.get(quote, ZERO) - notional
        else:
            bal[base] = bal.get(base, ZERO) - fill.size
            bal[quote] = bal.get(quote, ZERO) + notional
        if fill.fee:
            fee_asset = fill.fee_currency or quote
            bal[fee_asset] = bal.get(fee_asset, ZERO) - fill.fee
        return realized, fee_q

    # -- views ------------------------------------------------------------------------
    def position(self, symbol: str) -> PositionView:
        """The position of one symbol (flat if never traded)."""
        pos = self._positions.get(symbol)
        return pos.view() if pos is not None else PositionView(symbol=symbol)

    def positions(self) -> tuple[PositionView, ...]:
        """All positions ever traded, sorted by symbol."""
        return tuple(self._positions[s].view() for s in sorted(self._positions))

    def balances(self) -> dict[str, Decimal]:
        """Derived balance per asset (a fresh dict)."""
        return dict(self._balances)

    def counters(self) -> LedgerCounters:
        """Fill counters."""
        return LedgerCounters(
            fills_applied=self.fills_applied,
            duplicate_fills=self.duplicate_fills,
            overfills=self.overfills,
            unknown_order_fills=self.unknown_order_fills,
        )

    def sizes(self) -> dict[str, int]:
        """Sizes of the bounded windows and open-order map (soak runs check their caps)."""
        return {"seen": len(self._seen), "closed": len(self._closed), "orders": len(self._orders)}

    # -- restore / correct ---------------------------------------------------------------
    def restore(self, positions: Iterable[PositionView], balances: Mapping[str, Decimal]) -> None:
        """Replace positions and balances with a stored snapshot (restart)."""
        self._positions = {p.symbol: Position.from_view(p) for p in positions}
        self._balances = dict(balances)

    def rebase_balances(self, balances: Mapping[str, Decimal]) -> dict[str, Decimal]:
        """Adopt the venue's balances as truth; return the per-asset change applied."""
        changes: dict[str, Decimal] = {}
        for asset in set(self._balances) | set(balances):
            new = balances.get(asset, ZERO)
            old = self._balances.get(asset, ZERO)
            if new != old:
                changes[asset] = new - old
        self._balances = dict(balances)
        return changes
