"""Protective orders end to end over the ccxt venue against the in-process Binance simulator.

The daemon's own pipeline (``build_pipeline``) over a ``CcxtVenue`` talking to the simulator
through the unchanged ccxt client, with one test strategy (``protective_strategies.Protective``)
that submits a single kind at its first print. Every print goes to the simulator (where it
triggers native orders and fills resting ones) and, the same, through the scripted feed (where
it triggers emulated ones). The simulator's market is static (it moves only on those prints);
BTCUSDT starts at 50,000.00, the account holds 1 BTC and 100,000 USDT.

- ``[orders] native = "auto"``: stops, take-profits, trailing stops (bps), icebergs, OCO, OTO
  and brackets rest at the simulator as Binance's own types (checked there: type, stopPrice,
  trailingDelta, icebergQty, orderListId), trigger on its prints, and our records follow.
  An OTO is a venue list only with a limit working order (Binance's rule); with a market one
  the manager places the pending order itself.
- ``native = "never"``: the same kinds emulated; the simulator only ever sees MARKET/LIMIT.
- A type the symbol does not list is refused and emulated instead (``fallback_to_emulation``).
- Bad input is denied by the risk gate with its reason code, and nothing reaches the simulator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from actors.kernel.clock import WallClock
from actors.model.contingent import ContingentKind, ContingentStatus
from actors.model.orders import ExecutionMode, OrderStatus, OrderType
from adapters.binance_sim import BinanceSimulator
from adapters.binance_sim.config import default_symbols
from adapters.binance_sim.orders import Order as SimOrder
from adapters.ccxt_venue import CcxtVenue
from adapters.storage.store import Store
from tests.integration.adapters.conftest import STATIC_CONFIG
from tests.integration.adapters.test_ccxt_venue import venue_config
from tests.integration.pipeline.protective_strategies import (
    SYM,
    Rig,
    ScriptedSource,
    make_config,
    running,
    wait_for,
)

D = Decimal
K = ContingentKind
S = ContingentStatus
NATIVE, EMULATED = ExecutionMode.NATIVE, ExecutionMode.EMULATED
SYM_ID = "BTCUSDT"
CCXT_VENUE = {"kind": "ccxt", "name": "binance-sim"}
#: The simulator charges a buy's fee (10 bps) in the asset bought: a 0.01 BTC buy credits 0.00999.
BASE_FEE = D("0.00001")
NET_OF_FEE = D("0.01") - BASE_FEE
ORDER_PATHS = ("/api/v3/order", "/api/v3/orderList/oco", "/api/v3/orderList/oto", "/api/v3/orderList/otoco")


@dataclasses.dataclass
class SimRig:
    """A running pipeline over the simulator: prints go to both."""

    rig: Rig
    sim: BinanceSimulator

    async def trade(self, price: str, qty: str = "0.001", taker: str = "SELL") -> None:
        """One print at the simulator (triggers and fills there), then the same through our feed."""
        self.sim.inject_trade(SYM_ID, price, qty, taker)
        await self.rig.trade(price, qty)

    def sim_orders(self) -> list[SimOrder]:
        """Every order the simulator holds or held for the account, oldest first."""
        return sorted(self.sim.exchange.orders.all_orders(SYM_ID), key=lambda o: o.order_id)

    def sim_open(self) -> list[SimOrder]:
        """The simulator's open orders."""
        return sorted(self.sim.exchange.orders.open_orders(SYM_ID), key=lambda o: o.order_id)

    def posts(self) -> int:
        """Order-entry requests the simulator received."""
        return sum(len(self.sim.requests.find("POST", p)) for p in ORDER_PATHS)


SimRigFactory = Callable[..., Awaitable[SimRig]]


