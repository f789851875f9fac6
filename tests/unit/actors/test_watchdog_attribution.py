"""Watchdog: time the whole loop was blocked, or an actor sat idle, is not an actor's stall.

The watchdog's process clock is replaced by a manual one, and samples are taken by hand
(``Watchdog.sample(lag_s)`` is what its loop calls after each timer), so every wait is
exact and nothing depends on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

import actors.watchdog as watchdog_module
from actors.kernel.actor import Actor, ActorState
from actors.kernel.supervisor import ChildSpec, Supervisor, SupervisorPolicy
from actors.watchdog import HEALTHY, UNHEALTHY, LoopBlockLedger, Watchdog
from config.schema.kernel import WatchdogSection
from tests.waiting import wait_until

SETTINGS = WatchdogSection(interval_s=0.25, stall_after_s=1.0, loop_lag_degraded_ms=100, loop_lag_unhealthy_ms=1000)


class ManualClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def tick(self, seconds: float) -> None:
        """Let ``seconds`` pass."""
        self.t += seconds


class Queued(Actor):
    """An actor whose pending work the test sets; it never beats by itself."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.pending = 0

    def pending_work(self) -> int:
        return self.pending

    async def run(self) -> None:
        await asyncio.Event().wait()


@dataclass
class Rig:
    """A running one-actor tree, its watchdog (not started: the test samples) and the clock."""

    actor: Queued
    watchdog: Watchdog
    clock: ManualClock

    def idle_sample(self, steps: int = 1) -> str:
        """``steps`` on-time samples one interval apart; the last verdict's status."""
        status = ""
        for _ in range(steps):
            self.clock.tick(SETTINGS.interval_s)
            status = self.watchdog.sample(0.0).status
        return status


@pytest.fixture
async def rig(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    clock = ManualClock()
    monkeypatch.setattr(watchdog_module, "monotonic", clock)
    actor = Queued("queued")
    root = Supervisor("root", [ChildSpec("queued", lambda: actor)], SupervisorPolicy(restart_delay_s=0))
    wd = Watchdog("wd", lambda: root, lambda: SETTINGS)
    task = asyncio.create_task(root.main())
    await wait_until(lambda: actor.state is ActorState.RUNNING)
    actor.last_progress = clock.t
    yield Rig(actor, wd, clock)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_samples_after_a_blocked_loop_do_not_blame_the_actors_that_waited_through_it(rig: Rig) -> None:
    rig.actor.pending = 2
    assert rig.idle_sample() == HEALTHY  # waited 0.25 s
    # The loop is blocked for 2.5 s: the next timer fires that late.
    rig.clock.tick(SETTINGS.interval_s + 2.5)
    v = rig.watchdog.sample(2.5)
    assert v.status == UNHEALTHY and v.reasons == ("event loop lag 2500ms",)
    # It has waited 0.5 s while the loop could run; the following samples are on time: 0.75, 1.0 s.
    assert rig.idle_sample(2) == HEALTHY
    assert rig.watchdog.stalls_detected == 0
    # One more interval without progress is a genuine stall, blamed on the actor.
    rig.clock.tick(SETTINGS.interval_s)
    v = rig.watchdog.sample(0.0)
    assert v.status == UNHEALTHY and v.reasons[0].startswith("actor queued stalled")
    assert rig.watchdog.stalls_detected == 1


async def test_work_arriving_after_a_long_idle_spell_is_not_a_stall(rig: Rig) -> None:
    rig.clock.tick(30.0)  # idle for 30 s: the heartbeat is old, which is fine with nothing pending
    assert rig.idle_sample() == HEALTHY
    rig.actor.pending = 1  # work arrives; the next sample comes before the actor has run
    assert rig.idle_sample() == HEALTHY
    assert rig.watchdog.stalls_detected == 0
    # Its wait counts from the sample that last saw it idle: 0.25 s per sample, stalled past 1 s.
    assert rig.idle_sample(3) == HEALTHY
    assert rig.idle_sample() == UNHEALTHY
    assert rig.watchdog.stalls_detected == 1


async def test_progress_resets_the_wait(rig: Rig) -> None:
    rig.actor.pending = 5
    assert rig.idle_sample(3) == HEALTHY
    rig.actor.last_progress = rig.clock.t  # it worked through some of it
    assert rig.idle_sample(4) == HEALTHY
    assert rig.idle_sample() == UNHEALTHY


def test_ledger_counts_only_blocking_inside_the_asked_window() -> None:
    ledger = LoopBlockLedger()
    ledger.record(10.0, 12.0)
    ledger.record(20.0, 21.0)
    ledger.record(5.0, 5.0)  # an on-time sample blocks nothing
    assert ledger.blocked_between(0.0, 30.0) == 3.0
    assert ledger.blocked_between(11.0, 30.0) == 2.0
    assert ledger.blocked_between(11.0, 20.5) == 1.5
    assert ledger.blocked_between(21.0, 30.0) == 0.0
