"""Start-up and supervision failures of a real ``aaiti`` child process: clear messages, documented codes."""

from __future__ import annotations

import gzip
import signal
from pathlib import Path

from daemon import exit_codes
from tests.integration.daemon.daemon_process import DaemonProcess
from tests.integration.daemon.paper_state import paper_config


def run_to_exit(config: Path, timeout: float = 60) -> DaemonProcess:
    proc = DaemonProcess(config)
    try:
        proc.wait(timeout=timeout)
    finally:
        proc.kill()
    return proc


def test_strategy_failing_beyond_restart_intensity_exits_3(tmp_path: Path) -> None:
    config = paper_config(tmp_path, speed=3000)
    text = config.read_text()
    text = text.replace("[log]\n", "[supervisor]\nmax_restarts = 1\nperiod_s = 60\nrestart_delay_s = 0\n\n[log]\n")
    text += (
        "\n[[strategies]]\nname = \"crasher\"\n"
        "strategy = \"tests.integration.daemon.crashing_strategy:AlwaysCrash\"\n"
        "symbols = [\"XRP/ETH\"]\ntimeframe = \"1m\"\n"
    )
    config.write_text(text)
    proc = run_to_exit(config)
    assert proc.proc.returncode == exit_codes.SUPERVISOR_GAVE_UP
    events = [r.get("event") for r in proc.lines]
    assert "child.failed" in events
    assert "supervisor.root_gave_up" in events
    assert events[-1] == "daemon.stopped"


def test_corrupt_state_database_exits_4_with_one_clear_line(tmp_path: Path) -> None:
    config = paper_config(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    (state / "aaiti-paper-paper.db").write_bytes(b"this is not a database" * 100)
    proc = run_to_exit(config)
    assert proc.proc.returncode == exit_codes.STATE_ERROR
    err = proc.stderr()
    assert "aaiti-paper-paper.db" in err and "Traceback" not in err
    assert any(r.get("event") == "daemon.startup_failed" for r in proc.lines)


def test_zero_byte_state_database_exits_4_and_is_not_started_fresh(tmp_path: Path) -> None:
    config = paper_config(tmp_path)
    state = tmp_path / "state"
    state.mkdir()
    db = state / "aaiti-paper-paper.db"
    db.write_bytes(b"")  # truncate -s 0 of an existing account
    proc = run_to_exit(config)
    assert proc.proc.returncode == exit_codes.STATE_ERROR
    err = proc.stderr()
    lines = [line for line in err.splitlines() if "aaiti-paper-paper.db" in line]
    assert len(lines) == 1 and "empty" in lines[0] and "Traceback" not in err
    assert db.stat().st_size == 0
    events = [r.get("event") for r in proc.lines]
    assert "daemon.ready" not in events and "store.opened" not in events


def test_malformed_data_file_exits_4_naming_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "tape.csv.gz"
    with gzip.open(data, "wt") as f:
        f.write("ts_ms,trade_id,side,price,amount,cost\n1570752011620,1,sell,0.00141342,23,0.03250866\n")
        f.write("1570752011621,2,sell,not-a-price,23,0.03\n")
    config = paper_config(tmp_path)
    text = config.read_text()
    text = text.replace('path = "', f'path = "{data}"\n# was: "', 1)
    config.write_text(text)
    proc = run_to_exit(config)
    assert proc.proc.returncode == exit_codes.STATE_ERROR
    err = proc.stderr()
    assert f"{data}:3: price" in err and "Traceback" not in err


def test_state_database_in_use_by_another_daemon_exits_4(tmp_path: Path) -> None:
    config = paper_config(tmp_path)
    first = DaemonProcess(config)
    try:
        first.wait_for_event("daemon.ready", timeout=30)
        second = run_to_exit(config)
        assert second.proc.returncode == exit_codes.STATE_ERROR
        err = second.stderr()
        assert "lock" in err.lower()
        assert f"pid {first.proc.pid}" in err and "move it aside" not in err
        first.proc.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    finally:
        first.kill()
