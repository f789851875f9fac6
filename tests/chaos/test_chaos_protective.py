"""Crash acceptance of protective orders (issue 11): ``kill -9`` with brackets and stops in flight.

A real ``aaiti run`` child trades brackets (``tests.chaos.bracket_strategy:BracketTrader``)
against the Binance simulator, which runs in this process and outlives every daemon. Two
modes: ``[orders] native = "never"`` (the daemon holds every trigger: emulated legs) and
``"auto"`` (one native OCO at the simulator per entry fill). Each round:

1. the daemon (re)starts with its strategy stopped; after the start-up reconciliation, the
   contingent-order manager's resume and one more reconcile pass, the market is paused, and
   once nothing is in flight the invariants are checked against the simulator's truth
   (``tests.chaos.protection_check``): 0 unprotected positions, 0 duplicate legs, 0 orphan legs;
2. the strategy starts; after a random number of bracket starts, submissions, triggers or
   fills, and a random short delay, the daemon gets SIGKILL;
3. while it is down, prints are injected at random: through resting entries (partial fills)
   and through the levels of exits (native legs trigger at the venue; emulated ones on the
   first market event after the restart).

The simulator's instruments use coarse quantity steps (``coarse_symbols``) so that no fill
leaves a slice below the minimum notional: a dust position that no exit may legally sell is
a limit of the venue, not of crash safety.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from pathlib import Path

import pytest

from actors.kernel.clock import monotonic
from adapters.binance_sim import BinanceSimulator
from adapters.binance_sim.config import SymbolConfig, default_symbols
from adapters.storage.paths import state_db_path
from tests.chaos.harness import UNIFIED, VENUE_IDS, SimThread, chaos_config, converge, our_state, sim_config, sim_env
from tests.chaos.protection_check import (
    Findings,
    VenueTruth,
    check,
    exit_ids,
    in_flight,
    read_brackets,
    read_rows,
    venue_truth,
)
from tests.integration.ops.daemon_harness import OpsDaemon, wait_until

BRACKETS = "tests.chaos.bracket_strategy:BracketTrader"
#: Quantity steps of the simulator's markets: a step is worth more than the minimum notional.
STEPS = {"BTC/USDT": Decimal("0.0002"), "ETH/USDT": Decimal("0.002")}
#: Entry sizes, and the mean size of the simulator's prints: below them, so most limit entries
#: fill in several parts (a native OCO each).
SIZES = {"BTC/USDT": Decimal("0.0016"), "ETH/USDT": Decimal("0.024")}
PRINTS = {"BTC/USDT": Decimal("0.001"), "ETH/USDT": Decimal("0.016")}
TICK = Decimal("0.01")
RECONCILE_S = 1.0
#: How long after a reconcile pass the invariants must hold (a pass plus the time to act on it).
CHECK_WITHIN_S = 3 * RECONCILE_S + 2.0
#: An order written ahead but unseen by the venue is decided within the venue's request expiry.
QUIESCE_S = 30.0


def coarse_symbols() -> tuple[SymbolConfig, ...]:
    """The simulator's default markets with the quantity steps of ``STEPS`` and prints of ``PRINTS``."""
    out = []
    for s in default_symbols():
        symbol = UNIFIED.get(s.symbol, "")
        if symbol in STEPS:
            s = dataclasses.replace(s, step_size=STEPS[symbol], min_qty=STEPS[symbol], trade_qty=PRINTS[symbol])
        out.append(s)
    return tuple(out)


def bracket_config(tmp: Path, st: SimThread, native: str) -> Path:
    """The chaos config with ``BracketTrader`` (stopped at start) and ``[orders] native``, its
    instruments' quantity steps those of the simulator's markets (``STEPS``)."""
    sizes = ", ".join(f'"{s}" = "{v}"' for s, v in SIZES.items())
    params = ('{ sizes = { ' + sizes + ' }, '
              'ticks = { "BTC/USDT" = "0.01", "ETH/USDT" = "0.01" }, every_ms = 250 }')
    # A short recvWindow: an order killed between its write-ahead and its send is decided (lost or
    # found) once the venue could no longer take it, recvWindow + 2 s after the kill; 3 s keeps a
    # round short without changing what is checked.
    path = chaos_config(tmp, st, enabled=False, strategy=BRACKETS, params=params, ccxt={"recv_window_ms": 3000},
                        reconciler={"interval_s": RECONCILE_S, "inflight_query_after_s": 0.5},
                        extra=f'\n[orders]\nnative = "{native}"\n')
    path.write_text(with_steps(path.read_text(), STEPS))
    return path


