"""Pieces of the bench pipeline: the seeded quote walk and the bounded latency histogram."""

from __future__ import annotations

import random

from bench.pipeline import LatencyHistogram, QuoteWalk, QuoteWalkSource


async def test_walk_source_replays_exactly_the_rows_written_for_other_engines() -> None:
    walk = QuoteWalk(seed=3, interval_ms=250)
    rows = list(walk.rows(1000))
    src = QuoteWalkSource(QuoteWalk(seed=3, interval_ms=250), "X/Y", max_events=1000)
    got = []
    async for ev in src.events():
        got.append(ev)
        if len(got) == 300:
            break
    async for ev in src.events():  # resumes after the last event handed out
        got.append(ev)
    assert [(e.ts_ms, e.bid, e.ask, e.bid_size, e.ask_size) for e in got] == rows  # type: ignore[attr-defined]
    assert src.stats().events == 1000 and src.stats().ended
    assert all(0 < r[1] < r[2] for r in rows)
    assert rows == list(QuoteWalk(seed=3, interval_ms=250).rows(1000))  # seeded: same rows every time
    assert rows != list(QuoteWalk(seed=4, interval_ms=250).rows(1000))


def test_latency_histogram_percentiles_within_resolution() -> None:
    rng = random.Random(1)
    values = [int(rng.lognormvariate(13, 1)) for _ in range(20_000)]
    h = LatencyHistogram()
    for v in values:
        h.record(v)
    values.sort()
    for p in (50, 99, 99.9):
        exact = values[max(0, int(-(-len(values) * p // 100)) - 1)]
        assert abs(h.percentile(p) - exact) <= exact * 0.02, (p, h.percentile(p), exact)
    assert h.count == len(values) and h.max_ns == values[-1] and h.min_ns == values[0]
    assert LatencyHistogram().percentile(50) == 0.0
    small = LatencyHistogram()
    small.record(5)
    small.record(-1)
    assert small.percentile(100) == 5.0 and small.min_ns == 0
