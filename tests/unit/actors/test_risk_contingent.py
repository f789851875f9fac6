"""RiskGate and conditional orders: routing to the contingent-order manager or the order manager,
the validation reason codes of stops, trailing stops, icebergs, TWAPs and order lists, and the
rules for the orders the contingent-order manager releases (children)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest

from actors.kernel.channel import Channel
from actors.kernel.clock import MarketClock
from actors.model.control import SetTradingState, TradingState, TradingStateChanged
from actors.model.market import Trade
from actors.model.orders import (
    ApprovedIntent,
    ApprovedList,
    CancelAll,
    ListKind,
    OrderDenied,
    OrderIntent,
    OrderList,
    OrderType,
    Side,
    TrailingSpec,
    TwapSpec,
)
from actors.ports.portfolio import PortfolioView
from actors.risk.checks import Reason
from actors.risk.risk_gate import GateInput, RiskGate
from adapters.storage.store import Store
from config.schema.trading import InstrumentSection, RiskSection

D = Decimal
SYM = "XRP/ETH"
PRICE = 0.002  # the reference price of every test (last trade)
T = TypeVar("T")
INSTRUMENTS = {SYM: InstrumentSection(base="XRP", quote="ETH", min_notional=D("0.01"))}
ContingentInbox = ApprovedIntent | ApprovedList | CancelAll


class Portfolio:
    """Stands in for the order manager's published account (a ``PortfolioSource``)."""

    def __init__(self, **fields: Any) -> None:
        fields.setdefault("balances", {"ETH": D("10"), "XRP": D("500")})
        fields.setdefault("positions", {SYM: D("500")})
        self.view = PortfolioView(version=1, **fields)

    @property
    def version(self) -> int:
        return self.view.version

    def current(self) -> PortfolioView:
        return self.view


@dataclasses.dataclass
class Rig:
    gate: RiskGate
    intents: Channel[GateInput]
    orders: Channel[ApprovedIntent | ApprovedList]
    contingent: Channel[ContingentInbox]
    strategy: Channel[OrderDenied]
    states: Channel[TradingStateChanged]
    store: Store

    def quiet(self) -> None:
        """Nothing reached the order manager or the contingent-order manager."""
        assert self.orders.try_recv() is None
        assert self.contingent.try_recv() is None


async def recv(ch: Channel[T]) -> T:
    return await asyncio.wait_for(ch.recv(), 2.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "aaiti.sqlite")
    yield s
    await s.close()


def make_rig(store: Store, risk: RiskSection | None = None, *, with_contingent: bool = True,
             portfolio: Portfolio | None = None) -> Rig:
    intents: Channel[GateInput] = Channel("intents", 64)
    orders: Channel[ApprovedIntent | ApprovedList] = Channel("orders", 64)
    contingent: Channel[ContingentInbox] = Channel("contingent", 64)
    strategy: Channel[OrderDenied] = Channel("strategy", 64)
    states: Channel[TradingStateChanged] = Channel("states", 16)
    clock = MarketClock(1_700_000_000_000)
    gate = RiskGate(
        intents=intents, orders=orders, strategy_events=strategy, state_events=states,
        risk=risk or RiskSection(), instruments=INSTRUMENTS, portfolio=portfolio or Portfolio(), events=store,
        state_store=store, clock=clock, process_time=lambda: 1000.0,
        contingent=contingent if with_contingent else None,
    )
    gate.on_market(Trade(symbol=SYM, ts_ms=1_000, price=PRICE, size=10.0, side="buy"))
    return Rig(gate, intents, orders, contingent, strategy, states, store)


@pytest.fixture
async def running(store: Store) -> AsyncIterator[Rig]:
    rig = make_rig(store)
    task = asyncio.create_task(rig.gate.main())
    yield rig
    rig.intents.close()
    await asyncio.wait_for(task, 2.0)


def order(side: Side = Side.SELL, type: OrderType = OrderType.MARKET, size: str | None = "100",
          **kw: Any) -> OrderIntent:
    kw.setdefault("intent_id", "i1")
    return OrderIntent(strategy="s1", symbol=SYM, side=side, type=type, size=D(size) if size else None, **kw)


