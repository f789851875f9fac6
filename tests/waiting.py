"""Condition waits for tests: poll a predicate until true or a generous deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def wait_until(pred: Callable[[], object], timeout: float = 5.0, interval: float = 0.005) -> None:
    """Wait until ``pred()`` is truthy; fail with TimeoutError after ``timeout`` seconds.

    Used where the state under test (a supervisor's child set, an actor's state) has no
    event to await; the deadline is a safety net, not a performance assertion.
    """

    async def poll() -> None:
        while not pred():  # noqa: ASYNC110 - no event exists for these states
            await asyncio.sleep(interval)

    await asyncio.wait_for(poll(), timeout)
