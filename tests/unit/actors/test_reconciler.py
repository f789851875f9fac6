"""Reconciler against the real paper venue: in-flight resolution, lost orders, unknown orders,
missing fills, balance mismatches, halting and the startup readiness gate."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from actors.kernel.channel import Channel
from actors.kernel.clock import MarketClock
from actors.model.control import SetTradingState, TradingState
from actors.model.orders import OrderRequest, OrderStatus, OrderType, Side
from actors.orders.reconciler import Reconciler, reconcile
from actors.ports.venue import VenueUnavailable
from config.schema.trading import ReconcilerSection
from tests.unit.actors.orders_harness import SYMBOL, Harness

S = OrderStatus
D = Decimal
NOW = ReconcilerSection(inflight_query_after_s=1e-6)  # every in-flight order counts as old


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.close()


async def audit_kinds(h: Harness) -> list[str]:
    assert h.store is not None
    return [e.payload["kind"] for e in await h.store.audit_entries(limit=1000) if e.kind == "reconcile.discrepancy"]


async def test_clean_state_reports_no_discrepancies(h: Harness) -> None:
    om = await h.start()
    await h.send(size="100")
    await h.until(lambda e: e.status is S.FILLED and e.fill is not None)
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW, kind="startup")
    assert report.discrepancies == () and report.complete
    assert report.fills_checked == 1 and report.assets_checked == 2
    assert await audit_kinds(h) == []


async def test_unknown_submit_outcome_resolved_by_query_not_resubmitted(h: Harness) -> None:
    h.venue.mute_updates = True
    h.venue.fail_submit = VenueUnavailable("TIMEOUT", "answer lost")
    h.venue.submit_reaches_venue = True  # the venue did take and fill it
    om = await h.start()
    await h.send(size="100")
    coid = (await h.until_status(S.SUBMITTED)).client_order_id
    await om.wait_requests(5)
    assert [f.client_order_id for f in om.in_flight()] == [coid]
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW, kind="inflight")
    assert [d.kind for d in report.discrepancies] == ["order_closed"]
    rec = om.order(coid)
    assert rec is not None and rec.status is S.FILLED
    # The fills come with the next full pass.
    full = await reconcile(h.store, h.venue, om, NOW)
    assert [d.kind for d in full.discrepancies] == ["missing_fill"]
    assert om.position(SYMBOL).size == D("100")
    assert om.balances() == {a: b.total for a, b in (await h.venue.balances()).items()}
    assert len(h.venue.submit_calls) == 1
    assert await audit_kinds(h) == ["order_closed", "missing_fill"]


async def test_order_unknown_to_venue_marked_lost_as_rejected(h: Harness) -> None:
    h.venue.fail_submit = VenueUnavailable("TIMEOUT", "never arrived")
    om = await h.start()
    await h.send(size="100")
    coid = (await h.until_status(S.SUBMITTED)).client_order_id
    await om.wait_requests(5)
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW, kind="startup")
    assert [(d.kind, d.client_order_id, d.halting) for d in report.discrepancies] == [("lost_order", coid, False)]
    ev = await h.until_status(S.REJECTED, coid)
    assert ev.reason == "lost"
    assert len(h.venue.submit_calls) == 1  # resolved, never sent again
    await h.store.flush()
    assert h.committed_status(coid) == "REJECTED"


async def test_young_in_flight_order_is_left_alone(h: Harness) -> None:
    h.venue.fail_submit = VenueUnavailable("TIMEOUT", "slow")
    om = await h.start()
    await h.send(size="100")
    coid = (await h.until_status(S.SUBMITTED)).client_order_id
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, ReconcilerSection(inflight_query_after_s=60))
    assert report.discrepancies == ()
    rec = om.order(coid)
    assert rec is not None and rec.status is S.SUBMITTED


async def place_outside(h: Harness, coid: str) -> None:
    await h.paper.submit(OrderRequest(client_order_id=coid, symbol=SYMBOL, side=Side.BUY, type=OrderType.LIMIT,
                                      size=D("100"), price=D("0.00020")))


async def test_unknown_venue_order_cancelled_by_default(h: Harness) -> None:
    om = await h.start()
    await place_outside(h, "manual-1")
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW)
    assert [(d.kind, d.client_order_id) for d in report.discrepancies] == [("unknown_order_canceled", "manual-1")]
    assert await h.venue.open_orders() == []
    assert om.open_orders() == []


async def test_unknown_venue_order_adopted_when_configured(h: Harness) -> None:
    om = await h.start()
    await place_outside(h, "manual-2")
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, dataclasses.replace(NOW, unknown_orders="adopt"))
    assert [d.kind for d in report.discrepancies] == ["unknown_order_adopted"]
    (adopted,) = om.open_orders()
    assert (adopted.client_order_id, adopted.strategy, adopted.status) == ("manual-2", "external", S.ACCEPTED)
    # From now on it is ours: a print fills it through the normal path.
    h.trade(0.00020, 100)
    await h.until_status(S.FILLED, "manual-2")
    assert om.position(SYMBOL).size == D("100")


async def test_fills_missed_during_stream_outage_are_applied(h: Harness) -> None:
    om = await h.start()
    await h.send(type_=OrderType.LIMIT, price="0.00029")
    coid = (await h.until_status(S.ACCEPTED)).client_order_id
    h.venue.mute_updates = True
    await h.stop()
    om = await h.start()  # resubscribes to a now-silent stream
    h.trade(0.00029, 100)  # fills at the venue; we hear nothing
    assert om.order(coid) is not None and om.position(SYMBOL).size == 0
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW)
    assert sorted(d.kind for d in report.discrepancies) == ["missing_fill", "order_closed"]
    assert report.halting == 0
    rec = om.order(coid)
    assert rec is not None and rec.status is S.FILLED and rec.filled == D("100")
    assert om.balances() == {a: b.total for a, b in (await h.venue.balances()).items()}
    again = await reconcile(h.store, h.venue, om, NOW)
    assert again.discrepancies == ()


async def test_zombie_order_we_closed_is_cancelled_at_venue(h: Harness) -> None:
    h.venue.mute_updates = True
    om = await h.start()
    await h.send(type_=OrderType.LIMIT, price="0.00020")
    coid = (await h.until_status(S.ACCEPTED)).client_order_id
    assert om.mark_lost(coid, "operator says lost")
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW)
    assert [(d.kind, d.client_order_id) for d in report.discrepancies] == [("zombie_order_canceled", coid)]
    assert await h.venue.open_orders() == []


async def test_unknown_order_not_lost_while_its_request_may_still_arrive(h: Harness) -> None:
    """A submit whose answer timed out may still be executed (until the venue's request expiry)."""
    h.venue.mute_updates = True
    h.venue.fail_submit = VenueUnavailable("TIMEOUT", "no answer")
    om = await h.start()
    await h.send(size="100")
    coid = (await h.until_status(S.SUBMITTED)).client_order_id
    await om.wait_requests(5)
    h.venue.submit_expiry_s = 3600.0  # type: ignore[attr-defined]
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW, kind="inflight")
    assert report.discrepancies == ()
    rec = om.order(coid)
    assert rec is not None and rec.status is S.SUBMITTED
    # The request does arrive, late: the venue executes it and the next pass finds it.
    await h.paper.submit(OrderRequest(client_order_id=coid, symbol=SYMBOL, side=Side.BUY, type=OrderType.MARKET,
                                      size=D("100")))
    report = await reconcile(h.store, h.venue, om, NOW, kind="inflight")
    assert [d.kind for d in report.discrepancies] == ["order_closed"]
    rec = om.order(coid)
    assert rec is not None and rec.status is S.FILLED
    # Once the request has expired, an order the venue never saw is lost.
    h.venue.submit_expiry_s = 0.0  # type: ignore[attr-defined]
    await h.send(size="100")
    lost = (await h.until_status(S.SUBMITTED)).client_order_id
    await om.wait_requests(5)
    report = await reconcile(h.store, h.venue, om, NOW, kind="inflight")
    assert [(d.kind, d.client_order_id) for d in report.discrepancies] == [("lost_order", lost)]


