"""Quote files: strict reading (file, line, problem), exact round trip, and the replay source."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from actors.model.market import MarketEvent, Quote
from adapters.market_data.errors import DataFileError
from adapters.market_data.quotes import QuoteReplaySource, read_quotes, write_quotes

HEADER = "ts_ms,bid,ask,bid_size,ask_size\n"
GOOD = ["1000,100.5,100.6,1,2\n", "2000,100.4,100.4,0,0.5\n", "3000,0.00031,0.00032,1e3,7\n"]


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    data = text.encode() if isinstance(text, str) else text
    p.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return p


def _error(path: Path) -> DataFileError:
    with pytest.raises(DataFileError) as info:
        read_quotes(path)
    assert str(path) in str(info.value)
    return info.value


@pytest.mark.parametrize("name", ["q.csv", "q.csv.gz"])
def test_good_file_plain_or_gzip_reads_all_rows(tmp_path: Path, name: str) -> None:
    tape = read_quotes(_write(tmp_path, name, HEADER + "".join(GOOD)))
    assert [tape.row(i) for i in range(len(tape))] == [
        (1000, 100.5, 100.6, 1.0, 2.0), (2000, 100.4, 100.4, 0.0, 0.5), (3000, 0.00031, 0.00032, 1000.0, 7.0)]
    assert tape.report.rows == 3 and tape.report.kept == 3 and tape.report.out_of_order == 0


@pytest.mark.parametrize(
    ("lines", "line", "fragment"),
    [
        (["ts,bid,ask,bid_size,ask_size\n"], 1, "wrong header"),
        ([], 2, "no data rows"),
        (["1000,100.5,100.6,1\n"], 2, "expected 5 columns"),
        (["1000,100.5,abc,1,2\n"], 2, "ask: expected a decimal number"),
        (["1000,-100.5,100.6,1,2\n"], 2, "bid: negative value"),
        (["1000,0,100.6,1,2\n"], 2, "bid: expected a value > 0"),
        (["1000,100.5,100.6,-1,2\n"], 2, "bid_size: negative value"),
        (["1000,100.5,100.6,1,nan\n"], 2, "ask_size: expected a decimal number"),
        (["1000,100.5,1e999,1,2\n"], 2, "ask: value out of range"),
        (["10.5,100.5,100.6,1,2\n"], 2, "ts_ms: expected a non-negative integer"),
        (["1000,100.7,100.6,1,2\n"], 2, "crossed quote"),
        (["1000,100.5,100.6,1,2\n", "\n"], 3, "empty line"),
        (["1000,100.5,100.6,1,2\n", "2000,100.5,100.6,1,2"], 3, "truncated file"),
    ],
)
def test_malformed_quote_file_raises_error_with_file_and_line(
    tmp_path: Path, lines: list[str], line: int, fragment: str
) -> None:
    text = "".join(lines) if lines and not lines[0][0].isdigit() else HEADER + "".join(lines)
    err = _error(_write(tmp_path, "q.csv", text))
    assert err.line == line and fragment in err.problem, err


def test_empty_missing_and_truncated_gzip_files(tmp_path: Path) -> None:
    assert "empty file" in _error(_write(tmp_path, "e.csv", "")).problem
    assert _error(tmp_path / "missing.csv").line == 0
    data = gzip.compress((HEADER + "".join(GOOD) * 200).encode())
    err = _error(_write(tmp_path, "t.csv", data[: len(data) // 2]))  # .csv name, gzip content
    assert "gzip" in err.problem


def test_out_of_order_rows_are_kept_in_file_order_and_counted(tmp_path: Path) -> None:
    tape = read_quotes(_write(tmp_path, "q.csv", HEADER + "2000,1,2,0,0\n1000,1,2,0,0\n3000,1,2,0,0\n"))
    assert list(tape.ts_ms) == [2000, 1000, 3000] and tape.report.out_of_order == 1


@pytest.mark.parametrize("name", ["rt.csv", "rt.csv.gz"])
def test_write_then_read_gives_back_exactly_the_same_values(tmp_path: Path, name: str) -> None:
    rows = [(1, 1e-7, 0.1 + 0.2, 0.0, 123456789.125), (2, 100.01, 100.02, 1e22, 5e-324)]
    path = tmp_path / name
    assert write_quotes(path, rows) == 2
    if not name.endswith(".gz"):
        assert "e" not in path.read_text().split("\n", 1)[1]  # plain decimal notation
    tape = read_quotes(path)
    assert [tape.row(i) for i in range(len(tape))] == rows


async def _collect(source: QuoteReplaySource, limit: int | None = None) -> list[MarketEvent]:
    out: list[MarketEvent] = []
    async for ev in source.events():
        out.append(ev)
        if limit is not None and len(out) >= limit:
            break
    return out


def _plain(events: list[MarketEvent]) -> list[tuple[int, float, float, float, float]]:
    out = []
    for e in events:
        assert isinstance(e, Quote)
        out.append((e.ts_ms, e.bid, e.ask, e.bid_size, e.ask_size))
    return out


async def test_replay_source_yields_quotes_stamped_in_order_and_is_resumable(tmp_path: Path) -> None:
    tape = read_quotes(_write(tmp_path, "q.csv", HEADER + "".join(GOOD)))
    src = QuoteReplaySource(tape, "X/Y")
    first = await _collect(src, limit=2)
    rest = await _collect(src)
    events = first + rest
    assert _plain(events) == [tape.row(i) for i in range(3)]
    assert all(e.symbol == "X/Y" and e.recv_ns > 0 for e in events)
    assert [e.recv_ns for e in events] == sorted(e.recv_ns for e in events)
    stats = src.stats()
    assert stats.events == stats.quotes == 3 and stats.ended and stats.passes == 1


async def test_replay_source_loop_shifts_time_and_max_events_ends_it(tmp_path: Path) -> None:
    tape = read_quotes(_write(tmp_path, "q.csv", HEADER + "".join(GOOD)))
    src = QuoteReplaySource(tape, "X/Y", loop=True, max_events=7)
    ts = [e.ts_ms for e in await _collect(src)]
    hour = 3_600_000
    assert ts == [1000, 2000, 3000, 1000 + hour, 2000 + hour, 3000 + hour, 1000 + 2 * hour]
    assert src.stats().events == 7 and src.stats().ended
