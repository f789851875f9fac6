"""``aaiti sweep`` on the local process pool: a killed worker process, a trial that always kills it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path

from tests.integration.daemon.daemon_process import REPO
from tests.integration.sweep.sweep_config import WINDOW, child_env, run_sweep_cli, sweep_command, sweep_config
from tests.waiting import wait_until

FAST, SLOW = "strategies.0.params.fast", "strategies.0.params.slow"


def test_a_pool_worker_killed_mid_trial_is_retried_and_every_trial_keeps_its_row(tmp_path: Path) -> None:
    held = tmp_path / "held.pid"
    config = sweep_config(tmp_path, hold_file=held)
    proc = subprocess.Popen(
        sweep_command("--config", str(config), "--param", f"{FAST}=6,9", "--param", f"{SLOW}=20,30", *WINDOW,
                      "--workers", "2", "--out", str(tmp_path / "out")),
        cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        asyncio.run(wait_until(lambda: held.is_file() or proc.poll() is not None, timeout=120))
        assert held.is_file(), proc.communicate()
        pid = int(held.read_text())
        assert pid != proc.pid  # a worker process, not the sweep itself
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
    # The held trial, and the one running beside it (a broken pool ends all its workers).
    assert 1 <= len(retried) <= 2 and all(t["attempts"] == 2 for t in retried)
    assert "retried" in stdout


def test_a_trial_that_always_kills_its_worker_is_reported_failed_after_the_retries(tmp_path: Path) -> None:
    config = sweep_config(tmp_path, die=True)
    out = run_sweep_cli("--config", str(config), "--param", f"{FAST}=6,9", *WINDOW, "--workers", "1",
                        "--retries", "1", "--out", str(tmp_path / "out"))
    assert out.returncode == 1, out.stderr  # no trial succeeded
    trials = json.loads((tmp_path / "out" / "sweep.json").read_text())["trials"]
    assert [(t["number"], t["status"], t["attempts"]) for t in trials] == [(0, "failed", 2), (1, "failed", 2)]
    assert all(t["error"].startswith("worker died on each of 2 attempt(s)") for t in trials)
    assert "2 trials: 0 ok, 0 retried, 2 failed" in out.stdout
    assert "No trial succeeded" in out.stdout and "no trial succeeded" in (tmp_path / "out" / "best.toml").read_text()
