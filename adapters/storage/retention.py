"""Retention, the storage side: move old rows of the state database to archive segment files.

One step (``StoreRetention.archive_segment``) archives one *segment*:

1. Housekeeping, through the writer: record an audit *mark* (business time, highest audit
   id so far) and prune superseded ledger snapshots older than the cutoff (only the newest
   snapshot of each source is ever read; positions come from it plus the fills after it).
2. Export, on a thread and a read-only connection of its own (one consistent snapshot):
   finished orders (terminal status) whose last change and every event and fill are older
   than the cutoff, with those events and fills; fills of no order, risk denials and the
   oldest audit rows older than the cutoff. They are written as canonical JSON lines to
   ``segment-<seq>.jsonl.gz`` (``adapters.storage.audit``: header, rows, signed seal) in a
   temporary file, fsynced, renamed, and the directory fsynced.
3. Delete, through the writer in one durable transaction: the exported rows, the new
   signed archive cut (``audit.cut``: last archived audit row, segment count and digest),
   and the archived fills' per-strategy position sums (``archived_positions``).

Never archived: anything of an order that is not finished (the schema refuses it too), a
fill after the newest ledger snapshot (positions at a restart are that snapshot plus the
fills after it), the newest row of each table (SQLite gives the next row ``max(id) + 1``:
ids, and the audit chain's link to the previous row, must never go back), and audit rows
after the newest one known to be older than the cutoff (by its own time stamp, or by a
mark taken at least ``keep_ms`` of business time ago: rows stamped with the wall clock in
a replay are still archived by market time).

Crash safety: the delete only runs once the file is durable, and the cut that counts the
segment is written with the delete. A segment file numbered above the cut's count is
therefore a leftover of an interrupted step, its rows all still live: the next step removes
it and writes that number again. An order that changed between export and delete (a late
event or fill) is left live; it is in that segment and is archived again later, so a reader
of the archive keeps the newest copy of an order, event or fill id.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.model.orders import TERMINAL_STATUSES
from actors.model.positions import held_quantity
from actors.ports.stores import ArchivedSegment
from adapters.storage.audit import (
    AUDIT_CUT_KEY,
    AUDIT_ROW_COLS,
    GENESIS_HASH,
    AuditKey,
    canonical_json,
    seal_segment,
    segment_digest,
    segment_header,
    segment_name,
    sign_cut,
)
from adapters.storage.store_queries import StoreQueries
from adapters.storage.store_rows import FILL_COLS, ORDER_COLS
from adapters.storage.writer import WriteOp, Writer

__all__ = ["AUDIT_MARKS_KEY", "StoreRetention", "archive_root", "read_cut", "segment_dir"]

#: ``kv`` key of the audit marks: ``[[business ms, highest audit id then], ...]``, oldest first.
AUDIT_MARKS_KEY = "retention.audit_marks"
_MAX_MARKS = 2048
_MAX_SNAPSHOTS_PRUNED = 5000
_SEGMENT_NAME = re.compile(r"segment-(\d+)\.jsonl\.gz(\.tmp)?$")
_TERMINAL = tuple(sorted(s.value for s in TERMINAL_STATUSES))
_EVENT_COLS = "id, client_order_id, status, previous, filled, reason, trade_id, ts_ms"
_RISK_COLS = "id, ts_ms, reason, strategy, symbol, intent_json, limit_value, detail"
_CHUNK = 500


def archive_root(state_dir: Path, archive_dir: str) -> Path:
    """``[retention] archive_dir`` resolved against the state directory."""
    path = Path(archive_dir).expanduser()
    return path if path.is_absolute() else state_dir / path


def segment_dir(root: Path, db_path: Path) -> Path:
    """The directory of one database's segments: ``<root>/<database file name without .db>``."""
    return root / Path(db_path).stem


