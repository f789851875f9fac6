"""The account as the order manager publishes it to the risk gate.

The order manager owns orders, fills, positions and balances; the risk gate only reads them,
through a ``PortfolioSource``: a version number that changes whenever that state changes, and
an immutable ``PortfolioView`` rebuilt at most once per version. Reading it is cheap (no copy
of the order table per intent), and the view holds quantities only: marks, reference prices
and fee assumptions stay the gate's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol

import msgspec


class PortfolioView(msgspec.Struct, frozen=True, kw_only=True):
    """One published version of the account; never mutated after publication.

    ``positions`` are the non-zero signed base positions per symbol; ``balances`` the total
    balance per asset derived from fills (nothing is subtracted for open orders).
    Open orders are summed per symbol by remaining (unfilled) base quantity: ``open_buy`` /
    ``open_sell``; of the buys, ``priced_buy_notional`` is remaining x limit price over those
    that carry a price and ``unpriced_buy`` the remaining quantity of those that do not
    (market orders), which a reader values at its own reference price. ``intent_ids`` are
    the intents behind the open orders; ``last_intent_id`` is the latest approved intent
    the order manager has taken in (its order may be open, final or denied by now).
    """

    version: int = 0
    positions: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    balances: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    open_orders: int = 0
    open_buy: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    open_sell: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    priced_buy_notional: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    unpriced_buy: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    intent_ids: frozenset[str] = frozenset()
    last_intent_id: str = ""


class PortfolioSource(Protocol):
    """Read-only access to the latest published ``PortfolioView``."""

    @property
    def version(self) -> int:
        """Changes (grows) whenever the account changes; equal versions mean equal views."""
        ...

    def current(self) -> PortfolioView:
        """The view of the current version."""
        ...