def stop(side: Side = Side.SELL, trigger: str = "0.0019", size: str | None = "100", **kw: Any) -> OrderIntent:
    return order(side, OrderType.STOP_MARKET, size, trigger_price=D(trigger), **kw)


def tp(side: Side = Side.SELL, trigger: str = "0.0021", size: str | None = "100", **kw: Any) -> OrderIntent:
    return order(side, OrderType.TAKE_PROFIT, size, trigger_price=D(trigger), **kw)


def olist(kind: ListKind, *orders: OrderIntent, symbol: str = SYM) -> OrderList:
    return OrderList(kind=kind, strategy="s1", symbol=symbol, orders=orders, list_id="L1")


def bracket(*exits: OrderIntent, entry: OrderIntent | None = None) -> OrderList:
    return olist(ListKind.BRACKET, entry or order(Side.BUY, intent_id="L1.0"), *exits)


def child(side: Side = Side.SELL, size: str = "100", *, protective: bool = True, **kw: Any) -> OrderIntent:
    return order(side, size=size, parent="c1", client_order_id="c1-x", protective=protective, **kw)


# -- routing -----------------------------------------------------------------------------------


async def test_plain_intent_with_contingent_wired_goes_to_order_manager(running: Rig) -> None:
    await running.intents.send(order(Side.BUY))
    approved = await recv(running.orders)
    assert isinstance(approved, ApprovedIntent) and approved.size == D("100")
    assert running.contingent.try_recv() is None


async def test_stop_intent_approved_to_contingent_inbox_not_order_manager(running: Rig) -> None:
    intent = stop()
    await running.intents.send(intent)
    approved = await recv(running.contingent)
    assert isinstance(approved, ApprovedIntent)
    assert (approved.intent, approved.size, approved.reference_price) == (intent, D("100"), D("0.002"))
    assert running.orders.try_recv() is None


@pytest.mark.parametrize("intent", [
    order(Side.BUY, OrderType.LIMIT, "100", limit_price=D("0.0019"), display_size=D("20")),
    order(Side.BUY, twap=TwapSpec(horizon_s=600, interval_s=60, max_participation=0.1)),
    order(Side.SELL, OrderType.STOP_MARKET, trailing=TrailingSpec(offset_bps=50)),
    order(Side.SELL, OrderType.STOP_LIMIT, trigger_price=D("0.0019"), limit_price=D("0.00189")),
    order(Side.BUY, OrderType.TAKE_PROFIT_LIMIT, trigger_price=D("0.0019"), limit_price=D("0.0019")),
], ids=["iceberg", "twap", "trailing", "stop_limit", "buy_take_profit_limit"])
async def test_algorithmic_and_conditional_intents_approved_to_contingent(running: Rig,
                                                                         intent: OrderIntent) -> None:
    await running.intents.send(intent)
    approved = await recv(running.contingent)
    assert isinstance(approved, ApprovedIntent) and approved.intent == intent
    assert running.orders.try_recv() is None


async def test_bracket_approved_to_contingent_with_entry_size_and_following_exits(running: Rig) -> None:
    lst = bracket(tp(size=None, intent_id="L1.1"), stop(size=None, intent_id="L1.2"))
    await running.intents.send(lst)
    approved = await recv(running.contingent)
    assert isinstance(approved, ApprovedList)
    assert (approved.order_list, approved.sizes, approved.reference_price) == (lst, (D("100"), None, None), D("0.002"))
    assert running.orders.try_recv() is None


async def test_bracket_exits_judged_against_limit_entry_price_approved(running: Rig) -> None:
    entry = order(Side.BUY, OrderType.LIMIT, limit_price=D("0.00195"), intent_id="L1.0")
    # Below the market (0.002) but above the entry's price: a take-profit of what the entry buys.
    await running.intents.send(bracket(tp(trigger="0.00198", size=None), stop(trigger="0.0019", size=None),
                                       entry=entry))
    approved = await recv(running.contingent)
    assert isinstance(approved, ApprovedList) and approved.sizes == (D("100"), None, None)


