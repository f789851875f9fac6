"""Parameter sweeps: run a config's backtest over many parameter sets and rank them.

``run_sweep`` takes ``SweepSettings`` (config, swept keys, sampler, objective, window,
walk-forward) and a ``TrialExecutor`` (``sweep_exec``: a process pool or a Dask cluster)
and returns the SWEEP DICT that ``sweep.json`` holds (``schema: aaiti.sweep/1``):

- ``manifest``: config path and SHA-256, data files and their SHA-256, code version,
  objective, drawdown bound, sampler, seed, trials asked, batch size, retries, the
  ``--param`` specs and the window;
- ``trials``: every trial, ranked (``rank`` 1 is best): params, status
  (ok/retried/failed), objective (null if failed or -inf, with ``feasible``), the summary
  metrics, error, attempts;
- ``best``: the best feasible trial (in walk-forward: of the last fold, the parameters to
  trade next), or null;
- ``walk_forward``: null, or per fold its windows, ranked train trials, best params and the
  out-of-sample test trial, and ``aggregate`` (out-of-sample totals).

Nothing in it depends on the wall clock, the worker count or which worker ran what, so
the same seed and batch size give the same file (a worker death shows in ``attempts``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from config.loader import LoadedConfig
from daemon.backtest.inputs import backtest_config, code_version, file_sha256, load_for_backtest
from daemon.backtest.sweep_exec import TrialExecutor
from daemon.backtest.sweep_rank import Objective, Trial, rank, trial_from_outcome
from daemon.backtest.sweep_search import Search, make_search
from daemon.backtest.sweep_space import Params, ParamSpec, Scalar, SpecError, check_unique
from daemon.backtest.sweep_windows import Fold, WalkForward, folds
from daemon.backtest.sweep_worker import TrialTask, absolute_data_overrides

__all__ = ["SWEEP_SCHEMA", "SweepError", "SweepSettings", "run_sweep"]

SWEEP_SCHEMA = "aaiti.sweep/1"


class SweepError(Exception):
    """The sweep cannot start: bad config, parameter key, window or walk-forward split."""


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """What to sweep. ``batch`` None: the executor's slot count. Windows are epoch ms, end exclusive."""

    config_path: Path
    specs: tuple[ParamSpec, ...]
    objective: Objective
    sampler: str = "grid"
    trials: int | None = None
    seed: int = 0
    start_ms: int | None = None
    end_ms: int | None = None
    walk_forward: WalkForward | None = None
    batch: int | None = None
    retries: int = 1


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The checked inputs every trial shares."""

    config_text: str
    config_name: str
    base_overrides: dict[str, Scalar]
    data_files: list[dict[str, str]]
    events: tuple[int, int] | None

    def task(self, params: Params, start_ms: int | None, end_ms: int | None) -> TrialTask:
        return TrialTask(self.config_text, self.config_name, {**self.base_overrides, **params}, start_ms, end_ms)


def _probe(specs: Sequence[ParamSpec]) -> Params:
    """One value per key (the first of each), to check the keys fit the config's schema."""
    return {s.key: s.choices[0] if s.kind == "choices" else s.lo for s in specs}


def _plan(settings: SweepSettings) -> _Plan:
    from config.errors import ConfigError

    path = settings.config_path
    try:
        check_unique(settings.specs)
        text = path.read_text(encoding="utf-8")
        loaded = load_for_backtest(path)
        base = absolute_data_overrides(loaded)
        load_for_backtest(path, {**base, **_probe(settings.specs)})
    except SpecError as exc:
        raise SweepError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"cannot read the config {path}: {exc}") from None
    except ConfigError as exc:
        raise SweepError("invalid config or --param key: "
                         + "; ".join(i.render(exc.source) for i in exc.issues)) from None
    files = []
    data = base.get("feed.replay.path")
    if isinstance(data, str) and Path(data).is_file():
        files.append({"path": data, "sha256": file_sha256(Path(data))})
    # The window must hold data: otherwise every trial would fail alike, after a worker round trip.
    return _Plan(text, path.stem, base, files, _event_span(settings, loaded))


