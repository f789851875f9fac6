"""The single simulated spot account: free/locked balances and commissions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from adapters.binance_sim.decimals import ZERO, quantize_places

_BPS = Decimal(10_000)


class InsufficientBalance(Exception):
    """A lock or debit would make a balance negative."""


@dataclass(slots=True)
class Balance:
    """One asset's balance. ``total = free + locked``."""

    free: Decimal = ZERO
    locked: Decimal = ZERO


class Account:
    """Balances in exact decimals, with fee rates in basis points.

    Every mutation records the asset as changed, so the caller can emit one
    ``outboundAccountPosition`` listing exactly the assets an operation touched.
    """

    def __init__(
        self, initial: Iterable[tuple[str, Decimal]], *, maker_fee_bps: Decimal, taker_fee_bps: Decimal
    ) -> None:
        self._balances: dict[str, Balance] = {}
        for asset, amount in initial:
            if amount < 0:
                raise ValueError(f"initial balance of {asset} is negative")
            self._balances[asset] = Balance(free=Decimal(amount))
        self.maker_fee_bps = Decimal(maker_fee_bps)
        self.taker_fee_bps = Decimal(taker_fee_bps)
        self.update_time_ms = 0
        self._changed: list[str] = []

    def balance(self, asset: str) -> Balance:
        """The balance of ``asset`` (created empty on first use)."""
        bal = self._balances.get(asset)
        if bal is None:
            bal = self._balances[asset] = Balance()
        return bal

    def _touch(self, asset: str) -> None:
        if asset not in self._changed:
            self._changed.append(asset)

    def take_changed(self) -> list[str]:
        """Assets changed since the previous call (in first-change order)."""
        changed, self._changed = self._changed, []
        return changed

    def lock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` from free to locked, or raise :class:`InsufficientBalance`."""
        bal = self.balance(asset)
        if amount > bal.free:
            raise InsufficientBalance(asset)
        bal.free -= amount
        bal.locked += amount
        self._touch(asset)

    def unlock(self, asset: str, amount: Decimal) -> None:
        """Move ``amount`` back from locked to free."""
        if amount == 0:
            return
        bal = self.balance(asset)
        bal.locked -= amount
        bal.free += amount
        self._touch(asset)

    def debit_locked(self, asset: str, amount: Decimal) -> None:
        """Pay ``amount`` out of the locked part (a fill consuming an order's reservation)."""
        bal = self.balance(asset)
        bal.locked -= amount
        self._touch(asset)

    def credit(self, asset: str, amount: Decimal) -> None:
        """Add ``amount`` (may be negative for withdrawals) to the free part."""
        bal = self.balance(asset)
        if bal.free + amount < 0:
            raise InsufficientBalance(asset)
        bal.free += amount
        self._touch(asset)

    def commission(self, received: Decimal, *, maker: bool, precision: int) -> Decimal:
        """Fee on ``received`` (charged in the received asset, as Binance does without BNB)."""
        bps = self.maker_fee_bps if maker else self.taker_fee_bps
        return quantize_places(received * bps / _BPS, precision)

    def snapshot(self) -> list[tuple[str, Balance]]:
        """All balances, sorted by asset."""
        return sorted(self._balances.items())
