"""Contingent orders in notifications: protective child fills, FAILED orders, the store tap.

The contingent orders here are real (``ContingentBook`` with a hand-moved context): the views
and rows the translator reads are the ones the manager publishes and saves.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from actors.contingent.base import BookContext
from actors.contingent.book import ContingentBook
from actors.contingent.effects import Effect, Persist, Release
from actors.kernel.clock import MarketClock
from actors.model.contingent import CONTINGENT_GIVEN_UP, ContingentRow, ContingentStatus, ContingentView, LegView
from actors.model.market import Trade
from actors.model.orders import (
    ApprovedIntent,
    ApprovedList,
    Fill,
    ListKind,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderList,
    OrderStatus,
    OrderType,
    Side,
)
from actors.model.records import OrderRecord
from actors.ports.capabilities import NativeSupport
from adapters.storage.store import Store
from config.schema.ops import NotifySection
from config.schema.trading import OrdersSection
from daemon.notify import EventKind, NotificationService, Severity
from daemon.notify.contingent import ChildFill, ObservedContingentStore, is_protective_child
from daemon.notify.outbox import OUTBOX_FILE, AsyncOutbox
from daemon.notify.sources import EventTranslator
from daemon.notify.targets import Target

D = Decimal
SYM = "BTC/USDT"
T0 = 1_700_000_000_000
S = ContingentStatus


class Book:
    """A contingent book on a fixed clock, emulating everything; one attempt per child."""

    def __init__(self) -> None:
        ids = itertools.count(1)
        ctx = BookContext(new_id=lambda: f"aa{next(ids)}", now_ms=lambda: T0,
                          settings=lambda: OrdersSection(max_child_attempts=1), support=NativeSupport(),
                          native_enabled=False, venue="paper", step_size=lambda _s: D("0.00001"))
        self.book = ContingentBook(ctx)
        self.trades = itertools.count(1)

    def view(self, cid: str) -> ContingentView:
        order = self.book.get(cid)
        assert order is not None
        return order.view()

    def fill(self, intent: OrderIntent, size: str = "0.01", price: str = "50000") -> OrderEvent:
        """The fill event of a released order (the whole of it)."""
        f = Fill(venue="paper", trade_id=f"t{next(self.trades)}", client_order_id=intent.client_order_id,
                 symbol=SYM, side=intent.side, price=D(price), size=D(size), ts_ms=T0)
        return OrderEvent(client_order_id=intent.client_order_id, strategy=intent.strategy, symbol=SYM,
                          status=OrderStatus.FILLED, filled=D(size), size=D(size), fill=f, parent=intent.parent)

    def trade(self, price: float) -> list[Effect]:
        return self.book.on_market(Trade(symbol=SYM, ts_ms=T0, price=price, size=1.0, side="sell"))


def released(effects: Sequence[Effect]) -> list[OrderIntent]:
    return [e.intent for e in effects if isinstance(e, Release)]


def final_rows(effects: Sequence[Effect]) -> list[ContingentRow]:
    return [r for e in effects if isinstance(e, Persist) for r in e.rows if not r.active]


def with_status(row: ContingentRow, status: ContingentStatus) -> ContingentRow:
    return msgspec.structs.replace(row, status=status)


def bracket(book: Book, tag: str = "") -> tuple[str, OrderIntent]:
    """A buy bracket (market entry 0.01, take-profit 51000, stop-loss 49000): its id and its entry."""
    orders = (
        OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, size=D("0.01"), tag=tag),
        OrderIntent(strategy="s1", symbol=SYM, side=Side.SELL, type=OrderType.TAKE_PROFIT, trigger_price=D(51000)),
        OrderIntent(strategy="s1", symbol=SYM, side=Side.SELL, type=OrderType.STOP_MARKET, trigger_price=D(49000)),
    )
    ol = OrderList(kind=ListKind.BRACKET, strategy="s1", symbol=SYM, orders=orders, tag=tag)
    [entry] = released(book.book.add(ApprovedList(order_list=ol, sizes=(D("0.01"), None, None),
                                                  reference_price=D(50000))))
    return entry.parent, entry


def translator(tags: dict[str, str] | None = None) -> EventTranslator:
    def lookup(coid: str) -> OrderRecord | None:
        tag = (tags or {}).get(coid, "")
        return OrderRecord(client_order_id=coid, venue="paper", strategy="s1", symbol=SYM, side=Side.SELL,
                           type=OrderType.MARKET, size=D("0.01"), status=OrderStatus.FILLED, tag=tag)

    return EventTranslator(run_id="r1", clock=MarketClock(T0), denial_burst=3, denial_window_s=60,
                           instance="bot", order_lookup=lookup, now=lambda: 0.0)


# --------------------------------------------------------------------------- child fills
def test_a_bracket_entry_fill_is_a_fill_and_its_stop_loss_fill_a_protective_exit() -> None:
    book = Book()
    cid, entry = bracket(book, tag="sl-entry")  # a tag that reads as protective: the view decides
    entry_fill = book.fill(entry)
    tr = translator({entry.client_order_id: "sl-entry"})
    [note] = tr.translate(ChildFill(event=entry_fill, contingent=book.view(cid)))
    assert note.kind is EventKind.FILL and f"contingent order: bracket {cid} (entry)" in note.body
    book.book.on_order_event(entry_fill)
    [child] = released(book.trade(49000.0))  # the stop-loss fires: one market child for 0.01
    [exit_] = tr.translate(ChildFill(event=book.fill(child, price="49000"), contingent=book.view(cid)))
    assert exit_.kind is EventKind.PROTECTIVE_EXIT and exit_.level is Severity.WARNING
    assert exit_.title == "Protective exit: SELL 0.01 BTC/USDT @ 49000"
    assert f"contingent order: bracket {cid} (stop_loss)" in exit_.body


def test_a_stop_child_is_a_protective_exit_whatever_its_tag() -> None:
    book = Book()
    stop = OrderIntent(strategy="s1", symbol=SYM, side=Side.SELL, type=OrderType.STOP_MARKET,
                       trigger_price=D(49000), size=D("0.01"), tag="ema.exit")
    book.book.add(ApprovedIntent(intent=stop, size=D("0.01"), reference_price=D(50000)))
    [child] = released(book.trade(48900.0))
    view = book.view(child.parent)
    tr = translator({child.client_order_id: "ema.exit"})
    [note] = tr.translate(ChildFill(event=book.fill(child, price="48900"), contingent=view))
    assert note.kind is EventKind.PROTECTIVE_EXIT and "contingent order: stop" in note.body
    # Without the manager's view (it no longer held the order) the tag alone decides, as before.
    [plain] = tr.translate(book.fill(child, price="48900"))
    assert plain.kind is EventKind.FILL


def test_an_iceberg_slice_is_a_plain_fill() -> None:
    book = Book()
    ice = OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, type=OrderType.LIMIT, size=D("0.03"),
                      limit_price=D(50000), display_size=D("0.01"), tag="protect-me")
    [slice_] = released(book.book.add(ApprovedIntent(intent=ice, size=D("0.03"), reference_price=D(50000))))
    [note] = translator({slice_.client_order_id: "protect-me"}).translate(
        ChildFill(event=book.fill(slice_), contingent=book.view(slice_.parent)))
    assert note.kind is EventKind.FILL


def _oto_view(pending_side: str) -> ContingentView:
    return ContingentView(id="o1", strategy="s1", symbol=SYM, kind="oto", mode="emulated", status="WORKING",
                          legs=(LegView(name="working", type="limit", side="buy", status="FILLED",
                                        client_order_ids=("w1",)),
                                LegView(name="pending", type="take_profit", side=pending_side, status="armed",
                                        client_order_ids=("p1",))))


@pytest.mark.parametrize(("view", "coid", "protective"), [
    (_oto_view("sell"), "p1", True),  # the pending order exits what the working order bought
    (_oto_view("sell"), "w1", False),  # the working order opens the position
    (_oto_view("buy"), "p1", False),  # a pending order on the same side adds to it
    (ContingentView(id="x", strategy="s1", symbol=SYM, kind="oco", mode="native", status="WORKING"), "a1", True),
    (ContingentView(id="x", strategy="s1", symbol=SYM, kind="twap", mode="emulated", status="WORKING"), "a1", False),
], ids=["oto-pending-exit", "oto-working", "oto-pending-same-side", "oco-leg", "twap-slice"])
def test_protective_children_by_kind_and_leg(view: ContingentView, coid: str, protective: bool) -> None:
    assert is_protective_child(view, coid) is protective


async def test_the_router_tap_reads_the_contingent_order_before_the_manager_gets_the_fill(tmp_path: Path) -> None:
    book = Book()
    cid, entry = bracket(book)
    svc = NotificationService(NotifySection(), targets=[Target.of("json://127.0.0.1:1/x")], state_dir=tmp_path,
                              clock=MarketClock(T0))
    asked: list[str] = []

    def view_of(contingent_id: str) -> ContingentView | None:
        asked.append(contingent_id)
        order = book.book.get(contingent_id)
        return order.view() if order is not None else None

    svc._contingent_lookup = view_of  # type: ignore[attr-defined]  # what attach() sets
    svc.on_order_event(book.fill(entry))
    [queued] = list(svc._inbox)  # type: ignore[attr-defined]
    assert asked == [cid] and isinstance(queued, ChildFill) and queued.contingent == book.view(cid)


# --------------------------------------------------------------------------- FAILED orders
def _failed_bracket() -> tuple[str, ContingentRow]:
    """A bracket whose entry filled 0.01 and whose stop-loss child the venue rejected (one attempt: FAILED)."""
    book = Book()
    cid, entry = bracket(book)
    book.book.on_order_event(book.fill(entry))
    [child] = released(book.trade(49000.0))
    rejected = OrderEvent(client_order_id=child.client_order_id, strategy="s1", symbol=SYM,
                          status=OrderStatus.REJECTED, size=D("0.01"), reason="INSUFFICIENT_BALANCE", parent=cid)
    [row] = final_rows(book.book.on_order_event(rejected))
    assert row.status is S.FAILED
    return cid, row


def test_a_failed_bracket_makes_one_critical_protection_failed_naming_the_unprotected_position() -> None:
    cid, row = _failed_bracket()
    tr = translator()
    [note] = tr.translate(row)
    assert note.kind is EventKind.PROTECTION_FAILED and note.level is Severity.CRITICAL
    assert note.key == f"protection_failed:{cid}" and note.event_ms == T0
    assert note.title == "bot: bracket BTC/USDT FAILED"
    body = note.body.splitlines()
    assert body[:4] == [
        "strategy: s1",
        f"contingent order: {cid} (bracket, emulated)",
        "reason: exit_rejected:INSUFFICIENT_BALANCE (the venue rejected its exit order until it gave up)",
        "position left unprotected: 0.01 BTC/USDT",
    ]
    assert tr.translate(row)[0].key == note.key  # seen again: the same event, stored once (below)
    done = with_status(row, S.DONE)
    assert tr.translate(done) == []


async def test_a_failed_order_is_stored_once_also_when_seen_again_after_a_restart(tmp_path: Path) -> None:
    _cid, row = _failed_bracket()
    target = [Target.of("json://127.0.0.1:1/x")]
    for run in range(2):  # two runs of the daemon on the same state directory
        svc = NotificationService(NotifySection(), targets=target, state_dir=tmp_path, clock=MarketClock(T0),
                                  run_id=f"run{run}")
        assert svc.contingent_tap is not None
        outbox = await AsyncOutbox.open(tmp_path / OUTBOX_FILE)
        svc._outbox = outbox  # type: ignore[attr-defined]  # start() without its delivery workers
        try:
            svc.contingent_tap([row])
            svc.contingent_tap([with_status(row, S.WORKING), row])  # saved again: one more FAILED
            await svc._drain_once()  # type: ignore[attr-defined]
            stats = svc.stats()
            assert (stats.offered, stats.stored, stats.duplicates) == (2, 1 if run == 0 else 0, 1 if run == 0 else 2)
        finally:
            await outbox.close()


async def test_start_up_catches_up_failures_saved_before_a_crash_each_told_once(tmp_path: Path) -> None:
    # The FAILED row was saved, then the daemon died before its notification reached the outbox.
    _cid, row = _failed_bracket()
    old = msgspec.structs.replace(row, id="aa-old", updated_ms=T0 - 31 * 86_400_000)  # beyond keep_days
    store = await Store.open(tmp_path / "state.db")
    await store.save_contingents([row, old, with_status(msgspec.structs.replace(row, id="aa-done"), S.DONE)])
    target = [Target.of("json://127.0.0.1:1/x")]
    try:
        for run in range(2):  # the restart after the crash, then another restart
            svc = NotificationService(NotifySection(keep_days=30), targets=target, state_dir=tmp_path,
                                      clock=MarketClock(T0), run_id=f"run{run}")
            outbox = await AsyncOutbox.open(tmp_path / OUTBOX_FILE)
            svc._outbox = outbox  # type: ignore[attr-defined]  # start() without its delivery workers
            try:
                assert await svc.catch_up_failures(store) == 1  # only the one in the window
                await svc._drain_once()  # type: ignore[attr-defined]
                stats = svc.stats()
                assert (stats.stored, stats.duplicates) == ((1, 0) if run == 0 else (0, 1))
            finally:
                await outbox.close()
        off = NotificationService(NotifySection(events={"protection_failed": False}), targets=target,
                                  state_dir=tmp_path, clock=MarketClock(T0))
        assert await off.catch_up_failures(store) == 0
    finally:
        await store.close()


def test_protection_failed_switched_off_wraps_nothing(tmp_path: Path) -> None:
    target = [Target.of("json://127.0.0.1:1/x")]
    off = NotificationService(NotifySection(events={"protection_failed": False}), targets=target,
                              state_dir=tmp_path, clock=MarketClock(T0))
    assert off.contingent_tap is None and NotificationService.off().contingent_tap is None


def test_a_given_up_denial_is_not_counted_as_a_risk_denial(tmp_path: Path) -> None:
    intent = OrderIntent(strategy="s1", symbol=SYM, side=Side.SELL, size=D("0.01"), parent="aa1",
                         client_order_id="aa2")
    plain = OrderDenied(intent=intent, reason="TRADING_REDUCING")
    given_up = OrderDenied(intent=intent, reason=CONTINGENT_GIVEN_UP, detail="TRADING_REDUCING: denied 2 times")
    tr = translator()
    assert [tr.translate(d) for d in (plain, plain, given_up, given_up)] == [[]] * 4
    [burst] = tr.translate(plain)
    assert burst.body.splitlines()[0] == "TRADING_REDUCING: 3"
    svc = NotificationService(NotifySection(), targets=[Target.of("json://127.0.0.1:1/x")], state_dir=tmp_path,
                              clock=MarketClock(T0))
    svc.on_order_event(given_up)
    svc.on_order_event(plain)
    assert svc.stats().offered == 1


# --------------------------------------------------------------------------- the store tap
class FakeStore:
    def __init__(self) -> None:
        self.saved: list[ContingentRow] = []
        self.refuse = False

    def next_client_order_id(self, prefix: str = "aa") -> str:
        return f"{prefix}1"

    async def save_contingents(self, rows: Sequence[ContingentRow]) -> None:
        if self.refuse:
            raise OSError("disk full")
        self.saved.extend(rows)

    def save_contingents_nowait(self, rows: Sequence[ContingentRow]) -> None:
        if self.refuse:
            raise OSError("disk full")
        self.saved.extend(rows)

    async def active_contingents(self) -> list[ContingentRow]:
        return [r for r in self.saved if r.active]

    async def contingent(self, contingent_id: str) -> ContingentRow | None:
        return next((r for r in self.saved if r.id == contingent_id), None)

    async def recent_contingents(self, limit: int = 100, *, active_only: bool = False) -> list[ContingentRow]:
        return self.saved[-limit:]


async def test_the_observed_store_reports_what_the_store_accepted_and_never_fails_a_save() -> None:
    _cid, row = _failed_bracket()
    inner = FakeStore()
    seen: list[ContingentRow] = []
    store = ObservedContingentStore(inner, seen.extend)
    await store.save_contingents([row])
    store.save_contingents_nowait((row,))
    assert seen == [row, row] and inner.saved == [row, row] and store.next_client_order_id() == "aa1"
    assert await store.contingent(row.id) == row and await store.active_contingents() == []
    inner.refuse = True
    with pytest.raises(OSError):
        await store.save_contingents([row])
    with pytest.raises(OSError):
        store.save_contingents_nowait([row])
    assert len(seen) == 2  # refused saves are not reported (the manager retries them)

    def broken(_rows: Sequence[ContingentRow]) -> None:
        raise RuntimeError("tap bug")

    inner.refuse = False
    await ObservedContingentStore(inner, broken).save_contingents([row])  # the save still succeeds
    assert len(inner.saved) == 3
