"""RiskGate at actor level: channels, stored denials, persisted kill switch, state transitions, reload,
business time (order rate per market minute) and the published account it reads."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from actors.kernel import clock as clock_module
from actors.kernel.channel import Channel
from actors.kernel.clock import MarketClock, WallClock
from actors.model.control import ConfigChanged, SetTradingState, TradingState, TradingStateChanged
from actors.model.market import Quote, Trade
from actors.model.orders import ApprovedIntent, Balance, OrderDenied, OrderIntent, OrderType, Side
from actors.ports.portfolio import PortfolioView
from actors.risk.checks import Approval, Denial, Reason
from actors.risk.portfolio import PortfolioReader, portfolio_snapshot
from actors.risk.risk_gate import RiskGate
from adapters.storage.store import Store
from config.schema.trading import InstrumentSection, RiskSection

D = Decimal
SYM = "XRP/ETH"
T = TypeVar("T")
INSTRUMENTS = {SYM: InstrumentSection(base="XRP", quote="ETH", min_notional=D("0.01"))}


class Clocks:
    """Injected business clock (market time, moved by hand) and process time."""

    def __init__(self, clock: MarketClock | None = None) -> None:
        self.clock = clock or MarketClock(1_700_000_000_000)
        self.mono = 1000.0
        self.step_s = 0.0  # process time that passes on every read

    def process_time(self) -> float:
        self.mono += self.step_s
        return self.mono

    def advance_s(self, seconds: float) -> None:
        self.clock.advance(self.clock.now_ms() + int(seconds * 1000))


class Portfolio:
    """Stands in for the order manager's published account (a ``PortfolioSource``)."""

    def __init__(self) -> None:
        self.view = PortfolioView(version=1, balances={"ETH": D("10"), "XRP": D("0")})

    @property
    def version(self) -> int:
        return self.view.version

    def current(self) -> PortfolioView:
        return self.view

    def publish(self, **fields: Any) -> None:
        """A new version of the account."""
        self.view = PortfolioView(version=self.view.version + 1, **fields)


@dataclasses.dataclass
class Rig:
    gate: RiskGate
    intents: Channel[OrderIntent]
    control: Channel[Any]
    orders: Channel[ApprovedIntent]
    strategy: Channel[OrderDenied]
    states: Channel[TradingStateChanged]
    portfolio: Portfolio
    clocks: Clocks
    store: Store


def intent(side: Side = Side.BUY, size: str = "100", **kw: Any) -> OrderIntent:
    return OrderIntent(strategy="s1", symbol=SYM, side=side, size=D(size), intent_id="i1", **kw)


def size_of(out: Approval | Denial) -> Decimal:
    assert isinstance(out, Approval), out
    return out.size


def denial_of(out: Approval | Denial) -> Denial:
    assert isinstance(out, Denial), out
    return out


async def recv(ch: Channel[T]) -> T:
    return await asyncio.wait_for(ch.recv(), 2.0)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "aaiti.sqlite")
    yield s
    await s.close()


def make_rig(store: Store, risk: RiskSection | None = None, **kw: Any) -> Rig:
    clocks = kw.pop("clocks", None) or Clocks()
    portfolio = kw.pop("portfolio", None) or Portfolio()
    intents: Channel[OrderIntent] = Channel("intents", 64)
    control: Channel[Any] = Channel("control", 16)
    orders: Channel[ApprovedIntent] = Channel("orders", 64)
    strategy: Channel[OrderDenied] = Channel("strategy", 64)
    states: Channel[TradingStateChanged] = Channel("states", 16)
    gate = RiskGate(
        intents=intents,
        control=control,
        orders=orders,
        strategy_events=strategy,
        state_events=states,
        risk=risk or RiskSection(),
        instruments=INSTRUMENTS,
        portfolio=portfolio,
        events=store,
        state_store=store,
        clock=clocks.clock,
        process_time=clocks.process_time,
        **kw,
    )
    gate.on_market(Trade(symbol=SYM, ts_ms=1_000, price=0.002, size=10.0, side="buy"))
    return Rig(gate, intents, control, orders, strategy, states, portfolio, clocks, store)


