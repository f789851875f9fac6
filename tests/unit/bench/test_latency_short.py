"""A short run of the latency bench (bench/latency.py): behaviour only, no timing thresholds.

The paced quotes go through the full pipeline (feed → tick strategy → risk gate → order
manager with its SQLite write-ahead → paper venue); afterwards every signal became an order
(or was skipped while the previous one was on its way), every order was filled, and every
order's tick-to-submit was measured.
"""

from __future__ import annotations

import pytest

from bench.latency import LatencySettings, PacedQuoteSource, run_latency
from bench.pipeline import QuoteWalk

EVENTS = 1_000
EVERY = 10
FLOOR = 40


def test_latency_short_measures_every_order() -> None:
    settings = LatencySettings(rate=5_000.0, seconds=EVENTS / 5_000.0, every=EVERY, floor_samples=FLOOR)
    out = run_latency(settings, runs=1, quiet=True)
    assert out["events"] == EVENTS
    assert out["orders"] > 0
    assert out["orders"] + out["signals_skipped"] == EVENTS // EVERY
    assert out["intents"] == out["orders"] == out["fills"] == out["latency_samples"]
    assert out["denied"] == out["rejected"] == out["restarts"] == 0
    assert 0 < out["tick_to_submit_p50_us"] <= out["tick_to_submit_p99_us"] <= out["tick_to_submit_max_us"]
    # The baseline: the risk decision and the write-ahead alone, one of each per paced order slot.
    assert out["write_ahead_samples"] == FLOOR
    assert 0 < out["write_ahead_p50_us"] <= out["write_ahead_p99_us"]
    assert 0 < out["decision_p50_us"] <= out["decision_p99_us"]
    assert out["decision_and_write_ahead_p50_us"] >= max(out["decision_p50_us"], out["write_ahead_p50_us"])
    ratio = out["tick_to_submit_p99_us"] / out["write_ahead_p99_us"]
    assert out["ratio_p99_vs_write_ahead"] == pytest.approx(ratio, rel=0.02)


def test_latency_without_floor_reports_no_baseline() -> None:
    settings = LatencySettings(rate=5_000.0, seconds=200 / 5_000.0, every=EVERY, floor_samples=0)
    out = run_latency(settings, runs=1, quiet=True)
    assert out["latency_samples"] > 0
    assert not {"write_ahead_p99_us", "decision_p99_us", "ratio_p99_vs_write_ahead"} & set(out)


async def test_paced_source_hands_out_the_walk_stamped_in_order() -> None:
    src = PacedQuoteSource(QuoteWalk(seed=5, interval_ms=1), "X/Y", rate=100_000.0, max_events=300)
    got = [ev async for ev in src.events()]
    assert [(e.ts_ms, e.bid, e.ask, e.bid_size, e.ask_size) for e in got] == list(  # type: ignore[attr-defined]
        QuoteWalk(seed=5, interval_ms=1).rows(300))
    stamps = [e.recv_ns for e in got]
    assert stamps == sorted(stamps) and stamps[0] > 0
    assert src.stats().events == 300 and src.stats().ended
    assert src.start_ts_ms == got[0].ts_ms
