"""BarBuilder / BarResampler: exchange candles reproduced from the tape; the late-print rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.bars import BarBuilder, BarResampler, exact_partials, parse_timeframe
from actors.model.market import Bar, Quote, Trade
from adapters.market_data.csv_reader import CandleRow, read_candles, read_trades

DATA = Path(__file__).resolve().parents[3] / "data" / "market"
TAPE = DATA / "binance_XRP-ETH_trades_2019-10.csv.gz"


def _ohlcv(bars: list[Bar]) -> list[tuple[int, float, float, float, float, float]]:
    return [(b.ts_ms, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def _rows(rows: tuple[CandleRow, ...]) -> list[tuple[int, float, float, float, float, float]]:
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _build(timeframe: str) -> list[Bar]:
    builder = BarBuilder("XRP/ETH", timeframe)
    out: list[Bar] = []
    for r in read_trades(TAPE).rows:
        out.extend(builder.update(r.ts_ms, r.price, r.size))
    out.extend(builder.flush_all())
    return out


@pytest.mark.parametrize(("timeframe", "ms"), [("1m", 60_000), ("5m", 300_000)])
def test_trade_tape_bars_equal_exchange_candles_row_for_row(timeframe: str, ms: int) -> None:
    exchange = read_candles(DATA / f"binance_XRP-ETH_{timeframe}_2019-10.csv.gz", timeframe, ms).rows
    built = _build(timeframe)
    assert len(built) == len(exchange)
    for got, want in zip(_ohlcv(built), _rows(exchange), strict=True):
        assert got == want  # exact: first/max/min/last price, exactly summed volume
    assert all(b.timeframe == timeframe and b.symbol == "XRP/ETH" and b.trades > 0 for b in built)


def test_exchange_1m_candles_resampled_to_5m_equal_exchange_5m_candles() -> None:
    one = read_candles(DATA / "binance_XRP-ETH_1m_2019-10.csv.gz", "1m", 60_000).rows
    five = read_candles(DATA / "binance_XRP-ETH_5m_2019-10.csv.gz", "5m", 300_000).rows
    rs = BarResampler("XRP/ETH", "1m", "5m")
    out: list[Bar] = []
    for r in one:
        bar = Bar(symbol="XRP/ETH", ts_ms=r.ts_ms, timeframe="1m", open=r.open, high=r.high, low=r.low,
                  close=r.close, volume=r.volume)
        out.extend(rs.on_bar(bar))
    out.extend(rs.flush_all())
    assert _ohlcv(out) == _rows(five)


def test_bar_closes_when_a_print_of_a_later_period_arrives() -> None:
    b = BarBuilder("X", "1m")
    assert b.update(1_000, 10.0, 1.0) == ()
    assert b.update(59_999, 11.0, 1.0) == ()
    (bar,) = b.update(60_000, 12.0, 1.0, recv_ns=77)
    assert (bar.ts_ms, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades) == (
        0, 10.0, 11.0, 10.0, 11.0, 2.0, 2)
    assert bar.recv_ns == 77  # carries the recv_ns of the event that closed it


def test_flush_by_time_closes_the_bar_whose_period_ended() -> None:
    b = BarBuilder("X", "1m")
    b.update(1_000, 10.0, 1.0)
    assert b.flush(59_999) == ()
    (bar,) = b.flush(60_000)
    assert bar.ts_ms == 0 and b.open_bars == 0


def test_late_print_without_grace_is_counted_and_dropped() -> None:
    b = BarBuilder("X", "1m", grace_ms=0)
    b.update(10_000, 10.0, 1.0)
    (closed,) = b.update(61_000, 11.0, 1.0)
    assert b.update(59_000, 99.0, 5.0) == ()  # belongs to the closed minute 0
    assert b.late_dropped == 1
    assert closed.close == 10.0 and closed.volume == 1.0


def test_late_print_within_grace_is_merged_by_timestamp() -> None:
    b = BarBuilder("X", "1m", grace_ms=30_000)
    b.update(10_000, 10.0, 1.0)
    assert b.update(61_000, 11.0, 1.0) == ()  # minute 0 stays open until 90_000
    assert b.update(59_000, 12.0, 2.0) == ()  # late but within grace: merged
    assert b.update(5_000, 9.0, 3.0) == ()  # earlier than the first print: becomes the open
    (bar,) = b.update(90_000, 11.5, 1.0)
    assert (bar.ts_ms, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades) == (
        0, 9.0, 12.0, 9.0, 12.0, 6.0, 3)
    assert b.late_dropped == 0


def test_late_print_beyond_grace_is_counted_and_dropped() -> None:
    b = BarBuilder("X", "1m", grace_ms=30_000)
    b.update(10_000, 10.0, 1.0)
    (bar,) = b.update(90_000, 11.0, 1.0)  # watermark reaches 60_000 + 30_000: minute 0 final
    assert bar.ts_ms == 0
    assert b.update(59_000, 12.0, 2.0) == ()
    assert b.late_dropped == 1


def test_grace_emits_bars_in_period_order() -> None:
    b = BarBuilder("X", "1m", grace_ms=120_000)
    b.update(0, 1.0, 1.0)
    b.update(60_000, 2.0, 1.0)
    b.update(120_000, 3.0, 1.0)
    out = b.update(250_000, 4.0, 1.0)  # closes minutes 0 and 1 (end + grace <= 250_000)
    assert [x.ts_ms for x in out] == [0, 60_000]
    assert [x.ts_ms for x in b.flush_all()] == [120_000, 240_000]


def test_volume_sum_is_exact_where_float_addition_drifts() -> None:
    b = BarBuilder("X", "1m")
    naive = 0.0
    for i in range(10):
        b.update(i, 1.0, 0.1)
        naive += 0.1
    (bar,) = b.flush_all()
    assert naive != 1.0
    assert bar.volume == 1.0


def test_volume_stays_exact_after_compaction_of_many_prints() -> None:
    b = BarBuilder("X", "1d")
    for i in range(5_000):
        b.update(i, 1.0, 0.1)
    (bar,) = b.flush_all()
    assert bar.volume == 500.0
    assert sum(exact_partials([0.1] * 10)) == 1.0


def test_mid_mode_builds_bars_from_quote_mids() -> None:
    b = BarBuilder("X", "1m", mode="mid")
    b.on_quote(Quote(symbol="X", ts_ms=0, bid=9.0, ask=11.0))
    b.on_quote(Quote(symbol="X", ts_ms=1_000, bid=11.0, ask=13.0))
    (bar,) = b.on_quote(Quote(symbol="X", ts_ms=60_000, bid=1.0, ask=1.0))
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades) == (10.0, 12.0, 10.0, 12.0, 0.0, 2)


def test_on_trade_uses_price_and_size() -> None:
    b = BarBuilder("X", "1m")
    b.on_trade(Trade(symbol="X", ts_ms=0, price=2.0, size=3.0, side="buy"))
    (bar,) = b.flush_all()
    assert (bar.close, bar.volume) == (2.0, 3.0)


@pytest.mark.parametrize(("text", "ms"), [("1m", 60_000), ("5m", 300_000), ("15m", 900_000), ("1h", 3_600_000),
                                          ("1d", 86_400_000), ("30s", 30_000)])
def test_parse_timeframe_valid_returns_ms(text: str, ms: int) -> None:
    assert parse_timeframe(text) == ms


@pytest.mark.parametrize("text", ["", "0m", "1x", "m", "1.5m", "01m"])
def test_parse_timeframe_invalid_raises(text: str) -> None:
    with pytest.raises(ValueError, match="invalid timeframe"):
        parse_timeframe(text)


# -- bulk path: quiet_until / add_run (the feed's QuoteRun stretches) -----------------------------
def _state(b: BarBuilder) -> tuple[object, ...]:
    cur = b._cur
    acc = None if cur is None else (cur.bucket, cur.open, cur.high, cur.low, cur.close, cur.open_ts, cur.close_ts,
                                    cur.n, list(cur.sizes))
    return acc, b.watermark_ms, b.open_bars, b.bars_emitted, b.late_dropped


def test_quiet_until_stops_at_the_first_print_of_the_next_bar() -> None:
    b = BarBuilder("X", "1m", mode="mid")
    ts = [1_000, 2_000, 2_000, 59_999, 60_000, 61_000]
    assert b.quiet_until(ts, 0, len(ts)) == 0  # no open bar: the first print opens one on its own
    b.update(500, 1.0, 0.0)
    assert b.quiet_until(ts, 0, len(ts)) == 4
    assert b.quiet_until(ts, 1, 3) == 3  # bounded by stop
    assert b.quiet_until(ts, 4, len(ts)) == 4  # a print of the next period: on its own


def test_quiet_until_sends_everything_through_update_with_grace_older_bars_or_an_older_print() -> None:
    graced = BarBuilder("X", "1m", grace_ms=5_000, mode="mid")
    graced.update(1_000, 1.0, 0.0)
    assert graced.quiet_until([2_000, 3_000], 0, 2) == 0
    b = BarBuilder("X", "1m", mode="mid")
    b.update(10_000, 1.0, 0.0)
    assert b.quiet_until([9_000, 11_000], 0, 2) == 0  # older than the bar's close: may move its open
    assert b.quiet_until([10_000, 11_000], 0, 2) == 2  # a tie with the close is in order


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_path_builds_exactly_the_bars_update_builds(seed: int) -> None:
    import random

    rng = random.Random(seed)
    ts_ms, prices, t, px = [], [], 0, 100.0
    for _ in range(2_000):
        t += rng.choice((0, 0, 300, 1_000, 7_000))
        px *= 1.0 + rng.uniform(-0.002, 0.002)
        ts_ms.append(t)
        prices.append(px)
    one, bulk = BarBuilder("X", "1m", mode="mid"), BarBuilder("X", "1m", mode="mid")
    want: list[Bar] = []
    for t, p in zip(ts_ms, prices, strict=True):
        want.extend(one.update(t, p, 0.0, recv_ns=t + 1))
    got: list[Bar] = []
    i, n, bulked = 0, len(ts_ms), 0
    while i < n:
        j = bulk.quiet_until(ts_ms, i, min(n, i + 97))  # batches of 97: boundaries fall anywhere
        if j > i:
            bulk.add_run(ts_ms, prices, i, j)
            bulked += j - i
            i = j
        else:
            got.extend(bulk.update(ts_ms[i], prices[i], 0.0, recv_ns=ts_ms[i] + 1))
            i += 1
    assert _state(bulk) == _state(one)
    got.extend(bulk.flush_all(recv_ns=1))
    want.extend(one.flush_all(recv_ns=1))
    assert got == want and len(got) > 20
    assert bulked > n * 0.9


def test_add_run_of_nothing_changes_nothing() -> None:
    b = BarBuilder("X", "1m", mode="mid")
    b.update(1_000, 2.0, 0.0)
    before = _state(b)
    b.add_run([1_000, 2_000], [5.0, 6.0], 1, 1)
    assert _state(b) == before
    b.add_run([1_000, 2_000, 3_000], [5.0, 0.5, 3.0], 1, 3)
    acc, wm, *_ = _state(b)
    assert acc == (0, 2.0, 3.0, 0.5, 3.0, 1_000, 3_000, 3, []) and wm == 3_000
