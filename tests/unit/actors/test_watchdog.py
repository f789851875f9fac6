"""Watchdog: stalled actors are detected and restarted through their supervisor; verdicts."""

from __future__ import annotations

import asyncio
import contextlib
import time

from actors.kernel.actor import Actor, ActorState
from actors.kernel.channel import Channel
from actors.kernel.supervisor import ChildSpec, Supervisor, SupervisorPolicy
from actors.watchdog import DEGRADED, HEALTHY, UNHEALTHY, Watchdog
from config.schema.kernel import WatchdogSection
from tests.waiting import wait_until


class Sleeper(Actor):
    """Takes one message, then hangs forever without beating: a stall once work is pending."""

    async def run(self) -> None:
        assert self.inbox is not None
        await self.inbox.recv()
        self.beat()
        await asyncio.Event().wait()


class Idle(Actor):
    """Never does anything and has nothing pending: must not be called stalled."""

    async def run(self) -> None:
        await asyncio.Event().wait()




async def test_actor_with_pending_work_and_no_progress_is_restarted() -> None:
    inbox: Channel[int] = Channel("inbox", 10)
    instances: list[Sleeper] = []
    settings = WatchdogSection(interval_s=0.02, stall_after_s=0.2)

    def sleeper() -> Sleeper:
        s = Sleeper("sleeper", inbox)
        instances.append(s)
        return s

    verdicts: list[str] = []
    holder: dict[str, Supervisor] = {}
    wd = Watchdog("watchdog", lambda: holder["root"], lambda: settings, on_verdict=lambda v: verdicts.append(v.status))
    root = Supervisor(
        "root",
        [ChildSpec("watchdog", lambda: wd), ChildSpec("sleeper", sleeper), ChildSpec("idle", lambda: Idle("idle"))],
        SupervisorPolicy(max_restarts=10, restart_delay_s=0, shutdown_timeout_s=1),
    )
    holder["root"] = root
    task = asyncio.create_task(root.main())
    await wait_until(lambda: instances and instances[-1].state is ActorState.RUNNING)
    inbox.try_send(1)  # processed; then the actor hangs
    inbox.try_send(2)  # pending: now it is stalled
    await wait_until(lambda: len(instances) >= 2)
    assert wd.stalls_detected >= 1
    assert root.restart_counts["sleeper"] >= 1
    assert root.restart_counts["idle"] == 0
    assert UNHEALTHY in verdicts
    assert "ActorStalled" in (root.last_errors["sleeper"] or "")
    # The restarted actor takes the pending message and the verdict recovers.
    await wait_until(lambda: wd.verdict.status == HEALTHY)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def test_health_checks_and_lag_combine_into_one_verdict() -> None:
    settings = WatchdogSection(loop_lag_degraded_ms=10, loop_lag_unhealthy_ms=100)
    wd = Watchdog("wd", lambda: None, lambda: settings, checks=[lambda: [("degraded", "feed XRP/ETH stale")]])
    v = wd.evaluate()
    assert v.status == DEGRADED and v.reasons == ("feed XRP/ETH stale",)
    wd.loop_lag_ms = 150
    v = wd.evaluate()
    assert v.status == UNHEALTHY
    assert v.reasons[0].startswith("event loop lag")


def test_broken_health_check_degrades_instead_of_crashing() -> None:
    def broken() -> list[tuple[str, str]]:
        raise RuntimeError("boom")

    wd = Watchdog("wd", lambda: None, WatchdogSection, checks=[broken])
    v = wd.evaluate()
    assert v.status == DEGRADED and "boom" in v.reasons[0]


async def test_actor_waiting_through_a_blocked_loop_is_not_called_stalled() -> None:
    class Busy(Actor):
        """Has work queued and waits (as every actor does while the loop is blocked)."""

        def pending_work(self) -> int:
            return 3

        async def run(self) -> None:
            await asyncio.Event().wait()

    settings = WatchdogSection(stall_after_s=1.0)
    busy = Busy("busy")
    root = Supervisor("root", [ChildSpec("busy", lambda: busy)], SupervisorPolicy(restart_delay_s=0))
    wd = Watchdog("wd", lambda: root, lambda: settings)
    task = asyncio.create_task(root.main())
    await wait_until(lambda: busy.state is ActorState.RUNNING)
    # Heartbeat 2.2 s old, 2 s of which the whole loop was blocked: the loop lagged, the actor did not stall.
    busy.last_progress = time.monotonic() - 2.2
    wd.loop_lag_ms = 2000.0
    v = wd.evaluate()
    assert v.status == UNHEALTHY and v.reasons == ("event loop lag 2000ms",)
    assert wd.stalls_detected == 0
    # The same age without a blocked loop is a stall.
    wd.loop_lag_ms = 0.0
    v = wd.evaluate()
    assert wd.stalls_detected == 1 and v.reasons[0].startswith("actor busy stalled")
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
