"""Operations sections: the admin HTTP endpoint, the systemd integration and notifications."""

from __future__ import annotations

import dataclasses
from typing import Literal

from config.fields import setting


@dataclasses.dataclass(frozen=True)
class AdminSection:
    """Embedded admin HTTP server.

    The bearer token is looked up in this order: the environment variable named by
    ``token_env``, the systemd credential ``token_credential`` (``$CREDENTIALS_DIRECTORY``),
    ``token_file``, then ``token``. Without any token the server only binds a loopback
    address; every request is then accepted.
    """

    enabled: bool = setting(True, "Serve the admin API.", restart=True)
    host: str = setting("127.0.0.1", "Bind address. A non-loopback address requires a token.", restart=True)
    port: int = setting(8787, "Bind port (0 picks a free port).", ge=0, le=65535, restart=True)
    token_env: str = setting("AAITI_ADMIN_TOKEN", "Environment variable holding the bearer token.", restart=True)
    token_credential: str = setting(
        "admin_token",
        "Name of the systemd credential holding the bearer token ($CREDENTIALS_DIRECTORY/<name>, set with "
        "LoadCredential=); empty: do not look for one.",
        restart=True,
        pattern=r"[A-Za-z0-9_.\-]*",
    )
    token_file: str = setting(
        "",
        "File holding the bearer token; $VARIABLES and ~ are expanded, relative paths are resolved against "
        "the config file's directory.",
        restart=True,
    )
    token: str = setting("", "Bearer token (prefer token_env, a credential or token_file).", secret=True, restart=True)
    metrics_public: bool = setting(False, "Serve /metrics without a token.")
    metrics_cache_s: float = setting(1.0, "A /metrics rendering is reused for this long.", ge=0, le=60)
    max_page_size: int = setting(1000, "Largest limit= the list endpoints (orders, fills, events) accept.", ge=1,
                                 le=100_000)
    log_tail_max: int = setting(10_000, "Largest n= that GET /logs accepts.", ge=1, le=1_000_000)
    sse_max_followers: int = setting(8, "Concurrent GET /logs?follow=1 streams; more are refused (429).", ge=1,
                                     le=1000)
    sse_keepalive_s: float = setting(15.0, "Idle log streams get a keep-alive comment this often.", gt=0, le=300)
    max_body_bytes: int = setting(65_536, "Largest request body accepted.", ge=1024, le=16 * 1024 * 1024,
                                  restart=True)


@dataclasses.dataclass(frozen=True)
class SystemdSection:
    """sd_notify integration (active only when systemd sets $NOTIFY_SOCKET)."""

    notify: bool = setting(True, "Send READY/RELOADING/STOPPING/STATUS/WATCHDOG notifications.", restart=True)
    watchdog_min_status: Literal["healthy", "degraded"] = setting(
        "degraded",
        "Worst watchdog verdict that still sends WATCHDOG=1. 'degraded' (default) keeps systemd from killing "
        "a daemon that is only retrying (reconnecting feed, stale data); an unhealthy verdict (stalled actor, "
        "event-loop lag) never pets the watchdog.",
    )


#: The kinds of notification events, as ``[notify] events`` names them.
NOTIFY_EVENT_KINDS: tuple[str, ...] = (
    "fill",
    "protective_exit",
    "protection_failed",
    "risk_denials",
    "breaker_open",
    "breaker_closed",
    "reconnect",
    "kill",
    "pause",
    "resume",
    "watchdog_unhealthy",
    "daemon_start",
    "daemon_stop",
    "daily_digest",
)


