"""The sweep's table, best-params TOML and landscape page."""

from __future__ import annotations

import tomllib
from pathlib import Path

from daemon.backtest.sweep import SweepSettings, run_sweep
from daemon.backtest.sweep_command import write_sweep
from daemon.backtest.sweep_html import render_landscape
from daemon.backtest.sweep_rank import Objective
from daemon.backtest.sweep_report import param_labels, render_best_toml, render_table, toml_value
from daemon.backtest.sweep_space import parse_param
from tests.unit.daemon.backtest.sweep_fakes import FAST, SLOW, FakeExecutor

REPO = Path(__file__).resolve().parents[4]
CONFIG = REPO / "aaiti.toml"


def sweep_of(*params: str, sampler: str = "grid", trials: int | None = None) -> dict[str, object]:
    specs = tuple(parse_param(p) for p in params)
    return run_sweep(SweepSettings(CONFIG, specs, Objective("profit"), sampler=sampler, trials=trials),
                     FakeExecutor())


def test_param_labels_are_the_shortest_unique_suffixes() -> None:
    keys = ["strategies.0.params.fast", "strategies.1.params.fast", "strategies.0.params.slow", "risk.max_position"]
    assert param_labels(keys) == {"strategies.0.params.fast": "0.params.fast",
                                  "strategies.1.params.fast": "1.params.fast",
                                  "strategies.0.params.slow": "slow", "risk.max_position": "max_position"}


def test_the_table_ranks_the_trials_and_shows_why_one_failed() -> None:
    text = render_table(sweep_of(f"{FAST}=10,40", f"{SLOW}=30"))
    lines = text.splitlines()
    assert lines[0] == f"Sweep of {CONFIG}"
    assert "2 trials: 1 ok, 0 retried, 1 failed" in text
    head = lines.index(next(line for line in lines if line.startswith("rank")))
    assert lines[head + 1].split()[:5] == ["1", "0", "10", "30", "1"]
    assert lines[head + 2].split()[-1] == "40" and "failed" in lines[head + 2]
    assert "must be less than slow (30), got 40" in lines[head + 2]
    assert lines[-1] == f"Best: trial 0: {FAST} = 10, {SLOW} = 30 (profit 1)"


def test_the_best_toml_is_the_whole_strategy_block_with_the_best_params_and_other_sections() -> None:
    sweep = sweep_of(f"{FAST}=5,10", f"{SLOW}=30", "risk.max_position=1000")
    text = render_best_toml(sweep, CONFIG.read_text())
    assert text.startswith(f"# Best of the sweep of {CONFIG} by profit: profit 1 (trial 1)\n")
    assert '# replaces the [[strategies]] block named "ema_cross"' in text
    parsed = tomllib.loads(text)
    assert parsed["strategies"] == [{"name": "ema_cross", "strategy": "actors.strategies.ema_cross:EmaCross",
                                     "symbols": ["XRP/ETH"], "timeframe": "1m",
                                     "params": {"fast": 10, "slow": 30, "kind": "ema", "size": "500"}}]
    assert parsed["risk"] == {"max_position": 1000}


def test_toml_values() -> None:
    assert toml_value({"a": 1, "b c": [True, 2.5, "x\"y"]}) == '{ a = 1, "b c" = [true, 2.5, "x\\"y"] }'


def test_two_params_make_a_heatmap_more_make_scatters_and_the_page_is_offline_and_stable() -> None:
    two = sweep_of(f"{FAST}=5:15:5", f"{SLOW}=10,30")
    page = render_landscape(two)
    assert page.startswith("<!DOCTYPE html>") and page.count("<rect") >= 6 + 6  # cells + bars
    assert "<circle" not in page and "<script" not in page and "http" not in page
    assert "failed: strategy cannot load: fast: must be less than slow (10), got 15" in page
    assert render_landscape(two) == page
    three = sweep_of(f"{FAST}=4:12", f"{SLOW}=20:40", "strategies.0.params.kind=ema,sma", sampler="random",
                     trials=6)
    page3 = render_landscape(three)
    assert page3.count("<svg") == 3 + 1 and page3.count("<circle") == 3 * 6


def test_write_sweep_writes_the_four_files(tmp_path: Path) -> None:
    sweep = sweep_of(f"{FAST}=5,10", f"{SLOW}=30")
    written = write_sweep(sweep, tmp_path / "out", CONFIG.read_text())
    assert [p.name for p in written] == ["sweep.json", "table.txt", "best.toml", "landscape.html"]
    assert (tmp_path / "out" / "sweep.json").read_text().endswith("}\n")
