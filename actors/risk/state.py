"""What the risk gate owns, persists and publishes: trading status, loss baselines, snapshots.

The gate is the one owner of the trading state; anything else reads ``TradingStatus``
(replaced, never mutated, on every change) or the ``RiskSnapshot``. The loss baselines
(equity peak, start-of-day equity) follow business time: a day is a UTC day of the
gate's clock, so a replay on market time lives through the days of its data.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from actors.model.control import TradingState
from config.schema.trading import RiskSection

_DAY_MS = 86_400_000


class TradingStatus(msgspec.Struct, frozen=True, kw_only=True):
    """The trading state as the gate publishes it."""

    state: TradingState = TradingState.ACTIVE
    kill_switch: bool = False


class PersistedRiskState(msgspec.Struct, frozen=True, kw_only=True):
    """What the gate persists: trading state, kill switch and the loss baselines."""

    state: TradingState = TradingState.ACTIVE
    kill_switch: bool = False
    equity_peak: Decimal | None = None
    day: int | None = None
    day_start_equity: Decimal | None = None


def decode_persisted(raw: Any) -> PersistedRiskState:
    """The persisted state as a ``StateStore`` returns it (JSON text or decoded builtins).

    Raises ``ValueError`` naming what is wrong when it cannot be read.
    """
    try:
        if isinstance(raw, str | bytes):
            return msgspec.json.decode(raw, type=PersistedRiskState)
        return msgspec.convert(raw, PersistedRiskState)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
        raise ValueError(f"unreadable risk state: {exc}") from exc


class DecisionCounts:
    """How many decisions the gate took, by outcome and denial reason."""

    __slots__ = ("approved", "by_reason", "denied", "last_denial")

    def __init__(self) -> None:
        self.approved = 0
        self.denied = 0
        self.by_reason: dict[str, int] = {}
        self.last_denial = ""

    def deny(self, reason: str) -> None:
        """Count one denial."""
        self.denied += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        self.last_denial = reason


class RiskSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A published, immutable view of the gate for the admin API and metrics."""

    state: TradingState
    kill_switch: bool
    limits: RiskSection
    open_orders: int
    orders_in_window: int
    rate_window_s: float
    gross_exposure: Decimal
    equity: Decimal | None
    equity_peak: Decimal | None
    day_start_equity: Decimal | None
    daily_pnl: Decimal | None
    drawdown_pct: float | None
    decisions: int
    approved: int
    denied: int
    denied_by_reason: dict[str, int]
    last_denial: str
    ts_ms: int


class LossBaselines:
    """Equity as last observed, its peak, and the equity at the start of the current day."""

    __slots__ = ("day", "day_start", "equity", "peak")

    def __init__(self) -> None:
        self.equity: Decimal | None = None
        self.peak: Decimal | None = None
        self.day: int | None = None
        self.day_start: Decimal | None = None

    def observe(self, equity: Decimal, now_ms: int) -> bool:
        """Take the current equity; True when a persisted baseline moved (new day, new peak)."""
        self.equity = equity
        day = now_ms // _DAY_MS
        moved = False
        if self.day != day or self.day_start is None:
            self.day, self.day_start = day, equity
            moved = True
        if self.peak is None or equity > self.peak:
            self.peak = equity
            moved = True
        return moved

    def reset(self, now_ms: int) -> bool:
        """Restart both baselines at the current equity; False while equity is unknown."""
        if self.equity is None:
            return False
        self.peak = self.day_start = self.equity
        self.day = now_ms // _DAY_MS
        return True

    def daily_pnl(self) -> Decimal | None:
        """Equity change since the start of the day (None while unknown)."""
        if self.equity is None or self.day_start is None:
            return None
        return self.equity - self.day_start

    def persisted(self, status: TradingStatus) -> PersistedRiskState:
        """What the gate persists for ``status`` and these baselines."""
        return PersistedRiskState(state=status.state, kill_switch=status.kill_switch, equity_peak=self.peak,
                                  day=self.day, day_start_equity=self.day_start)

    def restore(self, saved: PersistedRiskState) -> None:
        """Take the persisted baselines (restart)."""
        self.peak = saved.equity_peak
        self.day = saved.day
        self.day_start = saved.day_start_equity
