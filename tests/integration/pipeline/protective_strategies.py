"""Test strategies that each submit one protective or algorithmic order, and the rig that runs them.

``Protective`` submits the order its params describe (``kind``: stop, take_profit, trailing,
oco, oto, bracket, iceberg, twap, market) when it sees its first trade print, and then records
what it emitted and every order event and denial it receives. ``ScriptedSource`` is a market-data
source the test feeds one event at a time, so every trigger is caused by exactly one print.
``Rig`` runs the daemon's own pipeline (``daemon.pipeline.build_pipeline``) over a venue and
such a source under a root supervisor, as the daemon does, and offers the waits the tests
synchronise on (all bounded; they poll the pipeline's state, never sleep for a result).
"""

from __future__ import annotations

import asyncio
import contextlib
import tomllib
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import msgspec

from actors.kernel.clock import MarketClock
from actors.kernel.supervisor import Supervisor
from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus
from actors.model.market import MarketEvent, Trade
from actors.model.orders import (
    OrderDenied,
    OrderEvent,
    OrderType,
    Side,
    TrailingSpec,
    TwapSpec,
)
from actors.model.records import OrderRecord
from actors.ports.market_data import SourceStats
from actors.ports.venue import Venue
from actors.strategy_api import Exit, Strategy, Submission
from adapters.storage.store import Store
from config.schema.root import AaitiConfig
from config.validation import build_section
from daemon.pipeline import Pipeline, build_pipeline, supervisor_policy

__all__ = ["NAME", "SYM", "Params", "Protective", "Rig", "ScriptedSource", "make_config", "running", "wait_for"]

SYM = "BTC/USDT"
NAME = "p"
WAIT = 10.0
#: Market time of the first scripted event (2023-11-14); each later one is a second after the previous.
T0_MS = 1_700_000_000_000

_BASE = """
[daemon]
mode = "paper"

[feed]
source = "synthetic"
symbols = ["BTC/USDT"]
timeframes = ["1m"]

[instruments."BTC/USDT"]
base = "BTC"
quote = "USDT"
tick_size = "0.01"
step_size = "0.00001"
min_qty = "0.00001"
min_notional = "5"

[risk]
max_order_notional = "1000000"
max_position = "100"
max_gross_exposure = "10000000"
max_open_orders = 50
max_orders_per_minute = 1000
daily_loss_limit = "1000000"
max_drawdown_pct = 100
stale_data_s = 100000

[venue]
kind = "paper"
name = "paper"

[venue.paper]
initial_balances = { BTC = "1", USDT = "100000" }
slippage_bps = 0
fsync = false

[orders]
child_retry_s = 0.05
max_child_attempts = 2
"""


def make_config(params: dict[str, Any], *, native: str = "auto", venue: dict[str, Any] | None = None,
                orders: dict[str, Any] | None = None) -> AaitiConfig:
    """The rig's config with one ``Protective`` strategy ``p`` on BTC/USDT with ``params``.

    ``venue`` replaces the ``[venue]`` table (e.g. a ccxt venue), ``orders`` adds ``[orders]`` keys.
    """
    table = tomllib.loads(_BASE)
    table["orders"] = {**table["orders"], "native": native, **(orders or {})}
    if venue is not None:
        table["venue"] = venue
        table["daemon"]["mode"] = "live"
    table["strategies"] = [{"name": NAME, "strategy": f"{__name__}:Protective", "symbols": [SYM],
                            "params": params}]
    config, issues = build_section(AaitiConfig, table)
    assert config is not None and not issues, issues
    return config


class ScriptedSource:
    """A market-data source the test feeds: ``trade(price)`` hands the feed one print."""

    name = "scripted"
    symbols = (SYM,)

    def __init__(self) -> None:
        self._queue: asyncio.Queue[MarketEvent] = asyncio.Queue()
        self._n = 0
        self.ts_ms = T0_MS

    def push(self, event: MarketEvent) -> None:
        """Hand the feed one event."""
        self._n += 1
        self._queue.put_nowait(event)

    def trade(self, price: str | Decimal, size: str = "1", *, advance_ms: int = 1000) -> None:
        """One print of ``size`` at ``price``, ``advance_ms`` of market time after the previous event."""
        self.ts_ms += advance_ms
        self.push(Trade(symbol=SYM, ts_ms=self.ts_ms, price=float(price), size=float(size), side="sell",
                        trade_id=self._n + 1))

    @property
    def sent(self) -> int:
        """Events handed to the feed so far."""
        return self._n

    async def events(self) -> AsyncIterator[MarketEvent]:
        """Yield what the test pushes, forever."""
        while True:
            yield await self._queue.get()

    def stats(self) -> SourceStats:
        """Counters."""
        return SourceStats(name=self.name, events=self._n)

    async def close(self) -> None:
        """Nothing to release."""


