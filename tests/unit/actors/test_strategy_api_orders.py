"""The strategy API's protective and algorithmic orders: what buy/sell, stop, take_profit,
trailing_stop, oco, oto and submit_list emit, the shape errors they raise, in-flight
accounting by intent id, and the host pushing lists into the intents channel."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from actors.kernel.channel import Channel
from actors.model.market import Bar
from actors.model.orders import Fill, OrderDenied, OrderEvent, OrderStatus, OrderType, Side
from actors.strategy_api import (
    Exit,
    ListKind,
    OrderIntent,
    OrderList,
    Strategy,
    StrategyContext,
    Submission,
    TrailingSpec,
    TriggerSource,
    TwapSpec,
)
from actors.strategy_host import StrategyHost
from actors.strategy_portfolio import TrackingPortfolio
from config.schema.trading import InstrumentSection

D = Decimal
SYM = "XRP/ETH"


class Harness:
    """One strategy instance whose emitter collects what it emits."""

    def __init__(self) -> None:
        self.out: list[Submission] = []
        self.strategy: Strategy[Any] = Strategy(StrategyContext("s1", (SYM,), "1m"), emitter=self.out.append,
                                                portfolio=TrackingPortfolio())


@pytest.fixture
def s() -> Strategy[Any]:
    return Harness().strategy


def event(intent_id: str, status: OrderStatus = OrderStatus.FILLED, parent: str = "") -> OrderEvent:
    return OrderEvent(client_order_id=f"c-{intent_id}", strategy="s1", symbol=SYM, status=status,
                      intent_id=intent_id, parent=parent)


# -- what is emitted ---------------------------------------------------------------------------


def test_buy_with_stop_loss_and_take_profit_builds_bracket_of_entry_and_sell_exits() -> None:
    h = Harness()
    lst = h.strategy.buy(SYM, size=10, stop_loss=0.0018, take_profit=Exit(0.0023, limit_price=0.00229),
                         trigger=TriggerSource.MID, tag="t")
    assert h.out == [lst]
    assert isinstance(lst, OrderList)
    assert (lst.kind, lst.strategy, lst.symbol, lst.list_id, lst.tag) == (ListKind.BRACKET, "s1", SYM, "s1-1", "t")
    entry, take, stop = lst.orders
    assert (entry.side, entry.type, entry.size, entry.intent_id) == (Side.BUY, OrderType.MARKET, D(10), "s1-1.0")
    assert (take.side, take.type, take.size, take.trigger_price, take.limit_price) == (
        Side.SELL, OrderType.TAKE_PROFIT_LIMIT, None, D("0.0023"), D("0.00229"))
    assert (stop.side, stop.type, stop.size, stop.trigger_price, stop.limit_price) == (
        Side.SELL, OrderType.STOP_MARKET, None, D("0.0018"), None)
    assert [o.intent_id for o in lst.orders] == ["s1-1.0", "s1-1.1", "s1-1.2"]
    assert {o.trigger for o in (take, stop)} == {TriggerSource.MID}
    assert all((o.parent, o.client_order_id, o.protective) == ("", "", False) for o in lst.orders)


def test_sell_with_stop_limit_builds_bracket_of_buy_exits() -> None:
    lst = Harness().strategy.sell(SYM, notional=1, type=OrderType.LIMIT, limit_price=0.002,
                                  stop_loss=Exit(0.0022, 0.00221))
    assert isinstance(lst, OrderList)
    entry, stop = lst.orders
    assert (entry.side, entry.type, entry.notional, entry.limit_price) == (
        Side.SELL, OrderType.LIMIT, D(1), D("0.002"))
    assert (stop.side, stop.type, stop.trigger_price, stop.limit_price, stop.size) == (
        Side.BUY, OrderType.STOP_LIMIT, D("0.0022"), D("0.00221"), None)


def test_buy_market_with_trailing_builds_bracket_with_trailing_stop_exit() -> None:
    spec = TrailingSpec(offset_bps=50)
    lst = Harness().strategy.buy(SYM, size=10, trailing=spec, take_profit=0.003)
    assert isinstance(lst, OrderList)
    assert [(o.side, o.type) for o in lst.orders] == [
        (Side.BUY, OrderType.MARKET), (Side.SELL, OrderType.TAKE_PROFIT), (Side.SELL, OrderType.STOP_MARKET)]
    exit_ = lst.orders[2]
    assert (exit_.trailing, exit_.trigger_price, exit_.size) == (spec, None, None)


def test_single_conditional_and_algorithmic_buys_emit_one_intent() -> None:
    h = Harness()
    stop = h.strategy.buy(SYM, size=5, type=OrderType.STOP_MARKET, trigger_price=0.0021)
    trail = h.strategy.sell(SYM, size=5, type=OrderType.STOP_MARKET, trailing=TrailingSpec(offset=D("0.0001")))
    ice = h.strategy.buy(SYM, size=50, type=OrderType.LIMIT, limit_price=0.0019, display_size=10)
    twap = h.strategy.sell(SYM, size=50, twap=TwapSpec(horizon_s=600, interval_s=60))
    assert h.out == [stop, trail, ice, twap]
    assert all(isinstance(o, OrderIntent) for o in h.out)
    assert isinstance(ice, OrderIntent) and ice.display_size == D(10)
    assert [o.intent_id for o in h.out] == ["s1-1", "s1-2", "s1-3", "s1-4"]  # type: ignore[union-attr]


def test_stop_take_profit_trailing_stop_helpers_build_conditional_types() -> None:
    s = Harness().strategy
    assert (s.stop(SYM, Side.SELL, size=5, trigger_price=0.0018).type,
            s.stop(SYM, Side.SELL, size=5, trigger_price=0.0018, limit_price=0.00179).type,
            s.take_profit(SYM, Side.SELL, size=5, trigger_price=0.0023).type,
            s.take_profit(SYM, Side.SELL, size=5, trigger_price=0.0023, limit_price=0.0023).type) == (
        OrderType.STOP_MARKET, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT)
    trail = s.trailing_stop(SYM, Side.SELL, size=5, offset_bps=40, activation_price=0.0021)
    assert (trail.type, trail.trailing, trail.trigger_price) == (
        OrderType.STOP_MARKET, TrailingSpec(offset_bps=40, activation_price=D("0.0021")), None)


@pytest.mark.parametrize(("side", "above", "below"), [
    (Side.SELL, OrderType.TAKE_PROFIT, OrderType.STOP_LIMIT), (Side.BUY, OrderType.STOP_MARKET,
                                                               OrderType.TAKE_PROFIT_LIMIT),
])
def test_oco_legs_typed_by_position_versus_side(side: Side, above: OrderType, below: OrderType) -> None:
    lst = Harness().strategy.oco(SYM, side, size=7, above=0.0023, below=Exit(0.0018, 0.0018))
    assert lst.kind is ListKind.OCO
    assert [(o.side, o.type, o.size) for o in lst.orders] == [(side, above, D(7)), (side, below, D(7))]
    assert [o.trigger_price for o in lst.orders] == [D("0.0023"), D("0.0018")]


def test_oto_of_built_orders_keeps_pending_unsized_and_assigns_ids() -> None:
    h = Harness()
    s = h.strategy
    working = s.build_order(SYM, Side.BUY, size=10, type=OrderType.LIMIT, limit_price=0.0019)
    pending = s.build_order(SYM, Side.SELL, type=OrderType.TAKE_PROFIT, trigger_price=0.0021)
    assert h.out == []  # building emits nothing
    lst = s.oto(working, pending, tag="dip")
    assert h.out == [lst]
    assert (lst.kind, lst.tag, lst.list_id) == (ListKind.OTO, "dip", "s1-1")
    assert [(o.intent_id, o.size) for o in lst.orders] == [("s1-1.0", D(10)), ("s1-1.1", None)]


def test_submit_list_assigns_list_and_intent_ids_and_returns_what_it_emitted() -> None:
    h = Harness()
    s = h.strategy
    legs = (s.build_order(SYM, Side.SELL, size=3, type=OrderType.TAKE_PROFIT, trigger_price=0.0021),
            s.build_order(SYM, Side.SELL, size=3, type=OrderType.STOP_MARKET, trigger_price=0.0019))
    sent = s.submit_list(OrderList(kind=ListKind.OCO, strategy="s1", symbol=SYM, orders=legs, list_id="mine"))
    assert h.out == [sent]
    assert sent.list_id == "s1-1" and [o.intent_id for o in sent.orders] == ["s1-1.0", "s1-1.1"]


# -- shape errors raise; price sides are the risk gate's -------------------------------------------


@pytest.mark.parametrize(("kwargs", "fragment"), [
    ({"type": OrderType.STOP_MARKET}, "needs a trigger_price"),
    ({"type": OrderType.TAKE_PROFIT, "trigger_price": 0}, "needs a trigger_price > 0"),
    ({"type": OrderType.STOP_LIMIT, "trigger_price": 0.0019}, "needs a limit_price"),
    ({"type": OrderType.TAKE_PROFIT_LIMIT, "trigger_price": 0.0019}, "needs a limit_price"),
    ({"type": OrderType.STOP_MARKET, "trigger_price": 0.0019, "limit_price": 0.0019}, "takes no limit_price"),
    ({"trigger_price": 0.0019}, "takes no trigger_price"),
    ({"display_size": 1}, "display_size"),
    ({"type": OrderType.STOP_MARKET, "trigger_price": 0.0019, "display_size": 1}, "display_size"),
    ({"type": OrderType.LIMIT, "limit_price": 0.002, "twap": TwapSpec(horizon_s=60, interval_s=10)}, "twap"),
    ({"type": OrderType.TAKE_PROFIT, "trigger_price": 0.0021, "trailing": TrailingSpec(offset_bps=5)},
     "only a stop trails"),
    ({"type": OrderType.STOP_MARKET, "trigger_price": 0.0019, "trailing": TrailingSpec(offset_bps=5)},
     "activation_price"),
    ({"stop_loss": 0.0018, "trailing": TrailingSpec(offset_bps=5)}, "stop_loss or trailing"),
    ({"type": OrderType.STOP_MARKET, "trigger_price": 0.0021, "stop_loss": 0.0018}, "bracket's entry"),
    ({"display_size": 1, "type": OrderType.LIMIT, "limit_price": 0.002, "take_profit": 0.003}, "bracket's entry"),
    ({"stop_loss": Exit(0.0018, limit_price=0)}, "limit_price > 0"),
])
def test_shape_error_raises_value_error(s: Strategy[Any], kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        s.buy(SYM, size=1, **kwargs)


def test_shape_error_emits_nothing() -> None:
    h = Harness()
    with pytest.raises(ValueError):
        h.strategy.buy(SYM, size=1, take_profit=0.003, stop_loss=Exit(0.0018, limit_price=-1))
    assert h.out == [] and h.strategy.in_flight(SYM) == 0


def test_wrong_side_trigger_not_judged_by_the_api(s: Strategy[Any]) -> None:
    # A buy stop below the market would be denied TRIGGER_WRONG_SIDE by the risk gate;
    # the API knows no market price.
    intent = s.stop(SYM, Side.BUY, size=1, trigger_price=0.000001)
    assert intent.trigger_price == D("0.000001")


@pytest.mark.parametrize(("change", "fragment"), [
    ({"strategy": "other"}, "strategy='s1'"),
    ({"orders": ()}, "needs orders"),
])
def test_submit_list_bad_list_raises(s: Strategy[Any], change: dict[str, Any], fragment: str) -> None:
    leg = s.build_order(SYM, Side.SELL, size=3, type=OrderType.STOP_MARKET, trigger_price=0.0019)
    lst = msgspec.structs.replace(OrderList(kind=ListKind.OCO, strategy="s1", symbol=SYM, orders=(leg, leg)),
                                  **change)
    with pytest.raises(ValueError, match=fragment):
        s.submit_list(lst)


@pytest.mark.parametrize("change", [{"parent": "c1"}, {"client_order_id": "x"}, {"protective": True},
                                    {"symbol": "ETH/BTC"}])
def test_submit_list_with_daemon_fields_or_foreign_order_raises(s: Strategy[Any], change: dict[str, Any]) -> None:
    leg = s.build_order(SYM, Side.SELL, size=3, type=OrderType.STOP_MARKET, trigger_price=0.0019)
    bad = msgspec.structs.replace(leg, **change)
    with pytest.raises(ValueError):
        s.submit_list(OrderList(kind=ListKind.OCO, strategy="s1", symbol=SYM, orders=(leg, bad)))


# -- in flight -----------------------------------------------------------------------------------


def test_plain_intent_in_flight_until_its_own_terminal_event() -> None:
    s = Harness().strategy
    a = s.buy(SYM, size=1)
    b = s.buy(SYM, size=1)
    assert s.in_flight(SYM) == 2
    s.handle_order_event(event(b.intent_id, OrderStatus.ACCEPTED))  # not final
    s.handle_order_event(event("someone-else"))
    assert s.in_flight(SYM) == 2
    s.handle_order_event(event(b.intent_id))
    s.handle_order_event(event(b.intent_id))  # counted once
    assert s.in_flight(SYM) == 1
    s.handle_order_event(OrderDenied(intent=a, reason="MAX_POSITION"))
    assert s.in_flight(SYM) == 0


def test_resting_orders_and_oco_oto_lists_not_in_flight() -> None:
    s = Harness().strategy
    s.stop(SYM, Side.SELL, size=1, trigger_price=0.0018)
    s.trailing_stop(SYM, Side.SELL, size=1, offset_bps=30)
    s.buy(SYM, size=10, type=OrderType.LIMIT, limit_price=0.0019, display_size=2)
    s.buy(SYM, size=10, twap=TwapSpec(horizon_s=60, interval_s=10))
    s.oco(SYM, Side.SELL, size=1, above=0.0023, below=0.0018)
    assert s.in_flight(SYM) == 0
    assert s.is_flat(SYM)


def test_bracket_entry_in_flight_until_its_child_event_children_of_others_settle_nothing() -> None:
    s = Harness().strategy
    lst = s.buy(SYM, size=10, stop_loss=0.0018)
    assert isinstance(lst, OrderList)
    assert s.in_flight(SYM) == 1
    # The stop's released child (an id the strategy never emitted) fills: nothing settles.
    s.handle_order_event(event("c9:stop:1", parent="c9"))
    assert s.in_flight(SYM) == 1
    # The entry, released by the contingent-order manager, keeps the strategy's intent id.
    s.handle_order_event(event(lst.orders[0].intent_id, parent="c9"))
    assert s.in_flight(SYM) == 0


def test_bracket_round_trip_with_a_base_asset_fee_leaves_the_strategy_flat() -> None:
    # The entry's fee is charged in the asset bought, so the exit sells what it credited; the
    # strategy's position counts what is held, so it ends at 0 and the strategy may enter again.
    s = Harness().strategy
    tracking = s.portfolio
    assert isinstance(tracking, TrackingPortfolio)

    def deliver(ev: OrderEvent) -> None:  # what the host does with each order event
        tracking.apply(ev)
        s.handle_order_event(ev)

    def leg(coid: str, status: OrderStatus, side: Side, size: str, fill: str = "", fee: str = "0",
            fee_currency: str = "ETH", intent_id: str = "") -> OrderEvent:
        f = Fill(venue="paper", trade_id=f"t-{coid}", client_order_id=coid, symbol=SYM, side=side,
                 price=D("0.002"), size=D(fill), fee=D(fee), fee_currency=fee_currency) if fill else None
        return OrderEvent(client_order_id=coid, strategy="s1", symbol=SYM, status=status, size=D(size),
                          filled=D(fill or "0"), fill=f, intent_id=intent_id, parent="c9")

    lst = s.buy(SYM, size=10, stop_loss=0.0018, take_profit=0.0023)
    assert isinstance(lst, OrderList)
    deliver(leg("c9:entry", OrderStatus.FILLED, Side.BUY, "10", "10", "0.01", "XRP", lst.orders[0].intent_id))
    assert s.position(SYM) == D("9.99") and s.in_flight(SYM) == 0
    deliver(leg("c9:take:1", OrderStatus.ACCEPTED, Side.SELL, "9.99"))
    deliver(leg("c9:stop:1", OrderStatus.ACCEPTED, Side.SELL, "9.99"))
    assert not s.is_flat(SYM)
    deliver(leg("c9:take:1", OrderStatus.FILLED, Side.SELL, "9.99", "9.99", "0.00002"))
    deliver(leg("c9:stop:1", OrderStatus.CANCELED, Side.SELL, "9.99"))
    assert s.position(SYM) == 0 and s.is_flat(SYM)


def test_bracket_denied_as_a_list_settles_its_entry() -> None:
    s = Harness().strategy
    lst = s.sell(SYM, size=10, take_profit=0.0018)
    assert isinstance(lst, OrderList)
    s.handle_order_event(OrderDenied(intent=lst.orders[0], reason="TRIGGER_WRONG_SIDE"))
    assert s.in_flight(SYM) == 0


def test_event_without_intent_id_settles_oldest_intent_of_symbol() -> None:
    s = Harness().strategy
    s.buy(SYM, size=1)
    s.stop(SYM, Side.SELL, size=1, trigger_price=0.0018)
    s.handle_order_event(event("", OrderStatus.CANCELED))
    assert s.in_flight(SYM) == 0
    s.handle_order_event(event("", OrderStatus.CANCELED))  # nothing left: stays at 0
    assert s.in_flight(SYM) == 0


# -- the host ------------------------------------------------------------------------------------


class BracketEveryBar(Strategy[Any]):
    """Test strategy: a bracketed buy per bar."""

    def on_bar(self, bar: Bar) -> None:
        self.buy(bar.symbol, size=1, stop_loss=0.5, take_profit=2)


async def test_host_pushes_order_lists_into_the_intents_channel() -> None:
    intents: Channel[Submission] = Channel("intents", 16)
    host = StrategyHost(StrategyContext("s1", (SYM,), "1m"), BracketEveryBar,
                        market=Channel("md", 16), bars=Channel("bars", 16), order_events=Channel("ev", 16),
                        intents=intents)
    task = asyncio.create_task(host.main())
    await host.bars.send(Bar(symbol=SYM, ts_ms=0, timeframe="1m", open=1.0, high=1.0, low=1.0, close=1.0,
                             volume=1.0))
    sent = await asyncio.wait_for(intents.recv(), 2.0)
    assert isinstance(sent, OrderList) and sent.kind is ListKind.BRACKET and len(sent.orders) == 3
    host.bars.close()
    host.market.close()
    await asyncio.wait_for(task, 2.0)
    assert host.intents_sent == 1


# -- positions that are not whole steps ---------------------------------------------------------------
def _with_step(position: str) -> tuple[Strategy[Any], list[Submission]]:
    out: list[Submission] = []
    inst = InstrumentSection(base="XRP", quote="ETH", step_size=D("1"), min_qty=D("2"))
    portfolio = TrackingPortfolio()
    portfolio.set_position(SYM, D(position))
    strategy: Strategy[Any] = Strategy(StrategyContext("s1", (SYM,), "1m", instruments={SYM: inst}),
                                       emitter=out.append, portfolio=portfolio)
    return strategy, out


@pytest.mark.parametrize(("position", "tradable", "flat"), [
    ("0", "0", True), ("0.999", "0", True), ("1.999", "0", True),  # below min_qty 2: dust
    ("2.5", "2", False), ("-3.7", "-3", False), ("-1.5", "0", True),
])
def test_tradable_rounds_toward_zero_to_the_step_and_dust_counts_as_flat(
    position: str, tradable: str, flat: bool
) -> None:
    s, _ = _with_step(position)
    assert s.tradable(SYM) == D(tradable) and s.position(SYM) == D(position)
    assert s.is_flat(SYM) is flat and s.is_long(SYM) is (D(tradable) > 0)


@pytest.mark.parametrize(("position", "side", "carry"), [
    ("1.5", Side.BUY, "1.5"),  # long dust: the next long bracket's exits sell it
    ("-1.5", Side.BUY, "0"),  # short dust: not a buy bracket's to sell
    ("-1.5", Side.SELL, "1.5"),
    ("0", Side.BUY, "0"),
])
def test_bracket_carries_the_strategys_dust_on_its_side(position: str, side: Side, carry: str) -> None:
    s, out = _with_step(position)
    order = s.buy if side is Side.BUY else s.sell
    lst = order(SYM, size=10, stop_loss=0.0018 if side is Side.BUY else 0.0025,
                take_profit=0.0023 if side is Side.BUY else 0.0015)
    assert isinstance(lst, OrderList) and out == [lst] and lst.carry == D(carry)
