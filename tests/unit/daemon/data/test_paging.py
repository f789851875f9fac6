"""Paging, de-duplication and gap detection of ``aaiti data download`` (no network)."""

from __future__ import annotations

import pytest

from adapters.market_data.csv_reader import CandleRow, TradeRow
from daemon.data.paging import (
    CandlePager,
    Gap,
    PagingStuck,
    TradePager,
    TradeRequest,
    align_up,
    candle_gaps,
    trade_id_gaps,
)

M = 60_000
H = 3_600_000


def c(ts: int) -> CandleRow:
    return CandleRow(ts, 1.0, 1.0, 1.0, 1.0, 1.0)


def t(ts: int, trade_id: int) -> TradeRow:
    return TradeRow(ts, trade_id, "buy", 1.0, 1.0)


def test_align_up() -> None:
    assert align_up(0, M) == 0
    assert align_up(1, M) == M
    assert align_up(M, M) == M


# ---------------------------------------------------------------- candles
def test_candle_pager_pages_by_since_and_stops_at_the_end() -> None:
    pager = CandlePager(start_ms=30_000, end_ms=5 * M, tf_ms=M)
    assert pager.since == M  # aligned up: a candle opening before the start is not in the range
    assert pager.accept([c(M), c(2 * M)]) == [c(M), c(2 * M)]
    assert pager.since == 3 * M and not pager.done
    # The exchange sends more than the range holds: rows at or after the end are not written.
    assert pager.accept([c(3 * M), c(4 * M), c(5 * M), c(6 * M)]) == [c(3 * M), c(4 * M)]
    assert pager.done


def test_candle_pager_drops_duplicates_and_rows_already_written() -> None:
    pager = CandlePager(start_ms=0, end_ms=100 * M, tf_ms=M, last_ts=2 * M)
    assert pager.since == 3 * M  # resume after the file's last candle
    page = [c(2 * M), c(3 * M), c(3 * M), c(5 * M), c(4 * M)]
    assert pager.accept(page) == [c(3 * M), c(4 * M), c(5 * M)]
    # An overlapping next page (an exchange that ignores ``since`` partly) adds only new rows.
    assert pager.accept([c(5 * M), c(6 * M)]) == [c(6 * M)]


def test_candle_pager_ends_on_an_empty_page_or_no_progress() -> None:
    pager = CandlePager(start_ms=0, end_ms=100 * M, tf_ms=M)
    assert pager.accept([]) == [] and pager.done
    pager = CandlePager(start_ms=10 * M, end_ms=100 * M, tf_ms=M)
    assert pager.accept([c(M), c(2 * M)]) == [] and pager.done  # nothing at or after ``since``


def test_candle_pager_with_the_file_past_the_end_is_done_at_once() -> None:
    assert CandlePager(start_ms=0, end_ms=10 * M, tf_ms=M, last_ts=10 * M).done


def test_candle_gaps_inside_and_at_both_ends() -> None:
    times = [2 * M, 3 * M, 6 * M, 7 * M, 42 * M]  # 42 is outside the range
    report = candle_gaps(times, 0, 10 * M, M)
    assert report.ranges == (Gap(0, M, 2), Gap(4 * M, 5 * M, 2), Gap(8 * M, 9 * M, 2))
    assert report.missing == 6
    assert candle_gaps([0, M, 2 * M], 0, 3 * M, M).missing == 0
    assert candle_gaps([], 0, 3 * M, M).ranges == (Gap(0, 2 * M, 3),)
    # An end inside a candle: that candle opens before the end, so it is expected.
    assert candle_gaps([0], 0, M + 1, M).ranges == (Gap(M, M, 1),)


def test_trade_id_gaps() -> None:
    report = trade_id_gaps([5, 1, 2, 3, 9, 10, 3])
    assert report.ranges == (Gap(4, 4, 1), Gap(6, 8, 3))
    assert report.missing == 4
    assert trade_id_gaps([]).missing == 0


