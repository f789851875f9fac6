"""Supervisor: strategies, restart types, intensity and escalation, shutdown timeouts, nesting."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from actors.kernel.actor import Actor, ActorState
from actors.kernel.supervisor import (
    ChildIgnoredCancel,
    ChildSpec,
    RestartStrategy,
    RestartType,
    Supervisor,
    SupervisorGaveUp,
    SupervisorPolicy,
)
from tests.waiting import wait_until


class Journal:
    """Records start/stop events of test actors, in order."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.started = asyncio.Event()

    def starts(self, name: str) -> int:
        return self.events.count(f"start:{name}")


class Worker(Actor):
    """Runs until told to fail or exit; records its lifecycle in a journal."""

    def __init__(self, name: str, journal: Journal) -> None:
        super().__init__(name)
        self.journal = journal
        self.command: asyncio.Queue[str] = asyncio.Queue()

    async def run(self) -> None:
        self.journal.events.append(f"start:{self.name}")
        self.journal.started.set()
        cmd = await self.command.get()
        if cmd == "fail":
            raise RuntimeError(f"{self.name} failed")

    async def on_stop(self) -> None:
        self.journal.events.append(f"stop:{self.name}")


class Stubborn(Actor):
    """Swallows the first cancellation: the supervisor must escalate after its shutdown timeout.

    It honours the second one, so the test can clean it up.
    """

    async def run(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)
        await asyncio.sleep(3600)


async def reap_stubborn() -> None:
    """Cancel abandoned Stubborn tasks a second time so the loop can close."""
    leftovers = [t for t in asyncio.all_tasks() if t.get_name().endswith("/stubborn") and not t.done()]
    for t in leftovers:
        t.cancel()
    await asyncio.gather(*leftovers, return_exceptions=True)


def policy(strategy: RestartStrategy = RestartStrategy.ONE_FOR_ONE, **kw: float) -> SupervisorPolicy:
    base = {"max_restarts": 10, "period_s": 5.0, "restart_delay_s": 0.0, "backoff_max_s": 0.0,
            "shutdown_timeout_s": 0.5}
    base.update(kw)
    return SupervisorPolicy(strategy=strategy, **base)  # type: ignore[arg-type]


def make_tree(
    names: list[str], journal: Journal, pol: SupervisorPolicy, restart: RestartType = RestartType.PERMANENT
) -> tuple[Supervisor, dict[str, list[Worker]]]:
    instances: dict[str, list[Worker]] = {n: [] for n in names}

    def factory(n: str) -> Worker:
        w = Worker(n, journal)
        instances[n].append(w)
        return w

    specs = [ChildSpec(n, lambda n=n: factory(n), restart) for n in names]  # type: ignore[misc]
    return Supervisor("sup", specs, pol), instances




async def run_sup(sup: Supervisor) -> asyncio.Task[None]:
    task = asyncio.create_task(sup.main())
    await wait_until(lambda: sup.state is ActorState.RUNNING)
    return task


