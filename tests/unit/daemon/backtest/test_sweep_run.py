"""run_sweep's orchestration on a fake executor: grid, optuna ask/tell, walk-forward, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from daemon.backtest.result import dump_json
from daemon.backtest.sweep import SweepError, SweepSettings, run_sweep
from daemon.backtest.sweep_rank import Objective
from daemon.backtest.sweep_space import parse_param
from daemon.backtest.sweep_windows import parse_walk_forward
from tests.unit.daemon.backtest.sweep_fakes import FAST, SLOW, FakeExecutor

REPO = Path(__file__).resolve().parents[4]
CONFIG = REPO / "aaiti.toml"
DAY0 = 1570838400000  # 2019-10-12
H = 3_600_000


def settings(*params: str, objective: Objective | None = None, **kw: object) -> SweepSettings:
    return SweepSettings(CONFIG, tuple(parse_param(p) for p in params), objective or Objective("profit"),
                         **kw)  # type: ignore[arg-type]


def test_a_grid_runs_every_point_in_one_batch_and_ranks_them() -> None:
    ex = FakeExecutor()
    sweep = run_sweep(settings(f"{FAST}=5:15:5", f"{SLOW}=10,30"), ex)
    assert ex.batches == [6]
    trials = sweep["trials"]
    assert sorted(t["number"] for t in trials) == list(range(6))
    assert [(t["params"][FAST], t["params"][SLOW]) for t in trials[:4]] == [(10, 30), (5, 30), (15, 30), (5, 10)]
    assert [t["status"] for t in trials[4:]] == ["failed", "failed"]
    assert "must be less than slow (10), got 15" in trials[-1]["error"]
    assert sweep["best"]["params"] == {FAST: 10, SLOW: 30} and sweep["best"]["objective"] == 1.0
    # Every task carries the config text and the data file as an absolute path.
    task = ex.tasks[0]
    assert task.config_text == CONFIG.read_text() and task.config_name == "aaiti"
    assert task.overrides["feed.replay.path"] == str(REPO / "data/market/binance_XRP-ETH_trades_2019-10.csv.gz")
    man = sweep["manifest"]
    assert (man["objective"], man["sampler"], man["batch"], man["params"]) == \
        ("profit", "grid", 6, [f"{FAST}=5:15:5", f"{SLOW}=10,30"])
    assert man["data_files"][0]["sha256"]


def test_the_drawdown_bound_ranks_violators_after_every_feasible_trial() -> None:
    sweep = run_sweep(settings(f"{FAST}=4,10,12", f"{SLOW}=30", objective=Objective("profit_dd", 4.5)),
                      FakeExecutor())
    trials = sweep["trials"]
    assert [(t["params"][FAST], t["feasible"]) for t in trials] == [(4, True), (10, False), (12, False)]
    assert trials[1]["objective"] is None and sweep["best"]["params"][FAST] == 4


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_an_optuna_sweep_is_deterministic_given_the_seed_and_asks_in_batches(sampler: str) -> None:
    def once(seed: int) -> str:
        ex = FakeExecutor(slots=3)
        sweep = run_sweep(settings(f"{FAST}=4:16", f"{SLOW}=20:40", sampler=sampler, trials=9, seed=seed), ex)
        assert ex.batches == [3, 3, 3]
        params = [(t["params"][FAST], t["params"][SLOW]) for t in sweep["trials"]]
        assert len(set(params)) == 9  # no parameter set runs twice
        return dump_json(sweep)

    first = once(7)
    assert once(7) == first
    assert once(8) != first


def test_a_small_space_ends_the_search_early_without_repeating_a_point() -> None:
    ex = FakeExecutor(slots=2)
    sweep = run_sweep(settings(f"{FAST}=5,10", f"{SLOW}=30", sampler="random", trials=10, seed=1), ex)
    assert sorted(t["params"][FAST] for t in sweep["trials"]) == [5, 10]


def test_a_grid_cut_short_by_trials_takes_a_seeded_subset() -> None:
    ex = FakeExecutor()
    sweep = run_sweep(settings(f"{FAST}=5:15:5", f"{SLOW}=20,30", trials=3, seed=2), ex)
    assert len(sweep["trials"]) == 3 and len({str(t["params"]) for t in sweep["trials"]}) == 3


def test_walk_forward_optimises_each_train_window_and_tests_the_best_on_the_next() -> None:
    ex = FakeExecutor()
    sweep = run_sweep(settings(f"{FAST}=5,10", f"{SLOW}=30", start_ms=DAY0, end_ms=DAY0 + 9 * H,
                               walk_forward=parse_walk_forward("4h:2h")), ex)
    wf = sweep["walk_forward"]
    assert [(f["train"], f["test"]) for f in wf["folds"]] == [
        ([DAY0, DAY0 + 4 * H], [DAY0 + 4 * H, DAY0 + 6 * H]),
        ([DAY0 + 2 * H, DAY0 + 6 * H], [DAY0 + 6 * H, DAY0 + 8 * H]),
    ]
    windows = [(t.start_ms, t.end_ms) for t in ex.tasks]
    assert windows == [(DAY0, DAY0 + 4 * H)] * 2 + [(DAY0 + 2 * H, DAY0 + 6 * H)] * 2 + [
        (DAY0 + 4 * H, DAY0 + 6 * H), (DAY0 + 6 * H, DAY0 + 8 * H)]
    assert ex.batches == [2, 2, 2]  # the out-of-sample runs of every fold go out together
    for fold in wf["folds"]:
        assert fold["best"]["params"] == {FAST: 10, SLOW: 30}
        assert fold["test_result"]["status"] == "ok" and fold["test_result"]["params"] == {FAST: 10, SLOW: 30}
    agg = wf["aggregate"]
    assert (agg["folds"], agg["folds_tested"], agg["folds_profitable"], agg["trades"]) == (2, 2, 2, 20)
    assert agg["total_profit"] == "2.000000" and math.isclose(agg["mean_objective"], 1.0)
    assert sweep["trials"] == [] and sweep["best"]["source"].startswith("fold 1")


def test_walk_forward_without_a_window_uses_the_data_span() -> None:
    ex = FakeExecutor()
    sweep = run_sweep(settings(f"{FAST}=10", f"{SLOW}=30", walk_forward=parse_walk_forward("2")), ex)
    wf = sweep["walk_forward"]
    assert len(wf["folds"]) == 2
    assert 1570752000000 <= wf["from_ms"] < wf["to_ms"] <= 1570752000000 + 3 * 86_400_000  # 2019-10-11..13


def test_bad_keys_windows_and_combinations_are_refused_before_any_trial() -> None:
    ex = FakeExecutor()
    with pytest.raises(SweepError, match=r"feed\.bogus"):
        run_sweep(settings("feed.bogus=1,2"), ex)
    with pytest.raises(SweepError, match="no market data in the window"):
        run_sweep(settings(f"{FAST}=5", start_ms=DAY0 + 365 * 86_400_000), ex)
    with pytest.raises(SweepError, match="no grid"):
        run_sweep(settings(f"{FAST}=5:9"), ex)
    with pytest.raises(SweepError, match="does not fit"):
        run_sweep(settings(f"{FAST}=5", start_ms=DAY0, end_ms=DAY0 + H, walk_forward=parse_walk_forward("1d:1d")), ex)
    assert ex.tasks == []
