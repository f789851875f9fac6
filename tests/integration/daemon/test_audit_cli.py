"""``aaiti audit verify`` on a real state database: OK, then a tampered row is named."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from adapters.storage.store import Store
from daemon import exit_codes
from tests.integration.daemon.daemon_process import REPO


def verify(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "audit", "verify", "--db", str(db)],
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