def _names(cols: str) -> list[str]:
    return [c.strip() for c in cols.split(",")]


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _marks(conn: sqlite3.Connection) -> list[list[int]]:
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (AUDIT_MARKS_KEY,)).fetchone()
    marks = json.loads(row[0]) if row else []
    return [[int(t), int(i)] for t, i in marks] if isinstance(marks, list) else []


def _housekeeping(now_ms: int, cutoff_ms: int) -> Any:
    """A writer call: add an audit mark, prune superseded old ledger snapshots; returns the mark bound."""

    def call(conn: sqlite3.Connection) -> int:
        marks = _marks(conn)
        top = int(conn.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0])
        if not marks or now_ms > marks[-1][0]:
            marks.append([now_ms, top])
        older = [i for i, (ts, _) in enumerate(marks) if ts <= cutoff_ms]
        bound = marks[older[-1]][1] if older else 0
        if older:
            marks = marks[older[-1]:]  # the newest mark at or before the cutoff still serves
        if len(marks) > _MAX_MARKS:  # thinning only makes the bound older (safe)
            marks = marks[:1] + marks[1:-1:2] + marks[-1:]
        conn.execute("INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                     "value = excluded.value, updated_ms = excluded.updated_ms",
                     (AUDIT_MARKS_KEY, canonical_json(marks), now_ms))
        newest = [r[0] for r in conn.execute("SELECT max(id) FROM ledger_snapshots GROUP BY source")]
        old = [r[0] for r in conn.execute(
            f"SELECT id FROM ledger_snapshots WHERE ts_ms < ? AND id NOT IN ({', '.join('?' * len(newest))}) "
            "ORDER BY id LIMIT ?", (cutoff_ms, *newest, _MAX_SNAPSHOTS_PRUNED))]
        for chunk in _chunks(old):
            ids = ", ".join("?" * len(chunk))
            for table in ("position_snapshots", "balance_snapshots"):
                conn.execute(f"DELETE FROM {table} WHERE snapshot_id IN ({ids})", chunk)
            conn.execute(f"DELETE FROM ledger_snapshots WHERE id IN ({ids})", chunk)
        return bound

    return call


class _Export:
    """What one export wrote (the segment file) and what its delete must remove."""

    def __init__(self, cut: dict[str, Any], cutoff_ms: int) -> None:
        self.old_cut = cut
        self.seq = int(cut["segments"]) + 1
        self.name = segment_name(self.seq)
        self.cutoff_ms = cutoff_ms
        self.digest = ""  # of the segments up to this one (its seal's place in the chain)
        #: client order id → (status, updated_ms, strategy, events, fills, {symbol: signed size})
        self.orders: dict[str, tuple[str, int, str, int, int, dict[str, Decimal]]] = {}
        self.events = 0
        self.fills = 0
        self.orphan_fills: list[int] = []
        self.risk: list[int] = []
        self.audit: list[tuple[int, str]] = []  # (id, hash) of the first and last archived audit rows
        self.audit_rows = 0
        self.full = False

    @property
    def empty(self) -> bool:
        return not (self.orders or self.orphan_fills or self.risk or self.audit_rows)


