"""TriggerOrder (stop, take-profit, trailing stop), pure: native and emulated, every type and
trigger source, fallback to emulation, denial retries, resume after a restart, cancel."""

from __future__ import annotations

import dataclasses

import pytest

from actors.contingent import single
from actors.contingent.effects import Persist
from actors.contingent.kinds import KINDS, create, kind_of
from actors.contingent.single import StopOrder, TakeProfitOrder, TrailingStopOrder, TriggerOrder
from actors.model.contingent import ContingentKind, ContingentStatus
from actors.model.orders import (
    ExecutionMode,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
    TrailingSpec,
    TriggerSource,
)
from actors.model.records import OrderRecord
from actors.ports.capabilities import NativeSupport
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE

from .trigger_helpers import (
    NATIVE_ALL,
    SYM,
    D,
    Env,
    approved,
    cancels,
    denied,
    event,
    intent,
    last_row,
    notices,
    persists,
    quote,
    releases,
    trade,
)

S = ContingentStatus


def emulated(i: OrderIntent, env: Env | None = None) -> tuple[TriggerOrder, Env]:
    env = env or Env()
    order = TriggerOrder.from_approved(approved(i), env.ctx())
    effects = order.start(env.ctx())
    assert order.mode is ExecutionMode.EMULATED and order.status is S.WORKING
    assert [p.durable for p in persists(effects)] == [True] and not releases(effects)
    return order, env


def record(coid: str, status: OrderStatus, filled: str = "0") -> OrderRecord:
    return OrderRecord(client_order_id=coid, venue="paper", strategy="s1", symbol=SYM, side=Side.SELL,
                       type=OrderType.MARKET, size=D("5"), status=status, filled=D(filled))


# -- construction -------------------------------------------------------------------------------
def test_kind_and_class_follow_the_intent() -> None:
    env = Env()
    cases = [
        (intent(OrderType.STOP_MARKET), StopOrder, ContingentKind.STOP),
        (intent(OrderType.STOP_LIMIT, limit_price="99"), StopOrder, ContingentKind.STOP),
        (intent(OrderType.TAKE_PROFIT, trigger_price="110"), TakeProfitOrder, ContingentKind.TAKE_PROFIT),
        (intent(OrderType.TAKE_PROFIT_LIMIT, trigger_price="110", limit_price="110"), TakeProfitOrder,
         ContingentKind.TAKE_PROFIT),
        (intent(trigger_price=None, trailing=TrailingSpec(offset=D("2"))), TrailingStopOrder,
         ContingentKind.TRAILING_STOP),
    ]
    for i, cls, kind in cases:
        assert kind_of(approved(i)) is kind
        assert KINDS[kind] is cls
        order = create(approved(i), env.ctx())
        assert type(order) is cls and order.kind is kind
        assert type(TriggerOrder.from_approved(approved(i), env.ctx())) is cls
    with pytest.raises(ValueError):
        TakeProfitOrder.from_approved(approved(intent(OrderType.STOP_MARKET)), env.ctx())
    with pytest.raises(ValueError):
        create(approved(intent(OrderType.MARKET, trigger_price=None)), env.ctx())


def test_native_only_where_the_venue_has_it() -> None:
    stop = intent()
    trailing_bps = intent(trigger_price=None, trailing=TrailingSpec(offset_bps=50))
    trailing_offset = intent(trigger_price=None, trailing=TrailingSpec(offset=D("2")))
    ctx = Env(support=NATIVE_ALL).ctx()
    assert single.native_possible(stop, ctx) and single.native_possible(trailing_bps, ctx)
    assert not single.native_possible(trailing_offset, ctx)
    no_trailing = NativeSupport(order_types=NATIVE_ALL.order_types)
    assert not single.native_possible(trailing_bps, Env(support=no_trailing).ctx())
    assert not single.native_possible(stop, Env(support=NATIVE_ALL, native=False).ctx())
    assert not single.native_possible(stop, Env().ctx())  # paper: nothing native