async def test_balance_mismatch_reported_rebased_and_halts(h: Harness) -> None:
    om = await h.start()
    h.paper._bal["ETH"].free += D("0.5")  # money appeared at the venue that no fill explains
    control: Channel[SetTradingState] = Channel("control", 8)
    settings = dataclasses.replace(NOW, halt_after_discrepancies=0)
    assert h.store is not None
    actor = Reconciler("reconciler", store=h.store, venue=h.venue, target=om, settings=lambda: settings,
                            control=control)
    report = await actor.run_pass("startup")
    assert [(d.kind, d.halting) for d in report.discrepancies] == [("balance_mismatch", True)]
    assert "ETH" in report.discrepancies[0].detail
    cmd = control.try_recv()
    assert cmd is not None and cmd.state is TradingState.HALTED and "balance_mismatch=1" in cmd.reason
    assert om.balances()["ETH"] == D("10.5")  # the ledger adopted the venue's truth
    assert (await actor.run_pass("periodic")).discrepancies == ()
    assert await audit_kinds(h) == ["balance_mismatch"]
    venue_snap = await h.store.latest_ledger_snapshot("venue")
    assert venue_snap is not None and venue_snap.balances["ETH"] == D("10.5")


async def test_fill_between_balance_reads_not_a_mismatch(h: Harness) -> None:
    """A fill executed between our fill read and the venue's balance read is not a mismatch.

    Adopting the venue's balances then would count the fill twice once it reached us.
    """
    h.venue.mute_updates = True  # fills reach the ledger only through reconciliation
    om = await h.start()
    for _ in range(2):
        await h.send(size="100", type_=OrderType.LIMIT, price="0.00025")
    await h.until_status(S.ACCEPTED)
    await h.until_status(S.ACCEPTED)
    await om.wait_requests(5)
    # Balance read 1 sees fill 1 (executed after the pass read fills); read 2 sees fill 2 too.
    h.venue.balances_calls = 0
    h.venue.before_balances = lambda n: h.trade(0.00025, 100) if n <= 2 else None
    assert h.store is not None
    first = await reconcile(h.store, h.venue, om, NOW, fills_since_ms=0)
    assert "balance_mismatch" not in first.counts, first.discrepancies
    h.venue.before_balances = None
    second = await reconcile(h.store, h.venue, om, NOW, fills_since_ms=0)
    assert second.discrepancies == (), second.discrepancies
    assert om.balances() == {a: b.total for a, b in (await h.venue.balances()).items()}
    assert om.position(SYMBOL).size == D("200")


