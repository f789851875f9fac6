"""Strict readers for recorded trade tapes and candle files (.csv or gzip-compressed .csv.gz).

Formats (header on line 1, exactly as written; numbers in plain decimal notation):

- trades:  ``ts_ms,trade_id,side,price,amount,cost`` — ``side`` is the taker side
  (``buy``/``sell``), ``price`` and ``amount`` are > 0 and ``cost`` must equal
  ``price * amount`` to 1e-6 relative (a check that also catches a cut-off last digit).
- candles: ``ts_ms,open,high,low,close,volume`` — ``ts_ms`` is the candle's open time and
  must be a multiple of the timeframe; prices > 0, ``low <= open, close <= high``,
  ``volume >= 0``.

Anything malformed raises ``DataFileError`` naming the file, the line and the problem,
whatever the row's position (a row that is later skipped as a duplicate or as out of order
is validated first): a missing or unreadable file, an empty file, a wrong header, a wrong
column count, a non-numeric field (NaN and inf included), a value out of range (zero or
negative where > 0 is required, a number that overflows or underflows a float, an integer
beyond 64 bits), a trade whose ``price * amount`` overflows or does not equal ``cost``, an
inconsistent candle (``high < low``, open or close outside ``[low, high]``), a truncated
gzip stream, corrupt gzip data, a last line without its line terminator (the file was cut
off mid-line) and a file without data rows.

Order problems are not errors; they are handled by fixed rules, counted in the file's
``FileReport`` (first line of each kind included) and logged once per file when it is read
(``file_report.log_file_report``: info when clean, warning otherwise):

- trades: a ``trade_id`` already seen earlier in the file is a duplicate print and is
  skipped (``duplicates_skipped``). A row whose ``ts_ms`` is earlier than a previous row's
  is kept, in file order, with its original timestamp (``out_of_order``): rewriting the
  time would silently move the print into another bar, so the decision is left to the bar
  builder's late-print rule (``actors.bars``). Rows are never reordered.
- candles: a row with the same open time as the previous kept row is a duplicate and is
  skipped (the first one wins); a row with an earlier open time than the previous kept row
  is dropped and counted as ``out_of_order`` (an emitted bar cannot be taken back, and bars
  must reach indicators in time order). Missing candles between two rows are counted as
  ``gaps`` (a minute without trades has no candle on most exchanges; nothing is invented).

The files are small, so they are read and validated completely at start-up, before
trading starts; the replay source then serves the validated rows from memory.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from adapters.market_data.errors import DataFileError
from adapters.market_data.file_report import FileReport, log_file_report

__all__ = [
    "CANDLE_HEADER",
    "TRADE_HEADER",
    "CandleRow",
    "CandleSeries",
    "DataFileError",
    "FileReport",
    "TradeRow",
    "TradeTape",
    "read_candles",
    "read_trades",
]

TRADE_HEADER = ("ts_ms", "trade_id", "side", "price", "amount", "cost")
CANDLE_HEADER = ("ts_ms", "open", "high", "low", "close", "volume")
_GZIP_MAGIC = b"\x1f\x8b"
_INT = re.compile(r"[0-9]+")
_DEC = re.compile(r"[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+")
#: Matches when the mantissa (the text before any exponent) has a non-zero digit.
_NONZERO_MANTISSA = re.compile(r"[0-9.]*[1-9]")
_COST_REL_TOL = 1e-6
#: Integers (timestamps, trade ids) must fit a signed 64-bit column.
_INT_LIMIT = 1 << 63
_INF = float("inf")


class TradeRow(NamedTuple):
    """One validated trade print (prices and sizes as parsed floats)."""

    ts_ms: int
    trade_id: int
    side: str
    price: float
    size: float


class CandleRow(NamedTuple):
    """One validated candle; ``ts_ms`` is its open time."""

    ts_ms: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclasses.dataclass(frozen=True, slots=True)
class TradeTape:
    """A validated trade tape."""

    path: str
    rows: tuple[TradeRow, ...]
    report: FileReport


@dataclasses.dataclass(frozen=True, slots=True)
class CandleSeries:
    """A validated candle file of one timeframe."""

    path: str
    timeframe: str
    timeframe_ms: int
    rows: tuple[CandleRow, ...]
    report: FileReport


def _open(path: Path) -> tuple[io.BufferedIOBase, io.BufferedIOBase]:
    """Open ``path``; return (raw file, reader), the reader decompressing gzip content."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise DataFileError(path, 0, "file not found") from None
    except IsADirectoryError:
        raise DataFileError(path, 0, "is a directory, not a data file") from None
    except OSError as exc:
        raise DataFileError(path, 0, f"cannot read file: {exc.strerror or exc}") from None
    magic = f.read(2)
    f.seek(0)
    if magic == _GZIP_MAGIC:
        return f, gzip.GzipFile(fileobj=f, mode="rb")
    if path.suffix == ".gz":
        f.close()
        raise DataFileError(path, 0, "file name ends in .gz but the content is not gzip data")
    return f, f


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text without terminator); raise DataFileError on I/O problems."""
    raw_file, f = _open(path)
    lineno = 0
    try:
        with f:
            while True:
                try:
                    raw = f.readline()
                except EOFError:
                    raise DataFileError(
                        path, lineno + 1,
                        f"truncated gzip stream: compressed data ends after line {lineno}",
                    ) from None
                except (gzip.BadGzipFile, zlib.error) as exc:
                    raise DataFileError(path, lineno + 1, f"corrupt gzip data: {exc}") from None
                except OSError as exc:
                    raise DataFileError(path, lineno + 1, f"read error: {exc}") from None
                if not raw:
                    return
                lineno += 1
                if not raw.endswith(b"\n"):
                    raise DataFileError(
                        path, lineno, "truncated file: the last line has no line terminator (cut off mid-line?)"
                    )
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise DataFileError(path, lineno, f"not UTF-8 text (byte {exc.start})") from None
                yield lineno, text.rstrip("\r\n")
    finally:
        raw_file.close()


def _check_header(path: Path, lines: Iterator[tuple[int, str]], expected: tuple[str, ...]) -> None:
    first = next(lines, None)
    if first is None:
        raise DataFileError(path, 1, f"empty file (expected the header {','.join(expected)})")
    lineno, text = first
    if tuple(text.split(",")) != expected:
        raise DataFileError(path, lineno, f"wrong header {text!r} (expected {','.join(expected)!r})")


def _int(path: Path, lineno: int, name: str, text: str) -> int:
    """A non-negative integer that fits 64 bits."""
    if not _INT.fullmatch(text):
        raise DataFileError(path, lineno, f"{name}: expected a non-negative integer, got {text!r}")
    value = int(text)
    if value >= _INT_LIMIT:
        raise DataFileError(path, lineno, f"{name}: value out of range {text}")
    return value


def _num(path: Path, lineno: int, name: str, text: str, *, positive: bool) -> float:
    """A non-negative decimal (> 0 when ``positive``) that neither overflows nor underflows a float."""
    if not _DEC.fullmatch(text):
        if text.startswith("-") and _DEC.fullmatch(text[1:]):
            raise DataFileError(path, lineno, f"{name}: negative value {text}")
        raise DataFileError(path, lineno, f"{name}: expected a decimal number, got {text!r}")
    value = float(text)
    if value == _INF:
        raise DataFileError(path, lineno, f"{name}: value out of range {text}")
    if value == 0.0 and _NONZERO_MANTISSA.match(text):
        # "1e-400" underflows to 0.0: the file said something else.
        raise DataFileError(path, lineno, f"{name}: value out of range {text}")
    if positive and value <= 0.0:
        raise DataFileError(path, lineno, f"{name}: expected a value > 0, got {text}")
    return value


def _split(path: Path, lineno: int, text: str, n: int) -> list[str]:
    if not text:
        raise DataFileError(path, lineno, "empty line")
    cols = text.split(",")
    if len(cols) != n:
        raise DataFileError(path, lineno, f"expected {n} columns, got {len(cols)}: {text!r}")
    return cols


def read_trades(path: Path | str, *, log: Any | None = None) -> TradeTape:
    """Read and validate a whole trade tape; log its report (``log_file_report``). Raises DataFileError."""
    p = Path(path)
    lines = _lines(p)
    _check_header(p, lines, TRADE_HEADER)
    rows: list[TradeRow] = []
    seen: set[int] = set()
    n = dup = ooo = 0
    first_dup = first_ooo = 0
    last_ts = -1
    for lineno, text in lines:
        ts_s, id_s, side, price_s, amount_s, cost_s = _split(p, lineno, text, 6)
        ts = _int(p, lineno, "ts_ms", ts_s)
        trade_id = _int(p, lineno, "trade_id", id_s)
        if side not in ("buy", "sell"):
            raise DataFileError(p, lineno, f"side: expected 'buy' or 'sell', got {side!r}")
        price = _num(p, lineno, "price", price_s, positive=True)
        size = _num(p, lineno, "amount", amount_s, positive=True)
        cost = _num(p, lineno, "cost", cost_s, positive=False)
        expected = price * size
        if not 0.0 < expected < _INF:
            # An overflowing product made the relative check below vacuous (inf > inf is false).
            raise DataFileError(p, lineno, f"price * amount out of range ({price_s} * {amount_s} = {expected!r})")
        if abs(cost - expected) > _COST_REL_TOL * expected:
            raise DataFileError(
                p, lineno, f"cost {cost_s} does not equal price * amount ({price_s} * {amount_s} = {expected!r})"
            )
        n += 1
        if trade_id in seen:
            dup += 1
            first_dup = first_dup or lineno
            continue
        seen.add(trade_id)
        if ts < last_ts:
            ooo += 1
            first_ooo = first_ooo or lineno
        else:
            last_ts = ts
        rows.append(TradeRow(ts, trade_id, side, price, size))
    if n == 0:
        raise DataFileError(p, 2, "no data rows after the header")
    report = FileReport(str(p), n, len(rows), duplicates_skipped=dup, out_of_order=ooo, kind="trades",
                        out_of_order_rows="kept", first_duplicate_line=first_dup, first_out_of_order_line=first_ooo)
    log_file_report(report, log)
    return TradeTape(str(p), tuple(rows), report)


def read_candles(path: Path | str, timeframe: str, timeframe_ms: int, *, log: Any | None = None) -> CandleSeries:
    """Read and validate a whole candle file whose rows are ``timeframe`` candles; log its report."""
    p = Path(path)
    lines = _lines(p)
    _check_header(p, lines, CANDLE_HEADER)
    rows: list[CandleRow] = []
    n = dup = ooo = gaps = 0
    first_dup = first_ooo = first_gap = 0
    last_ts = -1
    for lineno, text in lines:
        ts_s, o_s, h_s, l_s, c_s, v_s = _split(p, lineno, text, 6)
        ts = _int(p, lineno, "ts_ms", ts_s)
        o = _num(p, lineno, "open", o_s, positive=True)
        h = _num(p, lineno, "high", h_s, positive=True)
        lo = _num(p, lineno, "low", l_s, positive=True)
        c = _num(p, lineno, "close", c_s, positive=True)
        v = _num(p, lineno, "volume", v_s, positive=False)
        if ts % timeframe_ms:
            raise DataFileError(p, lineno, f"ts_ms {ts} is not aligned to the {timeframe} timeframe")
        if not (lo <= o <= h and lo <= c <= h):
            raise DataFileError(p, lineno, f"inconsistent candle: expected low <= open, close <= high in {text!r}")
        n += 1
        if ts == last_ts:
            dup += 1
            first_dup = first_dup or lineno
            continue
        if ts < last_ts:
            ooo += 1
            first_ooo = first_ooo or lineno
            continue
        if last_ts >= 0 and ts > last_ts + timeframe_ms:
            gaps += (ts - last_ts) // timeframe_ms - 1
            first_gap = first_gap or lineno
        last_ts = ts
        rows.append(CandleRow(ts, o, h, lo, c, v))
    if n == 0:
        raise DataFileError(p, 2, "no data rows after the header")
    report = FileReport(str(p), n, len(rows), duplicates_skipped=dup, out_of_order=ooo, gaps=gaps, kind="candles",
                        out_of_order_rows="dropped", first_duplicate_line=first_dup, first_out_of_order_line=first_ooo,
                        first_gap_line=first_gap)
    log_file_report(report, log)
    return CandleSeries(str(p), timeframe, timeframe_ms, tuple(rows), report)
