"""ContingentBook, pure: indexes (watchers per symbol, child ids), dispatch, final orders dropped,
cancel by id and in bulk, restore and resume, deadlines, revert after a failed write-ahead."""

from __future__ import annotations

import msgspec

from actors.contingent.book import ContingentBook
from actors.contingent.effects import Persist
from actors.model.contingent import ContingentKind, ContingentStatus
from actors.model.orders import ExecutionMode, OrderStatus, OrderType

from .trigger_helpers import Env, approved, cancels, denied, event, intent, last_row, notices, releases, trade

S = ContingentStatus


def book_with_stop(env: Env | None = None, **kw: object) -> tuple[ContingentBook, str]:
    book = ContingentBook((env or Env()).ctx())
    effects = book.add(approved(intent(**kw)))  # type: ignore[arg-type]
    row = last_row(effects)
    book.committed([row])
    return book, row.id


def test_market_events_reach_only_watchers() -> None:
    book, cid = book_with_stop()
    assert book.watching("XRP/ETH") and not book.watching("BTC/USDT")
    assert book.on_market(trade(90.0, symbol="BTC/USDT")) == []
    assert book.on_market(trade(101.0)) == []
    effects = book.on_market(trade(100.0, recv_ns=5))
    (child,) = releases(effects)
    assert child.parent == cid and not book.watching("XRP/ETH")  # triggered: nothing to watch
    assert book.counts() == {(ContingentKind.STOP, ExecutionMode.EMULATED, S.TRIGGERED): 1}


def test_events_routed_by_parent_or_child_id_and_final_orders_dropped() -> None:
    book, cid = book_with_stop()
    (child,) = releases(book.on_market(trade(99.0)))
    assert book.on_order_event(event("unknown", OrderStatus.FILLED)) == []
    # no parent on the event: the child-id index finds the order
    effects = book.on_order_event(event(child.client_order_id, OrderStatus.FILLED, "5"))
    assert last_row(effects).status is S.DONE and len(book) == 0 and book.views() == []
    assert book.on_order_event(event(child.client_order_id, OrderStatus.FILLED, "5", parent=cid)) == []
    book.committed([last_row(effects)])
    assert book.completed() == {(ContingentKind.STOP, ExecutionMode.EMULATED, S.DONE): 1}


def test_denial_sets_a_deadline_and_the_timer_retries() -> None:
    env = Env()
    book, _ = book_with_stop(env)
    assert book.next_deadline_ms() is None
    (child,) = releases(book.on_market(trade(99.0)))
    book.on_denied(denied(child))
    deadline = book.next_deadline_ms()
    assert deadline == env.now + 1000 and book.watching("XRP/ETH")
    assert book.on_timer(deadline - 1) == []
    (again,) = releases(book.on_timer(deadline))
    assert again.client_order_id == child.client_order_id and book.next_deadline_ms() is None


def test_cancel_by_contingent_or_child_id_and_unknown() -> None:
    book, cid = book_with_stop()
    (child,) = releases(book.on_market(trade(99.0)))
    effects = book.cancel(child.client_order_id, "op")
    assert [c.client_order_id for c in cancels(effects)] == [child.client_order_id]
    assert last_row(effects).status is S.CANCELED and len(book) == 0
    assert notices(book.cancel(cid, "again")) == ["contingent.cancel_unknown"]


def test_cancel_all_by_symbol_and_strategy() -> None:
    env = Env()
    book = ContingentBook(env.ctx())
    book.add(approved(intent(symbol="A/B")))
    book.add(approved(intent(symbol="C/D")))
    book.add(approved(msgspec.structs.replace(intent(symbol="A/B"), strategy="s2")))
    assert len(book) == 3
    effects = book.cancel_all(symbol="A/B", strategy="s1", reason="x")
    assert [r.symbol for p in effects if isinstance(p, Persist) for r in p.rows] == ["A/B"] and len(book) == 2
    book.cancel_all(reason="kill")
    assert len(book) == 0 and not book.watching("A/B") and not book.watching("C/D")


def test_restore_then_resume_releases_an_unsent_child() -> None:
    env = Env()
    book, cid = book_with_stop(env)
    (child,) = releases(book.on_market(trade(99.0)))
    rows = [book.get(cid).row()]  # type: ignore[union-attr]
    fresh = ContingentBook(env.ctx())
    assert fresh.restore(rows) == []
    assert not fresh.watching("XRP/ETH")
    (again,) = releases(fresh.resume(lambda _c: None))
    assert again.client_order_id == child.client_order_id
    # the restored index routes the child's events
    fresh.on_order_event(event(child.client_order_id, OrderStatus.FILLED, "5"))
    assert len(fresh) == 0


def test_restore_of_a_corrupt_row_reports_it_and_keeps_the_book_working() -> None:
    book, cid = book_with_stop()
    row = book.get(cid).row()  # type: ignore[union-attr]
    corrupt = msgspec.structs.replace(row, body='{"side": 7}')
    fresh = ContingentBook(Env().ctx())
    assert notices(fresh.restore([corrupt])) == ["contingent.restore_failed"] and len(fresh) == 0
    fresh.add(approved(intent()))
    assert len(fresh) == 1  # a new order is still taken


def test_plain_intent_refused() -> None:
    book = ContingentBook(Env().ctx())
    assert notices(book.add(approved(intent(OrderType.MARKET, trigger_price=None)))) == ["contingent.refused"]


def test_revert_puts_an_order_back_as_last_saved() -> None:
    book, cid = book_with_stop()
    effects = book.on_market(trade(99.0))
    (failed,) = [p for p in effects if isinstance(p, Persist)]
    assert book.revert(failed.rows) == [cid]
    order = book.get(cid)
    assert order is not None and order.status is S.WORKING and book.watching("XRP/ETH")
    assert releases(book.on_market(trade(99.0)))  # retries on the next event


def test_new_order_whose_first_save_failed_starts_again_later() -> None:
    env = Env()
    book = ContingentBook(env.ctx())
    effects = book.add(approved(intent()))
    row = last_row(effects)
    assert book.revert([row]) == [row.id]
    order = book.get(row.id)
    assert order is not None and order.status is S.PENDING and not book.watching("XRP/ETH")
    assert book.next_deadline_ms() == env.now + 1000 and book.on_timer(env.now + 999) == []
    env.now += 1000
    again = book.on_timer(env.now)
    assert last_row(again).status is S.WORKING and last_row(again).id == row.id and book.watching("XRP/ETH")
    assert book.next_deadline_ms() is None
    book.committed([last_row(again)])
    # a cancel of a PENDING order that never got saved is a plain final save
    effects = book.add(approved(intent(symbol="A/B")))
    book.revert([last_row(effects)])
    (cid,) = [v.id for v in book.views() if v.symbol == "A/B"]
    assert last_row(book.cancel(cid, "op")).status is S.CANCELED and book.next_deadline_ms() is None
