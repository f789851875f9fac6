"""Positions per symbol from fills: signed size, average entry, realized and unrealized PnL.

Pure and synchronous; all money is ``Decimal``. Conventions:

- ``size`` is signed (long > 0, short < 0) and counts traded quantity; a fee charged in
  the base asset lowers the base *balance* (see ``ledger``) but not the position size.
- The average entry price moves only when a position grows; reducing fills realize
  ``closed * (price - avg) * direction``; a fill that crosses zero closes the old
  position and opens the remainder at the fill price ("flip").
- Fees are in quote currency: a fee in the quote asset counts as is, a fee in the base
  asset is converted at the fill price, a fee in a third asset (e.g. BNB) cannot be
  converted here and is left out of PnL (the ledger still deducts it from that asset).
- ``realized_pnl`` is net of fees; ``fees`` is their running total (gross = net + fees).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from actors.model.orders import Side

ZERO = Decimal(0)


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote asset of a unified symbol: ``"XRP/ETH"`` → ``("XRP", "ETH")``.

    A settlement suffix (``"BTC/USDT:USDT"``) is ignored. Raises ``ValueError`` when the
    symbol has no ``/``.
    """
    pair = symbol.split(":", 1)[0]
    base, sep, quote = pair.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"symbol {symbol!r} is not BASE/QUOTE")
    return base, quote


def fee_in_quote(fee: Decimal, fee_currency: str, price: Decimal, base: str, quote: str) -> Decimal | None:
    """The fee in quote currency, or None when it is charged in a third asset.

    An empty ``fee_currency`` means the quote asset.
    """
    if not fee:
        return ZERO
    if not fee_currency or fee_currency == quote:
        return fee
    if fee_currency == base:
        return fee * price
    return None


class PositionView(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable view of one symbol's position."""

    symbol: str
    size: Decimal = ZERO
    avg_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    fills: int = 0

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """PnL of the open size if it were closed at ``mark`` (no fee assumed)."""
        return self.size * (mark - self.avg_price)

    def total_pnl(self, mark: Decimal) -> Decimal:
        """Realized (net of fees) plus unrealized at ``mark``."""
        return self.realized_pnl + self.unrealized_pnl(mark)


class Position:
    """Mutable position state of one symbol; owned by the ledger."""

    __slots__ = ("avg_price", "fees", "fills", "realized_pnl", "size", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.size = ZERO
        self.avg_price = ZERO
        self.realized_pnl = ZERO
        self.fees = ZERO
        self.fills = 0

    @classmethod
    def from_view(cls, view: PositionView) -> Position:
        """Restore from a stored view (restart)."""
        pos = cls(view.symbol)
        pos.size = view.size
        pos.avg_price = view.avg_price
        pos.realized_pnl = view.realized_pnl
        pos.fees = view.fees
        pos.fills = view.fills
        return pos

    def apply(self, side: Side, size: Decimal, price: Decimal, fee_quote: Decimal) -> Decimal:
        """Apply one fill; return the realized PnL it produced (net of ``fee_quote``)."""
        signed = size if side is Side.BUY else -size
        old = self.size
        realized = ZERO
        if old == 0 or (old > 0) == (signed > 0):
            # Opening or growing: weighted average entry.
            new_abs = abs(old) + size
            self.avg_price = (abs(old) * self.avg_price + size * price) / new_abs
            self.size = old + signed
        else:
            closed = min(abs(old), size)
            direction = 1 if old > 0 else -1
            realized = closed * (price - self.avg_price) * direction
            self.size = old + signed
            if self.size == 0:
                self.avg_price = ZERO
            elif (self.size > 0) != (old > 0):
                # Flipped through zero: the remainder opens at the fill price.
                self.avg_price = price
        realized -= fee_quote
        self.realized_pnl += realized
        self.fees += fee_quote
        self.fills += 1
        return realized

    def view(self) -> PositionView:
        """An immutable copy."""
        return PositionView(
            symbol=self.symbol,
            size=self.size,
            avg_price=self.avg_price,
            realized_pnl=self.realized_pnl,
            fees=self.fees,
            fills=self.fills,
        )
