"""The backtest window: parsing ``--from``/``--to`` and cutting a source."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from actors.model.market import MarketEvent, Trade
from actors.ports.market_data import SourceStats
from daemon.backtest.time_range import TimeRangeSource, format_bound, parse_bound


def test_bounds_parse_as_utc_and_name_files_compactly() -> None:
    assert parse_bound("2019-10-12") == 1_570_838_400_000
    assert parse_bound("2019-10-12T01:00") == parse_bound("2019-10-12T01:00:00Z") == 1_570_842_000_000
    assert parse_bound("2019-10-12T03:00+02:00") == 1_570_842_000_000
    with pytest.raises(ValueError, match="is not a date"):
        parse_bound("12/10/2019")
    assert format_bound(1_570_838_400_000) == "20191012"
    assert format_bound(1_570_842_000_500) == "20191012T010000"


class Tape:
    name = "tape"
    symbols = ("A/B",)
    start_ts_ms = 100

    async def events(self) -> AsyncIterator[MarketEvent]:
        for ts in (100, 200, 300, 400):
            yield Trade(symbol="A/B", ts_ms=ts, recv_ns=0, price=1.0, size=1.0, side="buy", trade_id=ts)

    def stats(self) -> SourceStats:
        return SourceStats(name="tape")

    async def close(self) -> None:
        pass


async def test_the_source_keeps_events_from_start_inclusive_to_end_exclusive() -> None:
    cut = TimeRangeSource(Tape(), 200, 400)
    assert [e.ts_ms async for e in cut.events()] == [200, 300]
    assert cut.start_ts_ms == 200 and cut.symbols == ("A/B",)
    assert [e.ts_ms async for e in TimeRangeSource(Tape(), None, 300).events()] == [100, 200]
    assert TimeRangeSource(Tape(), 50, None).start_ts_ms == 100