@pytest.fixture
async def running(store: Store) -> AsyncIterator[Rig]:
    rig = make_rig(store)
    task = asyncio.create_task(rig.gate.main())
    yield rig
    rig.intents.close()
    await asyncio.wait_for(task, 2.0)


# -- flow through the channels -------------------------------------------------------------------


async def test_intent_within_limits_approved_to_order_channel(running: Rig) -> None:
    await running.intents.send(intent())
    approved = await recv(running.orders)
    assert (approved.size, approved.reference_price) == (D("100"), D("0.002"))
    assert approved.intent.intent_id == "i1"


async def test_notional_intent_approved_with_size_rounded_down(running: Rig) -> None:
    await running.intents.send(
        OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, notional=D("0.3333"), intent_id="n1")
    )
    approved = await recv(running.orders)
    assert approved.size == D("166")  # 0.3333 / 0.002 = 166.65


async def test_denial_stored_with_reason_and_limit_and_sent_to_strategy(running: Rig) -> None:
    await running.intents.send(intent(size="1000"))  # 2 ETH > max_order_notional 1
    denied = await recv(running.strategy)
    assert (denied.reason, denied.limit) == (Reason.MAX_ORDER_NOTIONAL, "max_order_notional=1")
    assert denied.intent.intent_id == "i1"
    rows = await running.store.risk_events()
    assert len(rows) == 1
    assert (rows[0].reason, rows[0].limit, rows[0].symbol, rows[0].strategy) == (
        "MAX_ORDER_NOTIONAL", "max_order_notional=1", SYM, "s1"
    )
    assert rows[0].intent == denied.intent
    assert running.orders.try_recv() is None


async def test_kill_command_overtakes_queued_intents_and_publishes_state(running: Rig) -> None:
    await running.control.send(SetTradingState(state=TradingState.HALTED, reason="operator", kill_switch=True))
    changed = await recv(running.states)
    assert (changed.state, changed.previous, changed.kill_switch) == (
        TradingState.HALTED, TradingState.ACTIVE, True
    )
    await running.intents.send(intent())
    denied = await recv(running.strategy)
    assert denied.reason == Reason.KILL_SWITCH


# -- kill switch persistence ---------------------------------------------------------------------


async def test_kill_switch_persisted_across_restart_and_lifted_only_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "aaiti.sqlite"
    store = await Store.open(path)
    gate = make_rig(store).gate
    await gate.on_start()
    assert await gate.command(SetTradingState(state=TradingState.HALTED, reason="kill", kill_switch=True))
    await store.close()

    store = await Store.open(path)  # the daemon restarts
    try:
        rig = make_rig(store)
        await rig.gate.on_start()
        assert (rig.gate.trading_state, rig.gate.kill_switch) == (TradingState.HALTED, True)
        denial = await rig.gate.submit(intent())
        assert denial_of(denial).reason == Reason.KILL_SWITCH
        # a plain resume does not lift the kill switch
        assert not await rig.gate.command(SetTradingState(state=TradingState.ACTIVE, reason="resume"))
        assert (rig.gate.trading_state, rig.gate.kill_switch) == (TradingState.HALTED, True)
        # an explicit one does
        assert await rig.gate.command(
            SetTradingState(state=TradingState.ACTIVE, reason="resume", kill_switch=False)
        )
        assert (rig.gate.trading_state, rig.gate.kill_switch) == (TradingState.ACTIVE, False)
        audit = [e.kind for e in await store.audit_entries()]
        assert "risk.command_refused" in audit
        assert audit.count("risk.trading_state_changed") == 2
    finally:
        await store.close()

    store = await Store.open(path)
    try:
        gate = make_rig(store).gate
        await gate.on_start()
        assert (gate.trading_state, gate.kill_switch) == (TradingState.ACTIVE, False)
    finally:
        await store.close()


async def test_unreadable_persisted_state_starts_halted_with_kill_switch(store: Store) -> None:
    await store.set_state("risk_gate", {"state": "SIDEWAYS"})
    gate = make_rig(store).gate
    await gate.on_start()
    assert (gate.trading_state, gate.kill_switch) == (TradingState.HALTED, True)


# -- pause / resume / halt ------------------------------------------------------------------------


