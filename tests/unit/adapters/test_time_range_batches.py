"""``TimeRangeSource`` over a batch source: the same events as ``events()``, batches kept, resumable."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from actors.feed import BatchSource, QuoteRun
from actors.model.market import MarketEvent, Quote
from adapters.market_data.quotes import QuoteReplaySource, read_quotes, write_quotes
from daemon.backtest.time_range import TimeRangeSource

SYM = "A/B"


@pytest.fixture
def quotes_file(tmp_path: Path) -> Path:
    path = tmp_path / "q.csv"
    # 1000 quotes, 3 per timestamp, so a window bound can fall between equal stamps' neighbours.
    write_quotes(path, [(1_000 + (i // 3) * 100, 10.0 + i % 7 / 100, 10.1 + i % 7 / 100, 1.0, 2.0)
                        for i in range(1_000)])
    return path


async def _events(source: TimeRangeSource) -> list[tuple[int, float]]:
    return [(ev.ts_ms, ev.bid) async for ev in source.events()]  # type: ignore[attr-defined]


async def _batches(source: TimeRangeSource) -> list[Sequence[MarketEvent]]:
    assert isinstance(source, BatchSource)
    return [batch async for batch in source.event_batches()]


@pytest.mark.parametrize(("start", "end"), [(None, None), (5_000, None), (None, 20_050), (4_950, 20_000),
                                            (1_000, 1_100), (40_000, None), (None, 1_000)])
async def test_window_batches_hold_the_events_of_the_window_in_quote_runs(
        quotes_file: Path, start: int | None, end: int | None) -> None:
    tape = read_quotes(quotes_file)
    want = await _events(TimeRangeSource(QuoteReplaySource(tape, SYM), start, end))
    batches = await _batches(TimeRangeSource(QuoteReplaySource(tape, SYM), start, end))
    got = [(q.ts_ms, q.bid) for b in batches for q in b]  # type: ignore[attr-defined]
    assert got == want
    assert all(type(b) is QuoteRun and b and list(b.ts_ms) == [q.ts_ms for q in b] for b in batches)


class ListBatches:
    """Plain (non-run) batches of events, out of order inside (test double)."""

    name = "lists"
    symbols = (SYM,)

    def __init__(self, events: list[Quote], size: int) -> None:
        self.events_ = events
        self.size = size

    async def events(self) -> AsyncIterator[MarketEvent]:
        for ev in self.events_:
            yield ev

    async def event_batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        for i in range(0, len(self.events_), self.size):
            yield self.events_[i:i + self.size]

    def stats(self) -> object:
        return None

    async def close(self) -> None:
        return None


async def test_plain_batches_are_filtered_like_events_and_end_at_the_first_event_past_the_window() -> None:
    stamps = [5, 1, 9, 12, 3, 15, 11, 30, 2, 40]
    events = [Quote(symbol=SYM, ts_ms=t, bid=1.0, ask=2.0) for t in stamps]
    for size in (1, 3, 10):
        window = TimeRangeSource(ListBatches(events, size), 4, 15)  # type: ignore[arg-type]
        want = [ev.ts_ms async for ev in window.events()]
        got = [ev.ts_ms for b in await _batches(TimeRangeSource(ListBatches(events, size), 4, 15))  # type: ignore[arg-type]
               for ev in b]
        assert got == want == [5, 9, 12]


async def test_a_source_without_batches_gives_a_window_without_batches(quotes_file: Path) -> None:
    class EventsOnly:
        name = "e"
        symbols = (SYM,)

        async def events(self) -> AsyncIterator[MarketEvent]:
            yield Quote(symbol=SYM, ts_ms=1, bid=1.0, ask=2.0)

        def stats(self) -> object:
            return None

        async def close(self) -> None:
            return None

    assert not isinstance(TimeRangeSource(EventsOnly(), 0, 10), BatchSource)  # type: ignore[arg-type]
    assert isinstance(TimeRangeSource(QuoteReplaySource(read_quotes(quotes_file), SYM), 0, 10), BatchSource)


async def test_window_batches_resume_after_the_last_batch_handed_out(quotes_file: Path) -> None:
    tape = read_quotes(quotes_file)
    window = TimeRangeSource(QuoteReplaySource(tape, SYM), 2_000, 30_000)
    assert isinstance(window, BatchSource)
    first: list[Sequence[MarketEvent]] = []
    async for batch in window.event_batches():
        first.append(batch)
        break  # the consumer stops (a failed feed run)
    rest = await _batches(window)
    got = [q.ts_ms for b in first + rest for q in b]
    assert got == [ts for ts in tape.ts_ms if 2_000 <= ts < 30_000]
