"""The order manager and the contingent-order manager's orders: preset client order ids (used
as is, a known one dropped without an event, also after a restart), the fields of native
conditional orders on records, requests and events, and native order lists (written ahead in
one insert before ``submit_list``; rejected, unknown outcome, a venue without lists)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import get_args

import pytest
from structlog.testing import capture_logs

from actors.kernel.clock import MarketClock
from actors.model.orders import (
    CONDITIONAL_TYPES,
    ApprovedIntent,
    ApprovedList,
    CancelAll,
    CancelOrder,
    ListKind,
    OrderIntent,
    OrderList,
    OrderListRequest,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TrailingSpec,
    VenueOrder,
)
from actors.model.records import OrderRecord
from actors.orders.order_manager import OrderCommand
from actors.orders.reconciler import reconcile
from actors.ports.capabilities import NativeOrders, NativeSupport
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE, OrderRejected, VenueError, VenueUnavailable
from config.schema.trading import ReconcilerSection
from tests.unit.actors.orders_harness import SYMBOL, Harness, ProxyVenue

S = OrderStatus
D = Decimal
NOW = ReconcilerSection(inflight_query_after_s=1e-6)


def _native(req: OrderRequest) -> bool:
    return req.type in CONDITIONAL_TYPES or req.trailing_bps is not None or req.display_size is not None


def _view(req: OrderRequest, status: OrderStatus) -> VenueOrder:
    return VenueOrder(venue="paper", client_order_id=req.client_order_id, venue_order_id=f"n-{req.client_order_id}",
                      symbol=req.symbol, side=req.side, type=req.type, status=status, size=req.size, price=req.price)


class NativeVenue(ProxyVenue):
    """The paper venue plus native conditional orders and lists, kept here (they rest untriggered)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.resting: dict[str, VenueOrder] = {}
        self.list_calls: list[OrderListRequest] = []
        self.fail_list: VenueError | None = None
        self.list_reaches_venue = False  # with fail_list: the list is placed, then the answer is lost
        self.on_list: list[object] = []  # what the test's check saw when submit_list was entered
        self.check_on_list: object = None

    def native_support(self) -> NativeSupport:
        return NativeSupport(order_types=CONDITIONAL_TYPES, trailing_bps=True, iceberg=True,
                             lists=frozenset({ListKind.OCO, ListKind.OTO}))

    async def submit(self, request: OrderRequest) -> VenueOrder:
        if not _native(request):
            return await super().submit(request)
        self.submit_calls.append(request)
        vo = self.resting[request.client_order_id] = _view(request, S.ACCEPTED)
        return vo

    async def submit_list(self, request: OrderListRequest) -> list[VenueOrder]:
        self.list_calls.append(request)
        if callable(self.check_on_list):
            self.on_list.append(await self.check_on_list(request))
        out = [_view(leg, S.ACCEPTED) for leg in request.orders]
        if self.fail_list is None or self.list_reaches_venue:
            self.resting.update((vo.client_order_id, vo) for vo in out)
        if self.fail_list is not None:
            raise self.fail_list
        return out

    async def query(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        vo = self.resting.get(client_order_id)
        return vo if vo is not None else await super().query(client_order_id, symbol)

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        return [*await super().open_orders(symbol), *self.resting.values()]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.close()


def native(h: Harness) -> NativeVenue:
    """Put the native venue in front of the harness's paper venue (before ``start``)."""
    venue = NativeVenue(h.paper)
    h.venue = venue
    return venue


def child(coid: str, *, type_: OrderType = OrderType.MARKET, side: Side = Side.SELL, size: str = "100",
          parent: str = "ct-1", **kw: object) -> OrderIntent:
    return OrderIntent(strategy="s1", symbol=SYMBOL, side=side, type=type_, size=D(size), client_order_id=coid,
                       parent=parent, intent_id=f"{parent}:{coid}", protective=True, **kw)  # type: ignore[arg-type]


async def send(h: Harness, intent: OrderIntent) -> None:
    assert intent.size is not None
    await h.commands.send(ApprovedIntent(intent=intent, size=intent.size, reference_price=D("0.0003")))


def oco(*, list_id: str = "ct-1:oco:1", origin_ns: int = 0, ids: tuple[str, str] = ("tp-1", "sl-1")) -> ApprovedList:
    above = child(ids[0], type_=OrderType.TAKE_PROFIT_LIMIT, limit_price=D("0.00040"), trigger_price=D("0.00039"))
    below = child(ids[1], type_=OrderType.STOP_MARKET, trigger_price=D("0.00025"))
    order_list = OrderList(kind=ListKind.OCO, strategy="s1", symbol=SYMBOL, orders=(above, below), list_id=list_id,
                           origin_ns=origin_ns)
    return ApprovedList(order_list=order_list, sizes=(D("100"), D("100")), reference_price=D("0.0003"))


async def marker(h: Harness) -> None:
    """Send a plain intent and wait for its SUBMITTED event: every command before it was handled."""
    await send(h, OrderIntent(strategy="s1", symbol=SYMBOL, side=Side.BUY, size=D("10"), intent_id="marker"))
    await h.until(lambda e: e.intent_id == "marker" and e.status is S.SUBMITTED)


# -- preset client order ids -----------------------------------------------------------------
async def test_a_preset_client_order_id_is_the_orders_id_and_events_carry_intent_and_parent(h: Harness) -> None:
    om = await h.start()
    await send(h, child("ct1-a", side=Side.BUY))
    sub = await h.until_status(S.SUBMITTED)
    assert (sub.client_order_id, sub.intent_id, sub.parent) == ("ct1-a", "ct-1:ct1-a", "ct-1")
    filled = await h.until(lambda e: e.status is S.FILLED)
    assert (filled.client_order_id, filled.intent_id, filled.parent) == ("ct1-a", "ct-1:ct1-a", "ct-1")
    assert [r.client_order_id for r in h.venue.submit_calls] == ["ct1-a"]
    assert h.store is not None
    stored = await h.store.order("ct1-a")
    assert stored is not None and (stored.parent, stored.intent_id) == ("ct-1", "ct-1:ct1-a")
    rec = om.order("ct1-a")
    assert rec is not None and rec.status is S.FILLED


async def test_a_known_preset_id_is_dropped_without_event_or_second_submit(h: Harness) -> None:
    with capture_logs() as logs:
        om = await h.start()
        await send(h, child("ct1-a", type_=OrderType.LIMIT, side=Side.BUY, limit_price=D("0.00020")))
        await h.until_status(S.ACCEPTED, "ct1-a")
        await send(h, child("ct1-a", type_=OrderType.LIMIT, side=Side.BUY, limit_price=D("0.00020")))
        await marker(h)
    assert [r.client_order_id for r in h.venue.submit_calls].count("ct1-a") == 1
    assert [(p, s) for p, s in h.history("ct1-a")] == [(S.INITIALIZED, S.SUBMITTED), (S.SUBMITTED, S.ACCEPTED)]
    assert [e["client_order_id"] for e in logs if e["event"] == "order.duplicate_client_order_id"] == ["ct1-a"]
    assert om.last_intent_id == "marker"


async def test_the_same_preset_id_twice_in_one_batch_is_sent_once(h: Harness) -> None:
    await h.start()
    # Both sit in the inbox before the order manager runs: one batch.
    intent = child("ct1-a", type_=OrderType.LIMIT, side=Side.BUY, limit_price=D("0.00020"))
    await send(h, intent)
    await send(h, intent)
    await marker(h)
    assert [r.client_order_id for r in h.venue.submit_calls].count("ct1-a") == 1
    assert [s for _, s in h.history("ct1-a")].count(S.SUBMITTED) == 1


async def test_a_re_release_after_a_restart_of_an_order_closed_before_is_dropped(h: Harness) -> None:
    await h.start()
    await send(h, child("ct1-a", side=Side.BUY))
    await h.until(lambda e: e.status is S.FILLED and e.client_order_id == "ct1-a")
    await h.stop()

    om = await h.start()
    assert om.order("ct1-a") is None  # closed before the restart: not loaded
    h.seen.clear()
    with capture_logs() as logs:
        await send(h, child("ct1-a", side=Side.BUY))
        await marker(h)
    assert [r.client_order_id for r in h.venue.submit_calls].count("ct1-a") == 1
    assert h.history("ct1-a") == []
    assert any(e["event"] == "order.duplicate_client_order_id" for e in logs)
    # The stored record is remembered: the sync lookup knows it now.
    rec = om.order("ct1-a")
    assert rec is not None and rec.status is S.FILLED and rec.parent == "ct-1"


async def test_find_order_reads_the_store_for_an_order_closed_before_a_restart(h: Harness) -> None:
    await h.start()
    await send(h, child("ct1-a", side=Side.BUY))
    await h.until(lambda e: e.status is S.FILLED and e.client_order_id == "ct1-a")
    await h.stop()
    om = await h.start()
    assert om.order("ct1-a") is None
    found = await om.find_order("ct1-a")
    assert found is not None and found.status is S.FILLED and found.filled == D("100")
    assert om.order("ct1-a") == found
    assert await om.find_order("never-written") is None


def count_store_reads(h: Harness) -> list[str]:
    """Record every ``store.order`` read from now on."""
    store = h.store
    assert store is not None
    reads: list[str] = []
    read = store.order

    async def counted(client_order_id: str) -> OrderRecord | None:
        reads.append(client_order_id)
        return await read(client_order_id)

    store.order = counted  # type: ignore[method-assign]
    return reads


async def test_preset_ids_cost_no_store_read_while_the_table_knows_every_order(h: Harness) -> None:
    await h.start()  # a new database: every order ever written is in the table
    reads = count_store_reads(h)
    await send(h, child("ct1-a", side=Side.BUY))
    await h.until(lambda e: e.status is S.FILLED and e.client_order_id == "ct1-a")
    await send(h, child("ct1-a", side=Side.BUY))
    await marker(h)
    assert reads == []


async def test_after_a_restart_only_unknown_preset_ids_read_the_store(h: Harness) -> None:
    await h.start()
    await h.stop()
    await h.start()
    reads = count_store_reads(h)
    await marker(h)  # plain intents never wait for a read
    await send(h, child("ct1-a", side=Side.BUY))
    await h.until(lambda e: e.status is S.FILLED and e.client_order_id == "ct1-a")
    await send(h, child("ct1-a", side=Side.BUY))  # known to the table now
    await marker(h)
    assert reads == ["ct1-a"]


# -- native conditional orders ---------------------------------------------------------------
async def test_a_native_stop_carries_its_fields_and_runs_accepted_triggered_filled(h: Harness) -> None:
    venue = native(h)
    om = await h.start()
    stop = child("sl-1", type_=OrderType.STOP_LIMIT, trigger_price=D("0.00025"), limit_price=D("0.00024"),
                 trailing=TrailingSpec(offset_bps=50), display_size=D("10"))
    await send(h, stop)
    await h.until_status(S.ACCEPTED, "sl-1")
    req = venue.submit_calls[-1]
    assert (req.type, req.price, req.trigger_price, req.trailing_bps, req.display_size) == (
        OrderType.STOP_LIMIT, D("0.00024"), D("0.00025"), 50, D("10"))
    rec = om.order("sl-1")
    assert rec is not None
    assert (rec.price, rec.trigger_price, rec.trailing_bps, rec.display_size, rec.parent, rec.list_id) == (
        D("0.00024"), D("0.00025"), 50, D("10"), "ct-1", "")
    assert h.store is not None
    stored = await h.store.order("sl-1")
    assert stored is not None and (stored.trigger_price, stored.trailing_bps, stored.display_size) == (
        D("0.00025"), 50, D("10"))
    base = venue.resting["sl-1"]
    assert om.apply_venue_order(VenueOrder(**{**_fields(base), "status": S.TRIGGERED}))
    assert om.apply_venue_order(VenueOrder(**{**_fields(base), "status": S.FILLED, "filled": D("100")}))
    ev = await h.until_status(S.FILLED, "sl-1")
    assert ev.parent == "ct-1"
    assert h.history("sl-1") == [(S.INITIALIZED, S.SUBMITTED), (S.SUBMITTED, S.ACCEPTED),
                                 (S.ACCEPTED, S.TRIGGERED), (S.TRIGGERED, S.FILLED)]
    assert om.snapshot().counters.illegal_transitions == 0


def _fields(vo: VenueOrder) -> dict[str, object]:
    return {f: getattr(vo, f) for f in vo.__struct_fields__}


async def test_a_native_stop_resting_for_days_is_no_discrepancy(h: Harness) -> None:
    native(h)
    clock = MarketClock(1_700_000_000_000)
    om = await h.start(clock=clock)
    await send(h, child("sl-1", type_=OrderType.STOP_MARKET, trigger_price=D("0.00025")))
    await h.until_status(S.ACCEPTED, "sl-1")
    clock.advance(1_700_000_000_000 + 3 * 86_400_000)
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW, clock=clock)
    assert report.discrepancies == () and report.complete
    rec = om.order("sl-1")
    assert rec is not None and rec.status is S.ACCEPTED
    assert om.in_flight() == []