async def test_pause_allows_only_reducing_orders_then_resume_allows_all(store: Store) -> None:
    rig = make_rig(store)
    rig.portfolio.publish(positions={SYM: D("300")}, balances={"ETH": D("10"), "XRP": D("300")})
    gate = rig.gate
    assert await gate.command(SetTradingState(state=TradingState.REDUCING, reason="pause"))
    changed = rig.states.try_recv()
    assert changed is not None and changed.state is TradingState.REDUCING
    buy = await gate.submit(intent(Side.BUY))
    assert denial_of(buy).reason == Reason.REDUCE_ONLY
    sell = await gate.submit(intent(Side.SELL, "200"))
    assert size_of(sell) == D("200")
    assert await gate.command(SetTradingState(state=TradingState.ACTIVE, reason="resume"))
    assert gate.trading_state is TradingState.ACTIVE
    assert size_of(await gate.submit(intent(Side.BUY))) == D("100")
    resumed = rig.states.try_recv()
    assert resumed is not None and resumed.state is TradingState.ACTIVE


async def test_halt_denies_everything_until_resumed(store: Store) -> None:
    rig = make_rig(store)
    assert await rig.gate.command(SetTradingState(state=TradingState.HALTED, reason="halt"))
    denied = await rig.gate.submit(intent(Side.BUY))
    assert denial_of(denied).reason == Reason.TRADING_HALTED
    assert await rig.gate.command(SetTradingState(state=TradingState.ACTIVE, reason="resume"))
    assert size_of(await rig.gate.submit(intent())) == D("100")


async def test_drawdown_breach_halts_and_resume_resets_peak(store: Store) -> None:
    rig = make_rig(store)
    rig.portfolio.publish(balances={"ETH": D("10")})  # equity 10 ETH
    assert size_of(await rig.gate.submit(intent())) == D("100")
    rig.portfolio.publish(balances={"ETH": D("7.9")})
    rig.clocks.advance_s(86_400)  # next day: daily loss baseline resets, the peak does not
    denied = await rig.gate.submit(intent())
    assert denial_of(denied).reason == Reason.MAX_DRAWDOWN
    assert rig.gate.trading_state is TradingState.HALTED
    changed = rig.states.try_recv()
    assert changed is not None and changed.state is TradingState.HALTED
    assert denial_of(await rig.gate.submit(intent())).reason == Reason.TRADING_HALTED
    assert await rig.gate.command(SetTradingState(state=TradingState.ACTIVE, reason="acknowledged"))
    assert rig.gate.snapshot().equity_peak == D("7.9")
    assert size_of(await rig.gate.submit(intent())) == D("100")


async def test_daily_loss_periodic_check_halts_without_intents(store: Store) -> None:
    rig = make_rig(store)
    rig.portfolio.publish(balances={"ETH": D("10")})
    assert await rig.gate.check_loss_limits() is None
    rig.portfolio.publish(balances={"ETH": D("9.5")})
    breach = await rig.gate.check_loss_limits()
    assert breach is not None and breach.reason == Reason.DAILY_LOSS_LIMIT
    assert rig.gate.trading_state is TradingState.HALTED
    assert "risk.loss_limit" in [e.kind for e in await store.audit_entries()]


async def test_equity_marked_to_market_from_balances(store: Store) -> None:
    rig = make_rig(store)
    rig.portfolio.publish(balances={"ETH": D("1"), "XRP": D("500")})
    await rig.gate.check_loss_limits()
    assert rig.gate.snapshot().equity == D("2.000")


# -- reload, rate, staleness, snapshot -------------------------------------------------------------


async def test_hot_reload_applies_new_limits_at_next_message(store: Store) -> None:
    rig = make_rig(store)
    assert size_of(await rig.gate.submit(intent())) == D("100")
    rig.gate.reload(RiskSection(max_order_notional=D("0.1")))
    denied = await rig.gate.submit(intent())
    assert (denial_of(denied).reason, denial_of(denied).limit) == (
        Reason.MAX_ORDER_NOTIONAL, "max_order_notional=0.1"
    )
    assert rig.gate.snapshot().limits.max_order_notional == D("0.1")