def with_steps(config: str, steps: dict[str, Decimal]) -> str:
    """``config`` with each ``[instruments."SYMBOL"]`` table's ``step_size`` and ``min_qty`` set to
    ``steps[SYMBOL]``. The daemon rounds a bracket's exits (net of the entry's base-asset fee) down
    to the configured step: it must be the venue's, or the venue refuses them (PRECISION)."""
    out, symbol = [], ""
    for line in config.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            symbol = stripped[len('[instruments."'):-2] if stripped.startswith('[instruments."') else ""
        elif symbol in steps and stripped.split("=")[0].strip() in ("step_size", "min_qty"):
            line = f'{stripped.split("=")[0].strip()} = "{steps[symbol]}"'
        out.append(line)
    return "\n".join(out) + "\n"


@dataclasses.dataclass
class Tally:
    """What the rounds did and found."""

    kills: int = 0
    emulated: int = 0
    native: int = 0
    kills_with_active: int = 0
    kills_with_position: int = 0
    unprotected: int = 0
    duplicate_legs: int = 0
    orphan_legs: int = 0
    checks: int = 0
    entries_filled: int = 0
    partial_entries: int = 0
    exits_triggered: int = 0
    emulated_triggers: int = 0
    injected_entry: int = 0
    injected_exit: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        """The chaos summary line."""
        return (f"chaos summary: kills={self.kills} emulated={self.emulated} native={self.native} "
                f"unprotected={self.unprotected} duplicate_legs={self.duplicate_legs} orphan_legs={self.orphan_legs} "
                f"entries_filled={self.entries_filled} exits_triggered={self.exits_triggered} "
                f"(checks={self.checks} kills_with_active={self.kills_with_active} "
                f"kills_with_position={self.kills_with_position} partial_entries={self.partial_entries} "
                f"emulated_triggers={self.emulated_triggers} injected_entry={self.injected_entry} "
                f"injected_exit={self.injected_exit})")


# -- waiting for the daemon ------------------------------------------------------------------------
def _wait_log(daemon: OpsDaemon, what: str, since: int, timeout: float,
              pred: Callable[[dict[str, object]], bool]) -> int:
    """Wait for a log record matching ``pred`` at index ``since`` or later; its index + 1."""

    def find() -> int | None:
        for i in range(since, len(daemon.lines)):
            if pred(daemon.lines[i]):
                return i + 1
        if daemon.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({daemon.proc.returncode}) waiting for {what}: {daemon.raw[-15:]}")
        return None

    return wait_until(find, timeout, what, interval=0.05)


def _is_pass(kinds: tuple[str, ...]) -> Callable[[dict[str, object]], bool]:
    return lambda r: r.get("event") in ("reconcile.clean", "reconcile.discrepancies") and r.get("pass_kind") in kinds


def wait_restored(daemon: OpsDaemon) -> None:
    """Start-up reconciliation, the contingent-order manager's resume, then one more full pass."""
    daemon.wait_for_event("daemon.ready", timeout=60)
    _wait_log(daemon, "start-up reconcile pass", 0, 60, _is_pass(("startup",)))
    after = _wait_log(daemon, "contingent.resumed", 0, 60, lambda r: r.get("event") == "contingent.resumed")
    _wait_log(daemon, "a reconcile pass after the resume", after, 30, _is_pass(("periodic",)))


def settle_and_check(daemon: OpsDaemon, st: SimThread, db: Path, *, final: bool) -> Findings:
    """Pause the market, wait until nothing is in flight and we equal the venue, then check the
    invariants until they hold or ``CHECK_WITHIN_S`` passed; the last findings."""
    api = daemon.api
    st.call(st.sim.pause_market)
    try:
        def busy() -> list[str]:
            orders = our_state(api).orders
            return in_flight(read_brackets(db)) + [c for c, o in orders.items() if o["status"] == "SUBMITTED"]

        wait_until(lambda: not busy(), QUIESCE_S, "no bracket and no order in flight", interval=0.2)
        converge(api, st, QUIESCE_S, inflight_ok=not final)
        deadline = monotonic() + CHECK_WITHIN_S
        while True:
            found = check(read_brackets(db), venue_truth(st))
            if found.clean or monotonic() >= deadline:
                return found
            time.sleep(0.2)
    finally:
        st.call(st.sim.resume_market)


