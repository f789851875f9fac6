"""wait_any over several channels, batch drain, and the ready flag."""

from __future__ import annotations

import asyncio

import pytest

from actors.kernel.channel import Channel, OverflowPolicy, wait_any


async def test_wait_any_returns_at_once_when_a_channel_is_ready() -> None:
    a: Channel[int] = Channel("a", 4)
    b: Channel[int] = Channel("b", 4)
    assert not a.ready
    b.try_send(1)
    assert b.ready
    await asyncio.wait_for(wait_any([a, b]), 1)
    assert not a._getters and not b._getters  # nothing registered


async def test_wait_any_wakes_on_an_item_in_any_channel_and_cleans_up() -> None:
    a: Channel[int] = Channel("a", 4)
    b: Channel[int] = Channel("b", 4)
    waiter = asyncio.create_task(wait_any([a, b]))
    await asyncio.sleep(0)
    assert not waiter.done()
    b.try_send(7)
    await asyncio.wait_for(waiter, 1)
    assert not a._getters and not b._getters
    assert b.try_recv() == 7


async def test_wait_any_wakes_on_close() -> None:
    a: Channel[int] = Channel("a", 4)
    b: Channel[int] = Channel("b", 4, OverflowPolicy.CONFLATE, key=lambda x: x)
    waiter = asyncio.create_task(wait_any([a, b]))
    await asyncio.sleep(0)
    a.close()
    await asyncio.wait_for(waiter, 1)
    assert a.ready and not b.ready


async def test_wait_any_and_a_plain_receiver_share_a_channel_without_losing_wakeups() -> None:
    a: Channel[int] = Channel("a", 4)
    b: Channel[int] = Channel("b", 4)
    waiter = asyncio.create_task(wait_any([a, b]))
    await asyncio.sleep(0)
    receiver = asyncio.create_task(a.recv())
    await asyncio.sleep(0)
    b.try_send(1)  # wakes the wait_any future; a's deque still holds it, now done
    a.try_send(2)  # must skip the done future and wake the plain receiver
    await asyncio.wait_for(waiter, 1)
    assert await asyncio.wait_for(receiver, 1) == 2


async def test_cancelled_wait_any_passes_a_consumed_wakeup_on() -> None:
    a: Channel[int] = Channel("a", 4)
    waiter = asyncio.create_task(wait_any([a]))
    await asyncio.sleep(0)
    other = asyncio.create_task(a.recv())
    await asyncio.sleep(0)
    a.try_send(5)  # wakes wait_any (registered first) ...
    waiter.cancel()  # ... which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await asyncio.wait_for(other, 1) == 5


async def test_drain_takes_a_batch_in_order_and_wakes_blocked_producers() -> None:
    ch: Channel[int] = Channel("c", 3)
    for i in range(3):
        ch.try_send(i)
    producers = [asyncio.create_task(ch.send(10 + i)) for i in range(2)]
    await asyncio.sleep(0)
    assert ch.drain(2) == [0, 1]
    await asyncio.wait_for(asyncio.gather(*producers), 1)
    assert ch.drain(10) == [2, 10, 11]
    assert ch.drain(10) == []
    st = ch.stats
    assert (st.sent, st.received) == (5, 5)


async def test_drain_of_a_conflating_channel_gives_the_latest_per_key_in_key_order() -> None:
    ch: Channel[tuple[str, int]] = Channel("c", 8, OverflowPolicy.CONFLATE, key=lambda x: x[0])
    for item in [("a", 1), ("b", 1), ("a", 2)]:
        ch.try_send(item)
    assert ch.drain(1) == [("a", 2)]
    assert ch.drain(5) == [("b", 1)]
    assert ch.stats.received == 2 and ch.stats.conflated == 1