async def test_config_changed_message_reloads_from_provider(store: Store) -> None:
    current = {"risk": RiskSection()}
    rig = make_rig(store, risk_provider=lambda: current["risk"])
    task = asyncio.create_task(rig.gate.main())
    try:
        current["risk"] = RiskSection(max_open_orders=0)
        await rig.control.send(ConfigChanged(version=2))
        await rig.intents.send(intent())
        denied = await recv(rig.strategy)
        assert denied.reason == Reason.MAX_OPEN_ORDERS
    finally:
        rig.intents.close()
        await asyncio.wait_for(task, 2.0)


async def test_order_rate_limit_denied_then_window_rolls_approved(store: Store) -> None:
    rig = make_rig(store, RiskSection(max_orders_per_minute=2))
    assert size_of(await rig.gate.submit(intent())) == D("100")
    assert size_of(await rig.gate.submit(intent())) == D("100")
    assert denial_of(await rig.gate.submit(intent())).reason == Reason.ORDER_RATE
    rig.clocks.advance_s(60.5)
    assert size_of(await rig.gate.submit(intent())) == D("100")


async def test_order_rate_counts_market_minutes_however_fast_wall_time_runs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Wall and process time race ahead a minute on every read: only the gate's business
    # clock (market time here) may decide what falls in one minute.
    fast = itertools.count(1_700_000_000_000, 61_000)
    monkeypatch.setattr(WallClock, "now_ms", lambda self: next(fast))
    monkeypatch.setattr(clock_module, "wall_ms", lambda: next(fast))
    clocks = Clocks()
    clocks.step_s = 61.0
    rig = make_rig(store, RiskSection(max_orders_per_minute=3), clocks=clocks)
    for _ in range(3):  # market seconds 15, 30, 45
        clocks.advance_s(15)
        assert size_of(await rig.gate.submit(intent())) == D("100")
    clocks.advance_s(10)  # second 55: a fourth order within one market minute
    denied = denial_of(await rig.gate.submit(intent()))
    assert (denied.reason, denied.limit) == (Reason.ORDER_RATE, "max_orders_per_minute=3")
    assert rig.gate.snapshot().orders_in_window == 3
    clocks.advance_s(20.5)  # second 75.5: the order of second 15 left the window
    assert size_of(await rig.gate.submit(intent())) == D("100")
    assert denial_of(await rig.gate.submit(intent())).reason == Reason.ORDER_RATE


async def test_stale_symbol_from_feed_provider_denied(store: Store) -> None:
    ages: dict[str, float | None] = {SYM: 500.0}
    age: Callable[[str], float | None] = ages.get
    rig = make_rig(store, data_age=age)
    assert denial_of(await rig.gate.submit(intent())).reason == Reason.STALE_DATA
    ages[SYM] = 1.0
    assert size_of(await rig.gate.submit(intent())) == D("100")


async def test_feed_time_staleness_without_provider_denied(store: Store) -> None:
    rig = make_rig(store)
    rig.gate.on_market(Quote(symbol="ETH/BTC", ts_ms=1_000 + 200_000, bid=0.05, ask=0.0501))
    assert denial_of(await rig.gate.submit(intent())).reason == Reason.STALE_DATA


async def test_limit_order_outside_collar_denied(store: Store) -> None:
    rig = make_rig(store)
    out = await rig.gate.submit(intent(type=OrderType.LIMIT, limit_price=D("0.0025")))
    assert denial_of(out).reason == Reason.PRICE_COLLAR


async def test_snapshot_counts_decisions_by_reason(store: Store) -> None:
    rig = make_rig(store)
    await rig.gate.submit(intent())
    await rig.gate.submit(intent(size="1000"))
    await rig.gate.submit(intent(size="1000"))
    await rig.gate.submit(intent(size="0.5"))
    snap = rig.gate.snapshot()
    assert (snap.decisions, snap.approved, snap.denied) == (4, 1, 3)
    assert snap.denied_by_reason == {"MAX_ORDER_NOTIONAL": 2, "QTY_PRECISION": 1}
    assert snap.orders_in_window == 1
    assert snap.state is TradingState.ACTIVE and not snap.kill_switch


# -- approvals not yet visible in the order manager's snapshot -------------------------------------


