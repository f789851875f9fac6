"""Run the daemon's own pipeline over a finite replay to its end (for tests), through the backtest runner.

``daemon.backtest.runner.run_backtest`` is the one "run the pipeline to the end of the
data" there is: the wiring is ``daemon.pipeline.build_pipeline``, the clock the market
clock the daemon uses for replayed data, the feed runs in lockstep, and the store and
paper account are real SQLite files in ``workdir``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from actors.model.records import OrderRecord
from actors.risk.state import RiskSnapshot
from config.loader import LoadedConfig
from daemon.backtest.runner import run_backtest


@dataclasses.dataclass(frozen=True)
class ReplayOutcome:
    """What a finished replay did."""

    risk: RiskSnapshot
    orders: list[OrderRecord]
    submitted: int
    fills: int


async def run_replay_to_end(loaded: LoadedConfig, workdir: Path) -> ReplayOutcome:
    """Run ``loaded``'s pipeline over its data to the end; no strategy may fail."""
    run = await run_backtest(loaded, workdir=workdir)
    assert not run.strategy_errors and run.gave_up is None, (run.strategy_errors, run.gave_up)
    return ReplayOutcome(risk=run.risk, orders=run.orders, submitted=len(run.orders), fills=len(run.fills))