# -- kill moments and what happens while the daemon is down -------------------------------------
def kill_moment(daemon: OpsDaemon, rng: random.Random, since: int, native: bool) -> str:
    """Wait for a random moment with brackets in flight; what it waited for."""
    kinds = [("contingent.started", 1, 3), ("order.submitted", 2, 8), ("order.fill", 1, 4)]
    if not native:
        kinds.append(("contingent.triggered", 1, 2))
    event, lo, hi = rng.choice(kinds)
    count = rng.randint(lo, hi)
    idx = since
    for _ in range(count):
        idx = _wait_log(daemon, f"{count} x {event}", idx, 45, lambda r: r.get("event") == event)
    time.sleep(rng.choice((0.0, 0.0, rng.uniform(0.0, 0.05), rng.uniform(0.0, 0.3))))
    return f"{count}x{event}"


def _open_ours(sim: BinanceSimulator) -> list[tuple[str, str, str, Decimal, Decimal, Decimal, int, Decimal]]:
    out = []
    for o in sim.exchange.orders.open_orders():
        if o.client_order_id.startswith("aa-"):
            out.append((o.client_order_id, o.symbol, o.type, o.price, o.stop_price, o.remaining, o.trailing_delta,
                        o.trailing_ref))
    return out


def _last_price(sim: BinanceSimulator, venue_id: str) -> Decimal:
    return sim.exchange.symbols[venue_id].stats.last_price


def inject_while_down(st: SimThread, rng: random.Random, db: Path, tally: Tally) -> list[str]:
    """Prints through resting entries (often partial) and through exit levels; what was done."""
    done = []
    brackets = read_brackets(db)
    entries = {b.entry_id for b in brackets}
    for coid, venue_id, otype, price, stop, remaining, delta, ref in st.call(_open_ours, st.sim):
        symbol = UNIFIED[venue_id]
        step = STEPS[symbol]
        if coid in entries and otype == "LIMIT" and rng.random() < 0.7:
            # A whole number of steps, as on Binance (quantize() would only round to the step's decimals:
            # half of 0.0006 with a step of 0.0002 would be 0.0003, a print the venue never makes).
            half = (remaining / 2 / step).to_integral_value(ROUND_DOWN) * step
            qty = remaining if rng.random() < 0.4 else max(step, half)
            st.call(st.sim.inject_trade, venue_id, price, min(qty, remaining), "SELL", rebuild_book=False)
            tally.injected_entry += 1
            done.append(f"entry {coid} {min(qty, remaining)}@{price}")
        elif otype in ("STOP_LOSS", "TAKE_PROFIT") and rng.random() < 0.4:
            level = _exit_level(otype, stop, delta, ref, st.call(_last_price, st.sim, venue_id))
            st.call(st.sim.inject_trade, venue_id, level, step, "SELL" if otype == "STOP_LOSS" else "BUY",
                    rebuild_book=False)
            tally.injected_exit += 1
            done.append(f"native {otype} {coid} print@{level}")
    if not any(b.exits.chunks for b in brackets):  # emulated: move the market through an armed level
        for b in brackets:
            if b.active and b.exits.armed and b.protected > 0 and rng.random() < 0.4:
                leg = rng.choice([leg for leg in b.exits.legs if leg.armed])
                at = leg.level
                if at is None:  # a trailing stop not tracking yet: a few bps under the last price
                    at = (st.call(_last_price, st.sim, VENUE_IDS[b.symbol]) * Decimal("0.998")).quantize(TICK)
                st.call(st.sim.inject_trade, VENUE_IDS[b.symbol], at, STEPS[b.symbol],
                        "SELL" if leg.name == "stop_loss" else "BUY", rebuild_book=False)
                tally.injected_exit += 1
                done.append(f"emulated {leg.name} {b.id} print@{at}")
    return done


def _exit_level(otype: str, stop: Decimal, delta: int, ref: Decimal, last: Decimal) -> Decimal:
    """A price that triggers a native SELL exit: at/below a stop, at/above a take-profit, or
    ``delta`` bps under a trailing stop's best price."""
    if delta > 0:
        base = ref if ref > 0 else last
        return (base * (1 - Decimal(delta + 2) / 10_000)).quantize(TICK, ROUND_DOWN)
    if otype == "STOP_LOSS":
        return stop.quantize(TICK, ROUND_DOWN)
    return stop.quantize(TICK, ROUND_UP)