@dataclasses.dataclass(frozen=True)
class NotifySection:
    """Notifications to chat, e-mail or webhooks through Apprise URLs (see docs/notifications.md).

    The URLs come from ``urls``, the environment variable named by ``urls_env`` and the
    systemd credential ``urls_credential`` (``$CREDENTIALS_DIRECTORY``), all of them
    together; they are secrets and are never logged. Without any URL nothing is sent and
    nothing runs. Messages are written to an outbox (``notify-outbox.db`` in the state
    directory) and delivered off the trading path, retried with exponential backoff, sent
    once per event, and coalesced into one summary message beyond ``rate_per_minute``.
    Event kinds: fill, protective_exit, protection_failed, risk_denials, breaker_open,
    breaker_closed, reconnect, kill, pause, resume, watchdog_unhealthy, daemon_start,
    daemon_stop, daily_digest.
    """

    urls: tuple[str, ...] = setting(
        factory=tuple,
        doc="Apprise URLs to notify (prefer urls_env or urls_credential: the URLs carry tokens).",
        secret=True,
        restart=True,
    )
    urls_env: str = setting(
        "AAITI_NOTIFY_URLS",
        "Environment variable holding more Apprise URLs, separated by whitespace or commas; empty: none.",
        restart=True,
    )
    urls_credential: str = setting(
        "notify_urls",
        "Name of the systemd credential holding more Apprise URLs, one or more per line "
        "($CREDENTIALS_DIRECTORY/<name>, set with LoadCredential=); empty: do not look for one.",
        restart=True,
        pattern=r"[A-Za-z0-9_.\-]*",
    )
    events: dict[str, bool] = setting(
        factory=dict,
        doc="Event kinds switched on (true) or off (false), e.g. { fill = false }; a kind not listed is on.",
        restart=True,
    )
    min_severity: Literal["info", "warning", "critical"] = setting(
        "info", "Least severe message sent (each event kind has a fixed severity).", restart=True
    )
    rate_per_minute: int = setting(
        20,
        "Messages per minute to each URL; what exceeds it is coalesced into one summary message, never dropped.",
        ge=1,
        le=10_000,
        restart=True,
    )
    summary_max_items: int = setting(
        50, "Most events one summary message lists; more wait for the next one.", ge=2, le=1000, restart=True
    )
    retry_initial_s: float = setting(2.0, "Delay before the first retry of a failed delivery.", gt=0, le=3600,
                                     restart=True)
    retry_max_s: float = setting(300.0, "Cap of the doubling retry delay.", gt=0, le=86_400, restart=True)
    denial_burst: int = setting(
        10, "Risk denials within denial_window_s that make one risk_denials message.", ge=1, le=1_000_000,
        restart=True,
    )
    denial_window_s: float = setting(
        60.0, "Window of denial_burst, and the least time between two risk_denials messages.", gt=0, le=86_400,
        restart=True,
    )
    poll_interval_s: float = setting(
        5.0, "How often breakers, reconnects and the business day (daily digest) are checked.", gt=0, le=3600,
        restart=True,
    )
    queue_capacity: int = setting(
        1000,
        "Events waiting to be written to the outbox; when full the oldest is dropped and counted.",
        ge=10,
        le=1_000_000,
        restart=True,
    )
    keep_days: float = setting(
        7.0, "Delivered messages are kept this long: the horizon of the once-per-event deduplication.", gt=0,
        le=3650, restart=True,
    )
    stop_flush_s: float = setting(
        5.0, "At stop, time to deliver what is pending; the rest is sent after the next start.", ge=0, le=300,
        restart=True,
    )

    def validate(self) -> list[tuple[str, str]]:
        """Cross-field checks: known event kinds, retry_max_s >= retry_initial_s."""
        issues: list[tuple[str, str]] = [
            (f"events.{kind}", f"unknown event kind {kind!r}; expected one of {', '.join(NOTIFY_EVENT_KINDS)}")
            for kind in self.events
            if kind not in NOTIFY_EVENT_KINDS
        ]
        if self.retry_max_s < self.retry_initial_s:
            issues.append(("retry_max_s", "expected a value >= retry_initial_s"))
        return issues


@dataclasses.dataclass(frozen=True)
class RetentionSection:
    """Retention: keep the live state database bounded.

    Every ``interval_s`` of business time (market time in a replay) the oldest rows move from
    the state database to compressed archive segment files: finished orders whose last
    change is older than ``keep_days``, with their events and fills; risk denials and audit
    rows older than that. Open orders and their rows always stay. Each segment is written
    and fsynced before its rows are deleted; the audit chain stays verifiable across the cut
    (``aaiti audit verify --archive``). Superseded ledger snapshots older than ``keep_days``
    are dropped (only the newest is ever read). Backtests do not archive.
    """

    enabled: bool = setting(True, "Archive old rows out of the live state database.", restart=True)
    keep_days: float = setting(
        30.0,
        "Business-time age after which rows are archived. At least [reconciler] fills_lookback_s is always kept.",
        gt=0,
        le=36_500,
    )
    interval_s: float = setting(3600.0, "Business time between two archive runs.", gt=0, le=31_536_000)
    check_interval_s: float = setting(
        5.0, "Process time between two looks at the business clock (whether a run is due).", gt=0, le=3600
    )
    archive_dir: str = setting(
        "archive",
        "Directory of the segment files; relative paths are resolved against daemon.state_dir. Each state "
        "database gets a subdirectory named after its file.",
        restart=True,
    )
    segment_max_orders: int = setting(
        1000, "Most orders in one segment (a segment's rows are deleted in one short transaction).", ge=1,
        le=1_000_000,
    )
    segment_max_audit_rows: int = setting(5000, "Most audit rows (and risk denials) in one segment.", ge=1,
                                          le=10_000_000)
    max_segments_per_run: int = setting(100, "Most segments one run writes; the rest waits for the next run.",
                                        ge=1, le=100_000)
