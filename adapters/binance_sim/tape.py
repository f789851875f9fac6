"""Loading recorded CSV files (gzip allowed): trade tapes and candle files.

- trade tape: ``ts_ms,trade_id,side,price,amount,cost`` (the replay driver's prints and
  recorded trade history);
- candle file: ``ts_ms,open,high,low,close,volume`` (recorded kline history), ``ts_ms`` the
  candle's open time.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

_COLUMNS = ("ts_ms", "trade_id", "side", "price", "amount")
_CANDLE_COLUMNS = ("ts_ms", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class TapeTrade:
    """One recorded print; ``side`` is the taker side, ``BUY`` or ``SELL``."""

    ts_ms: int
    trade_id: int
    side: str
    price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class TapeCandle:
    """One recorded candle (``ts_ms`` is its open time)."""

    ts_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def _reader(path: str | Path) -> csv.DictReader[str]:
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        raw = gzip.decompress(raw)
    return csv.DictReader(io.StringIO(raw.decode("utf-8")))


def load_tape(path: str | Path) -> list[TapeTrade]:
    """Read a whole tape into memory, in file order (which must be time order)."""
    reader = _reader(path)
    missing = [c for c in _COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{path}: tape lacks columns {missing}")
    out: list[TapeTrade] = []
    last_ts = -1
    for row in reader:
        ts = int(row["ts_ms"])
        if ts < last_ts:
            raise ValueError(f"{path}: tape is not in time order at trade {row['trade_id']}")
        last_ts = ts
        side = row["side"].strip().upper()
        if side not in ("BUY", "SELL"):
            raise ValueError(f"{path}: bad side {row['side']!r}")
        out.append(TapeTrade(ts, int(row["trade_id"]), side, Decimal(row["price"]), Decimal(row["amount"])))
    if not out:
        raise ValueError(f"{path}: empty tape")
    return out


def load_candles(path: str | Path) -> list[TapeCandle]:
    """Read a whole candle file into memory; rows must be in strictly increasing open time."""
    reader = _reader(path)
    missing = [c for c in _CANDLE_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ValueError(f"{path}: candle file lacks columns {missing}")
    out: list[TapeCandle] = []
    for row in reader:
        ts = int(row["ts_ms"])
        if out and ts <= out[-1].ts_ms:
            raise ValueError(f"{path}: candles are not in increasing time order at {ts}")
        out.append(
            TapeCandle(
                ts,
                Decimal(row["open"]),
                Decimal(row["high"]),
                Decimal(row["low"]),
                Decimal(row["close"]),
                Decimal(row["volume"]),
            )
        )
    if not out:
        raise ValueError(f"{path}: empty candle file")
    return out