@pytest.fixture
async def sim_rig(tmp_path: Path) -> AsyncIterator[SimRigFactory]:
    """``await sim_rig(params, native=..., symbols=...)``: a simulator and the pipeline over it."""
    stack: list[Any] = []

    async def factory(params: dict[str, Any], *, native: str = "auto", symbols: Any = None,
                      balances: dict[str, str] | None = None, **config: Any) -> SimRig:
        sim_cfg = STATIC_CONFIG if symbols is None else dataclasses.replace(STATIC_CONFIG, symbols=symbols)
        if balances is not None:
            sim_cfg = dataclasses.replace(sim_cfg, initial_balances=tuple((a, D(v)) for a, v in balances.items()))
        sim = BinanceSimulator(sim_cfg)
        await sim.start()
        stack.append(("sim", sim))
        venue = CcxtVenue(venue_config(sim), name="binance-sim", symbols=["BTC/USDT"], environ={})
        await venue.start()
        stack.append(("venue", venue))
        store = await Store.open(tmp_path / f"state-{len(stack)}.db")
        stack.append(("store", store))
        cfg = make_config(params, native=native, venue=CCXT_VENUE, **config)
        clock = WallClock()
        source = ScriptedSource()
        source.ts_ms = clock.now_ms()
        ctx = running(cfg, venue, store, clock, source)  # type: ignore[arg-type]
        rig = await ctx.__aenter__()
        stack.append(("ctx", ctx))
        await sim.wait_for_user_subscription(timeout_s=10)
        return SimRig(rig, sim)

    yield factory
    for what, item in reversed(stack):
        if what == "ctx":
            await item.__aexit__(None, None, None)
        elif what == "sim":
            await item.stop()
        else:
            await item.close()


def body(row: Any) -> dict[str, Any]:
    return msgspec.json.decode(row.body)  # type: ignore[no-any-return]


async def wait_sim(s: SimRig, pred: Callable[[list[SimOrder]], object]) -> list[SimOrder]:
    """Until ``pred(all simulator orders)`` holds."""
    await wait_for(lambda: pred(s.sim_orders()))
    return s.sim_orders()


# --------------------------------------------------------------------------- native
@pytest.mark.parametrize(("params", "kind", "our_type", "wire_type", "fire"), [
    ({"kind": "stop", "trigger": "49000"}, K.STOP, OrderType.STOP_MARKET, "STOP_LOSS", "49000"),
    ({"kind": "stop", "trigger": "49000", "limit": "48900"}, K.STOP, OrderType.STOP_LIMIT, "STOP_LOSS_LIMIT",
     "49000"),
    ({"kind": "take_profit", "trigger": "51000"}, K.TAKE_PROFIT, OrderType.TAKE_PROFIT, "TAKE_PROFIT", "51000"),
    ({"kind": "take_profit", "trigger": "51000", "limit": "50900"}, K.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT,
     "TAKE_PROFIT_LIMIT", "51000"),
], ids=["stop-market", "stop-limit", "take-profit", "take-profit-limit"])
async def test_native_trigger_order_rests_at_the_simulator_and_fires_there(
    sim_rig: SimRigFactory, params: dict[str, Any], kind: ContingentKind, our_type: OrderType, wire_type: str,
    fire: str,
) -> None:
    """(A triggered sell limit above the simulator's bids rests there: a buyer's print fills it.)"""
    s = await sim_rig(params)
    await s.rig.start_and_submit("50000")
    [held] = await wait_sim(s, lambda o: len(o) == 1)
    assert (held.type, held.side, held.stop_price, held.orig_qty) == (wire_type, "SELL", D(params["trigger"]),
                                                                      D("0.01"))
    view = await s.rig.wait_active(kind)
    assert view.mode == NATIVE.value
    assert held.client_order_id in view.legs[0].client_order_ids
    await s.trade(fire)
    if wire_type == "TAKE_PROFIT_LIMIT":
        await wait_for(lambda: held.status.value == "NEW" and held.stop_price and s.rig.orders()[0].status in (
            OrderStatus.TRIGGERED, OrderStatus.FILLED))
        await s.trade("50950", "0.01", taker="BUY")
    row = await s.rig.wait_final(kind)
    assert (row.mode, row.status) == (NATIVE, S.DONE)
    [ours] = s.rig.children(row.id)
    assert (ours.client_order_id, ours.type, ours.trigger_price, ours.status, ours.filled) == (
        held.client_order_id, our_type, D(params["trigger"]), OrderStatus.FILLED, D("0.01"))
    assert D(body(row)["filled"]) == D("0.01")
    assert s.sim_open() == []
    assert s.rig.position() == D("-0.01")


async def test_native_trailing_stop_in_bps_rests_with_a_trailing_delta(sim_rig: SimRigFactory) -> None:
    s = await sim_rig({"kind": "trailing", "offset_bps": 100})
    await s.rig.start_and_submit("50000")
    [held] = await wait_sim(s, lambda o: len(o) == 1)
    assert (held.type, held.side, held.trailing_delta, held.orig_qty) == ("STOP_LOSS", "SELL", 100, D("0.01"))
    view = await s.rig.wait_active(K.TRAILING_STOP)
    assert view.mode == NATIVE.value
    await s.trade("51000")  # the simulator trails the high: level 50,490
    await s.trade("50600")
    assert s.sim_open() != []
    await s.trade("50490")
    row = await s.rig.wait_final(K.TRAILING_STOP)
    assert (row.mode, row.status) == (NATIVE, S.DONE)
    assert s.sim_open() == [] and s.rig.position() == D("-0.01")


