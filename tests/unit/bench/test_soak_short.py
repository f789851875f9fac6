"""A short run of the soak pipeline (bench/soak.py): behaviour only, no timing or RSS thresholds.

Every event goes through feed → strategy → risk gate → order manager → paper venue with real
SQLite files; afterwards every intent became an order, every order was filled, and the
structures that could grow with uptime are within their configured caps.
"""

from __future__ import annotations

from actors.strategy_portfolio import TrackingPortfolio
from bench.soak import run_soak

EVENTS = 200_000
WINDOW = 16


def test_soak_short_processes_everything_and_stays_bounded() -> None:
    out = run_soak(EVENTS, warmup=50_000, every=50_000, window=WINDOW, quiet=True, quiet_logs=False)
    assert out["events"] == EVENTS
    assert out["bars"] == EVENTS // 120 + 1  # 500 ms quotes: 120 per 1m bar, the last one flushed at the end
    assert out["lockstep_timeouts"] == 0
    # Accounting: each cross became one intent, one order and one fill; nothing denied or lost.
    assert out["orders"] > 2 * WINDOW  # enough orders to fill the windows below
    assert out["intents"] == out["orders"] == out["fills"]
    assert out["denied"] == 0 and out["rejected"] == 0
    assert out["order_counts"] == {"SUBMITTED": out["orders"], "FILLED": out["orders"]}
    sizes = out["sizes"]
    # Nothing open or in flight once the run settled.
    for key in ("om_open", "om_inflight", "om_tasks", "om_outbox", "ledger_orders", "gate_pending",
                "strategy_open", "venue_open", "store_backlog", "channels_max_depth"):
        assert sizes[key] == 0, (key, sizes[key])
    # Memory windows at (not above) their caps.
    assert sizes["om_closed"] == sizes["om_closed_order"] == WINDOW
    assert sizes["ledger_closed"] == WINDOW
    assert sizes["ledger_seen"] == WINDOW
    assert sizes["strategy_fill_keys"] == min(out["fills"], TrackingPortfolio.dedup_window)
    # RSS was sampled during the run (no threshold here: see bench/soak.py).
    assert [n for n, _ in out["rss_samples_mb"]] == [50_000, 100_000, 150_000, 200_000]
