"""Paper trading on live data: ccxt.pro market data (from the in-process simulator), paper fills."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

from tests.integration.daemon.daemon_process import REPO, DaemonProcess
from tests.integration.ops.daemon_harness import Api


def live_paper_config(tmp: Path) -> Path:
    text = (REPO / "config/examples/binance-paper.toml").read_text()
    text = re.sub(r"(?m)^state_dir = .*$", f"state_dir = '{tmp / 'state'}'", text)
    text = text.replace("[log]\n", "[admin]\nport = 0\n\n[log]\n", 1)
    # Never the internet in a test: the simulator starts in-process on an ephemeral port.
    text = text.replace("[venue.ccxt]", "[venue.ccxt]\nstart_simulator = true\nsimulator_port = 0", 1)
    path = tmp / "aaiti.toml"
    path.write_text(text)
    return path


def test_paper_venue_on_ccxt_market_data_goes_live_and_stops_cleanly(tmp_path: Path) -> None:
    proc = DaemonProcess(live_paper_config(tmp_path), extra_env={"AAITI_ADMIN_TOKEN": ""})
    try:
        proc.wait_for_event("simulator.started", timeout=60)
        listening = proc.wait_for_event("admin.listening", timeout=60)
        proc.wait_for_event("daemon.ready", timeout=60)
        api = Api(listening["port"], token=None)
        deadline = time.monotonic() + 60
        while True:  # market data arrives over the simulator's websocket streams
            status = api.ok("GET", "/status")
            if status["feed"]["live"] and status["feed"]["events"] > 0:
                break
            assert time.monotonic() < deadline, status["feed"]
            time.sleep(0.1)
        assert status["venue"] == {"kind": "paper", "name": "paper-binance"}
        assert status["feed"]["source"] == "ccxt"
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    assert [r for r in proc.lines if r.get("level") in ("error", "critical")] == []
    assert (tmp_path / "state" / "aaiti-paper-paper-binance.db").exists()
