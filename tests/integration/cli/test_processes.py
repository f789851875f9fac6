"""``aaiti`` as a user runs it: a child process started from a directory that is not the project's.

- ``aaiti new-strategy`` writes a strategy into the config's strategy directory; the
  ``[[strategies]]`` block it prints makes ``check-config``, ``backtest`` and ``run`` (with a
  reload) load it without PYTHONPATH, as under systemd (another working directory);
- the running daemon writes ``daemon.summary`` lines and a ``daemon.final_summary`` at the end;
- a closed stdout ends a command quietly.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon.paper_state import paper_config

AAITI = Path(sys.executable).parent / "aaiti"
REPO = Path(__file__).resolve().parents[3]


def child_env() -> dict[str, str]:
    """The test runner's environment without anything that would make the strategies importable or the CLI
    talk to another daemon."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AAITI_", "NOTIFY_", "WATCHDOG_"))}
    env.pop("PYTHONPATH", None)
    env.pop("CREDENTIALS_DIRECTORY", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def aaiti(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AAITI), *argv], cwd=cwd, env=child_env(), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory with nothing in it: neither the config nor the strategies."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def new_strategy(config: Path, cwd: Path, name: str = "my_breakout") -> None:
    """``aaiti new-strategy NAME --config CONFIG >> CONFIG``, with a size the bundled market can fill."""
    made = aaiti("new-strategy", name, "--config", str(config), cwd=cwd)
    assert made.returncode == 0, made.stderr
    assert (config.parent / "strategies" / f"{name}.py").is_file()
    assert "the [[strategies]] block on stdout runs it" in made.stderr
    block = made.stdout.replace('size = "1"', 'size = "500"')
    config.write_text(config.read_text() + "\n" + block)


def test_new_strategy_then_check_config_from_another_directory(tmp_path: Path, elsewhere: Path) -> None:
    config = paper_config(tmp_path)
    new_strategy(config, elsewhere)
    checked = aaiti("check-config", str(config), cwd=elsewhere)
    assert checked.returncode == 0, checked.stderr
    plain = json.loads(checked.stdout)
    assert plain["strategies"][-1]["strategy"] == "my_breakout:MyBreakout"
    assert plain["daemon"]["strategy_dirs"] == ["strategies"]
    again = aaiti("new-strategy", "my_breakout", "--config", str(config), cwd=elsewhere)
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten by accident
    taken = aaiti("new-strategy", "json", "--config", str(config), cwd=elsewhere)
    assert taken.returncode == 2 and "taken" in taken.stderr


def test_new_strategy_without_strategy_dirs_fails_check_config(tmp_path: Path, elsewhere: Path) -> None:
    config = paper_config(tmp_path)
    new_strategy(config, elsewhere)
    config.write_text(config.read_text().replace("[daemon]\n", "[daemon]\nstrategy_dirs = []\n", 1))
    checked = aaiti("check-config", str(config), cwd=elsewhere)
    assert checked.returncode == 2
    assert "cannot import module 'my_breakout'" in checked.stderr


def test_backtest_runs_a_strategy_from_the_config_dirs(tmp_path: Path, elsewhere: Path) -> None:
    config = paper_config(tmp_path)
    new_strategy(config, elsewhere)
    out = tmp_path / "report"
    ran = aaiti("backtest", "--config", str(config), "--from", "2019-10-12", "--to", "2019-10-12T12:00",
                "--out", str(out), cwd=elsewhere, timeout=300)
    assert ran.returncode == 0, ran.stderr
    result = json.loads((out / "result.json").read_text())
    assert "my_breakout" in json.dumps(result["per_strategy"])


class Daemon:
    """``aaiti run`` from ``cwd``; its JSON lines read in a thread."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.proc = subprocess.Popen([str(AAITI), "run", "--config", str(config)], cwd=cwd, env=child_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[dict[str, Any]] = []
        self._q: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            rec = json.loads(line)  # stdout is a pipe: [log] format = "auto" writes JSON
            self.lines.append(rec)
            self._q.put(rec)

    def wait_for(self, event: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout  # a safety net for a hung child, not a performance bound
        while time.monotonic() < deadline:
            try:
                rec = self._q.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if rec.get("event") == event and all(rec.get(k) == v for k, v in match.items()):
                return rec
        raise AssertionError(f"no {event} {match}; last lines: {self.lines[-10:]}")


def test_run_and_reload_a_strategy_from_the_config_dirs_with_summaries(tmp_path: Path, elsewhere: Path) -> None:
    config = paper_config(tmp_path, speed=3000, extra="summary_interval_s = 0.2\n")
    new_strategy(config, elsewhere)
    daemon = Daemon(config, elsewhere)
    try:
        ready = daemon.wait_for("daemon.ready")
        assert "my_breakout" in ready["strategies"]
        summary = daemon.wait_for("daemon.summary")
        assert summary["level"] == "info" and summary["equity_asset"] == "ETH"
        assert {"equity", "pnl", "open_orders", "orders", "fills", "denials"} <= set(summary)
        config.write_text(config.read_text().replace("lookback = 20", "lookback = 30"))
        daemon.proc.send_signal(signal.SIGHUP)
        reloaded = daemon.wait_for("config.reload")
        assert reloaded["result"] == "applied" and reloaded["changed"] == ["strategies[3].params"]
        daemon.proc.send_signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=60) == 0
        final = daemon.wait_for("daemon.final_summary")
        assert final["orders"] >= 0 and final["trading_state"] in ("ACTIVE", "REDUCING", "HALTED")
        assert not any(r["event"] == "feed.bar" for r in daemon.lines)  # per-bar lines are debug now
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(timeout=10)


def test_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` that has already gone
    try:
        proc = subprocess.run([str(AAITI), "check-config", str(REPO / "aaiti.toml")], cwd=tmp_path, env=child_env(),
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 128 + signal.SIGPIPE
