"""Standalone simulator: ``python -m adapters.binance_sim [--port N] [--market synthetic|replay|static]``.

Prints ``LISTENING <base_url>`` on stdout once bound (handy for scripts that start it as a
subprocess) and runs until interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys

from adapters.binance_sim.config import FaultConfig, HistoryFile, MarketSourceConfig, SimulatorConfig, default_symbols
from adapters.binance_sim.server import BinanceSimulator, run_simulator


def parse_args(argv: list[str] | None = None) -> SimulatorConfig:
    """Build a :class:`SimulatorConfig` from command-line flags."""
    p = argparse.ArgumentParser(prog="python -m adapters.binance_sim", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="0 = ephemeral")
    p.add_argument("--seed", type=int, default=7, help="market RNG seed")
    p.add_argument("--market", choices=("synthetic", "replay", "static"), default="synthetic")
    p.add_argument("--tick-ms", type=float, default=200.0, help="driver tick interval")
    p.add_argument("--trades-per-tick", type=int, default=1)
    p.add_argument("--replay-path", default=None)
    p.add_argument("--replay-symbol", default="XRPETH")
    p.add_argument("--replay-speed", type=float, default=1.0, help="<= 0: as fast as possible")
    p.add_argument("--order-limit-10s", type=int, default=100)
    p.add_argument("--weight-limit", type=int, default=6000)
    p.add_argument("--ticker-ms", type=float, default=1000.0)
    p.add_argument("--ws-queue-max", type=int, default=50_000, help="frames queued per socket before a drop")
    p.add_argument("--symbols", default=None, help="comma-separated subset of BTCUSDT,ETHUSDT,XRPETH")
    p.add_argument("--ws-drop-interval-s", type=float, default=0.0, help="chaos: drop sockets periodically")
    p.add_argument("--history", action="append", default=[], metavar="SYMBOL:KIND:PATH",
                   help="serve a recorded file as SYMBOL's history (KIND: trades or a kline interval such as 1m); "
                        "repeatable")
    args = p.parse_args(argv)
    history: list[HistoryFile] = []
    for spec in args.history:
        symbol, kind, path = [*spec.split(":", 2), "", ""][:3]
        if not (symbol and kind and path):
            p.error(f"--history {spec!r}: expected SYMBOL:KIND:PATH, e.g. XRPETH:1m:data/market/x.csv.gz")
        history.append(HistoryFile(symbol=symbol.upper(), kind=kind, path=path))
    market = MarketSourceConfig(
        kind=args.market,
        seed=args.seed,
        tick_interval_ms=args.tick_ms,
        trades_per_tick=args.trades_per_tick,
        replay_path=args.replay_path,
        replay_symbol=args.replay_symbol,
        replay_speed=args.replay_speed,
    )
    symbols = default_symbols()
    if args.symbols:
        wanted = {s.strip().upper() for s in args.symbols.split(",")}
        symbols = tuple(s for s in symbols if s.symbol in wanted)
    return dataclasses.replace(
        SimulatorConfig(),
        symbols=symbols,
        host=args.host,
        port=args.port,
        market=market,
        order_limit_per_10s=args.order_limit_10s,
        weight_limit_per_minute=args.weight_limit,
        ticker_interval_ms=args.ticker_ms,
        ws_queue_max=args.ws_queue_max,
        faults=FaultConfig(ws_drop_interval_s=args.ws_drop_interval_s),
        history=tuple(history),
    )


def _announce(sim: BinanceSimulator) -> None:
    print(f"LISTENING {sim.base_url}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run until Ctrl-C / SIGTERM-induced cancellation."""
    config = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_simulator(config, on_ready=_announce))
    return 0


if __name__ == "__main__":
    sys.exit(main())
