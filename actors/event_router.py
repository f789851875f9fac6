"""Routes order events and risk denials to the strategy that owns them.

The order manager and the risk gate publish into one block-policy channel; this actor
fans each event out to its strategy's own channel (block policy: never dropped). Events
of strategies that are not configured (adopted venue orders, a removed strategy) are
only logged.

Orders of the contingent-order manager (``parent`` set: a released stop, a bracket's entry
or exit, a TWAP slice) are its business too: their ``OrderEvent`` goes to the optional
``contingent`` channel first, then to the strategy as usual; a risk-gate denial of one
(``OrderDenied`` whose ``intent.parent`` is set) goes only to ``contingent``, which decides
whether to retry (the strategy never placed that order itself). When the manager gives up
on such an order it sends the strategy its final word itself, through this router: an
``OrderDenied`` with reason ``CONTINGENT_GIVEN_UP``, which goes to the strategy only. Without
a ``contingent`` channel everything goes to the strategies, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.kernel.actor import MessageActor
from actors.kernel.channel import Channel
from actors.model.contingent import CONTINGENT_GIVEN_UP
from actors.model.orders import OrderDenied, OrderEvent

RoutedEvent = OrderEvent | OrderDenied


class EventRouter(MessageActor[RoutedEvent]):
    """Fan-out of order feedback to per-strategy channels."""

    kind = "router"

    def __init__(self, name: str, inbox: Channel[RoutedEvent], targets: dict[str, Channel[Any]],
                 contingent: Channel[Any] | None = None) -> None:
        super().__init__(name, inbox)
        self._targets = targets
        self._contingent = contingent
        self._taps: tuple[Callable[[RoutedEvent], None], ...] = ()

    def add_tap(self, tap: Callable[[RoutedEvent], None]) -> None:
        """Call ``tap(event)`` for every event before it is routed (must not block: e.g.
        hand it to a bounded queue, as the notification service does)."""
        self._taps = (*self._taps, tap)

    async def handle(self, msg: RoutedEvent) -> None:
        """Log the event, then send it to the contingent-order manager (its own orders) and
        to the strategy that placed the order (or intent)."""
        self._log_event(msg)
        for tap in self._taps:
            tap(msg)
        if isinstance(msg, OrderDenied):
            strategy, parent, denied = msg.intent.strategy, msg.intent.parent, True
            if msg.reason == CONTINGENT_GIVEN_UP:
                parent = ""  # from the manager, for the strategy: its final word on that order
        else:
            strategy, parent, denied = msg.strategy, msg.parent, False
        cm = self._contingent
        if parent and cm is not None:
            await _deliver(cm, msg)
            if denied:
                return  # the manager's business: it retries or gives up
        ch = self._targets.get(strategy)
        if ch is not None:
            await _deliver(ch, msg)

    def _log_event(self, msg: RoutedEvent) -> None:
        # One line per order-state change, fill and denial: far fewer than market events.
        if isinstance(msg, OrderDenied):
            it = msg.intent
            self.log.info(
                "risk.denied", strategy=it.strategy, symbol=it.symbol, side=it.side.value, reason=msg.reason,
                limit=msg.limit, detail=msg.detail, size=_s(it.size), notional=_s(it.notional),
                **({"parent": it.parent, "type": it.type.value} if it.parent else {}),
            )
            return
        fill = msg.fill
        if fill is not None:
            self.log.info(
                "order.fill", client_order_id=msg.client_order_id, strategy=msg.strategy, symbol=msg.symbol,
                side=fill.side.value, price=str(fill.price), size=str(fill.size), fee=str(fill.fee),
                fee_currency=fill.fee_currency, liquidity=fill.liquidity, status=msg.status.value,
                filled=str(msg.filled), order_size=str(msg.size),
            )
            return
        self.log.info(
            f"order.{msg.status.value.lower()}", client_order_id=msg.client_order_id, strategy=msg.strategy,
            symbol=msg.symbol, previous=msg.previous.value if msg.previous else None, size=str(msg.size),
            filled=str(msg.filled), reason=msg.reason or None,
        )


async def _deliver(ch: Channel[Any], msg: RoutedEvent) -> None:
    if not ch.try_send(msg):
        await ch.send(msg)


def _s(value: object) -> str | None:
    return None if value is None else str(value)
