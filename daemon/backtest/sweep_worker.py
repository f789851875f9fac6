"""What a sweep ships to a worker process or a Dask worker: one trial in, its figures out.

``TrialTask`` carries the config file's TEXT (not its path: a Dask worker may run on
another machine or in another directory), its overrides (the trial's params plus the
data file paths made absolute by ``absolute_data_overrides``) and the window.
``run_trial`` writes the text to a temporary file, runs ``run_backtest_sync`` on it and
returns a small plain dict: the summary figures a sweep ranks by, or the error that
stopped the run. It never raises for a bad parameter set: the strategy's own validation
message becomes a failed trial. Workers must have aaiti (and any custom strategy module)
importable and the data files at the same absolute paths.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.backtest.sweep_space import Scalar

if TYPE_CHECKING:
    from config.loader import LoadedConfig

__all__ = ["SUMMARY_KEYS", "TrialTask", "absolute_data_overrides", "run_trial"]

#: The summary figures a trial sends back (the whole result dict is ~0.3 MB per trial).
SUMMARY_KEYS = ("total_profit", "total_profit_pct", "max_drawdown", "max_drawdown_pct", "sharpe", "sortino",
                "calmar", "cagr_pct", "trades", "wins", "losses", "win_rate_pct", "profit_factor", "expectancy",
                "fees_paid", "final_equity", "starting_equity", "orders", "fills", "start_ms", "end_ms")


@dataclasses.dataclass(frozen=True)
class TrialTask:
    """One backtest to run: config text, overrides (dotted keys), window (epoch ms, end exclusive)."""

    config_text: str
    config_name: str
    overrides: Mapping[str, Scalar]
    start_ms: int | None
    end_ms: int | None


def absolute_data_overrides(loaded: LoadedConfig) -> dict[str, Scalar]:
    """Overrides that point the config's data file (``feed.replay.path``) at its absolute path.

    Relative paths in a config resolve against the config file's directory; the worker
    runs a copy of the text from a temporary directory, so they must be absolute first.
    A synthetic source reads no file: no override.
    """
    cfg = loaded.config
    if cfg.feed.source == "synthetic":
        return {}
    return {"feed.replay.path": str(loaded.resolve(cfg.feed.replay.path).resolve())}


def run_trial(task: TrialTask) -> dict[str, Any]:
    """Run one trial here; ``{"status": "ok", "metrics": {...}}`` or ``{"status": "failed", "error": str}``.

    Runs in a process pool worker or on a Dask worker (the same function for both).
    A run the supervisor gave up on (a strategy kept raising) is a failed trial: its
    figures describe a truncated run.
    """
    from daemon.backtest.runner import BacktestError, run_backtest_sync

    with tempfile.TemporaryDirectory(prefix="aaiti-sweep-") as tmp:
        path = Path(tmp) / f"{task.config_name}.toml"
        path.write_text(task.config_text, encoding="utf-8")
        try:
            result = run_backtest_sync(str(path), dict(task.overrides), task.start_ms, task.end_ms)
        except BacktestError as exc:
            return {"status": "failed", "error": str(exc).replace(str(path), task.config_name + ".toml")}
        except Exception as exc:  # a bug or an environment problem: report it, do not lose the trial
            return {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    summary = result["summary"]
    if summary.get("gave_up"):
        return {"status": "failed", "error": f"the supervisor gave up: {summary['gave_up']}"}
    metrics = {key: summary[key] for key in SUMMARY_KEYS if key in summary}
    metrics["strategy_errors"] = len(summary.get("strategy_errors", ()))
    return {"status": "ok", "metrics": metrics}
