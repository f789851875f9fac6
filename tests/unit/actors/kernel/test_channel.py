"""Channels: each overflow policy under a producer faster than its consumer; close semantics."""

from __future__ import annotations

import asyncio

import pytest

from actors.kernel.channel import Channel, ChannelClosed, OverflowPolicy


async def _fast_producer_slow_consumer(ch: Channel[tuple[str, int]], n: int) -> list[tuple[str, int]]:
    got: list[tuple[str, int]] = []

    async def consume() -> None:
        async for item in ch:
            got.append(item)
            await asyncio.sleep(0)  # the consumer yields after every item: slower than the producer
            await asyncio.sleep(0)

    consumer = asyncio.create_task(consume())
    for i in range(n):
        await ch.send((f"S{i % 3}", i))
    ch.close()
    await asyncio.wait_for(consumer, 5)
    return got


async def test_block_policy_fast_producer_loses_nothing_and_keeps_order() -> None:
    ch: Channel[tuple[str, int]] = Channel("c", 4, OverflowPolicy.BLOCK)
    got = await _fast_producer_slow_consumer(ch, 200)
    assert [i for _, i in got] == list(range(200))
    st = ch.stats
    assert (st.sent, st.received, st.dropped, st.conflated) == (200, 200, 0, 0)
    assert st.high_water == 4


async def test_block_policy_full_channel_makes_producer_wait() -> None:
    ch: Channel[int] = Channel("c", 2)
    await ch.send(1)
    await ch.send(2)
    assert ch.try_send(3) is False
    blocked = asyncio.create_task(ch.send(3))
    await asyncio.sleep(0)
    assert not blocked.done()
    assert await ch.recv() == 1
    await asyncio.wait_for(blocked, 1)
    assert ch.drain(10) == [2, 3]


async def test_drop_oldest_policy_fast_producer_keeps_newest_and_counts_drops() -> None:
    ch: Channel[tuple[str, int]] = Channel("c", 4, OverflowPolicy.DROP_OLDEST)
    for i in range(10):
        await ch.send(("S", i))
    assert [i for _, i in ch.drain(100)] == [6, 7, 8, 9]
    st = ch.stats
    assert (st.sent, st.dropped, st.received, st.high_water) == (10, 6, 4, 4)


async def test_conflate_policy_fast_producer_keeps_newest_per_key_in_place() -> None:
    ch: Channel[tuple[str, int]] = Channel("c", 8, OverflowPolicy.CONFLATE, key=lambda x: x[0])
    for i in range(9):
        await ch.send((f"S{i % 3}", i))
    # One pending item per key, in the order keys first arrived, with the newest values.
    assert ch.drain(100) == [("S0", 6), ("S1", 7), ("S2", 8)]
    st = ch.stats
    assert (st.sent, st.conflated, st.dropped, st.received) == (9, 6, 0, 3)


async def test_conflate_policy_more_keys_than_capacity_drops_oldest_key() -> None:
    ch: Channel[tuple[str, int]] = Channel("c", 2, OverflowPolicy.CONFLATE, key=lambda x: x[0])
    for k in ("A", "B", "C"):
        ch.try_send((k, 0))
    assert ch.drain(10) == [("B", 0), ("C", 0)]
    assert ch.stats.dropped == 1


async def test_conflate_policy_concurrent_consumer_sees_latest_values() -> None:
    ch: Channel[tuple[str, int]] = Channel("c", 16, OverflowPolicy.CONFLATE, key=lambda x: x[0])
    got = await _fast_producer_slow_consumer(ch, 300)
    last_per_key = {k: max(i for kk, i in got if kk == k) for k in ("S0", "S1", "S2")}
    assert last_per_key == {"S0": 297, "S1": 298, "S2": 299}
    assert ch.stats.conflated > 0
    assert ch.stats.received + ch.stats.conflated == 300


async def test_close_ends_receiver_loops_after_draining() -> None:
    ch: Channel[int] = Channel("c", 10)
    for i in range(3):
        await ch.send(i)
    ch.close()
    assert [x async for x in ch] == [0, 1, 2]
    with pytest.raises(ChannelClosed):
        await ch.send(4)


async def test_close_wakes_waiting_receivers_and_blocked_senders() -> None:
    ch: Channel[int] = Channel("c", 1)
    waiting = asyncio.create_task(ch.recv())
    await asyncio.sleep(0)
    ch.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(waiting, 1)
    ch2: Channel[int] = Channel("c2", 1)
    await ch2.send(1)
    sender = asyncio.create_task(ch2.send(2))
    await asyncio.sleep(0)
    ch2.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(sender, 1)


async def test_cancelled_receiver_passes_wakeup_to_next_receiver() -> None:
    ch: Channel[int] = Channel("c", 4)
    r1 = asyncio.create_task(ch.recv())
    r2 = asyncio.create_task(ch.recv())
    await asyncio.sleep(0)
    ch.try_send(1)
    r1.cancel()
    assert await asyncio.wait_for(r2, 1) == 1


def test_conflate_without_key_raises_value_error() -> None:
    with pytest.raises(ValueError, match="key"):
        Channel("c", 1, OverflowPolicy.CONFLATE)