async def stop_sup(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_one_for_one_crash_restarts_only_failed_child() -> None:
    j = Journal()
    sup, inst = make_tree(["a", "b", "c"], j, policy())
    task = await run_sup(sup)
    await wait_until(lambda: j.starts("c") == 1)
    inst["b"][-1].command.put_nowait("fail")
    await wait_until(lambda: j.starts("b") == 2)
    assert (j.starts("a"), j.starts("b"), j.starts("c")) == (1, 2, 1)
    assert sup.restart_counts["b"] == 1
    await stop_sup(task)


async def test_one_for_all_crash_restarts_all_children_stopping_in_reverse() -> None:
    j = Journal()
    sup, inst = make_tree(["a", "b", "c"], j, policy(RestartStrategy.ONE_FOR_ALL))
    task = await run_sup(sup)
    await wait_until(lambda: j.starts("c") == 1)
    j.events.clear()
    inst["b"][-1].command.put_nowait("fail")
    await wait_until(lambda: j.starts("c") == 1)
    assert j.events == ["stop:b", "stop:c", "stop:a", "start:a", "start:b", "start:c"]
    await stop_sup(task)


async def test_rest_for_one_crash_restarts_failed_and_later_children() -> None:
    j = Journal()
    sup, inst = make_tree(["a", "b", "c"], j, policy(RestartStrategy.REST_FOR_ONE))
    task = await run_sup(sup)
    await wait_until(lambda: j.starts("c") == 1)
    j.events.clear()
    inst["b"][-1].command.put_nowait("fail")
    await wait_until(lambda: j.starts("c") == 1)
    assert j.events == ["stop:b", "stop:c", "start:b", "start:c"]
    await stop_sup(task)


async def test_children_start_in_order_and_stop_in_reverse() -> None:
    j = Journal()
    sup, _ = make_tree(["a", "b", "c"], j, policy())
    task = await run_sup(sup)
    await wait_until(lambda: j.starts("c") == 1)
    await stop_sup(task)
    assert j.events == ["start:a", "start:b", "start:c", "stop:c", "stop:b", "stop:a"]
    assert sup.state is ActorState.STOPPED


async def test_child_without_autostart_is_known_but_starts_only_when_asked() -> None:
    j = Journal()
    workers: list[Worker] = []

    def make(n: str) -> Worker:
        w = Worker(n, j)
        workers.append(w)
        return w

    sup = Supervisor("sup", [ChildSpec("a", lambda: make("a")),
                             ChildSpec("off", lambda: make("off"), autostart=False)], policy())
    task = await run_sup(sup)  # RUNNING: every autostart child was started before this
    await wait_until(lambda: j.starts("a") == 1)
    assert j.starts("off") == 0 and not sup.is_running("off")
    assert [s.state for s in sup.statuses() if s.name == "off"] == ["stopped"]
    assert sup.start_child("off")
    await wait_until(lambda: j.starts("off") == 1)
    assert sup.is_running("off")
    await stop_sup(task)


@pytest.mark.parametrize(
    ("restart", "command", "restarted"),
    [
        (RestartType.PERMANENT, "exit", True),
        (RestartType.PERMANENT, "fail", True),
        (RestartType.TRANSIENT, "exit", False),
        (RestartType.TRANSIENT, "fail", True),
        (RestartType.TEMPORARY, "exit", False),
        (RestartType.TEMPORARY, "fail", False),
    ],
)
async def test_restart_type_exit_kind_restarts_as_specified(
    restart: RestartType, command: str, restarted: bool
) -> None:
    j = Journal()
    sup, inst = make_tree(["a"], j, policy(), restart)
    task = await run_sup(sup)
    await wait_until(lambda: j.starts("a") == 1)
    inst["a"][-1].command.put_nowait(command)
    await wait_until(lambda: "stop:a" in j.events)
    if restarted:
        await wait_until(lambda: j.starts("a") == 2)
    else:
        await asyncio.sleep(0.05)  # give a (wrong) restart the chance to happen
        assert j.starts("a") == 1
        assert sup.children() == []
    await stop_sup(task)


async def test_intensity_exceeded_supervisor_gives_up_and_stops_children() -> None:
    j = Journal()
    sup, inst = make_tree(["a", "b"], j, policy(max_restarts=2, period_s=60))
    task = asyncio.create_task(sup.main())
    for n in range(1, 4):
        await wait_until(lambda n=n: j.starts("b") == n)  # type: ignore[misc]
        inst["b"][-1].command.put_nowait("fail")
    with pytest.raises(SupervisorGaveUp, match="max_restarts=2"):
        await asyncio.wait_for(task, 3)
    assert j.events[-2:] == ["stop:b", "stop:a"] or j.events[-1] == "stop:a"
    assert sup.state is ActorState.FAILED


async def test_nested_supervisor_giving_up_escalates_to_parent_which_restarts_it() -> None:
    j = Journal()
    inner_instances: list[dict[str, list[Worker]]] = []

    def inner_factory() -> Supervisor:
        s, inst = make_tree(["x"], j, policy(max_restarts=0))
        s.name = "inner"
        inner_instances.append(inst)
        return s

    outer = Supervisor("outer", [ChildSpec("inner", inner_factory)], policy(max_restarts=1, period_s=60))
    task = asyncio.create_task(outer.main())
    await wait_until(lambda: j.starts("x") == 1)
    inner_instances[-1]["x"][-1].command.put_nowait("fail")  # inner gives up → outer restarts inner
    await wait_until(lambda: j.starts("x") == 2)
    assert len(inner_instances) == 2
    assert outer.restart_counts["inner"] == 1
    inner_instances[-1]["x"][-1].command.put_nowait("fail")  # again → outer exceeds its intensity
    with pytest.raises(SupervisorGaveUp, match="outer"):
        await asyncio.wait_for(task, 3)


async def test_child_swallowing_cancellation_is_escalated_after_timeout() -> None:
    sup = Supervisor("sup", [ChildSpec("stubborn", lambda: Stubborn("stubborn"), shutdown_timeout_s=0.1)], policy())
    task = await run_sup(sup)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(ChildIgnoredCancel, match="stubborn"):
        await asyncio.wait_for(task, 3)
    await reap_stubborn()


async def test_child_swallowing_cancellation_during_restart_makes_supervisor_give_up() -> None:
    j = Journal()
    workers: list[Worker] = []

    def worker() -> Worker:
        w = Worker("w", j)
        workers.append(w)
        return w

    specs = [
        ChildSpec("stubborn", lambda: Stubborn("stubborn"), shutdown_timeout_s=0.1),
        ChildSpec("w", worker),
    ]
    sup = Supervisor("sup", specs, policy(RestartStrategy.ONE_FOR_ALL))
    task = await run_sup(sup)
    await wait_until(lambda: j.starts("w") == 1)
    workers[-1].command.put_nowait("fail")
    with pytest.raises(SupervisorGaveUp, match="ignored cancellation"):
        await asyncio.wait_for(task, 3)
    await reap_stubborn()


def test_restart_delay_doubles_up_to_cap() -> None:
    sup = Supervisor("s", [], policy(restart_delay_s=0.1, backoff_max_s=0.5, max_restarts=10))
    delays = [sup._record_restart("x") for _ in range(5)]
    assert delays == [0.1, 0.2, 0.4, 0.5, 0.5]


async def test_restart_child_from_outside_counts_as_abnormal_and_restarts() -> None:
    j = Journal()
    sup, _ = make_tree(["a"], j, policy())
    task = await run_sup(sup)
    await wait_until(lambda: j.starts("a") == 1)
    assert await sup.restart_child("a", "stalled") is True
    await wait_until(lambda: j.starts("a") == 2)
    assert "ActorStalled" in (sup.last_errors.get("a") or "")
    await stop_sup(task)