async def test_oco_and_oto_approved_to_contingent_with_sizes(running: Rig) -> None:
    await running.intents.send(olist(ListKind.OCO, tp(), stop()))
    oco = await recv(running.contingent)
    assert isinstance(oco, ApprovedList) and oco.sizes == (D("100"), D("100"))
    working = order(Side.BUY, OrderType.LIMIT, limit_price=D("0.0019"))
    await running.intents.send(olist(ListKind.OTO, working, tp(trigger="0.00195", size=None)))
    oto = await recv(running.contingent)
    assert isinstance(oto, ApprovedList) and oto.sizes == (D("100"), D("100"))  # pending: the working size


async def test_released_child_checked_and_sent_to_order_manager(running: Rig) -> None:
    await running.intents.send(child())
    approved = await recv(running.orders)
    assert isinstance(approved, ApprovedIntent) and approved.intent.parent == "c1"
    assert running.contingent.try_recv() is None


async def test_native_list_of_children_goes_to_order_manager_as_approved_list(running: Rig) -> None:
    legs = (tp(parent="c1", protective=True), stop(parent="c1", protective=True))
    await running.intents.send(olist(ListKind.OCO, *legs))
    approved = await recv(running.orders)
    assert isinstance(approved, ApprovedList) and approved.sizes == (D("100"), D("100"))
    assert running.contingent.try_recv() is None


@pytest.mark.parametrize("item", [stop(), olist(ListKind.OCO, tp(), stop())], ids=["stop", "oco"])
async def test_conditional_without_contingent_manager_denied_unavailable(store: Store, item: GateInput) -> None:
    rig = make_rig(store, with_contingent=False)
    out = await rig.gate.submit(item)
    assert out.reason == Reason.CONTINGENT_UNAVAILABLE  # type: ignore[union-attr]
    denied = await recv(rig.strategy)
    assert denied.reason == Reason.CONTINGENT_UNAVAILABLE
    assert rig.orders.try_recv() is None


# -- bad input: one reason code each, nothing reaches either manager ---------------------------

