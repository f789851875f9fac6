"""A real local Dask cluster for sweep tests: scheduler and workers as separate processes over TCP.

``dask scheduler`` on 127.0.0.1 (port 0, its address read from the scheduler file) and one
``dask worker`` (nanny + worker process) per worker, each with one thread, started from
the repository with ``tests`` importable. ``stop`` ends exactly the processes it started,
by pid.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.integration.daemon.daemon_process import REPO
from tests.integration.sweep.sweep_config import child_env

_DASK = str(Path(sys.executable).with_name("dask"))


@dataclass
class LocalDask:
    """The processes of a running cluster and the scheduler's address."""

    address: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[IO[bytes]] = field(default_factory=list)

    def worker_pids(self) -> dict[str, int]:
        """Worker address -> pid of the worker process (the one that runs tasks)."""
        import os

        from distributed import Client

        with Client(self.address, timeout="30s", set_as_default=False) as client:
            return dict(client.run(os.getpid))

    def wait_for_workers(self, n: int) -> None:
        """Block until ``n`` workers are connected to the scheduler."""
        from distributed import Client

        with Client(self.address, timeout="30s", set_as_default=False) as client:
            client.wait_for_workers(n, timeout=60)

    def stop(self) -> None:
        """Terminate the processes this cluster started (workers first), by pid."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in self.logs:
            log.close()


def start_cluster(tmp: Path, workers: int = 2) -> LocalDask:
    """Start a scheduler and ``workers`` single-threaded workers; return once all are connected."""
    import asyncio

    from tests.waiting import wait_until

    sched_file = tmp / "scheduler.json"
    logs = tmp / "dask-logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = child_env()
    cluster = LocalDask("")

    def spawn(argv: list[str], log_name: str) -> None:
        log = (logs / log_name).open("wb")
        cluster.logs.append(log)
        cluster.procs.append(subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log))

    def address() -> str:
        try:
            return str(json.loads(sched_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            return ""  # not written yet, or half written

    try:
        spawn([_DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
               "--scheduler-file", str(sched_file)], "scheduler.log")
        asyncio.run(wait_until(address, timeout=60))
        cluster.address = address()
        for i in range(workers):
            spawn([_DASK, "worker", "--scheduler-file", str(sched_file), "--nworkers", "1", "--nthreads", "1",
                   "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"], f"worker{i}.log")
        cluster.wait_for_workers(workers)
    except BaseException:
        cluster.stop()
        raise
    return cluster
