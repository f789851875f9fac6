"""Loading a CSV trade tape (``ts_ms,trade_id,side,price,amount,cost``; gzip allowed)."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

_COLUMNS = ("ts_ms", "trade_id", "side", "price", "amount")


@dataclass(frozen=True, slots=True)
class TapeTrade:
    """One recorded print; ``side`` is the taker side, ``BUY`` or ``SELL``."""

    ts_ms: int
    trade_id: int
    side: str
    price: Decimal
    amount: Decimal


def load_tape(path: str | Path) -> list[TapeTrade]:
    """Read a whole tape into memory, in file order (which must be time order)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        raw = gzip.decompress(raw)
    reader = csv.DictReader(io.StringIO(raw.decode("utf-8")))
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
