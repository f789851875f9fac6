"""What a notification is: its kind, severity, deduplication key and text."""

from __future__ import annotations

import dataclasses
from enum import StrEnum


class EventKind(StrEnum):
    """The kinds of events that can be notified; ``[notify] events`` switches each on or off."""

    FILL = "fill"
    PROTECTIVE_EXIT = "protective_exit"
    PROTECTION_FAILED = "protection_failed"
    RISK_DENIALS = "risk_denials"
    BREAKER_OPEN = "breaker_open"
    BREAKER_CLOSED = "breaker_closed"
    RECONNECT = "reconnect"
    KILL = "kill"
    PAUSE = "pause"
    RESUME = "resume"
    WATCHDOG_UNHEALTHY = "watchdog_unhealthy"
    DAEMON_START = "daemon_start"
    DAEMON_STOP = "daemon_stop"
    DAILY_DIGEST = "daily_digest"


class Severity(StrEnum):
    """How urgent a message is; maps to Apprise's notification type (the icon/colour receivers show)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for critical (for ``min_severity`` and summaries)."""
        return _RANKS[self]

    @property
    def apprise_type(self) -> str:
        """The Apprise ``notify_type`` value for this severity."""
        return _APPRISE_TYPES[self]


_RANKS = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
_APPRISE_TYPES = {Severity.INFO: "info", Severity.WARNING: "warning", Severity.CRITICAL: "failure"}

#: The severity of each kind (fixed: ``min_severity`` filters on it).
SEVERITY: dict[EventKind, Severity] = {
    EventKind.FILL: Severity.INFO,
    EventKind.PROTECTIVE_EXIT: Severity.WARNING,
    EventKind.PROTECTION_FAILED: Severity.CRITICAL,
    EventKind.RISK_DENIALS: Severity.WARNING,
    EventKind.BREAKER_OPEN: Severity.WARNING,
    EventKind.BREAKER_CLOSED: Severity.INFO,
    EventKind.RECONNECT: Severity.WARNING,
    EventKind.KILL: Severity.CRITICAL,
    EventKind.PAUSE: Severity.WARNING,
    EventKind.RESUME: Severity.INFO,
    EventKind.WATCHDOG_UNHEALTHY: Severity.CRITICAL,
    EventKind.DAEMON_START: Severity.INFO,
    EventKind.DAEMON_STOP: Severity.WARNING,
    EventKind.DAILY_DIGEST: Severity.INFO,
}


@dataclasses.dataclass(frozen=True)
class Notification:
    """One message to send.

    ``key`` identifies the event it reports (for example ``fill:<venue>:<trade id>``): the
    outbox stores a key once, so an event handed in twice is delivered once. ``event_ms``
    is the event's business time (epoch ms).
    """

    kind: EventKind
    key: str
    title: str
    body: str
    event_ms: int = 0
    severity: Severity | None = None

    @property
    def level(self) -> Severity:
        """The message's severity: the one given, else the kind's."""
        return self.severity if self.severity is not None else SEVERITY[self.kind]
