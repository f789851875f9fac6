"""Sweep objectives, trial statuses and the ranking."""

from __future__ import annotations

import math
from typing import Any

import pytest

from daemon.backtest.sweep_rank import Objective, Trial, objective_value, rank, trial_from_outcome


def metrics(profit: str = "0.5", dd: float = 3.0, sharpe: float = 1.5, calmar: float = 2.5) -> dict[str, Any]:
    return {"total_profit": profit, "max_drawdown_pct": dd, "sharpe": sharpe, "calmar": calmar, "trades": 4}


def test_each_objective_reads_its_figure() -> None:
    m = metrics()
    assert objective_value(Objective("sharpe"), m) == 1.5
    assert objective_value(Objective("calmar"), m) == 2.5
    assert objective_value(Objective("profit"), m) == 0.5


def test_profit_dd_is_the_profit_within_the_bound_else_minus_infinity() -> None:
    bound = Objective("profit_dd", 3.0)
    assert objective_value(bound, metrics(dd=3.0)) == 0.5
    assert objective_value(bound, metrics(dd=3.01)) == -math.inf
    # The bound applies to the other objectives too when given.
    assert objective_value(Objective("sharpe", 2.0), metrics(dd=3.0)) == -math.inf


def test_objective_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="needs --max-drawdown-pct"):
        Objective("profit_dd")
    with pytest.raises(ValueError, match="expected one of"):
        Objective("sortino")
    with pytest.raises(ValueError, match=">= 0"):
        Objective("profit", -1.0)


def test_outcomes_become_ok_retried_or_failed_trials() -> None:
    obj = Objective("sharpe")
    ok = trial_from_outcome(0, {"f": 5}, {"status": "ok", "metrics": metrics()}, 1, obj)
    retried = trial_from_outcome(1, {"f": 6}, {"status": "ok", "metrics": metrics()}, 2, obj)
    failed = trial_from_outcome(2, {"f": 7}, {"status": "failed", "error": "fast: must be less than slow"}, 1, obj)
    assert (ok.status, ok.objective, ok.feasible) == ("ok", 1.5, True)
    assert (retried.status, retried.attempts) == ("retried", 2)
    assert (failed.status, failed.objective, failed.error, failed.feasible) == \
        ("failed", None, "fast: must be less than slow", False)
    assert failed.to_json()["metrics"] == {}


def test_ranking_is_best_first_then_minus_infinity_then_failed_ties_by_number() -> None:
    def t(n: int, score: float | None) -> Trial:
        return Trial(n, {"n": n}, "ok" if score is not None else "failed", score, {}, None, 1)

    trials = [t(0, None), t(1, 1.0), t(2, -math.inf), t(3, 2.0), t(4, 1.0), t(5, -0.5)]
    assert [x.number for x in rank(trials)] == [3, 1, 4, 5, 2, 0]
    infeasible = t(2, -math.inf).to_json()
    assert (infeasible["objective"], infeasible["feasible"]) == (None, False)