async def test_native_iceberg_rests_with_its_display_size(sim_rig: SimRigFactory) -> None:
    s = await sim_rig({"kind": "iceberg", "size": "0.03", "limit": "50100", "display": "0.01"})
    await s.rig.start_and_submit("50000")
    [held] = await wait_sim(s, lambda o: len(o) == 1)
    assert (held.type, held.side, held.price, held.orig_qty, held.iceberg_qty) == (
        "LIMIT", "SELL", D("50100"), D("0.03"), D("0.01"))
    view = await s.rig.wait_active(K.ICEBERG)
    assert view.mode == NATIVE.value
    for _ in range(3):  # each print takes the visible slice; the simulator refills it
        if held.is_open:
            await s.trade("50100", "0.01", taker="BUY")
    row = await s.rig.wait_final(K.ICEBERG)
    assert (row.mode, row.status) == (NATIVE, S.DONE)
    [ours] = s.rig.children(row.id)
    assert (ours.display_size, ours.filled, ours.status) == (D("0.01"), D("0.03"), OrderStatus.FILLED)
    assert s.rig.position() == D("-0.03")


async def test_native_oco_is_one_order_list_and_the_simulator_cancels_the_other_leg(sim_rig: SimRigFactory) -> None:
    s = await sim_rig({"kind": "oco", "above": "51000", "below": "49000"})
    await s.rig.start_and_submit("50000")
    legs = await wait_sim(s, lambda o: len(o) == 2)
    assert {o.order_list_id for o in legs} != {-1} and len({o.order_list_id for o in legs}) == 1
    assert sorted((o.type, o.side, o.stop_price, o.orig_qty) for o in legs) == [
        ("STOP_LOSS", "SELL", D("49000"), D("0.01")), ("TAKE_PROFIT", "SELL", D("51000"), D("0.01"))]
    view = await s.rig.wait_active(K.OCO)
    assert view.mode == NATIVE.value
    await s.trade("51000", taker="BUY")
    row = await s.rig.wait_final(K.OCO)
    assert (row.mode, row.status) == (NATIVE, S.DONE)
    assert s.sim_open() == []
    assert sorted((o.type, o.status.value) for o in s.sim_orders()) == [("STOP_LOSS", "EXPIRED"),
                                                                        ("TAKE_PROFIT", "FILLED")]
    assert s.rig.position() == D("-0.01")


async def test_native_oto_with_a_limit_working_order_is_one_order_list(sim_rig: SimRigFactory) -> None:
    """Binance's OTO: the simulator places the pending order (our client id) only once the
    working limit order has fully filled; our records and the contingent row follow."""
    with capture_logs() as logs:
        s = await sim_rig({"kind": "oto", "side": "buy", "entry": "49900", "above": "51000"})
        await s.rig.start_and_submit("50000")
        working, pending = await wait_sim(s, lambda o: len(o) == 2)
        assert len(s.sim.requests.find("POST", "/api/v3/orderList/oto")) == 1
        assert working.order_list_id != -1 and pending.order_list_id == working.order_list_id
        assert (working.type, working.side, working.price, working.orig_qty, working.status.value) == (
            "LIMIT", "BUY", D("49900"), D("0.01"), "NEW")
        assert (pending.type, pending.side, pending.stop_price, pending.orig_qty, pending.status.value) == (
            "TAKE_PROFIT", "SELL", D("51000"), D("0.01"), "PENDING_NEW")
        view = await s.rig.wait_active(K.OTO)
        assert view.mode == NATIVE.value
        assert [leg.client_order_ids for leg in view.legs] == [(working.client_order_id,), (pending.client_order_id,)]

        await s.trade("49900", "0.004")  # a partial fill: the venue's pending order still waits
        await wait_for(lambda: s.rig.position() == D("0.003996"))  # held: 0.004 less its fee in BTC
        assert pending.status.value == "PENDING_NEW" and s.posts() == 1
        await s.trade("49900", "0.006")
        await wait_for(lambda: s.rig.position() == NET_OF_FEE and pending.status.value == "NEW")
        await s.trade("51000", taker="BUY")
        row = await s.rig.wait_final(K.OTO)
    assert (row.mode, row.status) == (NATIVE, S.DONE)
    assert body(row)["list_id"] and D(body(row)["working_filled"]) == D("0.01")
    assert s.posts() == 1  # the list was the only order entry
    assert [(o.type, o.status.value, o.executed_qty) for o in s.sim_orders()] == [
        ("LIMIT", "FILLED", D("0.01")), ("TAKE_PROFIT", "FILLED", D("0.01"))]
    ours = s.rig.children(row.id)
    assert [(o.client_order_id, o.type, o.status, o.filled, o.list_id != "") for o in ours] == [
        (working.client_order_id, OrderType.LIMIT, OrderStatus.FILLED, D("0.01"), True),
        (pending.client_order_id, OrderType.TAKE_PROFIT, OrderStatus.FILLED, D("0.01"), True)]
    assert not any(e["event"].startswith("contingent.native_") for e in logs)
    # the venue's own pending order was sized at the 0.01 traded (Binance places it ahead): it
    # sold the buy's fee out of the BTC the account held before, so the position is short of it
    await wait_for(lambda: s.rig.position() == -BASE_FEE)


