"""Numbers and tables as the CLI prints them: plain decimals at the instrument's precision.

``format_number`` never prints an exponent and prints every zero as "0"; ``Precision``
knows, from a config's ``[instruments]``, how many places prices (tick size), sizes (step
size) and money (its asset's finest tick size) get; ``table`` aligns rows with it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from decimal import Context as DecimalContext
from typing import Any

__all__ = ["NO_PRECISION", "Precision", "cell", "format_number", "key_values", "ms_time", "table"]

# -- numbers ----------------------------------------------------------------------------------------
PRICE_KEYS = frozenset({"price", "avg_price", "limit_price", "trigger_price", "mark", "open", "high", "low",
                        "close"})
SIZE_KEYS = frozenset({"size", "filled", "volume", "display_size", "protected"})
MONEY_KEYS = frozenset({"realized_pnl", "unrealized_pnl", "pnl", "fees", "fee", "notional", "equity", "equity_peak",
                        "day_start_equity", "daily_pnl", "gross_exposure", "free", "locked", "total"})
_WIDE = DecimalContext(prec=80)  # quantizing must never fail for lack of digits


def format_number(value: Decimal | float | int | str, decimals: int | None = None) -> str:
    """A number as plain text: never an exponent, every zero as "0".

    With ``decimals`` it is rounded (half-even) to that many places and printed with them
    (``0.00141400``), else printed as exactly as it is without trailing zeros. A string that
    is not a number comes back unchanged.
    """
    try:
        d = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        return str(value)
    if not d.is_finite():
        return str(value)
    if decimals is not None:
        d = d.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN, context=_WIDE)
    if d.is_zero():
        return "0"
    return format(d if decimals is not None else d.normalize(_WIDE), "f")


def _places(increment: Any) -> int | None:
    """Decimal places of an increment such as "0.00000001" (8) or "1" (0); None if it is not a number."""
    try:
        exponent = Decimal(str(increment)).normalize().as_tuple().exponent
    except InvalidOperation:
        return None
    return max(0, -exponent) if isinstance(exponent, int) else None


@dataclasses.dataclass(frozen=True)
class Precision:
    """Decimal places to print numbers with, from the running config's ``[instruments]``.

    Prices at their instrument's tick size, sizes at its step size, money (PnL, fees,
    equity, balances) at its asset's precision: the finest tick size of the instruments
    quoted in that asset. A number it knows nothing about is printed as it is.
    """

    tick: Mapping[str, int] = dataclasses.field(default_factory=dict)
    step: Mapping[str, int] = dataclasses.field(default_factory=dict)
    quote: Mapping[str, str] = dataclasses.field(default_factory=dict)
    asset: Mapping[str, int] = dataclasses.field(default_factory=dict)
    equity_asset: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Precision:
        """From a plain config (``GET /config``'s ``config``, or ``config_to_plain``)."""
        tick: dict[str, int] = {}
        step: dict[str, int] = {}
        quote: dict[str, str] = {}
        asset: dict[str, int] = {}
        instruments = config.get("instruments")
        for symbol, inst in (instruments if isinstance(instruments, dict) else {}).items():
            if not isinstance(inst, dict):
                continue
            t, z, q = _places(inst.get("tick_size")), _places(inst.get("step_size")), inst.get("quote")
            if t is not None:
                tick[symbol] = t
            if z is not None:
                step[symbol] = z
            if isinstance(q, str) and q:
                quote[symbol] = q
                if t is not None:
                    asset[q] = max(asset.get(q, 0), t)
        risk = config.get("risk")
        equity_asset = risk.get("equity_asset") if isinstance(risk, dict) else None
        return cls(tick, step, quote, asset, str(equity_asset or next(iter(quote.values()), "")))

    def places(self, key: str, row: Mapping[str, Any]) -> int | None:
        """Decimal places of the number ``row[key]`` (None: print it as it is)."""
        symbol = row.get("symbol")
        if key in PRICE_KEYS:
            return self.tick.get(symbol) if isinstance(symbol, str) else None
        if key in SIZE_KEYS:
            return self.step.get(symbol) if isinstance(symbol, str) else None
        if key in MONEY_KEYS:
            if key == "fee" and row.get("fee_currency"):
                return self.asset.get(str(row["fee_currency"]))
            money = row.get("asset") or (self.quote.get(symbol) if isinstance(symbol, str) else self.equity_asset)
            return self.asset.get(str(money)) if money else None
        return None

    def cell(self, key: str, value: Any, row: Mapping[str, Any]) -> str:
        """``row[key]`` as table text: numbers at their precision, anything else as ``cell`` shows it."""
        if key in PRICE_KEYS | SIZE_KEYS | MONEY_KEYS and isinstance(value, str | int | float | Decimal) \
                and not isinstance(value, bool):
            return format_number(value, self.places(key, row))
        return cell(value)


NO_PRECISION = Precision()


# -- rendering --------------------------------------------------------------------------------------
def cell(value: Any) -> str:
    """A value as table text: "-" for none, yes/no, plain numbers, compact JSON for containers."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float | Decimal):
        return format_number(value)  # a float's shortest repr, so a price is never cut to a few places
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def ms_time(value: Any) -> str:
    """Epoch milliseconds as a UTC "YYYY-MM-DD HH:MM:SS" ("-" when unset)."""
    if not isinstance(value, int) or value <= 0:
        return "-"
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
          precision: Precision = NO_PRECISION) -> str:
    """Rows as an aligned text table (numbers right-aligned, at ``precision``)."""
    if not rows:
        return "(none)"
    cols = list(columns) if columns else list(dict.fromkeys(k for r in rows for k in r))
    cells = [[precision.cell(c, r.get(c), r) for c in cols] for r in rows]
    numeric = [all(_is_number(row[i]) or row[i] == "-" for row in cells) for i in range(len(cols))]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]

    def fmt(values: Sequence[str]) -> str:
        padded = (v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(values))
        return "  ".join(padded).rstrip()

    lines = [fmt([c.upper() for c in cols])] + [fmt(row) for row in cells]
    return "\n".join(lines)


def key_values(pairs: Sequence[tuple[str, str]]) -> str:
    """``key  value`` lines with the keys padded to one width."""
    width = max((len(k) for k, _ in pairs), default=0)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in pairs)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
