"""Venue benchmark: ccxt order round trip and ccxt.pro market-data throughput against the simulator.

The simulator runs in its own process (as it would next to the daemon), the unchanged ccxt
client in this one, both on 127.0.0.1:

1. order RTT: ``create_order`` → parsed response, sequentially (resting LIMIT orders far from
   the market, then MARKET orders), p50/p99 in ms;
2. market data: trades per second received through ``watch_trades`` while the simulator prints
   as fast as it can for one symbol.

Run: ``.venv/bin/python bench/venue.py``. The last line of output is one JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ORDERS = 500
MARKET_ORDERS = 200
WARMUP = 50
MD_SECONDS = 5.0
SYM = "BTC/USDT"


@contextlib.asynccontextmanager
async def simulator(*flags: str) -> AsyncIterator[str]:
    """Start ``python -m adapters.binance_sim`` on an ephemeral port; yield its ``host:port``."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.binance_sim",
        "--port",
        "0",
        "--symbols",
        "BTCUSDT",
        "--order-limit-10s",
        "1000000",
        "--weight-limit",
        "100000000",
        *flags,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield line.split()[1].removeprefix("http://")
    finally:
        proc.terminate()
        await proc.wait()


def _client(host_port: str) -> Any:
    import ccxt.pro as ccxtpro

    from adapters.binance_sim import ccxt_config

    ex = ccxtpro.binance(ccxt_config(host_port, "simkey", "simsecret", enable_rate_limit=False))
    ex.timeout_on_exit = 0
    return ex


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def order_round_trips() -> dict[str, float]:
    """Sequential create_order latency (ms)."""
    async with simulator("--market", "synthetic") as host_port:
        ex = _client(host_port)
        try:
            await ex.load_markets()
            limit_rtts: list[float] = []
            for i in range(WARMUP + ORDERS):
                price = 30_000 + (i % 100)  # far below the market: the order rests
                t0 = time.perf_counter()
                order = await ex.create_order(SYM, "limit", "buy", 0.001, price, {"clientOrderId": f"bench-{i}"})
                elapsed = (time.perf_counter() - t0) * 1000
                assert order["status"] == "open"
                if i >= WARMUP:
                    limit_rtts.append(elapsed)
            await ex.cancel_all_orders(SYM)
            market_rtts: list[float] = []
            for i in range(MARKET_ORDERS):
                side = "buy" if i % 2 == 0 else "sell"
                t0 = time.perf_counter()
                order = await ex.create_order(SYM, "market", side, 0.001)
                market_rtts.append((time.perf_counter() - t0) * 1000)
                assert order["status"] == "closed"
        finally:
            await ex.close()
    return {
        "order_rtt_p50_ms": round(statistics.median(limit_rtts), 3),
        "order_rtt_p99_ms": round(_pct(limit_rtts, 0.99), 3),
        "order_rtt_mean_ms": round(statistics.fmean(limit_rtts), 3),
        "market_order_rtt_p50_ms": round(statistics.median(market_rtts), 3),
        "market_order_rtt_p99_ms": round(_pct(market_rtts, 0.99), 3),
    }


async def market_data_rate() -> dict[str, float]:
    """Trades/s that ccxt.pro parses and serves through ``watch_trades``.

    The simulator is asked for ~40k prints/s of one symbol, more than one ccxt client can
    parse, so the figure is the client's capacity. Trade ids are contiguous (no user fills in
    this phase), hence ``last id - first id`` is exactly the number of trade events ccxt
    processed; a caller only gets the newest ``tradesLimit`` (1000) per call, which is
    reported separately. ``md_backlog_trades`` (server's newest id minus the client's at the
    end) shows that the producer was ahead, i.e. the client was the bottleneck.
    """
    flags = ("--market", "synthetic", "--tick-ms", "5", "--trades-per-tick", "200", "--ws-queue-max", "10000000")
    async with simulator(*flags) as host_port:
        ex = _client(host_port)
        try:
            await ex.load_markets()
            first = await asyncio.wait_for(ex.watch_trades(SYM), 10)
            last_id = first_id = int(first[-1]["id"])
            returned = 0
            t0 = time.perf_counter()
            while (elapsed := time.perf_counter() - t0) < MD_SECONDS:
                trades = await asyncio.wait_for(ex.watch_trades(SYM), 10)
                new = [t for t in trades if int(t["id"]) > last_id]
                returned += len(new)
                if new:
                    last_id = int(new[-1]["id"])
            server_last = await ex.public_get_trades({"symbol": "BTCUSDT", "limit": 1})
            backlog = int(server_last[-1]["id"]) - last_id
        finally:
            await ex.close()
    return {
        "md_events_per_s": round((last_id - first_id) / elapsed, 1),
        "md_events_returned_per_s": round(returned / elapsed, 1),
        "md_backlog_trades": backlog,
        "md_seconds": round(elapsed, 2),
    }


async def main() -> None:
    """Run both phases and print the figures, then one JSON line."""
    orders = await order_round_trips()
    print(
        f"order round trip (create_order, resting LIMIT, n={ORDERS}): "
        f"p50 {orders['order_rtt_p50_ms']:.3f} ms, p99 {orders['order_rtt_p99_ms']:.3f} ms, "
        f"mean {orders['order_rtt_mean_ms']:.3f} ms"
    )
    print(
        f"order round trip (create_order, MARKET, n={MARKET_ORDERS}): "
        f"p50 {orders['market_order_rtt_p50_ms']:.3f} ms, p99 {orders['market_order_rtt_p99_ms']:.3f} ms"
    )
    md = await market_data_rate()
    print(
        f"market data via watch_trades: {md['md_events_per_s']:.0f} trade events/s parsed by ccxt.pro "
        f"({md['md_events_returned_per_s']:.0f}/s returned to the caller, tradesLimit=1000) over "
        f"{md['md_seconds']} s; producer ahead by {md['md_backlog_trades']} trades at the end"
    )
    print(json.dumps(orders | md))


if __name__ == "__main__":
    asyncio.run(main())