# -- the run -----------------------------------------------------------------------------------------
def record(tally: Tally, found: Findings, where: str) -> None:
    """Count the problems of one check."""
    tally.checks += 1
    tally.unprotected += len(found.unprotected)
    tally.duplicate_legs += len(found.duplicate)
    tally.orphan_legs += len(found.orphan)
    if not found.clean:
        tally.problems.append(f"{where}:\n  {found.summary()}")


def final_counts(tally: Tally, db: Path, venue: VenueTruth) -> None:
    """Entries filled, partially filled entries and exits that executed, over the whole run."""
    for b in read_brackets(db):
        entry = venue.order(b.entry_id)
        if entry is not None and entry.executed > 0:
            tally.entries_filled += 1
            if entry.fills > 1 or entry.executed < entry.orig_qty:
                tally.partial_entries += 1
        tally.exits_triggered += sum(1 for coid in exit_ids(b) if venue.executed(coid) > 0)


def run_mode(tmp: Path, native: bool, kills: int, seed: int, tally: Tally) -> None:
    """``kills`` rounds of restart, check, trade, SIGKILL, inject; then a last restart and check."""
    rng = random.Random(seed)
    st = SimThread(sim_config(seed=seed, symbols=coarse_symbols()))
    mode = "native" if native else "emulated"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        cfg = bracket_config(tmp, st, "auto" if native else "never")
        db = state_db_path(tmp / "state", "live", "binance-sim")
        for round_no in range(kills + 1):
            started = monotonic()
            last = round_no == kills
            daemon = OpsDaemon(cfg, extra_env=sim_env(st))
            note = ""
            try:
                wait_restored(daemon)
                # Stopped for the check (a strategy configured disabled may still have started).
                assert daemon.api.post("/strategies/chaos/stop", {}).status == 200
                found = settle_and_check(daemon, st, db, final=last)
                record(tally, found, f"{mode} round {round_no} (after restart)")
                if last:
                    assert daemon.stop(timeout=30) == 0, daemon.raw[-20:]
                    final_counts(tally, db, venue_truth(st))
                    break
                since = daemon.mark()
                assert daemon.api.post("/strategies/chaos/start", {}).status == 200
                moment = kill_moment(daemon, rng, since, native)
                daemon.kill()
                tally.kills += 1
                if native:
                    tally.native += 1
                else:
                    tally.emulated += 1
                tally.emulated_triggers += len(daemon.events("contingent.triggered", since))
                active = [b for b in read_brackets(db) if b.active]
                tally.kills_with_active += bool(active)
                tally.kills_with_position += any(b.entry_filled > 0 for b in active)
                injected = inject_while_down(st, rng, db, tally)
                note = f"killed at {moment}, {len(active)} active, injected {injected}"
            finally:
                daemon.kill()
                with (tmp / "daemon.log").open("a") as f:
                    f.write("".join(daemon.raw))
                with (tmp / "daemon.stderr").open("a") as f:
                    f.write(daemon.stderr())
            print(f"{mode} round {round_no}: {monotonic() - started:.1f}s {note}")
    finally:
        st.stop()
    assert read_rows(db), "no contingent order was ever written"


def run_protective(tmp: Path, *, emulated: int, native: int, seed: int) -> Tally:
    """Both modes, each on its own simulator and state directory; the tally of both."""
    tally = Tally()
    run_mode(tmp / "emulated", False, emulated, seed, tally)
    run_mode(tmp / "native", True, native, seed + 1, tally)
    print(tally.line())
    for p in tally.problems:
        print(p)
    return tally


def assert_acceptance(tally: Tally, *, emulated: int, native: int) -> None:
    """The zeros, and that the kills really hit brackets at work."""
    assert (tally.unprotected, tally.duplicate_legs, tally.orphan_legs) == (0, 0, 0), "\n".join(tally.problems)
    assert (tally.emulated, tally.native) == (emulated, native)
    assert tally.kills_with_active * 2 >= tally.kills, tally.line()
    assert tally.entries_filled >= tally.kills and tally.exits_triggered >= 3, tally.line()


def test_protective_kill9_short(tmp_path: Path) -> None:
    tally = run_protective(tmp_path, emulated=3, native=2, seed=11)
    assert_acceptance(tally, emulated=3, native=2)


@pytest.mark.slow
def test_protective_kill9_fifty_rounds(tmp_path: Path) -> None:
    tally = run_protective(tmp_path, emulated=30, native=20, seed=50)
    assert_acceptance(tally, emulated=30, native=20)
    assert tally.kills >= 50 and tally.partial_entries > 0 and tally.injected_exit > 0, tally.line()