def _event_span(settings: SweepSettings, loaded: LoadedConfig) -> tuple[int, int] | None:
    """First and last event time of the config's replay file; None for a synthetic source."""
    from adapters.market_data.errors import DataFileError
    from adapters.market_data.factory import build_source
    from adapters.market_data.replay import ReplaySource

    cfg = backtest_config(loaded.config)
    if cfg.feed.source != "replay":
        return None
    try:
        source = build_source(cfg.feed, loaded.resolve)
    except (DataFileError, ValueError, OSError) as exc:
        raise SweepError(f"market data unusable: {exc}") from None
    assert isinstance(source, ReplaySource)
    stamps = [row[0] for row in source.data.rows]
    if not stamps:
        raise SweepError(f"no market data in {cfg.feed.replay.path}")
    first, last = min(stamps), max(stamps)
    start, end = settings.start_ms, settings.end_ms
    if (start is not None and start > last) or (end is not None and end <= first):
        raise SweepError(f"no market data in the window: {cfg.feed.replay.path} covers {_iso(first)} .. {_iso(last)}")
    return first, last


def _iso(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _data_span(settings: SweepSettings, events: tuple[int, int] | None) -> tuple[int, int]:
    """``[from, to)`` of a walk-forward: the options, else the data's first event and last event + 1 ms."""
    if settings.start_ms is not None and settings.end_ms is not None:
        return settings.start_ms, settings.end_ms
    if events is None:
        raise SweepError("--walk-forward on a synthetic source needs both --from and --to")
    start = settings.start_ms if settings.start_ms is not None else events[0]
    end = settings.end_ms if settings.end_ms is not None else events[1] + 1
    return start, end


Progress = Callable[[str], None]


def _optimise(search: Search, total: int, batch: int, executor: TrialExecutor, plan: _Plan,
              objective: Objective, window: tuple[int | None, int | None], progress: Progress,
              label: str) -> list[Trial]:
    """Ask, run and tell in batches until ``total`` trials ran or the search ran out."""
    trials: list[Trial] = []
    while len(trials) < total:
        asked = search.ask(min(batch, total - len(trials)))
        if not asked:
            break
        runs = executor.run([plan.task(p, *window) for p in asked])
        new = [trial_from_outcome(len(trials) + k, p, r.outcome, r.attempts, objective)
               for k, (p, r) in enumerate(zip(asked, runs, strict=True))]
        search.tell(new)
        trials.extend(new)
        failed = sum(t.status == "failed" for t in trials)
        progress(f"{label}{len(trials)}/{total} trials done ({failed} failed)")
    return trials


def _ranked_json(trials: Sequence[Trial]) -> list[dict[str, Any]]:
    return [{"rank": i + 1, **t.to_json()} for i, t in enumerate(rank(trials))]


def _best(trials: Sequence[Trial]) -> Trial | None:
    ranked = rank(trials)
    return ranked[0] if ranked and ranked[0].feasible else None


def _best_json(trial: Trial | None, **extra: Any) -> dict[str, Any] | None:
    if trial is None:
        return None
    return {"trial": trial.number, "params": dict(trial.params), "objective": trial.objective,
            "metrics": dict(trial.metrics), **extra}


def _aggregate(tests: Sequence[Trial | None]) -> dict[str, Any]:
    """Out-of-sample totals over the folds' test trials."""
    ok = [t for t in tests if t is not None and t.status != "failed"]
    scores = [t.objective for t in ok if t.objective is not None and t.feasible]
    profit = sum((Decimal(str(t.metrics["total_profit"])) for t in ok), Decimal(0))
    return {
        "folds": len(tests),
        "folds_tested": len(ok),
        "folds_profitable": sum(Decimal(str(t.metrics["total_profit"])) > 0 for t in ok),
        "total_profit": format(profit, "f"),
        "mean_objective": float(f"{sum(scores) / len(scores):.10g}") if scores else None,
        "mean_sharpe": float(f"{sum(float(t.metrics['sharpe']) for t in ok) / len(ok):.10g}") if ok else None,
        "worst_drawdown_pct": max((float(t.metrics["max_drawdown_pct"]) for t in ok), default=None),
        "trades": sum(int(t.metrics["trades"]) for t in ok),
    }


def _search(settings: SweepSettings) -> tuple[Search, int]:
    try:
        return make_search(settings.specs, settings.sampler, settings.seed, settings.trials)
    except ValueError as exc:  # an interval in a grid, an unknown sampler
        raise SweepError(str(exc)) from None


def _batch(settings: SweepSettings, total: int, executor: TrialExecutor) -> int:
    """Trials asked and run at once: given, else the whole grid (its points do not depend on
    earlier scores), else one per worker slot."""
    if settings.batch:
        return settings.batch
    return max(1, total) if settings.sampler == "grid" else executor.slots


def _walk_forward(settings: SweepSettings, executor: TrialExecutor, plan: _Plan,
                  progress: Progress) -> tuple[dict[str, Any], Trial | None, int]:
    assert settings.walk_forward is not None
    start, end = _data_span(settings, plan.events)
    try:
        cuts = folds(settings.walk_forward, start, end)
    except ValueError as exc:
        raise SweepError(str(exc)) from None
    trained: list[tuple[Fold, list[Trial], Trial | None]] = []
    batch = 0
    for fold in cuts:
        search, total = _search(settings)
        batch = _batch(settings, total, executor)
        trials = _optimise(search, total, batch, executor, plan, settings.objective,
                           (fold.train_start, fold.train_end), progress, f"fold {fold.index}/{len(cuts)}: ")
        trained.append((fold, trials, _best(trials)))
    # One batch for every fold's out-of-sample run: they do not depend on each other.
    to_test = [(k, chosen) for k, (_, _, chosen) in enumerate(trained) if chosen is not None]
    runs = executor.run([plan.task(chosen.params, trained[k][0].test_start, trained[k][0].test_end)
                         for k, chosen in to_test])
    tests: list[Trial | None] = [None] * len(trained)
    for (k, chosen), r in zip(to_test, runs, strict=True):
        tests[k] = trial_from_outcome(0, chosen.params, r.outcome, r.attempts, settings.objective)
    out_folds = []
    for (fold, trials, best), test in zip(trained, tests, strict=True):
        out_folds.append({
            "fold": fold.index,
            "train": [fold.train_start, fold.train_end],
            "test": [fold.test_start, fold.test_end],
            "trials": _ranked_json(trials),
            "best": _best_json(best),
            "test_result": test.to_json() if test is not None else None,
        })
    last = trained[-1][2]
    doc = {"spec": settings.walk_forward.text, "from_ms": start, "to_ms": end, "folds": out_folds,
           "aggregate": _aggregate(tests)}
    return doc, last, batch


def _manifest(settings: SweepSettings, plan: _Plan, batch: int, total: int | None) -> dict[str, Any]:
    from daemon.app import VERSION

    return {
        "aaiti_version": VERSION,
        "code_version": code_version(),
        "config_path": str(settings.config_path),
        "config_sha256": file_sha256(settings.config_path),
        "data_files": plan.data_files,
        "objective": settings.objective.name,
        "max_drawdown_pct": settings.objective.max_drawdown_pct,
        "sampler": settings.sampler,
        "seed": settings.seed,
        "trials": total,
        "batch": batch,
        "retries": settings.retries,
        "params": [s.text for s in settings.specs],
        "from_ms": settings.start_ms,
        "to_ms": settings.end_ms,
    }


def run_sweep(settings: SweepSettings, executor: TrialExecutor,
              progress: Progress | None = None) -> dict[str, Any]:
    """Run the sweep on ``executor`` and return the sweep dict (see the module docstring).

    Raises SweepError (bad config, key, sampler/spec combination, walk-forward split)
    before any trial runs; ``sweep_exec.ExecutorError`` if the executor cannot go on.
    """
    report = progress or (lambda _line: None)
    plan = _plan(settings)
    if settings.walk_forward is not None:
        wf, best, batch = _walk_forward(settings, executor, plan, report)
        return {"schema": SWEEP_SCHEMA, "manifest": _manifest(settings, plan, batch, settings.trials),
                "trials": [], "walk_forward": wf,
                "best": _best_json(best, source=f"fold {len(wf['folds']) - 1} (the last train window)")}
    search, total = _search(settings)
    batch = _batch(settings, total, executor)
    trials = _optimise(search, total, batch, executor, plan, settings.objective,
                       (settings.start_ms, settings.end_ms), report, "")
    return {"schema": SWEEP_SCHEMA, "manifest": _manifest(settings, plan, batch, total),
            "trials": _ranked_json(trials), "walk_forward": None, "best": _best_json(_best(trials))}
