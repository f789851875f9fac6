"""Chaos acceptance: a real ``aaiti run`` against the Binance simulator while every venue fault hits it.

The simulator runs in this process (so faults are scriptable and it outlives the daemon);
the daemon is a child process with the ccxt venue and the ccxt feed pointed at it. During
one run every fault of the issue is injected (socket drops 1001 and 1006 on market and
user streams, silent stalls, REST 5xx and timeouts at a rate, 429 + Retry-After, a 418
ban, accepted orders whose response is lost, partial fills, duplicate and out-of-order
executionReports, a depth sequence gap, clock skew). Then, faults cleared and the market
quiet, our orders, fills and balances must equal the simulator's, with no lost and no
duplicate order, the breakers must have opened and closed again, and the daemon must
never have exited.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from tests.chaos.harness import (
    SimThread,
    chaos_config,
    converge,
    duplicate_posts,
    ledger_balances,
    metric,
    metrics,
    sim_config,
    sim_env,
    status_counts,
)
from tests.chaos.scenario import FAST_SCHEDULE, Chaos, long_schedule
from tests.integration.ops.daemon_harness import OpsDaemon


@pytest.fixture
def sim() -> Iterator[SimThread]:
    st = SimThread(sim_config())
    yield st
    st.stop()


def run_chaos(
    tmp: Path, st: SimThread, schedule: Sequence[tuple[str, Callable[[Chaos], None]]], rng: random.Random
) -> Chaos:
    """Start the daemon, run ``schedule``, settle, and assert every acceptance property."""
    initial = {a: free + locked for a, (free, locked) in st.call(st.sim.balances).items()}
    daemon = OpsDaemon(chaos_config(tmp, st), extra_env=sim_env(st))
    try:
        daemon.wait_for_event("daemon.ready", timeout=60)
        api = daemon.api
        pid = api.ok("GET", "/status")["pid"]
        assert pid == daemon.proc.pid
        c = Chaos(daemon, api, st, rng)
        c.progress(6)
        for name, step in schedule:
            started = time.monotonic()
            step(c)
            c.progress(2)
            if rng.random() < 0.5:
                c.poke()
            assert api.ok("GET", "/status")["pid"] == pid, f"the daemon restarted during {name}"
            print(f"chaos step {name}: {time.monotonic() - started:.1f}s")

        # Quiet period: faults cleared, no new intents, no market prints; then converge.
        st.call(st.sim.faults.reset)
        assert api.post("/strategies/chaos/stop", {}).status == 200
        st.call(st.sim.pause_market)
        ours, theirs = converge(api, st, timeout=45)

        # Zero lost orders, zero duplicate submissions; orders, fills and balances equal.
        assert theirs.orders, "the simulator saw none of our orders"
        assert not duplicate_posts(theirs), duplicate_posts(theirs)
        assert all(len(v) == 1 for v in theirs.orders.values())
        assert not [k for k, o in ours.orders.items() if o["status"] == "SUBMITTED"]
        fills = list(ours.fills.values())
        assert ledger_balances(initial, fills) == {a: v for a, v in theirs.balances.items()
                                                   if v or a in initial}, "fills do not explain the balances"
        counts = status_counts(ours)
        assert counts["FILLED"] > 10 and len(fills) > 10, counts
        size = {k: Decimal(str(o["size"])) for k, o in ours.orders.items()}
        partial = [f for f in fills if Decimal(str(f["size"])) < size[f["client_order_id"]]]
        assert c.partial_fills > 0 and partial, "no partial fill happened"
        # A POST repeated under the same client id only after a definite refusal (-1021: resync, retry).
        resent = {k: v for k, v in theirs.posts.items() if len(v) > 1}

        # Breakers opened and closed as specified: /metrics and /status.
        status = api.ok("GET", "/status")
        assert status["pid"] == pid
        breakers = {b["name"]: b for b in status["circuit_breakers"]}
        assert set(breakers) == {"rest", "orders"}
        for name, b in breakers.items():
            assert b["state"] == "closed" and b["trips"] > 0, (name, b)
        values = metrics(api)
        for name in ("rest", "orders"):
            trips = metric(values, "aaiti_circuit_breaker_trips_total", breaker=name) or metric(
                values, "aaiti_circuit_breaker_trips", breaker=name)
            assert trips is not None and trips > 0, (name, trips)
            assert metric(values, "aaiti_circuit_breaker_state", breaker=name, state="closed") == 1
        # The ledger never disagreed with the venue, nothing was refused, nothing crashed or halted.
        for kind in ("balance_mismatch", "fill_refused"):
            assert not metric(values, "aaiti_reconcile_discrepancies_total", kind=kind), kind
        restarts = {dict(k[1]).get("actor"): v for k, v in values.items() if k[0] == "aaiti_actor_restarts_total"}
        assert not any(restarts.values()), restarts
        assert metric(values, "aaiti_trading_state", state="ACTIVE") == 1
        assert not daemon.events("reconcile.halt_requested")
        assert not daemon.problems(), daemon.problems()[:5]
        print(f"chaos: {len(ours.orders)} orders {dict(counts)}, {len(fills)} fills, "
              f"{c.partial_fills} injected prints, {len(partial)} partial fills, {c.cancels} cancels, "
              f"{len(resent)} orders re-sent after a definite refusal; faults: {'; '.join(c.injected)}")
        code = daemon.stop(timeout=30)
        assert code == 0, daemon.raw[-20:]
        return c
    finally:
        daemon.kill()
        (tmp / "daemon.log").write_text("".join(daemon.raw))
        (tmp / "daemon.stderr").write_text(daemon.stderr())


def test_chaos_all_faults_state_converges(tmp_path: Path, sim: SimThread) -> None:
    c = run_chaos(tmp_path, sim, FAST_SCHEDULE, random.Random(1))
    assert len(c.injected) == len(FAST_SCHEDULE)


@pytest.mark.slow
def test_chaos_random_schedule_long_state_converges(tmp_path: Path, sim: SimThread) -> None:
    rng = random.Random(20_240_611)
    schedule = long_schedule(rng, rounds=3)
    c = run_chaos(tmp_path, sim, schedule, rng)
    assert len(c.injected) == len(schedule)
