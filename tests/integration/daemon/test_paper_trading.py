"""The default paper config on a real ``aaiti`` child process: trades, stops, resumes, survives kill -9."""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from tests.integration.daemon.daemon_process import DaemonProcess
from tests.integration.daemon.paper_state import ours, paper_config, venue

INITIAL = {"ETH": Decimal("5"), "XRP": Decimal("0")}


def in_flight(state_dir: Path) -> list[str]:
    """Our orders still SUBMITTED (written ahead, outcome not yet known)."""
    return [c for c, (status, _) in ours(state_dir, INITIAL).orders.items() if status == "SUBMITTED"]


def wait_until_sync(pred: Callable[[], bool], timeout: float) -> None:
    """Poll a condition on the running daemon's files until true (the deadline is a safety net)."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def assert_books_equal(state_dir: Path) -> None:
    mine, theirs = ours(state_dir, INITIAL), venue(state_dir)
    assert mine.fills == theirs.fills
    # Every order the venue saw is ours with the same status and fill; orders the venue never
    # saw (killed between write-ahead and submit) were closed by the reconciler.
    for coid, (status, filled) in theirs.orders.items():
        assert mine.orders.get(coid) == (status, filled), coid
    for coid, (status, filled) in mine.orders.items():
        if coid not in theirs.orders:
            assert status == "REJECTED" and filled == 0, (coid, status)
    for asset in set(mine.balances) | set(theirs.balances):
        assert mine.balances.get(asset, Decimal(0)) == theirs.balances.get(asset, Decimal(0)), asset


def test_default_config_trades_on_paper_and_stops_cleanly(tmp_path: Path) -> None:
    proc = DaemonProcess(paper_config(tmp_path, speed=1200))
    try:
        proc.wait_for_event("daemon.ready", timeout=30)
        proc.wait_for_event("order.submitted", timeout=60)
        proc.wait_for_event("order.fill", timeout=60)
        proc.wait_for_event("risk.denied", timeout=60)
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        proc.kill()
    assert [r for r in proc.lines if r.get("level") in ("error", "critical")] == []
    assert_books_equal(tmp_path / "state")


def test_second_run_resumes_positions_without_duplicate_orders(tmp_path: Path) -> None:
    config = paper_config(tmp_path, speed=1200)
    first = DaemonProcess(config)
    try:
        first.wait_for_event("daemon.ready", timeout=30)
        for _ in range(3):
            first.wait_for_event("order.fill", timeout=60)
        first.proc.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    finally:
        first.kill()
    before = ours(tmp_path / "state", INITIAL)
    second = DaemonProcess(config)
    try:
        loaded = second.wait_for_event("order.loaded", timeout=30)
        second.wait_for_event("daemon.ready", timeout=30)
        clean = second.wait_for_event("reconcile.startup_done", timeout=30)
        assert clean["discrepancies"] == 0
        assert loaded["open_orders"] == 0
        # Resumed: the ledger was rebuilt from the stored fills, so balances are unchanged.
        second.proc.send_signal(signal.SIGTERM)
        assert second.wait(timeout=15) == 0
    finally:
        second.kill()
    after = ours(tmp_path / "state", INITIAL)
    assert set(before.orders) <= set(after.orders)
    assert all(after.orders[c] == v for c, v in before.orders.items())
    assert_books_equal(tmp_path / "state")


def test_kill_9_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261121)
    config = paper_config(tmp_path, speed=6000)
    kills = 0
    for _ in range(12):
        proc = DaemonProcess(config)
        try:
            proc.wait_for_event("daemon.ready", timeout=30)
            # Kill with orders in flight: right after a random number of submissions.
            seen = 0
            target = rng.randint(1, 3)
            while seen < target:
                proc.wait_for_event("order.submitted", timeout=60)
                seen = sum(1 for r in proc.lines if r.get("event") == "order.submitted")
            proc.proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            kills += 1
        finally:
            proc.kill()
    assert kills >= 10
    # An order written ahead but never acknowledged may still reach a real venue for a while,
    # so the reconciler only declares it lost after inflight_query_after_s: keep that short here.
    text = config.read_text().replace("[reconciler]\n", "[reconciler]\ninflight_query_after_s = 1\n")
    config.write_text(text)
    final = DaemonProcess(config)
    try:
        done = final.wait_for_event("reconcile.startup_done", timeout=30)
        wait_until_sync(lambda: not in_flight(tmp_path / "state"), timeout=30)
        final.proc.send_signal(signal.SIGTERM)
        assert final.wait(timeout=15) == 0
    finally:
        final.kill()
    assert done is not None
    assert_books_equal(tmp_path / "state")
