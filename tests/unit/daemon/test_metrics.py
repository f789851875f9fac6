"""Metrics: the exposition parses, has every aaiti_ family, renders in slices, caches, stays private."""

from __future__ import annotations

import asyncio
import os
from decimal import Decimal
from pathlib import Path

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from actors.kernel.channel import Channel, OverflowPolicy
from actors.kernel.supervisor import ChildStatus
from daemon.metrics import BreakerMetrics, Metrics, MetricsSnapshot, PositionMetrics

EXPECTED_FAMILIES = {
    # name as the parser reports it (counters without _total) -> type
    "aaiti_build_info": "gauge",
    "aaiti_market_events": "counter",
    "aaiti_channel_depth": "gauge",
    "aaiti_channel_capacity": "gauge",
    "aaiti_channel_high_water": "gauge",
    "aaiti_channel_sent": "counter",
    "aaiti_channel_dropped": "counter",
    "aaiti_channel_conflated": "counter",
    "aaiti_actor_restarts": "counter",
    "aaiti_actor_heartbeat_age_seconds": "gauge",
    "aaiti_actor_up": "gauge",
    "aaiti_event_loop_lag_seconds": "histogram",
    "aaiti_tick_to_submit_seconds": "histogram",
    "aaiti_orders": "counter",
    "aaiti_open_orders": "gauge",
    "aaiti_fills": "counter",
    "aaiti_risk_denials": "counter",
    "aaiti_position_size": "gauge",
    "aaiti_position_realized_pnl": "gauge",
    "aaiti_position_unrealized_pnl": "gauge",
    "aaiti_equity": "gauge",
    "aaiti_trading_state": "gauge",
    "aaiti_kill_switch": "gauge",
    "aaiti_health_status": "gauge",
    "aaiti_circuit_breaker_state": "gauge",
    "aaiti_circuit_breaker_trips": "counter",
    "aaiti_reconnects": "counter",
    "aaiti_reconcile_discrepancies": "counter",
    "aaiti_config_reloads": "counter",
    "aaiti_config_version": "gauge",
    "aaiti_config_load_timestamp_seconds": "gauge",
    "aaiti_sd_notify_errors": "counter",
}


def full_snapshot(symbols: int = 2) -> MetricsSnapshot:
    """A snapshot with every field set, as the composition root would build it."""
    ch: Channel[int] = Channel("market", 4, OverflowPolicy.DROP_OLDEST)
    for i in range(6):
        ch.try_send(i)
    syms = [f"S{i}/USDT" for i in range(symbols)]
    return MetricsSnapshot(
        market_events={(s, kind): 10 for s in syms for kind in ("trade", "bar")},
        channels=[ch.stats, Channel("orders", 8).stats],
        actors=[
            ChildStatus("feed", "root/feed", "feed", "running", 2, 0.25, 0, None),
            ChildStatus("watchdog", "root/watchdog", "watchdog", "running", 0, 0.01, 0, None),
            ChildStatus("strategies", "root/strategies", "supervisor", "running", 0, None, 0, None),
        ],
        orders_by_status={"SUBMITTED": 5, "FILLED": 4, "CANCELED": 1},
        open_orders={"ACCEPTED": 1},
        fills={s: 3 for s in syms},
        risk_denials={"max_position": 2, "stale_data": 1},
        positions=[PositionMetrics(s, Decimal("1.5"), Decimal("-0.01"), 0.02) for s in syms],
        equity=Decimal("10.5"),
        equity_asset="USDT",
        trading_state="REDUCING",
        kill_switch=False,
        health="degraded",
        circuit_breakers=[BreakerMetrics("venue.rest", "half_open", 3)],
        reconnects={"feed": 2},
        reconcile_discrepancies={"missing_fill": 1},
        config_reloads={"applied": 2, "invalid": 1},
        config_version=3,
        config_loaded_at=1_700_000_000.0,
        sd_notify_errors=0,
    )


def parse(text: bytes) -> dict[str, prometheus_client.Metric]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


