"""Rows written by ``aaiti data download`` are what the strict readers take."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.market_data.csv_reader import CANDLE_HEADER, TRADE_HEADER, CandleRow, TradeRow, read_candles, read_trades
from daemon.data.command import parse_time_ms
from daemon.data.files import append_lines, candle_line, data_file_name, plain_decimal, trade_line


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.00141342, "0.00141342"), (1e-05, "0.00001"), (23.0, "23"), (1.5e20, "150000000000000000000"),
     (0.1 + 0.2, "0.30000000000000004"), (0.0, "0")],
)
def test_plain_decimal_is_shortest_round_trip_without_exponent(value: float, text: str) -> None:
    assert plain_decimal(value) == text
    assert float(text) == value


def test_trade_cost_is_the_exact_product() -> None:
    assert trade_line(TradeRow(1, 7, "sell", 0.00141342, 23.0)) == "1,7,sell,0.00141342,23,0.03250866"
    assert trade_line(TradeRow(1, 8, "buy", 0.1, 3.0)) == "1,8,buy,0.1,3,0.3"


def test_file_names_follow_the_bundled_files() -> None:
    assert data_file_name("binance", "XRP/ETH", "1m") == "binance_XRP-ETH_1m.csv.gz"
    assert data_file_name("binance", "XRP/ETH", "trades", gz=False) == "binance_XRP-ETH_trades.csv"
    assert data_file_name("bybit", "BTC/USDT:USDT", "5m") == "bybit_BTC-USDT_5m.csv.gz"


@pytest.mark.parametrize("name", ["c.csv", "c.csv.gz"])
def test_appended_batches_read_back_strictly(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    rows = [CandleRow(i * 60_000, 1.5, 2.0, 1.0, 1.25, float(i)) for i in range(6)]
    append_lines(path, CANDLE_HEADER, [candle_line(r) for r in rows[:2]])
    append_lines(path, CANDLE_HEADER, [])  # an empty batch writes nothing
    append_lines(path, CANDLE_HEADER, [candle_line(r) for r in rows[2:]])
    series = read_candles(path, "1m", 60_000)
    assert list(series.rows) == rows
    assert series.report.rows == 6


def test_appended_trades_read_back_strictly(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    rows = [TradeRow(1000 + i, i, "buy" if i % 2 else "sell", 0.00141342 + i * 1e-8, 10.0 + i) for i in range(5)]
    for row in rows:
        append_lines(path, TRADE_HEADER, [trade_line(row)])
    assert list(read_trades(path).rows) == rows


@pytest.mark.parametrize(
    ("text", "ms"),
    [("2019-10-11", 1_570_752_000_000), ("2019-10-11T00:01", 1_570_752_060_000),
     ("2019-10-11T00:00:00Z", 1_570_752_000_000), ("2019-10-11T02:00:00+02:00", 1_570_752_000_000),
     ("1570752000000", 1_570_752_000_000)],
)
def test_dates(text: str, ms: int) -> None:
    assert parse_time_ms(text) == ms


def test_bad_date() -> None:
    with pytest.raises(ValueError):
        parse_time_ms("yesterday")