def test_row_round_trip() -> None:
    order, env = emulated(intent(trigger_price=None, trailing=TrailingSpec(offset=D("2"), activation_price=D("105"))))
    order.on_market(trade(106.0), env.ctx())
    row = order.row()
    back = TrailingStopOrder.from_row(row)
    assert back.row() == row
    assert back.trail_state == order.trail_state and back.intent == order.intent


# -- native ---------------------------------------------------------------------------------------
def native(i: OrderIntent, env: Env | None = None) -> tuple[TriggerOrder, Env, OrderIntent]:
    env = env or Env(support=NATIVE_ALL)
    order = TriggerOrder.from_approved(approved(i, "4"), env.ctx())
    effects = order.start(env.ctx())
    assert order.mode is ExecutionMode.NATIVE and order.status is S.WORKING
    (sent,) = releases(effects)
    # written ahead, naming the id, before the release
    assert isinstance(effects[0], Persist) and effects[0].durable
    assert '"child_id":"' + sent.client_order_id + '"' in last_row(effects).body
    return order, env, sent


def test_native_stop_releases_the_conditional_intent_itself() -> None:
    i = intent(OrderType.STOP_LIMIT, limit_price="99", trigger=TriggerSource.MID)
    order, env, sent = native(i)
    assert sent.type is OrderType.STOP_LIMIT and sent.trigger_price == D("100") and sent.limit_price == D("99")
    assert sent.size == D("4") and sent.notional is None
    assert sent.parent == order.id and sent.protective and sent.client_order_id == order.child_id
    assert sent.intent_id == f"{order.id}:order:1" and sent.origin_ns == 0
    assert not order.watches_market()
    assert order.on_order_event(event(sent.client_order_id, OrderStatus.ACCEPTED), env.ctx()) == []
    effects = order.on_order_event(event(sent.client_order_id, OrderStatus.FILLED, "4"), env.ctx())
    assert order.status is S.DONE and last_row(effects).status is S.DONE and persists(effects)[-1].durable


def test_native_trailing_keeps_its_spec() -> None:
    spec = TrailingSpec(offset_bps=50, activation_price=D("105"))
    _, _, sent = native(intent(trigger_price=None, trailing=spec))
    assert sent.trailing == spec and sent.type is OrderType.STOP_MARKET


@pytest.mark.parametrize("status", [OrderStatus.CANCELED, OrderStatus.EXPIRED])
def test_native_cancelled_or_expired_at_the_venue(status: OrderStatus) -> None:
    order, env, sent = native(intent())
    effects = order.on_order_event(event(sent.client_order_id, status), env.ctx())
    assert order.status is S.CANCELED and last_row(effects).status is S.CANCELED


def test_native_rejected_for_another_reason_fails() -> None:
    order, env, sent = native(intent())
    order.on_order_event(event(sent.client_order_id, OrderStatus.REJECTED, reason="INSUFFICIENT_FUNDS"), env.ctx())
    assert order.status is S.FAILED and order.reason == "INSUFFICIENT_FUNDS"


def test_native_refused_type_falls_back_to_emulation() -> None:
    order, env, sent = native(intent())
    effects = order.on_order_event(event(sent.client_order_id, OrderStatus.REJECTED, reason=UNSUPPORTED_ORDER_TYPE),
                                   env.ctx())
    assert "contingent.native_refused_emulating" in notices(effects)
    assert order.mode is ExecutionMode.EMULATED and order.status is S.WORKING and order.watches_market()
    assert last_row(effects).mode is ExecutionMode.EMULATED and persists(effects)[0].durable
    assert sent.client_order_id in tuple(order.child_ids()) and order.child_id == ""
    effects = order.on_market(trade(99.5, recv_ns=7), env.ctx())
    (child,) = releases(effects)
    assert child.type is OrderType.MARKET and child.client_order_id != sent.client_order_id
    assert child.intent_id == f"{order.id}:order:2" and child.origin_ns == 7


