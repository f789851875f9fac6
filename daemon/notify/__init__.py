"""Notifications through Apprise: event kinds, a durable SQLite outbox, delivery workers.

``NotificationService`` (``daemon.notify.service``) is what the composition root uses;
docs/notifications.md describes the setup.
"""

from daemon.notify.events import EventKind, Notification, Severity
from daemon.notify.outbox import OutboxError
from daemon.notify.service import DaemonReads, NotificationService, NotifyStats
from daemon.notify.targets import NotifyConfigError

__all__ = [
    "DaemonReads",
    "EventKind",
    "Notification",
    "NotificationService",
    "NotifyConfigError",
    "NotifyStats",
    "OutboxError",
    "Severity",
]
