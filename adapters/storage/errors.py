"""The one error type the storage layer raises, and how SQLite errors become one."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
_CORRUPT = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def one_line(text: str) -> str:
    """``text`` on one line: its non-blank lines, stripped, joined by ``"; "``.

    SQLite's integrity reports span lines (``*** in database main ***`` then one line per
    problem); a log line or a terminal message must not.
    """
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


class StoreError(Exception):
    """A state-database problem, with a one-line message naming the file.

    ``reason`` is a stable code: ``corrupt`` (not a database / malformed), ``newer_schema``
    (written by a newer aaiti), ``foreign`` (an SQLite file that is not aaiti's),
    ``empty`` (the file exists but holds no aaiti data: zero bytes or no tables — it is
    never silently re-initialised), ``incomplete`` (tables or triggers of its schema are
    missing), ``locked`` (another process holds it), ``io`` (cannot open/create),
    ``write_failed``, ``constraint`` (e.g. a duplicate client order id), ``closed``,
    ``missing`` (no such file where one is required), ``audit_key`` (the audit key is
    unusable or is not the key the audit log was written with).
    """

    def __init__(self, message: str, *, path: Path | str | None = None, reason: str = "error") -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        where = f"state database {self.path}: " if self.path is not None else "state database: "
        super().__init__(where + one_line(message))


def is_busy(exc: sqlite3.Error) -> bool:
    """True for SQLite's busy/locked results (another connection holds a lock)."""
    return getattr(exc, "sqlite_errorcode", -1) & 0xFF in _BUSY


def _proc_locks_holders(paths: Iterable[Path]) -> list[int]:
    """Other processes holding a lock on any of ``paths``, from ``/proc/locks`` (Linux; else empty).

    Read from /proc rather than asked with F_GETLK: opening and closing a descriptor on the
    database would drop every POSIX lock this process holds on it (SQLite's included).
    """
    wanted: set[tuple[int, int, int]] = set()
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        wanted.add((os.major(st.st_dev), os.minor(st.st_dev), st.st_ino))
    if not wanted:
        return []
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    pids: list[int] = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":  # "->" marks a waiter, not a holder
            continue
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
        except ValueError:
            continue
        if key in wanted and pid > 0 and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    return pids


def _holder_text(pids: list[int]) -> str:
    if not pids:
        return "holder unknown"
    return f"pid {pids[0]}" if len(pids) == 1 else "pids " + ", ".join(str(p) for p in pids)


def sqlite_failure(exc: sqlite3.Error, path: Path, *, doing: str = "", default_reason: str = "corrupt") -> StoreError:
    """A one-line ``StoreError`` for an SQLite error, classified by its result code.

    Busy/locked is reported as ``locked`` with the holding process if /proc tells it, and
    never as damage; corrupt/not-a-database as ``corrupt``; anything else gets
    ``default_reason``. ``doing`` prefixes the message ("migration from version 1").
    """
    code = getattr(exc, "sqlite_errorcode", -1) & 0xFF
    prefix = f"{doing}: " if doing else ""
    what = one_line(str(exc)) or type(exc).__name__
    if code in _BUSY:
        holders = _proc_locks_holders([path, path.with_name(path.name + "-shm"), path.with_name(path.name + "-wal")])
        return StoreError(
            f"{prefix}is locked by another process ({_holder_text(holders)}; SQLite: {what}). The file is not known "
            "to be damaged: stop that process (a sqlite3 shell, a backup tool, another aaiti) and start again",
            path=path, reason="locked")
    if code in _CORRUPT:
        return StoreError(f"{prefix}is not a valid SQLite database or is corrupt ({what}); restore a backup or "
                          "move it aside", path=path, reason="corrupt")
    return StoreError(f"{prefix}{what}" if prefix else f"SQLite error: {what}", path=path, reason=default_reason)
