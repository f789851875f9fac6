"""The files a download writes: names, rows in the strict format, appending, reading back.

The format is the one ``adapters.market_data.csv_reader`` reads (its header, column order and
value rules); numbers are written in plain decimal notation with the shortest digits that
give back the same float (``0.00141342``, never ``1.41342e-03``), and a trade's ``cost`` is
the exact product ``price * amount`` of the written digits.

Appending: every batch of rows is one write. A ``.gz`` file gets each batch as its own gzip
member (a gzip file may hold several; readers see one stream), so the file is complete after
every batch and an interrupted download keeps everything written so far.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from adapters.market_data.csv_reader import (
    CandleRow,
    CandleSeries,
    TradeRow,
    TradeTape,
    read_candles,
    read_trades,
)

__all__ = [
    "TRADES",
    "append_lines",
    "candle_line",
    "data_file_name",
    "plain_decimal",
    "read_back_candles",
    "read_back_trades",
    "trade_line",
]

#: The ``kind`` of a trade tape (a candle file's kind is its timeframe).
TRADES = "trades"


class _SilentLog:
    """A structlog-like logger that drops everything: the CLI prints its own report."""

    def bind(self, **_: Any) -> _SilentLog:
        return self

    def info(self, *_: Any, **__: Any) -> None:
        return None

    def warning(self, *_: Any, **__: Any) -> None:
        return None


def data_file_name(exchange_id: str, symbol: str, kind: str, *, gz: bool = True) -> str:
    """``<exchange>_<BASE>-<QUOTE>_<kind>.csv.gz``, like the bundled files (without their month).

    ``symbol`` is ccxt's unified ``BASE/QUOTE`` (a ``:SETTLE`` suffix is dropped); ``kind`` is
    :data:`TRADES` or the timeframe. One file per exchange, symbol and kind, so a re-run finds
    the file it continues.
    """
    pair = symbol.split(":", 1)[0].replace("/", "-")
    return f"{exchange_id}_{pair}_{kind}.csv" + (".gz" if gz else "")


def plain_decimal(value: float) -> str:
    """``value`` in plain decimal notation with the shortest round-tripping digits."""
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def candle_line(row: CandleRow) -> str:
    """One candle row of the file."""
    values = (row.open, row.high, row.low, row.close, row.volume)
    return ",".join([str(row.ts_ms), *(plain_decimal(v) for v in values)])


def trade_line(row: TradeRow) -> str:
    """One trade row of the file; ``cost`` is the exact product of the written price and amount."""
    price, amount = plain_decimal(row.price), plain_decimal(row.size)
    cost = format(Decimal(price) * Decimal(amount), "f")
    if "." in cost:
        cost = cost.rstrip("0").rstrip(".")
    return f"{row.ts_ms},{row.trade_id},{row.side},{price},{amount},{cost}"


def append_lines(path: Path, header: Sequence[str], lines: Sequence[str]) -> None:
    """Append ``lines`` to ``path`` in one write, creating it with ``header`` first if it is new."""
    if not lines:
        return
    new = not path.exists() or path.stat().st_size == 0
    text = "".join(f"{line}\n" for line in ([",".join(header)] if new else []) + list(lines))
    data = text.encode("utf-8")
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_back_candles(path: Path, timeframe: str, tf_ms: int) -> CandleSeries | None:
    """The candle file at ``path`` read by the strict reader; None when there is none yet.

    Raises ``DataFileError`` when the file exists but is not valid.
    """
    if not path.exists():
        return None
    return read_candles(path, timeframe, tf_ms, log=_SilentLog())


def read_back_trades(path: Path) -> TradeTape | None:
    """The trade tape at ``path`` read by the strict reader; None when there is none yet.

    Raises ``DataFileError`` when the file exists but is not valid.
    """
    if not path.exists():
        return None
    return read_trades(path, log=_SilentLog())
