"""The worker side of a sweep: data paths made absolute, a refused parameter set is a failed trial."""

from __future__ import annotations

from pathlib import Path

from config.loader import load_config
from daemon.backtest.sweep_worker import TrialTask, absolute_data_overrides, run_trial

REPO = Path(__file__).resolve().parents[4]
TRADES = "data/market/binance_XRP-ETH_trades_2019-10.csv.gz"


def test_the_data_file_is_resolved_against_the_config_directory(tmp_path: Path) -> None:
    assert absolute_data_overrides(load_config(REPO / "aaiti.toml")) == {"feed.replay.path": str(REPO / TRADES)}
    bare = tmp_path / "bare.toml"
    bare.write_text('[feed]\nsymbols = ["XRP/ETH"]\n')  # the schema's default path, relative
    assert absolute_data_overrides(load_config(bare)) == {"feed.replay.path": str(tmp_path / TRADES)}
    synthetic = tmp_path / "synthetic.toml"
    synthetic.write_text('[feed]\nsource = "synthetic"\n')
    assert absolute_data_overrides(load_config(synthetic)) == {}


def test_a_parameter_set_the_strategy_refuses_is_a_failed_trial_with_its_message() -> None:
    text = (REPO / "aaiti.toml").read_text()
    task = TrialTask(text, "aaiti", {"feed.replay.path": str(REPO / TRADES), "strategies.0.params.fast": 30},
                     None, None)
    outcome = run_trial(task)
    assert outcome == {"status": "failed", "error": "strategy cannot load: strategies[0].params.fast: "
                                                    "must be less than slow (20), got 30"}
