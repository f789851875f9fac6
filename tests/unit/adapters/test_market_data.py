"""Market-data adapters: strict file reading, order rules, replay and synthetic determinism."""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import pytest

from actors.model.market import Bar, MarketEvent, Quote, Trade
from adapters.market_data import (
    DataFileError,
    ReplaySource,
    SyntheticSource,
    build_source,
    read_candles,
    read_trades,
)
from config.schema.market import FeedSection, ReplaySection, SyntheticSection

DATA = Path(__file__).resolve().parents[3] / "data" / "market"
TAPE = DATA / "binance_XRP-ETH_trades_2019-10.csv.gz"
HEADER = "ts_ms,trade_id,side,price,amount,cost\n"
CANDLE_HEADER = "ts_ms,open,high,low,close,volume\n"
GOOD = [
    "1000,1,buy,0.5,2,1.0\n",
    "2000,2,sell,0.25,4,1.0\n",
    "3000,3,buy,2,3,6\n",
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    if name.endswith(".gz"):
        p.write_bytes(gzip.compress(text.encode()))
    else:
        p.write_text(text)
    return p


def _error(path: Path, fmt: str = "trades") -> DataFileError:
    with pytest.raises(DataFileError) as info:
        if fmt == "trades":
            read_trades(path)
        else:
            read_candles(path, "1m", 60_000)
    err = info.value
    assert str(path) in str(err)
    return err


def _strip(events: list[MarketEvent]) -> list[MarketEvent]:
    return [msgspec.structs.replace(e, recv_ns=0) for e in events]


async def _collect(source: ReplaySource | SyntheticSource, limit: int | None = None) -> list[MarketEvent]:
    out: list[MarketEvent] = []
    async for ev in source.events():
        out.append(ev)
        if limit is not None and len(out) >= limit:
            break
    return out


# -- strict reader -------------------------------------------------------------------------------
def test_missing_file_raises_error_naming_the_file(tmp_path: Path) -> None:
    err = _error(tmp_path / "nope.csv")
    assert err.line == 0 and "file not found" in str(err)


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz"])
def test_good_file_plain_or_gzip_reads_all_rows(tmp_path: Path, name: str) -> None:
    tape = read_trades(_write(tmp_path, name, HEADER + "".join(GOOD)))
    assert [(r.ts_ms, r.trade_id, r.side, r.price, r.size) for r in tape.rows] == [
        (1000, 1, "buy", 0.5, 2.0), (2000, 2, "sell", 0.25, 4.0), (3000, 3, "buy", 2.0, 3.0)]
    assert tape.report.rows == 3 and tape.report.kept == 3


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        (["ts,trade_id,side,price,amount,cost\n"], 1, "wrong header"),
        ([HEADER, "1000,1,buy,0.5,2\n"], 2, "expected 6 columns, got 5"),
        ([HEADER, GOOD[0], "2000,2,sell,abc,4,1.0\n"], 3, "price: expected a decimal number, got 'abc'"),
        ([HEADER, GOOD[0], GOOD[1], "3000,3,buy,2,-3,6\n"], 4, "amount: negative value -3"),
        ([HEADER, "1000,1,buy,0,2,0\n"], 2, "price: expected a value > 0"),
        ([HEADER, "1000,1,hold,0.5,2,1.0\n"], 2, "side: expected 'buy' or 'sell'"),
        ([HEADER, "1000,1,buy,0.5,2,1.5\n"], 2, "does not equal price * amount"),
        ([HEADER, "1e3,1,buy,0.5,2,1.0\n"], 2, "ts_ms: expected a non-negative integer"),
        ([HEADER, "1000,1,buy,nan,2,1.0\n"], 2, "price: expected a decimal number"),
        ([HEADER, GOOD[0], "\n"], 3, "empty line"),
        ([HEADER, GOOD[0], "2000,2,sell,0.25,4,1.0"], 3, "truncated file"),
        ([], 1, "empty file"),
        ([HEADER], 2, "no data rows"),
    ],
)
def test_malformed_trade_file_raises_error_with_file_and_line(tmp_path: Path, lines: list[str], line: int,
                                                              fragment: str) -> None:
    p = _write(tmp_path, "t.csv", "".join(lines))
    err = _error(p)
    assert err.line == line
    assert f"{p}:{line}: " in str(err)
    assert fragment in err.problem


