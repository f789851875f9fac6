"""OCO and OTO contingent orders: native lists and emulation, sibling handling, fills that drive
the pending order, fallback, denials, cancel, resume and the stored row."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.contingent.effects import CancelChild, Notice, Persist, ReleaseList
from actors.contingent.exit_leg import Phase
from actors.contingent.linked import Oco
from actors.contingent.oto import Oto
from actors.model.contingent import ContingentStatus
from actors.model.orders import (
    ApprovedList,
    ExecutionMode,
    ListKind,
    OrderIntent,
    OrderList,
    OrderStatus,
    OrderType,
    Side,
    TrailingSpec,
)
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE
from config.schema.trading import OrdersSection
from tests.unit.actors.contingent.test_bracket import (
    SYM,
    Env,
    Sim,
    Venue,
    assert_exit_invariants,
    kinds,
    releases,
    sl,
    tp,
)

D = Decimal
_S = ContingentStatus


def oco_list(*orders: OrderIntent, sizes: tuple[Decimal | None, ...] = (D(2), D(2))) -> ApprovedList:
    ol = OrderList(kind=ListKind.OCO, strategy="s1", symbol=SYM, orders=orders, list_id="L", tag="oco")
    return ApprovedList(order_list=ol, sizes=sizes, reference_price=D(100))


def oco_sim(*orders: OrderIntent, native: bool = False, env: Env | None = None) -> Sim:
    env = env or Env(native=native)
    o = Oco.from_approved(oco_list(*(orders or (sl(), tp()))), env.ctx)
    sim = Sim(o, env, check=assert_exit_invariants)
    sim.start()
    return sim


def oco(sim: Sim) -> Oco:
    assert isinstance(sim.order, Oco)
    return sim.order


# -- OCO -------------------------------------------------------------------------------------------------
def test_oco_emulated_arms_both_legs_and_the_first_crossed_disarms_the_other_in_the_same_persist() -> None:
    sim = oco_sim()
    o = oco(sim)
    assert o.mode is ExecutionMode.EMULATED and o.watches_market() and o.status is _S.WORKING
    assert [v.name for v in o.view().legs] == ["below", "above"]
    assert sim.trade("100") == []
    out = sim.trade("111")
    assert kinds(out)[:3] == ["Persist!", "Notice", "Release"]
    persist = out[0]
    assert isinstance(persist, Persist)
    saved = Oco.from_row(persist.rows[0])
    assert not saved.exits.armed and saved.exits.triggered == "above"
    (child,) = releases(out)
    assert child.size == D(2) and child.type is OrderType.MARKET and child.protective
    assert child.client_order_id in saved.child_ids() and child.intent_id == f"{o.id}:above:1"
    assert releases(sim.trade("85")) == []  # the other leg is disarmed
    sim.fill(child.client_order_id, "2")
    assert o.status is _S.DONE and not o.watches_market()


def test_oco_limit_leg_releases_a_limit_child() -> None:
    sim = oco_sim(sl(type=OrderType.STOP_LIMIT, limit="89"), tp())
    (child,) = releases(sim.trade("90"))
    assert child.type is OrderType.LIMIT and child.limit_price == D(89)


def test_oco_native_writes_leg_ids_and_list_id_ahead_then_one_release_list() -> None:
    env = Env(native=True)
    o = Oco.from_approved(oco_list(sl(), tp()), env.ctx)
    effects = o.start(env.ctx)
    assert kinds(effects)[:2] == ["Persist!", "ReleaseList"]
    persist, rl = effects[0], effects[1]
    assert isinstance(persist, Persist) and isinstance(rl, ReleaseList)
    ol = rl.order_list
    saved = Oco.from_row(persist.rows[0])
    assert ol.kind is ListKind.OCO and ol.list_id == saved.exits.chunks[0].list_id
    assert {i.client_order_id for i in ol.orders} == set(saved.child_ids())
    assert [i.type for i in ol.orders] == [OrderType.TAKE_PROFIT, OrderType.STOP_MARKET]  # (above, below)
    assert all(i.parent == o.id and i.protective and i.size == D(2) for i in ol.orders)
    assert o.mode is ExecutionMode.NATIVE and not o.watches_market()


def test_oco_native_fill_is_done_and_a_still_open_sibling_is_cancelled() -> None:
    sim = oco_sim(native=True)
    o = oco(sim)
    above, below = (nl.id for nl in o.exits.chunks[0].legs)
    out = sim.deliver([sim.venue.fill(above, D(2))])  # the venue has not expired the sibling yet
    assert o.status is _S.DONE
    assert [e.client_order_id for e in out if isinstance(e, CancelChild)] == [below]


def test_oco_native_partial_fill_keeps_the_rest_on_the_venue() -> None:
    sim = oco_sim(native=True)
    o = oco(sim)
    above = o.exits.chunks[0].legs[0].id
    sim.fill(above, "0.5")  # the venue expires the stop leg; the take-profit rests for 1.5
    assert o.status is _S.WORKING and o.exits.native_open == D("1.5")
    sim.fill(above, "1.5")
    assert o.status is _S.DONE


def test_oco_native_unsupported_falls_back_to_emulation() -> None:
    env = Env(native=True)
    o = Oco.from_approved(oco_list(sl(), tp()), env.ctx)
    venue = Venue()
    venue.reject_native = UNSUPPORTED_ORDER_TYPE
    sim = Sim(o, env, venue, check=assert_exit_invariants)
    out = sim.start()
    assert any(isinstance(e, Notice) and e.event == "contingent.native_refused_emulating" for e in out)
    assert o.mode is ExecutionMode.EMULATED and o.exits.armed
    venue.reject_native = None
    (child,) = releases(sim.trade("89"))
    assert child.size == D(2)


def test_oco_native_unsupported_without_fallback_fails() -> None:
    env = Env(native=True, orders=OrdersSection(fallback_to_emulation=False))
    o = Oco.from_approved(oco_list(sl(), tp()), env.ctx)
    venue = Venue()
    venue.reject_native = UNSUPPORTED_ORDER_TYPE
    Sim(o, env, venue).start()
    assert o.status is _S.FAILED and o.reason == UNSUPPORTED_ORDER_TYPE


def test_oco_child_rejected_re_arms_both_legs() -> None:
    sim = oco_sim()
    o = oco(sim)
    (child,) = releases(sim.trade("89"))
    sim.set(child.client_order_id, OrderStatus.REJECTED, "X")
    assert o.exits.armed and o.status is _S.WORKING
    (again,) = releases(sim.trade("111"))
    assert again.size == D(2)


def test_oco_child_partially_filled_then_cancelled_re_arms_for_the_rest() -> None:
    sim = oco_sim()
    o = oco(sim)
    (child,) = releases(sim.trade("89"))
    sim.fill(child.client_order_id, "0.5")
    sim.set(child.client_order_id, OrderStatus.CANCELED)
    (again,) = releases(sim.trade("88"))
    assert again.size == D("1.5")
    sim.fill(again.client_order_id, "1.5")
    assert o.status is _S.DONE


def test_oco_denied_child_is_retried() -> None:
    sim = oco_sim()
    o = oco(sim)
    sim.venue.deny = 1
    (child,) = releases(sim.trade("89"))
    assert o.exits.children[0].phase is Phase.RETRY and o.deadline_ms() is not None
    (again,) = releases(sim.timer(1000))
    assert again.client_order_id == child.client_order_id


def test_oco_cancel_and_resume() -> None:
    sim = oco_sim(native=True)
    o = oco(sim)
    out = o.cancel("operator", sim.ctx)
    assert {e.client_order_id for e in out if isinstance(e, CancelChild)} == set(o.child_ids())
    assert o.status is _S.CANCELED

    env = Env(native=True)
    o2 = Oco.from_approved(oco_list(sl(), tp()), env.ctx)
    first = o2.start(env.ctx)
    revived = Oco.from_row(first[0].rows[0])  # type: ignore[union-attr]
    again = revived.resume(Venue().lookup, env.ctx)  # the order manager never got the list
    (rl,) = [e for e in again if isinstance(e, ReleaseList)]
    assert rl == first[1]  # the same list, same ids


@pytest.mark.parametrize("bad", [
    oco_list(sl(), tp(), sizes=(D(1), D(2))),
    oco_list(sl(), sl("80")),
    oco_list(sl(), tp(side=Side.BUY)),
])
def test_oco_from_approved_refuses_malformed_lists(bad: ApprovedList) -> None:
    with pytest.raises(ValueError):
        Oco.from_approved(bad, Env().ctx)


def test_oco_row_round_trips_with_a_trailing_leg() -> None:
    sim = oco_sim(sl(trailing=TrailingSpec(offset=D(3))), tp())
    sim.trade("104")
    o = oco(sim)
    again = Oco.from_row(o.row())
    assert again.row() == o.row() and again.view() == o.view()


# -- OTO -------------------------------------------------------------------------------------------------
def oto_list(working: OrderIntent, pending: OrderIntent,
             sizes: tuple[Decimal | None, ...] = (D(1), D(1))) -> ApprovedList:
    ol = OrderList(kind=ListKind.OTO, strategy="s1", symbol=SYM, orders=(working, pending), list_id="L", tag="oto")
    return ApprovedList(order_list=ol, sizes=sizes, reference_price=D(100))


def buy(type: OrderType = OrderType.LIMIT, trigger: str | None = None) -> OrderIntent:
    return OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, type=type, size=D(1), intent_id="w-1",
                       limit_price=D(100) if type in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None,
                       trigger_price=None if trigger is None else D(trigger))


def sell_limit(price: str = "110") -> OrderIntent:
    return OrderIntent(strategy="s1", symbol=SYM, side=Side.SELL, type=OrderType.LIMIT, limit_price=D(price))


def oto_sim(working: OrderIntent, pending: OrderIntent, native: bool = False, env: Env | None = None,
            venue: Venue | None = None) -> Sim:
    env = env or Env(native=native)
    o = Oto.from_approved(oto_list(working, pending), env.ctx)
    sim = Sim(o, env, venue, check=assert_exit_invariants)
    sim.start()
    return sim


def oto(sim: Sim) -> Oto:
    assert isinstance(sim.order, Oto)
    return sim.order


def test_oto_pending_follows_each_working_fill() -> None:
    sim = oto_sim(buy(), sell_limit())
    o = oto(sim)
    assert [v.name for v in o.view().legs] == ["working", "pending"]
    (p1,) = releases(sim.fill(o.working_id, "0.3"))
    assert p1.type is OrderType.LIMIT and p1.limit_price == D(110) and p1.size == D("0.3") and p1.side is Side.SELL
    assert p1.protective and p1.intent_id == f"{o.id}:pending:1"
    (p2,) = releases(sim.fill(o.working_id, "0.7"))
    assert p2.size == D("0.7")
    assert o.status is _S.WORKING
    sim.fill(p1.client_order_id, "0.3")
    sim.fill(p2.client_order_id, "0.7")
    assert o.status is _S.DONE


def test_oto_working_unfilled_end_releases_nothing() -> None:
    sim = oto_sim(buy(), sell_limit())
    o = oto(sim)
    out = sim.set(o.working_id, OrderStatus.CANCELED)
    assert releases(out) == [] and o.status is _S.CANCELED


def test_oto_working_denied_fails() -> None:
    env = Env()
    venue = Venue()
    venue.deny = 1
    sim = oto_sim(buy(), sell_limit(), env=env, venue=venue)
    assert oto(sim).status is _S.FAILED and oto(sim).reason.startswith("denied:")


def test_oto_conditional_pending_is_armed_for_what_the_working_order_filled() -> None:
    sim = oto_sim(buy(), sl())
    o = oto(sim)
    assert releases(sim.trade("85")) == []  # nothing filled yet
    sim.fill(o.working_id, "0.4")
    (child,) = releases(sim.trade("89"))
    assert child.size == D("0.4") and child.type is OrderType.MARKET
    (more,) = releases(sim.fill(o.working_id, "0.6"))  # after the trigger: released at once
    assert more.size == D("0.6")


def test_oto_conditional_pending_native_is_one_native_order_per_fill() -> None:
    sim = oto_sim(buy(OrderType.MARKET), sl(), native=True)  # a market working order: no venue list
    o = oto(sim)
    assert not o.list_id and o.mode is ExecutionMode.NATIVE
    (stop,) = releases(sim.fill(o.working_id, "0.4"))
    assert stop.type is OrderType.STOP_MARKET and stop.size == D("0.4") and stop.trigger_price == D(90)
    (more,) = releases(sim.fill(o.working_id, "0.6"))
    assert more.type is OrderType.STOP_MARKET and more.size == D("0.6")


def test_oto_emulated_conditional_working_triggers_then_its_fills_drive_the_pending() -> None:
    sim = oto_sim(buy(OrderType.STOP_MARKET, "105"), sell_limit("120"))
    o = oto(sim)
    assert o.watches_market() and o.working_phase is None
    assert releases(sim.trade("104")) == []
    out = sim.trade("105")
    (w,) = releases(out)
    assert kinds(out)[0] == "Persist!"
    assert w.client_order_id == o.working_id and w.type is OrderType.MARKET and w.intent_id == "w-1"
    assert o.status is _S.TRIGGERED
    (p,) = releases(sim.fill(o.working_id, "1"))
    assert p.size == D(1)


def test_oto_native_conditional_working_goes_to_the_venue() -> None:
    sim = oto_sim(buy(OrderType.STOP_MARKET, "105"), sell_limit(), native=True)
    o = oto(sim)
    assert not o.watches_market()
    assert sim.venue.records[o.working_id].type is OrderType.STOP_MARKET


def test_oto_native_unsupported_working_falls_back_to_an_emulated_trigger() -> None:
    venue = Venue()
    venue.reject_native = UNSUPPORTED_ORDER_TYPE
    sim = oto_sim(buy(OrderType.STOP_MARKET, "105"), sell_limit(), native=True, venue=venue)
    o = oto(sim)
    assert o.working_leg is not None and o.working_leg.armed and o.working_id != "c2"
    venue.reject_native = None
    (w,) = releases(sim.trade("106"))
    assert w.client_order_id == o.working_id


def test_oto_native_list_only_for_a_limit_working_order() -> None:
    env = Env(native=True)
    limit = Oto.from_approved(oto_list(buy(), sell_limit()), env.ctx)
    effects = limit.start(env.ctx)
    assert kinds(effects) == ["Persist!", "Notice", "ReleaseList"]  # the pending order's id is written ahead
    persist, rl = effects[0], effects[2]
    assert isinstance(persist, Persist) and isinstance(rl, ReleaseList)
    saved = Oto.from_row(persist.rows[0])
    assert rl.order_list.kind is ListKind.OTO and rl.order_list.list_id == limit.list_id == saved.list_id
    assert [i.client_order_id for i in rl.order_list.orders] == limit.child_ids() == saved.child_ids()
    working, pending = rl.order_list.orders
    assert working.type is OrderType.LIMIT and not working.protective
    assert (pending.type, pending.side, pending.size, pending.parent) == (OrderType.LIMIT, Side.SELL, D(1), limit.id)
    assert pending.protective and limit.mode is ExecutionMode.NATIVE
    for work in (buy(OrderType.MARKET), buy(OrderType.STOP_MARKET, "105"), buy(OrderType.STOP_LIMIT, "105")):
        other = Oto.from_approved(oto_list(work, sell_limit("120")), env.ctx)
        out = other.start(env.ctx)
        assert not other.list_id and not any(isinstance(e, ReleaseList) for e in out)
        assert not any(isinstance(e, Notice) and e.level != "info" for e in out)


def test_oto_without_venue_lists_a_limit_working_order_is_emulated_per_fill() -> None:
    sim = oto_sim(buy(), sell_limit())  # the venue has no OTO list (paper)
    o = oto(sim)
    assert not o.list_id
    (p,) = releases(sim.fill(o.working_id, "0.3"))
    assert p.size == D("0.3")


@pytest.mark.parametrize("pending_first", [False, True], ids=["working-ends-first", "pending-ends-first"])
@pytest.mark.parametrize("end", [OrderStatus.CANCELED, OrderStatus.EXPIRED])
def test_oto_native_list_partial_limit_fill_then_end_is_taken_over_by_emulation(
        end: OrderStatus, pending_first: bool) -> None:
    sim = oto_sim(buy(), sell_limit(), native=True)
    o = oto(sim)
    pending_id = o.exits.chunks[0].legs[0].id
    assert releases(sim.fill(o.working_id, "0.6")) == []  # the venue's pending order waits for a full fill
    assert o.status is _S.WORKING and o.mode is ExecutionMode.NATIVE
    ends = [(o.working_id, end), (pending_id, OrderStatus.EXPIRED)]  # the venue drops the list's pending order
    out = [e for coid, status in (reversed(ends) if pending_first else ends) for e in sim.set(coid, status)]
    (p,) = releases(out)
    assert p.size == D("0.6") and p.type is OrderType.LIMIT and p.limit_price == D(110) and p.protective
    assert p.client_order_id != pending_id and o.mode is ExecutionMode.EMULATED
    if not pending_first:
        (notice,) = [e for e in out if isinstance(e, Notice) and e.event == "contingent.oto_pending_emulated"]
        assert notice.fields["working_filled"] == "0.6" and notice.fields["pending"] == [pending_id]
    assert o.status is _S.WORKING
    sim.fill(p.client_order_id, "0.6")
    assert o.status is _S.DONE


def test_oto_native_list_working_ended_partly_filled_while_down_is_taken_over_on_resume() -> None:
    sim = oto_sim(buy(), sell_limit(), native=True)
    o = oto(sim)
    pending_id = o.exits.chunks[0].legs[0].id
    sim.venue.fill(o.working_id, D("0.6"))  # while the daemon is down: fill, end, the venue drops the pending
    sim.venue.set(o.working_id, OrderStatus.CANCELED)
    sim.venue.set(pending_id, OrderStatus.EXPIRED)
    revived = Oto.from_row(sim.venue.durable[-1])
    out = revived.resume(sim.venue.lookup, sim.ctx)
    assert kinds(out)[0] == "Persist!"
    (p,) = releases(out)
    assert p.size == D("0.6") and p.client_order_id in Oto.from_row(out[0].rows[0]).child_ids()  # type: ignore[union-attr]


def test_oto_working_fill_while_down_releases_its_pending_order_once_on_resume() -> None:
    sim = oto_sim(buy(), sell_limit())
    o = oto(sim)
    sim.venue.fill(o.working_id, D("0.6"))  # while the daemon is down
    revived = Oto.from_row(sim.venue.durable[-1])
    (p,) = releases(revived.resume(sim.venue.lookup, sim.ctx))
    assert p.size == D("0.6")


def test_oto_native_list_full_fill_done_when_pending_fills() -> None:
    sim = oto_sim(buy(), sell_limit(), native=True)
    o = oto(sim)
    pending_id = o.exits.chunks[0].legs[0].id
    assert releases(sim.fill(o.working_id, "0.4")) == []  # the venue's pending order covers it
    assert releases(sim.fill(o.working_id, "0.6")) == []
    assert o.status is _S.WORKING and o.working_final
    sim.fill(pending_id, "1")
    assert o.status is _S.DONE and o.mode is ExecutionMode.NATIVE


def test_oto_native_list_whose_pending_type_is_refused_emulates_the_pending_order() -> None:
    venue = Venue()
    venue.reject_native = UNSUPPORTED_ORDER_TYPE  # only conditional types: the limit working order passes
    sim = oto_sim(buy(), sl(), native=True, venue=venue)
    o = oto(sim)
    assert o.list_id and o.exits.armed and not o.exits.native
    venue.reject_native = None
    sim.fill(o.working_id, "1")
    (child,) = releases(sim.trade("89"))
    assert child.size == D(1) and child.type is OrderType.MARKET
    sim.fill(child.client_order_id, "1")
    assert o.status is _S.DONE


def test_oto_resume_re_releases_what_the_order_manager_never_got_and_round_trips() -> None:
    env = Env()
    o = Oto.from_approved(oto_list(buy(), sell_limit()), env.ctx)
    first = o.start(env.ctx)
    revived = Oto.from_row(first[0].rows[0])  # type: ignore[union-attr]
    assert revived.row() == o.row()
    out = revived.resume(Venue().lookup, env.ctx)
    assert [i.client_order_id for i in releases(out)] == [o.working_id]
    cancel = revived.cancel("strategy", env.ctx)
    assert any(isinstance(e, CancelChild) and e.client_order_id == o.working_id for e in cancel)
    assert revived.status is _S.CANCELED
