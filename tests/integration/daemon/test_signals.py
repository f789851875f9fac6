"""Signals to a real ``aaiti run`` child process: orderly stop, forced stop."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon.daemon_process import DaemonProcess
from tests.integration.daemon.paper_state import paper_config


@pytest.fixture
def daemon_config(tmp_path: Path) -> Path:
    return paper_config(tmp_path)


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


def test_second_sigint_during_slow_stop_forces_exit_130(tmp_path: Path) -> None:
    # A 4 s venue acknowledgement keeps the order manager draining an in-flight order, so the
    # orderly stop is still running when the second signal arrives.
    config = paper_config(tmp_path, speed=3000)
    text = config.read_text().replace("slippage_bps = 2\n", "slippage_bps = 2\nack_delay_ms = 4000\n")
    text = text.replace("[daemon]\n", "[daemon]\norder_drain_timeout_s = 30\nstop_timeout_s = 60\n")
    config.write_text(text)
    proc = DaemonProcess(config)
    try:
        proc.wait_for_event("order.submitted", timeout=60)
        proc.proc.send_signal(signal.SIGINT)
        proc.wait_for_event("daemon.stopping", timeout=10)
        t0 = time.monotonic()
        proc.proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
        assert code == 128 + signal.SIGINT
        assert time.monotonic() - t0 < 3.5, "forced exit should not wait for the drain"
        assert any(r.get("event") == "shutdown.forced" for r in proc.lines)
    finally:
        proc.kill()