async def test_burst_counts_pending_approvals_against_open_orders_denied(store: Store) -> None:
    rig = make_rig(store, RiskSection(max_open_orders=2, pending_approval_ttl_s=1.0))
    assert size_of(await rig.gate.submit(intent())) == D("100")
    assert size_of(await rig.gate.submit(intent())) == D("100")
    assert denial_of(await rig.gate.submit(intent())).reason == Reason.MAX_OPEN_ORDERS
    rig.clocks.mono += 1.5  # the approvals age out (the order manager would show them by now)
    assert size_of(await rig.gate.submit(intent())) == D("100")


async def test_pending_buys_reserve_cash_denied_insufficient(store: Store) -> None:
    rig = make_rig(store)
    rig.portfolio.publish(balances={"ETH": D("0.3")})
    assert size_of(await rig.gate.submit(intent())) == D("100")  # ~0.2012 ETH reserved
    assert denial_of(await rig.gate.submit(intent())).reason == Reason.INSUFFICIENT_CASH


async def test_pending_approval_released_once_order_manager_shows_it(store: Store) -> None:
    rig = make_rig(store, RiskSection(max_open_orders=2, pending_approval_ttl_s=60.0))
    await rig.gate.submit(OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, size=D("100"), intent_id="a"))
    rig.portfolio.publish(open_orders=1, intent_ids=frozenset({"a"}), balances={"ETH": D("9.8")})
    assert rig.gate.snapshot().open_orders == 1
    assert size_of(await rig.gate.submit(intent())) == D("100")


# -- the published account as the checks see it ----------------------------------------------------


def test_portfolio_snapshot_commits_open_orders_in_free_balances() -> None:
    # An open limit buy 100 @ 0.002 half filled and a market sell of 30, as the order manager
    # publishes them (tests/unit/actors/test_order_table.py builds this view from orders).
    view = PortfolioView(
        version=3, positions={SYM: D("200")}, balances={"ETH": D("5"), "XRP": D("200")}, open_orders=2,
        open_buy={SYM: D("50")}, open_sell={SYM: D("30")}, priced_buy_notional={SYM: D("0.100")},
        intent_ids=frozenset({"i-b", "i-s"}), last_intent_id="i-s",
    )
    out = portfolio_snapshot(view, INSTRUMENTS, lambda s: D("0.002"), fee_bps=10.0)
    assert out.positions == {SYM: D("200")}
    assert (out.open_orders, out.open_buy, out.open_sell) == (2, {SYM: D("50")}, {SYM: D("30")})
    assert out.balances["ETH"] == Balance(asset="ETH", free=D("5") - D("0.1001"), locked=D("0.1001"))
    assert out.balances["XRP"] == Balance(asset="XRP", free=D("170"), locked=D("30"))
    assert (out.intent_ids, out.last_intent_id) == (frozenset({"i-b", "i-s"}), "i-s")


def test_open_market_buy_commits_at_the_reference_price_or_nothing_without_one() -> None:
    view = PortfolioView(balances={"ETH": D("5")}, open_orders=1, open_buy={SYM: D("100")},
                         unpriced_buy={SYM: D("100")})
    priced = portfolio_snapshot(view, INSTRUMENTS, lambda s: D("0.003"), fee_bps=0.0)
    assert priced.balances["ETH"] == Balance(asset="ETH", free=D("4.7"), locked=D("0.3"))
    unpriced = portfolio_snapshot(view, INSTRUMENTS, lambda s: None, fee_bps=0.0)
    assert unpriced.balances["ETH"] == Balance(asset="ETH", free=D("5"), locked=D("0"))


def test_reader_derives_once_per_version_unless_market_buys_follow_the_price() -> None:
    source = Portfolio()
    prices = {SYM: D("0.002")}
    reader = PortfolioReader(source, INSTRUMENTS, prices.get)
    first = reader.read(10.0)
    assert reader.read(10.0) is first  # same version: nothing derived again
    assert reader.read(20.0) is not first  # another fee assumption
    source.publish(balances={"ETH": D("1")}, open_orders=1, open_buy={SYM: D("100")},
                   unpriced_buy={SYM: D("100")})
    assert reader.read(0.0).balances["ETH"].locked == D("0.2")
    prices[SYM] = D("0.004")  # same version, the mark moved: the market buy commits more
    assert reader.read(0.0).balances["ETH"].locked == D("0.4")
