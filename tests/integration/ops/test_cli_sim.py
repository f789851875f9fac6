"""``aaiti sim`` forwards every option to the simulator's own CLI (real child processes on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from adapters.binance_sim.__main__ import parse_args

ROOT = Path(__file__).resolve().parents[3]


def aaiti(*argv: str) -> list[str]:
    return [sys.executable, "-m", "daemon.cli", *argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sim_help_prints_the_simulators_help_0() -> None:
    proc = subprocess.run(aaiti("sim", "--help"), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for flag in ("--port", "--market", "--tick-ms", "--replay-path", "--symbols", "--ws-drop-interval-s"):
        assert flag in proc.stdout, flag
    assert "unrecognized" not in proc.stderr


def test_sim_bad_option_2_from_the_simulators_parser() -> None:
    proc = subprocess.run(aaiti("sim", "--market", "nope"), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--market" in proc.stderr and "invalid choice" in proc.stderr


def test_sim_port_serves_there_until_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen(
        aaiti("sim", "--port", str(port), "--market", "static", "--symbols", "BTCUSDT", "--tick-ms", "50"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the simulator announces itself (or exits)
        assert line.strip() == f"LISTENING http://127.0.0.1:{port}", (line, proc.poll())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v3/exchangeInfo", timeout=10) as resp:
            info = json.loads(resp.read())
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]  # --symbols reached the simulator
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code in (0, -signal.SIGTERM), proc.stderr.read() if proc.stderr else ""


def test_every_simulator_option_is_forwarded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each flag of the simulator's parser, given through ``aaiti sim``, arrives unchanged and in order."""
    import adapters.binance_sim.__main__ as sim_cli
    from daemon.cli import main

    argv = ["--host", "127.0.0.2", "--port", "0", "--seed", "9", "--market", "replay", "--tick-ms", "5",
            "--trades-per-tick", "3", "--replay-path", "x.csv", "--replay-symbol", "ETHUSDT", "--replay-speed", "0",
            "--order-limit-10s", "7", "--weight-limit", "70", "--ticker-ms", "9", "--ws-queue-max", "11",
            "--symbols", "ETHUSDT", "--ws-drop-interval-s", "2.5", "--history", "ETHUSDT:1m:x.csv"]
    documented = {a for action in _sim_parser_actions() for a in action}
    assert documented - {"-h", "--help"} == {a for a in argv if a.startswith("--")}  # every option covered
    seen: list[list[str] | None] = []
    monkeypatch.setattr(sim_cli, "main", lambda args=None: seen.append(args) or 0)
    assert main(["sim", *argv]) == 0
    assert seen == [argv]
    assert parse_args(argv).port == 0 and parse_args(argv).market.kind == "replay"
    assert [(h.symbol, h.kind, h.path) for h in parse_args(argv).history] == [("ETHUSDT", "1m", "x.csv")]


def _sim_parser_actions() -> list[list[str]]:
    """The option strings of the simulator's parser (captured from argparse while it parses)."""
    import argparse

    captured: list[list[str]] = []
    original = argparse.ArgumentParser.parse_args

    def spy(self: argparse.ArgumentParser, *a: object, **kw: object) -> object:
        captured.extend(list(act.option_strings) for act in self._actions if act.option_strings)
        return original(self, *a, **kw)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", spy)
        parse_args([])
    return captured
