"""Property tests of the bracket: random entry fills (each with a random fee, charged in the base
asset on a buy, some in the quote asset or BNB), quantity steps, price paths crossing (or not) the
take-profit, stop and trailing levels, exit child fills, rejections, denials, retries, venue
cancels and crashes (rebuilt from the last durable row, the entry's stored fills read back, and
resumed), emulated and native.

After every handler the exits' own bookkeeping holds (``assert_exit_invariants``); once every
event was delivered, the venue's records agree with it and (a)-(c) hold
(``assert_bracket_invariants``): nothing is covered twice, what the exits released never
exceeds what the entry's fills credited (net of base-asset fees, rounded down to the step),
protected == net filled - exited, and a closed position leaves nothing armed or open.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.contingent.bracket import Bracket
from actors.contingent.effects import Effect
from actors.contingent.net_fill import sellable
from actors.model.contingent import ContingentStatus
from actors.model.orders import OrderIntent, OrderStatus, OrderType, Side, TrailingSpec
from actors.model.records import OrderRecord
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE
from tests.unit.actors.contingent.test_bracket import (
    Env,
    Msg,
    Sim,
    approved,
    assert_bracket_invariants,
    assert_exit_invariants,
    entry,
    releases,
    sl,
    tp,
)

D = Decimal
_S = ContingentStatus

EXITS: dict[str, tuple[OrderIntent, ...]] = {
    "tp+sl": (tp(), sl()),
    "sl": (sl(),),
    "tp": (tp(),),
    "tp+trailing": (tp(), sl(trailing=TrailingSpec(offset=D(3)))),
    "limits": (tp(type=OrderType.TAKE_PROFIT_LIMIT, limit="109"), sl(type=OrderType.STOP_LIMIT, limit="89")),
}

#: Action names, repeated to weight them (fills and prices often; cancels, denials, crashes now and then).
NAMES = (["entry_fill"] * 4 + ["trade"] * 7 + ["child_fill"] * 3 + ["timer"] * 2 + ["ack_cancels"] * 2
         + ["crash"] * 2 + ["crash_mid"] * 2
         + ["child_reject", "child_cancel", "deny_next", "unsupported_next", "entry_cancel"])
ACTIONS = st.tuples(st.sampled_from(NAMES), st.integers(min_value=0, max_value=1000))


#: Quantity steps of the instrument (0: unknown, no rounding).
STEPS = (D(0), D("0.001"), D("0.01"))


def _tenths(arg: int) -> Decimal:
    return D(arg % 10 + 1) / 10


def _fee(arg: int) -> Callable[[OrderRecord, Decimal], tuple[Decimal, str]]:
    """A fill's fee: a buy's mostly in the base asset (0 to ~0.17 %, odd decimals), now and then
    in BNB or the quote asset; a sell's in the quote asset."""

    def fee(rec: OrderRecord, qty: Decimal) -> tuple[Decimal, str]:
        rate = D(arg % 17) / D(9973)
        if rec.side is Side.SELL:
            return (qty * 100 * rate).quantize(D("1e-8")), "USDT"
        currency = ("BNB", "USDT")[arg % 2] if arg % 5 == 0 else "BTC"
        return (qty * rate).quantize(D("1e-8")), currency

    return fee


def _step(sim: Sim, action: str, arg: Any) -> None:
    b = sim.order
    assert isinstance(b, Bracket)
    v = sim.venue
    if action == "entry_fill" and v.is_open(b.entry_id):
        v.fee = _fee(arg)
        sim.fill(b.entry_id, _tenths(arg))
        v.fee = None
    elif action == "trade":
        sim.trade(D(80 + arg % 41))
    elif action in ("child_fill", "child_reject", "child_cancel"):
        kids = sim.open_exit_children()
        if not kids:
            return
        coid = kids[0]
        if action == "child_fill":
            sim.fill(coid, _tenths(arg))
        elif action == "child_reject" and v.records[coid].filled == 0:
            sim.set(coid, OrderStatus.REJECTED, "TEST_REJECT")
        elif action == "child_cancel":
            sim.set(coid, OrderStatus.CANCELED, "ioc")
    elif action == "deny_next":
        v.deny = 1
    elif action == "unsupported_next":
        v.reject_native = UNSUPPORTED_ORDER_TYPE
        return  # stays set for the next step only
    elif action == "timer":
        sim.timer(arg * 2)
    elif action == "ack_cancels":
        sim.ack_cancels()
    elif action == "entry_cancel" and v.is_open(b.entry_id):
        sim.set(b.entry_id, OrderStatus.CANCELED)
    elif action == "crash":
        _crash(sim)
    v.reject_native = None


