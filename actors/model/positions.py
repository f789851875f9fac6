"""Positions per symbol from fills: signed size, average entry, realized and unrealized PnL.

Pure and synchronous; all money is ``Decimal``. Conventions:

- ``size`` is signed (long > 0, short < 0) and counts the quantity *held* as a result of
  trading: a fill changes it by its signed size less a fee charged in the base asset
  (``held_change``). A buy of 1.0 with a 0.001 base fee adds 0.999 (what the account was
  credited); a sell of 1.0 with a 0.001 base fee removes 1.001 (the fee is taken on top).
  Quote and third-asset (BNB) fees leave the base quantity whole. So the position follows
  the base balance the fills produced, and a bracket whose exits sold what its entry
  credited leaves the strategy flat (``size == 0``), not holding the fee forever.
- The average entry price is an average of *fill prices*: a fill that grows the position
  books the quantity it added at its fill price (a fee is never capitalized into the
  entry); reducing fills realize ``closed * (price - avg) * direction`` on the quantity
  they removed; a fill that crosses zero closes the old position and opens the remainder
  at the fill price ("flip"); a position that reaches exactly 0 has ``avg_price`` 0.
  Because a base fee is booked as quantity at the fill price *and* expensed at the fill
  price (below), the two cancel where they must: a round trip's realized PnL is exactly
  the quote received less the quote paid (buy 1 @ 100 with a 0.001 base fee, sell the
  0.999 credited @ 110: 0.999 * 110 - 100 = 9.89).
- Fees are in quote currency: a fee in the quote asset counts as is, a fee in the base
  asset is converted at the fill price, a fee in a third asset (e.g. BNB) cannot be
  converted here and is left out of PnL (the ledger still deducts it from that asset).
- ``realized_pnl`` is net of fees; ``fees`` is their running total (gross = net + fees).
- A stored view (``from_view``) keeps its stored size: only fills applied after it follow
  the rule above.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from actors.model.orders import Fill, Side

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


def base_asset(symbol: str) -> str:
    """The base asset of ``symbol`` ("" when it is not BASE/QUOTE: then no fee counts as base).

    An instrument's configured ``base`` is its symbol's BASE (the config checks it)."""
    try:
        return split_symbol(symbol)[0]
    except ValueError:
        return ""


def round_down(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded towards zero to a multiple of ``step`` (unchanged when ``step`` is 0: unknown)."""
    if step <= 0:
        return value
    return (value // step) * step


def base_fee(fee: Decimal, fee_currency: str, base: str) -> Decimal:
    """The part of a fill's fee charged in the base asset ``base`` (0 for a quote or third-asset fee)."""
    return fee if fee and base and fee_currency == base else ZERO


def held_change(fill: Fill) -> Decimal:
    """How much ``fill`` changes the quantity held: its signed size less a base-asset fee."""
    return held_quantity(fill.symbol, fill.side, fill.size, fill.fee, fill.fee_currency)


def held_quantity(symbol: str, side: str, size: Decimal, fee: Decimal, fee_currency: str) -> Decimal:
    """``held_change`` from a fill's fields (e.g. a stored row): ``side`` is ``"buy"`` or ``"sell"``.

    The base asset is the symbol's BASE (``base_asset``).
    """
    signed = size if side == Side.BUY else -size  # == : a raw "buy" counts too
    return signed - base_fee(fee, fee_currency, base_asset(symbol))


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

    def apply(self, side: Side, size: Decimal, price: Decimal, fee_quote: Decimal, *,
              base_fee: Decimal = ZERO) -> Decimal:
        """Apply one fill; return the realized PnL it produced (net of ``fee_quote``).

        ``base_fee`` is the part of the fee charged in the base asset (already counted in
        ``fee_quote`` at the fill price): the size changes by the signed ``size`` less it.
        """
        delta = (size if side is Side.BUY else -size) - base_fee
        old = self.size
        realized = ZERO
        if not delta:
            pass  # nothing held changed (a fee that ate the whole fill): only the fee is booked
        elif old == 0 or (old > 0) == (delta > 0):
            # Opening or growing: the quantity added is booked at the fill price.
            added = abs(delta)
            self.avg_price = (abs(old) * self.avg_price + added * price) / (abs(old) + added)
            self.size = old + delta
        else:
            closed = min(abs(old), abs(delta))
            direction = 1 if old > 0 else -1
            realized = closed * (price - self.avg_price) * direction
            self.size = old + delta
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
