"""``aaiti audit verify`` on a real state database: OK, then a tampered row is named."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

from adapters.storage.store import Store
from daemon import exit_codes
from tests.integration.daemon.daemon_process import REPO


def verify(db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "audit", "verify", "--db", str(db), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )


async def test_audit_verify_intact_chain_ok_then_tampered_row_named(tmp_path: Path) -> None:
    db = tmp_path / "aaiti-paper-paper.db"
    store = await Store.open(db)
    for i in range(5):
        await store.append_audit("test.event", {"n": i, "note": "row"})
    await store.close()
    ok = verify(db)
    assert ok.returncode == 0, ok.stderr
    assert "OK, 5 rows" in ok.stdout
    with sqlite3.connect(db) as conn:
        triggers = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
        for name in triggers:  # an attacker with file access can drop the guards; the chain still tells
            conn.execute(f"DROP TRIGGER {name}")
        row_id = conn.execute("SELECT id FROM audit_log ORDER BY id LIMIT 1 OFFSET 2").fetchone()[0]
        conn.execute("UPDATE audit_log SET payload = ? WHERE id = ?", ('{"n":99,"note":"row"}', row_id))
    bad = verify(db)
    assert bad.returncode == exit_codes.STATE_ERROR
    assert f"BROKEN at row {row_id}" in bad.stdout


def test_audit_verify_missing_database_exits_4_with_message(tmp_path: Path) -> None:
    proc = verify(tmp_path / "nope.db")
    assert proc.returncode == exit_codes.STATE_ERROR
    assert "nope.db" in proc.stderr and "Traceback" not in proc.stderr


async def test_audit_verify_catches_a_deleted_tail_with_a_rewritten_head(tmp_path: Path) -> None:
    db = tmp_path / "aaiti-paper-paper.db"
    store = await Store.open(db)
    for i in range(4):
        await store.append_audit("test.event", {"n": i})
    await store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TRIGGER audit_log_no_delete")
        conn.execute("DELETE FROM audit_log WHERE id = 4")
        last_hash = conn.execute("SELECT hash FROM audit_log WHERE id = 3").fetchone()[0]
        conn.execute("UPDATE kv SET value = ? WHERE key = 'audit.head'", (json.dumps({"id": 3, "hash": last_hash}),))
    bad = verify(db)
    assert bad.returncode == exit_codes.STATE_ERROR, bad.stdout + bad.stderr
    assert "BROKEN at chain head" in bad.stdout


async def test_audit_verify_uses_the_given_key_file(tmp_path: Path) -> None:
    db = tmp_path / "state" / "aaiti-paper-paper.db"
    store = await Store.open(db)
    await store.append_audit("test.event", {})
    await store.close()
    kept = tmp_path / "kept.key"
    (db.parent / "audit.key").rename(kept)  # the key kept away from the state directory
    missing = verify(db)
    assert missing.returncode == exit_codes.STATE_ERROR and "--key-file" in missing.stderr
    ok = verify(db, "--key-file", str(kept))
    assert ok.returncode == 0 and "OK, 1 rows" in ok.stdout, ok.stderr
    wrong = tmp_path / "wrong.key"
    wrong.write_text("w" * 64)
    bad = verify(db, "--key-file", str(wrong))
    assert bad.returncode == exit_codes.STATE_ERROR and "key id" in bad.stdout


def test_audit_verify_help_says_what_it_proves_and_what_it_cannot() -> None:
    proc = subprocess.run([sys.executable, "-m", "daemon.cli", "audit", "verify", "--help"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0
    assert "HMAC" in proc.stdout and "integrity_check" in proc.stdout and "cannot detect" in proc.stdout
