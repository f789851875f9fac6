"""The risk gate actor: every order intent passes here before it can become an order.

Inputs: ``intents`` (OrderIntent or OrderList from strategies, and the orders the
contingent-order manager releases) and ``control`` (SetTradingState from the
admin API / CLI and the reconciler, ConfigChanged after a reload), each read by its own
loop, so a kill command never waits behind a backlog of intents or a full order channel.
Market events arrive through ``on_market`` (a feed tap); the account through ``portfolio``,
the order manager's published ``PortfolioSource``. Decisions themselves are synchronous (no
await between reading the state and deciding), so they never interleave.

Outputs: ``ApprovedIntent`` to the order manager, ``OrderDenied`` to the strategies (both
channels are expected to use the ``block`` policy: decisions are never dropped), and
``TradingStateChanged`` to whoever listens. Every denial is stored (``record_risk_event``:
reason code, intent, limit, detail) and every state change, refused command and loss-limit
halt is audited (``append_audit``) through a ``RiskEventSink``; the trading state, the kill
switch and the daily-loss / drawdown baselines persist under one key of a ``StateStore``
so they survive restarts. The daemon's ``adapters.storage.Store`` is both.

Routing (``submit``): a plain market/limit intent goes to the order manager, as it always
did. A strategy's conditional or algorithmic intent (stop, take-profit, trailing, iceberg,
TWAP) and its order lists (OCO, OTO, bracket) are validated (``contingent_checks``) and go,
approved, to ``contingent`` (the contingent-order manager's inbox); without one they are
denied ``CONTINGENT_UNAVAILABLE``. What that manager releases (``intent.parent`` set, or a
native list of such intents) comes back through the intents channel, is checked as a child
and goes to the order manager. Engaging the kill switch sends ``CancelAll`` to
``contingent``. A denied list is reported as an ``OrderDenied`` of its first order.

Time: the order-rate window, the UTC day of the daily-loss limit and every timestamp are
business time (the injected ``Clock``: market time in a replay). Approvals the order
manager's view does not show yet count against open orders, open quantity and cash for
``pending_approval_ttl_s`` of process time.

The gate is the one owner of the trading state: ACTIVE, REDUCING (pause: only
position-reducing orders), HALTED (kill, or a loss limit hit: nothing but cancels, which do
not pass through here); it publishes it as ``status``. An engaged kill switch is lifted only
by an explicit ``SetTradingState(kill_switch=False)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeVar, overload

import msgspec

from actors.kernel.actor import Actor
from actors.kernel.channel import Channel, ChannelClosed
from actors.kernel.clock import Clock, WallClock, monotonic
from actors.model.control import ConfigChanged, SetTradingState, TradingState, TradingStateChanged
from actors.model.market import MarketEvent
from actors.model.orders import (
    ApprovedIntent,
    ApprovedList,
    CancelAll,
    OrderDenied,
    OrderIntent,
    OrderList,
)
from actors.ports.portfolio import PortfolioSource
from actors.ports.stores import RiskEventSink, StateStore
from actors.risk.checks import (
    HALTING_REASONS,
    Approval,
    Denial,
    Reason,
    RiskInputs,
    SymbolLimits,
    check_daily_loss,
    check_drawdown,
    drawdown_pct,
    evaluate,
    gross_exposure,
    limits_for,
    mark_to_market,
)
from actors.risk.contingent_checks import (
    ListApproval,
    denied_intent_of,
    evaluate_list,
    evaluate_native_list,
    evaluate_order,
    reduces_position,
    unavailable,
)
from actors.risk.marks import MarketMarks
from actors.risk.order_flow import PendingApprovals, RateWindow, free_after_pending
from actors.risk.portfolio import PortfolioReader, PortfolioSnapshot
from actors.risk.state import DecisionCounts, LossBaselines, RiskSnapshot, TradingStatus, decode_persisted
from config.schema.trading import InstrumentSection, RiskSection

__all__ = ["GateInput", "RiskEventSink", "RiskGate", "RiskSnapshot", "Sink", "StateStore", "TradingStatus"]

T_contra = TypeVar("T_contra", contravariant=True)

_ZERO = Decimal(0)

#: What arrives on the gate's intents channel.
GateInput = OrderIntent | OrderList


class Sink(Protocol[T_contra]):
    """Where the gate sends messages (a ``Channel`` satisfies it)."""

    async def send(self, item: T_contra) -> None:
        """Deliver one message, waiting for room if needed."""


class RiskGate(Actor):
    """Pre-trade risk gate. See the module docstring for the data flow.

    ``portfolio`` is the order manager's published account (``OrderManager.portfolio``).
    ``data_age`` (optional) returns the age in seconds of a symbol's last market event as the
    feed judges it (None: never seen) — without it the gate measures age in feed time from
    the events it is fed. ``risk_provider`` (optional) returns the current risk section when
    a ``ConfigChanged`` arrives; ``reload`` does the same directly. ``clock`` is business
    time (wall clock by default); ``process_time`` measures how long approvals stay pending.
    ``contingent`` (optional) is the contingent-order manager's inbox: approved conditional
    intents and lists, and the ``CancelAll`` of a kill.
    """

    kind = "risk_gate"

    #: Feed tap: note a market event's price and time (cheap; called for every event).
    on_market: Callable[[MarketEvent], None]
    #: Latest reference price of a symbol (trade, quote mid or bar close), if any.
    reference_price: Callable[[str], Decimal | None]

    def __init__(
        self,
        name: str = "risk_gate",
        *,
        intents: Channel[GateInput],
        orders: Sink[ApprovedIntent | ApprovedList],
        strategy_events: Sink[OrderDenied],
        risk: RiskSection,
        instruments: Mapping[str, InstrumentSection],
        portfolio: PortfolioSource,
        events: RiskEventSink,
        state_store: StateStore,
        control: Channel[Any] | None = None,
        state_events: Sink[TradingStateChanged] | None = None,
        data_age: Callable[[str], float | None] | None = None,
        risk_provider: Callable[[], RiskSection] | None = None,
        state_key: str = "risk_gate",
        rate_window_s: float = 60.0,
        clock: Clock | None = None,
        process_time: Callable[[], float] = monotonic,
        contingent: Sink[ApprovedIntent | ApprovedList | CancelAll] | None = None,
    ) -> None:
        super().__init__(name, intents)
        self._intents = intents
        self._control = control
        self._orders = orders
        self._contingent = contingent
        self._strategy_events = strategy_events
        self._state_events = state_events
        self._instruments = dict(instruments)
        self._events = events
        self._store = state_store
        self._data_age = data_age
        self._risk_provider = risk_provider
        self._state_key = state_key
        self._clock = clock if clock is not None else WallClock()
        self._process_time = process_time
        self._risk = risk
        self._pending_risk: RiskSection | None = None
        self._limits: dict[str, SymbolLimits] = {}
        self._rate = RateWindow(rate_window_s)
        self._marks = MarketMarks()
        self.on_market = self._marks.observe
        self.reference_price = self._marks.reference_price
        self._portfolio = PortfolioReader(portfolio, self._instruments, self._marks.reference_price)
        self._status = TradingStatus()
        self._baselines = LossBaselines()
        self._pending = PendingApprovals()
        self._counts = DecisionCounts()
        self._bg_tasks: set[asyncio.Task[None]] = set()

    # -- public API ------------------------------------------------------------------------
    @property
    def status(self) -> TradingStatus:
        """The published trading status (replaced on every change; never mutated)."""
        return self._status

    @property
    def trading_state(self) -> TradingState:
        """Current trading state."""
        return self._status.state

    @property
    def kill_switch(self) -> bool:
        """True while the kill switch is engaged."""
        return self._status.kill_switch

    def reload(self, risk: RiskSection) -> None:
        """Take new limits; they apply from the next message the gate handles."""
        self._pending_risk = risk

    def decide(self, intent: OrderIntent) -> Approval | Denial:
        """Decide one plain intent against the current state (synchronous; only the equity
        baselines are updated from the account it reads)."""
        return evaluate(intent, self._inputs(intent.symbol))

    def _inputs(self, symbol: str) -> RiskInputs:
        """The state a decision about ``symbol`` is taken on."""
        snap = self._read_portfolio()
        prices = self._prices_for(snap)  # one read of the marks for the equity and the decision
        self._observe_equity(snap, prices)
        self._pending.prune(self._process_time(), self._risk.pending_approval_ttl_s, snap)
        inst = self._instruments.get(symbol)
        pending = self._pending.exposure(symbol, inst)  # approvals still on their way
        base_free, quote_free = free_after_pending(snap, inst, pending)
        status = self._status
        baselines = self._baselines
        return RiskInputs(
            state=status.state,
            kill_switch=status.kill_switch,
            instrument=inst,
            limits=self._symbol_limits(symbol),
            risk=self._risk,
            reference_price=prices.get(symbol) or self._marks.reference_price(symbol),
            data_age_s=self._data_age(symbol) if self._data_age is not None else self._marks.age_s(symbol),
            position=snap.positions.get(symbol, _ZERO),
            open_buy=snap.open_buy.get(symbol, _ZERO) + pending.buy,
            open_sell=snap.open_sell.get(symbol, _ZERO) + pending.sell,
            gross_exposure=gross_exposure(snap.positions, prices),
            open_orders=snap.open_orders + len(self._pending),
            recent_orders=self._rate.count(self._rate_now()),
            rate_window_s=self._rate.window_s,
            base_free=base_free,
            quote_free=quote_free,
            daily_pnl=baselines.daily_pnl(),
            equity=baselines.equity,
            equity_peak=baselines.peak,
        )

    def _exit_inputs(self, intent: OrderIntent) -> RiskInputs | None:
        """The state a protective exit is decided on: what ``evaluate_order`` reads for one (the
        trading state, the instrument, the reference price, the position, free balances net of
        approvals on their way); the limits it is exempt from are left at their defaults. Kept
        short: an exit that a trigger released is on the trigger-to-submit path. None when the
        child does not reduce the position (it is then decided on the full ``_inputs``)."""
        symbol = intent.symbol
        inst = self._instruments.get(symbol)
        snap = self._read_portfolio()
        position = snap.positions.get(symbol, _ZERO)
        if not reduces_position(intent, position):
            return None
        base_free, quote_free = free_after_pending(snap, inst, self._pending.exposure(symbol, inst))
        status = self._status
        return RiskInputs(
            state=status.state,
            kill_switch=status.kill_switch,
            instrument=inst,
            limits=self._symbol_limits(symbol),
            risk=self._risk,
            reference_price=self._marks.reference_price(symbol),
            data_age_s=None,
            position=position,
            base_free=base_free,
            quote_free=quote_free,
        )

    @overload
    async def submit(self, item: OrderIntent) -> Approval | Denial: ...
    @overload
    async def submit(self, item: OrderList) -> ListApproval | Denial: ...

    async def submit(self, item: GateInput) -> Approval | ListApproval | Denial:
        """Decide one intent or list and act on it (approve downstream or deny, store, halt).

        Routing: see the module docstring.
        """
        self._apply_pending_reload()
        if type(item) is OrderIntent and item.is_plain and not item.parent:
            decision: Approval | ListApproval | Denial = self.decide(item)
            if isinstance(decision, Approval):
                self._rate.record(self._rate_now())
                await self._to_order_manager(item, decision)
                return decision
        elif isinstance(item, OrderList):
            decision = await self._submit_list(item)
        else:
            assert isinstance(item, OrderIntent)
            decision = await self._submit_conditional(item)
        if isinstance(decision, Denial):
            await self._deny(item, decision)
            if decision.reason in HALTING_REASONS and self._status.state is not TradingState.HALTED:
                await self._change_state(TradingState.HALTED, f"{decision.reason}: {decision.detail}", None)
        return decision

    async def _submit_conditional(self, intent: OrderIntent) -> Approval | Denial:
        """A released child (to the order manager) or a strategy's conditional/algorithmic
        intent (to the contingent-order manager)."""
        if intent.parent:
            inputs = (self._exit_inputs(intent) if intent.protective else None) or self._inputs(intent.symbol)
            decision = evaluate_order(intent, inputs, child=True)
            if isinstance(decision, Approval):
                await self._to_order_manager(intent, decision)
            return decision
        contingent = self._contingent
        if contingent is None:
            return unavailable(intent.type.value)
        decision = evaluate_order(intent, self._inputs(intent.symbol), child=False)
        if isinstance(decision, Approval):
            self._rate.record(self._rate_now())
            self._counts.approved += 1
            await contingent.send(
                ApprovedIntent(intent=intent, size=decision.size, reference_price=decision.reference_price)
            )
        return decision

    async def _submit_list(self, lst: OrderList) -> ListApproval | Denial:
        """A native list the contingent-order manager releases (its orders have a parent: to
        the order manager), or a strategy's list (to the contingent-order manager)."""
        native = any(o.parent for o in lst.orders)
        contingent = self._contingent
        if not native and contingent is None:
            return unavailable(f"{lst.kind.value} list")
        inputs = self._inputs(lst.symbol)
        decision = evaluate_native_list(lst, inputs) if native else evaluate_list(lst, inputs)
        if isinstance(decision, ListApproval):
            self._counts.approved += 1
            approved = ApprovedList(order_list=lst, sizes=decision.sizes, reference_price=decision.reference_price)
            if contingent is None or native:
                # The legs of a native list share what they lock: the first one stands for it.
                first = Approval(size=decision.sizes[0] or _ZERO, reference_price=decision.reference_price)
                self._pending.add(self._process_time(), lst.orders[0], first, self._instruments.get(lst.symbol),
                                  self._risk)
                await self._orders.send(approved)
            else:
                self._rate.record(self._rate_now())
                await contingent.send(approved)
        return decision

    async def _to_order_manager(self, intent: OrderIntent, decision: Approval) -> None:
        self._counts.approved += 1
        self._pending.add(self._process_time(), intent, decision, self._instruments.get(intent.symbol),
                          self._risk)
        await self._orders.send(
            ApprovedIntent(intent=intent, size=decision.size, reference_price=decision.reference_price)
        )

    async def command(self, cmd: SetTradingState) -> bool:
        """Apply a trading-state command; returns False when it was refused.

        REDUCING = pause, ACTIVE = resume, HALTED = halt; ``kill_switch=True`` engages the
        kill switch (and halts), ``kill_switch=False`` lifts it. While the kill switch is
        engaged, leaving HALTED needs ``kill_switch=False``. Leaving HALTED for trading
        resets the loss baselines to the current equity (the operator acknowledged them).
        """
        self._apply_pending_reload()
        state = cmd.state
        kill = self._status.kill_switch if cmd.kill_switch is None else cmd.kill_switch
        if kill and state is not TradingState.HALTED:
            if cmd.kill_switch:
                state = TradingState.HALTED
            else:
                await self._audit(
                    "risk.command_refused",
                    {
                        "requested": state.value,
                        "reason": Reason.KILL_SWITCH.value,
                        "detail": "refused while the kill switch is engaged (resume with kill_switch=false)",
                        "command_reason": cmd.reason,
                    },
                )
                self.log.warning("risk.command_refused", state=state.value, reason="kill switch engaged")
                return False
        if self._status.state is TradingState.HALTED and state is not TradingState.HALTED and self._reset_baselines():
            await self._audit(
                "risk.baselines_reset",
                {"equity": str(self._baselines.equity), "reason": "trading resumed from HALTED",
                 "command_reason": cmd.reason},
            )
        engaging = bool(kill) and not self._status.kill_switch
        await self._change_state(state, cmd.reason, kill)
        if engaging and self._contingent is not None:
            # Emulated stops and pending legs live in the contingent-order manager, not on the
            # venue: a kill must disarm them too (the order manager gets its own CancelAll).
            await self._contingent.send(CancelAll(reason="kill switch"))
        return True

    def snapshot(self) -> RiskSnapshot:
        """The gate's state, limits, current usage and decision counters."""
        snap = self._read_portfolio()
        self._pending.prune(self._process_time(), self._risk.pending_approval_ttl_s, snap)
        b = self._baselines
        return RiskSnapshot(
            state=self._status.state,
            kill_switch=self._status.kill_switch,
            limits=self._risk,
            open_orders=snap.open_orders + len(self._pending),
            orders_in_window=self._rate.count(self._rate_now()),
            rate_window_s=self._rate.window_s,
            gross_exposure=gross_exposure(snap.positions, self._prices_for(snap)),
            equity=b.equity,
            equity_peak=b.peak,
            day_start_equity=b.day_start,
            daily_pnl=b.daily_pnl(),
            drawdown_pct=drawdown_pct(b.equity, b.peak),
            decisions=self._counts.approved + self._counts.denied,
            approved=self._counts.approved,
            denied=self._counts.denied,
            denied_by_reason=dict(self._counts.by_reason),
            last_denial=self._counts.last_denial,
            ts_ms=self._clock.now_ms(),
        )

    async def check_loss_limits(self) -> Denial | None:
        """Re-evaluate daily loss and drawdown now; HALT when one is breached."""
        self._apply_pending_reload()
        self._observe_equity(self._read_portfolio())
        b = self._baselines
        d = check_daily_loss(b.daily_pnl(), self._risk.daily_loss_limit) or check_drawdown(
            b.equity, b.peak, self._risk.max_drawdown_pct
        )
        if d is not None and self._status.state is not TradingState.HALTED:
            await self._audit("risk.loss_limit", {"reason": d.reason, "limit": d.limit, "detail": d.detail})
            await self._change_state(TradingState.HALTED, f"{d.reason}: {d.detail}", None)
        return d

    # -- actor lifecycle ---------------------------------------------------------------------
    async def on_start(self) -> None:
        """Load the persisted trading state, kill switch and loss baselines."""
        raw = await self._store.get_state(self._state_key)
        if raw is None:
            return
        try:
            saved = decode_persisted(raw)
        except ValueError as exc:
            # Unreadable state: fail safe — halted with the kill switch, until an operator says otherwise.
            self.log.error("risk.state_unreadable", error=repr(exc))
            self._status = TradingStatus(state=TradingState.HALTED, kill_switch=True)
            return
        state = TradingState.HALTED if saved.kill_switch else saved.state
        self._status = TradingStatus(state=state, kill_switch=saved.kill_switch)
        self._baselines.restore(saved)
        self.log.info("risk.state_loaded", state=state.value, kill_switch=saved.kill_switch)

    async def run(self) -> None:
        """Read control and intents concurrently; end when the intents channel closes."""
        aux: list[asyncio.Task[None]] = []
        if self._control is not None:
            aux.append(asyncio.create_task(self._control_loop(self._control), name=f"{self.name}.control"))
        aux.append(asyncio.create_task(self._periodic_loop(), name=f"{self.name}.periodic"))
        main = asyncio.create_task(self._intent_loop(), name=f"{self.name}.intents")
        try:
            done, _ = await asyncio.wait([main, *aux], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not main or task.exception() is not None:
                    task.result()  # re-raise a helper's failure
            if main not in done:  # a helper returned: its channel closed; keep deciding
                await main
        finally:
            for task in (main, *aux):
                task.cancel()
            for task in (main, *aux):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def pending_work(self) -> int:
        """Intents and commands waiting."""
        return len(self._intents) + (len(self._control) if self._control is not None else 0)

    def sizes(self) -> dict[str, int]:
        """Sizes of the structures that could grow with uptime (soak runs check their caps)."""
        return {"gate_pending": len(self._pending), "gate_rate_window": self._rate.count(self._rate_now())}

    # -- loops -------------------------------------------------------------------------------
    async def _intent_loop(self) -> None:
        ch = self._intents
        while True:
            try:
                intent = await ch.recv()
            except ChannelClosed:
                return
            await self.submit(intent)
            self.beat()

    async def _control_loop(self, ch: Channel[Any]) -> None:
        while True:
            try:
                msg = await ch.recv()
            except ChannelClosed:
                # Keep the helper alive: a closed control channel must not stop the gate.
                await asyncio.Event().wait()
                return
            if isinstance(msg, SetTradingState):
                await self.command(msg)
            elif isinstance(msg, ConfigChanged):
                if self._risk_provider is not None:
                    self.reload(self._risk_provider())
                    self._apply_pending_reload()
            else:
                self.log.warning("risk.unknown_control_message", type=type(msg).__name__)
            self.beat()

    async def _periodic_loop(self) -> None:
        while True:
            await asyncio.sleep(self._risk.pnl_check_interval_s)
            await self.check_loss_limits()

    # -- internals ---------------------------------------------------------------------------
    def _rate_now(self) -> float:
        """Business time in seconds, for the order-rate window."""
        return self._clock.now_ms() / 1000.0

    def _read_portfolio(self) -> PortfolioSnapshot:
        return self._portfolio.read(self._risk.assumed_fee_bps)

    def _symbol_limits(self, symbol: str) -> SymbolLimits:
        lim = self._limits.get(symbol)
        if lim is None:
            lim = self._limits[symbol] = limits_for(self._risk, symbol)
        return lim

    def _apply_pending_reload(self) -> None:
        risk = self._pending_risk
        if risk is None:
            return
        self._pending_risk = None
        if risk == self._risk:
            return
        self._risk = risk
        self._limits.clear()
        self.log.info("risk.limits_reloaded")

    def _prices_for(self, snap: PortfolioSnapshot) -> dict[str, Decimal]:
        return self._marks.prices((*snap.positions, *self._instruments))

    def _equity_asset(self) -> str:
        if self._risk.equity_asset:
            return self._risk.equity_asset
        for inst in self._instruments.values():
            return inst.quote
        return ""

    def _observe_equity(self, snap: PortfolioSnapshot, prices: dict[str, Decimal] | None = None) -> None:
        if not snap.balances:
            return
        if prices is None:
            prices = self._prices_for(snap)
        equity = mark_to_market(snap.balances, self._instruments, prices, self._equity_asset())
        if equity is not None and self._baselines.observe(equity, self._clock.now_ms()):
            self._schedule_persist()

    def _reset_baselines(self) -> bool:
        self._observe_equity(self._read_portfolio())
        if not self._baselines.reset(self._clock.now_ms()):
            return False
        self.log.info("risk.baselines_reset", equity=str(self._baselines.equity))
        return True

    async def _deny(self, item: GateInput, d: Denial) -> None:
        intent = item if isinstance(item, OrderIntent) else denied_intent_of(item)
        self._counts.deny(d.reason)
        denied = OrderDenied(intent=intent, reason=d.reason, limit=d.limit, detail=d.detail,
                             ts_ms=self._clock.now_ms())
        try:
            await self._events.record_risk_event(denied)
        except Exception as exc:  # the decision stands; losing its audit row is logged loudly
            self.log.error("risk.denial_store_failed", reason=d.reason, error=repr(exc))
        await self._strategy_events.send(denied)

    async def _change_state(self, state: TradingState, reason: str, kill: bool | None) -> None:
        """Switch state / kill switch, persist, audit and publish TradingStateChanged."""
        previous = self._status
        kill_now = previous.kill_switch if kill is None else kill
        if state is previous.state and kill_now == previous.kill_switch:
            return
        self._status = TradingStatus(state=state, kill_switch=kill_now)
        await self._persist()
        self.log.warning(
            "risk.trading_state_changed", state=state.value, previous=previous.state.value, reason=reason,
            kill_switch=kill_now,
        )
        await self._audit(
            "risk.trading_state_changed",
            {"state": state.value, "previous": previous.state.value, "reason": reason, "kill_switch": kill_now},
        )
        if self._state_events is not None:
            await self._state_events.send(
                TradingStateChanged(state=state, previous=previous.state, reason=reason, kill_switch=kill_now)
            )

    async def _audit(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            await self._events.append_audit(kind, payload, ts_ms=self._clock.now_ms())
        except Exception as exc:  # the action stands; losing its audit row is logged loudly
            self.log.error("risk.audit_failed", kind=kind, error=repr(exc))

    async def _persist(self) -> None:
        try:
            await self._store.set_state(self._state_key, msgspec.to_builtins(self._baselines.persisted(self._status)))
        except Exception as exc:
            self.log.error("risk.state_persist_failed", error=repr(exc))

    def _schedule_persist(self) -> None:
        # Baseline changes are persisted in the background; state changes await _persist().
        with contextlib.suppress(RuntimeError):
            task = asyncio.get_running_loop().create_task(self._persist())
            self._bg_tasks.add(task)
            task.add_done_callback(self._bg_tasks.discard)