class _Exporter:
    """Selects one segment's rows on a read-only connection and writes the segment file (a thread)."""

    def __init__(self, db_path: Path, directory: Path, key: AuditKey, *, now_ms: int, cutoff_ms: int,
                 audit_mark: int, max_orders: int, max_audit_rows: int) -> None:
        self.db_path = db_path
        self.key = key
        self.now_ms = now_ms
        self.directory = directory
        self.cutoff_ms = cutoff_ms
        self.audit_mark = audit_mark
        self.max_orders = max_orders
        self.max_audit_rows = max_audit_rows

    def run(self) -> _Export | None:
        conn = sqlite3.connect(f"{self.db_path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
        try:
            conn.execute("BEGIN")  # one snapshot for the whole selection
            export = _Export(read_cut(conn), self.cutoff_ms)
            self._remove_leftovers(export.seq)
            lines = self._select(conn, export)
            if export.empty:
                return None
            self._write(export, lines)
            return export
        finally:
            conn.close()

    def _remove_leftovers(self, seq: int) -> None:
        """Segment files numbered ``seq`` or above were never recorded: their rows are all still live."""
        if not self.directory.is_dir():
            return
        for f in self.directory.iterdir():
            m = _SEGMENT_NAME.fullmatch(f.name)
            if m and (int(m.group(1)) >= seq or m.group(2)):
                f.unlink(missing_ok=True)

    def _select(self, conn: sqlite3.Connection, export: _Export) -> list[dict[str, Any]]:
        cutoff = self.cutoff_ms

        def top(table: str) -> int:
            return int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])

        snap = conn.execute("SELECT fill_seq FROM ledger_snapshots WHERE source = 'ledger' ORDER BY id DESC LIMIT 1"
                            ).fetchone()
        snap_seq = int(snap[0] or 0) if snap else 0
        max_fill, max_event = top("fills"), top("order_events")
        orders = self._orders(conn, snap_seq, max_fill, max_event)
        export.full = len(orders) >= self.max_orders
        lines: list[dict[str, Any]] = []
        order_names, event_names, fill_names = _names(ORDER_COLS), _names(_EVENT_COLS), ["id", *_names(FILL_COLS)]
        for o in orders:
            rec = dict(zip(order_names, o, strict=True))
            lines.append({"table": "orders", "row": rec})
            export.orders[rec["client_order_id"]] = (rec["status"], rec["updated_ms"], rec["strategy"], 0, 0, {})
        ids = list(export.orders)
        for chunk in _chunks(ids):
            marks = ", ".join("?" * len(chunk))
            for r in conn.execute(f"SELECT {_EVENT_COLS} FROM order_events WHERE client_order_id IN ({marks}) "
                                  "ORDER BY id", chunk):
                ev = dict(zip(event_names, r, strict=True))
                lines.append({"table": "order_events", "row": ev})
                status, updated, strategy, n_ev, n_fill, pos = export.orders[ev["client_order_id"]]
                export.orders[ev["client_order_id"]] = (status, updated, strategy, n_ev + 1, n_fill, pos)
                export.events += 1
            for r in conn.execute(f"SELECT id, {FILL_COLS} FROM fills WHERE client_order_id IN ({marks}) ORDER BY id",
                                  chunk):
                fill = dict(zip(fill_names, r, strict=True))
                lines.append({"table": "fills", "row": fill})
                status, updated, strategy, n_ev, n_fill, pos = export.orders[fill["client_order_id"]]
                size = held_quantity(str(fill["symbol"]), str(fill["side"]), Decimal(fill["size"]),
                                     Decimal(fill["fee"] or 0), str(fill["fee_currency"] or ""))
                pos[fill["symbol"]] = pos.get(fill["symbol"], Decimal(0)) + size
                export.orders[fill["client_order_id"]] = (status, updated, strategy, n_ev, n_fill + 1, pos)
                export.fills += 1
        for r in conn.execute(
            f"SELECT id, {FILL_COLS} FROM fills f WHERE f.ts_ms < ? AND f.id <= ? AND f.id < ? AND NOT EXISTS "
            "(SELECT 1 FROM orders o WHERE o.client_order_id = f.client_order_id) ORDER BY f.id LIMIT ?",
            (cutoff, snap_seq, max_fill, self.max_orders),
        ):
            lines.append({"table": "fills", "row": dict(zip(fill_names, r, strict=True))})
            export.orphan_fills.append(int(r[0]))
        export.full = export.full or len(export.orphan_fills) >= self.max_orders
        for r in conn.execute(f"SELECT {_RISK_COLS} FROM risk_events WHERE ts_ms < ? AND id < ? ORDER BY id LIMIT ?",
                              (cutoff, top("risk_events"), self.max_audit_rows)):
            lines.append({"table": "risk_events", "row": dict(zip(_names(_RISK_COLS), r, strict=True))})
            export.risk.append(int(r[0]))
        export.full = export.full or len(export.risk) >= self.max_audit_rows
        lines.extend(self._audit(conn, export, top("audit_log")))
        return lines

    def _orders(self, conn: sqlite3.Connection, snap_seq: int, max_fill: int, max_event: int) -> list[Any]:
        """Finished orders older than the cutoff whose every event and fill may go (oldest first).

        A fill after the newest ledger snapshot, the newest fill or event of its table, or a
        row stamped after the cutoff keeps its order live.
        """
        cutoff = self.cutoff_ms
        terminal = ", ".join("?" * len(_TERMINAL))
        return conn.execute(
            f"SELECT {ORDER_COLS} FROM orders o WHERE o.created_ms < ? AND o.updated_ms < ? "
            f"AND o.status IN ({terminal}) AND NOT EXISTS (SELECT 1 FROM fills f WHERE f.client_order_id = "
            "o.client_order_id AND (f.id > ? OR f.id >= ? OR f.ts_ms >= ?)) "
            "AND NOT EXISTS (SELECT 1 FROM order_events e WHERE e.client_order_id = o.client_order_id "
            "AND (e.id >= ? OR e.ts_ms >= ?)) ORDER BY o.created_ms, o.rowid LIMIT ?",
            (cutoff, cutoff, *_TERMINAL, snap_seq, max_fill, cutoff, max_event, cutoff,
             self.max_orders),
        ).fetchall()

    def _audit(self, conn: sqlite3.Connection, export: _Export, max_audit: int) -> Iterable[dict[str, Any]]:
        """The audit rows to archive: a prefix after the cut, never the newest row (the chain links to it)."""
        cut_id = int(export.old_cut["id"])
        first_new = conn.execute("SELECT id FROM audit_log WHERE id > ? AND ts_ms >= ? ORDER BY id LIMIT 1",
                                 (cut_id, self.cutoff_ms)).fetchone()
        by_stamp = int(first_new[0]) - 1 if first_new else max_audit
        bound = min(max(by_stamp, self.audit_mark), max_audit - 1, cut_id + self.max_audit_rows)
        if bound <= cut_id:
            return []
        export.full = export.full or bound == cut_id + self.max_audit_rows
        rows = [dict(zip(AUDIT_ROW_COLS, r, strict=True)) for r in conn.execute(
            f"SELECT {', '.join(AUDIT_ROW_COLS)} FROM audit_log WHERE id > ? AND id <= ? ORDER BY id", (cut_id, bound))]
        if rows:
            export.audit = [(rows[0]["id"], rows[0]["hash"]), (rows[-1]["id"], rows[-1]["hash"])]
            export.audit_rows = len(rows)
        return [{"table": "audit_log", "row": r} for r in rows]

    def _write(self, export: _Export, lines: list[dict[str, Any]]) -> None:
        """Write the segment durably: temporary file, fsync, rename, fsync of the directory."""
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / export.name
        tmp = final.with_name(final.name + ".tmp")
        digest = hashlib.sha256()
        header = segment_header(export.seq, self.db_path.name, self.now_ms, export.cutoff_ms)
        try:
            with open(tmp, "wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                    for obj in (header, *lines):
                        data = (canonical_json(obj) + "\n").encode()
                        digest.update(data)
                        gz.write(data)
                    seal = seal_segment(self.key, self._seal(export, digest.hexdigest()))
                    gz.write((canonical_json(seal) + "\n").encode())
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        export.digest = segment_digest(str(export.old_cut["digest"]), str(seal["seal"]["mac"]))

    def _seal(self, export: _Export, sha256: str) -> dict[str, Any]:
        """What the segment's seal says about it (signed by ``seal_segment``)."""
        audit = export.audit
        return {
            "seq": export.seq, "sha256": sha256, "prev_digest": export.old_cut["digest"], "created_ms": self.now_ms,
            "cutoff_ms": export.cutoff_ms, "orders": len(export.orders), "order_events": export.events,
            "fills": export.fills + len(export.orphan_fills), "risk_events": len(export.risk),
            "audit_rows": export.audit_rows, "audit_first_id": audit[0][0] if audit else None,
            "audit_last_id": audit[1][0] if audit else None, "audit_last_hash": audit[1][1] if audit else None,
        }


def read_cut(conn: sqlite3.Connection) -> dict[str, Any]:
    """The recorded archive cut, or the one before anything was archived."""
    row = conn.execute("SELECT value FROM kv WHERE key = ?", (AUDIT_CUT_KEY,)).fetchone()
    cut: dict[str, Any] = json.loads(row[0]) if row else {}
    return {"id": int(cut.get("id", 0)), "hash": str(cut.get("hash", GENESIS_HASH)),
            "segments": int(cut.get("segments", 0)), "digest": str(cut.get("digest", GENESIS_HASH))}


def _delete(export: _Export, key: AuditKey, now_ms: int) -> Any:
    """A writer call: delete what ``export`` archived (unless it changed since), sign the cut and the record."""

    def call(conn: sqlite3.Connection) -> ArchivedSegment:
        if read_cut(conn) != export.old_cut:
            raise RuntimeError(f"archive segment {export.seq}: the archive changed since the export (another "
                               "archiver?)")
        gone = _unchanged_orders(conn, export)
        for chunk in _chunks(gone):
            marks = ", ".join("?" * len(chunk))
            for table in ("order_events", "fills", "orders"):  # events before their orders (foreign key)
                conn.execute(f"DELETE FROM {table} WHERE client_order_id IN ({marks})", chunk)
        _add_positions(conn, [export.orders[c] for c in gone])
        orphans = sum(conn.execute(
            "DELETE FROM fills WHERE id = ? AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.client_order_id = "
            "fills.client_order_id)", (fid,)).rowcount for fid in export.orphan_fills)
        for chunk in _chunks(export.risk):
            conn.execute(f"DELETE FROM risk_events WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
        cut_id, cut_hash = int(export.old_cut["id"]), str(export.old_cut["hash"])
        if export.audit:
            _, (cut_id, cut_hash) = export.audit
            stored = conn.execute("SELECT hash FROM audit_log WHERE id = ?", (cut_id,)).fetchone()
            if stored is None or stored[0] != cut_hash:
                raise RuntimeError(f"archive segment {export.seq}: audit row {cut_id} is not the one exported")
        # The cut goes first: the schema lets audit rows be deleted only up to the recorded cut.
        conn.execute("INSERT INTO kv (key, value, updated_ms) VALUES (?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
                     "value = excluded.value, updated_ms = excluded.updated_ms",
                     (AUDIT_CUT_KEY, canonical_json(sign_cut(key, cut_id, cut_hash, export.seq, export.digest)),
                      now_ms))
        if export.audit:
            conn.execute("DELETE FROM audit_log WHERE id > ? AND id <= ?", (export.old_cut["id"], cut_id))
        return ArchivedSegment(
            seq=export.seq, name=export.name, orders=len(gone), order_events=sum(export.orders[c][3] for c in gone),
            fills=sum(export.orders[c][4] for c in gone) + orphans, risk_events=len(export.risk),
            audit_rows=export.audit_rows, skipped_orders=len(export.orders) - len(gone), full=export.full,
        )

    return call


def _unchanged_orders(conn: sqlite3.Connection, export: _Export) -> list[str]:
    """The exported orders that are still exactly as exported (same state, no event or fill added)."""
    ids = list(export.orders)
    now: dict[str, tuple[str, int]] = {}
    events: dict[str, int] = {}
    fills: dict[str, int] = {}
    for chunk in _chunks(ids):
        marks = ", ".join("?" * len(chunk))
        now.update((r[0], (r[1], r[2])) for r in conn.execute(
            f"SELECT client_order_id, status, updated_ms FROM orders WHERE client_order_id IN ({marks})", chunk))
        for table, counts in (("order_events", events), ("fills", fills)):
            counts.update((r[0], r[1]) for r in conn.execute(
                f"SELECT client_order_id, count(*) FROM {table} WHERE client_order_id IN ({marks}) "
                "GROUP BY client_order_id", chunk))
    return [c for c in ids if now.get(c) == export.orders[c][:2] and events.get(c, 0) == export.orders[c][3]
            and fills.get(c, 0) == export.orders[c][4]]


def _add_positions(conn: sqlite3.Connection, orders: list[tuple[str, int, str, int, int, dict[str, Decimal]]]) -> None:
    """Carry the archived fills' held quantities (signed size less a base-asset fee) into
    ``archived_positions`` (per strategy and symbol)."""
    delta: dict[tuple[str, str], Decimal] = {}
    for _, _, strategy, _, _, pos in orders:
        for symbol, size in pos.items():
            delta[(strategy, symbol)] = delta.get((strategy, symbol), Decimal(0)) + size
    for (strategy, symbol), size in delta.items():
        row = conn.execute("SELECT size FROM archived_positions WHERE strategy = ? AND symbol = ?",
                           (strategy, symbol)).fetchone()
        total = (Decimal(row[0]) if row else Decimal(0)) + size
        conn.execute("INSERT INTO archived_positions (strategy, symbol, size) VALUES (?, ?, ?) "
                     "ON CONFLICT(strategy, symbol) DO UPDATE SET size = excluded.size",
                     (strategy, symbol, format(total, "f")))


class StoreRetention(StoreQueries):
    """Retention of ``Store`` (see the module docstring): archiving, and positions across archived fills."""

    _writer: Writer
    audit_key: AuditKey

    async def archive_segment(
        self, *, now_ms: int, keep_ms: int, archive_dir: Path, max_orders: int = 1000, max_audit_rows: int = 5000
    ) -> ArchivedSegment | None:
        """Archive one segment of rows older than ``now_ms - keep_ms`` into ``archive_dir`` (see the module).

        Returns what it moved, or None when nothing is old enough. The file is durable
        before the rows are deleted. Raises ``StoreError`` or ``OSError``.
        """
        cutoff = now_ms - keep_ms
        mark = await self._writer.submit(WriteOp(call=_housekeeping(now_ms, cutoff)))
        exporter = _Exporter(self.path, Path(archive_dir), self.audit_key, now_ms=now_ms, cutoff_ms=cutoff,
                             audit_mark=int(mark), max_orders=max_orders, max_audit_rows=max_audit_rows)
        await self._writer.flush()  # the export's snapshot sees every write issued before
        export = await asyncio.to_thread(exporter.run)
        if export is None:
            return None
        result: ArchivedSegment = await self._writer.submit(
            WriteOp(call=_delete(export, self.audit_key, now_ms), durable=True))
        return result

    async def strategy_positions(self) -> dict[tuple[str, str], Decimal]:
        """Signed position per (strategy, symbol): every stored fill (net of a fee charged in the
        base asset, ``positions.held_quantity``) plus the archived ones' sums (carried as is)."""
        rows = await self._read(
            "SELECT o.strategy, f.symbol, f.side, f.size, f.fee, f.fee_currency FROM fills f "
            "JOIN orders o ON o.client_order_id = f.client_order_id "
            "UNION ALL SELECT strategy, symbol, 'carried', size, '0', '' FROM archived_positions"
        )
        out: dict[tuple[str, str], Decimal] = {}
        for strategy, symbol, side, size, fee, fee_currency in rows:
            qty = Decimal(size)
            key = (str(strategy), str(symbol))
            if side != "carried":
                qty = held_quantity(str(symbol), str(side), qty, Decimal(fee or 0), str(fee_currency or ""))
            out[key] = out.get(key, Decimal(0)) + qty
        return out
