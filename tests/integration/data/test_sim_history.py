"""The simulator's history endpoints (klines, aggTrades, historicalTrades) through the unchanged ccxt client."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import ccxt.async_support as ccxt_async
import pytest

from adapters.binance_sim import BinanceSimulator, HistoryFile, MarketSourceConfig, SimulatorConfig
from adapters.market_data.csv_reader import read_candles, read_trades

DATA = Path(__file__).resolve().parents[3] / "data" / "market"
CANDLES_1M = read_candles(DATA / "binance_XRP-ETH_1m_2019-10.csv.gz", "1m", 60_000).rows
CANDLES_5M = read_candles(DATA / "binance_XRP-ETH_5m_2019-10.csv.gz", "5m", 300_000).rows
TRADES = read_trades(DATA / "binance_XRP-ETH_trades_2019-10.csv.gz").rows
HOUR = 3_600_000


@pytest.fixture
async def ex() -> AsyncIterator[Any]:
    """A ccxt binance client on a simulator serving the bundled XRPETH 1m candles and trades."""
    config = dataclasses.replace(
        SimulatorConfig(market=MarketSourceConfig(kind="static", history_minutes=0)),
        history=(
            HistoryFile("XRPETH", "1m", str(DATA / "binance_XRP-ETH_1m_2019-10.csv.gz")),
            HistoryFile("XRPETH", "trades", str(DATA / "binance_XRP-ETH_trades_2019-10.csv.gz")),
        ),
    )
    sim = BinanceSimulator(config)
    await sim.start()
    client = ccxt_async.binance(sim.ccxt_config(enable_rate_limit=False))
    client.timeout_on_exit = 0
    try:
        await client.load_markets()
        yield client
    finally:
        await client.close()
        await sim.stop()


def _ohlcv(rows: Any) -> list[list[float]]:
    return [[r.ts_ms, r.open, r.high, r.low, r.close, r.volume] for r in rows]


async def test_klines_from_start_time_are_capped_at_1000(ex: Any) -> None:
    got = await ex.publicGetKlines({"symbol": "XRPETH", "interval": "1m", "startTime": CANDLES_1M[0].ts_ms,
                                    "limit": 5000})
    assert len(got) == 1000
    assert [int(k[0]) for k in got] == [r.ts_ms for r in CANDLES_1M[:1000]]
    assert int(got[0][6]) == CANDLES_1M[0].ts_ms + 59_999  # close time


async def test_fetch_ohlcv_pages_like_binance(ex: Any) -> None:
    since = CANDLES_1M[10].ts_ms + 1  # mid-candle: the first candle opening at or after it
    got = await ex.fetch_ohlcv("XRP/ETH", "1m", since=since, limit=20)
    assert got == _ohlcv(CANDLES_1M[11:31])
    # endTime bounds the window (inclusive open time).
    until = CANDLES_1M[15].ts_ms
    got = await ex.fetch_ohlcv("XRP/ETH", "1m", since=since, limit=20, params={"until": until})
    assert got == _ohlcv(CANDLES_1M[11:16])


async def test_klines_without_start_are_the_last_ones(ex: Any) -> None:
    assert await ex.fetch_ohlcv("XRP/ETH", "1m", limit=3) == _ohlcv(CANDLES_1M[-3:])
    end = CANDLES_1M[100].ts_ms
    got = await ex.publicGetKlines({"symbol": "XRPETH", "interval": "1m", "endTime": end, "limit": 4})
    assert [int(k[0]) for k in got] == [r.ts_ms for r in CANDLES_1M[97:101]]


async def test_5m_klines_aggregated_from_the_1m_recording_equal_binance_5m(ex: Any) -> None:
    got = await ex.fetch_ohlcv("XRP/ETH", "5m", since=CANDLES_5M[0].ts_ms, limit=1000)
    assert got == _ohlcv(CANDLES_5M)


async def test_agg_trades_by_time_window_and_from_id(ex: Any) -> None:
    since = TRADES[0].ts_ms
    got = await ex.fetch_trades("XRP/ETH", since=since, limit=50)  # ccxt asks [since, since + 1 h]
    assert [(t["timestamp"], int(t["id"]), t["side"], t["price"], t["amount"]) for t in got] == [
        (r.ts_ms, r.trade_id, r.side, r.price, r.size) for r in TRADES[:50]
    ]
    nxt = await ex.fetch_trades("XRP/ETH", limit=50, params={"fromId": TRADES[50].trade_id})
    assert [int(t["id"]) for t in nxt] == [r.trade_id for r in TRADES[50:100]]
    # Default limit without parameters: the most recent 500.
    recent = await ex.publicGetAggTrades({"symbol": "XRPETH"})
    assert [int(t["a"]) for t in recent] == [r.trade_id for r in TRADES[-500:]]


async def test_agg_trades_window_is_at_most_one_hour_and_from_id_excludes_it(ex: Any) -> None:
    start = TRADES[0].ts_ms
    window = await ex.publicGetAggTrades({"symbol": "XRPETH", "startTime": start, "endTime": start + HOUR,
                                          "limit": 1000})
    assert all(start <= int(t["T"]) <= start + HOUR for t in window)
    with pytest.raises(ccxt_async.BadRequest, match="-1127"):
        await ex.publicGetAggTrades({"symbol": "XRPETH", "startTime": start, "endTime": start + HOUR + 1})
    with pytest.raises(ccxt_async.BadRequest, match="-1128"):
        await ex.publicGetAggTrades({"symbol": "XRPETH", "startTime": start, "fromId": TRADES[0].trade_id})


async def test_historical_trades_from_id(ex: Any) -> None:
    got = await ex.fetch_trades("XRP/ETH", limit=5, params={"fetchTradesMethod": "publicGetHistoricalTrades",
                                                            "fromId": TRADES[7].trade_id})
    assert [int(t["id"]) for t in got] == [r.trade_id for r in TRADES[7:12]]
