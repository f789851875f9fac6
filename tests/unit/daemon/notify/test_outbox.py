"""The SQLite outbox: once per key, in order per target, survives reopening, prunes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from daemon.notify.events import EventKind, Notification, Severity
from daemon.notify.outbox import COALESCED, OUTBOX_FILE, SENT, Outbox, OutboxError


def n(i: int, kind: EventKind = EventKind.FILL) -> Notification:
    return Notification(kind=kind, key=f"k{i}", title=f"t{i}", body=f"b{i}", event_ms=i)


def test_add_is_once_per_key_and_pending_is_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / OUTBOX_FILE)
    assert box.add([n(1), n(2), n(1)], ["a", "b"], 0) == 2
    assert box.add([n(2), n(3)], ["a", "b"], 0) == 1
    assert [p.note.title for p in box.pending("a", 10)] == ["t1", "t2", "t3"]
    first = box.pending("a", 1)[0]
    assert first.note == Notification(kind=EventKind.FILL, key="k1", title="t1", body="b1", event_ms=1,
                                      severity=Severity.INFO)
    box.finish("a", [first.id], SENT, 5)
    box.note_attempt("a", [box.pending("a", 1)[0].id])
    assert [(p.note.title, p.attempts) for p in box.pending("a", 10)] == [("t2", 1), ("t3", 0)]
    assert box.pending_count("b") == 3 and box.pending_count() == 5
    box.close()


def test_pending_rows_survive_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path / OUTBOX_FILE)
    box.add([n(1), n(2)], ["a"], 0)
    box.finish("a", [box.pending("a", 1)[0].id], SENT, 1)
    box.close()
    again = Outbox(tmp_path / OUTBOX_FILE)
    assert [p.note.title for p in again.pending("a", 10)] == ["t2"]
    assert again.add([n(1)], ["a"], 2) == 0  # delivered keys still deduplicate
    again.close()


def test_prune_keeps_what_waits_and_drop_other_targets(tmp_path: Path) -> None:
    box = Outbox(tmp_path / OUTBOX_FILE)
    box.add([n(1), n(2)], ["a", "old"], 100)
    ids = [p.id for p in box.pending("a", 10)]
    box.finish("a", ids, COALESCED, 150)
    assert box.prune(1000) == 0  # "old" still waits for both
    assert box.drop_other_targets(["a"], 200) == 2
    assert box.prune(101) == 2
    assert box.add([n(1)], ["a"], 300) == 1  # pruned: the key is new again
    box.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / OUTBOX_FILE
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    with pytest.raises(OutboxError, match="newer version"):
        Outbox(path)


def test_a_corrupt_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / OUTBOX_FILE
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(OutboxError, match=OUTBOX_FILE):
        Outbox(path)