class Params(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What ``Protective`` submits (prices and sizes as decimal strings)."""

    kind: str
    side: str = "sell"
    size: str | None = "0.01"
    trigger: str | None = None
    limit: str | None = None
    offset: str | None = None
    offset_bps: int | None = None
    activation: str | None = None
    above: str | None = None
    below: str | None = None
    entry: str | None = None  # a limit entry's price (bracket, OTO); None: a market entry
    pending: str = "take_profit"  # an OTO's pending order: take_profit (at ``above``) or stop (at ``below``)
    display: str | None = None
    horizon_s: float = 0.0
    interval_s: float = 0.0
    participation: float | None = None


class Protective(Strategy[Params]):
    """Submits one order (see ``Params``) at its first trade print, then records its feedback."""

    params_type = Params
    subscribe_trades = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.emitted: list[Submission] = []
        self.events: list[OrderEvent] = []
        self.denials: list[OrderDenied] = []
        self.error: str = ""

    def on_trade(self, trade: Trade) -> None:
        """Submit once."""
        if self.emitted or self.error:
            return
        try:
            self.emitted.append(self._submit())
        except ValueError as exc:
            self.error = str(exc)

    def on_order_event(self, event: OrderEvent | OrderDenied) -> None:
        """Record."""
        if isinstance(event, OrderDenied):
            self.denials.append(event)
        else:
            self.events.append(event)

    def _submit(self) -> Submission:
        p = self.params
        side = Side(p.side)
        size = p.size
        if p.kind == "market":
            return self.buy(SYM, size=size) if side is Side.BUY else self.sell(SYM, size=size)
        if p.kind in ("stop", "take_profit"):
            assert size is not None and p.trigger is not None
            send = self.stop if p.kind == "stop" else self.take_profit
            return send(SYM, side, size=size, trigger_price=p.trigger, limit_price=p.limit)
        if p.kind == "trailing":
            assert size is not None
            return self.trailing_stop(SYM, side, size=size, offset=p.offset, offset_bps=p.offset_bps,
                                      activation_price=p.activation)
        if p.kind == "oco":
            assert size is not None and p.above is not None and p.below is not None
            return self.oco(SYM, side, size=size, above=Exit(p.above), below=Exit(p.below, p.limit))
        if p.kind == "oto":
            working = self.build_order(SYM, side, size=size, type=OrderType.LIMIT if p.entry else OrderType.MARKET,
                                       limit_price=p.entry)
            out = Side.SELL if side is Side.BUY else Side.BUY
            if p.pending == "stop":
                pending = self.build_order(SYM, out, type=OrderType.STOP_MARKET, trigger_price=p.below)
            else:
                pending = self.build_order(SYM, out, type=OrderType.TAKE_PROFIT, trigger_price=p.above)
            return self.oto(working, pending)
        if p.kind == "bracket":
            trailing = (TrailingSpec(offset=_dec(p.offset), offset_bps=p.offset_bps)
                        if p.offset is not None or p.offset_bps is not None else None)
            order = self.buy if side is Side.BUY else self.sell
            return order(SYM, size=size, type=OrderType.LIMIT if p.entry else OrderType.MARKET, limit_price=p.entry,
                         take_profit=p.above, stop_loss=p.below, trailing=trailing)
        if p.kind == "iceberg":
            order = self.buy if side is Side.BUY else self.sell
            return order(SYM, size=size, type=OrderType.LIMIT, limit_price=p.limit, display_size=p.display)
        if p.kind == "twap":
            order = self.buy if side is Side.BUY else self.sell
            return order(SYM, size=size, twap=TwapSpec(horizon_s=p.horizon_s, interval_s=p.interval_s,
                                                       max_participation=p.participation))
        raise ValueError(f"unknown kind {p.kind!r}")

    # -- reads for the tests ------------------------------------------------------------------
    def fills(self, client_order_id: str | None = None) -> list[OrderEvent]:
        """Fill events (of one order)."""
        return [e for e in self.events if e.fill is not None
                and (client_order_id is None or e.client_order_id == client_order_id)]


def _dec(value: str | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


class Rig:
    """A running pipeline with one ``Protective`` strategy (see the module docstring)."""

    def __init__(self, built: Pipeline, store: Store, source: ScriptedSource, venue: Venue) -> None:
        self.built = built
        self.store = store
        self.source = source
        self.venue = venue

    # -- the strategy -------------------------------------------------------------------------
    @property
    def strategy(self) -> Protective:
        """The running strategy instance."""
        strategy = self.built.hosts[NAME].strategy
        assert isinstance(strategy, Protective)
        return strategy

    def position(self) -> Decimal:
        """The strategy's position in SYM."""
        return self.built.hosts[NAME].portfolio.position(SYM)

    # -- market --------------------------------------------------------------------------------
    async def trade(self, price: str | Decimal, size: str = "1", *, advance_ms: int = 1000) -> None:
        """Print one trade through the feed and wait until every tap has seen it."""
        self.source.trade(price, size, advance_ms=advance_ms)
        target = self.source.sent
        await wait_for(lambda: self.built.feed.snapshot().events >= target)

    async def start_and_submit(self, price: str | Decimal) -> Submission:
        """The first print: the strategy submits its order; returns what it emitted."""
        await self.trade(price)
        await wait_for(lambda: self.strategy.emitted or self.strategy.error)
        assert not self.strategy.error, self.strategy.error
        return self.strategy.emitted[0]

    # -- contingent orders ------------------------------------------------------------------------
    def active(self) -> list[Any]:
        """Active contingent orders (the manager's book)."""
        return self.built.contingent.views()

    async def wait_active(self, kind: ContingentKind, *, status: ContingentStatus | None = None) -> Any:
        """Until the manager holds one order of ``kind`` (in ``status``); return its view."""
        def found() -> Any:
            return next((v for v in self.active() if v.kind == kind.value
                         and (status is None or v.status == status.value)), None)
        await wait_for(found)
        return found()

    async def wait_final(self, kind: ContingentKind) -> ContingentRow:
        """Until an order of ``kind`` reached a final status; return its stored row."""
        def done() -> bool:
            return any(k is kind for (k, _mode, _status) in self.built.contingent.completed())
        await wait_for(done)
        rows = [r for r in await self.store.recent_contingents(50) if r.kind is kind and not r.active]
        assert rows, f"no final {kind} row stored"
        return rows[0]

    async def contingents(self) -> list[ContingentRow]:
        """Every stored contingent order (newest first)."""
        return await self.store.recent_contingents(100)

    # -- orders ----------------------------------------------------------------------------------
    def orders(self) -> list[OrderRecord]:
        """Every order of the strategy the order manager knows (open and closed), in the order they
        were written ahead (their first events' order)."""
        om = self.built.order_manager
        seen = dict.fromkeys(e.client_order_id for e in self.strategy.events)
        records = [om.order(c) for c in seen]
        return [r for r in records if r is not None]

    def children(self, parent: str) -> list[OrderRecord]:
        """The orders a contingent order sent."""
        return [r for r in self.orders() if r.parent == parent]

    async def wait_orders(self, pred: Callable[[list[OrderRecord]], object]) -> list[OrderRecord]:
        """Until ``pred(orders())`` holds."""
        await wait_for(lambda: pred(self.orders()))
        return self.orders()


async def wait_for(pred: Callable[[], object], timeout: float = WAIT) -> None:
    """Poll ``pred`` until truthy (a state with no event to await); TimeoutError after ``timeout``."""
    async def poll() -> None:
        while not pred():  # noqa: ASYNC110 - the pipeline's state has no event for these conditions
            await asyncio.sleep(0.002)
    await asyncio.wait_for(poll(), timeout)


@contextlib.asynccontextmanager
async def running(config: AaitiConfig, venue: Venue, store: Store, clock: MarketClock,
                  source: ScriptedSource | None = None) -> AsyncIterator[Rig]:
    """The pipeline over ``venue`` (started by the caller, on ``clock``) under a root supervisor,
    reconciled and fed."""
    source = source or ScriptedSource()
    built = build_pipeline(config, store=store, venue=venue, source=source, clock=clock, lockstep=False,
                           retention=False)
    root = Supervisor("root", built.children(), supervisor_policy(config.supervisor))
    task = asyncio.create_task(root.main())
    try:
        await wait_for(lambda: built.reconciler.ready.is_set() or task.done())
        assert not task.done(), task
        await asyncio.wait_for(built.contingent.resumed.wait(), WAIT)
        assert built.feed.start_gate is not None
        built.feed.start_gate.set()
        yield Rig(built, store, source, venue)
        assert not task.done(), task
        assert built.order_path.total_restarts == 0, built.order_path.last_errors
        assert built.strategies.total_restarts == 0, built.strategies.last_errors
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

