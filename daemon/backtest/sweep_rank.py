"""Trials of a sweep: the objective, the status, the ranking.

Objectives (all maximised), from a trial's backtest summary:

- ``sharpe``: ``summary.sharpe``; ``calmar``: ``summary.calmar``;
- ``profit``: ``summary.total_profit`` (quote asset);
- ``profit_dd``: the profit if ``max_drawdown_pct`` <= the bound, else -inf.

``--max-drawdown-pct`` is the bound of ``profit_dd`` (required there); given with another
objective, a trial over the bound scores -inf as well. A trial is ``ok``, ``retried``
(ok, but a worker died running it first) or ``failed`` (its error says why); failed
trials have no objective and rank last, -inf ranks after every finite score, ties keep
the trial order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from daemon.backtest.sweep_space import Params

__all__ = ["OBJECTIVES", "Objective", "Trial", "objective_value", "rank", "trial_from_outcome"]

OBJECTIVES = ("sharpe", "calmar", "profit", "profit_dd")
Status = Literal["ok", "retried", "failed"]


@dataclasses.dataclass(frozen=True)
class Objective:
    """What a sweep maximises: one of ``OBJECTIVES`` and the optional drawdown bound (percent)."""

    name: str
    max_drawdown_pct: float | None = None

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ValueError(f"objective {self.name!r}: expected one of {', '.join(OBJECTIVES)}")
        if self.name == "profit_dd" and self.max_drawdown_pct is None:
            raise ValueError("objective profit_dd needs --max-drawdown-pct")
        if self.max_drawdown_pct is not None and not self.max_drawdown_pct >= 0:
            raise ValueError("--max-drawdown-pct must be >= 0")


def objective_value(objective: Objective, metrics: Mapping[str, Any]) -> float:
    """The score of a successful trial's metrics (-inf when over the drawdown bound)."""
    bound = objective.max_drawdown_pct
    if bound is not None and float(metrics["max_drawdown_pct"]) > bound:
        return -math.inf
    if objective.name == "sharpe":
        return float(metrics["sharpe"])
    if objective.name == "calmar":
        return float(metrics["calmar"])
    return float(metrics["total_profit"])


@dataclasses.dataclass(frozen=True)
class Trial:
    """One parameter set and what its backtest gave.

    ``objective`` is None for a failed trial; ``metrics`` the summary figures the worker
    sent back (empty when failed); ``attempts`` how many times it was run.
    """

    number: int
    params: Params
    status: Status
    objective: float | None
    metrics: Mapping[str, Any]
    error: str | None
    attempts: int

    @property
    def feasible(self) -> bool:
        """A finite score (ok and within the drawdown bound)."""
        return self.objective is not None and math.isfinite(self.objective)

    def to_json(self) -> dict[str, Any]:
        """The trial as sweep.json holds it (-inf written as null with ``feasible: false``)."""
        return {
            "number": self.number,
            "params": dict(self.params),
            "status": self.status,
            "objective": self.objective if self.feasible else None,
            "feasible": self.feasible,
            "metrics": dict(self.metrics),
            "error": self.error,
            "attempts": self.attempts,
        }


def trial_from_outcome(number: int, params: Params, outcome: Mapping[str, Any], attempts: int,
                       objective: Objective) -> Trial:
    """A Trial from a worker's outcome (``sweep_worker.run_trial``) and the attempts it took."""
    if outcome["status"] != "ok":
        return Trial(number, params, "failed", None, {}, str(outcome["error"]), attempts)
    metrics = outcome["metrics"]
    status: Status = "retried" if attempts > 1 else "ok"
    return Trial(number, params, status, objective_value(objective, metrics), metrics, None, attempts)


def _rank_key(trial: Trial) -> tuple[int, float, int]:
    if trial.objective is None:
        return (2, 0.0, trial.number)
    if not trial.feasible:
        return (1, 0.0, trial.number)
    return (0, -trial.objective, trial.number)


def rank(trials: Sequence[Trial]) -> list[Trial]:
    """Best first: finite scores descending, then -inf, then failed; ties by trial number."""
    return sorted(trials, key=_rank_key)
