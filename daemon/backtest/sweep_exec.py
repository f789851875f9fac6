"""Where a sweep's trials run: a local process pool or a Dask cluster, with retries on worker death.

Both executors run ``sweep_worker.run_trial`` on a batch of ``TrialTask``s and return one
``Execution`` per task, in task order, never fewer: a trial whose worker died is run again
up to ``retries`` times, then reported failed. ``run_trial`` itself never raises for a
bad parameter set, so what reaches the executor as an exception is a lost worker (or an
environment problem on it, reported as a failed trial without a retry).

- ``PoolExecutor``: ``concurrent.futures.ProcessPoolExecutor`` with ``forkserver`` workers
  preloaded with the backtest code. A worker killed mid-trial breaks the whole pool
  (``BrokenProcessPool``) and ends its other workers: every trial in flight then is charged
  an attempt and resubmitted to a fresh pool.
- ``DaskExecutor``: a ``dask.distributed.Client`` on ``tcp://HOST:PORT``. The scheduler
  itself re-runs a task whose worker died, up to its ``distributed.scheduler.allowed-failures``
  (default 3); such a trial is reported ``retried`` (its attempts read from the scheduler's
  count of workers that died running it). When the scheduler gives up (``KilledWorker``),
  the trial is submitted again under a new key up to ``retries`` times, then reported
  failed.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from daemon.backtest.sweep_worker import TrialTask, run_trial

__all__ = ["DaskExecutor", "Execution", "ExecutorError", "PoolExecutor", "TrialExecutor"]


class ExecutorError(Exception):
    """The executor cannot run trials at all (no scheduler, dask missing, cluster gone)."""


@dataclasses.dataclass(frozen=True)
class Execution:
    """What one task gave: ``run_trial``'s outcome dict and how many times it was run."""

    outcome: dict[str, Any]
    attempts: int


class TrialExecutor(Protocol):
    """Runs batches of trials; ``slots`` is how many run at once."""

    slots: int

    def run(self, tasks: Sequence[TrialTask]) -> list[Execution]:
        """Run every task; one Execution per task, in order."""
        ...

    def close(self) -> None:
        """Release the workers or the client."""
        ...


def _died(attempts: int, detail: str) -> dict[str, Any]:
    return {"status": "failed", "error": f"worker died on each of {attempts} attempt(s): {detail}"}


