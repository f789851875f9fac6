"""Contingent orders on a paper pipeline reach a webhook: a stop that fires, a stop that FAILED.

The daemon's own pipeline (``build_pipeline``, wired to the notification service as
``daemon.app`` wires it: the manager's store tapped, the router tapped with the manager's
views) over the paper venue and a scripted market, with the test strategy of the pipeline
tests (``tests.integration.pipeline.protective_strategies``), and the real service
delivering to a local HTTP receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from actors.kernel.clock import MarketClock
from actors.kernel.supervisor import Supervisor
from actors.model.contingent import ContingentKind, ContingentStatus
from actors.model.control import SetTradingState, TradingState
from adapters.paper_venue import PaperVenue
from adapters.storage.store import Store
from daemon.notify import NotificationService
from daemon.pipeline import build_pipeline, supervisor_policy
from tests.integration.notify.conftest import OpenService
from tests.integration.notify.receiver import Receiver
from tests.integration.pipeline.protective_strategies import (
    T0_MS,
    WAIT,
    Rig,
    ScriptedSource,
    make_config,
    wait_for,
)

K = ContingentKind
S = ContingentStatus


@contextlib.asynccontextmanager
async def notified_rig(tmp_path: Path, name: str, svc: NotificationService, params: dict[str, Any]
                       ) -> AsyncIterator[Rig]:
    """A running paper pipeline with one ``Protective`` strategy, wired to ``svc`` like the daemon."""
    cfg = make_config(params)
    clock = MarketClock(T0_MS)
    venue = PaperVenue(tmp_path / f"{name}-paper.db", cfg.venue.paper, cfg.instruments, venue_name="paper",
                       clock=clock)
    await venue.start()
    store = await Store.open(tmp_path / f"{name}-state.db")
    built = build_pipeline(cfg, store=store, venue=venue, source=ScriptedSource(), clock=clock, lockstep=False,
                           retention=False, on_contingent_saved=svc.contingent_tap)
    svc.attach(built.router, built.order_manager.order, built.contingent.view_of)
    root = Supervisor("root", built.children(), supervisor_policy(cfg.supervisor))
    task = asyncio.create_task(root.main())
    try:
        await wait_for(lambda: built.reconciler.ready.is_set() or task.done())
        assert not task.done(), task
        await asyncio.wait_for(built.contingent.resumed.wait(), WAIT)
        assert built.feed.start_gate is not None
        built.feed.start_gate.set()
        source = built.feed.source
        assert isinstance(source, ScriptedSource)
        yield Rig(built, store, source, venue)
        assert built.order_path.total_restarts == 0, built.order_path.last_errors
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await venue.close()
        await store.close()


async def wait_title(rx: Receiver, text: str) -> dict[str, Any]:
    """Until a message whose title contains ``text`` arrived; return it."""
    while True:
        found = next((m for m in rx.messages if text in str(m.get("title", ""))), None)
        if found is not None:
            return found
        await rx.wait_count(len(rx.messages) + 1)


async def test_a_fired_stop_and_a_failed_stop_reach_the_webhook(
    tmp_path: Path, receiver: Receiver, open_service: OpenService
) -> None:
    svc = await open_service([receiver.url()])
    # A sell stop that fires: its market child's fill is a protective exit (its tag is the strategy's own).
    async with notified_rig(tmp_path, "fired", svc, {"kind": "stop", "trigger": "49000"}) as rig:
        await rig.start_and_submit("50000")
        await rig.wait_active(K.STOP, status=S.WORKING)
        await rig.trade("49000")
        row = await rig.wait_final(K.STOP)
        assert row.status is S.DONE
        exit_ = await wait_title(receiver, "Protective exit: SELL 0.01 BTC/USDT @ 49000")
        assert exit_["type"] == "warning" and f"contingent order: stop {row.id} (order)" in exit_["message"]
    # A buy stop (an entry) while trading is paused: its child is denied until the manager gives up.
    async with notified_rig(tmp_path, "failed", svc, {"kind": "stop", "side": "buy", "trigger": "51000"}) as rig:
        await rig.start_and_submit("50000")
        await rig.wait_active(K.STOP, status=S.WORKING)
        await rig.built.control.send(SetTradingState(state=TradingState.REDUCING, reason="test pause"))
        await wait_for(lambda: rig.built.risk_gate.trading_state is TradingState.REDUCING)
        await rig.trade("51000")
        await rig.trade("51100")  # past child_retry_s: the second and last attempt
        row = await rig.wait_final(K.STOP)
        assert row.status is S.FAILED
        await wait_for(lambda: rig.strategy.denials)  # the strategy was told (CONTINGENT_GIVEN_UP)
        failed = await wait_title(receiver, "test: stop BTC/USDT FAILED")
        assert failed["type"] == "failure"  # critical
        assert f"contingent order: {row.id} (stop, emulated)" in failed["message"]
        assert "(the risk gate denied its order until it gave up)" in failed["message"]
    titles = receiver.titles()
    assert sum("FAILED" in t for t in titles) == 1 and sum("Protective exit" in t for t in titles) == 1
    assert not any("risk denials" in t for t in titles)
