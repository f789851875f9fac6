"""What a buy actually credited: the traded quantity net of fees charged in the base asset.

A spot venue charges a buy's fee in the asset bought unless it is paid in a third asset
(Binance: BNB): buying 1.0 BTC at 0.1 % credits 0.999 BTC. An exit that sells what the buy
*traded* (1.0) is refused for funds when the account holds nothing else of that asset, so
the exits that protect a buy are sized at what its fills credited, rounded down to the
instrument's quantity step (never up: a sell can only sell what is there).

``BaseFees`` keeps the base-asset fees of one order's fills by trade id (idempotent: a fill
seen twice, live and again from the store after a restart, counts once). The owner persists
it in its own row, so the net quantity is recomputed from stored state after a restart.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from actors.model.orders import Fill
from actors.model.positions import round_down

__all__ = ["BaseFees", "sellable"]

_ZERO = Decimal(0)


class BaseFees(msgspec.Struct, kw_only=True):
    """Fees charged in the base asset on one order's fills, by trade id."""

    by_trade: dict[str, Decimal] = msgspec.field(default_factory=dict)

    def record(self, fill: Fill | None, base: str) -> bool:
        """Count ``fill``'s fee when it is charged in ``base`` (quote and third-asset fees leave
        the base quantity whole). True when it was new."""
        if fill is None or not base or fill.fee <= 0 or fill.fee_currency != base:
            return False
        if fill.trade_id in self.by_trade:
            return False
        self.by_trade[fill.trade_id] = fill.fee
        return True

    @property
    def total(self) -> Decimal:
        """Sum of the fees recorded."""
        return sum(self.by_trade.values(), _ZERO)

    def body(self) -> dict[str, str]:
        """As stored (decimals as plain strings)."""
        return {tid: format(fee, "f") for tid, fee in self.by_trade.items()}

    @classmethod
    def of(cls, stored: object) -> BaseFees:
        """Back from ``body()`` (a row written before fees were kept has none: empty)."""
        if not isinstance(stored, dict):
            return cls()
        return cls(by_trade={str(tid): Decimal(str(fee)) for tid, fee in stored.items()})


def sellable(net: Decimal, step: Decimal) -> Decimal:
    """``net`` rounded down to ``step`` (unchanged when the step is unknown, 0), never below 0."""
    return round_down(max(net, _ZERO), step)
