"""The account as the risk checks see it, derived from the order manager's published view.

The order manager publishes a ``PortfolioView`` (positions, total balances, open quantities;
see ``actors.ports.portfolio``). The gate needs free balances, per-symbol open quantities and
an open-order count: ``portfolio_snapshot`` derives them with the gate's own instruments,
reference prices and fee assumption, and ``PortfolioReader`` caches the result per published
version (re-deriving only while open market buys are valued at moving reference prices).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

import msgspec

from actors.model.orders import Balance
from actors.ports.portfolio import PortfolioSource, PortfolioView
from config.schema.trading import InstrumentSection

_BPS = Decimal(10_000)
_ZERO = Decimal(0)


class PortfolioSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """What the risk gate knows about the account when it decides.

    ``positions`` are signed base quantities per symbol; ``open_buy`` / ``open_sell`` the
    unfilled base quantity of open orders per symbol; ``balances`` the balances per asset,
    ``free`` net of what open orders commit; ``intent_ids`` the intents behind the open
    orders and ``last_intent_id`` the latest intent the order manager has taken in (both let
    the gate stop counting its own recent approvals as pending once the order manager has
    them — the latter also when their orders are already final, e.g. filled at once).
    """

    positions: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    open_orders: int = 0
    open_buy: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    open_sell: Mapping[str, Decimal] = msgspec.field(default_factory=dict)
    balances: Mapping[str, Balance] = msgspec.field(default_factory=dict)
    intent_ids: frozenset[str] = frozenset()
    last_intent_id: str = ""


def portfolio_snapshot(
    view: PortfolioView,
    instruments: Mapping[str, InstrumentSection],
    reference_price: Callable[[str], Decimal | None],
    *,
    fee_bps: float,
) -> PortfolioSnapshot:
    """Positions, open quantities and free balances (totals minus what open orders commit).

    A buy commits its remaining size x limit price (the reference price for a market order;
    nothing while there is none) plus ``fee_bps`` of quote; a sell commits its remaining
    size of base. Symbols without an instrument commit nothing.
    """
    fee = 1 + Decimal(repr(fee_bps)) / _BPS
    committed: dict[str, Decimal] = {}
    for symbol, notional in view.priced_buy_notional.items():
        inst = instruments.get(symbol)
        if inst is not None:
            committed[inst.quote] = committed.get(inst.quote, _ZERO) + notional * fee
    for symbol, qty in view.unpriced_buy.items():
        inst = instruments.get(symbol)
        price = reference_price(symbol) if inst is not None else None
        if inst is not None and price is not None:
            committed[inst.quote] = committed.get(inst.quote, _ZERO) + qty * price * fee
    for symbol, qty in view.open_sell.items():
        inst = instruments.get(symbol)
        if inst is not None:
            committed[inst.base] = committed.get(inst.base, _ZERO) + qty
    balances: dict[str, Balance] = {}
    for asset, total in view.balances.items():
        locked = min(committed.get(asset, _ZERO), max(total, _ZERO))
        balances[asset] = Balance(asset=asset, free=total - locked, locked=locked)
    return PortfolioSnapshot(
        positions=view.positions,
        open_orders=view.open_orders,
        open_buy=view.open_buy,
        open_sell=view.open_sell,
        balances=balances,
        intent_ids=view.intent_ids,
        last_intent_id=view.last_intent_id,
    )


class PortfolioReader:
    """The gate's read of a ``PortfolioSource``, derived once per published version.

    A version whose open market buys are valued at the current reference price is derived
    on every read (the price moves without the version changing).
    """

    __slots__ = ("_fee_bps", "_instruments", "_reference_price", "_snap", "_source", "_version")

    def __init__(
        self,
        source: PortfolioSource,
        instruments: Mapping[str, InstrumentSection],
        reference_price: Callable[[str], Decimal | None],
    ) -> None:
        self._source = source
        self._instruments = instruments
        self._reference_price = reference_price
        self._snap: PortfolioSnapshot | None = None
        self._version = -1
        self._fee_bps = 0.0

    def read(self, fee_bps: float) -> PortfolioSnapshot:
        """The account now, buys committing ``fee_bps`` of fees on top."""
        snap = self._snap
        if snap is not None and self._source.version == self._version and fee_bps == self._fee_bps:
            return snap
        view = self._source.current()
        snap = portfolio_snapshot(view, self._instruments, self._reference_price, fee_bps=fee_bps)
        # Cache only what no moving price went into.
        self._snap = None if view.unpriced_buy else snap
        self._version = view.version
        self._fee_bps = fee_bps
        return snap