def test_truncated_gzip_raises_error_with_file_and_line(tmp_path: Path) -> None:
    body = HEADER + "".join(f"{1000 + i},{i},buy,0.5,2,1.0\n" for i in range(5000))
    full = gzip.compress(body.encode())
    p = tmp_path / "cut.csv.gz"
    p.write_bytes(full[: len(full) // 2])
    err = _error(p)
    assert "truncated gzip stream" in err.problem
    assert 1 < err.line < 5002


def test_corrupt_gzip_raises_error(tmp_path: Path) -> None:
    data = bytearray(gzip.compress((HEADER + "".join(GOOD)).encode()))
    data[12:20] = b"\xff" * 8
    p = tmp_path / "bad.csv.gz"
    p.write_bytes(bytes(data))
    err = _error(p)
    assert "gzip" in err.problem


def test_gz_name_without_gzip_content_raises_error(tmp_path: Path) -> None:
    p = tmp_path / "plain.csv.gz"
    p.write_text(HEADER + "".join(GOOD))
    assert "not gzip data" in _error(p).problem


def test_duplicate_trade_id_is_skipped_and_counted(tmp_path: Path) -> None:
    p = _write(tmp_path, "t.csv", HEADER + GOOD[0] + GOOD[1] + GOOD[1] + GOOD[0] + GOOD[2])
    tape = read_trades(p)
    assert [r.trade_id for r in tape.rows] == [1, 2, 3]
    assert tape.report.rows == 5 and tape.report.duplicates_skipped == 2


def test_out_of_order_trade_is_kept_in_file_order_and_counted(tmp_path: Path) -> None:
    p = _write(tmp_path, "t.csv", HEADER + GOOD[0] + GOOD[2] + "1500,4,buy,1,1,1\n")
    tape = read_trades(p)
    assert [(r.ts_ms, r.trade_id) for r in tape.rows] == [(1000, 1), (3000, 3), (1500, 4)]  # never reordered
    assert tape.report.out_of_order == 1


def test_candle_order_rules_skip_duplicates_and_backwards_and_count_gaps(tmp_path: Path) -> None:
    rows = ["0,1,2,1,2,5\n", "60000,2,2,2,2,1\n", "60000,9,9,9,9,9\n", "0,1,1,1,1,1\n", "240000,3,3,3,3,0\n"]
    series = read_candles(_write(tmp_path, "c.csv", CANDLE_HEADER + "".join(rows)), "1m", 60_000)
    assert [(r.ts_ms, r.open) for r in series.rows] == [(0, 1.0), (60_000, 2.0), (240_000, 3.0)]
    rep = series.report
    assert (rep.rows, rep.duplicates_skipped, rep.out_of_order, rep.gaps) == (5, 1, 1, 2)


@pytest.mark.parametrize(
    ("row", "fragment"),
    [("30000,1,1,1,1,1\n", "not aligned to the 1m timeframe"), ("0,1,0.5,1,1,1\n", "inconsistent candle"),
     ("0,1,2,1,2,-1\n", "volume: negative value")],
)
def test_malformed_candle_file_raises_error_with_line(tmp_path: Path, row: str, fragment: str) -> None:
    err = _error(_write(tmp_path, "c.csv", CANDLE_HEADER + row), fmt="candles")
    assert err.line == 2 and fragment in err.problem


def test_bundled_tape_is_complete_and_ordered() -> None:
    rep = read_trades(TAPE).report
    assert (rep.rows, rep.kept, rep.duplicates_skipped, rep.out_of_order) == (12_477, 12_477, 0, 0)


# -- replay --------------------------------------------------------------------------------------
async def test_replay_same_input_gives_same_events_in_same_order() -> None:
    tape = read_trades(TAPE)
    a = _strip(await _collect(ReplaySource(tape, "XRP/ETH")))
    b = _strip(await _collect(ReplaySource(tape, "XRP/ETH")))
    assert len(a) == 12_477 and a == b
    assert all(isinstance(e, Trade) for e in a)
    assert [e.trade_id for e in a] == [r.trade_id for r in tape.rows]  # type: ignore[attr-defined]


async def test_replay_stamps_recv_ns_in_increasing_order() -> None:
    events = await _collect(ReplaySource(read_trades(TAPE), "XRP/ETH"), limit=100)
    stamps = [e.recv_ns for e in events]
    assert all(s > 0 for s in stamps) and stamps == sorted(stamps)


async def test_replay_loop_shifts_time_forward_and_keeps_trade_ids_unique(tmp_path: Path) -> None:
    tape = read_trades(_write(tmp_path, "t.csv", HEADER + "".join(GOOD)))
    src = ReplaySource(tape, "X", loop=True)
    events = await _collect(src, limit=9)
    ts = [e.ts_ms for e in events]
    assert ts == sorted(ts) and ts[3] - ts[0] == 3_600_000  # span rounded up to a whole hour
    assert len({e.trade_id for e in events}) == 9  # type: ignore[attr-defined]
    assert src.stats().passes == 2


async def test_replay_is_resumable_after_interruption() -> None:
    tape = read_trades(TAPE)
    src = ReplaySource(tape, "XRP/ETH", derive_quotes=True)
    first = await _collect(src, limit=101)  # stops right after a trade, before its quote
    rest = await _collect(src)
    whole = await _collect(ReplaySource(tape, "XRP/ETH", derive_quotes=True))
    assert _strip(first + rest) == _strip(whole)


async def test_replay_derived_quotes_follow_each_trade_around_its_price(tmp_path: Path) -> None:
    tape = read_trades(_write(tmp_path, "t.csv", HEADER + GOOD[0]))
    (trade, quote) = await _collect(ReplaySource(tape, "X", derive_quotes=True, quote_spread_bps=20.0))
    assert isinstance(trade, Trade) and isinstance(quote, Quote)
    assert quote.bid == pytest.approx(0.5 * 0.999) and quote.ask == pytest.approx(0.5 * 1.001)
    assert quote.mid == pytest.approx(trade.price)


async def test_replay_candles_emit_bars() -> None:
    series = read_candles(DATA / "binance_XRP-ETH_5m_2019-10.csv.gz", "5m", 300_000)
    events = await _collect(ReplaySource(series, "XRP/ETH"))
    assert len(events) == 706 and all(isinstance(e, Bar) and e.timeframe == "5m" for e in events)


async def test_replay_speed_paces_by_feed_time(tmp_path: Path) -> None:
    tape = read_trades(_write(tmp_path, "t.csv", HEADER + "".join(GOOD)))
    now = [0.0]
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    src = ReplaySource(tape, "X", speed=2.0, sleep=fake_sleep)
    src.pacer._clock = lambda: now[0]
    await _collect(src)
    assert sleeps == [pytest.approx(0.5), pytest.approx(0.5)]  # 1 s of feed time at 2x


# -- synthetic -----------------------------------------------------------------------------------
async def test_synthetic_same_seed_gives_same_events() -> None:
    a = _strip(await _collect(SyntheticSource(("A/B", "C/D"), seed=42, max_events=2_000)))
    b = _strip(await _collect(SyntheticSource(("A/B", "C/D"), seed=42, max_events=2_000)))
    c = _strip(await _collect(SyntheticSource(("A/B", "C/D"), seed=43, max_events=2_000)))
    assert len(a) == 2_000 and a == b and a != c


async def test_synthetic_quotes_have_spread_and_trades_print_at_the_touch() -> None:
    events = await _collect(SyntheticSource(("A/B",), seed=1, spread_bps=10.0, max_events=1_000))
    last: Quote | None = None
    for ev in events:
        if isinstance(ev, Quote):
            assert ev.ask > ev.bid > 0
            last = ev
        else:
            assert isinstance(ev, Trade) and last is not None and ev.size > 0
            assert ev.price == (last.ask if ev.side == "buy" else last.bid)


async def test_synthetic_is_resumable() -> None:
    src = SyntheticSource(("A/B",), seed=5, max_events=500)
    first = await _collect(src, limit=123)
    rest = await _collect(src)
    assert _strip(first + rest) == _strip(await _collect(SyntheticSource(("A/B",), seed=5, max_events=500)))
    assert src.stats().ended


# -- factory -------------------------------------------------------------------------------------
def test_build_source_replay_validates_file_at_start(tmp_path: Path) -> None:
    feed = FeedSection(replay=ReplaySection(path="missing.csv.gz"))
    with pytest.raises(DataFileError, match="file not found"):
        build_source(feed, lambda rel: tmp_path / rel)


def test_build_source_replay_uses_first_symbol_and_bundled_tape() -> None:
    src = build_source(FeedSection(), lambda rel: Path(__file__).resolve().parents[3] / rel)
    assert isinstance(src, ReplaySource) and src.symbols == ("XRP/ETH",)
    assert src.stats().rows == 12_477


def test_build_source_synthetic_uses_feed_symbols() -> None:
    feed = FeedSection(source="synthetic", symbols=("A/B", "C/D"), synthetic=SyntheticSection(seed=3))
    src = build_source(feed, Path)
    assert isinstance(src, SyntheticSource) and src.symbols == ("A/B", "C/D")


# -- end to end: replay -> feed -> strategy host -> intents ----------------------------------------
async def _replay_intents() -> list[tuple[str, str, str, str]]:
    import asyncio
    from decimal import Decimal

    from actors.feed import Feed
    from actors.kernel.channel import Channel
    from actors.model.orders import Fill, OrderEvent, OrderIntent, OrderStatus
    from actors.strategies import EmaCross
    from actors.strategy_api import StrategyContext
    from actors.strategy_host import OrderFeedback, StrategyHost

    cfg = FeedSection(symbols=("XRP/ETH",), timeframes=("1m",), on_end="stop")
    feed = Feed(cfg, ReplaySource(read_trades(TAPE), "XRP/ETH"))
    intents: Channel[OrderIntent] = Channel("intents", 64)
    events: Channel[OrderFeedback] = Channel("events", 64)
    host = StrategyHost.attach(feed, StrategyContext("ema", ("XRP/ETH",), "1m", {"fast": 5, "slow": 20}),
                               EmaCross, order_events=events, intents=intents)
    seen: list[tuple[str, str, str, str]] = []

    async def instant_fills() -> None:  # a stand-in for risk gate + paper venue
        async for i in intents:
            assert i.size is not None
            seen.append((i.intent_id, i.side.value, str(i.size), i.tag))
            fill = Fill(venue="t", trade_id=i.intent_id, client_order_id=i.intent_id, symbol=i.symbol,
                        side=i.side, price=Decimal("0.0014"), size=i.size)
            await events.send(OrderEvent(client_order_id=i.intent_id, strategy=i.strategy, symbol=i.symbol,
                                         status=OrderStatus.FILLED, filled=i.size, size=i.size, fill=fill))

    filler = asyncio.create_task(instant_fills())
    host_task = asyncio.create_task(host.main())
    await asyncio.wait_for(feed.main(), 10)
    await asyncio.wait_for(host_task, 10)
    intents.close()
    await filler
    return seen


async def test_replay_same_input_gives_same_intents_in_same_order() -> None:
    first = await _replay_intents()
    second = await _replay_intents()
    assert len(first) > 100 and first == second
    assert [s for _, s, _, _ in first[:4]] == ["buy", "sell", "buy", "sell"]
