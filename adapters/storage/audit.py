"""The hash-chained audit log: canonical row content, row hashes and chain verification.

Each ``audit_log`` row stores ``prev_hash`` (the previous row's hash, or ``GENESIS_HASH``
for the first row) and ``hash = sha256(prev_hash || "\\n" || canonical JSON of
[id, ts_ms, kind, payload])``. The writer computes it inside SQLite (a registered SQL
function calling ``audit_row_hash``), so every append in one transaction sees the row
before it. Triggers refuse UPDATE and DELETE; a trigger records the chain head in ``kv``
under ``audit.head`` so that a truncated tail is visible too.

The chain detects edits made without recomputing every later hash; with no secret key
it cannot stop someone who rewrites the whole chain — export the head (``audit.head``)
elsewhere if that matters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import msgspec

from adapters.storage.errors import StoreError

GENESIS_HASH = "0" * 64
AUDIT_HEAD_KEY = "audit.head"


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, msgspec.Struct):
        return msgspec.to_builtins(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot put {type(obj).__name__} in an audit payload")


def canonical_json(payload: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, Decimals as plain strings."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def audit_row_hash(prev_hash: str, row_id: int, ts_ms: int, kind: str, payload: str) -> str:
    """The hash of one audit row given the previous row's hash and this row's stored content."""
    content = json.dumps([row_id, ts_ms, kind, payload], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """The result of checking an audit chain.

    ``ok`` is True when every row links and hashes correctly and the recorded head
    matches the last row. Otherwise ``bad_id`` names the first bad row (or None for a
    problem with the head) and ``problem`` says what is wrong.
    """

    path: Path
    ok: bool
    rows: int
    last_id: int | None
    head_hash: str | None
    bad_id: int | None = None
    problem: str = ""

    def summary(self) -> str:
        """One line for the CLI."""
        if self.ok:
            return f"audit log of {self.path}: OK, {self.rows} rows, head {self.head_hash or GENESIS_HASH}"
        where = f"row {self.bad_id}" if self.bad_id is not None else "chain head"
        return f"audit log of {self.path}: BROKEN at {where}: {self.problem} ({self.rows} rows checked)"


def verify_rows(
    path: Path, rows: Any, recorded_head: Mapping[str, Any] | None
) -> AuditReport:
    """Check rows ``(id, ts_ms, kind, payload, prev_hash, hash)`` in id order."""
    prev_hash = GENESIS_HASH
    prev_id: int | None = None
    count = 0
    for row_id, ts_ms, kind, payload, stored_prev, stored_hash in rows:
        count += 1

        def bad(problem: str, row_id: int = row_id, count: int = count) -> AuditReport:
            return AuditReport(path, False, count, row_id, None, row_id, problem)

        if prev_id is not None and row_id != prev_id + 1:
            return bad(f"id gap: previous row is {prev_id} (rows deleted)")
        if prev_id is None and row_id != 1:
            return bad("first row is not id 1 (rows deleted)")
        if stored_prev != prev_hash:
            return bad(f"prev_hash {stored_prev!r} does not match the previous row's hash {prev_hash!r}")
        expected = audit_row_hash(prev_hash, row_id, ts_ms, kind, payload)
        if stored_hash != expected:
            return bad(f"hash mismatch: content was changed (stored {stored_hash[:16]}…, computed {expected[:16]}…)")
        prev_hash = stored_hash
        prev_id = row_id
    if recorded_head is not None:
        if recorded_head.get("id") != prev_id or recorded_head.get("hash") != prev_hash:
            return AuditReport(
                path, False, count, prev_id, prev_hash, None,
                f"recorded head is row {recorded_head.get('id')} but the last row is {prev_id} (rows deleted?)",
            )
    elif prev_id is not None:
        return AuditReport(path, False, count, prev_id, prev_hash, None, "rows exist but no head is recorded")
    return AuditReport(path, True, count, prev_id, prev_hash if prev_id is not None else None)


def verify_audit(path: Path | str) -> AuditReport:
    """Verify the audit chain of a state database (read-only; safe while the daemon runs).

    Raises ``StoreError`` when the file is missing, not a database, or has no audit log.
    """
    p = Path(path)
    if not p.is_file():
        raise StoreError("no such file", path=p, reason="missing")
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open read-only: {exc}", path=p, reason="io") from exc
    try:
        try:
            head_row = conn.execute("SELECT value FROM kv WHERE key = ?", (AUDIT_HEAD_KEY,)).fetchone()
            cur = conn.execute("SELECT id, ts_ms, kind, payload, prev_hash, hash FROM audit_log ORDER BY id")
            head = json.loads(head_row[0]) if head_row else None
            return verify_rows(p, cur, head)
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc):
                raise StoreError("not an aaiti state database (no audit log)", path=p, reason="foreign") from exc
            raise StoreError(f"cannot read the audit log: {exc}", path=p, reason="corrupt") from exc
    finally:
        conn.close()
