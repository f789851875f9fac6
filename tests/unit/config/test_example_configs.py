"""The example configs in config/examples pass ``aaiti check-config`` and say what they claim."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from config.loader import load_config

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "config" / "examples"
NAMES = ("binance-sim.toml", "binance-paper.toml", "binance-live.toml")


@pytest.mark.parametrize("name", NAMES)
def test_example_config_passes_check_config(name: str) -> None:
    path = EXAMPLES / name
    result = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "check-config", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stderr


def test_binance_sim_example_runs_ccxt_venue_against_local_simulator() -> None:
    cfg = load_config(EXAMPLES / "binance-sim.toml").config
    assert cfg.venue.kind == "ccxt" and cfg.feed.source == "ccxt"
    assert cfg.venue.ccxt.start_simulator
    assert cfg.venue.ccxt.base_url.startswith(("http://127.0.0.1:", "http://localhost:"))
    assert cfg.venue.ccxt.base_url.endswith(f":{cfg.venue.ccxt.simulator_port}")


def test_binance_paper_example_takes_ccxt_data_and_paper_fills() -> None:
    cfg = load_config(EXAMPLES / "binance-paper.toml").config
    assert cfg.feed.source == "ccxt" and cfg.venue.kind == "paper" and cfg.daemon.mode == "paper"
    assert set(cfg.feed.symbols) <= set(cfg.instruments)


@pytest.mark.parametrize("name", NAMES)
def test_example_config_holds_no_credentials(name: str) -> None:
    table = tomllib.loads((EXAMPLES / name).read_text())
    ccxt = table.get("venue", {}).get("ccxt", {})
    assert not ccxt.get("api_key") and not ccxt.get("secret")
    cfg = load_config(EXAMPLES / name).config
    assert cfg.venue.ccxt.api_key == "" and cfg.venue.ccxt.secret == ""


def test_binance_live_example_is_live_against_the_real_exchange() -> None:
    cfg = load_config(EXAMPLES / "binance-live.toml").config
    assert cfg.daemon.mode == "live" and cfg.venue.kind == "ccxt"
    assert cfg.venue.ccxt.base_url == "" and not cfg.venue.ccxt.start_simulator