async def test_oto_with_a_market_working_order_is_linked_by_the_manager_without_a_list(
    sim_rig: SimRigFactory,
) -> None:
    """Binance's OTO takes no market working order: the manager asks for no list (so nothing is
    refused) and places the pending order itself for the working order's fill (a native
    take-profit, the type the simulator runs)."""
    with capture_logs() as logs:
        s = await sim_rig({"kind": "oto", "side": "buy", "above": "51000"})
        await s.rig.start_and_submit("50000")
        working, pending = await wait_sim(s, lambda o: len(o) == 2)
        await s.trade("51000", taker="BUY")
        row = await s.rig.wait_final(K.OTO)
    assert s.sim.requests.find("POST", "/api/v3/orderList/oto") == []
    assert not any(e["event"].startswith("contingent.native_") for e in logs)
    assert all(o.status is not OrderStatus.REJECTED for o in s.rig.orders())
    assert [(o.type, o.side, o.order_list_id, o.status.value) for o in (working, pending)] == [
        ("MARKET", "BUY", -1, "FILLED"), ("TAKE_PROFIT", "SELL", -1, "FILLED")]
    assert (row.mode, row.status) == (NATIVE, S.DONE)
    # the pending take-profit sold what the buy credited: 0.01 less its 0.1 % fee in BTC
    assert pending.orig_qty == NET_OF_FEE
    await wait_for(lambda: s.rig.position() == 0)


async def test_native_bracket_protects_the_entry_fill_with_one_oco_list(sim_rig: SimRigFactory) -> None:
    s = await sim_rig({"kind": "bracket", "side": "buy", "above": "51000", "below": "49000"})
    await s.rig.start_and_submit("50000")
    orders = await wait_sim(s, lambda o: len(o) == 3)
    entry, *exits = orders
    assert (entry.type, entry.side, entry.status.value, entry.executed_qty) == ("MARKET", "BUY", "FILLED", D("0.01"))
    assert len({o.order_list_id for o in exits}) == 1 and exits[0].order_list_id != -1
    assert all(o.side == "SELL" and o.orig_qty == NET_OF_FEE for o in exits)
    view = await s.rig.wait_active(K.BRACKET)
    assert view.mode == NATIVE.value
    assert s.rig.position() == NET_OF_FEE  # held: the 0.01 traded less its fee in BTC
    await s.trade("49000")
    row = await s.rig.wait_final(K.BRACKET)
    assert (row.mode, row.status) == (NATIVE, S.DONE)
    assert s.sim_open() == [] and s.rig.position() == 0


async def test_native_bracket_exit_sells_what_the_entry_credited_with_nothing_else_of_the_asset(
    sim_rig: SimRigFactory,
) -> None:
    """The account holds no BTC but what the entry buys; the simulator charges a buy's fee in BTC
    (10 bps), as Binance does without BNB. The OCO covers the 0.00999 credited (the 0.01 traded
    would be refused for funds), and its stop sells all of it."""
    s = await sim_rig({"kind": "bracket", "side": "buy", "above": "51000", "below": "49000"},
                      balances={"USDT": "100000"})
    await s.rig.start_and_submit("50000")
    _entry, *exits = await wait_sim(s, lambda o: len(o) == 3)
    assert [(o.side, o.orig_qty, o.status.value) for o in exits] == [("SELL", NET_OF_FEE, "NEW")] * 2
    assert sum(s.sim.balances()["BTC"]) == NET_OF_FEE
    await s.trade("49000")
    row = await s.rig.wait_final(K.BRACKET)
    assert (row.mode, row.status) == (NATIVE, S.DONE)
    assert all(o.status.value != "REJECTED" for o in s.sim_orders())
    assert s.sim_open() == [] and sum(s.sim.balances().get("BTC", (D(0), D(0)))) == 0


