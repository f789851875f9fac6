"""The risk gate actor: every order intent passes here before it can become an order.

Inputs: ``intents`` (OrderIntent from strategies), ``control`` (SetTradingState from the
admin API / CLI, ConfigChanged after a reload) and optionally ``market`` (market events,
for reference prices; the wiring may instead call ``on_market`` directly). Each input is
read by its own loop, so a kill command never waits behind a backlog of intents or a full
order channel. Decisions themselves are synchronous (no await between reading the state
and deciding), so they never interleave.

Outputs: ``ApprovedIntent`` to the order manager, ``OrderDenied`` to the strategies (both
channels are expected to use the ``block`` policy: decisions are never dropped), and
``TradingStateChanged`` to whoever listens. Every denial is stored (``record_risk_event``:
reason code, intent, limit, detail) and every state change, refused command and loss-limit
halt is audited (``append_audit``) through a ``RiskEventSink``; the trading state, the kill
switch and the daily-loss / drawdown baselines persist under one key of a ``StateStore``
so they survive restarts. The daemon's ``adapters.storage.Store`` is both.

Approvals the order manager's snapshot does not show yet (still queued towards it) count
against open orders, open quantity and cash for ``pending_approval_ttl_s``, so a burst of
intents cannot slip past limits between two snapshots.

The gate owns the trading state (ARCHITECTURE.md §2): ACTIVE, REDUCING (pause: only
position-reducing orders), HALTED (kill, or a loss limit hit: nothing but cancels, which do
not pass through here). An engaged kill switch is lifted only by an explicit
``SetTradingState(kill_switch=False)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import msgspec

from actors.kernel.actor import Actor
from actors.kernel.channel import Channel, ChannelClosed
from actors.model.control import ConfigChanged, SetTradingState, TradingState, TradingStateChanged
from actors.model.market import Bar, MarketEvent, Quote, Trade
from actors.model.orders import ApprovedIntent, OrderDenied, OrderIntent, OrderType, Side
from actors.risk.checks import (
    HALTING_REASONS,
    Approval,
    Denial,
    PortfolioSnapshot,
    RateWindow,
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
    to_decimal,
)
from config.schema.trading import InstrumentSection, RiskSection

T_contra = TypeVar("T_contra", contravariant=True)

_DAY_MS = 86_400_000


class Sink(Protocol[T_contra]):
    """Where the gate sends messages (a ``Channel`` satisfies it)."""

    async def send(self, item: T_contra) -> None:
        """Deliver one message, waiting for room if needed."""


class RiskEventSink(Protocol):
    """Durable storage of risk decisions (the daemon's ``Store`` satisfies it)."""

    async def record_risk_event(self, denial: OrderDenied) -> None:
        """Store one denial: reason code, intent, limit, detail."""

    async def append_audit(self, kind: str, payload: Mapping[str, Any], *, ts_ms: int | None = None) -> None:
        """Append an audit row (trading-state changes, refused commands, loss-limit halts)."""


class StateStore(Protocol):
    """A durable key/value store of JSON values (the daemon's ``Store`` satisfies it)."""

    async def get_state(self, key: str) -> Any:
        """The stored value of ``key``, or None."""

    async def set_state(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` durably."""


class PersistedRiskState(msgspec.Struct, frozen=True, kw_only=True):
    """What the gate persists: trading state, kill switch and the loss baselines."""

    state: TradingState = TradingState.ACTIVE
    kill_switch: bool = False
    equity_peak: Decimal | None = None
    day: int | None = None
    day_start_equity: Decimal | None = None


class RiskSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A published, immutable view of the gate for the admin API and metrics."""

    state: TradingState
    kill_switch: bool
    limits: RiskSection
    open_orders: int
    orders_in_window: int
    rate_window_s: float
    gross_exposure: Decimal
    equity: Decimal | None
    equity_peak: Decimal | None
    day_start_equity: Decimal | None
    daily_pnl: Decimal | None
    drawdown_pct: float | None
    decisions: int
    approved: int
    denied: int
    denied_by_reason: dict[str, int]
    last_denial: str
    ts_ms: int


class _Pending(msgspec.Struct, frozen=True):
    """An approval the order manager's snapshot does not show yet."""

    t: float
    intent_id: str
    symbol: str
    side: Side
    size: Decimal
    quote: str
    quote_cost: Decimal
    base: str


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class RiskGate(Actor):
    """Pre-trade risk gate (ARCHITECTURE.md §5). See the module docstring for the data flow.

    ``portfolio`` returns the order manager's latest immutable ``PortfolioSnapshot``;
    ``data_age`` (optional) returns the age in seconds of a symbol's last market event as the
    feed judges it (None: never seen) — without it the gate measures age in feed time from
    the events it is fed. ``risk_provider`` (optional) returns the current risk section when
    a ``ConfigChanged`` arrives; ``reload`` does the same directly. ``monotonic`` and
    ``wall_ms`` are injectable clocks (rate window; UTC day and timestamps).
    """

    kind = "risk_gate"

    def __init__(
        self,
        name: str = "risk_gate",
        *,
        intents: Channel[OrderIntent],
        orders: Sink[ApprovedIntent],
        strategy_events: Sink[OrderDenied],
        risk: RiskSection,
        instruments: Mapping[str, InstrumentSection],
        portfolio: Callable[[], PortfolioSnapshot],
        events: RiskEventSink,
        state_store: StateStore,
        control: Channel[Any] | None = None,
        market: Channel[MarketEvent] | None = None,
        state_events: Sink[TradingStateChanged] | None = None,
        data_age: Callable[[str], float | None] | None = None,
        risk_provider: Callable[[], RiskSection] | None = None,
        state_key: str = "risk_gate",
        rate_window_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        super().__init__(name, intents)
        self._intents = intents
        self._control = control
        self._market = market
        self._orders = orders
        self._strategy_events = strategy_events
        self._state_events = state_events
        self._instruments = dict(instruments)
        self._portfolio = portfolio
        self._events = events
        self._store = state_store
        self._data_age = data_age
        self._risk_provider = risk_provider
        self._state_key = state_key
        self._monotonic = monotonic
        self._wall_ms = wall_ms
        self._risk = risk
        self._pending_risk: RiskSection | None = None
        self._limits: dict[str, SymbolLimits] = {}
        self._rate = RateWindow(rate_window_s)
        # market state per symbol: the latest event that carries a price (the price itself is
        # derived when needed: on_market runs for every event, decisions are rare), the time
        # of an unpriced event that came after it (e.g. a one-sided quote); the feed clock
        self._priced: dict[str, MarketEvent] = {}
        self._unpriced_ts: dict[str, int] = {}
        self._feed_now_ms = 0
        # trading state
        self._state = TradingState.ACTIVE
        self._kill = False
        self._equity: Decimal | None = None
        self._peak: Decimal | None = None
        self._day: int | None = None
        self._day_start: Decimal | None = None
        # counters
        self._approved = 0
        self._denied = 0
        self._denied_by: dict[str, int] = {}
        self._last_denial = ""
        self._bg_tasks: set[asyncio.Task[None]] = set()
        self._pending: deque[_Pending] = deque()

    # -- public API ------------------------------------------------------------------------
    @property
    def trading_state(self) -> TradingState:
        """Current trading state."""
        return self._state

    @property
    def kill_switch(self) -> bool:
        """True while the kill switch is engaged."""
        return self._kill

    @property
    def limits(self) -> RiskSection:
        """The risk section in force."""
        return self._risk

    def reload(self, risk: RiskSection) -> None:
        """Take new limits; they apply from the next message the gate handles."""
        self._pending_risk = risk

    def on_market(self, event: MarketEvent) -> None:
        """Note a market event's price and time (cheap; called for every event)."""
        cls = type(event)
        if cls is Quote:
            priced = event.bid > 0.0 and event.ask > 0.0  # type: ignore[attr-defined]
        elif cls is Trade:
            priced = event.price > 0.0  # type: ignore[attr-defined]
        elif type(event) is Bar:
            priced = event.close > 0.0
        else:
            priced = False
        if priced:
            self._priced[event.symbol] = event
            if self._unpriced_ts:
                self._unpriced_ts.pop(event.symbol, None)
        else:
            self._unpriced_ts[event.symbol] = event.ts_ms
        ts = event.ts_ms
        if ts > self._feed_now_ms:
            self._feed_now_ms = ts

    def _last_px(self, symbol: str) -> float | None:
        """Trade price, quote mid or bar close of ``symbol``'s latest priced event."""
        ev = self._priced.get(symbol)
        if ev is None:
            return None
        if type(ev) is Quote:
            return (ev.bid + ev.ask) / 2.0
        if type(ev) is Trade:
            return ev.price
        if type(ev) is Bar:
            return ev.close
        return None

    def reference_price(self, symbol: str) -> Decimal | None:
        """Latest reference price of ``symbol`` (trade, quote mid or bar close), if any."""
        px = self._last_px(symbol)
        return to_decimal(px) if px is not None else None

    def symbol_limits(self, symbol: str) -> SymbolLimits:
        """The limits that apply to ``symbol`` now."""
        lim = self._limits.get(symbol)
        if lim is None:
            lim = self._limits[symbol] = limits_for(self._risk, symbol)
        return lim

    def decide(self, intent: OrderIntent) -> Approval | Denial:
        """Decide one intent against the current state (synchronous; only the equity
        baselines are updated from the portfolio snapshot it reads)."""
        snap = self._portfolio()
        self._observe_equity(snap)
        now = self._monotonic()
        self._prune_pending(now, snap)
        symbol = intent.symbol
        inst = self._instruments.get(symbol)
        prices = self._prices_for(snap)
        quote_free = base_free = Decimal(0)
        if inst is not None:
            qb = snap.balances.get(inst.quote)
            bb = snap.balances.get(inst.base)
            quote_free = qb.free if qb is not None else Decimal(0)
            base_free = bb.free if bb is not None else Decimal(0)
        open_buy = snap.open_buy.get(symbol, Decimal(0))
        open_sell = snap.open_sell.get(symbol, Decimal(0))
        for p in self._pending:  # approvals still on their way to the order manager
            if p.symbol == symbol:
                if p.side is Side.BUY:
                    open_buy += p.size
                else:
                    open_sell += p.size
            if inst is not None:
                if p.quote == inst.quote:
                    quote_free -= p.quote_cost
                if p.side is Side.SELL and p.base == inst.base:
                    base_free -= p.size
        inputs = RiskInputs(
            state=self._state,
            kill_switch=self._kill,
            instrument=inst,
            limits=self.symbol_limits(symbol),
            risk=self._risk,
            reference_price=prices.get(symbol) or self.reference_price(symbol),
            data_age_s=self._age(symbol),
            position=snap.positions.get(symbol, Decimal(0)),
            open_buy=open_buy,
            open_sell=open_sell,
            gross_exposure=gross_exposure(snap.positions, prices),
            open_orders=snap.open_orders + len(self._pending),
            recent_orders=self._rate.count(now),
            rate_window_s=self._rate.window_s,
            base_free=base_free,
            quote_free=quote_free,
            daily_pnl=self._daily_pnl(),
            equity=self._equity,
            equity_peak=self._peak,
        )
        return evaluate(intent, inputs)

    async def submit(self, intent: OrderIntent) -> Approval | Denial:
        """Decide one intent and act on it (approve downstream or deny, store, halt)."""
        self._apply_pending_reload()
        decision = self.decide(intent)
        if isinstance(decision, Approval):
            now = self._monotonic()
            self._rate.record(now)
            self._approved += 1
            self._add_pending(now, intent, decision)
            await self._orders.send(
                ApprovedIntent(intent=intent, size=decision.size, reference_price=decision.reference_price)
            )
            return decision
        await self._deny(intent, decision)
        if decision.reason in HALTING_REASONS and self._state is not TradingState.HALTED:
            await self._change_state(TradingState.HALTED, f"{decision.reason}: {decision.detail}", None)
        return decision

    async def command(self, cmd: SetTradingState) -> bool:
        """Apply a trading-state command; returns False when it was refused.

        REDUCING = pause, ACTIVE = resume, HALTED = halt; ``kill_switch=True`` engages the
        kill switch (and halts), ``kill_switch=False`` lifts it. While the kill switch is
        engaged, leaving HALTED needs ``kill_switch=False``. Leaving HALTED for trading
        resets the loss baselines to the current equity (the operator acknowledged them).
        """
        self._apply_pending_reload()
        state = cmd.state
        kill = self._kill if cmd.kill_switch is None else cmd.kill_switch
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
        if self._state is TradingState.HALTED and state is not TradingState.HALTED and self._reset_baselines():
            await self._audit(
                "risk.baselines_reset",
                {"equity": str(self._equity), "reason": "trading resumed from HALTED", "command_reason": cmd.reason},
            )
        await self._change_state(state, cmd.reason, kill)
        return True

    def snapshot(self) -> RiskSnapshot:
        """The gate's state, limits, current usage and decision counters."""
        snap = self._portfolio()
        prices = self._prices_for(snap)
        self._prune_pending(self._monotonic(), snap)
        return RiskSnapshot(
            state=self._state,
            kill_switch=self._kill,
            limits=self._risk,
            open_orders=snap.open_orders + len(self._pending),
            orders_in_window=self._rate.count(self._monotonic()),
            rate_window_s=self._rate.window_s,
            gross_exposure=gross_exposure(snap.positions, prices),
            equity=self._equity,
            equity_peak=self._peak,
            day_start_equity=self._day_start,
            daily_pnl=self._daily_pnl(),
            drawdown_pct=drawdown_pct(self._equity, self._peak),
            decisions=self._approved + self._denied,
            approved=self._approved,
            denied=self._denied,
            denied_by_reason=dict(self._denied_by),
            last_denial=self._last_denial,
            ts_ms=self._wall_ms(),
        )

    async def check_loss_limits(self) -> Denial | None:
        """Re-evaluate daily loss and drawdown now; HALT when one is breached."""
        self._apply_pending_reload()
        self._observe_equity(self._portfolio())
        d = check_daily_loss(self._daily_pnl(), self._risk.daily_loss_limit) or check_drawdown(
            self._equity, self._peak, self._risk.max_drawdown_pct
        )
        if d is not None and self._state is not TradingState.HALTED:
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
            if isinstance(raw, str | bytes):
                saved = msgspec.json.decode(raw, type=PersistedRiskState)
            else:
                saved = msgspec.convert(raw, PersistedRiskState)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
            # Unreadable state: fail safe — halted with the kill switch, until an operator says otherwise.
            self.log.error("risk.state_unreadable", error=repr(exc))
            self._state, self._kill = TradingState.HALTED, True
            return
        self._state = saved.state
        self._kill = saved.kill_switch
        self._peak = saved.equity_peak
        self._day = saved.day
        self._day_start = saved.day_start_equity
        if self._kill and self._state is not TradingState.HALTED:
            self._state = TradingState.HALTED
        self.log.info("risk.state_loaded", state=self._state.value, kill_switch=self._kill)

    async def run(self) -> None:
        """Read control, market and intents concurrently; end when the intents channel closes."""
        aux: list[asyncio.Task[None]] = []
        if self._control is not None:
            aux.append(asyncio.create_task(self._control_loop(self._control), name=f"{self.name}.control"))
        if self._market is not None:
            aux.append(asyncio.create_task(self._market_loop(self._market), name=f"{self.name}.market"))
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

    async def _market_loop(self, ch: Channel[MarketEvent]) -> None:
        on_market = self.on_market
        while True:
            try:
                event = await ch.recv()
            except ChannelClosed:
                await asyncio.Event().wait()
                return
            on_market(event)
            for more in ch.drain(1024):
                on_market(more)

    async def _periodic_loop(self) -> None:
        while True:
            await asyncio.sleep(self._risk.pnl_check_interval_s)
            await self.check_loss_limits()

    # -- internals ---------------------------------------------------------------------------
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

    def _add_pending(self, now: float, intent: OrderIntent, a: Approval) -> None:
        if self._risk.pending_approval_ttl_s <= 0:
            return
        inst = self._instruments.get(intent.symbol)
        if inst is None:
            return
        cost = Decimal(0)
        if intent.side is Side.BUY:
            if intent.type is OrderType.LIMIT and intent.limit_price is not None:
                price = intent.limit_price
            else:
                price = a.reference_price * (1 + Decimal(repr(self._risk.market_buy_buffer_bps)) / 10_000)
            cost = a.size * price * (1 + Decimal(repr(self._risk.assumed_fee_bps)) / 10_000)
        self._pending.append(
            _Pending(now, intent.intent_id, intent.symbol, intent.side, a.size, inst.quote, cost, inst.base)
        )

    def _prune_pending(self, now: float, snap: PortfolioSnapshot) -> None:
        pending = self._pending
        if not pending:
            return
        horizon = now - self._risk.pending_approval_ttl_s
        while pending and pending[0].t <= horizon:
            pending.popleft()
        last = snap.last_intent_id
        if last and pending:
            # Approvals reach the order manager in order: the one it took in last and every
            # earlier one are in its snapshot now (as open orders, or already in balances).
            for i, p in enumerate(pending):
                if p.intent_id == last:
                    for _ in range(i + 1):
                        pending.popleft()
                    break
        if pending and snap.intent_ids:
            known = snap.intent_ids
            self._pending = deque(p for p in pending if not (p.intent_id and p.intent_id in known))

    def _age(self, symbol: str) -> float | None:
        if self._data_age is not None:
            return self._data_age(symbol)
        ts = self._unpriced_ts.get(symbol)
        if ts is None:
            ev = self._priced.get(symbol)
            if ev is None:
                return None
            ts = ev.ts_ms
        return max(0, self._feed_now_ms - ts) / 1000.0

    def _prices_for(self, snap: PortfolioSnapshot) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for symbol in (*snap.positions, *self._instruments):
            if symbol not in out:
                px = self._last_px(symbol)
                if px is not None:
                    out[symbol] = to_decimal(px)
        return out

    def _equity_asset(self) -> str:
        if self._risk.equity_asset:
            return self._risk.equity_asset
        for inst in self._instruments.values():
            return inst.quote
        return ""

    def _observe_equity(self, snap: PortfolioSnapshot) -> None:
        equity = snap.equity
        if equity is None and snap.balances:
            equity = mark_to_market(snap.balances, self._instruments, self._prices_for(snap), self._equity_asset())
        if equity is None:
            return
        self._equity = equity
        day = self._wall_ms() // _DAY_MS
        dirty = False
        if self._day != day or self._day_start is None:
            self._day, self._day_start = day, equity
            dirty = True
        if self._peak is None or equity > self._peak:
            self._peak = equity
            dirty = True
        if dirty:
            self._schedule_persist()

    def _daily_pnl(self) -> Decimal | None:
        if self._equity is None or self._day_start is None:
            return None
        return self._equity - self._day_start

    def _reset_baselines(self) -> bool:
        self._observe_equity(self._portfolio())
        if self._equity is None:
            return False
        self._peak = self._equity
        self._day_start = self._equity
        self._day = self._wall_ms() // _DAY_MS
        self.log.info("risk.baselines_reset", equity=str(self._equity))
        return True

    async def _deny(self, intent: OrderIntent, d: Denial) -> None:
        self._denied += 1
        self._denied_by[d.reason] = self._denied_by.get(d.reason, 0) + 1
        self._last_denial = d.reason
        denied = OrderDenied(intent=intent, reason=d.reason, limit=d.limit, detail=d.detail, ts_ms=self._wall_ms())
        try:
            await self._events.record_risk_event(denied)
        except Exception as exc:  # the decision stands; losing its audit row is logged loudly
            self.log.error("risk.denial_store_failed", reason=d.reason, error=repr(exc))
        await self._strategy_events.send(denied)

    async def _change_state(self, state: TradingState, reason: str, kill: bool | None) -> None:
        """Switch state / kill switch, persist, audit and publish TradingStateChanged."""
        previous = self._state
        kill_now = self._kill if kill is None else kill
        if state is previous and kill_now == self._kill:
            return
        self._state = state
        self._kill = kill_now
        await self._persist()
        self.log.warning(
            "risk.trading_state_changed", state=state.value, previous=previous.value, reason=reason,
            kill_switch=kill_now,
        )
        await self._audit(
            "risk.trading_state_changed",
            {"state": state.value, "previous": previous.value, "reason": reason, "kill_switch": kill_now},
        )
        if self._state_events is not None:
            await self._state_events.send(
                TradingStateChanged(state=state, previous=previous, reason=reason, kill_switch=kill_now)
            )

    async def _audit(self, kind: str, payload: dict[str, Any]) -> None:
        try:
            await self._events.append_audit(kind, payload, ts_ms=self._wall_ms())
        except Exception as exc:  # the action stands; losing its audit row is logged loudly
            self.log.error("risk.audit_failed", kind=kind, error=repr(exc))

    def _persisted(self) -> PersistedRiskState:
        return PersistedRiskState(
            state=self._state,
            kill_switch=self._kill,
            equity_peak=self._peak,
            day=self._day,
            day_start_equity=self._day_start,
        )

    async def _persist(self) -> None:
        value = msgspec.to_builtins(self._persisted())
        try:
            await self._store.set_state(self._state_key, value)
        except Exception as exc:
            self.log.error("risk.state_persist_failed", error=repr(exc))

    def _schedule_persist(self) -> None:
        # Baseline changes are persisted in the background; state changes await _persist().
        with contextlib.suppress(RuntimeError):
            task = asyncio.get_running_loop().create_task(self._persist())
            self._bg_tasks.add(task)
            task.add_done_callback(self._bg_tasks.discard)
