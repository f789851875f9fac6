"""start_eager_task: the first step runs in the caller's turn, the rest as an ordinary task."""

from __future__ import annotations

import asyncio

import pytest

from actors.kernel.actor import start_eager_task


async def test_first_step_runs_before_the_caller_yields_and_the_rest_in_the_task() -> None:
    steps: list[str] = []
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def work() -> int:
        steps.append("first")
        value = await gate
        steps.append("rest")
        return value * 2

    task = start_eager_task(work(), name="eager")
    assert steps == ["first"]  # no trip through the loop
    assert task.get_name() == "eager" and not task.done()
    gate.set_result(21)
    assert await asyncio.wait_for(task, 1) == 42
    assert steps == ["first", "rest"]


async def test_a_first_step_that_finishes_gives_a_task_with_its_result() -> None:
    async def work() -> str:
        return "done"

    task = start_eager_task(work())
    seen: list[str] = []
    task.add_done_callback(lambda t: seen.append(t.result()))
    assert await asyncio.wait_for(task, 1) == "done"
    await asyncio.sleep(0)
    assert seen == ["done"]


async def test_a_first_step_that_raises_gives_a_task_with_the_exception() -> None:
    async def work() -> None:
        raise ValueError("boom")

    task = start_eager_task(work())
    with pytest.raises(ValueError, match="boom"):
        await asyncio.wait_for(task, 1)


async def test_bare_yields_and_later_waits_behave_as_in_a_task() -> None:
    steps: list[int] = []

    async def work() -> int:
        for i in range(3):
            steps.append(i)
            await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        return len(steps)

    task = start_eager_task(work())
    assert steps == [0]
    assert await asyncio.wait_for(task, 1) == 3


async def test_cancel_before_the_task_ran_reaches_the_coroutine_and_its_future() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    cleaned: list[bool] = []

    async def work() -> None:
        try:
            await gate
        finally:
            cleaned.append(True)

    task = start_eager_task(work())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled() and cleaned == [True]
    assert gate.cancelled()


async def test_cancel_while_waiting_later_reaches_the_coroutine() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    started = asyncio.Event()
    cleaned: list[bool] = []

    async def work() -> None:
        await asyncio.sleep(0)
        started.set()
        try:
            await gate
        finally:
            cleaned.append(True)

    task = start_eager_task(work())
    await asyncio.wait_for(started.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True] and gate.cancelled()