class PoolExecutor:
    """Trials on a local ``ProcessPoolExecutor`` of ``workers`` processes."""

    def __init__(self, workers: int, retries: int = 1) -> None:
        self.slots = max(1, workers)
        self.retries = retries
        self._pool: cf.ProcessPoolExecutor | None = None

    def _executor(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: children fork from a clean server that imported the backtest code
            # once (fast start), not from this process with its threads and optuna state.
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["daemon.backtest.sweep_worker", "daemon.backtest.runner"])
            self._pool = cf.ProcessPoolExecutor(max_workers=self.slots, mp_context=ctx)
        return self._pool

    def run(self, tasks: Sequence[TrialTask]) -> list[Execution]:
        """Run every task, resubmitting the ones in flight when a worker process died.

        At most ``slots`` tasks are submitted at a time, so the trials charged an attempt
        when the pool breaks are the ones that were running (a broken pool ends all its
        workers), not every trial still queued.
        """
        results: dict[int, Execution] = {}
        attempts = [0] * len(tasks)
        queue = list(range(len(tasks)))
        queue.reverse()  # pop() from the end: first task first
        running: dict[cf.Future[dict[str, Any]], int] = {}
        while queue or running:
            pool = self._executor()
            while queue and len(running) < self.slots:
                i = queue.pop()
                attempts[i] += 1
                running[pool.submit(run_trial, tasks[i])] = i
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            broken = False
            for fut in sorted(done, key=running.__getitem__):
                i = running.pop(fut)
                exc = fut.exception()
                if exc is None:
                    results[i] = Execution(fut.result(), attempts[i])
                elif isinstance(exc, BrokenProcessPool):
                    broken = True
                    if attempts[i] <= self.retries:
                        queue.append(i)
                    else:
                        results[i] = Execution(_died(attempts[i], "the worker process ended abruptly"), attempts[i])
                else:
                    results[i] = Execution({"status": "failed", "error": f"{type(exc).__name__}: {exc}"}, attempts[i])
            if broken:
                self._discard()  # the others in flight fail too: they come back through wait()
        return [results[i] for i in range(len(tasks))]

    def _discard(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        """Stop the worker processes."""
        self._discard()


def _suspicious_counts(keys: list[str]) -> Any:
    """A function for ``Client.run_on_scheduler``: how many workers died running each key.

    Built as a closure so cloudpickle ships it by value: the scheduler need not import aaiti.
    """
    def count(dask_scheduler: Any = None) -> dict[str, int]:
        tasks = dask_scheduler.tasks
        return {k: tasks[k].suspicious for k in keys if k in tasks}

    return count


class DaskExecutor:
    """Trials on a Dask cluster through a ``distributed.Client`` at ``address``."""

    def __init__(self, address: str, retries: int = 1, *, run_id: str = "sweep", timeout_s: float = 10.0) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise ExecutorError("--scheduler needs dask.distributed (pip install 'dask[distributed]')") from None
        try:
            self._client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)  # type: ignore[no-untyped-call]
        except (OSError, TimeoutError) as exc:
            raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        self.retries = retries
        self._run_id = run_id
        self._submitted = 0
        threads = sum(w.get("nthreads", 1) for w in self._client.scheduler_info().get("workers", {}).values())
        self.slots = max(1, threads)

    def _key(self, index: int) -> str:
        # A fresh key per submission: a resubmitted trial must not meet its erred predecessor.
        self._submitted += 1
        return f"aaiti-trial-{self._run_id}-{os.getpid()}-{self._submitted}-{index}"

    def run(self, tasks: Sequence[TrialTask]) -> list[Execution]:
        """Run every task on the cluster; resubmit the ones the scheduler gave up on."""
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        results: dict[int, Execution] = {}
        runs = [0] * len(tasks)  # runs of each trial cut short by a dying worker, over all submissions
        resubmitted = [0] * len(tasks)
        todo = list(range(len(tasks)))
        while todo:
            futures = {self._client.submit(run_trial, tasks[i], key=self._key(i), pure=False): i for i in todo}
            todo = []
            done = [(fut, futures[fut]) for fut in as_completed(list(futures), loop=self._client.loop)]  # type: ignore[no-untyped-call]
            deaths = self._deaths([f.key for f, _ in done])
            for fut, i in done:
                died = deaths.get(fut.key, 0)
                if fut.status == "finished":
                    results[i] = Execution(fut.result(), runs[i] + died + 1)
                    continue
                if fut.status == "cancelled":
                    raise ExecutorError(f"the Dask cluster cancelled trial {i} (scheduler lost?)")
                exc = fut.exception()
                if isinstance(exc, KilledWorker):
                    runs[i] += max(died, 1)
                    if resubmitted[i] < self.retries:
                        resubmitted[i] += 1
                        todo.append(i)
                    else:
                        results[i] = Execution(_died(runs[i], f"{type(exc).__name__}: {exc}"), runs[i])
                else:
                    results[i] = Execution({"status": "failed", "error": f"{type(exc).__name__}: {exc}"},
                                           runs[i] + died + 1)
            for fut, _ in done:
                fut.release()
            todo.sort()
        return [results[i] for i in range(len(tasks))]

    def _deaths(self, keys: list[str]) -> dict[str, int]:
        try:
            counts = self._client.run_on_scheduler(_suspicious_counts(keys))  # type: ignore[no-untyped-call]
        except Exception:  # a scheduler that refuses run_on_scheduler: retries then go unseen
            return {}
        return {str(k): int(v) for k, v in counts.items()}

    def close(self) -> None:
        """Close the client (the cluster stays up: it is not ours)."""
        self._client.close()  # type: ignore[no-untyped-call]
