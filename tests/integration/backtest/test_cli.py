"""``aaiti backtest`` as a real child process: the bundled data, the files, determinism, error exits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.daemon.daemon_process import REPO
from tests.integration.daemon.paper_state import paper_config

CRASHING = "tests.integration.daemon.crashing_strategy:AlwaysCrash"


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``aaiti backtest ARGS`` to its end (it ends by itself: no signal is ever sent)."""
    return subprocess.run([sys.executable, "-m", "daemon.cli", "backtest", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def edited(tmp: Path, old: str, new: str, append: str = "") -> Path:
    """``paper_config`` in ``tmp`` (created) with one text replacement and an addition."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = paper_config(tmp)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1) + append)
    return path


def test_bundled_config_runs_to_the_end_prints_the_table_and_writes_the_files(tmp_path: Path) -> None:
    out = backtest("--config", "aaiti.toml", "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Backtest of {REPO / 'aaiti.toml'}\n")
    for line in ("  activity ", "  strategy ", "  ema_cross ", "  momentum ", "  mean_revert ", "  TOTAL "):
        assert line in out.stdout
    for name in ("result.json", "trades.csv", "report.html"):
        assert (tmp_path / "out" / name).is_file()
        assert f"wrote {tmp_path / 'out' / name}" in out.stdout
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["schema"] == "aaiti.backtest/1"
    assert result["summary"]["trades"] > 0 and result["summary"]["strategy_errors"] == []
    trades_csv = (tmp_path / "out" / "trades.csv").read_text().splitlines()
    assert len(trades_csv) == 1 + result["summary"]["trades"]
    # Quiet: no per-bar INFO lines, only warnings/errors and the one line of the finished run.
    logged = [json.loads(line) for line in out.stderr.splitlines()]
    assert [r["event"] for r in logged if r["level"] == "info"] == ["backtest.finished"]
    assert not any(r["event"] == "feed.bar" for r in logged)


def test_two_runs_write_byte_identical_files_and_the_default_out_dir_is_named_by_the_window(tmp_path: Path) -> None:
    config = paper_config(tmp_path)
    first = backtest("--config", str(config))
    assert first.returncode == 0, first.stderr
    default = tmp_path / "backtests" / "aaiti-20191011-20191014"
    second = backtest("--config", str(config), "--out", str(tmp_path / "again"))
    assert second.returncode == 0, second.stderr
    for name in ("result.json", "trades.csv", "report.html"):
        assert (default / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    assert first.stdout.replace(str(default), "X") == second.stdout.replace(str(tmp_path / "again"), "X")


def test_a_window_cuts_the_data(tmp_path: Path) -> None:
    out = backtest("--config", str(paper_config(tmp_path)), "--from", "2019-10-12", "--to", "2019-10-12T12:00",
                   "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    lo, hi = 1570838400000, 1570838400000 + 12 * 3_600_000
    assert (result["manifest"]["from_ms"], result["manifest"]["to_ms"]) == (lo, hi)
    bars = result["candles"]["XRP/ETH"]["bars"]
    assert bars and all(lo <= b[0] < hi for b in bars)
    assert result["fills"] and all(lo <= f["ts_ms"] < hi for f in result["fills"])


def test_error_exits(tmp_path: Path) -> None:
    config = paper_config(tmp_path)
    empty = backtest("--config", str(config), "--from", "2030-01-01")
    assert empty.returncode == 2 and "no market data in the window" in empty.stderr
    bad_date = backtest("--config", str(config), "--to", "yesterday")
    assert bad_date.returncode == 2 and "'yesterday' is not a date" in bad_date.stderr
    inverted = backtest("--config", str(config), "--from", "2019-10-12", "--to", "2019-10-11")
    assert inverted.returncode == 2 and "empty window" in inverted.stderr

    eth_btc = '\n[instruments."ETH/BTC"]\nbase = "ETH"\nquote = "BTC"\n'
    feed_symbols = 'symbols = ["XRP/ETH"]\ntimeframes'
    two = edited(tmp_path / "symbol", feed_symbols, feed_symbols.replace('"]', '", "ETH/BTC"]'), eth_btc)
    missing = backtest("--config", str(two))
    assert missing.returncode == 2 and "ETH/BTC not in the data" in missing.stderr, missing.stderr

    nope = edited(tmp_path / "strategy", '"actors.strategies.ema_cross:EmaCross"', '"actors.strategies.nope:Nope"')
    unloadable = backtest("--config", str(nope))
    assert unloadable.returncode == 2 and "strategies[0].strategy" in unloadable.stderr, unloadable.stderr

    (tmp_path / "bad.csv").write_text("this is not a trade tape\n1,2\n")
    bad = edited(tmp_path / "data", f'path = "{REPO}/data/market/binance_XRP-ETH_trades_2019-10.csv.gz"',
                 f'path = "{tmp_path / "bad.csv"}"')
    unusable = backtest("--config", str(bad))
    assert unusable.returncode == 4 and "market data file unusable" in unusable.stderr, unusable.stderr
    assert str(tmp_path / "bad.csv") in unusable.stderr

    invalid = backtest("--config", str(tmp_path / "missing.toml"))
    assert invalid.returncode == 2 and "file not found" in invalid.stderr


def test_a_strategy_the_supervisor_gives_up_on_is_reported_and_exits_3(tmp_path: Path) -> None:
    # No restarts allowed: the first exception makes the tree give up, as the daemon would.
    config = edited(tmp_path, "[reconciler]\n", "[supervisor]\nmax_restarts = 0\n\n[reconciler]\n",
                    f'\n[[strategies]]\nname = "crasher"\nstrategy = "{CRASHING}"\nsymbols = ["XRP/ETH"]\n'
                    'timeframe = "1m"\n')
    out = backtest("--config", str(config), "--out", str(tmp_path / "out"))
    assert out.returncode == 3, out.stderr
    assert "STRATEGY ERRORS" in out.stdout
    assert "crasher: strategy 'crasher': on_bar (XRP/ETH) raised: RuntimeError('deliberate failure" in out.stdout
    assert "the supervisor gave up" in out.stdout
    summary = json.loads((tmp_path / "out" / "result.json").read_text())["summary"]
    assert [(e["strategy"], e["restarts"]) for e in summary["strategy_errors"]] == [("crasher", 0)]
    assert "deliberate failure" in summary["strategy_errors"][0]["error"]
    assert summary["gave_up"]
