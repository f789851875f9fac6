"""``aaiti data download`` as a child process against the Binance simulator serving recorded history.

The simulator runs in the test's event loop on 127.0.0.1; the CLI talks to it through the
unchanged ccxt client (``--base-url``). The written files must pass the strict readers and
equal the simulator's source files over the range.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.binance_sim import BinanceSimulator, HistoryFile, MarketSourceConfig, SimulatorConfig
from adapters.market_data.csv_reader import read_candles, read_trades

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data" / "market"
CANDLES_1M = DATA / "binance_XRP-ETH_1m_2019-10.csv.gz"
TAPE = DATA / "binance_XRP-ETH_trades_2019-10.csv.gz"
SINCE, UNTIL = "2019-10-11", "2019-10-14"
SINCE_MS, UNTIL_MS = 1_570_752_000_000, 1_571_011_200_000
STATIC = SimulatorConfig(market=MarketSourceConfig(kind="static", history_minutes=0))

# Small recorded files with holes: 1m candles 00:00..00:09 without 00:03, 00:04 and 00:08;
# trades 1..12 without ids 5, 6 and 10.
GAP_T0 = 1_600_000_200_000 - 1_600_000_200_000 % 60_000
GAP_CANDLE_MINUTES = [0, 1, 2, 5, 6, 7, 9]
GAP_TRADE_IDS = [1, 2, 3, 4, 7, 8, 9, 11, 12]


def _write_gz(path: Path, text: str) -> Path:
    path.write_bytes(gzip.compress(text.encode()))
    return path


def _gap_files(tmp: Path) -> tuple[Path, Path]:
    candles = "ts_ms,open,high,low,close,volume\n" + "".join(
        f"{GAP_T0 + m * 60_000},1.5,2,1,1.25,{m + 1}\n" for m in GAP_CANDLE_MINUTES
    )
    trades = "ts_ms,trade_id,side,price,amount,cost\n" + "".join(
        f"{GAP_T0 + i * 1000},{i},{'buy' if i % 2 else 'sell'},0.5,2,1\n" for i in GAP_TRADE_IDS
    )
    return _write_gz(tmp / "gap_1m.csv.gz", candles), _write_gz(tmp / "gap_trades.csv.gz", trades)


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[BinanceSimulator]:
    """A static simulator serving the bundled XRPETH history and small gappy BTCUSDT files."""
    gap_candles, gap_trades = _gap_files(tmp_path)
    config = dataclasses.replace(
        STATIC,
        history=(
            HistoryFile("XRPETH", "1m", str(CANDLES_1M)),
            HistoryFile("XRPETH", "trades", str(TAPE)),
            HistoryFile("BTCUSDT", "1m", str(gap_candles)),
            HistoryFile("BTCUSDT", "trades", str(gap_trades)),
        ),
    )
    simulator = BinanceSimulator(config)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def aaiti(*argv: str) -> tuple[int, str, str]:
    """Run ``aaiti`` as a child process (the simulator keeps serving in this loop meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "daemon.cli", *argv, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def download(sim: BinanceSimulator, out: Path, *what: str, since: str = SINCE, until: str = UNTIL,
                   symbol: str = "XRP/ETH") -> dict[str, object]:
    code, stdout, stderr = await aaiti(
        "data", "download", "--exchange", "binance", "--symbol", symbol, *what, "--since", since,
        "--until", until, "--base-url", sim.base_url, "--out", str(out), "--json",
    )
    assert code == 0, stderr
    report: dict[str, object] = json.loads(stdout)
    return report


def _truncate(path: Path, rows: int) -> None:
    lines = gzip.decompress(path.read_bytes()).decode().splitlines(keepends=True)
    path.write_bytes(gzip.compress("".join(lines[:-rows]).encode()))


async def test_candles_equal_the_source_and_resume_without_duplicates(sim: BinanceSimulator, tmp_path: Path) -> None:
    source = read_candles(CANDLES_1M, "1m", 60_000).rows
    expected = [r for r in source if SINCE_MS <= r.ts_ms < UNTIL_MS]
    out = tmp_path / "out"
    # --limit 500 makes the 2469 candles take several pages.
    report = await download(sim, out, "--timeframe", "1m", "--limit", "500")
    path = out / "binance_XRP-ETH_1m.csv.gz"
    assert report["path"] == str(path) and report["written"] == len(expected) and report["resumed_after"] is None
    written = read_candles(path, "1m", 60_000)
    assert list(written.rows) == expected
    assert written.report.duplicates_skipped == written.report.out_of_order == 0

    _truncate(path, 300)
    assert len(read_candles(path, "1m", 60_000).rows) == len(expected) - 300
    report = await download(sim, out, "--timeframe", "1m", "--limit", "500")
    assert report["written"] == 300
    assert report["resumed_after"] == expected[-301].ts_ms
    again = read_candles(path, "1m", 60_000)
    assert list(again.rows) == expected
    assert again.report.rows == len(expected)  # no duplicate rows were appended

    # A third run has nothing to add.
    report = await download(sim, out, "--timeframe", "1m")
    assert report["written"] == 0 and report["rows_in_range"] == len(expected)


async def test_trades_equal_the_source_and_resume_without_duplicates(sim: BinanceSimulator, tmp_path: Path) -> None:
    expected = list(read_trades(TAPE).rows)
    out = tmp_path / "out"
    report = await download(sim, out, "--trades")
    path = out / "binance_XRP-ETH_trades.csv.gz"
    assert report["written"] == len(expected) and report["missing"] == 0 and report["gaps"] == []
    written = read_trades(path)
    assert list(written.rows) == expected
    assert gzip.decompress(path.read_bytes()) == gzip.decompress(TAPE.read_bytes())

    _truncate(path, 1500)
    report = await download(sim, out, "--trades")
    assert report["written"] == 1500 and report["resumed_after"] == expected[-1501].trade_id
    again = read_trades(path)
    assert list(again.rows) == expected
    assert again.report.rows == len(expected) and again.report.duplicates_skipped == 0


async def test_a_sub_range_is_cut_at_since_and_until(sim: BinanceSimulator, tmp_path: Path) -> None:
    since_ms, until_ms = 1_570_800_000_000, 1_570_803_600_000  # 2019-10-11 13:20 .. 14:20 UTC
    out = tmp_path / "out"
    await download(sim, out, "--trades", since=str(since_ms), until=str(until_ms))
    await download(sim, out, "--timeframe", "1m", since=str(since_ms), until=str(until_ms))
    trades = read_trades(out / "binance_XRP-ETH_trades.csv.gz").rows
    assert list(trades) == [r for r in read_trades(TAPE).rows if since_ms <= r.ts_ms < until_ms]
    candles = read_candles(out / "binance_XRP-ETH_1m.csv.gz", "1m", 60_000).rows
    assert list(candles) == [r for r in read_candles(CANDLES_1M, "1m", 60_000).rows
                             if since_ms <= r.ts_ms < until_ms]


async def test_gaps_are_reported_not_filled(sim: BinanceSimulator, tmp_path: Path) -> None:
    out = tmp_path / "out"
    until = str(GAP_T0 + 10 * 60_000)
    report = await download(sim, out, "--timeframe", "1m", symbol="BTC/USDT", since=str(GAP_T0), until=until)
    assert report["written"] == len(GAP_CANDLE_MINUTES)
    assert report["missing"] == 3
    assert report["gaps"] == [
        {"first": GAP_T0 + 3 * 60_000, "last": GAP_T0 + 4 * 60_000, "missing": 2},
        {"first": GAP_T0 + 8 * 60_000, "last": GAP_T0 + 8 * 60_000, "missing": 1},
    ]
    rows = read_candles(out / "binance_BTC-USDT_1m.csv.gz", "1m", 60_000).rows
    assert [(r.ts_ms - GAP_T0) // 60_000 for r in rows] == GAP_CANDLE_MINUTES

    report = await download(sim, out, "--trades", symbol="BTC/USDT", since=str(GAP_T0), until=until)
    assert report["written"] == len(GAP_TRADE_IDS)
    assert report["missing"] == 3
    assert report["gaps"] == [{"first": 5, "last": 6, "missing": 2}, {"first": 10, "last": 10, "missing": 1}]

    # The text report names the count and the first ranges.
    code, stdout, _ = await aaiti("data", "download", "--exchange", "binance", "--symbol", "BTC/USDT", "--trades",
                                  "--since", str(GAP_T0), "--until", until, "--base-url", sim.base_url,
                                  "--out", str(out))
    assert code == 0
    assert "gaps: 3 missing trade ids in 2 range(s): 5..6 (2), 10..10 (1)" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exchange", "nosuchexchange", "--symbol", "XRP/ETH", "--timeframe", "1m"], "unknown ccxt exchange id"),
        (["--exchange", "binance", "--symbol", "NOPE/ETH", "--timeframe", "1m"], "unknown symbol"),
        (["--exchange", "binance", "--symbol", "XRP/ETH", "--timeframe", "7m"], "unknown timeframe"),
    ],
)
async def test_bad_exchange_symbol_or_timeframe_exit_2(
    sim: BinanceSimulator, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    code, _, stderr = await aaiti("data", "download", *args, "--since", SINCE, "--base-url", sim.base_url,
                                  "--out", str(out))
    assert code == 2, stderr
    assert message in stderr
    assert "Traceback" not in stderr
    assert not out.exists()


async def test_no_network_exits_8(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, stderr = await aaiti("data", "download", "--exchange", "binance", "--symbol", "XRP/ETH",
                                  "--timeframe", "1m", "--since", SINCE, "--retries", "2",
                                  "--base-url", f"http://127.0.0.1:{port}", "--out", str(tmp_path))
    assert code == 8, stderr
    assert "not reachable after 2 attempt(s)" in stderr


async def test_an_invalid_existing_file_is_not_appended_to(sim: BinanceSimulator, tmp_path: Path) -> None:
    path = tmp_path / "binance_XRP-ETH_1m.csv.gz"
    _write_gz(path, "ts_ms,open,high,low,close,volume\n1570752000000,1,2,1,1")  # cut off mid-line
    before = path.read_bytes()
    code, _, stderr = await aaiti("data", "download", "--exchange", "binance", "--symbol", "XRP/ETH",
                                  "--timeframe", "1m", "--since", SINCE, "--until", UNTIL,
                                  "--base-url", sim.base_url, "--out", str(tmp_path))
    assert code == 4, stderr
    assert "truncated file" in stderr
    assert path.read_bytes() == before
