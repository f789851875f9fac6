"""Signals to a real ``aaiti run`` child process: orderly stop, forced stop."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon.daemon_process import DaemonProcess


@pytest.fixture
def daemon_config(tmp_path: Path) -> Path:
    path = tmp_path / "aaiti.toml"
    path.write_text(f"[daemon]\nstate_dir = '{tmp_path / 'state'}'\n[admin]\nport = 0\n")
    return path


@pytest.fixture
def daemon(daemon_config: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess(daemon_config)
    yield proc
    proc.kill()


def test_sigterm_stops_cleanly_with_exit_0_within_5s(daemon: DaemonProcess) -> None:
    daemon.wait_for_event("daemon.ready")
    t0 = time.monotonic()
    daemon.proc.send_signal(signal.SIGTERM)
    code = daemon.wait(timeout=10)
    elapsed = time.monotonic() - t0
    assert code == 0
    assert elapsed < 5, f"orderly stop took {elapsed:.1f}s"
    events = [r.get("event") for r in daemon.lines]
    assert "shutdown.requested" in events and events[-1] == "daemon.stopped"
    bad = [r for r in daemon.lines if r.get("level") in ("error", "critical") or r.get("event") == "<non-json>"]
    assert bad == []
    err = daemon.stderr()
    for marker in ("Task was destroyed", "Unclosed", "Traceback", "never awaited"):
        assert marker not in err


def test_sigint_stops_cleanly_with_exit_0(daemon: DaemonProcess) -> None:
    daemon.wait_for_event("daemon.ready")
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.wait(timeout=10) == 0