async def test_a_conditional_order_on_the_paper_venue_is_rejected_unsupported(h: Harness) -> None:
    om = await h.start()
    await send(h, child("sl-1", type_=OrderType.STOP_MARKET, trigger_price=D("0.00025")))
    ev = await h.until_status(S.REJECTED, "sl-1")
    assert ev.reason == UNSUPPORTED_ORDER_TYPE and ev.parent == "ct-1"
    assert h.venue.submit_calls[-1].trigger_price == D("0.00025")
    assert om.in_flight() == []


# -- native order lists ----------------------------------------------------------------------
async def test_a_list_is_written_ahead_in_full_before_submit_list_then_accepted(h: Harness) -> None:
    venue = native(h)
    origins: list[int] = []
    om = await h.start(on_submit=origins.append)
    store = h.store
    assert store is not None

    async def stored_legs(request: OrderListRequest) -> list[tuple[str, str, str]]:
        out = []
        for leg in request.orders:
            rec = await store.order(leg.client_order_id)
            assert rec is not None
            out.append((rec.client_order_id, rec.status.value, rec.list_id))
        return out

    venue.check_on_list = stored_legs
    await h.commands.send(oco(origin_ns=4242))
    await h.until_status(S.ACCEPTED, "tp-1")
    await h.until_status(S.ACCEPTED, "sl-1")
    assert venue.on_list == [[("tp-1", "SUBMITTED", "ct-1:oco:1"), ("sl-1", "SUBMITTED", "ct-1:oco:1")]]
    (request,) = venue.list_calls
    assert (request.list_client_id, request.kind) == ("ct-1:oco:1", ListKind.OCO)
    tp, sl = request.orders
    assert (tp.type, tp.price, tp.trigger_price) == (OrderType.TAKE_PROFIT_LIMIT, D("0.00040"), D("0.00039"))
    assert (sl.type, sl.price, sl.trigger_price) == (OrderType.STOP_MARKET, None, D("0.00025"))
    assert origins == [4242]  # once per list
    assert venue.submit_calls == []
    for coid in ("tp-1", "sl-1"):
        rec = om.order(coid)
        assert rec is not None and (rec.status, rec.list_id, rec.parent) == (S.ACCEPTED, "ct-1:oco:1", "ct-1")


