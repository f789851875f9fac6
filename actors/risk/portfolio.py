"""Turn the order manager's published snapshot into the risk gate's ``PortfolioSnapshot``.

The order manager publishes totals (balances derived from fills) and its open orders;
the gate needs free balances, per-symbol open quantities and an open-order count. The
conversion lives here so the gate's checks stay independent of the order manager's
record types. Wiring: ``portfolio=lambda: portfolio_from_orders(om.snapshot(), instruments,
risk_gate.reference_price)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from actors.model.orders import Balance, Side
from actors.model.positions import PositionView
from actors.model.records import OrderRecord
from actors.risk.checks import PortfolioSnapshot
from config.schema.trading import InstrumentSection

_BPS = Decimal(10_000)


class OrderBookView(Protocol):
    """What the conversion reads (``OrderManagerSnapshot`` satisfies it)."""

    @property
    def ts_ms(self) -> int:
        """When the snapshot was taken."""
        ...

    @property
    def open_orders(self) -> Sequence[OrderRecord]:
        """Orders the venue may still act on (in flight included)."""
        ...

    @property
    def positions(self) -> Sequence[PositionView]:
        """Positions per symbol."""
        ...

    @property
    def balances(self) -> Mapping[str, Decimal]:
        """Total balances per asset."""
        ...


def portfolio_from_orders(
    snap: OrderBookView,
    instruments: Mapping[str, InstrumentSection],
    reference_price: Callable[[str], Decimal | None],
    *,
    fee_bps: float = 10.0,
) -> PortfolioSnapshot:
    """Positions, open quantities and free balances (totals minus what open orders commit).

    A buy commits its remaining size x limit price (the reference price for a market
    order) plus ``fee_bps`` of quote; a sell commits its remaining size of base. A
    ``last_intent_id`` attribute of ``snap`` (``OrderManagerSnapshot`` has one) is passed on.
    """
    fee = 1 + Decimal(repr(fee_bps)) / _BPS
    open_buy: dict[str, Decimal] = {}
    open_sell: dict[str, Decimal] = {}
    committed: dict[str, Decimal] = {}
    for rec in snap.open_orders:
        remaining = rec.remaining
        if remaining <= 0:
            continue
        inst = instruments.get(rec.symbol)
        if rec.side is Side.BUY:
            open_buy[rec.symbol] = open_buy.get(rec.symbol, Decimal(0)) + remaining
            price = rec.price if rec.price is not None else reference_price(rec.symbol)
            if inst is not None and price is not None:
                committed[inst.quote] = committed.get(inst.quote, Decimal(0)) + remaining * price * fee
        else:
            open_sell[rec.symbol] = open_sell.get(rec.symbol, Decimal(0)) + remaining
            if inst is not None:
                committed[inst.base] = committed.get(inst.base, Decimal(0)) + remaining
    balances: dict[str, Balance] = {}
    for asset, total in snap.balances.items():
        locked = min(committed.get(asset, Decimal(0)), max(total, Decimal(0)))
        balances[asset] = Balance(asset=asset, free=total - locked, locked=locked)
    return PortfolioSnapshot(
        positions={p.symbol: p.size for p in snap.positions if p.size},
        open_orders=len(snap.open_orders),
        open_buy=open_buy,
        open_sell=open_sell,
        balances=balances,
        intent_ids=frozenset(rec.intent_id for rec in snap.open_orders if rec.intent_id),
        last_intent_id=getattr(snap, "last_intent_id", ""),
        ts_ms=snap.ts_ms,
    )
