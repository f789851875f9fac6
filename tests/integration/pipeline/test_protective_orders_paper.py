"""Protective and algorithmic orders end to end on paper: everything emulated.

The daemon's own pipeline (``build_pipeline``) over the paper venue and a scripted market
(one print at a time, on a market clock), with one test strategy that submits a single kind at
its first print (``protective_strategies.Protective``). Each test checks the orders the
contingent-order manager sent (plain MARKET/LIMIT children at the paper venue), their fills,
the final contingent row in the store (mode EMULATED), and the strategy's position. BTC/USDT;
the account starts with 1 BTC and 100,000 USDT; prints are 1 BTC unless said otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from actors.kernel.clock import MarketClock
from actors.model.contingent import ContingentKind, ContingentStatus
from actors.model.control import SetTradingState, TradingState
from actors.model.orders import ExecutionMode, OrderList, OrderStatus, OrderType, Side
from adapters.paper_venue import PaperVenue
from adapters.storage.store import Store
from config.schema.root import AaitiConfig
from tests.integration.pipeline.protective_strategies import SYM, T0_MS, Rig, make_config, running, wait_for

D = Decimal
K = ContingentKind
S = ContingentStatus
EMULATED = ExecutionMode.EMULATED

RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def paper(tmp_path: Path) -> AsyncIterator[RigFactory]:
    """``await paper(params, **config)``: a running paper pipeline with that strategy."""
    stack: list[Any] = []

    async def factory(params: dict[str, Any], **config: Any) -> Rig:
        cfg: AaitiConfig = make_config(params, **config)
        clock = MarketClock(T0_MS)
        n = len(stack)
        venue = PaperVenue(tmp_path / f"paper-{n}.db", cfg.venue.paper, cfg.instruments, venue_name="paper",
                           clock=clock)
        await venue.start()
        store = await Store.open(tmp_path / f"state-{n}.db")
        ctx = running(cfg, venue, store, clock)
        rig = await ctx.__aenter__()
        stack.append((ctx, venue, store))
        return rig

    yield factory
    for ctx, venue, store in reversed(stack):
        try:
            await ctx.__aexit__(None, None, None)
        finally:
            await venue.close()
            await store.close()


def body(row: Any) -> dict[str, Any]:
    return msgspec.json.decode(row.body)  # type: ignore[no-any-return]


def filled(rig: Rig, coid: str) -> Decimal:
    rec = rig.built.order_manager.order(coid)
    assert rec is not None
    return rec.filled


# --------------------------------------------------------------------------- single triggers
@pytest.mark.parametrize(("params", "short", "cross", "child_type"), [
    ({"kind": "stop", "trigger": "49000"}, "49000.01", "49000", OrderType.MARKET),
    ({"kind": "stop", "trigger": "49000", "limit": "48900"}, "49000.01", "48950", OrderType.LIMIT),
    ({"kind": "take_profit", "trigger": "51000"}, "50999.99", "51000", OrderType.MARKET),
    ({"kind": "take_profit", "trigger": "51000", "limit": "51000"}, "50999.99", "51000", OrderType.LIMIT),
], ids=["stop-market", "stop-limit", "take-profit-market", "take-profit-limit"])
async def test_single_trigger_fires_once_and_releases_its_child(
    paper: RigFactory, params: dict[str, Any], short: str, cross: str, child_type: OrderType
) -> None:
    rig = await paper(params)
    await rig.start_and_submit("50000")
    view = await rig.wait_active(K.STOP if params["kind"] == "stop" else K.TAKE_PROFIT, status=S.WORKING)
    assert view.mode == EMULATED.value
    await rig.trade(short)
    assert rig.orders() == [] and rig.active()[0].status == S.WORKING.value  # not yet
    await rig.trade(cross)
    row = await rig.wait_final(K.STOP if params["kind"] == "stop" else K.TAKE_PROFIT)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    [child] = rig.children(row.id)
    assert (child.type, child.side, child.size, child.status) == (child_type, Side.SELL, D("0.01"), OrderStatus.FILLED)
    if child_type is OrderType.LIMIT:
        assert child.price == D(params["limit"])
    assert child.trigger_price is None  # a plain child: the trigger lives in the daemon
    assert rig.position() == D("-0.01")
    assert D(body(row)["seen_price"]) == D(cross)


@pytest.mark.parametrize(("params", "prints", "fires_at"), [
    # A price offset of 100 from 50,500 on: the level follows the high (50,800 -> 50,700).
    ({"kind": "trailing", "offset": "100", "activation": "50500"}, ["50200", "49000", "50500", "50800", "50750"],
     "50700"),
    # 100 bps from the first print after arming: the high 51,000 puts the level at 50,490.
    ({"kind": "trailing", "offset_bps": 100}, ["51000", "50600", "50491"], "50490"),
], ids=["price-offset-activation", "bps"])
async def test_trailing_stop_follows_the_high_and_fires_at_its_level(
    paper: RigFactory, params: dict[str, Any], prints: list[str], fires_at: str
) -> None:
    rig = await paper(params)
    await rig.start_and_submit("50000")
    await rig.wait_active(K.TRAILING_STOP, status=S.WORKING)
    for price in prints:  # below the activation nothing trails; past it the level only rises
        await rig.trade(price)
    [view] = rig.active()
    assert (view.mode, view.status) == (EMULATED.value, S.WORKING.value)
    await rig.trade(fires_at)
    row = await rig.wait_final(K.TRAILING_STOP)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    [child] = rig.children(row.id)
    assert (child.type, child.side, child.size, child.status) == (OrderType.MARKET, Side.SELL, D("0.01"),
                                                                  OrderStatus.FILLED)
    assert D(body(row)["trail"]["level"]) == D(fires_at)
    assert rig.position() == D("-0.01")


# --------------------------------------------------------------------------- linked orders
async def test_oco_take_profit_fires_and_the_stop_is_disarmed(paper: RigFactory) -> None:
    rig = await paper({"kind": "oco", "above": "51000", "below": "49000"})
    await rig.start_and_submit("50000")
    view = await rig.wait_active(K.OCO, status=S.WORKING)
    assert view.mode == EMULATED.value and len(view.legs) == 2
    await rig.trade("50500")
    await rig.trade("51000")
    row = await rig.wait_final(K.OCO)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    await rig.trade("48000")  # the stop side was disarmed: nothing more is sent
    [child] = rig.children(row.id)
    assert (child.type, child.side, child.size, child.status) == (OrderType.MARKET, Side.SELL, D("0.01"),
                                                                  OrderStatus.FILLED)
    assert rig.position() == D("-0.01")
    assert rig.active() == []


async def test_oto_pending_take_profit_follows_the_working_orders_fills(paper: RigFactory) -> None:
    rig = await paper({"kind": "oto", "side": "buy", "entry": "49500", "above": "51000"})
    await rig.start_and_submit("50000")
    view = await rig.wait_active(K.OTO)
    assert view.mode == EMULATED.value
    [working] = await rig.wait_orders(lambda o: len(o) == 1)
    assert (working.type, working.side, working.price) == (OrderType.LIMIT, Side.BUY, D("49500"))
    await rig.trade("49500", "0.004")  # a partial fill of the working order
    await wait_for(lambda: filled(rig, working.client_order_id) == D("0.004"))
    await rig.trade("49400")  # the rest
    await wait_for(lambda: filled(rig, working.client_order_id) == D("0.01"))
    assert rig.position() == D("0.01")
    await rig.trade("51000")  # the pending take-profit, for all the working order bought
    row = await rig.wait_final(K.OTO)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    exits = [o for o in rig.children(row.id) if o.side is Side.SELL]
    assert sum((o.filled for o in exits), D(0)) == D("0.01")
    assert all(o.type is OrderType.MARKET for o in exits)
    assert rig.position() == 0


async def test_bracket_with_market_entry_stop_closes_exactly_the_entry(paper: RigFactory) -> None:
    rig = await paper({"kind": "bracket", "side": "buy", "above": "51000", "below": "49000"})
    emitted = await rig.start_and_submit("50000")
    assert isinstance(emitted, OrderList)
    await rig.wait_active(K.BRACKET)
    entry = (await rig.wait_orders(lambda o: len(o) == 1 and o[0].status is OrderStatus.FILLED))[0]
    assert (entry.type, entry.side, entry.size, entry.intent_id) == (OrderType.MARKET, Side.BUY, D("0.01"),
                                                                     emitted.orders[0].intent_id)
    assert rig.position() == D("0.01")
    await rig.trade("49500")
    await rig.trade("49000")
    row = await rig.wait_final(K.BRACKET)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    await rig.trade("51000")  # the take-profit was disarmed
    exits = [o for o in rig.children(row.id) if o.side is Side.SELL]
    assert [(o.type, o.size, o.filled) for o in exits] == [(OrderType.MARKET, D("0.01"), D("0.01"))]
    assert rig.position() == 0


async def test_bracket_with_partially_filled_limit_entry_protects_only_what_filled(paper: RigFactory) -> None:
    rig = await paper({"kind": "bracket", "side": "buy", "entry": "49800", "above": "51000", "below": "49000"})
    await rig.start_and_submit("50000")
    [entry] = await rig.wait_orders(lambda o: len(o) == 1)
    assert (entry.type, entry.price) == (OrderType.LIMIT, D("49800"))
    await rig.trade("49800", "0.004")  # fills 0.004 of the entry, the rest rests
    await wait_for(lambda: filled(rig, entry.client_order_id) == D("0.004"))
    assert rig.position() == D("0.004")
    await rig.trade("51000")  # the take-profit: exits the 0.004 and cancels the entry's rest
    row = await rig.wait_final(K.BRACKET)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    await wait_for(lambda: rig.built.order_manager.order(entry.client_order_id).status is OrderStatus.CANCELED)
    exits = [o for o in rig.children(row.id) if o.side is Side.SELL]
    assert [(o.type, o.size, o.filled) for o in exits] == [(OrderType.MARKET, D("0.004"), D("0.004"))]
    assert rig.position() == 0


async def test_bracket_with_trailing_stop_exit(paper: RigFactory) -> None:
    rig = await paper({"kind": "bracket", "side": "buy", "offset": "200"})
    await rig.start_and_submit("50000")
    await rig.wait_orders(lambda o: len(o) == 1 and o[0].status is OrderStatus.FILLED)
    await rig.trade("50500")  # level 50,300
    await rig.trade("50301")
    assert rig.position() == D("0.01")
    await rig.trade("50300")
    row = await rig.wait_final(K.BRACKET)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    assert rig.position() == 0


# --------------------------------------------------------------------------- sliced orders
async def test_iceberg_shows_one_slice_at_a_time(paper: RigFactory) -> None:
    rig = await paper({"kind": "iceberg", "size": "0.03", "limit": "50100", "display": "0.01"})
    await rig.start_and_submit("50000")
    view = await rig.wait_active(K.ICEBERG)
    assert view.mode == EMULATED.value
    [first] = await rig.wait_orders(lambda o: len(o) == 1 and o[0].status is OrderStatus.ACCEPTED)
    await rig.trade("49900")  # below a sell at 50,100: nothing fills, no second slice
    assert [o.client_order_id for o in rig.orders()] == [first.client_order_id]
    # The print reaches the resting slice; each next slice then arrives at a market already at its
    # price on paper and fills at once, so the whole iceberg goes, but one slice after the other.
    await rig.trade("50100")
    row = await rig.wait_final(K.ICEBERG)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    slices = rig.children(row.id)
    assert [(o.type, o.side, o.size, o.price, o.filled, o.display_size) for o in slices] == [
        (OrderType.LIMIT, Side.SELL, D("0.01"), D("50100"), D("0.01"), None)] * 3
    events = [(e.client_order_id, e.status) for e in rig.strategy.events]
    for before, after in itertools.pairwise(slices):  # released only once the one before filled
        assert events.index((before.client_order_id, OrderStatus.FILLED)) < events.index(
            (after.client_order_id, OrderStatus.SUBMITTED))
    assert rig.position() == D("-0.03")


async def test_twap_slices_on_market_time(paper: RigFactory) -> None:
    rig = await paper({"kind": "twap", "side": "buy", "size": "0.03", "horizon_s": 3.0, "interval_s": 1.0})
    await rig.start_and_submit("50000")
    await rig.wait_orders(lambda o: len(o) == 1)  # slice 0 at once
    await rig.trade("50010", advance_ms=1000)
    await rig.wait_orders(lambda o: len(o) == 2)
    await rig.trade("50020", advance_ms=1000)
    row = await rig.wait_final(K.TWAP)
    assert (row.mode, row.status, body(row)["reason"]) == (EMULATED, S.DONE, "")
    slices = rig.children(row.id)
    assert [(o.type, o.side, o.size, o.filled) for o in slices] == [(OrderType.MARKET, Side.BUY, D("0.01"),
                                                                     D("0.01"))] * 3
    assert [o.created_ms - slices[0].created_ms for o in slices] == [0, 1000, 2000]
    assert rig.position() == D("0.03")


# --------------------------------------------------------------------------- trading state
async def test_paused_trading_lets_the_protective_exit_through(paper: RigFactory) -> None:
    rig = await paper({"kind": "bracket", "side": "buy", "above": "51000", "below": "49000"})
    await rig.start_and_submit("50000")
    await rig.wait_orders(lambda o: len(o) == 1 and o[0].status is OrderStatus.FILLED)
    await rig.built.control.send(SetTradingState(state=TradingState.REDUCING, reason="test pause"))
    await wait_for(lambda: rig.built.risk_gate.trading_state is TradingState.REDUCING)
    await rig.trade("49000")
    row = await rig.wait_final(K.BRACKET)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    assert rig.position() == 0
    assert rig.strategy.denials == []


@pytest.mark.parametrize(("params", "kind", "position"), [
    ({"kind": "stop", "trigger": "49000"}, K.STOP, D(0)),
    ({"kind": "trailing", "offset": "100"}, K.TRAILING_STOP, D(0)),
    ({"kind": "oco", "above": "51000", "below": "49000"}, K.OCO, D(0)),
    # The entry filled before the kill: the kill disarms its exits and leaves the position as it is.
    ({"kind": "bracket", "side": "buy", "above": "51000", "below": "49000"}, K.BRACKET, D("0.01")),
], ids=["stop", "trailing", "oco", "bracket"])
async def test_kill_switch_cancels_armed_emulated_orders(
    paper: RigFactory, params: dict[str, Any], kind: ContingentKind, position: Decimal
) -> None:
    rig = await paper(params)
    await rig.start_and_submit("50000")
    await rig.wait_active(kind)
    await wait_for(lambda: rig.position() == position)
    sent = len(rig.orders())
    await rig.built.control.send(SetTradingState(state=TradingState.HALTED, reason="test kill", kill_switch=True))
    row = await rig.wait_final(kind)
    assert (row.mode, row.status) == (EMULATED, S.CANCELED)
    for price in ("48000", "52000"):  # both sides: nothing is armed any more
        await rig.trade(price)
    assert len(rig.orders()) == sent and rig.active() == []
    assert rig.position() == position


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("params", "reason"), [
    ({"kind": "stop", "trigger": "51000"}, "TRIGGER_WRONG_SIDE"),  # a sell stop above the market
    ({"kind": "stop", "side": "buy", "trigger": "49000"}, "TRIGGER_WRONG_SIDE"),  # a buy stop below it
    ({"kind": "take_profit", "trigger": "49000"}, "TRIGGER_WRONG_SIDE"),  # a sell take-profit below it
    ({"kind": "trailing", "offset": "0"}, "TRAILING_INVALID"),
    ({"kind": "trailing", "offset": "-5"}, "TRAILING_INVALID"),
    ({"kind": "trailing", "offset_bps": 0}, "TRAILING_INVALID"),
    ({"kind": "trailing", "offset": "100", "activation": "49000"}, "TRAILING_INVALID"),  # activation below
    ({"kind": "oco", "above": "49500", "below": "49000"}, "OCO_NOT_BRACKETING"),
    ({"kind": "oco", "above": "51000", "below": "50500"}, "OCO_NOT_BRACKETING"),
    ({"kind": "stop", "trigger": "49000", "size": "0.00002"}, "MIN_NOTIONAL"),
    ({"kind": "stop", "trigger": "49000", "size": "0.000001"}, "QTY_PRECISION"),
    ({"kind": "oco", "above": "51000", "below": "49000", "size": "0.00002"}, "MIN_NOTIONAL"),
    ({"kind": "bracket", "side": "buy", "above": "49500", "below": "49000"}, "TRIGGER_WRONG_SIDE"),
    ({"kind": "iceberg", "size": "0.03", "limit": "50100", "display": "0.03"}, "INVALID_DISPLAY_SIZE"),
    ({"kind": "twap", "side": "buy", "horizon_s": 1.0, "interval_s": 2.0}, "INVALID_TWAP"),
], ids=["sell-stop-above", "buy-stop-below", "tp-wrong-side", "trailing-offset-0", "trailing-offset-negative",
        "trailing-bps-0", "trailing-activation-wrong-side", "oco-both-below", "oco-both-above",
        "stop-below-min-notional", "stop-off-step", "oco-below-min-notional", "bracket-exit-wrong-side",
        "display-not-below-size", "twap-interval-over-horizon"])
async def test_bad_input_is_denied_with_its_reason_and_nothing_is_sent(
    paper: RigFactory, params: dict[str, Any], reason: str
) -> None:
    rig = await paper(params)
    await rig.start_and_submit("50000")
    await wait_for(lambda: rig.strategy.denials)
    [denied] = rig.strategy.denials
    assert denied.reason == reason, denied
    assert rig.active() == [] and await rig.contingents() == []
    assert rig.orders() == [] and await rig.venue.open_orders() == [] and await rig.venue.fills_since(0) == []


async def test_child_denied_until_given_up_is_told_to_the_strategy_once(paper: RigFactory) -> None:
    # A buy stop is an entry, not an exit: while trading is paused its released child is denied,
    # retried once (max_child_attempts = 2), then the stop is FAILED and the strategy told.
    rig = await paper({"kind": "stop", "side": "buy", "trigger": "51000"})
    await rig.start_and_submit("50000")
    await rig.wait_active(K.STOP, status=S.WORKING)
    host = rig.built.hosts["p"]
    await rig.built.control.send(SetTradingState(state=TradingState.REDUCING, reason="test pause"))
    await wait_for(lambda: rig.built.risk_gate.trading_state is TradingState.REDUCING)
    await rig.trade("51000")
    await rig.trade("51100")  # a second later, past child_retry_s: the second (last) attempt
    row = await rig.wait_final(K.STOP)
    assert (row.mode, row.status) == (EMULATED, S.FAILED)
    await wait_for(lambda: rig.strategy.denials)
    [told] = rig.strategy.denials
    assert told.reason == "CONTINGENT_GIVEN_UP" and "denied 2 times" in told.detail, told
    assert rig.strategy.in_flight(SYM) == 0 and rig.orders() == [] and rig.position() == 0
    await rig.trade("51200")  # nothing more is released, and the strategy is told nothing more
    assert len(rig.strategy.denials) == 1 and rig.orders() == [] and host.state.value == "running"