async def test_an_oco_sibling_expired_by_the_venue_closes_as_expired(h: Harness) -> None:
    venue = native(h)
    om = await h.start()
    await h.commands.send(oco())
    await h.until_status(S.ACCEPTED, "sl-1")
    base = venue.resting["sl-1"]
    assert om.apply_venue_order(VenueOrder(**{**_fields(base), "status": S.EXPIRED}))
    ev = await h.until_status(S.EXPIRED, "sl-1")
    assert ev.previous is S.ACCEPTED
    assert om.snapshot().counters.illegal_transitions == 0


async def test_a_rejected_list_rejects_every_leg(h: Harness) -> None:
    venue = native(h)
    venue.fail_list = OrderRejected("INVALID_ORDER", "prices do not bracket the market")
    om = await h.start()
    await h.commands.send(oco())
    tp = await h.until_status(S.REJECTED, "tp-1")
    sl = await h.until_status(S.REJECTED, "sl-1")
    assert tp.reason == sl.reason == "INVALID_ORDER"
    assert om.open_orders() == [] and om.in_flight() == []
    assert len(venue.list_calls) == 1


async def test_an_unknown_list_outcome_leaves_every_leg_in_flight(h: Harness) -> None:
    venue = native(h)
    venue.fail_list = VenueUnavailable("TIMEOUT", "answer lost")
    om = await h.start()
    await h.commands.send(oco())
    await h.until_status(S.SUBMITTED, "sl-1")
    assert await om.wait_requests(5) == 0
    assert sorted(f.client_order_id for f in om.in_flight()) == ["sl-1", "tp-1"]
    assert {r.status for r in om.open_orders()} == {S.SUBMITTED}
    assert len(venue.list_calls) == 1 and venue.submit_calls == []
    assert om.snapshot().counters.submit_unknown == 2


