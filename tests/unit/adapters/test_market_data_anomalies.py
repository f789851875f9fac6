"""Market-data files: values the format forbids are rejected wherever the row is, tolerated
anomalies are counted, logged once per file and exposed in the source's stats, and the sources
read time only through ``actors.kernel.clock``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters.market_data import DataFileError, ReplaySource, SyntheticSource, build_source, read_candles, read_trades
from adapters.market_data.quotes import QuoteReplaySource, read_quotes
from config.schema.market import FeedSection, ReplaySection

TRADES = "ts_ms,trade_id,side,price,amount,cost\n"
CANDLES = "ts_ms,open,high,low,close,volume\n"
QUOTES = "ts_ms,bid,ask,bid_size,ask_size\n"
EVENT = "market_data.file_read"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _file_logs(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == EVENT]


# -- values the format forbids, wherever the row is ------------------------------------------------
OK_TRADE = "1000,1,buy,2,3,6\n"


@pytest.mark.parametrize(
    ("rows", "line", "fragment"),
    [
        # price * amount overflows: the relative cost check compared inf with inf and passed.
        ([OK_TRADE, "2000,2,buy,1e308,2,1\n"], 3, "price * amount out of range"),
        # the same row out of order, and as a duplicate trade id: still checked.
        ([OK_TRADE, "500,2,buy,1e308,2,1\n"], 3, "price * amount out of range"),
        ([OK_TRADE, "1000,1,buy,1e308,2,1\n"], 3, "price * amount out of range"),
        ([OK_TRADE, "500,2,buy,2,3,7\n"], 3, "does not equal price * amount"),
        ([OK_TRADE, "1000,1,buy,2,3,7\n"], 3, "does not equal price * amount"),
        # price * amount underflows to 0
        ([OK_TRADE, "2000,2,buy,1e-300,1e-300,0\n"], 3, "price * amount out of range"),
        # a non-zero value that underflows to 0
        ([OK_TRADE, "2000,2,buy,1e-400,3,0\n"], 3, "price: value out of range"),
        ([OK_TRADE, "2000,2,buy,2,3,1e-400\n"], 3, "cost: value out of range"),
        # integers beyond 64 bits
        ([OK_TRADE, "99999999999999999999,2,buy,2,3,6\n"], 3, "ts_ms: value out of range"),
        ([OK_TRADE, "2000,99999999999999999999,buy,2,3,6\n"], 3, "trade_id: value out of range"),
        ([OK_TRADE, "2000,2,buy,inf,3,6\n"], 3, "price: expected a decimal number"),
        ([OK_TRADE, "2000,2,buy,2,nan,6\n"], 3, "amount: expected a decimal number"),
        ([OK_TRADE, "2000,2,buy,2,0,0\n"], 3, "amount: expected a value > 0"),
        ([OK_TRADE, "2000,2,buy,2,1e999,1e999\n"], 3, "amount: value out of range"),
    ],
)
def test_trade_row_the_format_forbids_is_rejected_wherever_it_is(
    tmp_path: Path, rows: list[str], line: int, fragment: str
) -> None:
    p = _write(tmp_path, "t.csv", TRADES + "".join(rows))
    with pytest.raises(DataFileError) as info:
        read_trades(p)
    err = info.value
    assert err.line == line and fragment in err.problem, err
    assert str(err).startswith(f"{p}:{line}: ")


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("60000,1,2,0.5,1,nan\n", "volume: expected a decimal number"),
        ("60000,1,inf,0.5,1,1\n", "high: expected a decimal number"),
        ("60000,1,1e999,0.5,1,1\n", "high: value out of range"),
        ("60000,0,2,0.5,1,1\n", "open: expected a value > 0"),
        ("60000,1,2,-0.5,1,1\n", "low: negative value"),
        ("60000,1,0.5,2,1,1\n", "inconsistent candle"),  # high < low
        ("60000,1,2,0.5,3,1\n", "inconsistent candle"),  # close above high
        ("60000,1,2,0.5,1,1e-400\n", "volume: value out of range"),
        ("99999999999999999960000,1,2,0.5,1,1\n", "ts_ms: value out of range"),
        # the same bad rows as a duplicate and as an out-of-order candle: still checked
        ("0,1,0.5,2,1,1\n", "inconsistent candle"),
        ("120000,1,0.5,2,1,1\n", "inconsistent candle"),
    ],
)
def test_candle_row_the_format_forbids_is_rejected_wherever_it_is(tmp_path: Path, row: str, fragment: str) -> None:
    text = CANDLES + "120000,1,2,0.5,1,1\n" + row if row.startswith(("0,", "120000,")) else CANDLES + row
    p = _write(tmp_path, "c.csv", text)
    with pytest.raises(DataFileError) as info:
        read_candles(p, "1m", 60_000)
    assert fragment in info.value.problem and str(p) in str(info.value)


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("1000,1e-400,2,1,1\n", "bid: value out of range"),
        ("1000,1,2,1e-400,1\n", "bid_size: value out of range"),
        ("1000,1,2,1,1e-400\n", "ask_size: value out of range"),
        ("1000,1,2,inf,1\n", "bid_size: expected a decimal number"),
        ("1000,0,2,1,1\n", "bid: expected a value > 0"),
        ("500,2,1,1,1\n", "crossed quote"),  # out of order: still checked
    ],
)
def test_quote_row_the_format_forbids_is_rejected_wherever_it_is(tmp_path: Path, row: str, fragment: str) -> None:
    p = _write(tmp_path, "q.csv", QUOTES + "1000,1,2,0,0\n" + row)
    with pytest.raises(DataFileError) as info:
        read_quotes(p)
    assert info.value.line == 3 and fragment in info.value.problem, info.value


def test_zero_written_in_any_decimal_form_is_still_a_valid_quote_size(tmp_path: Path) -> None:
    tape = read_quotes(_write(tmp_path, "q.csv", QUOTES + "1000,1,2,0.0,0e5\n"))
    assert tape.row(0) == (1000, 1.0, 2.0, 0.0, 0.0)


# -- one log line per file, saying what was tolerated and how ---------------------------------------
def test_clean_trade_file_logs_one_info_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "t.csv", TRADES + OK_TRADE + "2000,2,sell,1,1,1\n")
    with capture_logs() as logs:
        read_trades(p)
    (line,) = _file_logs(logs)
    assert line["log_level"] == "info" and line["file"] == str(p) and line["kind"] == "trades"
    assert (line["rows"], line["kept"], line["duplicates_skipped"], line["out_of_order"]) == (2, 2, 0, 0)


def test_trade_anomalies_are_logged_once_as_a_warning_saying_out_of_order_rows_are_kept(tmp_path: Path) -> None:
    rows = [OK_TRADE, "3000,2,sell,1,1,1\n", "3000,2,sell,1,1,1\n", "2000,3,buy,1,1,1\n", "1500,4,buy,1,1,1\n"]
    p = _write(tmp_path, "t.csv", TRADES + "".join(rows))
    with capture_logs() as logs:
        tape = read_trades(p)
    (line,) = _file_logs(logs)
    assert line["log_level"] == "warning" and line["file"] == str(p)
    assert (line["duplicates_skipped"], line["out_of_order"], line["out_of_order_rows"]) == (1, 2, "kept")
    assert "1 duplicate row(s) skipped (first at line 4)" in line["anomalies"]
    assert "2 out-of-order row(s) kept in file order (first at line 5)" in line["anomalies"]
    rep = tape.report
    assert (rep.first_duplicate_line, rep.first_out_of_order_line) == (4, 5)


def test_candle_anomalies_are_logged_saying_out_of_order_rows_are_dropped(tmp_path: Path) -> None:
    rows = ["0,1,2,1,2,5\n", "60000,2,2,2,2,1\n", "60000,9,9,9,9,9\n", "0,1,1,1,1,1\n", "240000,3,3,3,3,0\n"]
    p = _write(tmp_path, "c.csv", CANDLES + "".join(rows))
    with capture_logs() as logs:
        read_candles(p, "1m", 60_000)
    (line,) = _file_logs(logs)
    assert line["log_level"] == "warning" and line["kind"] == "candles"
    assert (line["duplicates_skipped"], line["out_of_order"], line["gaps"]) == (1, 1, 2)
    assert line["out_of_order_rows"] == "dropped"
    assert "1 out-of-order row(s) dropped (first at line 5)" in line["anomalies"]
    assert "2 missing candle(s) (first gap before line 6)" in line["anomalies"]


def test_quote_out_of_order_rows_are_logged_as_kept(tmp_path: Path) -> None:
    p = _write(tmp_path, "q.csv", QUOTES + "2000,1,2,0,0\n1000,1,2,0,0\n3000,1,2,0,0\n")
    with capture_logs() as logs:
        read_quotes(p)
    (line,) = _file_logs(logs)
    assert line["log_level"] == "warning" and line["kind"] == "quotes"
    assert (line["out_of_order"], line["out_of_order_rows"]) == (1, "kept")


def test_factory_logs_the_replay_file_once_bound_to_the_source_and_symbol(tmp_path: Path) -> None:
    _write(tmp_path, "t.csv", TRADES + OK_TRADE + OK_TRADE)
    feed = FeedSection(symbols=("XRP/ETH",), replay=ReplaySection(path="t.csv"))
    with capture_logs() as logs:
        src = build_source(feed, lambda rel: tmp_path / rel)
    (line,) = _file_logs(logs)
    assert line["log_level"] == "warning" and line["symbol"] == "XRP/ETH" and line["source"] == "replay"
    assert src.stats().duplicates_skipped == 1


# -- counts in the source's stats (what /status shows) ----------------------------------------------
def test_replay_stats_carry_the_file_counts(tmp_path: Path) -> None:
    trades = read_trades(_write(tmp_path, "t.csv", TRADES + OK_TRADE + OK_TRADE + "500,2,buy,1,1,1\n"))
    st = ReplaySource(trades, "X/Y").stats()
    assert (st.rows, st.duplicates_skipped, st.out_of_order, st.gaps) == (3, 1, 1, 0)
    candles = read_candles(_write(tmp_path, "c.csv", CANDLES + "0,1,1,1,1,1\n180000,1,1,1,1,1\n"), "1m", 60_000)
    assert ReplaySource(candles, "X/Y").stats().gaps == 2


def test_quote_replay_stats_carry_the_file_counts(tmp_path: Path) -> None:
    tape = read_quotes(_write(tmp_path, "q.csv", QUOTES + "2000,1,2,0,0\n1000,1,2,0,0\n"))
    st = QuoteReplaySource(tape, "X/Y").stats()
    assert (st.rows, st.out_of_order, st.duplicates_skipped, st.gaps) == (2, 1, 0, 0)


# -- time comes from actors.kernel.clock -----------------------------------------------------------
async def test_sources_stamp_recv_ns_with_the_kernel_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters.market_data.quotes as quotes_mod
    import adapters.market_data.replay as replay_mod
    import adapters.market_data.synthetic as synthetic_mod

    for mod in (replay_mod, quotes_mod, synthetic_mod):
        monkeypatch.setattr(mod, "perf_ns", lambda: 424242)
    tape = read_trades(_write(tmp_path, "t.csv", TRADES + OK_TRADE))
    quotes = read_quotes(_write(tmp_path, "q.csv", QUOTES + "1000,1,2,0,0\n"))
    sources: list[Any] = [ReplaySource(tape, "X/Y", derive_quotes=True), QuoteReplaySource(quotes, "X/Y"),
                          SyntheticSource(("X/Y",), max_events=3)]
    for src in sources:
        stamps = [ev.recv_ns async for ev in src.events()]
        assert stamps and set(stamps) == {424242}, src.name


async def test_synthetic_start_time_zero_means_the_kernel_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    import adapters.market_data.synthetic as synthetic_mod

    monkeypatch.setattr(synthetic_mod, "wall_ms", lambda: 1_700_000_123_456)
    src = SyntheticSource(("X/Y",), start_ts_ms=0, max_events=1)
    (ev,) = [e async for e in src.events()]
    assert ev.ts_ms == 1_700_000_123_000  # whole seconds


def test_pacer_measures_with_the_kernel_monotonic_clock() -> None:
    from actors.kernel import clock
    from adapters.market_data.pacing import Pacer

    assert Pacer(1.0)._clock is clock.monotonic
