"""The audit log: canonical row content, the hash chain, its HMAC key, and verification.

Chain. Each ``audit_log`` row stores ``prev_hash`` (the previous row's hash, or
``GENESIS_HASH`` for the first row) and ``hash = sha256(prev_hash || "\\n" || canonical JSON
of [id, ts_ms, kind, payload])``. The writer computes it inside SQLite (a registered SQL
function calling ``audit_row_hash``), so every append in one transaction sees the row
before it. Triggers refuse UPDATE and DELETE; a trigger records the chain head in ``kv``
under ``audit.head`` so that a truncated tail is visible too.

Key. A chain alone can be recomputed by anyone who can write the file. Since schema
version 2 every new row also stores ``mac = HMAC-SHA256(key, "row", id, hash)`` and the
key's id, and the recorded head carries ``HMAC(key, "head", id, hash)``. The key never
enters the database: it is the systemd credential ``audit_key`` (``$CREDENTIALS_DIRECTORY``,
the way the admin token is read) or a key file (default ``<state_dir>/audit.key``, created
with mode 0600 on first use). ``kv`` ``audit.keyed_from`` says from which row on every row
must be keyed (rows before it were written before the key existed); it is signed by the
first writer holding the key, which also signs the head at that point.

Archive cut. Retention (``adapters.storage.retention``) moves the oldest rows to archive
segment files and deletes them from the database; the live chain then starts after the
*cut*: ``kv`` ``audit.cut`` names the last archived row's id and hash, how many segments
exist and the digest chaining their seals, signed with the key like the head
(``sign_cut``). A segment (``segment_name``) is a gzip file of canonical JSON lines: a
header (``segment_header``), one ``{"table": ..., "row": ...}`` line per archived row, and
a last line ``{"seal": ...}`` (``seal_segment``): the SHA-256 of every line before it, the
digest of the segments before it, what it holds, and an HMAC over all of that. The
database keeps nothing per segment, so its size does not grow with the archive.

What ``verify_audit`` proves, and what it cannot, is spelled out on ``verify_audit``.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import hmac
import itertools
import json
import os
import secrets
import sqlite3
import zlib
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import aiosqlite
import msgspec

from adapters.storage.errors import StoreError, one_line

GENESIS_HASH = "0" * 64
AUDIT_HEAD_KEY = "audit.head"
AUDIT_KEYED_FROM_KEY = "audit.keyed_from"
AUDIT_CUT_KEY = "audit.cut"
#: Version of the archive segment file format (the header's ``aaiti_archive_segment``).
SEGMENT_FORMAT = 1
#: Columns of an audit row, as stored and as archived.
AUDIT_ROW_COLS = ("id", "ts_ms", "kind", "payload", "prev_hash", "hash", "key_id", "mac")
#: Name of the systemd credential holding the key (``LoadCredential=audit_key:...``).
AUDIT_KEY_CREDENTIAL = "audit_key"
#: Default key file name, in the state directory.
AUDIT_KEY_FILE_NAME = "audit.key"
MIN_AUDIT_KEY_LENGTH = 32

# The id, both hashes and the MAC are computed inside the statement, so consecutive appends
# in one transaction (executemany) each see the row before them.
APPEND_AUDIT_SQL = (
    "INSERT INTO audit_log (id, ts_ms, kind, payload, prev_hash, hash, key_id, mac) "
    "SELECT h.id, :ts, :kind, :payload, h.prev, h.hash, :key_id, aaiti_audit_mac('row', h.id, h.hash) "
    "FROM (SELECT n.id, n.prev, aaiti_audit_hash(n.prev, n.id, :ts, :kind, :payload) AS hash "
    "FROM (SELECT coalesce((SELECT max(id) FROM audit_log), 0) + 1 AS id, "
    f"coalesce((SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1), '{GENESIS_HASH}') AS prev) AS n) AS h"
)


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


# -- the key ------------------------------------------------------------------------------
class AuditKey:
    """The secret behind the audit log's HMACs, its public id and where it came from."""

    __slots__ = ("_secret", "key_id", "source")

    def __init__(self, secret: bytes, source: str) -> None:
        self._secret = secret
        self.source = source
        self.key_id = hmac.new(secret, b"aaiti-audit-key-id", hashlib.sha256).hexdigest()[:16]

    def mac(self, domain: str, row_id: int, value: str) -> str:
        """HMAC-SHA256 of ``value`` at ``row_id`` in ``domain`` (row, head, keyed_from)."""
        msg = f"aaiti-audit-{domain}\n{row_id}\n{value}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def matches(self, mac: Any, domain: str, row_id: int, value: str) -> bool:
        """True when ``mac`` is this key's MAC of ``value`` (constant-time compare)."""
        return isinstance(mac, str) and hmac.compare_digest(mac, self.mac(domain, row_id, value))

    def __repr__(self) -> str:
        return f"AuditKey(key_id={self.key_id!r}, source={self.source!r})"


