"""Control messages: trading state, config changes, health."""

from __future__ import annotations

from enum import StrEnum

from actors.model.base import Message


class TradingState(StrEnum):
    """ACTIVE trades; REDUCING allows only position-reducing orders; HALTED allows cancels only."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


class SetTradingState(Message, frozen=True, kw_only=True, tag="cmd.set_trading_state"):
    """Ask the risk gate to change trading state (pause, resume, kill)."""

    state: TradingState
    reason: str
    kill_switch: bool | None = None


class TradingStateChanged(Message, frozen=True, kw_only=True, tag="evt.trading_state_changed"):
    """The risk gate changed trading state."""

    state: TradingState
    previous: TradingState
    reason: str
    kill_switch: bool = False


class ConfigChanged(Message, frozen=True, kw_only=True, tag="ctl.config_changed"):
    """A new config was validated and swapped in; actors re-read their hot fields."""

    version: int


class HealthVerdict(Message, frozen=True, kw_only=True, tag="ctl.health_verdict"):
    """The watchdog's verdict: "healthy", "degraded" or "unhealthy", with reasons."""

    status: str
    reasons: tuple[str, ...] = ()
    ts_ms: int = 0
