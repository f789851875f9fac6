"""Run the daemon's own pipeline over a finite replay to its end (for tests).

Resources are real (SQLite store and paper account in a temporary directory); the wiring
is ``daemon.pipeline.build_pipeline``; the clock is the market clock the daemon uses for
replayed data; the feed runs in lockstep so the run is deterministic.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from actors.kernel.actor import ActorState
from actors.kernel.supervisor import Supervisor
from actors.model.records import OrderRecord
from actors.risk.state import RiskSnapshot
from adapters.market_data.factory import build_source
from adapters.paper_venue import PaperVenue
from adapters.storage.store import Store
from config.loader import LoadedConfig
from daemon.lockstep import Lockstep
from daemon.pipeline import build_pipeline, market_clock_for, supervisor_policy
from tests.waiting import wait_until


@dataclasses.dataclass(frozen=True)
class ReplayOutcome:
    """What a finished replay did."""

    risk: RiskSnapshot
    orders: list[OrderRecord]
    submitted: int
    fills: int


async def run_replay_to_end(loaded: LoadedConfig, workdir: Path, timeout_s: float = 120.0) -> ReplayOutcome:
    """Build the pipeline for ``loaded`` (feed.on_end must be "stop"), run it to the end."""
    cfg = loaded.config
    assert cfg.feed.on_end == "stop"
    source = build_source(cfg.feed, loaded.resolve)
    clock = market_clock_for(source)
    store = await Store.open(workdir / "state.db")
    venue = PaperVenue(workdir / "paper.db", cfg.venue.paper, cfg.instruments, venue_name=cfg.venue.name, clock=clock)
    await venue.start()
    built = build_pipeline(cfg, store=store, venue=venue, source=source, clock=clock)
    built.feed.after_bars = Lockstep(built.hosts, store)
    root = Supervisor("root", built.children(), supervisor_policy(cfg.supervisor))
    task = asyncio.create_task(root.main())
    try:
        await asyncio.wait_for(built.reconciler.ready.wait(), timeout_s)
        assert built.feed.start_gate is not None
        built.feed.start_gate.set()
        om, gate = built.order_manager, built.risk_gate
        await wait_until(
            lambda: built.feed.state is ActorState.STOPPED and built.feed.snapshot().ended
            and not any(len(ch) for ch in (built.intents, built.commands, built.events))
            and not om.open_order_count() and not om.pending_work() and not gate.pending_work(),
            timeout=timeout_s,
        )
        await store.flush()
        assert root.total_restarts == 0, root.last_errors
        orders = await store.orders(limit=100_000)
        c = om.snapshot().counters
        return ReplayOutcome(risk=gate.snapshot(), orders=orders, submitted=c.submitted, fills=c.fills_applied)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await venue.close()
        await store.close()
