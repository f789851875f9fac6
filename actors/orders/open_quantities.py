"""The account the risk gate reads: positions, balances and what the open orders commit.

``portfolio_view_of`` derives a ``PortfolioView`` from the order manager's open orders and
ledger: per symbol the unfilled quantity of open buys and sells, the notional of priced buys
and the quantity of unpriced (market) buys, and the intents behind the open orders. The legs
of one venue order list on the same side (an OCO's take-profit and stop) lock the quantity
once, as the venue does: only the leg with the most left counts, so a second OCO protecting
a second fill of the same entry is not refused for funds the first one does not really hold.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from actors.model.orders import Side
from actors.model.records import OrderRecord
from actors.orders.ledger import Ledger
from actors.ports.portfolio import PortfolioView

__all__ = ["portfolio_view_of"]

_ZERO = Decimal(0)


def _committing(orders: Iterable[OrderRecord]) -> tuple[list[tuple[Decimal, OrderRecord]], set[str]]:
    """(unfilled quantity, order) of every open order that commits funds, and the intents behind all."""
    intent_ids: set[str] = set()
    listed: dict[tuple[str, Side], tuple[Decimal, OrderRecord]] = {}
    counted: list[tuple[Decimal, OrderRecord]] = []
    for rec in orders:
        if rec.intent_id:
            intent_ids.add(rec.intent_id)
        remaining = rec.size - rec.filled
        if remaining <= 0:
            continue
        if rec.list_id:
            key = (rec.list_id, rec.side)
            best = listed.get(key)
            if best is None or remaining > best[0]:
                listed[key] = (remaining, rec)
            continue
        counted.append((remaining, rec))
    counted.extend(listed.values())
    return counted, intent_ids


def portfolio_view_of(orders: Iterable[OrderRecord], ledger: Ledger, *, version: int,
                      last_intent_id: str) -> PortfolioView:
    """The published view of ``orders`` (the open ones) and ``ledger`` at ``version``."""
    orders = list(orders)
    open_buy: dict[str, Decimal] = {}
    open_sell: dict[str, Decimal] = {}
    priced: dict[str, Decimal] = {}
    unpriced: dict[str, Decimal] = {}
    counted, intent_ids = _committing(orders)
    for remaining, rec in counted:
        symbol = rec.symbol
        if rec.side is Side.BUY:
            open_buy[symbol] = open_buy.get(symbol, _ZERO) + remaining
            if rec.price is not None:
                priced[symbol] = priced.get(symbol, _ZERO) + remaining * rec.price
            else:
                unpriced[symbol] = unpriced.get(symbol, _ZERO) + remaining
        else:
            open_sell[symbol] = open_sell.get(symbol, _ZERO) + remaining
    return PortfolioView(
        version=version,
        positions={p.symbol: p.size for p in ledger.positions() if p.size},
        balances=ledger.balances(),
        open_orders=len(orders),
        open_buy=open_buy,
        open_sell=open_sell,
        priced_buy_notional=priced,
        unpriced_buy=unpriced,
        intent_ids=frozenset(intent_ids),
        last_intent_id=last_intent_id,
    )