async def test_render_parses_with_every_family() -> None:
    m = Metrics(full_snapshot, build_info={"mode": "paper"})
    m.observe_loop_lag(0.002)
    m.observe_tick_to_submit(0.0004)
    fams = parse(await m.render())
    for name, kind in EXPECTED_FAMILIES.items():
        assert name in fams, name
        assert fams[name].type == kind, name
    assert "process_resident_memory_bytes" in fams and "python_info" in fams
    info = fams["aaiti_build_info"].samples[0]
    assert info.labels["mode"] == "paper" and info.labels["version"]
    state = {s.labels["state"]: s.value for s in fams["aaiti_trading_state"].samples}
    assert state == {"ACTIVE": 0, "REDUCING": 1, "HALTED": 0}
    dropped = {s.labels["channel"]: s.value for s in fams["aaiti_channel_dropped"].samples}
    assert dropped == {"market": 2, "orders": 0}
    lag_samples = fams["aaiti_event_loop_lag_seconds"].samples
    lag = {s.labels.get("le"): s.value for s in lag_samples if s.name.endswith("_bucket")}
    assert lag["0.001"] == 0 and lag["0.0025"] == 1
    assert {s.labels["actor"] for s in fams["aaiti_actor_heartbeat_age_seconds"].samples} == {"feed", "watchdog"}


async def test_names_follow_prometheus_conventions() -> None:
    m = Metrics(full_snapshot)
    for fam in text_string_to_metric_families((await m.render()).decode()):
        if not fam.name.startswith("aaiti_"):
            continue
        for s in fam.samples:
            if fam.type == "counter":
                assert s.name.endswith(("_total", "_created")), s.name
            assert not any(k in ("client_order_id", "order_id", "price") for k in s.labels), s


async def test_empty_snapshot_renders_fixed_families() -> None:
    fams = parse(await Metrics().render())
    assert {"aaiti_build_info", "aaiti_orders", "aaiti_event_loop_lag_seconds"} <= set(fams)
    assert "aaiti_trading_state" not in fams  # unknown until the source says


async def test_sliced_render_large_family_equals_one_shot() -> None:
    m = Metrics(lambda: full_snapshot(symbols=600), process_metrics=False, chunk_samples=50, slice_s=0)
    sliced = await m.render()
    assert sliced.count(b"# TYPE aaiti_market_events_total counter") == 1
    assert parse(sliced) == parse(m.render_now())
    assert len(parse(sliced)["aaiti_market_events"].samples) == 1200
    assert m.last_samples > 1200


async def test_sliced_render_yields_to_loop() -> None:
    m = Metrics(lambda: full_snapshot(symbols=300), process_metrics=False, chunk_samples=100, slice_s=0)
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await m.render()
    done = True
    await t
    assert ticks - before >= 5  # other tasks ran while the ~1.5k samples were rendered


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> MetricsSnapshot:
        self.calls += 1
        return full_snapshot()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_render_cached_for_cache_s() -> None:
    src, clock = Counting(), Clock()
    m = Metrics(src, cache_s=1.0, clock=clock)
    first = await m.render()
    clock.now += 0.5
    assert await m.render() is first
    assert src.calls == 1
    clock.now += 0.6
    await m.render()
    assert src.calls == 2
    m.cache_s = 0
    await m.render()
    assert src.calls == 3


async def test_concurrent_scrapes_share_one_rendering() -> None:
    src = Counting()
    m = Metrics(src, cache_s=0, chunk_samples=10, slice_s=0)
    results = await asyncio.gather(*(m.render() for _ in range(20)))
    assert src.calls == 1
    assert all(r is results[0] for r in results)


async def test_cancelled_scrape_does_not_cancel_rendering() -> None:
    src = Counting()
    m = Metrics(src, cache_s=10, chunk_samples=10, slice_s=0)
    first = asyncio.ensure_future(m.render())
    second = asyncio.ensure_future(m.render())
    await asyncio.sleep(0)
    first.cancel()
    text = await second
    assert b"aaiti_orders_total" in text and src.calls == 1


async def test_duplicate_actor_names_get_unique_labels() -> None:
    snap = MetricsSnapshot(
        actors=[
            ChildStatus("worker", "root/a/worker", "actor", "running", 0, 0.1, 0, None),
            ChildStatus("worker", "root/b/worker", "actor", "failed", 1, 0.1, 0, "boom"),
        ]
    )
    fams = parse(await Metrics(lambda: snap).render())
    up = {s.labels["actor"]: s.value for s in fams["aaiti_actor_up"].samples}
    assert up == {"root/a/worker": 1, "root/b/worker": 0}


async def test_process_metrics_without_proc_stat(tmp_path: Path) -> None:
    # systemd ProcSubset=pid hides /proc/stat; the stock collector then exports nothing.
    os.symlink(f"/proc/{os.getpid()}", tmp_path / "self")
    fams = parse(await Metrics(proc_path=str(tmp_path)).render())
    start = fams["process_start_time_seconds"].samples[0].value
    assert abs(start - parse(await Metrics().render())["process_start_time_seconds"].samples[0].value) < 2


async def test_default_registry_untouched() -> None:
    Metrics(full_snapshot).observe_loop_lag(0.1)
    names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert not any(n.startswith("aaiti_") for n in names)