def test_native_refused_type_fails_without_fallback() -> None:
    env = Env(support=NATIVE_ALL, settings=dataclasses.replace(Env().settings, fallback_to_emulation=False))
    order, env, sent = native(intent(), env)
    order.on_order_event(event(sent.client_order_id, OrderStatus.REJECTED, reason=UNSUPPORTED_ORDER_TYPE), env.ctx())
    assert order.status is S.FAILED and order.reason == UNSUPPORTED_ORDER_TYPE


# -- emulated -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("type", "side", "trigger", "limit", "path", "fires_at", "child_type"),
    [
        (OrderType.STOP_MARKET, Side.SELL, "100", None, [101.0, 100.5, 100.01, 100.0, 99.0], 3, OrderType.MARKET),
        (OrderType.STOP_LIMIT, Side.BUY, "100", "100.5", [99.0, 99.99, 100.0], 2, OrderType.LIMIT),
        (OrderType.TAKE_PROFIT, Side.SELL, "110", None, [105.0, 109.99, 110.5], 2, OrderType.MARKET),
        (OrderType.TAKE_PROFIT_LIMIT, Side.BUY, "90", "90", [95.0, 90.01, 90.0], 2, OrderType.LIMIT),
    ],
)
def test_emulated_types_fire_once_at_their_trigger(type: OrderType, side: Side, trigger: str, limit: str | None,
                                                  path: list[float], fires_at: int, child_type: OrderType) -> None:
    order, env = emulated(intent(type, side, trigger_price=trigger, limit_price=limit))
    released = []
    for n, price in enumerate(path):
        effects = order.on_market(trade(price, recv_ns=100 + n), env.ctx())
        if releases(effects):
            assert n == fires_at
            assert isinstance(effects[0], Persist) and effects[0].durable  # written ahead first
            assert last_row(effects).status is S.TRIGGERED
        released += releases(effects)
    (child,) = released
    assert order.status is S.TRIGGERED and not order.watches_market()
    assert child.type is child_type and child.side is side and child.size == D("5")
    assert child.limit_price == (D(limit) if limit else None)
    assert child.parent == order.id and child.protective and child.client_order_id == order.child_id
    assert child.origin_ns == 100 + fires_at and child.intent_id == f"{order.id}:order:1"
    assert f'"child_id":"{child.client_order_id}"' in order.row().body


def test_trigger_sources() -> None:
    last, env = emulated(intent())
    assert last.on_market(quote(90.0, 91.0), env.ctx()) == []  # LAST ignores quotes
    assert releases(last.on_market(trade(100.0), env.ctx()))

    bid_ask, env = emulated(intent(trigger=TriggerSource.BID_ASK))
    assert bid_ask.on_market(trade(50.0), env.ctx()) == []  # quotes only
    assert not releases(bid_ask.on_market(quote(100.5, 99.0), env.ctx()))  # a sell watches the bid
    assert releases(bid_ask.on_market(quote(100.0, 101.0), env.ctx()))

    buy_ask, env = emulated(intent(side=Side.BUY, trigger=TriggerSource.BID_ASK))
    assert not releases(buy_ask.on_market(quote(100.5, 99.5), env.ctx()))  # a buy stop watches the ask
    assert releases(buy_ask.on_market(quote(99.0, 100.0), env.ctx()))

    mid, env = emulated(intent(trigger=TriggerSource.MID))
    assert not releases(mid.on_market(quote(99.9, 100.3), env.ctx()))  # mid 100.1
    assert releases(mid.on_market(quote(99.9, 100.1), env.ctx()))  # mid 100.0


def test_trailing_with_activation() -> None:
    spec = TrailingSpec(offset=D("2"), activation_price=D("105"))
    order, env = emulated(intent(trigger_price=None, trailing=spec))
    levels = []
    for price in (100.0, 104.0, 106.0, 108.0, 107.0, 106.5):
        assert not releases(order.on_market(trade(price), env.ctx()))
        levels.append(order.trail_state.level)
    assert levels == [None, None, D("104.0"), D("106.0"), D("106.0"), D("106.0")]
    effects = order.on_market(trade(106.0, recv_ns=9), env.ctx())
    (child,) = releases(effects)
    assert child.type is OrderType.MARKET and child.origin_ns == 9 and child.trailing is None
    assert '"level":"106.0"' in last_row(effects).body  # the level is written ahead with the trigger
    assert order.view().legs[0].trigger_price == "106.0"


