"""Retention in the daemon's own pipeline (``daemon.pipeline.build_pipeline``, as the bench soak builds it).

Days of market time go through feed → strategy → risk gate → order manager → paper venue with
``[retention]`` keeping one day: the retention actor archives old orders, fills and audit rows
while trading goes on. Afterwards positions and balances rebuilt from the store as a restart
does (newest ledger snapshot plus the fills after it) are the order manager's, the
per-strategy positions are too, and ``aaiti audit verify`` passes with and without the archive.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from actors.kernel.clock import MarketClock
from actors.orders.order_table import OrderTable
from adapters.storage.store import Store
from bench.pipeline import Pipeline, QuoteWalk, QuoteWalkSource
from bench.soak import SoakSettings
from daemon import exit_codes
from tests.integration.daemon.daemon_process import REPO

EVENTS = 800_000  # 0.5 s apart: 4.6 days of market time


def verify(db: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", "audit", "verify", "--db", str(db), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )


async def test_retention_archives_while_trading_and_positions_survive_a_restart(tmp_path: Path) -> None:
    settings = SoakSettings(keep_days=1.0, closed_order_window=64, dedup_window=64)
    pipeline = Pipeline(QuoteWalkSource(QuoteWalk(seed=5), settings.symbol, max_events=EVENTS), settings,
                        workdir=tmp_path)
    result = await pipeline.run()
    assert pipeline.built is not None and pipeline.om is not None
    keeper = pipeline.built.retention
    assert keeper is not None and keeper.failures == 0, keeper.last_error if keeper else None
    assert keeper.segments >= 1 and keeper.orders >= 1
    final = pipeline.om.snapshot()
    db = tmp_path / "state.db"
    archive = tmp_path / "archive" / "state"
    assert sorted(archive.glob("segment-*.jsonl.gz"))

    store = await Store.open(db)
    try:
        live_orders = await store.orders(limit=1_000_000)
        assert 0 < len(live_orders) < result.orders
        snap = await store.latest_ledger_snapshot()
        assert snap is not None
        table = OrderTable(clock=MarketClock(0))
        table.restore_ledger(snap.positions, snap.balances)
        for _, fill in await store.fills_after(snap.fill_seq):
            table.replay_fill(fill)
        assert table.positions() == final.positions
        assert table.balances() == final.balances
        position = next(p.size for p in final.positions if p.symbol == settings.symbol)
        assert await store.strategy_positions() == {("ema", settings.symbol): position}
    finally:
        await store.close()

    live = verify(db)
    assert live.returncode == exit_codes.OK, live.stdout + live.stderr
    assert "give --archive" in live.stdout
    full = verify(db, "--archive")  # the default: the database's directory in the state directory's archive
    assert full.returncode == exit_codes.OK, full.stdout + full.stderr
    assert "archived in" in full.stdout
    first = sorted(archive.glob("segment-*.jsonl.gz"))[0]
    first.rename(tmp_path / first.name)
    gone = verify(db, "--archive", str(tmp_path / "archive"))
    assert gone.returncode == exit_codes.STATE_ERROR
    assert f"BROKEN at archive segment {first}" in gone.stdout and "missing" in gone.stdout
