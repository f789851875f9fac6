"""Kernel sections: daemon, logging, supervision, watchdog, channels."""

from __future__ import annotations

import dataclasses
from typing import Literal

from config.fields import setting

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LogFormat = Literal["json", "console", "auto"]


@dataclasses.dataclass(frozen=True)
class DaemonSection:
    """Process-wide settings."""

    name: str = setting("aaiti", "Instance name, shown in logs, status and metrics.", restart=True)
    state_dir: str = setting(
        "state",
        "Directory for SQLite state; relative paths are resolved against the config file's directory.",
        restart=True,
    )
    mode: Literal["paper", "live"] = setting(
        "paper", "paper: fills simulated locally; live: orders go to the venue. Separate databases.", restart=True
    )
    stop_timeout_s: float = setting(
        20.0, "Upper bound for an orderly stop before the process forces its exit.", gt=0, le=600
    )
    order_drain_timeout_s: float = setting(
        5.0, "Time the order manager gets at shutdown to finish in-flight submits and cancels.", ge=0, le=300
    )
    cancel_open_orders_on_exit: bool = setting(
        False, "Cancel all open orders when the daemon stops (orderly stop or root supervisor giving up)."
    )
    use_uvloop: bool = setting(True, "Run on uvloop when it is installed.", restart=True)
    strategy_dirs: tuple[str, ...] = setting(
        factory=lambda: ("strategies",),
        doc="Directories holding your own strategy modules, so that `strategy = \"mymodule:MyClass\"` "
        "finds `mymodule.py` (or a package) there without PYTHONPATH. Relative paths are resolved against "
        "the config file's directory; a directory that does not exist is skipped. Searched after the "
        "installed packages, so a module name that is already taken (`json`, `actors`) cannot be used.",
        restart=True,
    )

    def validate(self) -> list[tuple[str, str]]:
        """Every strategy directory is a path (an empty one would silently mean the config's own directory)."""
        return [
            (f"strategy_dirs[{i}]", "expected a directory path, got an empty string")
            for i, d in enumerate(self.strategy_dirs)
            if not d.strip()
        ]


@dataclasses.dataclass(frozen=True)
class LogSection:
    """Structured logging."""

    level: LogLevel = setting("info", "Minimum level of log lines on stdout (hot-reloadable).")
    format: LogFormat = setting(
        "auto",
        "Log line format on stdout: json (one JSON object per line), console (aligned, readable; colours on a "
        "terminal) or auto (console when stdout is a terminal, json otherwise, e.g. under systemd/journald).",
        restart=True,
    )
    summary_interval_s: float = setting(
        60.0,
        "Wall-clock seconds between `daemon.summary` lines (equity, PnL, open orders, and the orders, fills "
        "and risk denials since the previous one); 0 = none. A `daemon.final_summary` line is written at "
        "shutdown either way.",
        ge=0,
        le=86_400,
        restart=True,
    )
    ring_size: int = setting(2000, "Log records kept in memory for the admin log tail.", ge=10, le=1_000_000)
    redact_keys: tuple[str, ...] = setting(
        factory=tuple,
        doc="Extra field names whose values are redacted in logs, besides keys, secrets, tokens and passwords.",
    )


@dataclasses.dataclass(frozen=True)
class SupervisorSection:
    """OTP-style supervision defaults (one_for_one / rest_for_one, restart intensity, backoff)."""

    max_restarts: int = setting(3, "Restarts allowed within period_s before the supervisor gives up.", ge=0, le=1000)
    period_s: float = setting(5.0, "Window for counting restarts.", gt=0, le=3600)
    restart_delay_s: float = setting(0.05, "Delay before the first restart of a child.", ge=0, le=60)
    restart_backoff_max_s: float = setting(5.0, "Cap of the doubling restart delay.", ge=0, le=600)
    shutdown_timeout_s: float = setting(
        3.0, "Time a child gets to stop after cancellation before it is escalated.", gt=0, le=300
    )


@dataclasses.dataclass(frozen=True)
class WatchdogSection:
    """Watchdog: heartbeats, loop lag, staleness (hot-reloadable)."""

    interval_s: float = setting(0.5, "How often the watchdog samples heartbeats and loop lag.", gt=0, le=60)
    stall_after_s: float = setting(
        10.0, "An actor with pending work and no progress for this long is stalled and restarted.", gt=0, le=3600
    )
    loop_lag_degraded_ms: float = setting(100.0, "Event-loop lag above which health is degraded.", gt=0)
    loop_lag_unhealthy_ms: float = setting(1000.0, "Event-loop lag above which health is unhealthy.", gt=0)
    stale_data_s: float = setting(
        30.0, "Market data older than this (per symbol, once the feed is live) degrades health.", gt=0
    )

    def validate(self) -> list[tuple[str, str]]:
        """Cross-field checks."""
        if self.loop_lag_unhealthy_ms < self.loop_lag_degraded_ms:
            return [("loop_lag_unhealthy_ms", "expected a value >= loop_lag_degraded_ms")]
        return []


@dataclasses.dataclass(frozen=True)
class ChannelsSection:
    """Capacities of the bounded channels between actors."""

    market_capacity: int = setting(1024, "Market data channel capacity (conflating per symbol).", ge=1, le=1 << 20)
    intent_capacity: int = setting(1024, "Strategy -> risk gate intents (never dropped).", ge=1, le=1 << 20)
    order_capacity: int = setting(1024, "Risk gate -> order manager commands (never dropped).", ge=1, le=1 << 20)
    event_capacity: int = setting(4096, "Order events back to strategies (never dropped).", ge=1, le=1 << 20)