def default_audit_key_path(db_path: Path | str) -> Path:
    """``audit.key`` in the database's directory (the state directory).

    Not beside it: under systemd the state directory is the only writable place.
    """
    return Path(db_path).parent / AUDIT_KEY_FILE_NAME


def _read_key(path: Path, what: str) -> AuditKey | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"audit key {path}: cannot read: {detail}", reason="audit_key") from None
    if not text:
        return None
    if len(text) < MIN_AUDIT_KEY_LENGTH:
        raise StoreError(f"audit key {path}: too short ({len(text)} characters, need {MIN_AUDIT_KEY_LENGTH}; "
                         "generate one with: openssl rand -hex 32)", reason="audit_key")
    return AuditKey(text.encode(), f"{what}:{path}")


def _create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` (mode 0600), never replacing an existing one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (secrets.token_hex(32) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic and never overwrites: a concurrent creator wins, we use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError as exc:
        raise StoreError(f"audit key {path}: cannot create: {exc.strerror or exc}", reason="audit_key") from None


def load_audit_key(
    key_file: Path | str, *, create: bool = False, environ: Mapping[str, str] | None = None
) -> AuditKey | None:
    """The audit key: the systemd credential ``audit_key`` if present, else ``key_file``.

    The credential is looked up like the admin token's (``$CREDENTIALS_DIRECTORY/<name>``;
    a missing or empty one is skipped). A missing key file is created (random 256-bit key,
    mode 0600) when ``create``, else the result is None. Raises ``StoreError`` (reason
    ``audit_key``) for an unreadable or too short key.
    """
    env = os.environ if environ is None else environ
    creds = env.get("CREDENTIALS_DIRECTORY", "")
    if creds:
        key = _read_key(Path(creds) / AUDIT_KEY_CREDENTIAL, "credential")
        if key is not None:
            return key
    path = Path(key_file)
    key = _read_key(path, "file")
    if key is None and create:
        _create_key_file(path)
        key = _read_key(path, "file")
    return key


# -- the archive cut and its segments -----------------------------------------------------
def _cut_value(cut_hash: str, segments: int, digest: str) -> str:
    return f"{cut_hash}\n{segments}\n{digest}"


def sign_cut(key: AuditKey, cut_id: int, cut_hash: str, segments: int, digest: str) -> dict[str, Any]:
    """The ``audit.cut`` record: the last archived row (id, hash), the segment count and digest, signed."""
    return {"id": cut_id, "hash": cut_hash, "segments": segments, "digest": digest, "key_id": key.key_id,
            "mac": key.mac("cut", cut_id, _cut_value(cut_hash, segments, digest))}


def segment_name(seq: int) -> str:
    """The file name of segment ``seq``."""
    return f"segment-{seq:08d}.jsonl.gz"


def segment_header(seq: int, db_name: str, created_ms: int, cutoff_ms: int) -> dict[str, Any]:
    """The first line of a segment file."""
    return {"aaiti_archive_segment": SEGMENT_FORMAT, "seq": seq, "db": db_name, "created_ms": created_ms,
            "cutoff_ms": cutoff_ms}


def _seal_mac(key: AuditKey, seal: Mapping[str, Any]) -> str:
    body = {k: v for k, v in seal.items() if k not in ("key_id", "mac")}
    return key.mac("segment", int(seal["seq"]), canonical_json(body))


def seal_segment(key: AuditKey, seal: Mapping[str, Any]) -> dict[str, Any]:
    """A segment's last line: ``seal`` (``seq``, ``sha256`` of the lines before, ``prev_digest``, …) signed."""
    return {"seal": {**seal, "key_id": key.key_id, "mac": _seal_mac(key, seal)}}


def segment_digest(prev_digest: str, seal_mac: str) -> str:
    """The digest of the segments up to one whose seal has ``seal_mac`` (``GENESIS_HASH`` before the first)."""
    return hashlib.sha256(f"{prev_digest}\n{seal_mac}".encode()).hexdigest()


def iter_segment(path: Path) -> Iterator[dict[str, Any]]:
    """The lines of a segment file as objects (header first, seal last). Raises OSError/ValueError."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("a line is not a JSON object")
            yield obj


def read_seal(path: Path) -> tuple[str, Any]:
    """(SHA-256 of every line before the last, the last line decoded) of a segment file."""
    digest = hashlib.sha256()
    last = b""
    with gzip.open(path, "rb") as f:
        for line in f:
            digest.update(last)
            last = line
    return digest.hexdigest(), json.loads(last) if last else None


async def anchor_audit_log(conn: aiosqlite.Connection, key: AuditKey, path: Path) -> str:
    """Sign ``audit.keyed_from`` (and the head) on the first open with a key; check the key after.

    Runs inside the writer's transaction, before any append. Returns what it did: "signed",
    "checked", or "no_record" (the record is gone: left alone so that verify reports it).
    Raises ``StoreError`` (reason ``audit_key``) when the log is keyed with another key:
    new rows would then never verify.
    """
    async with conn.execute("SELECT value FROM kv WHERE key = ?", (AUDIT_KEYED_FROM_KEY,)) as cur:
        row = await cur.fetchone()
    if row is None:
        return "no_record"
    record = json.loads(row[0])
    if record.get("mac") is not None:
        if record.get("key_id") != key.key_id:
            raise StoreError(
                f"its audit log is keyed from row {record.get('id')} with key id {record.get('key_id')}, but the "
                f"audit key in use ({key.source}) has id {key.key_id}: restore the original key file or "
                "audit_key credential (rows written with another key would never verify)",
                path=path, reason="audit_key")
        return "checked"
    async with conn.execute("SELECT id, hash, key_id FROM audit_log ORDER BY id DESC LIMIT 1") as cur:
        last = await cur.fetchone()
    if last is not None and last[2] is not None:
        return "no_record"  # keyed rows under an unsigned record: tampered; verify will say so
    start = int(record["id"])
    head_id, head_hash = (int(last[0]), str(last[1])) if last is not None else (0, GENESIS_HASH)
    signed = {"id": start, "key_id": key.key_id, "mac": key.mac("keyed_from", start, key.key_id)}
    head = {"id": head_id, "hash": head_hash, "key_id": key.key_id, "mac": key.mac("head", head_id, head_hash)}
    await conn.executemany(
        "INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, 0) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(AUDIT_KEYED_FROM_KEY, canonical_json(signed)), (AUDIT_HEAD_KEY, canonical_json(head))],
    )
    return "signed"


# -- verification -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AuditReport:
    """The result of checking an audit log.

    ``ok`` is True when every row links, hashes and (if keyed) authenticates correctly, the
    recorded head matches the last row, and ``PRAGMA integrity_check`` passes. Otherwise
    ``bad_id`` names the first bad row (None for a problem with the head, the keyed-from
    record or the file), ``scope`` says which, and ``problem`` says what is wrong.
    ``keyed_from`` is the first row that must be keyed (rows before it are unkeyed, checked
    by the chain only); None when the schema has no keys. ``cut_id`` is the last archived
    row (None: nothing archived); ``archived_rows`` how many archived rows were checked
    from ``segments`` segment files (None: the archive was not checked).
    """

    path: Path
    ok: bool
    rows: int
    last_id: int | None
    head_hash: str | None
    bad_id: int | None = None
    problem: str = ""
    scope: str = ""
    keyed_from: int | None = None
    key: str = ""
    integrity: str = ""
    cut_id: int | None = None
    archived_rows: int | None = None
    segments: int = 0

    def summary(self) -> str:
        """One line for the CLI."""
        if self.ok:
            parts = [f"OK, {self.rows} rows, head {self.head_hash or GENESIS_HASH}"]
            if self.keyed_from is None:
                parts.append("unkeyed (written before audit keys existed)")
            else:
                if self.keyed_from > 1 and self.rows:
                    parts.append(f"unkeyed before row {self.keyed_from}")
                if self.key:
                    parts.append(f"HMAC key {self.key}")
            segments = f"{self.segments} segment{'' if self.segments == 1 else 's'}"
            if self.cut_id and self.archived_rows is None:
                parts.append(f"live from row {self.cut_id + 1} (rows up to {self.cut_id} archived in {segments}, "
                             "not checked: give --archive)")
            elif self.cut_id:
                parts.append(f"{self.archived_rows} of them archived in {segments}")
            if self.integrity:
                parts.append(f"integrity_check {self.integrity}")
            return f"audit log of {self.path}: " + ", ".join(parts)
        where = self.scope or (f"row {self.bad_id}" if self.bad_id is not None else "chain head")
        return f"audit log of {self.path}: BROKEN at {where}: {self.problem} ({self.rows} rows checked)"


def _need_key(path: Path, what: str) -> StoreError:
    return StoreError(f"{what}, but no audit key was found (the audit_key credential in $CREDENTIALS_DIRECTORY, "
                      f"or {default_audit_key_path(path)}); give it with --key-file", path=path, reason="audit_key")


def _keyed_start(
    path: Path, record: Mapping[str, Any] | None, key: AuditKey | None
) -> tuple[int | None, bool, str]:
    """(first row that must be keyed, whether the record is signed, problem with it or "")."""
    if record is None:
        return None, False, ""
    start = record.get("id")
    if not isinstance(start, int) or start < 1:
        return None, False, f"keyed-from record is malformed: {canonical_json(record)}"
    if record.get("mac") is None:
        return start, False, ""
    if key is None:
        raise _need_key(path, f"the audit log is keyed from row {start} (key id {record.get('key_id')})")
    if record.get("key_id") != key.key_id:
        return start, True, f"keyed with key id {record.get('key_id')}, not the given key ({key.key_id}, {key.source})"
    if not key.matches(record.get("mac"), "keyed_from", start, key.key_id):
        return start, True, "keyed-from record's HMAC does not match the key (rewritten?)"
    return start, True, ""


def verify_rows(
    path: Path,
    rows: Iterable[Any],
    recorded_head: Mapping[str, Any] | None,
    *,
    key: AuditKey | None = None,
    keyed_from: Mapping[str, Any] | None = None,
    keyed_schema: bool = False,
    cut: Mapping[str, Any] | None = None,
) -> AuditReport:
    """Check rows ``(id, ts_ms, kind, payload, prev_hash, hash[, key_id, mac])`` in id order.

    ``keyed_schema`` is True for schema version 2 and later (rows may carry MACs and the
    keyed-from record must exist). ``cut`` (an already checked ``audit.cut`` record) makes
    the rows start after the archived ones: the first is ``cut["id"] + 1`` and links to
    ``cut["hash"]``. Raises ``StoreError`` (reason ``audit_key``) when keyed rows need a key
    and ``key`` is None.
    """
    start, signed, anchor_problem = _keyed_start(path, keyed_from, key)
    if anchor_problem:
        return AuditReport(path, False, 0, None, None, None, anchor_problem, "keyed-from record", start)
    prev_hash = str(cut["hash"]) if cut else GENESIS_HASH
    prev_id: int | None = int(cut["id"]) if cut and int(cut["id"]) > 0 else None
    last_mac: str | None = None
    count = 0
    for row in rows:
        row_id, ts_ms, kind, payload, stored_prev, stored_hash = row[:6]
        row_key_id, mac = (row[6], row[7]) if len(row) > 6 else (None, None)
        count += 1

        def bad(problem: str, row_id: int = row_id, count: int = count) -> AuditReport:
            return AuditReport(path, False, count, row_id, None, row_id, problem, keyed_from=start)

        if prev_id is not None and row_id != prev_id + 1:
            if count == 1:
                return bad(f"first row after the archive cut (row {prev_id}) is not {prev_id + 1} (rows deleted)")
            return bad(f"id gap: previous row is {prev_id} (rows deleted)")
        if prev_id is None and row_id != 1:
            return bad("first row is not id 1 (rows deleted)")
        if stored_prev != prev_hash:
            return bad(f"prev_hash {stored_prev!r} does not match the previous row's hash {prev_hash!r}")
        expected = audit_row_hash(prev_hash, row_id, ts_ms, kind, payload)
        if stored_hash != expected:
            return bad(f"hash mismatch: content was changed (stored {stored_hash[:16]}…, computed {expected[:16]}…)")
        if mac is None:
            if start is not None and row_id >= start:
                return bad(f"row is not keyed, but every row from {start} on must be (appended without the key, "
                           "or its HMAC stripped)")
        else:
            if start is None:
                return bad("row is keyed, but the keyed-from record is missing (deleted?)")
            if row_id < start or not signed:
                return bad(f"row is keyed, but the keyed-from record says {start}"
                           f"{'' if signed else ' and is unsigned'} (rewritten?)")
            if key is None:
                raise _need_key(path, f"row {row_id} is keyed (key id {row_key_id})")
            if row_key_id != key.key_id:
                return bad(f"keyed with key id {row_key_id}, not the given key ({key.key_id}, {key.source})")
            if not key.matches(mac, "row", row_id, stored_hash):
                return bad("HMAC mismatch: the row or the chain up to it was rewritten without the key")
        prev_hash = stored_hash
        prev_id = row_id
        last_mac = mac
    return _check_head(path, count, prev_id, prev_hash, recorded_head, key, start, signed, last_mac,
                       keyed_schema=keyed_schema)


def _check_head(
    path: Path, count: int, last_id: int | None, last_hash: str, head: Mapping[str, Any] | None,
    key: AuditKey | None, start: int | None, signed: bool, last_mac: str | None, *, keyed_schema: bool,
) -> AuditReport:
    def bad(problem: str, scope: str = "chain head") -> AuditReport:
        return AuditReport(path, False, count, last_id, last_hash, None, problem, scope, start)

    if keyed_schema and start is None and count:
        return bad("no keyed-from record in a keyed log (deleted?)", "keyed-from record")
    if head is None:
        if last_id is not None:
            return bad("rows exist but no head is recorded")
        if signed:
            return bad("no head is recorded, but a keyed log always has a signed one (rows and head deleted?)")
        return AuditReport(path, True, 0, None, None, keyed_from=start, key=_key_label(key, signed))
    head_id = head.get("id")
    expected_id = last_id if last_id is not None else 0
    if head_id != expected_id or head.get("hash") != (last_hash if last_id is not None else GENESIS_HASH):
        return bad(f"recorded head is row {head_id} but the last row is {last_id} (rows deleted?)")
    if signed or last_mac is not None:
        if key is None:
            raise _need_key(path, "the recorded head is keyed")
        if not key.matches(head.get("mac"), "head", expected_id, str(head.get("hash"))):
            return bad("recorded head is not signed by the key (rewritten, or rows deleted?)")
    elif head.get("mac") is not None:
        return bad("recorded head is signed but the log is not keyed (rewritten?)")
    return AuditReport(path, True, count, last_id, last_hash if last_id is not None else None,
                       keyed_from=start, key=_key_label(key, signed))


def _key_label(key: AuditKey | None, signed: bool) -> str:
    return f"{key.key_id} ({key.source})" if key is not None and signed else ""


def _check_cut(path: Path, cut: Any, key: AuditKey | None) -> AuditReport | None:
    """Check the signed ``audit.cut`` (decoded, or None); None when it is sound."""
    if cut is None:
        return None
    fields = ("id", "hash", "segments", "digest")
    if not (isinstance(cut, Mapping) and all(isinstance(cut.get(f), t) for f, t in zip(fields, (int, str, int, str),
                                                                                         strict=True))):
        return AuditReport(path, False, 0, None, None, None, f"archive cut record is malformed: {canonical_json(cut)}",
                           "archive cut")
    if key is None:
        raise _need_key(path, f"the audit log is archived up to row {cut['id']}")
    problem = ""
    if cut.get("key_id") != key.key_id:
        problem = f"archive cut is signed with key id {cut.get('key_id')}, not the given key ({key.key_id})"
    elif not key.matches(cut.get("mac"), "cut", cut["id"], _cut_value(cut["hash"], cut["segments"], cut["digest"])):
        problem = "archive cut record's HMAC does not match the key (rewritten?)"
    return AuditReport(path, False, 0, None, None, None, problem, "archive cut") if problem else None


def _check_segments(path: Path, archive_dir: Path, cut: Mapping[str, Any], key: AuditKey) -> AuditReport | None:
    """Every segment up to the cut is there, sealed by the key, unchanged, in order, ending at the cut."""
    digest, last = GENESIS_HASH, (0, GENESIS_HASH)
    for seq in range(1, int(cut["segments"]) + 1):
        file = archive_dir / segment_name(seq)

        def bad(problem: str, file: Path = file) -> AuditReport:
            return AuditReport(path, False, 0, None, None, None, problem, f"archive segment {file}")

        if not file.is_file():
            return bad("missing (deleted or moved?)")
        try:
            sha, line = read_seal(file)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            return bad(f"unreadable: {one_line(str(exc))}")
        seal = line.get("seal") if isinstance(line, dict) else None
        if not isinstance(seal, dict) or seal.get("seq") != seq:
            return bad(f"its last line is not the seal of segment {seq} (truncated or renamed?)")
        if seal.get("key_id") != key.key_id or not key.matches(seal.get("mac"), "segment", seq, canonical_json(
                {k: v for k, v in seal.items() if k not in ("key_id", "mac")})):
            return bad("its seal's HMAC does not match the key (rewritten?)")
        if seal.get("sha256") != sha:
            return bad("content changed (its SHA-256 is not the sealed one)")
        if seal.get("prev_digest") != digest:
            return bad(f"does not follow segment {seq - 1} (a segment replaced or reordered?)")
        digest = segment_digest(digest, str(seal["mac"]))
        if seal.get("audit_last_id") is not None:
            last = (int(seal["audit_last_id"]), str(seal.get("audit_last_hash")))
    if digest != cut["digest"]:
        return AuditReport(path, False, 0, None, None, None, "the segments are not the ones the cut records (one "
                           "replaced?)", "archive cut")
    if last != (cut["id"], cut["hash"]):
        return AuditReport(path, False, 0, None, None, None, f"the last archived audit row ({last[0]}) is not the "
                           f"recorded cut ({cut['id']})", "archive cut")
    return None


def _archived_audit_rows(archive_dir: Path, segments: int, seen: list[int]) -> Iterator[tuple[Any, ...]]:
    """The archived audit rows of every segment in order (counted in ``seen[0]``)."""
    for seq in range(1, segments + 1):
        for line in iter_segment(archive_dir / segment_name(seq)):
            if line.get("table") == "audit_log":
                row = line["row"]
                seen[0] += 1
                yield tuple(row.get(c) for c in AUDIT_ROW_COLS)


def verify_audit(
    path: Path | str, key: AuditKey | None = None, *, integrity: bool = True, archive_dir: Path | str | None = None,
) -> AuditReport:
    """Verify the audit log of a state database (read-only; safe while the daemon runs).

    Proves, for a log checked with the right key: every row's chain link and content hash;
    every row from ``audit.keyed_from`` on carries a valid HMAC, and no unkeyed row follows
    a keyed one; the keyed-from record and the recorded head are signed and the head names
    the last row (a deleted or rewritten tail is caught); ``PRAGMA integrity_check`` passes
    (with ``integrity``). Cannot prove: anything against someone holding both the key and
    the database (they can rewrite and re-sign everything); that the file was not rolled
    back to an earlier copy of itself (a restored backup, or a saved head and keyed-from
    record: export the head elsewhere if that matters); anything about unkeyed rows beyond
    the chain (written before the key existed); nor, for a file downgraded to schema
    version 1 (key columns dropped), that it was ever keyed.

    After retention archived rows: without ``archive_dir`` it checks the live rows from the
    signed cut on (the first live row links to the cut's hash) and the cut's signature.
    That proves the live rows and that whoever removed the rows
    before the cut held the key; it proves nothing about the archived rows themselves.
    With ``archive_dir`` (the database's segment directory) it also checks every segment
    up to the cut: present, sealed by the key, its content's SHA-256 the sealed one (so no
    archived order, event, fill, denial or audit row was changed, added or removed), each
    following the one before and the last being the one the cut records (digest chain);
    and the whole chain from row 1 through the segments into the live rows, every keyed
    row's HMAC included, the last archived row being the recorded cut. Segment files
    numbered above the cut's count were left by an interrupted archive run (their rows are
    still live) and are ignored.

    ``key`` None looks for it like the daemon (credential ``audit_key``, then ``audit.key``
    in the database's directory), without creating one. Raises ``StoreError`` when the file
    is missing, not a database, has no audit log, or is keyed and no key is found.
    """
    p = Path(path)
    if not p.is_file():
        raise StoreError("no such file", path=p, reason="missing")
    if key is None:
        key = load_audit_key(default_audit_key_path(p))
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open read-only: {exc}", path=p, reason="io") from exc
    try:
        try:
            conn.execute("BEGIN")  # one snapshot: rows, head and record agree while the daemon appends
            columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(audit_log)")}
            if not columns:
                raise StoreError("not an aaiti state database (no audit log)", path=p, reason="foreign")
            keyed_schema = "mac" in columns
            extra = ", key_id, mac" if keyed_schema else ""
            kv = {str(k): json.loads(v) for k, v in conn.execute(
                "SELECT key, value FROM kv WHERE key IN (?, ?, ?)",
                (AUDIT_HEAD_KEY, AUDIT_KEYED_FROM_KEY, AUDIT_CUT_KEY))}
            cut = kv.get(AUDIT_CUT_KEY)
            refused = _check_cut(p, cut, key)
            if refused is not None:
                return refused
            segments = int(cut["segments"]) if cut else 0
            live = conn.execute(f"SELECT id, ts_ms, kind, payload, prev_hash, hash{extra} FROM audit_log ORDER BY id")
            seen = [0]
            rows: Iterable[Any] = live
            if archive_dir is not None and cut is not None:
                assert key is not None  # _check_cut raised without one
                refused = _check_segments(p, Path(archive_dir), cut, key)
                if refused is not None:
                    return refused
                rows = itertools.chain(_archived_audit_rows(Path(archive_dir), segments, seen), live)
            try:
                report = verify_rows(
                    p, rows, kv.get(AUDIT_HEAD_KEY), key=key, keyed_from=kv.get(AUDIT_KEYED_FROM_KEY),
                    keyed_schema=keyed_schema, cut=cut if archive_dir is None else None,
                )
            except (OSError, EOFError, zlib.error, ValueError, KeyError) as exc:
                return AuditReport(p, False, seen[0], None, None, None, f"unreadable: {one_line(str(exc))}",
                                   f"archive in {archive_dir}")
            report = dataclasses.replace(report, cut_id=cut["id"] if cut else None, segments=segments,
                                         archived_rows=seen[0] if archive_dir is not None else None)
            if not integrity or not report.ok:
                return report
            problems = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(5)")]
        except sqlite3.DatabaseError as exc:
            if "no such table" in str(exc):
                raise StoreError("not an aaiti state database (no audit log)", path=p, reason="foreign") from exc
            raise StoreError(f"cannot read the audit log: {exc}", path=p, reason="corrupt") from exc
    finally:
        conn.close()
    if problems != ["ok"]:
        return dataclasses.replace(report, ok=False, scope="database file",
                                   problem=f"PRAGMA integrity_check: {one_line(chr(10).join(problems))}")
    return dataclasses.replace(report, integrity="ok")
