"""Admin load: /metrics scrape latency and event-loop lag while the loop carries >= 10k events/s.

In one process, on uvloop: a producer pushes market ``Trade`` events through a real
``Channel`` at ``--rate`` events/s into a consumer actor (supervised) that updates the
counters the metrics snapshot reads (and one tick-to-submit observation per 100 events);
the real ``AdminServer`` serves a realistic backend whose ``/metrics`` has ~1.3k series;
a sampler measures event-loop lag every 5 ms. A separate process (like Prometheus)
scrapes ``/metrics`` every ``--interval`` s with a keep-alive connection.

Two phases: "sliced" is the shipped configuration (rendering cached for
admin.metrics_cache_s = 1 s, produced in slices with yields to the loop); "naive" renders
with one ``generate_latest`` call per scrape on the loop (no cache, no slices), for
comparison. Last line: one JSON object with the figures of the shipped configuration
(``events_per_s``, ``scrape_p50_ms``, ``scrape_p99_ms``, ``loop_lag_p99_ms``, …) and the
naive ones with a ``naive_`` prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.kernel.actor import MessageActor
from actors.kernel.channel import Channel, OverflowPolicy
from actors.kernel.supervisor import ChildSpec, Supervisor, SupervisorPolicy
from actors.model.market import Trade
from bench.memory_backend import MemoryBackend
from config.schema.ops import AdminSection
from daemon.admin.server import AdminServer
from daemon.logging_setup import LoggingSetup
from daemon.runtime import run_loop

TOKEN = "bench-token-0123456789abcdef"

SCRAPER = r"""
import http.client, json, sys, time
host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
interval, seconds = float(sys.argv[4]), float(sys.argv[5])
conn = http.client.HTTPConnection(host, port, timeout=10)
conn.connect()
headers = {"Authorization": "Bearer " + token}
print("ready", flush=True)
lat, sizes, errors = [], [], 0
start = time.perf_counter()
next_at = start
while time.perf_counter() - start < seconds:
    t0 = time.perf_counter()
    try:
        conn.request("GET", "/metrics", headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            errors += 1
        sizes.append(len(body))
    except OSError:
        errors += 1
        conn.close()
        conn = http.client.HTTPConnection(host, port, timeout=10)
    lat.append((time.perf_counter() - t0) * 1000)
    next_at += interval
    time.sleep(max(0.0, next_at - time.perf_counter()))
print(json.dumps({"latencies_ms": lat, "bytes": sizes[-1] if sizes else 0, "errors": errors}))
"""


class Consumer(MessageActor[Trade]):
    """Counts market events per (symbol, type) for the snapshot collector; observes tick-to-submit."""

    kind = "strategy"

    def __init__(self, inbox: Channel[Trade], backend: MemoryBackend) -> None:
        super().__init__("consumer", inbox)
        self.backend = backend
        self.received = 0

    async def handle(self, msg: Trade) -> None:
        counts = self.backend.market_events
        key = (msg.symbol, "trade")
        counts[key] = counts.get(key, 0) + 1
        self.received += 1
        if self.received % 100 == 0:  # ~1 order per 100 ticks: one histogram observation
            self.backend.metrics.observe_tick_to_submit((time.perf_counter_ns() - msg.recv_ns) / 1e9)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    data = sorted(values)
    return data[min(len(data) - 1, max(0, round(q / 100 * len(data)) - 1))]


async def phase(name: str, args: argparse.Namespace, *, naive: bool) -> dict[str, Any]:
    """One measured run; returns its figures. ``naive``: no cache, one generate_latest per scrape."""
    cache_s = 0.0 if naive else AdminSection().metrics_cache_s
    setup = LoggingSetup("warning", 1000, stream=io.StringIO())
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "aaiti.toml"
        cfg.write_text("[daemon]\nname = 'bench'\n")
        backend = MemoryBackend(setup.ring, cfg, symbols=args.symbols, orders=args.symbols * 3, metrics_cache_s=cache_s)
    if naive:
        backend.metrics.chunk_samples = 10**9
        backend.metrics.slice_s = 1e9
    for s in backend.symbols:  # the producer only sends trades; bars exist too
        backend.market_events[(s, "bar")] = 1
    backend.not_ready.clear()
    inbox: Channel[Trade] = Channel("market", 4096, OverflowPolicy.DROP_OLDEST)
    backend.channels[0] = inbox
    consumer_holder: list[Consumer] = []

    def make_consumer() -> Consumer:
        consumer_holder.append(Consumer(inbox, backend))
        return consumer_holder[-1]

    root = Supervisor("root", [ChildSpec("consumer", make_consumer)], SupervisorPolicy(max_restarts=0))
    root_task = asyncio.create_task(root.main())
    server = AdminServer(backend, AdminSection(port=0, metrics_cache_s=cache_s), TOKEN)
    host, port = await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    sent = 0
    lags: list[float] = []
    measuring = False

    async def producer() -> None:
        nonlocal sent
        syms = backend.symbols
        start = loop.time()
        i = 0
        while not stop.is_set():
            due = int((loop.time() - start) * args.rate)
            now_ns = time.perf_counter_ns()
            ts = int(time.time() * 1000)
            while sent < due:
                inbox.try_send(Trade(symbol=syms[i % len(syms)], ts_ms=ts, recv_ns=now_ns, price=1.0 + (i % 7) / 100,
                                     size=1.0, side="buy" if i & 1 else "sell", trade_id=i))
                i += 1
                sent += 1
            await asyncio.sleep(0.001)

    async def sampler() -> None:
        period = 0.005
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(period)
            lag = max(0.0, time.perf_counter() - t0 - period)
            backend.metrics.observe_loop_lag(lag)
            if measuring:
                lags.append(lag * 1000)

    tasks = [asyncio.create_task(producer()), asyncio.create_task(sampler())]
    await asyncio.sleep(0.5)  # warm up: first render, steady producer
    await backend.metrics.render()
    series = backend.metrics.last_samples
    if args.gc_freeze:
        gc.collect()
        gc.freeze()  # what a daemon can do once started: old objects leave the GC's scans
    gc_start = {g: s["collections"] for g, s in enumerate(gc.get_stats())}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SCRAPER, host, str(port), TOKEN, str(args.interval), str(args.seconds),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"  # measure once the scraper runs
    sent_before, recv_before = sent, consumer_holder[-1].received
    measuring = True
    t0 = time.perf_counter()
    out = await proc.stdout.read()
    await proc.wait()
    elapsed = time.perf_counter() - t0
    measuring = False
    gc_runs = {g: s["collections"] - gc_start[g] for g, s in enumerate(gc.get_stats())}
    stop.set()
    await asyncio.gather(*tasks)
    received = consumer_holder[-1].received - recv_before
    scrape = json.loads(out)
    await server.stop()
    root_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await root_task
    lat = scrape["latencies_ms"]
    return {
        "phase": name,
        "events_per_s": round(received / elapsed),
        "events_sent_per_s": round((sent - sent_before) / elapsed),
        "events_dropped": inbox.dropped,
        "series": series,
        "exposition_bytes": scrape["bytes"],
        "renders": backend.metrics.renders,
        "render_ms": round(backend.metrics.last_render_s * 1000, 2),
        "scrapes": len(lat),
        "scrape_errors": scrape["errors"],
        "scrape_p50_ms": round(pct(lat, 50), 2),
        "scrape_p99_ms": round(pct(lat, 99), 2),
        "scrape_max_ms": round(max(lat), 2) if lat else None,
        "loop_lag_samples": len(lags),
        "loop_lag_p50_ms": round(pct(lags, 50), 3),
        "loop_lag_p99_ms": round(pct(lags, 99), 3),
        "loop_lag_max_ms": round(max(lags), 3) if lags else None,
        "loop_lag_mean_ms": round(statistics.fmean(lags), 3) if lags else None,
        "gc_gen2_runs": gc_runs[2],
    }


def report(fig: dict[str, Any]) -> None:
    """Human-readable figures of one phase."""
    print(f"[{fig['phase']}]")
    print(f"  events      {fig['events_per_s']:>8}/s handled ({fig['events_sent_per_s']}/s sent, "
          f"{fig['events_dropped']} dropped)")
    print(f"  /metrics    {fig['series']} samples, {fig['exposition_bytes']} bytes; {fig['renders']} renderings, "
          f"last {fig['render_ms']} ms wall")
    print(f"  scrapes     n={fig['scrapes']} errors={fig['scrape_errors']}  p50 {fig['scrape_p50_ms']} ms  "
          f"p99 {fig['scrape_p99_ms']} ms  max {fig['scrape_max_ms']} ms")
    print(f"  loop lag    n={fig['loop_lag_samples']}  p50 {fig['loop_lag_p50_ms']} ms  "
          f"p99 {fig['loop_lag_p99_ms']} ms  max {fig['loop_lag_max_ms']} ms  "
          f"(full GC runs: {fig['gc_gen2_runs']})")


def main() -> int:
    """Run both phases and print the figures; the last line is JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per phase")
    parser.add_argument("--rate", type=int, default=12_000, help="market events per second")
    parser.add_argument("--symbols", type=int, default=200, help="symbols (series scale with it)")
    parser.add_argument("--interval", type=float, default=0.1, help="scrape interval in seconds")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive comparison phase")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() after warm-up (a full collection otherwise pauses the loop ~25 ms)")
    args = parser.parse_args()

    async def run() -> int:
        shipped = await phase("shipped: sliced, cached for admin.metrics_cache_s", args, naive=False)
        report(shipped)
        result = {k: v for k, v in shipped.items() if k != "phase"}
        if not args.no_naive:
            naive = await phase("naive: one generate_latest per scrape, no cache", args, naive=True)
            report(naive)
            result.update({f"naive_{k}": v for k, v in naive.items() if k in (
                "render_ms", "scrape_p50_ms", "scrape_p99_ms", "loop_lag_p99_ms", "loop_lag_max_ms", "events_per_s")})
        result["gc_freeze"] = args.gc_freeze
        result["target_loop_lag_p99_ms"] = 5.0
        result["meets_target"] = bool(shipped["loop_lag_p99_ms"] <= 5.0 and shipped["events_per_s"] >= 10_000)
        print(json.dumps(result))
        return 0

    return run_loop(run, use_uvloop=True)


if __name__ == "__main__":
    sys.exit(main())
