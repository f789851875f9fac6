"""Recorded top-of-book quotes: a strict CSV reader, a writer and a replay source.

Format (header on line 1, exactly as written; numbers in plain decimal notation, an
exponent is accepted): ``ts_ms,bid,ask,bid_size,ask_size`` — ``ts_ms`` is a non-negative
integer (epoch milliseconds), ``bid`` and ``ask`` are > 0 with ``bid <= ask`` (a crossed
quote is malformed; a locked one, ``bid == ask``, is not), the sizes are >= 0. Plain
``.csv`` or gzip-compressed ``.csv.gz``.

Anything malformed raises ``DataFileError`` naming the file, the line and the problem,
exactly like the trade and candle readers (``csv_reader``), whatever the row's position: a
missing or unreadable file, an empty file, a wrong header, a wrong column count, a
non-numeric field (NaN and inf included), an out-of-range field (a zero or negative price, a
negative size, a number that overflows or underflows a float, a timestamp beyond 64 bits), a
crossed quote, a truncated or corrupt gzip stream, a last line without its terminator and a
file without data rows. A size of 0 is allowed: it means "not recorded".

Order rule: a row whose ``ts_ms`` is earlier than a previous row's is kept, in file order,
with its original timestamp, and counted (``out_of_order``); the bar builder's late-print
rule decides about it. Quotes have no identity, so nothing is skipped as a duplicate, and
they have no fixed interval, so there are no gaps. The count and the first such line are
logged once per file when it is read (``file_report.log_file_report``).

Quote files are large (a day of one symbol is millions of rows), so a validated file is
kept column-wise in typed arrays — 40 bytes per row instead of ~200 for a tuple of Python
floats — and the replay source builds each ``Quote`` only when it hands it out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import re
from array import array
from collections.abc import AsyncIterator, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from actors.feed import QuoteRun
from actors.kernel.clock import perf_ns
from actors.model.market import MarketEvent, Quote
from actors.ports.market_data import SourceStats
from adapters.market_data.csv_reader import _check_header, _int, _lines, _num, _split
from adapters.market_data.errors import DataFileError
from adapters.market_data.file_report import FileReport, log_file_report
from adapters.market_data.pacing import Pacer, Sleep

__all__ = ["QUOTE_HEADER", "QuoteReplaySource", "QuoteRow", "QuoteTape", "read_quotes", "write_quotes"]

QUOTE_HEADER = ("ts_ms", "bid", "ask", "bid_size", "ask_size")
QuoteRow = tuple[int, float, float, float, float]

_D = r"(?:[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+)"
# One match per well-formed line; only a line that fails it goes through the per-field
# checks, which name the offending column.
_ROW = re.compile(rf"([0-9]+),({_D}),({_D}),({_D}),({_D})")
_INF = float("inf")
_LOOP_ALIGN_MS = 3_600_000
_YIELD_EVERY = 256


@dataclasses.dataclass(frozen=True, slots=True)
class QuoteTape:
    """A validated quote file, column-wise: ``ts_ms`` (array 'q') and four float columns (array 'd')."""

    path: str
    ts_ms: array[int]
    bid: array[float]
    ask: array[float]
    bid_size: array[float]
    ask_size: array[float]
    report: FileReport

    def __len__(self) -> int:
        return len(self.ts_ms)

    def row(self, i: int) -> QuoteRow:
        """Row ``i`` as (ts_ms, bid, ask, bid_size, ask_size)."""
        return self.ts_ms[i], self.bid[i], self.ask[i], self.bid_size[i], self.ask_size[i]


def _parse_row(p: Path, lineno: int, text: str) -> QuoteRow:
    """Validate one data line; raise DataFileError naming the problem."""
    m = _ROW.fullmatch(text)
    if m is None:
        ts_s, bid_s, ask_s, bs_s, as_s = _split(p, lineno, text, 5)
        ts = _int(p, lineno, "ts_ms", ts_s)
        bid = _num(p, lineno, "bid", bid_s, positive=True)
        ask = _num(p, lineno, "ask", ask_s, positive=True)
        bs = _num(p, lineno, "bid_size", bs_s, positive=False)
        asz = _num(p, lineno, "ask_size", as_s, positive=False)
    else:
        ts_s, bid_s, ask_s, bs_s, as_s = m.groups()
        ts = int(ts_s)
        bid = float(bid_s)
        ask = float(ask_s)
        bs = float(bs_s)
        asz = float(as_s)
        if not (0.0 < bid < _INF and 0.0 < ask < _INF and (0.0 < bs < _INF or bs_s == "0")
                and (0.0 < asz < _INF or as_s == "0")):
            # Zero, overflowing or underflowing values (or a zero size not written "0"): the
            # per-field checks say which column, if any, is wrong.
            _num(p, lineno, "bid", bid_s, positive=True)
            _num(p, lineno, "ask", ask_s, positive=True)
            _num(p, lineno, "bid_size", bs_s, positive=False)
            _num(p, lineno, "ask_size", as_s, positive=False)
    if bid > ask:
        raise DataFileError(p, lineno, f"crossed quote: bid {bid_s} > ask {ask_s}")
    return ts, bid, ask, bs, asz


def read_quotes(path: Path | str, *, log: Any | None = None) -> QuoteTape:
    """Read and validate a whole quote file; log its report. Raises DataFileError (file, line, problem)."""
    p = Path(path)
    lines = _lines(p)
    _check_header(p, lines, QUOTE_HEADER)
    ts_col: array[int] = array("q")
    bid_col: array[float] = array("d")
    ask_col: array[float] = array("d")
    bs_col: array[float] = array("d")
    as_col: array[float] = array("d")
    ooo = first_ooo = 0
    last_ts = -1
    for lineno, text in lines:
        ts, bid, ask, bs, asz = _parse_row(p, lineno, text)
        if ts >= 1 << 63:
            raise DataFileError(p, lineno, f"ts_ms: value out of range {ts}")
        if ts < last_ts:
            ooo += 1
            first_ooo = first_ooo or lineno
        else:
            last_ts = ts
        ts_col.append(ts)
        bid_col.append(bid)
        ask_col.append(ask)
        bs_col.append(bs)
        as_col.append(asz)
    n = len(ts_col)
    if n == 0:
        raise DataFileError(p, 2, "no data rows after the header")
    report = FileReport(str(p), n, n, out_of_order=ooo, kind="quotes", out_of_order_rows="kept",
                        first_out_of_order_line=first_ooo)
    log_file_report(report, log)
    return QuoteTape(str(p), ts_col, bid_col, ask_col, bs_col, as_col, report)


def _fmt(x: float) -> str:
    """Shortest round-tripping text of ``x`` in plain decimal notation (no exponent)."""
    text = repr(x)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def write_quotes(path: Path | str, rows: Iterable[QuoteRow]) -> int:
    """Write ``rows`` as a quote file (header included; gzip when the name ends in .gz).

    Floats are written in their shortest round-tripping decimal form, so ``read_quotes``
    gives back exactly the same values. Returns the number of rows written.
    """
    p = Path(path)
    n = 0
    f: TextIO = (
        gzip.open(p, "wt", encoding="utf-8", newline="\n") if p.suffix == ".gz"
        else p.open("w", encoding="utf-8", newline="\n")
    )
    with f:
        f.write(",".join(QUOTE_HEADER) + "\n")
        buf: list[str] = []
        for ts, bid, ask, bs, asz in rows:
            buf.append(f"{ts},{_fmt(bid)},{_fmt(ask)},{_fmt(bs)},{_fmt(asz)}\n")
            n += 1
            if len(buf) >= 4096:
                f.write("".join(buf))
                buf.clear()
        f.write("".join(buf))
    return n


class QuoteReplaySource:
    """Replays a ``QuoteTape`` for one symbol as ``Quote`` events (a ``MarketDataSource``).

    ``speed``: 1 = real time, N = N times faster, 0 = as fast as possible (see ``Pacer``).
    ``loop``: at the end start over with every timestamp shifted forward by the file's span
    rounded up to a whole hour, so time keeps increasing and bar boundaries stay put.
    ``max_events`` (0 = no limit) ends the source after that many events. Resumable: a new
    ``events()`` call continues after the last event handed out. Each event is stamped with
    ``recv_ns`` when it is built, i.e. when it enters the daemon.
    """

    def __init__(
        self,
        tape: QuoteTape,
        symbol: str,
        *,
        speed: float = 0.0,
        loop: bool = False,
        max_events: int = 0,
        sleep: Sleep | None = None,
        name: str = "quotes",
    ) -> None:
        if not len(tape):
            raise ValueError(f"{tape.path}: nothing to replay")
        self.name = name
        self.symbol = symbol
        self.symbols: tuple[str, ...] = (symbol,)
        self.tape = tape
        self.loop = loop
        self.pacer = Pacer(speed, sleep=sleep)
        self._max_events = max_events
        ts = tape.ts_ms
        span = max(ts) - min(ts) + 1
        self._ts_shift = -(-span // _LOOP_ALIGN_MS) * _LOOP_ALIGN_MS
        self._start_ts = int(min(ts))
        self._pass = 0
        self._pos = 0
        self._ended = False

    @property
    def start_ts_ms(self) -> int:
        """Market time of the data's first event (a market clock starts here)."""
        return self._start_ts

    def set_speed(self, speed: float) -> None:
        """Change the replay speed (hot reload)."""
        self.pacer.set_speed(speed)

    def stats(self) -> SourceStats:
        """Counters of the file and of what was handed out."""
        rep = self.tape.report
        events = self._pass * len(self.tape) + self._pos
        return SourceStats(name=self.name, events=events, quotes=events, rows=rep.rows,
                           duplicates_skipped=rep.duplicates_skipped, out_of_order=rep.out_of_order, gaps=rep.gaps,
                           passes=self._pass, ended=self._ended)

    async def close(self) -> None:
        """Nothing to release: the file was read at start-up."""

    async def event_batches(self) -> AsyncIterator[Sequence[MarketEvent]]:
        """Yield the quotes from the current position on, in lists (``actors.feed.BatchSource``).

        The same events as ``events()``, in the same order. As fast as possible (speed 0)
        a list holds up to 256 quotes, built in one pass over the columns, and the source
        yields to the loop after each; paced, each quote is its own list, handed out at its
        time.
        """
        tape = self.tape
        ts_col, bid_col, ask_col, bs_col, as_col = tape.ts_ms, tape.bid, tape.ask, tape.bid_size, tape.ask_size
        n = len(ts_col)
        symbol = self.symbol
        perf = perf_ns
        pacer = self.pacer
        wait = pacer.wait_until
        sleep0 = asyncio.sleep
        in_order = not tape.report.out_of_order
        while not self._ended:
            ts_off = self._pass * self._ts_shift
            stop = n
            if self._max_events:
                stop = min(n, self._max_events - self._pass * n)
            pos = self._pos
            while pos < stop:
                if pacer.speed > 0.0:
                    ts = ts_col[pos] + ts_off
                    await wait(ts)
                    batch: Sequence[MarketEvent] = [
                        Quote(symbol=symbol, ts_ms=ts, recv_ns=perf(), bid=bid_col[pos], ask=ask_col[pos],
                              bid_size=bs_col[pos], ask_size=as_col[pos])
                    ]
                    pos += 1
                else:
                    end = min(stop, pos + _YIELD_EVERY)
                    stamps: Sequence[int] = ts_col[pos:end]
                    if ts_off:
                        stamps = [ts + ts_off for ts in stamps]
                    rows = zip(stamps, bid_col[pos:end], ask_col[pos:end], bs_col[pos:end], as_col[pos:end],
                               strict=True)
                    quotes = [
                        Quote(symbol=symbol, ts_ms=ts, recv_ns=perf(), bid=bid, ask=ask, bid_size=bs, ask_size=asz)
                        for ts, bid, ask, bs, asz in rows
                    ]
                    # A file without out-of-order rows is in time order: the feed may take it in runs.
                    batch = QuoteRun(symbol, quotes, stamps) if in_order else quotes
                    pos = end
                self._pos = pos  # resumable: the next call continues after this batch
                yield batch
                if pacer.speed <= 0.0:
                    await sleep0(0)  # as fast as possible, but let other tasks run
            if stop < n:  # max_events reached
                self._ended = True
                return
            self._pos = 0
            self._pass += 1
            if not self.loop:
                self._ended = True
                return

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Yield the quotes from the current position on."""
        tape = self.tape
        ts_col, bid_col, ask_col, bs_col, as_col = tape.ts_ms, tape.bid, tape.ask, tape.bid_size, tape.ask_size
        n = len(ts_col)
        symbol = self.symbol
        perf = perf_ns
        pacer = self.pacer
        wait = pacer.wait_until
        sleep0 = asyncio.sleep
        yields = 0
        while not self._ended:
            ts_off = self._pass * self._ts_shift
            stop = n
            if self._max_events:
                stop = min(n, self._max_events - self._pass * n)
            pos = self._pos
            while pos < stop:
                ts = ts_col[pos] + ts_off
                if pacer.speed > 0.0:
                    await wait(ts)
                else:
                    yields += 1
                    if yields >= _YIELD_EVERY:  # as fast as possible, but let other tasks run
                        yields = 0
                        await sleep0(0)
                ev = Quote(symbol=symbol, ts_ms=ts, recv_ns=perf(), bid=bid_col[pos], ask=ask_col[pos],
                           bid_size=bs_col[pos], ask_size=as_col[pos])
                pos += 1
                self._pos = pos  # resumable: the next call continues after this event
                yield ev
            if stop < n:  # max_events reached
                self._ended = True
                return
            self._pos = 0
            self._pass += 1
            if not self.loop:
                self._ended = True
                return
