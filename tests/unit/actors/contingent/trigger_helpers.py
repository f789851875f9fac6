"""Shared builders for the trigger-order, book and manager tests (no I/O)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from actors.contingent.base import BookContext
from actors.contingent.effects import CancelChild, Effect, Notice, Persist, Release
from actors.model.contingent import ContingentRow
from actors.model.market import Quote, Trade
from actors.model.orders import (
    ApprovedIntent,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
    TrailingSpec,
)
from actors.ports.capabilities import NativeSupport
from config.schema.trading import OrdersSection

D = Decimal
SYM = "XRP/ETH"
NATIVE_ALL = NativeSupport(order_types=frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT,
                                                  OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT}),
                           trailing_bps=True)


@dataclasses.dataclass
class Env:
    """A ``BookContext`` whose time, ids and settings a test moves by hand."""

    now: int = 1_000_000
    settings: OrdersSection = dataclasses.field(default_factory=OrdersSection)
    support: NativeSupport = dataclasses.field(default_factory=NativeSupport)
    native: bool = True
    seq: Any = dataclasses.field(default_factory=lambda: itertools.count(1))

    def ctx(self) -> BookContext:
        return BookContext(new_id=lambda: f"aa-t-{next(self.seq)}", now_ms=lambda: self.now,
                           settings=lambda: self.settings, support=self.support, native_enabled=self.native,
                           venue="paper")


def intent(type: OrderType = OrderType.STOP_MARKET, side: Side = Side.SELL, *, trigger_price: str | None = "100",
           limit_price: str | None = None, trailing: TrailingSpec | None = None, **kw: Any) -> OrderIntent:
    return OrderIntent(strategy="s1", symbol=kw.pop("symbol", SYM), side=side, type=type, size=D("5"),
                       trigger_price=D(trigger_price) if trigger_price is not None else None,
                       limit_price=D(limit_price) if limit_price is not None else None, trailing=trailing,
                       tag="t", intent_id="i1", **kw)


def approved(i: OrderIntent, size: str = "5") -> ApprovedIntent:
    return ApprovedIntent(intent=i, size=D(size), reference_price=D("101"))


def trade(price: float, recv_ns: int = 0, symbol: str = SYM) -> Trade:
    return Trade(symbol=symbol, ts_ms=1, recv_ns=recv_ns, price=price, size=1.0, side="buy")


def quote(bid: float, ask: float, symbol: str = SYM) -> Quote:
    return Quote(symbol=symbol, ts_ms=1, bid=bid, ask=ask)


def event(coid: str, status: OrderStatus, filled: str = "0", reason: str = "", parent: str = "") -> OrderEvent:
    return OrderEvent(client_order_id=coid, strategy="s1", symbol=SYM, status=status, filled=D(filled),
                      size=D("5"), reason=reason, parent=parent)


def denied(i: OrderIntent, reason: str = "STALE_DATA") -> OrderDenied:
    return OrderDenied(intent=i, reason=reason)


def releases(effects: Sequence[Effect]) -> list[OrderIntent]:
    return [e.intent for e in effects if isinstance(e, Release)]


def persists(effects: Sequence[Effect]) -> list[Persist]:
    return [e for e in effects if isinstance(e, Persist)]


def cancels(effects: Sequence[Effect]) -> list[CancelChild]:
    return [e for e in effects if isinstance(e, CancelChild)]


def notices(effects: Sequence[Effect]) -> list[str]:
    return [e.event for e in effects if isinstance(e, Notice)]


def last_row(effects: Sequence[Effect]) -> ContingentRow:
    rows = [r for p in persists(effects) for r in p.rows]
    assert rows, f"no Persist in {effects}"
    return rows[-1]