async def test_balances_moving_every_read_not_compared(h: Harness) -> None:
    h.venue.mute_updates = True
    om = await h.start()
    for _ in range(5):
        await h.send(size="100", type_=OrderType.LIMIT, price="0.00025")
    for _ in range(5):
        await h.until_status(S.ACCEPTED)
    await om.wait_requests(5)
    h.venue.before_balances = lambda n: h.trade(0.00025, 100)  # a fill before every balance read
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW, fills_since_ms=0)
    assert "balance_mismatch" not in report.counts
    assert not report.complete and "still changing" in report.errors[-1]
    h.venue.before_balances = None
    again = await reconcile(h.store, h.venue, om, NOW, fills_since_ms=0)
    assert "balance_mismatch" not in again.counts and again.complete
    assert om.balances() == {a: b.total for a, b in (await h.venue.balances()).items()}


async def test_stale_open_order_list_does_not_cancel_a_closed_order(h: Harness) -> None:
    om = await h.start()
    await h.send(size="100", type_=OrderType.LIMIT, price="0.00025")
    coid = (await h.until_status(S.ACCEPTED)).client_order_id
    h.venue.stale_open_orders = await h.venue.open_orders()  # read just before the order filled
    h.trade(0.00025, 100)
    await h.until_status(S.FILLED, coid)
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW)
    assert report.discrepancies == () and report.complete, report.discrepancies
    assert h.venue.cancel_calls == []


async def test_order_closed_as_lost_but_executed_by_venue_is_reported_not_cancelled(h: Harness) -> None:
    om = await h.start()
    await h.send(size="100", type_=OrderType.LIMIT, price="0.00025")
    coid = (await h.until_status(S.ACCEPTED)).client_order_id
    h.venue.stale_open_orders = await h.venue.open_orders()
    assert om.mark_lost(coid, "lost")  # we gave up on it...
    h.trade(0.00025, 100)  # ...but the venue filled it
    assert h.store is not None
    report = await reconcile(h.store, h.venue, om, NOW)
    assert [(d.kind, d.client_order_id) for d in report.discrepancies if d.kind.startswith("zombie")] == [
        ("zombie_order_canceled", coid)]
    assert "venue FILLED" in report.discrepancies[0].detail
    assert h.venue.cancel_calls == []


async def test_below_threshold_does_not_halt(h: Harness) -> None:
    om = await h.start()
    h.paper._bal["ETH"].free += D("0.5")
    control: Channel[SetTradingState] = Channel("control", 8)
    assert h.store is not None
    actor = Reconciler("reconciler", store=h.store, venue=h.venue, target=om, settings=lambda: NOW,
                            control=control)
    report = await actor.run_pass("startup")
    assert report.halting == 1
    assert control.try_recv() is None and actor.halts_requested == 0


async def test_actor_ready_only_after_complete_startup_pass(h: Harness) -> None:
    om = await h.start()
    h.venue.fail_open_orders = 2  # the venue is down for the first two tries
    assert h.store is not None
    actor = Reconciler("reconciler", store=h.store, venue=h.venue, target=om,
                            settings=lambda: ReconcilerSection(interval_s=3600), retry_initial_s=0.01)
    task = asyncio.create_task(actor.main())
    try:
        await asyncio.wait_for(actor.ready.wait(), 5)
        assert actor.passes == 3
        assert actor.last_report is not None and actor.last_report.complete
        assert h.venue.fail_open_orders == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_pass_times_and_default_fill_lookback_follow_the_injected_clock(h: Harness) -> None:
    om = await h.start()
    await h.send(size="100")
    await h.until(lambda e: e.status is S.FILLED and e.fill is not None)
    assert h.store is not None
    # Market time far past the paper venue's fills: a one-hour look-back reaches none of them.
    clock = MarketClock(10**13)
    settings = dataclasses.replace(NOW, fills_lookback_s=3600)
    report = await reconcile(h.store, h.venue, om, settings, kind="startup", clock=clock)
    assert (report.started_ms, report.finished_ms, report.fills_checked) == (10**13, 10**13, 0)
    assert (await reconcile(h.store, h.venue, om, settings, kind="startup", fills_since_ms=0)).fills_checked == 1