BAD: list[tuple[str, GateInput, Reason]] = [
    ("sell_stop_above_market", stop(trigger="0.0021"), Reason.TRIGGER_WRONG_SIDE),
    ("buy_stop_below_market", stop(Side.BUY, trigger="0.0019"), Reason.TRIGGER_WRONG_SIDE),
    ("sell_take_profit_below_market", tp(trigger="0.0019"), Reason.TRIGGER_WRONG_SIDE),
    ("stop_at_market", stop(trigger="0.002"), Reason.TRIGGER_WRONG_SIDE),
    ("bracket_stop_above_entry", bracket(stop(trigger="0.0021", size=None)), Reason.TRIGGER_WRONG_SIDE),
    ("bracket_take_profit_below_entry", bracket(tp(trigger="0.0019", size=None)), Reason.TRIGGER_WRONG_SIDE),
    ("trailing_offset_zero", order(type=OrderType.STOP_MARKET, trailing=TrailingSpec(offset=D(0))),
     Reason.TRAILING_INVALID),
    ("trailing_both_offsets", order(type=OrderType.STOP_MARKET, trailing=TrailingSpec(offset=D("0.0001"),
                                                                                     offset_bps=10)),
     Reason.TRAILING_INVALID),
    ("trailing_no_offset", order(type=OrderType.STOP_MARKET, trailing=TrailingSpec()), Reason.TRAILING_INVALID),
    ("trailing_negative_bps", order(type=OrderType.STOP_MARKET, trailing=TrailingSpec(offset_bps=-5)),
     Reason.TRAILING_INVALID),
    ("sell_trailing_activation_below_market",
     order(type=OrderType.STOP_MARKET, trailing=TrailingSpec(offset_bps=50, activation_price=D("0.0019"))),
     Reason.TRAILING_INVALID),
    ("trailing_take_profit", order(type=OrderType.TAKE_PROFIT, trigger_price=D("0.0021"),
                                   trailing=TrailingSpec(offset_bps=50)), Reason.TRAILING_INVALID),
    ("oco_two_stops", olist(ListKind.OCO, stop(), stop(trigger="0.0018")), Reason.OCO_NOT_BRACKETING),
    ("oco_sides_differ", olist(ListKind.OCO, tp(), stop(Side.BUY, trigger="0.0021")), Reason.OCO_NOT_BRACKETING),
    ("oco_take_profit_below_market", olist(ListKind.OCO, tp(trigger="0.00195"), stop()),
     Reason.OCO_NOT_BRACKETING),
    ("oco_limit_leg", olist(ListKind.OCO, order(type=OrderType.LIMIT, limit_price=D("0.0021")), stop()),
     Reason.OCO_NOT_BRACKETING),
    ("iceberg_display_zero", order(Side.BUY, OrderType.LIMIT, limit_price=D("0.002"), display_size=D(0)),
     Reason.INVALID_DISPLAY_SIZE),
    ("iceberg_display_whole_size", order(Side.BUY, OrderType.LIMIT, limit_price=D("0.002"), display_size=D(100)),
     Reason.INVALID_DISPLAY_SIZE),
    ("iceberg_display_below_min_qty",
     order(Side.BUY, OrderType.LIMIT, limit_price=D("0.002"), display_size=D("0.5")), Reason.INVALID_DISPLAY_SIZE),
    ("iceberg_on_market_order", order(Side.BUY, display_size=D(10)), Reason.INVALID_DISPLAY_SIZE),
    ("twap_interval_zero", order(twap=TwapSpec(horizon_s=60, interval_s=0)), Reason.INVALID_TWAP),
    ("twap_interval_over_horizon", order(twap=TwapSpec(horizon_s=60, interval_s=120)), Reason.INVALID_TWAP),
    ("twap_participation_zero", order(twap=TwapSpec(horizon_s=60, interval_s=10, max_participation=0.0)),
     Reason.INVALID_TWAP),
    ("twap_participation_over_one", order(twap=TwapSpec(horizon_s=60, interval_s=10, max_participation=1.5)),
     Reason.INVALID_TWAP),
    ("list_empty", olist(ListKind.OCO), Reason.INVALID_ORDER_LIST),
    ("oco_three_legs", olist(ListKind.OCO, tp(), stop(), stop(trigger="0.0018")), Reason.INVALID_ORDER_LIST),
    ("oco_unequal_sizes", olist(ListKind.OCO, tp(size="50"), stop()), Reason.INVALID_ORDER_LIST),
    ("bracket_sized_exit", bracket(stop()), Reason.INVALID_ORDER_LIST),
    ("bracket_exit_same_side", bracket(stop(Side.BUY, trigger="0.0021", size=None)), Reason.INVALID_ORDER_LIST),
    ("bracket_two_stops", bracket(stop(size=None), stop(trigger="0.0018", size=None)), Reason.INVALID_ORDER_LIST),
    ("bracket_stop_entry", bracket(tp(size=None), entry=stop(Side.BUY, trigger="0.0021")),
     Reason.INVALID_ORDER_LIST),
    ("list_order_of_other_symbol", olist(ListKind.OCO, tp(), msgspec.structs.replace(stop(), symbol="ETH/BTC")),
     Reason.INVALID_ORDER_LIST),
    ("list_with_daemon_fields", olist(ListKind.OCO, tp(client_order_id="x"), stop()), Reason.INVALID_ORDER_LIST),
    ("stop_without_trigger", order(type=OrderType.STOP_MARKET), Reason.INVALID_INTENT),
    ("stop_limit_without_limit", order(type=OrderType.STOP_LIMIT, trigger_price=D("0.0019")),
     Reason.INVALID_INTENT),
    ("stop_leg_off_step", stop(size="0.5"), Reason.QTY_PRECISION),
    ("stop_notional_below_min_at_trigger", stop(trigger="0.0009", size="10"), Reason.MIN_NOTIONAL),
    ("bracket_stop_below_min_notional_at_stop", bracket(stop(trigger="0.0015", size=None), entry=order(
        Side.BUY, size="6", intent_id="L1.0")), Reason.MIN_NOTIONAL),
    ("trigger_off_tick", stop(trigger="0.00190000001"), Reason.PRICE_PRECISION),
    ("stop_limit_far_from_trigger", order(type=OrderType.STOP_LIMIT, trigger_price=D("0.0019"),
                                          limit_price=D("0.0010")), Reason.PRICE_COLLAR),
]


