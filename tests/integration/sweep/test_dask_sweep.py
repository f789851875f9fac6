"""``aaiti sweep --scheduler``: a real Dask cluster (scheduler and two workers as processes over TCP).

The sweep runs as a child process, like a trader runs it; the cluster is started once for
the module. The kill test comes last: it kills one worker process mid-trial (the nanny
starts a new one).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon.daemon_process import REPO
from tests.integration.sweep.dask_cluster import LocalDask, start_cluster
from tests.integration.sweep.sweep_config import WINDOW, child_env, run_sweep_cli, sweep_command, sweep_config
from tests.waiting import wait_until

FAST, SLOW = "strategies.0.params.fast", "strategies.0.params.slow"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDask]:
    """Scheduler + 2 single-threaded workers on 127.0.0.1."""
    c = start_cluster(tmp_path_factory.mktemp("dask"), workers=2)
    try:
        yield c
    finally:
        c.stop()


def test_a_short_sweep_on_the_cluster_ranks_the_trials_and_prints_the_best_params(
        cluster: LocalDask, tmp_path: Path) -> None:
    config = sweep_config(tmp_path)
    out = run_sweep_cli("--config", str(config), "--param", f"{FAST}=6,9,12", "--param", f"{SLOW}=10,30",
                        "--objective", "profit", *WINDOW, "--scheduler", cluster.address,
                        "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    sweep = json.loads((tmp_path / "out" / "sweep.json").read_text())
    trials = sweep["trials"]
    assert len(trials) == 6 and [t["rank"] for t in trials] == [1, 2, 3, 4, 5, 6]
    # (12, 10) is invalid for EmaCross: a failed row with the strategy's own message, ranked last.
    failed = [t for t in trials if t["status"] == "failed"]
    assert [(t["params"][FAST], t["params"][SLOW]) for t in failed] == [(12, 10)]
    assert "must be less than slow (10), got 12" in failed[0]["error"] and trials[-1] is failed[0]
    ok = trials[:5]
    assert all(t["status"] == "ok" and t["attempts"] == 1 for t in ok)
    scores = [t["objective"] for t in ok]
    assert scores == sorted(scores, reverse=True)
    assert all(t["objective"] == float(t["metrics"]["total_profit"]) for t in ok)
    # The table on stdout: header, one row per trial in rank order, the failed one with its message.
    lines = out.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("rank "))
    assert lines[head].split() == ["rank", "trial", "fast", "slow", "objective", "profit", "max_dd_%", "sharpe",
                                   "trades", "status"]
    rows = lines[head + 1:head + 7]
    for row, t in zip(rows, trials, strict=True):
        cells = row.split()
        assert cells[:4] == [str(t["rank"]), str(t["number"]), str(t["params"][FAST]), str(t["params"][SLOW])]
        assert cells[9] == t["status"]
    assert rows[-1].endswith("must be less than slow (10), got 12")
    # The TOML snippet: the whole ema_cross block with the best params, ready to paste.
    best = ok[0]["params"]
    snippet = (tmp_path / "out" / "best.toml").read_text()
    assert snippet in out.stdout
    block = tomllib.loads(snippet)["strategies"]
    assert block == [{"name": "ema_cross", "strategy": "actors.strategies.ema_cross:EmaCross", "symbols": ["XRP/ETH"],
                      "timeframe": "1m", "params": {"fast": best[FAST], "slow": best[SLOW], "kind": "ema",
                                                   "size": "500"}}]
    page = (tmp_path / "out" / "landscape.html").read_text()
    assert "<svg" in page and "<script" not in page and "http" not in page


def test_a_worker_killed_mid_trial_is_retried_and_every_trial_keeps_its_row(
        cluster: LocalDask, tmp_path: Path) -> None:
    held = tmp_path / "held.pid"
    config = sweep_config(tmp_path, hold_file=held)
    proc = subprocess.Popen(
        sweep_command("--config", str(config), "--param", f"{FAST}=6,9", "--param", f"{SLOW}=20,30", *WINDOW,
                      "--scheduler", cluster.address, "--out", str(tmp_path / "out")),
        cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The first trial to start writes its process id and holds its worker until killed.
        asyncio.run(wait_until(lambda: held.is_file() or proc.poll() is not None, timeout=120))
        assert held.is_file(), proc.communicate()
        pid = int(held.read_text())
        assert pid in cluster.worker_pids().values()
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    trials = json.loads((tmp_path / "out" / "sweep.json").read_text())["trials"]
    assert sorted(t["number"] for t in trials) == [0, 1, 2, 3]
    assert {t["status"] for t in trials} <= {"ok", "retried"}
    retried = [t for t in trials if t["status"] == "retried"]
    assert retried and all(t["attempts"] >= 2 for t in retried)
    assert "retried" in stdout and "0 failed" in stdout