async def test_legs_of_a_list_whose_answer_was_lost_are_resolved_by_query_not_resent(h: Harness) -> None:
    venue = native(h)
    venue.fail_list = VenueUnavailable("TIMEOUT", "answer lost")
    venue.list_reaches_venue = True
    h.venue.mute_updates = True
    om = await h.start()
    await h.commands.send(oco())
    await h.until_status(S.SUBMITTED, "sl-1")
    await om.wait_requests(5)
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW, kind="inflight")
    assert sorted(d.client_order_id for d in report.discrepancies) == ["sl-1", "tp-1"]
    assert {(r.client_order_id, r.status) for r in om.open_orders()} == {("tp-1", S.ACCEPTED), ("sl-1", S.ACCEPTED)}
    assert len(venue.list_calls) == 1 and venue.submit_calls == []


async def test_a_venue_without_native_orders_rejects_lists_unsupported(h: Harness) -> None:
    assert not isinstance(h.venue, NativeOrders)
    om = await h.start()
    await h.commands.send(oco())
    tp = await h.until_status(S.REJECTED, "tp-1")
    sl = await h.until_status(S.REJECTED, "sl-1")
    assert tp.reason == sl.reason == UNSUPPORTED_ORDER_TYPE
    assert (tp.previous, tp.parent) == (S.SUBMITTED, "ct-1")
    assert h.venue.submit_calls == [] and om.in_flight() == []
    assert h.store is not None
    await h.store.flush()
    stored = await h.store.order("tp-1")
    assert stored is not None and (stored.status, stored.list_id) == (S.REJECTED, "ct-1:oco:1")


async def test_a_list_with_a_known_leg_is_dropped(h: Harness) -> None:
    venue = native(h)
    await h.start()
    await h.commands.send(oco())
    await h.until_status(S.ACCEPTED, "sl-1")
    with capture_logs() as logs:
        await h.commands.send(oco())
        await marker(h)
    assert len(venue.list_calls) == 1
    assert [s for _, s in h.history("tp-1")].count(S.SUBMITTED) == 1
    dup = [e for e in logs if e["event"] == "order.duplicate_client_order_id"]
    assert dup and dup[0]["client_order_ids"] == ["tp-1", "sl-1"]


def test_the_order_command_alias_takes_lists() -> None:
    assert set(get_args(OrderCommand)) == {ApprovedIntent, ApprovedList, CancelOrder, CancelAll}