@pytest.mark.parametrize(("item", "reason"), [(i, r) for _, i, r in BAD], ids=[n for n, _, _ in BAD])
async def test_bad_conditional_input_denied_with_reason_before_order_manager(running: Rig, item: GateInput,
                                                                             reason: Reason) -> None:
    await running.intents.send(item)
    denied = await recv(running.strategy)
    assert denied.reason == reason, denied
    running.quiet()


async def test_denied_list_reported_and_stored_with_its_first_order(running: Rig) -> None:
    lst = bracket(stop(trigger="0.0021", size=None, intent_id="L1.1"))
    await running.intents.send(lst)
    denied = await recv(running.strategy)
    assert denied.intent == lst.orders[0] and denied.intent.intent_id == "L1.0"
    rows = await running.store.risk_events()
    assert [(r.reason, r.intent) for r in rows] == [(Reason.TRIGGER_WRONG_SIDE, lst.orders[0])]


async def test_list_counts_once_against_the_order_rate(store: Store) -> None:
    rig = make_rig(store, RiskSection(max_orders_per_minute=2))
    oco = await rig.gate.submit(olist(ListKind.OCO, tp(), stop()))
    assert oco.sizes == (D("100"), D("100"))  # type: ignore[union-attr]
    assert (await rig.gate.submit(order(Side.BUY))).size == D("100")  # type: ignore[union-attr]
    third = await rig.gate.submit(order(Side.BUY, intent_id="i3"))
    assert third.reason == Reason.ORDER_RATE  # type: ignore[union-attr]


# -- children ----------------------------------------------------------------------------------


async def _pause(rig: Rig, state: TradingState, kill: bool | None = None) -> None:
    assert await rig.gate.command(SetTradingState(state=state, reason="test", kill_switch=kill))


async def test_protective_child_in_reducing_passes_where_a_plain_sell_is_denied(store: Store) -> None:
    # A sell of the whole position is already open (another strategy's, paid from other XRP):
    # one more plain sell would not reduce the position, but the protective exit must not be
    # held back by the pause.
    rig = make_rig(store, portfolio=Portfolio(open_sell={SYM: D("500")}, open_orders=1,
                                              balances={"ETH": D("10"), "XRP": D("1000")}))
    await _pause(rig, TradingState.REDUCING)
    plain = await rig.gate.submit(order(Side.SELL, size="100"))
    assert plain.reason == Reason.REDUCE_ONLY  # type: ignore[union-attr]
    out = await rig.gate.submit(child(size="100"))
    assert out.size == D("100")  # type: ignore[union-attr]
    approved = await recv(rig.orders)
    assert isinstance(approved, ApprovedIntent) and approved.intent.protective


@pytest.mark.parametrize(("side", "size", "position"), [
    (Side.BUY, "100", "500"),  # a buy stop: it opens or grows a position
    (Side.SELL, "600", "50"),  # more than the position: it would flip it
    (Side.SELL, "100", "0"),  # the position it protected is gone
], ids=["buy-grows-long", "sell-flips", "nothing-to-protect"])
async def test_protective_claim_that_does_not_reduce_gets_every_check(
    store: Store, side: Side, size: str, position: str
) -> None:
    # "protective" is the manager's claim; exemptions hold only for an order that shrinks the position.
    rig = make_rig(store, RiskSection(max_position=D("10"), max_order_notional=D("100")),
                   portfolio=Portfolio(positions={SYM: D(position)}, balances={"ETH": D("10"), "XRP": D("1000")}))
    await _pause(rig, TradingState.REDUCING)
    out = await rig.gate.submit(child(side, size=size))
    assert out.reason == Reason.REDUCE_ONLY  # type: ignore[union-attr]
    await _pause(rig, TradingState.ACTIVE)
    out = await rig.gate.submit(child(side, size=size))
    assert out.reason == Reason.MAX_POSITION  # type: ignore[union-attr]
    rig.quiet()


