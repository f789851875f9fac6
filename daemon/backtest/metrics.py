"""Backtest metrics as pure functions: round trips from fills, the equity curve, ratios.

Definitions (also in docs/backtest.md):

- A trade is a FIFO round trip per strategy and symbol (long only, spot): each buy fill
  opens (or, for the same order, adds to) a lot; each sell fill closes the oldest lots
  first. One trade per (entry order, exit order) pair; its exit reason is the closing
  order's tag. A sell with no open lot of its strategy (selling a starting balance) makes no
  trade. Fees: the entry's share of its order's fees plus the exit's share, in the quote
  asset (a fee charged in the base asset is converted at the fill price; another asset's
  fee is counted as is).
- Equity is marked in the quote asset: its balance plus each traded base asset's balance
  times that symbol's last close; other assets are left out. One sample per bar of the
  smallest timeframe, at the bar's close time, after every fill before that time.
- Returns are per UTC day (the last sample of each day against the previous day's, the
  first against the starting equity). Sharpe = mean / sample stdev * sqrt(365); Sortino =
  mean / downside deviation (root mean square of the negative returns, over all days) *
  sqrt(365); both 0.0 with fewer than two days or no dispersion. CAGR on calendar days,
  0.0 below one day; Calmar = CAGR / max drawdown pct (0.0 without a drawdown).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal

from actors.bars import parse_timeframe
from actors.model.market import Bar
from actors.model.orders import Fill
from actors.model.records import OrderRecord

__all__ = [
    "DAY_MS",
    "Drawdown",
    "EquityPoint",
    "RoundTrip",
    "cagr_pct",
    "calmar",
    "daily_returns",
    "drawdown",
    "equity_curve",
    "fee_in_quote",
    "group_stats",
    "periods",
    "round_trips",
    "sharpe",
    "sig",
    "sortino",
]

DAY_MS = 86_400_000
_ZERO = Decimal(0)
_SQRT_365 = math.sqrt(365.0)


def sig(x: float) -> float:
    """``x`` rounded to 10 significant digits (chart series and ratios in the result)."""
    return float(f"{x:.10g}")


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


@dataclasses.dataclass(frozen=True)
class RoundTrip:
    """One closed long trade (see the module docstring)."""

    strategy: str
    symbol: str
    entry_ts_ms: int
    exit_ts_ms: int
    entry_price: Decimal
    exit_price: Decimal
    size: Decimal
    profit: Decimal
    profit_pct: float
    fees: Decimal
    exit_reason: str

    @property
    def holding_ms(self) -> int:
        """Time from the entry's first fill to the exit's last fill."""
        return self.exit_ts_ms - self.entry_ts_ms


def fee_in_quote(fill: Fill, quote: str, base: str) -> Decimal:
    """The fill's fee in the quote asset (base-asset fees at the fill price; others as is)."""
    if fill.fee_currency == base and base != quote:
        return fill.fee * fill.price
    return fill.fee


@dataclasses.dataclass
class _Lot:
    order: str
    ts_ms: int
    size: Decimal
    cost: Decimal
    fees: Decimal


@dataclasses.dataclass
class _Piece:
    strategy: str
    symbol: str
    entry_ts_ms: int
    exit_ts_ms: int
    size: Decimal = _ZERO
    cost: Decimal = _ZERO
    value: Decimal = _ZERO
    fees: Decimal = _ZERO
    reason: str = ""


