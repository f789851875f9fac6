"""Crash acceptance: ``kill -9`` the daemon at random moments while it trades against the simulator.

The simulator runs in this process and keeps its state across the daemon's restarts. Each
round: the daemon (re)starts with its strategy stopped, and its start-up reconciliation
must make our orders, fills and balances equal the simulator's; then the strategy starts
(admin API), and after a random number of ``order.submitted`` lines (sometimes with a
lost-order-response fault armed, sometimes with REST errors at a rate) the daemon is
killed with SIGKILL, orders in flight. While it is down, resting orders may fill. Zero
duplicate submissions and zero lost orders throughout.

One exception to "equal right after the restart", by design: an order written ahead but
whose request may still reach the venue (killed around its send, less than the venue's
request expiry ago) cannot be decided yet; it must be decided (REJECTED as lost, or found)
by the end.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

from adapters.binance_sim import BinanceSimulator
from tests.chaos.harness import (
    PREFIX,
    UNIFIED,
    VENUE_IDS,
    SimThread,
    chaos_config,
    converge,
    duplicate_posts,
    ledger_balances,
    sim_config,
    sim_env,
    wait_events,
)
from tests.chaos.scenario import STEPS
from tests.integration.ops.daemon_harness import OpsDaemon


@pytest.fixture
def sim() -> Iterator[SimThread]:
    st = SimThread(sim_config(seed=3))
    yield st
    st.stop()


def _resting(sim: BinanceSimulator) -> list[tuple[str, str, Decimal, Decimal]]:
    return [(UNIFIED[o.symbol], o.side, o.price, o.remaining) for o in sim.exchange.orders.open_orders()
            if o.client_order_id.startswith(PREFIX) and o.type == "LIMIT"]


def fill_while_down(st: SimThread, rng: random.Random, *, at_least_one: bool) -> int:
    """Print at the limit of some of our resting orders while the daemon is dead; returns how many."""
    n = 0
    for sym, side, price, remaining in st.call(_resting, st.sim):
        if rng.random() < 0.5 and not (at_least_one and n == 0):
            continue
        qty = remaining if rng.random() < 0.5 else (remaining / 2).quantize(STEPS[sym], ROUND_DOWN)
        if qty <= 0:
            continue
        taker = "SELL" if side == "BUY" else "BUY"
        st.call(st.sim.inject_trade, VENUE_IDS[sym], price, qty, taker, rebuild_book=False)
        n += 1
    return n


def run_crashes(tmp: Path, st: SimThread, kills: int, seed: int, *, rest_errors: bool = False) -> dict[str, int]:
    """``kills`` rounds of start, check, trade, SIGKILL; then a last start that must converge fully."""
    rng = random.Random(seed)
    initial = {a: free + locked for a, (free, locked) in st.call(st.sim.balances).items()}
    cfg = chaos_config(tmp, st, every_ms=150, enabled=False,
                       reconciler={"interval_s": 1.0, "inflight_query_after_s": 0.5})
    stats = {"kills": 0, "armed_lost": 0, "rest_errors": 0, "filled_while_down": 0, "submitted": 0}
    for round_no in range(kills + 1):
        started = time.monotonic()
        last = round_no == kills
        daemon = OpsDaemon(cfg, extra_env=sim_env(st))
        try:
            daemon.wait_for_event("daemon.ready", timeout=60)
            api = daemon.api
            # The start-up reconciliation made us equal to the venue: no lost or duplicate order.
            ours, theirs = converge(api, st, timeout=30 if last else 10, inflight_ok=not last)
            assert not duplicate_posts(theirs), (round_no, duplicate_posts(theirs))
            assert ledger_balances(initial, ours.fills.values()) == {
                a: v for a, v in theirs.balances.items() if v or a in initial}, round_no
            if last:
                assert not [c for c, o in ours.orders.items() if o["status"] == "SUBMITTED"]
                assert daemon.stop(timeout=30) == 0, daemon.raw[-20:]
                break
            # Trade, then kill -9 with orders in flight.
            since = daemon.mark()
            if rng.random() < 0.35:
                mode = rng.choice(("abort", "timeout"))
                st.call(st.sim.faults.lose_order_responses, rng.randint(1, 2), mode=mode, delay_s=2.0)
                stats["armed_lost"] += 1
            if rest_errors and rng.random() < 0.3:
                st.call(st.sim.faults.set, rest_error_rate=0.2, rest_delay_rate=0.05, rest_delay_s=2.0)
                stats["rest_errors"] += 1
            assert api.post("/strategies/chaos/start", {}).status == 200
            wait_events(daemon, "order.submitted", rng.randint(1, 6), since, timeout=30)
            time.sleep(rng.uniform(0.0, 0.15))  # a random moment after the n-th submission
            daemon.kill()
            st.call(st.sim.faults.reset)
            stats["kills"] += 1
            stats["submitted"] += len(daemon.events("order.submitted", since))
            stats["filled_while_down"] += fill_while_down(st, rng, at_least_one=not stats["filled_while_down"])
        finally:
            daemon.kill()
            with (tmp / "daemon.log").open("a") as f:
                f.write("".join(daemon.raw))
            with (tmp / "daemon.stderr").open("a") as f:
                f.write(daemon.stderr())
        print(f"crash round {round_no}: {time.monotonic() - started:.1f}s, {len(ours.orders)} orders")
    return stats


def test_crash_kill9_at_random_moments_restart_reconciles(tmp_path: Path, sim: SimThread) -> None:
    stats = run_crashes(tmp_path, sim, kills=20, seed=20)
    print(f"crash: {stats}")
    assert stats["kills"] == 20 and stats["armed_lost"] > 0 and stats["filled_while_down"] > 0
    assert stats["submitted"] >= 20


@pytest.mark.slow
def test_crash_kill9_many_rounds_with_rest_errors_restart_reconciles(tmp_path: Path, sim: SimThread) -> None:
    stats = run_crashes(tmp_path, sim, kills=60, seed=61, rest_errors=True)
    print(f"crash: {stats}")
    assert stats["kills"] == 60 and stats["armed_lost"] > 0 and stats["rest_errors"] > 0