@pytest.mark.parametrize("native", ["auto", "never"])
async def test_bracket_round_trip_with_a_base_fee_leaves_the_strategy_flat(sim_rig: SimRigFactory, native: str) -> None:
    """The entry's fee in BTC is held by no one: once the entry and an exit have both filled, the
    strategy's position is what the account holds of BTC, 0, and ``is_flat`` lets it enter again."""
    s = await sim_rig({"kind": "bracket", "side": "buy", "above": "51000", "below": "49000"}, native=native,
                      balances={"USDT": "100000"})
    await s.rig.start_and_submit("50000")
    await s.rig.wait_active(K.BRACKET)
    await wait_for(lambda: s.rig.position() == NET_OF_FEE)
    if native == "auto":
        await wait_sim(s, lambda o: len(o) == 3)  # the OCO rests at the venue before its stop is crossed
    assert not s.rig.strategy.is_flat(SYM)
    await s.trade("49000")  # the stop
    row = await s.rig.wait_final(K.BRACKET)
    assert row.status == S.DONE
    entry, *_ = s.sim_orders()
    assert (entry.side, entry.executed_qty) == ("BUY", D("0.01"))
    assert [o.executed_qty for o in s.sim_orders() if o.side == "SELL" and o.status.value == "FILLED"] == [NET_OF_FEE]
    await wait_for(lambda: s.rig.strategy.is_flat(SYM))
    assert s.rig.position() == 0 == sum(s.sim.balances().get("BTC", (D(0), D(0))))


async def test_emulated_bracket_exit_sells_what_the_entry_fills_credited_with_nothing_else_of_the_asset(
    sim_rig: SimRigFactory,
) -> None:
    """As above, emulated, with a limit entry filled in two pieces: 0.003996 + 0.005994 credited,
    one child for 0.00999 (rounded down to the 0.00001 step) when the stop is crossed."""
    s = await sim_rig({"kind": "bracket", "side": "buy", "entry": "49990", "above": "51000", "below": "49000"},
                      native="never", balances={"USDT": "100000"})
    await s.rig.start_and_submit("50000")
    [entry] = await wait_sim(s, lambda o: len(o) == 1)
    await s.trade("49990", "0.004")
    await wait_for(lambda: s.rig.position() == D("0.003996"))
    await s.trade("49990", "0.006")
    await wait_for(lambda: s.rig.position() == NET_OF_FEE)
    assert entry.executed_qty == D("0.01") and sum(s.sim.balances()["BTC"]) == NET_OF_FEE
    await s.trade("49000")
    row = await s.rig.wait_final(K.BRACKET)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    _entry, child = s.sim_orders()
    assert (child.type, child.side, child.orig_qty, child.status.value) == ("MARKET", "SELL", NET_OF_FEE, "FILLED")
    assert sum(s.sim.balances().get("BTC", (D(0), D(0)))) == 0


# --------------------------------------------------------------------------- emulated against the simulator
@pytest.mark.parametrize(("params", "kind", "prints"), [
    ({"kind": "stop", "trigger": "49000"}, K.STOP, ["49000"]),
    ({"kind": "take_profit", "trigger": "51000"}, K.TAKE_PROFIT, ["51000"]),
    ({"kind": "trailing", "offset_bps": 100}, K.TRAILING_STOP, ["51000", "50490"]),
    ({"kind": "oco", "above": "51000", "below": "49000"}, K.OCO, ["51000"]),
    ({"kind": "oto", "side": "buy", "above": "51000"}, K.OTO, ["51000"]),
    ({"kind": "bracket", "side": "buy", "above": "51000", "below": "49000"}, K.BRACKET, ["49000"]),
], ids=["stop", "take-profit", "trailing-bps", "oco", "oto", "bracket"])
async def test_native_never_emulates_with_plain_orders_at_the_simulator(
    sim_rig: SimRigFactory, params: dict[str, Any], kind: ContingentKind, prints: list[str]
) -> None:
    s = await sim_rig(params, native="never")
    await s.rig.start_and_submit("50000")
    view = await s.rig.wait_active(kind)
    assert view.mode == EMULATED.value
    await wait_for(lambda: kind not in (K.OTO, K.BRACKET) or s.rig.position() == NET_OF_FEE)
    assert all(o.type in ("MARKET", "LIMIT") for o in s.sim_orders())
    for price in prints:
        await s.trade(price)
    row = await s.rig.wait_final(kind)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    held = s.sim_orders()
    assert held and all(o.type == "MARKET" and o.stop_price == 0 and o.order_list_id == -1 for o in held)
    assert all(o.status.value == "FILLED" for o in held)
    # a buy's exit sells what the buy credited (the fee in BTC stays out of it): flat after
    expected = D(0) if kind in (K.OTO, K.BRACKET) else D("-0.01")
    await wait_for(lambda: s.rig.position() == expected)


