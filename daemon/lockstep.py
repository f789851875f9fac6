"""Lockstep replay: hold the feed after each bar until the strategies and their orders caught up.

Live, market data arrives at the market's pace and an order's round trip (write-ahead,
venue, answer, event back) is over long before the next bar. A replay at full speed would
run thousands of bars ahead of its own orders. Installed as the feed's ``after_bars``
hook, ``Lockstep`` makes a replay behave like live time compressed: after bars are
published it waits until every strategy host has handled them and the order path is
quiet — no intent waiting at the risk gate, no command waiting at the order manager, no
order waiting for the venue's answer, no order event undelivered — then flushes the
store's write-behind queue. Every signal is then traded against the market of its bar,
and the same input gives the same orders.

"Quiet" is about the order path, not about the orders: a limit order resting on the book
is answered (accepted) and then quiet, so it does not hold the replay; it fills later,
when the market reaches it.

Event-driven: each wait is for a host to run out of input again (which happens after the
order path delivers it something: an acceptance, a fill, a denial), so the loop is idle
while an order is on its way, as it would be live. ``timeout_s`` bounds one wait; a wait
that runs out is counted, not fatal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from actors.kernel.actor import ActorState
from actors.strategy_host import StrategyHost
from adapters.storage.store import Store

__all__ = ["Lockstep"]


def _has_input(host: StrategyHost) -> bool:
    return bool(len(host.bars) or len(host.order_events) or len(host.market))


class Lockstep:
    """The feed's ``after_bars`` hook for a lockstep replay.

    ``order_path_quiet()`` says whether the order path has nothing in progress (see the
    module docstring); ``daemon.pipeline.build_pipeline`` supplies it. ``idle_signals``: more
    "ran out of work" futures to wake on besides the hosts' (the contingent-order manager's:
    arming a stop sends nothing back to a strategy, so no host would wake the wait).
    """

    def __init__(self, hosts: dict[str, StrategyHost], store: Store | None,
                 order_path_quiet: Callable[[], bool], *, timeout_s: float = 5.0, flush: bool = True,
                 idle_signals: Sequence[Callable[[], asyncio.Future[None]]] = ()) -> None:
        self.hosts = hosts
        self.idle_signals = tuple(idle_signals)
        self.store = store
        self.order_path_quiet = order_path_quiet
        self.timeout_s = timeout_s
        self.flush = flush
        self.timeouts = 0

    async def __call__(self) -> None:
        """Return once every running host handled its input and the order path is quiet."""
        hosts = [h for h in self.hosts.values() if h.state is ActorState.RUNNING]
        for host in hosts:
            if _has_input(host):
                await host.wait_idle()  # what was just published was handled
        while hosts and not (self.order_path_quiet() and not any(_has_input(h) for h in hosts)):
            # Something is on its way back to a strategy: wait until a host has handled it.
            # The futures are registered before this task yields, so no wake-up is missed.
            waits = [h.next_idle() for h in hosts] + [signal() for signal in self.idle_signals]
            done, pending = await asyncio.wait(waits, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                fut.cancel()
            if not done:
                self.timeouts += 1
                return
            hosts = [h for h in hosts if h.state is ActorState.RUNNING]
        if self.flush and self.store is not None and self.store.backlog:
            await self.store.flush()

