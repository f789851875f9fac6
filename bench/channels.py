"""Kernel cost: a raw asyncio.Queue 4-stage pipeline vs the same pipeline of aaiti actors + channels.

Both run in this process, on the same loop type (uvloop when installed), alternating over
several rounds; figures are medians. Throughput: N messages pushed as fast as the
pipeline takes them. Latency: ~2k messages/s paced by the loop clock, measured from
creation to arrival at the last stage.
Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from actors.kernel.actor import MessageActor
from actors.kernel.channel import Channel
from actors.kernel.supervisor import ChildSpec, Supervisor, SupervisorPolicy

STAGES = 4


class Msg(msgspec.Struct, frozen=True, gc=False):
    seq: int
    t0: int


class Sink:
    """Counts arrivals and records latencies; wakes the driver when the expected count arrives."""

    def __init__(self, expected: int, record: bool) -> None:
        self.expected = expected
        self.count = 0
        self.record = record
        self.latencies: list[int] = []
        self.done = asyncio.Event()

    def take(self, msg: Msg) -> None:
        if self.record:
            self.latencies.append(time.perf_counter_ns() - msg.t0)
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


# -- raw asyncio.Queue pipeline --------------------------------------------------------
async def raw_pipeline(sink: Sink) -> tuple[Callable[[Msg], Awaitable[None]], Callable[[], Awaitable[None]]]:
    queues: list[asyncio.Queue[Msg]] = [asyncio.Queue(maxsize=1024) for _ in range(STAGES)]

    async def stage(inq: asyncio.Queue[Msg], outq: asyncio.Queue[Msg] | None) -> None:
        while True:
            msg = await inq.get()
            if outq is None:
                sink.take(msg)
            else:
                await outq.put(msg)

    tasks = [
        asyncio.create_task(stage(queues[i], queues[i + 1] if i + 1 < STAGES else None)) for i in range(STAGES)
    ]

    async def stop() -> None:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return queues[0].put, stop


# -- aaiti pipeline ------------------------------------------------------------------------
class Forward(MessageActor[Msg]):
    def __init__(self, name: str, inbox: Channel[Msg], out: Channel[Msg] | None, sink: Sink) -> None:
        super().__init__(name, inbox)
        self.out = out
        self.sink = sink

    async def handle(self, msg: Msg) -> None:
        out = self.out
        if out is None:
            self.sink.take(msg)
        elif not out.try_send(msg):
            await out.send(msg)


async def aaiti_pipeline(sink: Sink) -> tuple[Callable[[Msg], Awaitable[None]], Callable[[], Awaitable[None]]]:
    chans: list[Channel[Msg]] = [Channel(f"c{i}", 1024) for i in range(STAGES)]
    specs = [
        ChildSpec(
            f"stage{i}",
            lambda i=i: Forward(f"stage{i}", chans[i], chans[i + 1] if i + 1 < STAGES else None, sink),  # type: ignore[misc]
        )
        for i in range(STAGES)
    ]
    sup = Supervisor("bench", specs, SupervisorPolicy())
    task = asyncio.create_task(sup.main())
    await asyncio.sleep(0)

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    first = chans[0]

    async def send(msg: Msg) -> None:
        if not first.try_send(msg):
            await first.send(msg)

    return send, stop


Builder = Callable[[Sink], Awaitable[tuple[Callable[[Msg], Awaitable[None]], Callable[[], Awaitable[None]]]]]


async def throughput(build: Builder, n: int) -> float:
    sink = Sink(n, record=False)
    send, stop = await build(sink)
    t0 = time.perf_counter()
    for i in range(n):
        await send(Msg(i, 0))
    await sink.done.wait()
    elapsed = time.perf_counter() - t0
    await stop()
    return n / elapsed


async def latency(build: Builder, n: int, rate: float) -> list[int]:
    sink = Sink(n, record=True)
    send, stop = await build(sink)
    loop = asyncio.get_running_loop()
    start = loop.time()
    period = 1.0 / rate
    for i in range(n):
        delay = start + i * period - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(Msg(i, time.perf_counter_ns()))
    await sink.done.wait()
    await stop()
    return sink.latencies


def pct(values: list[int], p: float) -> float:
    data = sorted(values)
    return data[min(len(data) - 1, int(len(data) * p))] / 1000.0


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    raw_tp: list[float] = []
    aaiti_tp: list[float] = []
    raw_p50: list[float] = []
    raw_p99: list[float] = []
    aa_p50: list[float] = []
    aa_p99: list[float] = []
    for _ in range(args.rounds):
        raw_tp.append(await throughput(raw_pipeline, args.messages))
        aaiti_tp.append(await throughput(aaiti_pipeline, args.messages))
        lat = await latency(raw_pipeline, args.latency_messages, args.rate)
        raw_p50.append(pct(lat, 0.50))
        raw_p99.append(pct(lat, 0.99))
        lat = await latency(aaiti_pipeline, args.latency_messages, args.rate)
        aa_p50.append(pct(lat, 0.50))
        aa_p99.append(pct(lat, 0.99))
    med = statistics.median
    out = {
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "stages": STAGES,
        "rounds": args.rounds,
        "raw_msgs_per_s": round(med(raw_tp)),
        "aaiti_msgs_per_s": round(med(aaiti_tp)),
        "throughput_ratio": round(med(aaiti_tp) / med(raw_tp), 3),
        "latency_rate_msgs_per_s": args.rate,
        "raw_p50_us": round(med(raw_p50), 1),
        "raw_p99_us": round(med(raw_p99), 1),
        "aaiti_p50_us": round(med(aa_p50), 1),
        "aaiti_p99_us": round(med(aa_p99), 1),
    }
    out["p99_ratio"] = round(out["aaiti_p99_us"] / out["raw_p99_us"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--latency-messages", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from daemon.runtime import run_loop

    result: dict[str, Any] = {}

    async def run() -> int:
        result.update(await main_async(args))
        return 0

    run_loop(run)
    print(f"loop={result['loop']} stages={STAGES} rounds={args.rounds} (medians)")
    print(f"throughput: raw {result['raw_msgs_per_s']:,} msg/s  aaiti {result['aaiti_msgs_per_s']:,} msg/s  "
          f"ratio {result['throughput_ratio']}")
    print(f"latency @ {args.rate:.0f} msg/s: raw p50 {result['raw_p50_us']} us p99 {result['raw_p99_us']} us | "
          f"aaiti p50 {result['aaiti_p50_us']} us p99 {result['aaiti_p99_us']} us | p99 ratio {result['p99_ratio']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
