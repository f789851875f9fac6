"""Order manager against the real paper venue and a real state database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.kernel.clock import MarketClock, wall_ms
from actors.model.orders import (
    CancelAll,
    CancelOrder,
    Fill,
    OrderStatus,
    OrderType,
    Side,
    VenueOrder,
)
from actors.model.records import OrderRecord
from actors.orders.order_manager import STORE_UNAVAILABLE
from actors.ports.venue import VenueUnavailable
from adapters.storage import Store, StoreError
from tests.unit.actors.orders_harness import SYMBOL, Harness

S = OrderStatus
D = Decimal


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    await harness.close()


async def test_market_order_committed_before_submit_then_filled(h: Harness) -> None:
    committed: list[str | None] = []
    h.venue.before_submit = lambda req: committed.append(h.committed_status(req.client_order_id))
    om = await h.start()
    await h.send(size="100")
    filled = await h.until(lambda e: e.status is S.FILLED and e.fill is not None)
    coid = filled.client_order_id
    assert committed == ["SUBMITTED"]  # durably in the file before the venue saw it
    assert h.history(coid)[0] == (S.INITIALIZED, S.SUBMITTED)
    assert filled.filled == D("100") and filled.fill is not None and filled.fill.size == D("100")
    snap = om.snapshot()
    assert snap.open_orders == () and snap.in_flight == ()
    pos = om.position(SYMBOL)
    assert pos.size == D("100") and pos.avg_price == filled.fill.price
    venue_bal = {a: b.total for a, b in (await h.venue.balances()).items()}
    assert om.balances() == venue_bal  # derived from fills == the venue's own books
    assert h.store is not None
    await h.store.flush()
    assert h.committed_status(coid) == "FILLED"
    rec = await h.store.order(coid)
    assert rec is not None and rec.filled == D("100") and rec.fees == filled.fill.fee
    assert len(await h.store.fills(client_order_id=coid)) == 1


async def test_submit_starts_in_the_order_managers_turn_after_the_write_ahead(h: Harness) -> None:
    seen: list[tuple[bool, str | None]] = []
    h.venue.before_submit = lambda req: seen.append(
        (asyncio.current_task() is h.task, h.committed_status(req.client_order_id)))
    await h.start()
    await h.send(size="100")
    filled = await h.until(lambda e: e.status is S.FILLED)
    # Started eagerly: no trip through the loop's ready queue between the write-ahead and the venue call.
    assert seen == [(True, "SUBMITTED")]
    assert h.history(filled.client_order_id)[0] == (S.INITIALIZED, S.SUBMITTED)


async def test_venue_rejection_becomes_rejected_with_reason(h: Harness) -> None:
    om = await h.start()
    await h.send(size="900000")  # far more ETH than the paper account has
    ev = await h.until_status(S.REJECTED)
    assert ev.reason == "INSUFFICIENT_FUNDS" and ev.previous is S.SUBMITTED
    assert om.snapshot().counters.rejected == 1
    assert h.store is not None
    await h.store.flush()
    assert h.committed_status(ev.client_order_id) == "REJECTED"


async def test_venue_unavailable_keeps_order_in_flight_and_never_resubmits(h: Harness) -> None:
    h.venue.fail_submit = VenueUnavailable("TIMEOUT", "no answer")
    om = await h.start()
    await h.send()
    ev = await h.until_status(S.SUBMITTED)
    assert await om.wait_requests(5) == 0
    snap = om.snapshot()
    assert [o.client_order_id for o in snap.open_orders] == [ev.client_order_id]
    assert [f.status for f in snap.in_flight] == [S.SUBMITTED]
    assert snap.counters.submit_unknown == 1
    assert len(h.venue.submit_calls) == 1


async def test_limit_order_rests_partially_fills_then_fills(h: Harness) -> None:
    om = await h.start()
    await h.send(type_=OrderType.LIMIT, price="0.00029", size="100")
    acc = await h.until_status(S.ACCEPTED)
    coid = acc.client_order_id
    h.trade(0.00029, 40)
    part = await h.until_status(S.PARTIALLY_FILLED, coid)
    assert part.filled == D("40")
    rec = om.order(coid)
    assert rec is not None and rec.filled == D("40") and rec.avg_price == D("0.00029")
    h.trade(0.00028, 100)
    done = await h.until(lambda e: e.client_order_id == coid and e.status is S.FILLED and e.filled == D("100"))
    assert done.filled == D("100")
    assert om.position(SYMBOL).size == D("100")
    assert om.balances() == {a: b.total for a, b in (await h.venue.balances()).items()}


async def test_cancel_moves_through_pending_cancel_to_canceled(h: Harness) -> None:
    om = await h.start()
    await h.send(type_=OrderType.LIMIT, price="0.00020")
    coid = (await h.until_status(S.ACCEPTED)).client_order_id
    await h.commands.send(CancelOrder(client_order_id=coid, reason="operator"))
    await h.until_status(S.CANCELED, coid)
    assert h.history(coid)[-2:] == [(S.ACCEPTED, S.PENDING_CANCEL), (S.PENDING_CANCEL, S.CANCELED)]
    assert om.snapshot().open_orders == ()
    assert await h.venue.open_orders() == []


async def test_cancel_all_cancels_only_matching_orders(h: Harness) -> None:
    om = await h.start()
    await h.send(type_=OrderType.LIMIT, price="0.00020", strategy="a")
    await h.send(type_=OrderType.LIMIT, price="0.00021", strategy="b")
    await h.until_status(S.ACCEPTED)
    await h.until_status(S.ACCEPTED)
    await h.commands.send(CancelAll(strategy="a", reason="pause"))
    ev = await h.until_status(S.CANCELED)
    assert ev.strategy == "a"
    assert [o.strategy for o in om.open_orders()] == ["b"]


async def test_cancel_before_submit_answer_is_deferred_not_raced(h: Harness) -> None:
    slow = Harness(h.tmp / "slow", latency_ms=50)
    try:
        om = await slow.start()
        await slow.send(type_=OrderType.LIMIT, price="0.00020")
        coid = (await slow.until_status(S.SUBMITTED)).client_order_id
        assert om.cancel(coid, "operator")
        await slow.until_status(S.CANCELED, coid)
        assert slow.history(coid) == [(S.INITIALIZED, S.SUBMITTED), (S.SUBMITTED, S.ACCEPTED),
                                      (S.ACCEPTED, S.PENDING_CANCEL), (S.PENDING_CANCEL, S.CANCELED)]
    finally:
        await slow.close()


async def test_duplicate_and_overfill_are_refused_and_counted(h: Harness) -> None:
    om = await h.start()
    await h.send(size="100")
    fill_ev = await h.until(lambda e: e.fill is not None)
    assert fill_ev.fill is not None
    dup = om.apply_fill(fill_ev.fill)
    assert not dup.accepted and dup.reason == "duplicate"
    over = om.apply_fill(Fill(venue="paper", trade_id="bogus-1", client_order_id=fill_ev.client_order_id,
                              symbol=SYMBOL, side=Side.BUY, price=D("0.0003"), size=D("1")))
    assert not over.accepted and over.reason == "overfill"
    counters = om.snapshot().counters
    assert (counters.duplicate_fills, counters.overfills, counters.fills_applied) == (1, 1, 1)
    assert om.position(SYMBOL).size == D("100")
    assert h.store is not None
    kinds = [e.kind for e in await h.store.audit_entries()]
    assert "order.overfill_refused" in kinds
    assert len(await h.store.fills(limit=10)) == 1


async def test_illegal_transition_is_refused_counted_and_audited(h: Harness) -> None:
    om = await h.start()
    await h.send(size="100")
    filled = await h.until(lambda e: e.status is S.FILLED and e.fill is not None)
    stale = VenueOrder(venue="paper", client_order_id=filled.client_order_id, venue_order_id="P1", symbol=SYMBOL,
                       side=Side.BUY, type=OrderType.MARKET, status=S.EXPIRED, size=D("100"), filled=D("100"))
    assert not om.apply_venue_order(stale)
    rec = om.order(filled.client_order_id)
    assert rec is not None and rec.status is S.FILLED
    assert om.snapshot().counters.illegal_transitions == 1
    assert h.store is not None
    assert "order.illegal_transition" in [e.kind for e in await h.store.audit_entries()]


async def test_write_ahead_failure_denies_and_sends_nothing(h: Harness) -> None:
    om = await h.start()
    assert h.store is not None
    store = h.store

    async def broken(records: Any) -> None:
        raise StoreError("disk full", path=h.db_path, reason="write_failed")

    store.insert_orders = broken  # type: ignore[method-assign]
    await h.send()
    ev = await h.until_status(S.DENIED)
    assert ev.reason == STORE_UNAVAILABLE and ev.previous is S.INITIALIZED
    assert h.venue.submit_calls == []
    assert om.snapshot().counters.store_errors == 1


async def test_restart_loads_open_orders_positions_and_balances(h: Harness) -> None:
    om = await h.start()
    await h.send(size="100")
    await h.until(lambda e: e.status is S.FILLED and e.fill is not None)
    await h.send(type_=OrderType.LIMIT, price="0.00020", size="50")
    resting = (await h.until_status(S.ACCEPTED)).client_order_id
    before = om.snapshot()
    await h.stop()

    om2 = await h.start()
    after = om2.snapshot()
    assert [o.client_order_id for o in after.open_orders] == [resting]
    assert after.positions == before.positions
    assert after.balances == before.balances
    # The restored order still works: a print fills it.
    h.trade(0.00020, 50)
    await h.until_status(S.FILLED, resting)
    assert om2.position(SYMBOL).size == D("150")
    assert om2.balances() == {a: b.total for a, b in (await h.venue.balances()).items()}


async def test_restart_after_crash_rebuilds_ledger_from_snapshot_and_fills(h: Harness) -> None:
    om = await h.start(snapshot_every_fills=1_000_000, snapshot_interval_s=3600)
    for _ in range(3):
        await h.send(size="40")
        await h.until(lambda e: e.status is S.FILLED and e.fill is not None)
    expected = (om.snapshot().positions, om.balances())
    assert h.store is not None
    await h.store.flush()
    # "Crash": no orderly stop, so no final snapshot; only the first-start snapshot + fills exist.

    async def crash_stop() -> None:
        for task in om._background:
            task.cancel()

    om.on_stop = crash_stop  # type: ignore[method-assign]
    await h.stop()
    om2 = await h.start()
    assert (om2.snapshot().positions, om2.balances()) == expected


async def test_events_stream_in_order_and_store_history_matches(h: Harness) -> None:
    await h.start()
    await h.send(type_=OrderType.LIMIT, price="0.00029", size="100")
    coid = (await h.until_status(S.ACCEPTED)).client_order_id
    h.trade(0.00029, 30)
    h.trade(0.00029, 70)
    await h.until(lambda e: e.client_order_id == coid and e.status is S.FILLED)
    assert h.store is not None
    stored = [(e.previous, e.status) for e in await h.store.order_events(coid)]
    assert stored == h.history(coid)
    assert stored[:3] == [(S.INITIALIZED, S.SUBMITTED), (S.SUBMITTED, S.ACCEPTED),
                          (S.ACCEPTED, S.PARTIALLY_FILLED)]


async def test_shutdown_drains_in_flight_submits(tmp_path: Path) -> None:
    h = Harness(tmp_path, latency_ms=100)
    try:
        await h.start(drain_timeout_s=5.0)
        await h.send(size="40")
        coid = (await h.until_status(S.SUBMITTED)).client_order_id
        await h.stop()  # cancels the actor while the venue call is in flight
        assert h.committed_status(coid) == "FILLED"
    finally:
        await h.close()


async def test_many_orders_flow_through(h: Harness) -> None:
    om = await h.start()
    for _ in range(200):
        await h.send(size="40")
    fills = 0
    while fills < 200:
        await h.until(lambda e: e.status is S.FILLED and e.fill is not None)
        fills += 1
    snap = om.snapshot()
    assert snap.counters.submitted == 200 and snap.counters.fills_applied == 200
    assert om.position(SYMBOL).size == D("8000")
    assert len(h.venue.submit_calls) == 200
    assert len({r.client_order_id for r in h.venue.submit_calls}) == 200


async def test_records_and_events_carry_business_time_from_the_injected_clock(h: Harness) -> None:
    clock = MarketClock(1_570_000_000_000)
    om = await h.start(clock=clock)
    clock.advance(1_570_000_060_000)
    await h.send(size="100")
    submitted = await h.until_status(S.SUBMITTED)
    clock.advance(1_570_000_120_000)
    h.trade(0.00030, 10)  # market time moves on; nothing else changes
    assert submitted.ts_ms == 1_570_000_060_000
    rec = om.order(submitted.client_order_id)
    assert rec is not None and rec.created_ms == 1_570_000_060_000
    assert om.snapshot().ts_ms == 1_570_000_120_000


async def test_portfolio_publishes_a_new_view_when_orders_change(h: Harness) -> None:
    om = await h.start()
    before = om.portfolio.current()
    assert om.portfolio.current() is before  # nothing changed: the same view
    await h.send(type_=OrderType.LIMIT, price="0.00020", size="50")
    await h.until_status(S.ACCEPTED)
    after = om.portfolio.current()
    assert after.version > before.version
    assert (after.open_orders, after.open_buy, after.priced_buy_notional) == (
        1, {SYMBOL: D("50")}, {SYMBOL: D("0.01000")})
    assert after.balances == om.balances()


async def test_late_fills_of_an_order_filled_before_a_crash_add_up_after_the_restart(h: Harness) -> None:
    # The venue's answer said FILLED before its executions arrived, then the daemon died: the
    # stored order is FILLED with nothing filled. After the restart its fills must add up on it,
    # not overwrite it with what an unknown order would get (0).
    await h.start()
    await h.stop()
    store = await Store.open(h.db_path)
    now = wall_ms()
    await store.insert_orders([OrderRecord(
        client_order_id="late-1", venue="paper", strategy="s1", symbol=SYMBOL, side=Side.BUY,
        type=OrderType.MARKET, size=D("100"), status=S.FILLED, created_ms=now, updated_ms=now)])
    await store.close()
    om = await h.start()
    for i, size in enumerate(("60", "40")):
        om.apply_fill(Fill(venue="paper", trade_id=f"t{i}", client_order_id="late-1", symbol=SYMBOL, side=Side.BUY,
                           price=D("0.0003"), size=D(size), ts_ms=now))
    rec = om.order("late-1")
    assert rec is not None and (rec.status, rec.filled, rec.avg_price) == (S.FILLED, D("100"), D("0.0003"))
    assert om.snapshot().counters.illegal_transitions == 0
