"""Running a pipeline built by ``daemon.pipeline.build_pipeline`` to the end of its data.

Shared by the paced benches (``bench/latency.py``, ``bench/triggers.py``): start the
supervision tree as the daemon wires it, open the feed once the reconciler is ready, wait
until the source ended and the whole order path (channels, order manager, risk gate,
contingent-order manager) has nothing left to do, and tear the tree down. A run in which the
supervisor restarted anything is an error, not a figure. ``run_in_fresh_loop`` gives each
run its own event loop (the daemon's loop policy) and temporary directory.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from actors.kernel.actor import ActorState
from actors.kernel.clock import monotonic, perf_ns
from actors.kernel.supervisor import Supervisor
from config.schema.root import AaitiConfig
from daemon.pipeline import Pipeline, supervisor_policy
from daemon.runtime import run_loop

__all__ = ["run_in_fresh_loop", "run_to_end", "settle"]

T = TypeVar("T")

#: How often the end of the data and the settling are checked (process time).
_POLL_S = 0.005
#: Consecutive idle checks that count as settled.
_QUIET_CHECKS = 3


async def settle(built: Pipeline, timeout_s: float) -> None:
    """Wait until every channel of the order path is empty and no actor on it has work.

    Exits still armed when the data ends stay armed (they rest in the contingent-order
    manager, not at the venue), so they do not count as work. Raises ``RuntimeError`` naming
    what is still busy after ``timeout_s``.
    """
    om, gate, cm = built.order_manager, built.risk_gate, built.contingent
    channels = (built.intents, built.commands, built.events, built.contingent_inbox, built.contingent_events)
    deadline = monotonic() + timeout_s
    quiet = 0
    while quiet < _QUIET_CHECKS:
        busy = (any(len(c) for c in channels) or om.open_order_count() or om.pending_work()
                or gate.pending_work() or cm.pending_work())
        quiet = 0 if busy else quiet + 1
        if monotonic() > deadline:
            raise RuntimeError(f"order path did not settle: open orders {om.open_order_count()}, "
                               f"order manager pending {om.pending_work()}, risk gate pending {gate.pending_work()}, "
                               f"contingent pending {cm.pending_work()}")
        await asyncio.sleep(_POLL_S)


async def run_to_end(built: Pipeline, cfg: AaitiConfig, *, name: str, settle_timeout_s: float) -> float:
    """Run ``built`` under its supervisors until the data ended and the order path settled.

    Returns the seconds from opening the feed to settled. Raises ``RuntimeError`` when the
    tree ended early or the supervisor restarted a child. The caller owns (and closes) the
    venue and the store.
    """
    root = Supervisor("root", built.children(), supervisor_policy(cfg.supervisor))
    root_task = asyncio.create_task(root.main(), name=f"{name}-root")
    try:
        await asyncio.wait_for(built.reconciler.ready.wait(), 30)
        assert built.feed.start_gate is not None
        started = perf_ns()
        built.feed.start_gate.set()
        while not (built.feed.state is ActorState.STOPPED and built.feed.snapshot().ended):
            if root_task.done():
                root_task.result()
                raise RuntimeError("supervision tree ended early")
            await asyncio.sleep(_POLL_S * 10)
        await settle(built, settle_timeout_s)
        seconds = (perf_ns() - started) / 1e9
        if root.total_restarts:
            raise RuntimeError(f"supervisor restarted a child: {root.last_errors}")
        return seconds
    finally:
        root_task.cancel()
        await asyncio.gather(root_task, return_exceptions=True)


def run_in_fresh_loop(make: Callable[[Path], Awaitable[T]], prefix: str) -> T:
    """``make(workdir)`` on a new event loop (``daemon.runtime.run_loop``) in a temporary directory."""
    box: list[T] = []

    async def go() -> int:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            box.append(await make(Path(tmp)))
        return 0

    run_loop(go)
    return box[0]
