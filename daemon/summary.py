"""One log line that says what the daemon is doing: ``daemon.summary`` and ``daemon.final_summary``.

Every ``[log] summary_interval_s`` of wall time (default 60 s) the daemon logs, at info::

    daemon.summary  trading_state=ACTIVE equity=5.01234567 pnl=0.00123456 realized_pnl=0.0009
                    open_orders=1 orders=3 fills=3 denials=12 interval_s=60 equity_asset=ETH

``orders``, ``fills`` and ``denials`` count what happened since the previous summary
(orders submitted to the venue, fills applied, intents the risk gate denied); ``equity``
is the risk gate's, ``pnl`` realized plus unrealized (at the risk gate's reference prices)
over all positions, ``open_orders`` the order manager's open orders now. Money is rounded
to its asset's precision (the finest tick size of the instruments quoted in it). At
shutdown ``daemon.final_summary`` gives the same figures with the counts since start.
It reads published snapshots only, so it costs the trading path nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from actors.model.control import TradingState
from config.schema.root import AaitiConfig

if TYPE_CHECKING:
    from actors.orders.order_manager import OrderManagerSnapshot
    from actors.risk.risk_gate import RiskSnapshot

__all__ = ["DaemonSummary", "SummarySource"]

DEFAULT_MONEY_PLACES = 8
"""Decimal places of money in an asset no configured instrument is quoted in."""
_WIDE = Context(prec=80)  # rounding must never fail for lack of digits


class SummarySource(Protocol):
    """What the summary reads of the daemon (``App`` implements it)."""

    @property
    def config(self) -> AaitiConfig:
        """The running config."""
        ...

    def order_snapshot(self) -> OrderManagerSnapshot | None:
        """The order manager's snapshot (None before the tree is built)."""
        ...

    def risk_snapshot(self) -> RiskSnapshot | None:
        """The risk gate's snapshot (None before the tree is built)."""
        ...

    def reference_price(self, symbol: str) -> Decimal | None:
        """The risk gate's reference price of ``symbol``."""
        ...

    def trading_state(self) -> tuple[TradingState, bool]:
        """The trading state and the kill switch."""
        ...


@dataclasses.dataclass(frozen=True)
class _Counts:
    orders: int = 0
    fills: int = 0
    denials: int = 0

    def since(self, before: _Counts) -> _Counts:
        """What was counted from ``before`` to this (a restarted actor counts from 0 again)."""
        def one(now: int, then: int) -> int:
            return now - then if now >= then else now

        return _Counts(one(self.orders, before.orders), one(self.fills, before.fills),
                       one(self.denials, before.denials))

    def plus(self, other: _Counts) -> _Counts:
        """Both counts added up."""
        return _Counts(self.orders + other.orders, self.fills + other.fills, self.denials + other.denials)


def _places(increment: Decimal) -> int:
    exponent = increment.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else DEFAULT_MONEY_PLACES


def money_places(config: AaitiConfig) -> dict[str, int]:
    """Decimal places of money per asset: the finest tick size of the instruments quoted in it."""
    places: dict[str, int] = {}
    for inst in config.instruments.values():
        places[inst.quote] = max(places.get(inst.quote, 0), _places(inst.tick_size))
    return places


class DaemonSummary:
    """Builds and logs the periodic and the final summary line."""

    def __init__(self, source: SummarySource, log: Any | None = None) -> None:
        self._source = source
        self.log: Any = log if log is not None else structlog.get_logger("aaiti").bind(actor="summary")
        self._last = _Counts()  # the counters at the previous summary (all 0 when the actors started)
        self._total = _Counts()  # counted by the summaries so far

    def _counts(self) -> _Counts:
        orders = self._source.order_snapshot()
        risk = self._source.risk_snapshot()
        return _Counts(
            orders=orders.counters.submitted if orders is not None else 0,
            fills=orders.counters.fills_applied if orders is not None else 0,
            denials=risk.denied if risk is not None else 0,
        )

    def _money(self, value: Decimal | None, asset: str, places: Mapping[str, int]) -> str | None:
        if value is None:
            return None
        quantum = Decimal(1).scaleb(-places.get(asset, DEFAULT_MONEY_PLACES))
        rounded = value.quantize(quantum, context=_WIDE)
        return "0" if rounded.is_zero() else format(rounded, "f")

    def fields(self, counted: _Counts) -> dict[str, Any]:
        """The figures of one summary line, with ``counted`` as its order/fill/denial counts."""
        cfg = self._source.config
        places = money_places(cfg)
        quote_of = {symbol: inst.quote for symbol, inst in cfg.instruments.items()}
        equity_asset = cfg.risk.equity_asset or next(iter(quote_of.values()), "")
        orders = self._source.order_snapshot()
        risk = self._source.risk_snapshot()
        realized: dict[str, Decimal] = {}
        total: dict[str, Decimal] = {}
        for pos in orders.positions if orders is not None else ():
            asset = quote_of.get(pos.symbol, equity_asset)
            mark = self._source.reference_price(pos.symbol)
            realized[asset] = realized.get(asset, Decimal(0)) + pos.realized_pnl
            total[asset] = total.get(asset, Decimal(0)) + (pos.total_pnl(mark) if mark is not None
                                                            else pos.realized_pnl)

        def per_asset(values: dict[str, Decimal]) -> Any:
            if set(values) <= {equity_asset}:  # the usual case: one quote asset, one number
                return self._money(values.get(equity_asset, Decimal(0)), equity_asset, places)
            return {asset: self._money(v, asset, places) for asset, v in sorted(values.items())}

        return {
            "trading_state": self._source.trading_state()[0].value,
            "equity": self._money(risk.equity if risk is not None else None, equity_asset, places),
            "equity_asset": equity_asset,
            "pnl": per_asset(total),
            "realized_pnl": per_asset(realized),
            "open_orders": len(orders.open_orders) if orders is not None else 0,
            "orders": counted.orders,
            "fills": counted.fills,
            "denials": counted.denials,
        }

    def _take(self) -> _Counts:
        now = self._counts()
        counted = now.since(self._last)
        self._last = now
        self._total = self._total.plus(counted)
        return counted

    def summary(self, interval_s: float) -> dict[str, Any]:
        """Log ``daemon.summary`` (counts since the previous one) and return its fields."""
        fields = self.fields(self._take()) | {"interval_s": interval_s}
        self.log.info("daemon.summary", **fields)
        return fields

    def final(self) -> dict[str, Any]:
        """Log ``daemon.final_summary`` (counts since the daemon started) and return its fields."""
        self._take()
        fields = self.fields(self._total)
        self.log.info("daemon.final_summary", **fields)
        return fields

    async def run(self, interval_s: float, sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        """Log a summary every ``interval_s`` seconds until cancelled."""
        while True:
            await sleep(interval_s)
            self.summary(interval_s)