def test_trailing_buy_in_bps() -> None:
    order, env = emulated(intent(side=Side.BUY, trigger_price=None, trailing=TrailingSpec(offset_bps=100)))
    for price in (100.0, 98.0, 98.5, 98.97):
        assert not releases(order.on_market(trade(price), env.ctx()))
    assert order.trail_state.level == D("98.98")
    assert releases(order.on_market(trade(98.98), env.ctx()))


def test_trailing_level_saved_behind_at_most_every_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(single, "monotonic", lambda: now[0])
    order, env = emulated(intent(trigger_price=None, trailing=TrailingSpec(offset=D("2"))))
    effects = order.on_market(trade(101.0), env.ctx())  # moved; last save (start) just now: wait
    assert effects == []
    now[0] += 0.5
    assert order.on_market(trade(102.0), env.ctx()) == []
    now[0] += 0.6  # 1.1 s since the start's save
    effects = order.on_market(trade(103.0), env.ctx())
    (p,) = persists(effects)
    assert not p.durable and '"level":"101.0"' in p.rows[0].body
    now[0] += 5
    assert order.on_market(trade(102.5), env.ctx()) == []  # level did not move: nothing to save
    assert persists(order.on_market(trade(104.0), env.ctx()))[0].durable is False


# -- emulated children ------------------------------------------------------------------------------
def triggered(i: OrderIntent | None = None) -> tuple[TriggerOrder, Env, OrderIntent]:
    order, env = emulated(i or intent(OrderType.STOP_LIMIT, limit_price="99"))
    (child,) = releases(order.on_market(trade(100.0), env.ctx()))
    return order, env, child


def test_child_filled_is_done() -> None:
    order, env, child = triggered()
    assert persists(order.on_order_event(event(child.client_order_id, OrderStatus.PARTIALLY_FILLED, "2"),
                                         env.ctx()))[0].durable is False
    assert order.filled == D("2") and order.status is S.TRIGGERED
    effects = order.on_order_event(event(child.client_order_id, OrderStatus.FILLED, "5"), env.ctx())
    assert order.row().status is S.DONE and "contingent.done" in notices(effects)


@pytest.mark.parametrize("status", [OrderStatus.EXPIRED, OrderStatus.CANCELED, OrderStatus.REJECTED])
def test_child_ended_with_size_left_fails(status: OrderStatus) -> None:
    order, env, child = triggered()
    effects = order.on_order_event(event(child.client_order_id, status, "2", reason="X"), env.ctx())
    assert order.status is S.FAILED and order.reason == f"child_{status.value.lower()}:X"
    assert last_row(effects).status is S.FAILED and "contingent.failed" in notices(effects)


def test_events_of_other_orders_are_ignored() -> None:
    order, env, _ = triggered()
    assert order.on_order_event(event("someone-else", OrderStatus.FILLED, "5"), env.ctx()) == []
    assert order.status is S.TRIGGERED


def test_denied_child_retries_same_id_then_fails() -> None:
    env = Env(settings=dataclasses.replace(Env().settings, max_child_attempts=3, child_retry_s=2.0))
    order, env = emulated(intent(), env)
    (child,) = releases(order.on_market(trade(99.0), env.ctx()))
    for attempt in (1, 2):
        effects = order.on_denied(denied(child), env.ctx())
        assert "contingent.child_denied" in notices(effects) and order.status is S.TRIGGERED
        assert order.deadline_ms() == env.now + 2000 and order.watches_market()
        order.on_market(trade(99.5), env.ctx())  # still through the trigger
        assert order.on_timer(env.now + 1999, env.ctx()) == []
        env.now += 2000
        effects = order.on_timer(env.now, env.ctx())
        (again,) = releases(effects)
        assert again.client_order_id == child.client_order_id and order.attempts == attempt + 1
        assert persists(effects)[0].durable and effects.index(persists(effects)[0]) == 0
    effects = order.on_denied(denied(child, "MAX_POSITION"), env.ctx())
    assert order.status is S.FAILED and order.reason == "MAX_POSITION" and order.deadline_ms() is None