def _share(total: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    return total if part == whole else total * part / whole


def round_trips(fills: Iterable[Fill], orders: Iterable[OrderRecord], quote: str,
                bases: Mapping[str, str]) -> list[RoundTrip]:
    """FIFO round trips per strategy and symbol from fills in execution order."""
    by_order = {o.client_order_id: o for o in orders}
    lots: dict[tuple[str, str], deque[_Lot]] = {}
    pieces: dict[tuple[str, str], _Piece] = {}
    for fill in fills:
        order = by_order.get(fill.client_order_id)
        strategy = order.strategy if order is not None else ""
        fee = fee_in_quote(fill, quote, bases.get(fill.symbol, ""))
        book = lots.setdefault((strategy, fill.symbol), deque())
        if fill.side == "buy":
            last = book[-1] if book else None
            if last is not None and last.order == fill.client_order_id:
                last.size += fill.size
                last.cost += fill.size * fill.price
                last.fees += fee
            else:
                book.append(_Lot(fill.client_order_id, fill.ts_ms, fill.size, fill.size * fill.price, fee))
            continue
        remaining = fill.size
        reason = (order.tag if order is not None else "") or "untagged"
        while remaining > 0 and book:
            lot = book[0]
            take = min(remaining, lot.size)
            cost, entry_fee = _share(lot.cost, take, lot.size), _share(lot.fees, take, lot.size)
            piece = pieces.setdefault((lot.order, fill.client_order_id),
                                      _Piece(strategy, fill.symbol, lot.ts_ms, fill.ts_ms, reason=reason))
            piece.exit_ts_ms = max(piece.exit_ts_ms, fill.ts_ms)
            piece.size += take
            piece.cost += cost
            piece.value += take * fill.price
            piece.fees += entry_fee + _share(fee, take, fill.size)
            lot.size -= take
            lot.cost -= cost
            lot.fees -= entry_fee
            remaining -= take
            if lot.size <= 0:
                book.popleft()
    out: list[RoundTrip] = []
    for p in pieces.values():
        profit = p.value - p.cost - p.fees
        out.append(RoundTrip(
            strategy=p.strategy, symbol=p.symbol, entry_ts_ms=p.entry_ts_ms, exit_ts_ms=p.exit_ts_ms,
            entry_price=p.cost / p.size, exit_price=p.value / p.size, size=p.size, profit=profit,
            profit_pct=sig(float(profit / p.cost * 100)) if p.cost else 0.0, fees=p.fees, exit_reason=p.reason,
        ))
    out.sort(key=lambda t: (t.exit_ts_ms, t.entry_ts_ms))
    return out


@dataclasses.dataclass(frozen=True)
class EquityPoint:
    """Equity (quote asset) at ``ts_ms`` and the drawdown from the running peak, in percent."""

    ts_ms: int
    equity: Decimal
    drawdown_pct: float


def smallest_timeframe(timeframes: Iterable[str]) -> str:
    """The shortest of the timeframes."""
    return min(timeframes, key=parse_timeframe)


def equity_curve(bars: Mapping[str, Sequence[Bar]], timeframe: str, fills: Sequence[Fill],
                 initial: Mapping[str, Decimal], quote: str,
                 bases: Mapping[str, str]) -> tuple[Decimal, list[EquityPoint], Decimal]:
    """(starting equity, one point per bar close, final equity with every fill applied).

    ``bars`` are each symbol's bars of ``timeframe``; starting equity marks the initial
    balances at each symbol's first open.
    """
    tf_ms = parse_timeframe(timeframe)
    balances: dict[str, Decimal] = dict(initial)
    marks: dict[str, Decimal] = {s: _dec(b[0].open) for s, b in bars.items() if b}

    def value() -> Decimal:
        total = balances.get(quote, _ZERO)
        for symbol, price in marks.items():
            total += balances.get(bases.get(symbol, ""), _ZERO) * price
        return total

    start = value()
    closes = sorted((b.ts_ms + tf_ms, s, _dec(b.close)) for s, series in bars.items() for b in series)
    ordered = sorted(fills, key=lambda f: f.ts_ms)  # stable: stored order within one ms
    i = 0
    points: list[EquityPoint] = []
    peak = start
    k = 0
    while k < len(closes):
        t = closes[k][0]
        while k < len(closes) and closes[k][0] == t:
            marks[closes[k][1]] = closes[k][2]
            k += 1
        while i < len(ordered) and ordered[i].ts_ms < t:
            _apply(balances, ordered[i], quote, bases)
            i += 1
        eq = value()
        peak = max(peak, eq)
        points.append(EquityPoint(t, eq, float((peak - eq) / peak * 100) if peak > 0 else 0.0))
    while i < len(ordered):
        _apply(balances, ordered[i], quote, bases)
        i += 1
    return start, points, value()


def _apply(balances: dict[str, Decimal], fill: Fill, quote: str, bases: Mapping[str, str]) -> None:
    base = bases.get(fill.symbol) or fill.symbol.split("/", 1)[0]
    sign = 1 if fill.side == "buy" else -1
    balances[base] = balances.get(base, _ZERO) + sign * fill.size
    balances[quote] = balances.get(quote, _ZERO) - sign * fill.size * fill.price
    asset = fill.fee_currency or quote
    balances[asset] = balances.get(asset, _ZERO) - fill.fee


@dataclasses.dataclass(frozen=True)
class Drawdown:
    """The deepest fall from a running peak (absolute and percent) and the longest time under a peak."""

    max_abs: Decimal
    max_pct: float
    max_duration_ms: int


def drawdown(start_ms: int, start: Decimal, points: Sequence[EquityPoint]) -> Drawdown:
    """Drawdown figures of an equity curve starting at ``start`` (time ``start_ms``)."""
    peak, peak_ts = start, start_ms
    worst, worst_pct, longest = _ZERO, 0.0, 0
    for p in points:
        if p.equity >= peak:
            peak, peak_ts = p.equity, p.ts_ms
            continue
        worst = max(worst, peak - p.equity)
        worst_pct = max(worst_pct, p.drawdown_pct)
        longest = max(longest, p.ts_ms - peak_ts)
    return Drawdown(worst, worst_pct, longest)


def daily_returns(start: Decimal, points: Sequence[EquityPoint]) -> list[float]:
    """Per-UTC-day returns of the curve (a sample at midnight closes the day before)."""
    day_end: dict[int, Decimal] = {}
    for p in points:
        day_end[(p.ts_ms - 1) // DAY_MS] = p.equity
    out: list[float] = []
    prev = start
    for day in sorted(day_end):
        eq = day_end[day]
        out.append(float(eq / prev - 1) if prev else 0.0)
        prev = eq
    return out


def sharpe(returns: Sequence[float]) -> float:
    """Annualised Sharpe ratio of daily returns (risk-free rate 0, 365 trading days)."""
    if len(returns) < 2:
        return 0.0
    sd = statistics.stdev(returns)
    return statistics.fmean(returns) / sd * _SQRT_365 if sd > 0 else 0.0


def sortino(returns: Sequence[float]) -> float:
    """Annualised Sortino ratio of daily returns (target 0)."""
    if len(returns) < 2:
        return 0.0
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    return statistics.fmean(returns) / downside * _SQRT_365 if downside > 0 else 0.0


def cagr_pct(start: Decimal, final: Decimal, days: float) -> float:
    """Compound annual growth in percent over ``days`` calendar days (0.0 below one day)."""
    if days < 1 or start <= 0:
        return 0.0
    ratio = float(final / start)
    if ratio <= 0:
        return -100.0
    return (math.exp(min(math.log(ratio) * 365.0 / days, 700.0)) - 1.0) * 100.0


def calmar(cagr: float, max_drawdown_pct: float) -> float:
    """CAGR over the max drawdown, both in percent (0.0 without a drawdown)."""
    return cagr / max_drawdown_pct if max_drawdown_pct > 0 else 0.0


def group_stats(trades: Sequence[RoundTrip], fees_paid: Decimal) -> dict[str, object]:
    """Trade figures of a set of trades (summary, per symbol, per strategy)."""
    n = len(trades)
    wins = sum(1 for t in trades if t.profit > 0)
    losses = sum(1 for t in trades if t.profit < 0)
    gross_win = sum((t.profit for t in trades if t.profit > 0), _ZERO)
    gross_loss = -sum((t.profit for t in trades if t.profit < 0), _ZERO)
    total = sum((t.profit for t in trades), _ZERO)
    return {
        "trades": n,
        "wins": wins,
        "losses": losses,
        "win_rate_pct": sig(wins / n * 100) if n else 0.0,
        "total_profit": total,
        "profit_factor": sig(float(gross_win / gross_loss)) if gross_loss > 0 else None,
        "expectancy": total / n if n else _ZERO,
        "fees_paid": fees_paid,
        "avg_holding_ms": sum(t.holding_ms for t in trades) // n if n else 0,
    }


def _period_keys(ts_ms: int) -> tuple[str, str, str]:
    when = datetime.fromtimestamp(ts_ms / 1000, UTC)
    year, week, _ = when.isocalendar()
    return when.strftime("%Y-%m-%d"), f"{year}-W{week:02d}", when.strftime("%Y-%m")


def periods(trades: Iterable[RoundTrip]) -> dict[str, list[tuple[str, Decimal, int]]]:
    """Profit and trade count per day, ISO week and month of the exit, oldest first."""
    acc: dict[str, dict[str, tuple[Decimal, int]]] = {"day": {}, "week": {}, "month": {}}
    for t in trades:
        for kind, key in zip(("day", "week", "month"), _period_keys(t.exit_ts_ms), strict=True):
            profit, count = acc[kind].get(key, (_ZERO, 0))
            acc[kind][key] = (profit + t.profit, count + 1)
    return {kind: [(k, p, c) for k, (p, c) in sorted(rows.items())] for kind, rows in acc.items()}