def _crash_mid(sim: Sim, action: str, arg: Any, k: int) -> None:
    """kill -9 inside ``action``: its first handler's effects ran only up to ``k``; nothing after."""
    captured: list[list[Effect]] = []
    original = sim.venue.apply

    def spy(effects: list[Effect]) -> list[Msg]:
        if not effects:
            return []
        captured.append(list(effects))
        raise _Crash

    sim.venue.apply = spy  # type: ignore[method-assign]
    try:
        _step(sim, action, arg)
    except _Crash:
        pass
    finally:
        sim.venue.apply = original  # type: ignore[method-assign]
        sim.venue.reject_native = None
    if captured:
        effects = captured[0]
        sim.venue.apply(effects[: k % (len(effects) + 1)])  # the events they caused are lost
    _crash(sim)


def _crash(sim: Sim) -> None:
    """kill -9 after the last effect: the write-behind since the last durable row is lost."""
    if not sim.venue.durable:
        return
    revived = Bracket.from_row(sim.venue.durable[-1])
    if not revived.active:
        return
    # as the manager does: the stored fills of the entry (their fees), then resume
    for coid in revived.fill_sources():
        for fill in sim.venue.fills.get(coid, ()):
            revived.restore_fill(fill)
    known = set(sim.venue.records)
    out = revived.resume(sim.venue.lookup, sim.ctx)
    assert not any(i.client_order_id in known for i in releases(out))
    sim.order = revived
    sim.run(out)


class _Crash(Exception):
    """kill -9."""


def _close(sim: Sim) -> None:
    """Drive to the end: the entry ends, prices cross every exit, children fill."""
    for price in (125, 75, 125, 75, 125, 75):
        b = sim.order
        assert isinstance(b, Bracket)
        if not b.active:
            return
        sim.venue.deny = 0
        sim.ack_cancels()
        if sim.venue.is_open(b.entry_id):
            sim.set(b.entry_id, OrderStatus.CANCELED)
        sim.timer(5000)
        sim.trade(D(price))
        for coid in sim.open_exit_children():
            sim.fill(coid, D(10))


@settings(max_examples=200, deadline=None)
@given(exits=st.sampled_from(sorted(EXITS)), native=st.booleans(), market=st.booleans(),
       step=st.sampled_from(STEPS), actions=st.lists(ACTIONS, min_size=5, max_size=40))
def test_bracket_invariants_hold_after_every_step(exits: str, native: bool, market: bool, step: Decimal,
                                                  actions: list[tuple[str, Any]]) -> None:
    env = Env(native=native, step=step)
    b = Bracket.from_approved(approved(entry(OrderType.MARKET if market else OrderType.LIMIT), *EXITS[exits]),
                              env.ctx)
    sim = Sim(b, env, check=assert_exit_invariants, quiet_check=assert_bracket_invariants)
    sim.start()
    crash_at: int | None = None
    for action, arg in actions:
        if action == "crash_mid":
            crash_at = arg
            continue
        if crash_at is not None:
            _crash_mid(sim, action, arg, crash_at)
            crash_at = None
        else:
            _step(sim, action, arg)
        assert_bracket_invariants(sim)
    _close(sim)
    final = sim.order
    assert isinstance(final, Bracket)
    assert_bracket_invariants(sim)
    assert not final.exits.armed or final.active
    if final.status is _S.DONE:
        assert final.entry_filled > 0
        assert final.exits.exits_filled == final.target() == sellable(final.net_filled, step)
        assert final.net_filled == final.entry_filled - sim.venue.base_fees(final.entry_id)
        # what is left is the rest below the step no order can sell (none without a step)
        assert final.protected == final.net_filled - final.target()
        assert final.protected == 0 if not step else D(0) <= final.protected < step
    elif final.status is _S.CANCELED:
        assert final.entry_filled == 0
    else:
        assert final.status is _S.FAILED, (final.status, final.reason, final.exits)