def test_denied_child_rearms_when_the_market_moved_back() -> None:
    order, env = emulated(intent())
    (child,) = releases(order.on_market(trade(99.0), env.ctx()))
    order.on_denied(denied(child), env.ctx())
    order.on_market(trade(101.0), env.ctx())
    env.now += 1000
    effects = order.on_timer(env.now, env.ctx())
    assert not releases(effects) and "contingent.rearmed" in notices(effects)
    assert order.status is S.WORKING and order.child_id == "" and order.watches_market()
    (second,) = releases(order.on_market(trade(100.0), env.ctx()))
    assert second.client_order_id != child.client_order_id


def test_denials_of_other_ids_are_ignored() -> None:
    order, env, _ = triggered()
    assert order.on_denied(denied(intent(client_order_id="x")), env.ctx()) == []


# -- cancel -----------------------------------------------------------------------------------------
def test_cancel_armed_disarms_without_venue_cancel() -> None:
    order, env = emulated(intent())
    effects = order.cancel("strategy", env.ctx())
    assert order.status is S.CANCELED and not cancels(effects) and not order.watches_market()
    assert last_row(effects).status is S.CANCELED and order.cancel("again", env.ctx()) == []


def test_cancel_native_or_open_child_cancels_at_the_venue() -> None:
    order, env, sent = native(intent())
    effects = order.cancel("kill", env.ctx())
    assert order.status is S.CANCELED
    assert [(c.client_order_id, c.reason) for c in cancels(effects)] == [(sent.client_order_id, "kill")]
    assert isinstance(effects[0], Persist)  # saved before the cancel goes out

    order, env, child = triggered()
    order.on_order_event(event(child.client_order_id, OrderStatus.ACCEPTED), env.ctx())
    assert [c.client_order_id for c in cancels(order.cancel("op", env.ctx()))] == [child.client_order_id]


def test_cancel_while_waiting_to_retry_sends_no_venue_cancel() -> None:
    order, env, child = triggered()
    order.on_denied(denied(child), env.ctx())
    effects = order.cancel("op", env.ctx())
    assert order.status is S.CANCELED and not cancels(effects) and order.deadline_ms() is None


# -- resume -------------------------------------------------------------------------------------------
def test_resume_releases_a_child_the_order_manager_never_saw() -> None:
    order, env, child = triggered()
    restored = type(order).from_row(order.row())
    effects = restored.resume(lambda _coid: None, env.ctx())
    (again,) = releases(effects)
    assert again.client_order_id == child.client_order_id and again.intent_id == child.intent_id
    assert again.type is child.type and again.limit_price == child.limit_price and again.origin_ns == 0


def test_resume_takes_a_known_childs_state_without_sending() -> None:
    order, env, _ = triggered()
    restored = type(order).from_row(order.row())
    assert not releases(restored.resume(lambda c: record(c, OrderStatus.PARTIALLY_FILLED, "3"), env.ctx()))
    assert restored.filled == D("3") and restored.status is S.TRIGGERED

    filled = type(order).from_row(order.row())
    effects = filled.resume(lambda c: record(c, OrderStatus.FILLED, "5"), env.ctx())
    assert not releases(effects) and filled.status is S.DONE and filled.filled == D("5")


def test_resume_native_and_armed() -> None:
    order, env, sent = native(intent())
    restored = type(order).from_row(order.row())
    (again,) = releases(restored.resume(lambda _c: None, env.ctx()))
    assert again == sent
    armed, env = emulated(intent())
    assert type(armed).from_row(armed.row()).resume(lambda _c: None, env.ctx()) == []


def test_view() -> None:
    order, _, child = triggered()
    view = order.view()
    assert view.kind == "stop" and view.mode == "emulated" and view.status == "TRIGGERED"
    (leg,) = view.legs
    assert leg.name == "order" and leg.trigger_price == "100" and leg.limit_price == "99"
    assert leg.client_order_ids == (child.client_order_id,) and view.protected == "5"
