"""The notification outbox: a small SQLite file of messages and their deliveries per target.

Its own file (``notify-outbox.db`` in the state directory), never the trading database:
notifications must not contend with order writes, and losing the file loses no trading
state. A message is stored once per ``dedup_key`` (``INSERT OR IGNORE``: an event handed
in twice is delivered once) with one delivery row per target, ``pending`` until the
target accepted it (``sent``, or ``coalesced`` into a summary message). Pending rows
survive a restart and are delivered after it, oldest first. Delivered messages are
pruned after ``keep_days``; until then their keys keep deduplicating.

``Outbox`` is synchronous; ``AsyncOutbox`` runs each call in a worker thread, one at a
time, so the event loop never waits on the disk.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from daemon.notify.events import EventKind, Notification, Severity

T = TypeVar("T")

OUTBOX_FILE = "notify-outbox.db"
SCHEMA_VERSION = 1
PENDING, SENT, COALESCED, DROPPED = "pending", "sent", "coalesced", "dropped"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    event_ms INTEGER NOT NULL,
    queued_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS deliveries (
    target TEXT NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_ms INTEGER,
    PRIMARY KEY (target, message_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (state, target, message_id);
"""


class OutboxError(Exception):
    """The outbox file cannot be opened or has an unknown layout (the message names the file)."""


@dataclasses.dataclass(frozen=True)
class Pending:
    """A message waiting for one target, with the attempts made so far."""

    id: int
    note: Notification
    attempts: int


class Outbox:
    """Synchronous access to the outbox file (use ``AsyncOutbox`` from the event loop)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboxError(f"{path}: written by a newer version (schema {version} > {SCHEMA_VERSION})")
            self._db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL survives a crash of the process; losing the last message to a power cut is acceptable.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise OutboxError(f"{path}: {exc}") from None

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def add(self, notes: Sequence[Notification], targets: Sequence[str], now_ms: int) -> int:
        """Store new messages with a pending delivery per target; returns how many were new."""
        added = 0
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for n in notes:
                cur = db.execute(
                    "INSERT OR IGNORE INTO messages (dedup_key, kind, severity, title, body, event_ms, queued_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (n.key, n.kind.value, n.level.value, n.title, n.body, n.event_ms, now_ms),
                )
                if cur.rowcount != 1:
                    continue  # a key seen before: delivered (or waiting) already
                added += 1
                db.executemany(
                    "INSERT INTO deliveries (target, message_id, state) VALUES (?, ?, ?)",
                    [(t, cur.lastrowid, PENDING) for t in targets],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return added

    def pending(self, target: str, limit: int) -> list[Pending]:
        """The oldest ``limit`` messages waiting for ``target``, in the order they were stored."""
        rows = self._db.execute(
            "SELECT m.id, m.dedup_key, m.kind, m.severity, m.title, m.body, m.event_ms, d.attempts "
            "FROM deliveries d JOIN messages m ON m.id = d.message_id "
            "WHERE d.state = ? AND d.target = ? ORDER BY d.message_id LIMIT ?",
            (PENDING, target, limit),
        ).fetchall()
        return [
            Pending(
                id=r[0],
                note=Notification(kind=EventKind(r[2]), key=r[1], severity=Severity(r[3]), title=r[4], body=r[5],
                                  event_ms=r[6]),
                attempts=r[7],
            )
            for r in rows
        ]

    def pending_count(self, target: str | None = None) -> int:
        """Deliveries waiting (for one target, or for all)."""
        if target is None:
            row = self._db.execute("SELECT COUNT(*) FROM deliveries WHERE state = ?", (PENDING,)).fetchone()
        else:
            row = self._db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE state = ? AND target = ?", (PENDING, target)
            ).fetchone()
        return int(row[0])

    def finish(self, target: str, ids: Sequence[int], state: str, now_ms: int) -> None:
        """Mark deliveries done (``SENT`` or ``COALESCED``)."""
        self._db.executemany(
            "UPDATE deliveries SET state = ?, done_ms = ? WHERE target = ? AND message_id = ? AND state = ?",
            [(state, now_ms, target, i, PENDING) for i in ids],
        )

    def note_attempt(self, target: str, ids: Sequence[int]) -> None:
        """Count a failed attempt on each delivery."""
        self._db.executemany(
            "UPDATE deliveries SET attempts = attempts + 1 WHERE target = ? AND message_id = ?",
            [(target, i) for i in ids],
        )

    def drop_other_targets(self, targets: Sequence[str], now_ms: int) -> int:
        """Give up pending deliveries to targets no longer configured; returns how many."""
        marks = ",".join("?" * len(targets)) or "''"
        cur = self._db.execute(
            f"UPDATE deliveries SET state = ?, done_ms = ? WHERE state = ? AND target NOT IN ({marks})",
            (DROPPED, now_ms, PENDING, *targets),
        )
        return cur.rowcount

    def prune(self, before_ms: int) -> int:
        """Delete messages queued before ``before_ms`` that nothing waits for; returns how many."""
        cur = self._db.execute(
            "DELETE FROM messages WHERE queued_ms < ? AND NOT EXISTS "
            "(SELECT 1 FROM deliveries d WHERE d.message_id = messages.id AND d.state = ?)",
            (before_ms, PENDING),
        )
        return cur.rowcount


class AsyncOutbox:
    """``Outbox`` calls run in a worker thread, one at a time (the connection is not shared concurrently)."""

    def __init__(self, outbox: Outbox) -> None:
        self.sync = outbox
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    async def open(cls, path: Path) -> AsyncOutbox:
        """Open (creating) the outbox file at ``path``; raises ``OutboxError``."""
        return cls(await anyio.to_thread.run_sync(Outbox, path))

    async def _call(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    async def add(self, notes: Sequence[Notification], targets: Sequence[str], now_ms: int) -> int:
        """See ``Outbox.add``."""
        return await self._call(lambda: self.sync.add(notes, targets, now_ms))

    async def pending(self, target: str, limit: int) -> list[Pending]:
        """See ``Outbox.pending``."""
        return await self._call(lambda: self.sync.pending(target, limit))

    async def pending_count(self, target: str | None = None) -> int:
        """See ``Outbox.pending_count``."""
        return await self._call(lambda: self.sync.pending_count(target))

    async def finish(self, target: str, ids: Sequence[int], state: str, now_ms: int) -> None:
        """See ``Outbox.finish``."""
        await self._call(lambda: self.sync.finish(target, ids, state, now_ms))

    async def note_attempt(self, target: str, ids: Sequence[int]) -> None:
        """See ``Outbox.note_attempt``."""
        await self._call(lambda: self.sync.note_attempt(target, ids))

    async def drop_other_targets(self, targets: Sequence[str], now_ms: int) -> int:
        """See ``Outbox.drop_other_targets``."""
        return await self._call(lambda: self.sync.drop_other_targets(targets, now_ms))

    async def prune(self, before_ms: int) -> int:
        """See ``Outbox.prune``."""
        return await self._call(lambda: self.sync.prune(before_ms))

    async def close(self) -> None:
        """Close the file (after every other call finished)."""
        await self._call(self.sync.close)