async def test_non_protective_child_in_reducing_denied_reduce_only(store: Store) -> None:
    rig = make_rig(store)
    await _pause(rig, TradingState.REDUCING)
    out = await rig.gate.submit(child(Side.BUY, protective=False))  # a bracket's entry
    assert out.reason == Reason.REDUCE_ONLY  # type: ignore[union-attr]


async def test_children_exempt_from_order_rate_protective_also_from_open_orders(store: Store) -> None:
    rig = make_rig(store, RiskSection(max_orders_per_minute=1, max_open_orders=3),
                   portfolio=Portfolio(open_orders=1))
    await rig.gate.submit(order(Side.BUY))  # the one order of this minute (2 open now)
    assert (await rig.gate.submit(order(Side.BUY, intent_id="i2"))).reason == Reason.ORDER_RATE  # type: ignore[union-attr]
    slice_ = await rig.gate.submit(child(Side.BUY, size="10", protective=False))  # a TWAP slice (3 open now)
    assert slice_.size == D("10")  # type: ignore[union-attr]
    another = await rig.gate.submit(child(Side.BUY, size="10", protective=False))
    assert another.reason == Reason.MAX_OPEN_ORDERS  # type: ignore[union-attr]
    assert (await rig.gate.submit(child())).size == D("100")  # type: ignore[union-attr]


async def test_protective_child_exempt_from_collar_and_position_limits(store: Store) -> None:
    rig = make_rig(store, RiskSection(max_position=D("10"), max_order_notional=D("0.1"), price_collar_bps=10))
    far = child(type=OrderType.LIMIT, size="500", limit_price=D("0.0015"))
    assert (await rig.gate.submit(far)).size == D("500")  # type: ignore[union-attr]
    same = child(type=OrderType.LIMIT, size="10", limit_price=D("0.0015"), protective=False)
    assert (await rig.gate.submit(same)).reason == Reason.PRICE_COLLAR  # type: ignore[union-attr]


@pytest.mark.parametrize(("state", "kill", "reason"), [
    (TradingState.HALTED, None, Reason.TRADING_HALTED), (TradingState.HALTED, True, Reason.KILL_SWITCH),
])
async def test_halted_or_killed_denies_protective_children(store: Store, state: TradingState, kill: bool | None,
                                                           reason: Reason) -> None:
    rig = make_rig(store)
    await _pause(rig, state, kill)
    out = await rig.gate.submit(child())
    assert out.reason == reason  # type: ignore[union-attr]
    native = await rig.gate.submit(olist(ListKind.OCO, tp(parent="c1", protective=True),
                                         stop(parent="c1", protective=True)))
    assert native.reason == reason  # type: ignore[union-attr]
    assert rig.orders.try_recv() is None


async def test_kill_sends_cancel_all_to_contingent_once(running: Rig) -> None:
    await running.gate.command(SetTradingState(state=TradingState.HALTED, reason="operator", kill_switch=True))
    assert await recv(running.contingent) == CancelAll(reason="kill switch")
    await running.gate.command(SetTradingState(state=TradingState.HALTED, reason="again", kill_switch=True))
    await running.gate.command(SetTradingState(state=TradingState.ACTIVE, reason="resume", kill_switch=False))
    assert running.contingent.try_recv() is None


async def test_halt_without_kill_sends_no_cancel_all(running: Rig) -> None:
    await running.gate.command(SetTradingState(state=TradingState.HALTED, reason="operator"))
    assert running.contingent.try_recv() is None