# ---------------------------------------------------------------- trades by id (Binance aggTrades)
def test_trade_pager_by_id_switches_to_from_id_after_the_first_page() -> None:
    pager = TradePager(start_ms=1000, end_ms=10_000, limit=3, by_id=True, window_ms=H)
    assert pager.request() == TradeRequest(1000, None)
    assert pager.accept([t(1000, 10), t(1500, 11), t(2000, 12)]) == [t(1000, 10), t(1500, 11), t(2000, 12)]
    assert pager.request() == TradeRequest(None, 13)
    # Ids follow time: a trade at or after the end finishes the download; it is not written.
    assert pager.accept([t(9000, 13), t(10_000, 14)]) == [t(9000, 13)]
    assert pager.done


def test_trade_pager_by_id_resumes_after_the_last_id_and_ends_on_an_empty_page() -> None:
    pager = TradePager(start_ms=0, end_ms=10_000, limit=3, by_id=True, window_ms=H, last=t(500, 41))
    assert pager.request() == TradeRequest(None, 42)
    assert pager.accept([t(500, 41), t(600, 42)]) == [t(600, 42)]  # an id already written is dropped
    assert pager.request() == TradeRequest(None, 43)
    assert pager.accept([]) == [] and pager.done


def test_trade_pager_by_id_moves_hour_by_hour_over_empty_windows() -> None:
    pager = TradePager(start_ms=0, end_ms=3 * H, limit=10, by_id=True, window_ms=H)
    assert pager.accept([]) == []
    assert pager.request() == TradeRequest(H + 1, None) and not pager.done
    assert pager.accept([]) == []
    assert pager.request() == TradeRequest(2 * H + 2, None)
    assert pager.accept([]) == [] and pager.done


def test_trade_pager_by_id_refuses_to_go_backwards() -> None:
    pager = TradePager(start_ms=0, end_ms=10_000, limit=3, by_id=True, window_ms=H, last=t(500, 41))
    with pytest.raises(PagingStuck):
        pager.accept([t(100, 7)])


# ---------------------------------------------------------------- trades by time
def test_trade_pager_by_time_restarts_at_the_newest_timestamp_and_drops_seen_ids() -> None:
    pager = TradePager(start_ms=0, end_ms=10_000, limit=3, by_id=False, window_ms=None)
    assert pager.accept([t(100, 1), t(200, 2), t(200, 3)]) == [t(100, 1), t(200, 2), t(200, 3)]
    assert pager.request() == TradeRequest(200, None)
    # The next page starts at 200 again: ids 2 and 3 were written already.
    assert pager.accept([t(200, 2), t(200, 3), t(300, 4)]) == [t(300, 4)]
    assert pager.request() == TradeRequest(300, None)
    assert pager.accept([t(300, 4)]) == [] and pager.done  # nothing new and no window: the end


def test_trade_pager_by_time_resume_drops_trades_already_in_the_file() -> None:
    pager = TradePager(start_ms=0, end_ms=10_000, limit=5, by_id=False, window_ms=None,
                       last=t(200, 3), ids_at_last_ts=[2, 3])
    assert pager.request() == TradeRequest(200, None)
    assert pager.accept([t(200, 2), t(200, 3), t(250, 4)]) == [t(250, 4)]


def test_trade_pager_by_time_with_a_window_moves_past_a_short_page() -> None:
    pager = TradePager(start_ms=0, end_ms=5 * H, limit=3, by_id=False, window_ms=H)
    assert pager.accept([t(10, 1)]) == [t(10, 1)]  # short page: the window [0, 1 h] is done
    assert pager.request() == TradeRequest(H + 1, None)
    assert pager.accept([t(H + 5, 2), t(H + 6, 3), t(H + 7, 4)]) == [t(H + 5, 2), t(H + 6, 3), t(H + 7, 4)]
    assert pager.request() == TradeRequest(H + 7, None)  # full page: continue inside the window


def test_trade_pager_by_time_detects_a_page_it_cannot_pass() -> None:
    pager = TradePager(start_ms=0, end_ms=10_000, limit=2, by_id=False, window_ms=None)
    pager.accept([t(100, 1), t(100, 2)])
    with pytest.raises(PagingStuck):
        pager.accept([t(100, 1), t(100, 2)])


def test_trade_pager_drops_trades_outside_the_range() -> None:
    pager = TradePager(start_ms=1000, end_ms=2000, limit=10, by_id=False, window_ms=None)
    assert pager.accept([t(999, 1), t(1000, 2), t(1999, 3), t(2000, 4)]) == [t(1000, 2), t(1999, 3)]
    assert pager.done
