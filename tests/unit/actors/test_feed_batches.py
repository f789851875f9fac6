"""Feed batch path: ``QuoteRun`` stretches, latest-only taps and restarts equal the per-event path."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import msgspec
import pytest

from actors.feed import Feed, QuoteRun
from actors.kernel.clock import MarketClock
from actors.model.market import Bar, MarketEvent, Quote
from actors.ports.market_data import SourceStats
from actors.risk.marks import MarketMarks
from config.schema.market import FeedSection

SYM = "A/B"


def walk(n: int, *, seed: int = 3, step_ms: int = 700, start_ms: int = 1_000) -> list[Quote]:
    """``n`` two-sided quotes in time order, some sharing a timestamp, across many 1m bars."""
    rng = random.Random(seed)
    mid, ts, out = 100.0, start_ms, []
    for _ in range(n):
        mid *= 1.0 + rng.uniform(-0.001, 0.001)
        ts += rng.choice((0, step_ms, step_ms, 2 * step_ms))
        out.append(Quote(symbol=SYM, ts_ms=ts, recv_ns=1 + ts, bid=mid - 0.01, ask=mid + 0.01, bid_size=1.0,
                         ask_size=2.0))
    return out


class EventSource:
    """Hands the quotes out one by one (the per-event path)."""

    name = "events"
    symbols = (SYM,)

    def __init__(self, quotes: list[Quote]) -> None:
        self.quotes = quotes
        self.pos = 0

    async def events(self) -> AsyncIterator[MarketEvent]:
        while self.pos < len(self.quotes):
            self.pos += 1
            yield self.quotes[self.pos - 1]

    def stats(self) -> SourceStats:
        return SourceStats(name=self.name, events=self.pos)

    async def close(self) -> None:
        return None


class RunSource(EventSource):
    """Hands the same quotes out as ``QuoteRun``s of ``size`` (or plain lists), resumably (a BatchSource)."""

    name = "runs"

    def __init__(self, quotes: list[Quote], size: int = 37, *, runs: bool = True) -> None:
        super().__init__(quotes)
        self.size = size
        self.runs = runs

    async def event_batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        while self.pos < len(self.quotes):
            part = self.quotes[self.pos:self.pos + self.size]
            self.pos += len(part)
            yield QuoteRun(SYM, part, [q.ts_ms for q in part]) if self.runs else part


class Observed:
    """Latest-only taps (market clock, risk marks, a latest-quote keeper) and what they showed at each bar."""

    def __init__(self, feed: Feed, *, guard: Callable[[str], bool] | None = None, extra_plain: bool = False) -> None:
        self.clock = MarketClock()
        self.marks = MarketMarks()
        self.last: Quote | None = None
        self.calls = 0
        self.seen: list[MarketEvent] = []
        self.at_bars: list[tuple[Any, ...]] = []
        self.feed = feed
        feed.add_tap(self._advance, latest_only=True)
        feed.add_tap(self.marks.observe, latest_only=True)
        feed.add_tap(self._keep, latest_only=True, quiet=guard)
        if extra_plain:
            feed.add_tap(self.seen.append)
        feed.after_bars = self._at_bar

    def _advance(self, ev: MarketEvent) -> None:
        self.calls += 1
        self.clock.advance(ev.ts_ms)

    def _keep(self, ev: MarketEvent) -> None:
        self.last = ev  # type: ignore[assignment]

    def state(self) -> tuple[Any, ...]:
        snap = self.feed.snapshot()
        sym = snap.symbol(SYM)
        assert sym is not None
        return (self.clock.now_ms(), self.marks.last_price(SYM), self.marks.age_s(SYM), self.last,
                snap.events, snap.feed_time_ms, sym.quotes, sym.last_ts_ms, self.feed.data_age_s(SYM) is not None)

    async def _at_bar(self) -> None:
        self.at_bars.append(self.state())


def closed_by_quotes(bars: list[Bar], quotes: list[Quote]) -> list[Bar]:
    """``bars`` with the ``recv_ns`` of those flushed at the end of the data (wall time) zeroed."""
    stamps = {q.recv_ns for q in quotes}
    return [b if b.recv_ns in stamps else msgspec.structs.replace(b, recv_ns=0) for b in bars]


def mid_feed(source: Any) -> Feed:
    return Feed(FeedSection(symbols=(SYM,), timeframes=("1m", "5m"), bars_from="mid", on_end="stop"), source,
                bar_capacity=100_000)


async def run_feed(source: Any, **kw: Any) -> tuple[Feed, Observed, list[Bar]]:
    feed = mid_feed(source)
    sub = feed.subscribe("s", symbols=[SYM], timeframes=["1m", "5m"])
    seen = Observed(feed, **kw)
    await feed.main()
    return feed, seen, closed_by_quotes(list(sub.bars.drain(100_000)), source.quotes)


async def test_latest_only_taps_on_quote_runs_leave_the_per_event_state_at_every_bar_and_at_the_end() -> None:
    quotes = walk(3_000)
    _, per_event, bars_1 = await run_feed(EventSource(quotes))
    _, batched, bars_2 = await run_feed(RunSource(quotes, 37))
    assert len(bars_1) > 20
    assert bars_2 == bars_1  # the same bars, closed by the same quotes (recv_ns)
    assert batched.at_bars == per_event.at_bars  # what every actor reads when bars are published
    assert batched.state() == per_event.state()
    assert per_event.calls == len(quotes)
    assert batched.calls < len(quotes) // 10  # the taps really saw only the ends of stretches


async def test_a_guard_that_is_not_quiet_or_a_plain_tap_makes_every_tap_see_every_quote() -> None:
    quotes = walk(600)
    busy = {SYM}
    _, guarded, _ = await run_feed(RunSource(quotes), guard=lambda s: s not in busy)
    assert guarded.calls == len(quotes)
    _, plain, bars = await run_feed(RunSource(quotes), extra_plain=True)
    assert plain.calls == len(quotes) and plain.seen == quotes
    _, ref, ref_bars = await run_feed(EventSource(quotes))
    assert (guarded.state(), plain.state(), bars) == (ref.state(), ref.state(), ref_bars)


async def test_a_guard_is_asked_at_the_start_of_each_stretch() -> None:
    quotes = walk(1_200)
    asked: list[int] = []
    holder: dict[str, Feed] = {}

    def guard(symbol: str) -> bool:
        asked.append(holder["feed"].snapshot().events)
        return len(asked) % 2 == 0  # every other stretch is not quiet: its quotes go one by one

    feed = mid_feed(RunSource(quotes))
    holder["feed"] = feed
    seen = Observed(feed, guard=guard)
    await feed.main()
    assert len(asked) > 10
    assert len(quotes) // 3 < seen.calls < len(quotes)
    _, ref, _ = await run_feed(EventSource(quotes))
    assert seen.state() == ref.state() and seen.at_bars == ref.at_bars


def test_a_quiet_guard_needs_a_latest_only_tap() -> None:
    feed = mid_feed(EventSource([]))
    with pytest.raises(ValueError, match="latest-only"):
        feed.add_tap(lambda ev: None, quiet=lambda s: True)


class Boom(Exception):
    """Raised once by a test tap."""


async def fail_and_restart(source: Any, target: MarketEvent, *, latest: bool
                           ) -> tuple[list[Bar], list[MarketEvent], tuple[int, int]]:
    """Run a feed whose second tap raises once on ``target``, restart it; its bars, tap calls, counters."""
    recorded: list[MarketEvent] = []
    fired: list[int] = []

    def fail_once(ev: MarketEvent) -> None:
        if ev is target and not fired:
            fired.append(1)
            raise Boom

    feed = mid_feed(source)
    sub = feed.subscribe("s", symbols=[SYM], timeframes=["1m", "5m"])
    feed.add_tap(recorded.append, latest_only=latest)
    feed.add_tap(fail_once, latest_only=latest)
    with pytest.raises(Boom):
        await feed.main()
    await feed.main()  # restarted, as the supervisor does: same actor, resumable source
    snap = feed.snapshot()
    sym = snap.symbol(SYM)
    assert fired and sym is not None
    return closed_by_quotes(list(sub.bars.drain(100_000)), source.quotes), recorded, (snap.events, sym.quotes)


@pytest.mark.parametrize(("runs", "latest", "fail_at"), [
    (True, False, 5),     # inside a stretch taken in bulk, taps per quote
    (True, True, 36),     # the last quote of a stretch, latest-only taps
    (True, False, 0),     # the first quote of the tape: a single one (it opens the bars)
    (False, False, 20),   # a plain batch
])
async def test_a_feed_failing_mid_batch_and_restarted_sees_what_the_per_event_path_sees(
        runs: bool, latest: bool, fail_at: int) -> None:
    quotes = walk(400)
    bars, recorded, counts = await fail_and_restart(RunSource(quotes, 37, runs=runs), quotes[fail_at],
                                                    latest=latest)
    ref_bars, ref_recorded, ref_counts = await fail_and_restart(EventSource(quotes), quotes[fail_at], latest=latest)
    assert bars == ref_bars and counts == ref_counts == (len(quotes), len(quotes) - 1)
    if latest:
        assert recorded[-1] is ref_recorded[-1] is quotes[-1] and len(recorded) < len(quotes) // 5
    else:
        assert recorded == ref_recorded == quotes  # each event once, in order, the failed one included


async def test_a_feed_failing_while_it_publishes_a_bar_resumes_after_that_quote() -> None:
    # The quote that closed the bar is not handed again (its longer timeframe never saw it): as per event.
    quotes = walk(500)

    async def run(source: Any) -> tuple[list[Bar], int]:
        calls: list[int] = []

        async def fail_on_third_bar() -> None:
            calls.append(1)
            if len(calls) == 3:
                raise Boom

        feed = mid_feed(source)
        sub = feed.subscribe("s", symbols=[SYM], timeframes=["1m", "5m"])
        feed.after_bars = fail_on_third_bar
        with pytest.raises(Boom):
            await feed.main()
        await feed.main()
        return closed_by_quotes(list(sub.bars.drain(100_000)), quotes), feed.snapshot().events

    got = await run(RunSource(quotes, 50))
    ref = await run(EventSource(quotes))
    assert got == ref and got[1] == len(quotes) and len(got[0]) > 5
