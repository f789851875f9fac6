"""The daily PnL digest: one message per business day, sent when the day ends at 00:00 UTC.

Business time comes from the injected ``Clock`` (the wall clock live, market time in a
replay), so a replay sends one digest per day of its data. The service samples the risk
gate's and the order manager's snapshots every ``poll_interval_s``; the first sample of
a new day closes the previous one with the figures of its last sample: the risk gate's
daily PnL (equity now against the day's start equity) and equity, the realized PnL, fees
and fills of the day (from the positions' running totals), and the open positions. A day
the daemon only saw part of says since when. Its key is the date, so a restart around
midnight does not send it twice.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from actors.kernel.clock import Clock
from actors.orders.order_manager import OrderManagerSnapshot
from actors.risk.risk_gate import RiskSnapshot
from daemon.notify.events import EventKind, Notification

DAY_MS = 86_400_000
ZERO = Decimal(0)


@dataclasses.dataclass(frozen=True)
class DaySample:
    """What the digest needs from one sample of the snapshots."""

    ts_ms: int
    realized: dict[str, Decimal] = dataclasses.field(default_factory=dict)  # by quote currency
    fees: dict[str, Decimal] = dataclasses.field(default_factory=dict)  # by quote currency
    fills: int = 0
    daily_pnl: Decimal | None = None
    equity: Decimal | None = None
    positions: tuple[tuple[str, Decimal, Decimal], ...] = ()  # symbol, size, average price

    @classmethod
    def of(cls, ts_ms: int, risk: RiskSnapshot | None, orders: OrderManagerSnapshot | None) -> DaySample:
        """The sample at ``ts_ms`` (business time) from the published snapshots (either may be missing)."""
        positions = orders.positions if orders is not None else ()
        realized: dict[str, Decimal] = {}
        fees: dict[str, Decimal] = {}
        for p in positions:
            quote = p.symbol.partition("/")[2].partition(":")[0] or p.symbol
            realized[quote] = realized.get(quote, ZERO) + p.realized_pnl
            fees[quote] = fees.get(quote, ZERO) + p.fees
        return cls(
            ts_ms=ts_ms,
            realized=realized,
            fees=fees,
            fills=sum(p.fills for p in positions),
            daily_pnl=risk.daily_pnl if risk is not None else None,
            equity=risk.equity if risk is not None else None,
            positions=tuple((p.symbol, p.size, p.avg_price) for p in positions if p.size != 0),
        )


class DailyDigest:
    """Watches the business day; ``sample`` returns the digest of a day once the next one began."""

    def __init__(self, clock: Clock, instance: str = "aaiti") -> None:
        self._clock = clock
        self._instance = instance
        self._first: DaySample | None = None  # the day's first sample (baseline of the running totals)
        self._last: DaySample | None = None

    def sample(self, risk: RiskSnapshot | None, orders: OrderManagerSnapshot | None) -> Notification | None:
        """Take a sample now; the digest of the previous day when this is the first sample of a new one."""
        now = DaySample.of(self._clock.now_ms(), risk, orders)
        first, last = self._first, self._last
        if first is None or last is None:
            self._first = self._last = now
            return None
        if now.ts_ms // DAY_MS == last.ts_ms // DAY_MS:
            self._last = now
            return None
        note = digest_message(self._instance, first, last)
        # The new day's totals count from the end of the old one, which covers it from midnight.
        self._first, self._last = dataclasses.replace(last, ts_ms=now.ts_ms // DAY_MS * DAY_MS), now
        return note


def digest_message(instance: str, first: DaySample, last: DaySample) -> Notification:
    """The digest of the day of ``last``, given its first and last samples."""
    day_start = last.ts_ms // DAY_MS * DAY_MS
    date = _utc(day_start).strftime("%Y-%m-%d")
    lines = []
    if first.ts_ms > day_start:
        lines.append(f"(seen since {_utc(first.ts_ms).strftime('%H:%M')} UTC)")
    if last.daily_pnl is not None:
        lines.append(f"daily PnL: {_d(last.daily_pnl)}")
    if last.equity is not None:
        lines.append(f"equity: {_d(last.equity)}")
    lines += [
        f"realized PnL: {_by_currency(first.realized, last.realized)}",
        f"fees: {_by_currency(first.fees, last.fees)}",
        f"fills: {last.fills - first.fills}",
    ]
    if last.positions:
        lines.append("positions: " + ", ".join(f"{s} {_d(size)} @ {_d(px)}" for s, size, px in last.positions))
    else:
        lines.append("positions: flat")
    return Notification(kind=EventKind.DAILY_DIGEST, key=f"daily_digest:{date}", title=f"{instance}: digest {date}",
                        body="\n".join(lines), event_ms=last.ts_ms)


def _by_currency(start: dict[str, Decimal], end: dict[str, Decimal]) -> str:
    # Money of different quote currencies is never added up.
    parts = [f"{_d(v - start.get(ccy, ZERO))} {ccy}" for ccy, v in sorted(end.items())]
    return ", ".join(parts) or "0"


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _d(value: Decimal) -> str:
    return format(value.normalize(), "f") if value.is_finite() else str(value)
