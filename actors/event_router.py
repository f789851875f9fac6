"""Routes order events and risk denials to the strategy that owns them.

The order manager and the risk gate publish into one block-policy channel; this actor
fans each event out to its strategy's own channel (block policy: never dropped). Events
of strategies that are not configured (adopted venue orders, a removed strategy) go to
no strategy and are only counted.
"""

from __future__ import annotations

from typing import Any

from daemon.actor import MessageActor
from daemon.channel import Channel
from daemon.messages.orders import OrderDenied, OrderEvent

RoutedEvent = OrderEvent | OrderDenied


class EventRouter(MessageActor[RoutedEvent]):
    """Fan-out of order feedback to per-strategy channels."""

    kind = "router"

    def __init__(self, name: str, inbox: Channel[RoutedEvent], targets: dict[str, Channel[Any]]) -> None:
        super().__init__(name, inbox)
        self.targets = targets
        self.routed = 0
        self.unrouted = 0

    async def handle(self, msg: RoutedEvent) -> None:
        """Send the event to the strategy that placed the order (or intent)."""
        strategy = msg.intent.strategy if isinstance(msg, OrderDenied) else msg.strategy
        ch = self.targets.get(strategy)
        if ch is None:
            self.unrouted += 1
            return
        if not ch.try_send(msg):
            await ch.send(msg)
        self.routed += 1
