"""RiskGate at actor level: channels, stored denials, persisted kill switch, state transitions, reload."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pytest

from actors.kernel.channel import Channel
from actors.model.control import ConfigChanged, SetTradingState, TradingState, TradingStateChanged
from actors.model.market import Quote, Trade
from actors.model.orders import ApprovedIntent, Balance, OrderDenied, OrderIntent, OrderType, Side
from actors.risk.checks import Approval, Denial, PortfolioSnapshot, Reason
from actors.risk.risk_gate import RiskGate
from adapters.storage.store import Store
from config.schema.trading import InstrumentSection, RiskSection

D = Decimal
SYM = "XRP/ETH"
T = TypeVar("T")
INSTRUMENTS = {SYM: InstrumentSection(base="XRP", quote="ETH", min_notional=D("0.01"))}


class Clocks:
    """Injected monotonic and wall clocks."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = 1_700_000_000_000

    def monotonic(self) -> float:
        return self.mono

    def wall_ms(self) -> int:
        return self.wall


class Portfolio:
    """Stands in for the order manager's published snapshot."""

    def __init__(self) -> None:
        self.snap = PortfolioSnapshot(
            balances={"ETH": Balance(asset="ETH", free=D("10")), "XRP": Balance(asset="XRP", free=D("0"))},
        )

    def __call__(self) -> PortfolioSnapshot:
        return self.snap


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
        monotonic=clocks.monotonic,
        wall_ms=clocks.wall_ms,
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
    rig.portfolio.snap = PortfolioSnapshot(
        positions={SYM: D("300")},
        balances={"ETH": Balance(asset="ETH", free=D("10")), "XRP": Balance(asset="XRP", free=D("300"))},
    )
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
    rig.portfolio.snap = PortfolioSnapshot(equity=D("10"), balances={"ETH": Balance(asset="ETH", free=D("10"))})
    assert size_of(await rig.gate.submit(intent())) == D("100")
    rig.portfolio.snap = PortfolioSnapshot(equity=D("7.9"), balances={"ETH": Balance(asset="ETH", free=D("7.9"))})
    rig.clocks.wall += 86_400_000  # next day: daily loss baseline resets, the peak does not
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
    rig.portfolio.snap = PortfolioSnapshot(equity=D("10"))
    assert await rig.gate.check_loss_limits() is None
    rig.portfolio.snap = PortfolioSnapshot(equity=D("9.5"))
    breach = await rig.gate.check_loss_limits()
    assert breach is not None and breach.reason == Reason.DAILY_LOSS_LIMIT
    assert rig.gate.trading_state is TradingState.HALTED
    assert "risk.loss_limit" in [e.kind for e in await store.audit_entries()]


async def test_equity_marked_to_market_when_snapshot_has_none(store: Store) -> None:
    rig = make_rig(store)
    rig.portfolio.snap = PortfolioSnapshot(
        balances={"ETH": Balance(asset="ETH", free=D("1")), "XRP": Balance(asset="XRP", free=D("500"))}
    )
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
    rig.clocks.mono += 60.5
    assert size_of(await rig.gate.submit(intent())) == D("100")


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
    rig.portfolio.snap = PortfolioSnapshot(balances={"ETH": Balance(asset="ETH", free=D("0.3"))})
    assert size_of(await rig.gate.submit(intent())) == D("100")  # ~0.2012 ETH reserved
    assert denial_of(await rig.gate.submit(intent())).reason == Reason.INSUFFICIENT_CASH


async def test_pending_approval_released_once_order_manager_shows_it(store: Store) -> None:
    rig = make_rig(store, RiskSection(max_open_orders=2, pending_approval_ttl_s=60.0))
    await rig.gate.submit(OrderIntent(strategy="s1", symbol=SYM, side=Side.BUY, size=D("100"), intent_id="a"))
    rig.portfolio.snap = PortfolioSnapshot(
        open_orders=1, intent_ids=frozenset({"a"}), balances={"ETH": Balance(asset="ETH", free=D("9.8"))}
    )
    assert rig.gate.snapshot().open_orders == 1
    assert size_of(await rig.gate.submit(intent())) == D("100")


def test_portfolio_from_order_manager_snapshot_commits_open_orders() -> None:
    from actors.model.orders import OrderStatus
    from actors.model.positions import PositionView
    from actors.model.records import OrderRecord
    from actors.risk.portfolio import portfolio_from_orders

    @dataclasses.dataclass(frozen=True)
    class OmSnap:
        ts_ms: int
        open_orders: tuple[OrderRecord, ...]
        positions: tuple[PositionView, ...]
        balances: dict[str, Decimal]

    def rec(cid: str, side: Side, size: str, price: str | None, filled: str = "0") -> OrderRecord:
        return OrderRecord(
            client_order_id=cid, venue="paper", strategy="s1", symbol=SYM, side=side,
            type=OrderType.LIMIT if price else OrderType.MARKET, size=D(size), status=OrderStatus.ACCEPTED,
            price=D(price) if price else None, filled=D(filled), intent_id=f"i-{cid}",
        )

    om = OmSnap(
        ts_ms=5,
        open_orders=(rec("b", Side.BUY, "100", "0.002", filled="50"), rec("s", Side.SELL, "30", None)),
        positions=(PositionView(symbol=SYM, size=D("200")),),
        balances={"ETH": D("5"), "XRP": D("200")},
    )
    out = portfolio_from_orders(om, INSTRUMENTS, lambda s: D("0.002"), fee_bps=10.0)
    assert out.positions == {SYM: D("200")}
    assert (out.open_orders, out.open_buy, out.open_sell) == (2, {SYM: D("50")}, {SYM: D("30")})
    assert out.balances["ETH"] == Balance(asset="ETH", free=D("5") - D("0.1001"), locked=D("0.1001"))
    assert out.balances["XRP"] == Balance(asset="XRP", free=D("170"), locked=D("30"))
    assert out.intent_ids == frozenset({"i-b", "i-s"})
