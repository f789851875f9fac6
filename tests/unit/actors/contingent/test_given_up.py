"""The book tells the strategy once when an order of its own is given up on a risk denial: a
bracket's entry (at its first denial), a stop's child after ``max_child_attempts`` denials; a
denial that is retried tells nothing."""

from __future__ import annotations

from decimal import Decimal

from actors.contingent.book import ContingentBook
from actors.contingent.effects import Effect, Persist, TellStrategy
from actors.model.contingent import CONTINGENT_GIVEN_UP, ContingentStatus
from actors.model.orders import ApprovedList, ListKind, OrderDenied, OrderIntent, OrderList, OrderType, Side
from config.schema.trading import OrdersSection

from .trigger_helpers import SYM, Env, approved, intent, releases, trade

D = Decimal


def tells(effects: list[Effect]) -> list[OrderDenied]:
    return [e.denied for e in effects if isinstance(e, TellStrategy)]


def bracket_list() -> ApprovedList:
    entry = OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, type=OrderType.MARKET, size=D(5),
                        intent_id="s1-1.0")
    stop = OrderIntent(strategy="s1", symbol=SYM, side=Side.SELL, type=OrderType.STOP_MARKET, trigger_price=D(90),
                       intent_id="s1-1.1")
    ol = OrderList(kind=ListKind.BRACKET, strategy="s1", symbol=SYM, orders=(entry, stop), list_id="s1-1")
    return ApprovedList(order_list=ol, sizes=(D(5), None), reference_price=D(100))


def test_denied_bracket_entry_tells_the_strategy_once_after_the_failure_is_saved() -> None:
    book = ContingentBook(Env().ctx())
    (released,) = releases(book.add(bracket_list()))
    assert released.intent_id == "s1-1.0" and released.parent
    out = book.on_denied(OrderDenied(intent=released, reason="MAX_POSITION", limit="max_position=1"))
    (told,) = tells(out)
    assert told.intent == released  # the strategy's own intent id: it settles what it counts in flight
    assert (told.reason, told.limit) == (CONTINGENT_GIVEN_UP, "max_position=1")
    assert told.detail == "MAX_POSITION: denied 1 time, given up"
    final = [i for i, e in enumerate(out) if isinstance(e, Persist) and e.durable
             and any(r.status is ContingentStatus.FAILED for r in e.rows)]
    assert final and final[0] < out.index(TellStrategy(denied=told))  # said only once it is saved FAILED
    assert book.on_denied(OrderDenied(intent=released, reason="MAX_POSITION")) == []  # the book forgot it


def test_stop_child_denied_until_the_last_attempt_tells_once() -> None:
    env = Env(native=False, settings=OrdersSection(max_child_attempts=3))
    book = ContingentBook(env.ctx())
    book.add(approved(intent()))
    (child,) = releases(book.on_market(trade(99.0)))
    told: list[OrderDenied] = []
    for attempt in range(1, 4):
        out = book.on_denied(OrderDenied(intent=child, reason="STALE_DATA"))
        told += tells(out)
        if attempt < 3:
            assert told == []
            env.now += 60_000
            assert releases(book.on_timer(env.now)) == [child]  # retried under the same id
    (last,) = told
    assert last.reason == CONTINGENT_GIVEN_UP and last.detail == "STALE_DATA: denied 3 times, given up"
    assert last.intent.client_order_id == child.client_order_id and len(book) == 0