async def test_native_never_iceberg_slices_at_the_simulator(sim_rig: SimRigFactory) -> None:
    s = await sim_rig({"kind": "iceberg", "size": "0.02", "limit": "50100", "display": "0.01"}, native="never")
    await s.rig.start_and_submit("50000")
    view = await s.rig.wait_active(K.ICEBERG)
    assert view.mode == EMULATED.value
    [first] = await wait_sim(s, lambda o: len(o) == 1)
    assert (first.type, first.orig_qty, first.iceberg_qty) == ("LIMIT", D("0.01"), 0)
    await s.trade("50100", "0.01", taker="BUY")
    await wait_sim(s, lambda o: len(o) == 2)
    await s.trade("50100", "0.01", taker="BUY")
    row = await s.rig.wait_final(K.ICEBERG)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    assert [(o.type, o.orig_qty, o.iceberg_qty, o.status.value) for o in s.sim_orders()] == [
        ("LIMIT", D("0.01"), 0, "FILLED")] * 2


# --------------------------------------------------------------------------- refused native type
async def test_type_the_symbol_refuses_is_emulated_instead(sim_rig: SimRigFactory) -> None:
    plain = ("LIMIT", "LIMIT_MAKER", "MARKET")
    symbols = tuple(dataclasses.replace(c, order_types=plain) if c.symbol == SYM_ID else c for c in default_symbols())
    with capture_logs() as logs:
        s = await sim_rig({"kind": "stop", "trigger": "49000"}, symbols=symbols)
        await s.rig.start_and_submit("50000")
        await wait_for(lambda: any(e["event"] == "contingent.native_refused_emulating" for e in logs))
    [line] = [e for e in logs if e["event"] == "contingent.native_refused_emulating"]
    assert line["log_level"] == "warning" and line["reason"] == "UNSUPPORTED_ORDER_TYPE"
    view = await s.rig.wait_active(K.STOP, status=S.WORKING)
    assert view.mode == EMULATED.value
    assert s.sim_orders() == []  # refused before anything was placed
    await s.trade("49000")
    row = await s.rig.wait_final(K.STOP)
    assert (row.mode, row.status) == (EMULATED, S.DONE)
    [child] = s.sim_orders()
    assert (child.type, child.side, child.orig_qty, child.status.value) == ("MARKET", "SELL", D("0.01"), "FILLED")
    refused = [o for o in s.rig.orders() if o.status is OrderStatus.REJECTED]
    assert [(o.type, o.reason) for o in refused] == [(OrderType.STOP_MARKET, "UNSUPPORTED_ORDER_TYPE")]


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("params", "reason"), [
    ({"kind": "stop", "trigger": "51000"}, "TRIGGER_WRONG_SIDE"),  # a sell stop above the market
    ({"kind": "trailing", "offset_bps": 0}, "TRAILING_INVALID"),
    ({"kind": "oco", "above": "49500", "below": "49000"}, "OCO_NOT_BRACKETING"),
    ({"kind": "stop", "trigger": "49000", "size": "0.00002"}, "MIN_NOTIONAL"),
], ids=["stop-wrong-side", "trailing-bps-0", "oco-not-bracketing", "below-min-notional"])
async def test_bad_input_is_denied_with_its_reason_and_nothing_reaches_the_venue(
    sim_rig: SimRigFactory, params: dict[str, Any], reason: str
) -> None:
    """(Every reason code is covered on paper, ``test_protective_orders_paper``; here: not one request.)"""
    s = await sim_rig(params)
    before = s.posts()
    await s.rig.start_and_submit("50000")
    await wait_for(lambda: s.rig.strategy.denials)
    [denied] = s.rig.strategy.denials
    assert denied.reason == reason, denied
    assert s.rig.active() == [] and await s.rig.contingents() == []
    assert s.rig.orders() == [] and s.posts() == before and s.sim_orders() == []
