"""``aaiti backtest --check-lookahead``: a planted strategy that reads the future is caught, the built-ins pass."""

from __future__ import annotations

import json
import re
from pathlib import Path

from config.loader import load_config
from daemon.backtest.lookahead import LOOKAHEAD_FOUND, check_lookahead, collect_signals
from daemon.backtest.runner import run_backtest
from daemon.backtest.time_range import parse_bound
from tests.integration.backtest.test_cli import backtest
from tests.integration.daemon.daemon_process import REPO
from tests.integration.daemon.paper_state import paper_config

DATA = REPO / "data" / "market" / "binance_XRP-ETH_trades_2019-10.csv.gz"
PEEKING = "tests.integration.backtest.peeking_strategy:PeekingStrategy"
# Twelve hours of the bundled tape: every built-in trades in it and MAX_POSITION denies some intents.
FROM, TO = "2019-10-11", "2019-10-11T12:00"

STOCH = """
[[strategies]]
name = "stoch_trend"
strategy = "actors.strategies.stochrsi_trend:StochRsiTrend"
symbols = ["XRP/ETH"]
timeframe = "1m"
params = { trend_period = 20, size = "300" }
"""

PEEKER = f"""
[[strategies]]
name = "peeker"
strategy = "{PEEKING}"
symbols = ["XRP/ETH"]
timeframe = "1m"
params = {{ data = "{DATA}", horizon_min = 30, size = "100" }}
"""


def _config(tmp: Path, append: str) -> Path:
    """The bundled config (EMA cross, RSI+MACD, Bollinger) in ``tmp`` plus ``append``."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = paper_config(tmp)
    path.write_text(path.read_text() + append)
    return path


async def test_the_four_built_in_strategies_decide_the_same_on_truncated_data(tmp_path: Path) -> None:
    loaded = load_config(_config(tmp_path, STOCH))
    start, end = parse_bound(FROM), parse_bound(TO)
    work = tmp_path / "work"
    work.mkdir()
    full = await run_backtest(loaded, start_ms=start, end_ms=end, workdir=work)
    signals = await collect_signals(full, work)
    assert set(signals) == {"ema_cross", "momentum", "mean_revert", "stoch_trend"}
    # Denied intents are signals too, and the window has some.
    assert any(s.kind == "denied" for sigs in signals.values() for s in sigs)

    report = await check_lookahead(loaded, full, signals, start_ms=start)

    assert len(report.cuts) == 5
    assert all(start < c.horizon_ms <= c.cut_ms < end for c in report.cuts)
    assert [(v.strategy, v.verdict, v.cuts) for v in report.strategies] == [
        ("ema_cross", "clean", 5), ("momentum", "clean", 5), ("mean_revert", "clean", 5), ("stoch_trend", "clean", 5),
    ]
    # Every strategy had decisions before some cut: the check compared something.
    assert all(v.signals > 0 for v in report.strategies)
    assert report.flagged == () and report.affected == () and report.notes == ()


def test_a_strategy_that_reads_the_data_file_ahead_is_flagged_and_result_json_is_unchanged(tmp_path: Path) -> None:
    config = _config(tmp_path, PEEKER)
    checked = backtest("--config", str(config), "--from", FROM, "--to", TO, "--out", str(tmp_path / "checked"),
                       "--check-lookahead")
    assert checked.returncode == LOOKAHEAD_FOUND, checked.stderr

    report = json.loads((tmp_path / "checked" / "lookahead.json").read_text())
    assert report["schema"] == "aaiti.lookahead/1"
    assert report["flagged"] == ["peeker"] and report["affected"] == []
    assert report["manifest"]["data_file_params"] == ["strategies.3.params.data"]
    verdicts = {s["strategy"]: s for s in report["strategies"]}
    assert {name: s["verdict"] for name, s in verdicts.items()} == {
        "ema_cross": "clean", "momentum": "clean", "mean_revert": "clean", "peeker": "lookahead"}
    diff = verdicts["peeker"]["first_difference"]
    assert diff["cut_ms"] in [c["cut_ms"] for c in report["cuts"]]
    assert diff["ts_ms"] < diff["horizon_ms"] <= diff["cut_ms"]
    # The full run traded on a price the truncated file no longer has (within 30 minutes of its end).
    assert diff["full"] is not None and diff["full"]["tag"].startswith("peek.")
    assert diff["full"] != diff["truncated"]

    out = checked.stdout
    assert "Lookahead check: 5 cut(s): " in out
    assert re.search(r"(?m)^  peeker +5 +\d+  LOOKAHEAD$", out)
    assert re.search(r"(?m)^  ema_cross +5 +\d+  clean$", out)
    assert "peeker: earlier decisions depend on later data; cut " in out
    assert "    full run:       " in out and "    truncated run:  " in out
    assert f"wrote {tmp_path / 'checked' / 'lookahead.json'}" in out

    # The check adds a file and leaves the run's own files byte for byte as without it; a run
    # without the check removes a lookahead.json left in its directory by an earlier check.
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    (plain_dir / "lookahead.json").write_bytes((tmp_path / "checked" / "lookahead.json").read_bytes())
    plain = backtest("--config", str(config), "--from", FROM, "--to", TO, "--out", str(plain_dir))
    assert plain.returncode == 0, plain.stderr
    assert "Lookahead" not in plain.stdout
    assert not (plain_dir / "lookahead.json").exists()
    for name in ("result.json", "trades.csv", "report.html"):
        assert (tmp_path / "checked" / name).read_bytes() == (plain_dir / name).read_bytes(), name
