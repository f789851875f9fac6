"""How a sweep picks its parameter sets: the whole grid, or an optuna sampler by ask/tell.

``GridSearch`` hands out every combination of the specs (``sweep_space.grid``).
``OptunaSearch`` wraps an in-memory optuna study (``TPESampler`` with ``constant_liar``,
``RandomSampler``, ``CmaEsSampler``, or ``GridSampler`` for a grid cut short by
``--trials``), seeded, maximising. It asks for a batch of trials at once, so they run in
parallel, and tells the study their scores in trial order once the batch finished: the
same seed and batch size give the same trials. A parameter set seen before is not run
again: the study is told the earlier score and asked for another (a small discrete space
runs out: the search then ends early). Failed trials are told as failed (optuna ignores
them); -inf scores (over the drawdown bound) are told as -inf.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

from daemon.backtest.sweep_rank import Trial
from daemon.backtest.sweep_space import Params, ParamSpec, grid, normalise

__all__ = ["DEFAULT_TRIALS", "SAMPLERS", "GridSearch", "OptunaSearch", "Search", "make_search"]

SAMPLERS = ("grid", "tpe", "random", "cmaes")
#: Trials of an optuna sampler without --trials.
DEFAULT_TRIALS = 50
#: Asks per wanted trial before a search is taken as exhausted (every answer already seen).
_ASKS_PER_TRIAL = 50


class Search(Protocol):
    """Proposes parameter sets and learns from their trials."""

    def ask(self, n: int) -> list[Params]:
        """Up to ``n`` new parameter sets (fewer, or none, when the space is exhausted)."""
        ...

    def tell(self, trials: Sequence[Trial]) -> None:
        """The trials of the sets the last ``ask`` returned, in the same order."""
        ...


def _key(params: Params) -> str:
    return json.dumps(params, sort_keys=True)


class GridSearch:
    """Every combination, in order (first key varying slowest)."""

    def __init__(self, specs: Sequence[ParamSpec]) -> None:
        self._points = grid(specs)
        self._next = 0

    @property
    def size(self) -> int:
        """How many combinations the grid has."""
        return len(self._points)

    def ask(self, n: int) -> list[Params]:
        """The next ``n`` combinations."""
        out = self._points[self._next:self._next + n]
        self._next += len(out)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        """Nothing to learn."""


def _distributions(specs: Sequence[ParamSpec]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for s in specs:
        if s.kind == "choices":
            out[s.key] = CategoricalDistribution(list(s.choices))
        elif s.kind == "interval":
            out[s.key] = (IntDistribution(int(s.lo), int(s.hi)) if s.is_int
                          else FloatDistribution(float(s.lo), float(s.hi)))
        else:
            values = s.grid_values()
            last = values[-1]  # hi rounded down onto the step, as the grid has it
            out[s.key] = (IntDistribution(int(s.lo), int(last), step=int(s.step)) if s.is_int
                          else FloatDistribution(float(s.lo), float(last), step=float(s.step)))
    return out


class OptunaSearch:
    """An optuna study driven by ask/tell in batches."""

    def __init__(self, specs: Sequence[ParamSpec], sampler: str, seed: int) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._specs = tuple(specs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant_liar is "experimental"; categorical params in CMA-ES
            if sampler == "tpe":
                chosen: Any = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
            elif sampler == "random":
                chosen = optuna.samplers.RandomSampler(seed=seed)
            elif sampler == "cmaes":
                chosen = optuna.samplers.CmaEsSampler(seed=seed)
            elif sampler == "grid":
                chosen = optuna.samplers.GridSampler({s.key: list(s.grid_values()) for s in specs}, seed=seed)
            else:
                raise ValueError(f"sampler {sampler!r}: expected one of {', '.join(SAMPLERS)}")
            self._study = optuna.create_study(direction="maximize", sampler=chosen)
        self._distributions = _distributions(specs)
        self._seen: dict[str, Trial] = {}
        self._pending: list[tuple[Any, Params]] = []
        self._twins: dict[str, list[Any]] = {}  # asked again while the first one still runs

    def ask(self, n: int) -> list[Params]:
        """Up to ``n`` parameter sets not run before."""
        out: list[Params] = []
        pending_keys: set[str] = set()
        asks = 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            while len(out) < n and asks < n * _ASKS_PER_TRIAL:
                asks += 1
                trial = self._study.ask(self._distributions)
                params = normalise(self._specs, trial.params)
                key = _key(params)
                if key in self._seen:
                    self._tell_one(trial, self._seen[key])
                elif key in pending_keys:
                    self._twins.setdefault(key, []).append(trial)
                else:
                    pending_keys.add(key)
                    self._pending.append((trial, params))
                    out.append(params)
        return out

    def tell(self, trials: Sequence[Trial]) -> None:
        """Tell the study each trial's score (or failure), in ask order."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for (trial, params), result in zip(self._pending, trials, strict=True):
                key = _key(params)
                self._seen[key] = result
                self._tell_one(trial, result)
                for twin in self._twins.pop(key, []):
                    self._tell_one(twin, result)
        self._pending = []

    def _tell_one(self, trial: Any, result: Trial) -> None:
        from optuna.trial import TrialState

        if result.objective is None:
            self._study.tell(trial, state=TrialState.FAIL)
        else:
            self._study.tell(trial, result.objective)


def make_search(specs: Sequence[ParamSpec], sampler: str, seed: int, trials: int | None) -> tuple[Search, int]:
    """The search for ``sampler`` and how many trials to run.

    ``grid`` runs the whole grid, or with ``trials`` below its size that many points in a
    seeded random order (optuna's ``GridSampler``). The other samplers run ``trials``
    (default ``DEFAULT_TRIALS``).
    """
    if sampler == "grid":
        whole = GridSearch(specs)
        if trials is None or trials >= whole.size:
            return whole, whole.size
        return OptunaSearch(specs, "grid", seed), trials
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler {sampler!r}: expected one of {', '.join(SAMPLERS)}")
    return OptunaSearch(specs, sampler, seed), DEFAULT_TRIALS if trials is None else trials
