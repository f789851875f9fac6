"""Lockstep replay: hold the feed after each bar until the strategies and their orders caught up.

Live, market data arrives at the market's pace and an order's round trip (write-ahead,
venue, fill, event back) is over long before the next bar. A replay at full speed would
run thousands of bars ahead of its own orders. Installed as the feed's ``after_bars``
hook, ``Lockstep`` makes a replay behave like live time compressed: after bars are
published it waits until every strategy host has handled them and no strategy has an
intent in flight (its order was written ahead, submitted, filled or refused, and the
result reported back), then flushes the store's write-behind queue. Every signal is then
traded against the market of its bar, and the same input gives the same orders.

Event-driven (hosts wake it when they run out of input), so the loop is idle while an
order is on its way, as it would be live. ``timeout_s`` bounds one wait; a wait that runs
out is counted, not fatal.
"""

from __future__ import annotations

import anyio

from actors.kernel.actor import ActorState
from actors.strategy_host import StrategyHost
from adapters.storage.store import Store

__all__ = ["Lockstep"]


class Lockstep:
    """The feed's ``after_bars`` hook for a lockstep replay over a set of strategy hosts."""

    def __init__(self, hosts: dict[str, StrategyHost], store: Store | None = None, *,
                 timeout_s: float = 5.0, flush: bool = True) -> None:
        self.hosts = hosts
        self.store = store
        self.timeout_s = timeout_s
        self.flush = flush
        self.timeouts = 0

    async def __call__(self) -> None:
        """Return once every running host handled its input and has nothing in flight."""
        for host in self.hosts.values():
            await self._settle(host)
        if self.flush and self.store is not None and self.store.backlog:
            await self.store.flush()

    async def _settle(self, host: StrategyHost) -> None:
        if host.state is not ActorState.RUNNING:
            return
        if len(host.bars) or len(host.order_events) or len(host.market):
            await host.wait_idle()  # what was just published was handled
        while host.state is ActorState.RUNNING and self._in_flight(host):
            with anyio.move_on_after(self.timeout_s) as scope:
                await host.wait_idle()
            if scope.cancelled_caught:
                self.timeouts += 1
                return

    @staticmethod
    def _in_flight(host: StrategyHost) -> bool:
        strategy = host.strategy
        if strategy is None:
            return False
        return any(strategy.in_flight(symbol) for symbol in host.context.symbols)
