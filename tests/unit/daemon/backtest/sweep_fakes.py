"""A fake trial executor for sweep unit tests: scores computed from the params, no backtest."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from daemon.backtest.sweep_exec import Execution
from daemon.backtest.sweep_worker import TrialTask

FAST, SLOW = "strategies.0.params.fast", "strategies.0.params.slow"


def fake_outcome(task: TrialTask) -> dict[str, Any]:
    """EmaCross-like: fast >= slow fails; profit peaks at fast 10, slow 30; drawdown grows with fast."""
    o = task.overrides
    fast, slow = int(o.get(FAST, 10)), int(o.get(SLOW, 20))
    if fast >= slow:
        return {"status": "failed", "error": f"strategy cannot load: fast: must be less than slow ({slow}), got {fast}"}
    profit = 1.0 - abs(fast - 10) * 0.05 - abs(slow - 30) * 0.01
    return {"status": "ok", "metrics": {"total_profit": f"{profit:.6f}", "max_drawdown_pct": float(fast) / 2,
                                        "sharpe": profit * 2, "calmar": profit * 3, "trades": fast}}


class FakeExecutor:
    """Runs ``fake_outcome`` in-process and records every task it was given."""

    def __init__(self, slots: int = 2) -> None:
        self.slots = slots
        self.tasks: list[TrialTask] = []
        self.batches: list[int] = []

    def run(self, tasks: Sequence[TrialTask]) -> list[Execution]:
        self.tasks.extend(tasks)
        self.batches.append(len(tasks))
        return [Execution(fake_outcome(t), 1) for t in tasks]

    def close(self) -> None:
        pass
