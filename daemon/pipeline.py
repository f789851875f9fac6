"""The one place that wires the trading pipeline.

``build_pipeline`` turns a config plus opened resources (store, venue, market-data source,
clock) into the actors, the channels between them and their supervisors::

    order_path (rest_for_one): order_manager, reconciler, contingent, risk_gate, router
    retention                  archives old rows of the state database ([retention])
    strategies (one_for_one):  one StrategyHost per configured strategy
    bar_log
    feed

The daemon (``daemon.app``), the benchmarks (``bench/``) and the integration tests all
build through it, so what is measured and tested is what runs. The caller owns the
resources and decides what sits beside the pipeline (the daemon adds the watchdog in
front of it) and when the feed may start (``feed.start_gate``).

Market time: when the clock is a ``MarketClock`` (replay, synthetic), the first feed tap
advances it to each event's timestamp, so every actor downstream reads the same market
"now" and per-minute and per-day limits count the data's own minutes and days.

The feed's taps (market clock, the risk gate's marks, a paper venue's matching, the
contingent-order manager's triggers) are registered latest-only: inside a bar, while no
order of ours rests or waits on the symbol (the venue's ``quiet_on``) and no emulated
trigger is armed on it (the contingent-order manager's ``quiet_on``), a batched replay hands
them only the last quote of a stretch, which leaves them in the same state (``Feed.add_tap``).

Protective and algorithmic orders: the risk gate hands stops, take-profits, trailing stops,
icebergs, TWAPs and order lists to the contingent-order manager (``contingent``), which sends
them natively where the venue has them (``NativeOrders``; ``[orders] native``) or emulates
them; what it sends goes back through the risk gate, and the router hands it the events of
its orders.

Lockstep: when the data is replayed or simulated as fast as possible (a ``MarketClock``
and ``speed = 0``), the feed runs in lockstep by default (``Lockstep`` as its
``after_bars`` hook, ``Pipeline.lockstep``): after each bar it waits until the strategies
and the orders they set off caught up. So ``aaiti run`` on such a replay, a backtest and a
benchmark of the same config and tape trade the same orders and fills. A paced replay
(``speed > 0``) is live time compressed: orders have the time they have live, no lockstep.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from actors.bar_log import BarLog
from actors.contingent.contingency_manager import ContingencyManager, ContingentCommand, ContingentFeedback
from actors.event_router import EventRouter, RoutedEvent
from actors.feed import Feed
from actors.kernel.channel import Channel
from actors.kernel.clock import Clock, MarketClock, perf_ns
from actors.kernel.supervisor import ChildSpec, RestartStrategy, RestartType, Supervisor, SupervisorPolicy
from actors.model.control import ConfigChanged, SetTradingState, TradingStateChanged
from actors.model.market import MarketEvent
from actors.model.orders import OrderIntent, OrderList
from actors.model.records import LedgerSnapshot
from actors.orders.order_manager import OrderCommand, OrderManager
from actors.orders.reconciler import Reconciler
from actors.ports.capabilities import HasStartTime, MarketTap, NativeOrders, NativeSupport, QuietMarketTap
from actors.ports.market_data import MarketDataSource
from actors.ports.venue import Venue
from actors.retention import RetentionActor
from actors.risk.risk_gate import RiskGate
from actors.strategy_api import StrategyContext, load_strategy_class
from actors.strategy_host import OrderFeedback, StrategyHost
from actors.strategy_portfolio import TrackingPortfolio
from adapters.storage.retention import archive_root, segment_dir
from adapters.storage.store import Store
from config.schema.kernel import SupervisorSection
from config.schema.market import FeedSection
from config.schema.root import AaitiConfig
from daemon.lockstep import Lockstep
from daemon.notify.contingent import ObservedContingentStore, RowsTap

__all__ = ["ControlMessage", "Pipeline", "build_pipeline", "market_clock_for", "supervisor_policy"]

ControlMessage = SetTradingState | ConfigChanged


def supervisor_policy(
    section: SupervisorSection, strategy: RestartStrategy = RestartStrategy.ONE_FOR_ONE
) -> SupervisorPolicy:
    """A supervisor policy from the config's ``[supervisor]`` section."""
    return SupervisorPolicy(
        strategy=strategy,
        max_restarts=section.max_restarts,
        period_s=section.period_s,
        restart_delay_s=section.restart_delay_s,
        backoff_max_s=section.restart_backoff_max_s,
        shutdown_timeout_s=section.shutdown_timeout_s,
    )


@dataclasses.dataclass(eq=False)
class Pipeline:
    """The wired pipeline: its actors, channels and supervisors (not yet running)."""

    feed: Feed
    order_manager: OrderManager
    contingent: ContingencyManager
    reconciler: Reconciler
    risk_gate: RiskGate
    router: EventRouter
    hosts: dict[str, StrategyHost]
    bar_log: BarLog
    order_path: Supervisor
    strategies: Supervisor
    intents: Channel[OrderIntent | OrderList]
    commands: Channel[OrderCommand]
    contingent_inbox: Channel[ContingentCommand]
    contingent_events: Channel[ContingentFeedback]
    events: Channel[RoutedEvent]
    control: Channel[ControlMessage]
    state_events: Channel[TradingStateChanged]
    strategy_events: dict[str, Channel[OrderFeedback]]
    lockstep: Lockstep | None = None
    retention: RetentionActor | None = None

    @property
    def channels(self) -> list[Channel[Any]]:
        """Every channel between the pipeline's actors (for status and metrics)."""
        core: list[Channel[Any]] = [self.intents, self.commands, self.contingent_inbox, self.contingent_events,
                                    self.events, self.control, self.state_events]
        return core + list(self.strategy_events.values())

    def children(self) -> list[ChildSpec]:
        """The pipeline's subtrees in start order (stopped in reverse: producers first)."""
        # The feed ends normally only when a finite source ran out (``feed.on_end = "stop"``),
        # and the bar log and strategy hosts when the feed closed their channels: transient,
        # so that end is not "restarted" into a loop.
        retention = self.retention
        return [
            ChildSpec("order_path", lambda: self.order_path),
            *([ChildSpec("retention", lambda: retention)] if retention is not None else []),
            ChildSpec("strategies", lambda: self.strategies),
            ChildSpec("bar_log", lambda: self.bar_log, restart=RestartType.TRANSIENT),
            ChildSpec("feed", lambda: self.feed, restart=RestartType.TRANSIENT),
        ]


def market_clock_for(source: MarketDataSource) -> MarketClock:
    """A market clock starting at the source's first event (if it knows it), not at 1970."""
    src: object = source
    return MarketClock(src.start_ts_ms if isinstance(src, HasStartTime) else 0)


def _unpaced(feed: FeedSection) -> bool:
    """True when the configured source replays or simulates as fast as possible."""
    speed = feed.replay.speed if feed.source == "replay" else feed.synthetic.speed
    return feed.source in ("replay", "synthetic") and speed == 0


def _clock_tap(clock: MarketClock) -> Callable[[MarketEvent], None]:
    advance = clock.advance

    def tap(event: MarketEvent) -> None:
        advance(event.ts_ms)

    return tap


def _step_size(cfg: AaitiConfig, symbol: str) -> Decimal:
    inst = cfg.instruments.get(symbol)
    return inst.step_size if inst is not None else Decimal(0)


def _trigger_latency(
    on_submit: Callable[[int], None] | None, on_trigger_submit: Callable[[int], None]
) -> tuple[Callable[[int], None], Callable[[int], None]]:
    """Submit and trigger hooks that report trigger-to-submit latency for triggered children.

    The contingent-order manager calls the trigger hook with the ``recv_ns`` of the market
    event that crossed a trigger when it releases the child; the order manager calls the
    submit hook with the same ``origin_ns`` when that child reaches ``venue.submit``.
    """
    origins: dict[int, int] = {}

    def on_trigger(origin_ns: int) -> None:
        if origin_ns:
            origins[origin_ns] = origins.get(origin_ns, 0) + 1
            if len(origins) > 10_000:  # children denied or dropped never reach submit: forget the oldest
                del origins[next(iter(origins))]

    def submit(origin_ns: int) -> None:
        if on_submit is not None:
            on_submit(origin_ns)
        n = origins.get(origin_ns)
        if n:
            if n == 1:
                del origins[origin_ns]
            else:
                origins[origin_ns] = n - 1
            on_trigger_submit(perf_ns() - origin_ns)

    return submit, on_trigger


def build_pipeline(
    config: AaitiConfig,
    *,
    store: Store,
    venue: Venue,
    source: MarketDataSource,
    clock: Clock,
    current_config: Callable[[], AaitiConfig] | None = None,
    portfolios: Mapping[str, TrackingPortfolio] | None = None,
    on_submit: Callable[[int], None] | None = None,
    on_trigger_submit: Callable[[int], None] | None = None,
    order_manager_options: Mapping[str, Any] | None = None,
    lockstep: bool | None = None,
    retention: bool | None = None,
    on_contingent_saved: RowsTap | None = None,
) -> Pipeline:
    """Wire feed → strategies → risk gate → order manager → venue → router under supervisors.

    ``current_config`` returns the running config after a reload (the risk gate and the
    reconciler re-read their sections through it); by default the config never changes.
    ``portfolios`` are the strategies' stored positions and open orders, so a restart
    resumes them. ``on_submit(origin_ns)`` is called when an order is handed to the venue;
    ``on_trigger_submit(latency_ns)`` when the order is the child an emulated trigger released,
    with the time from the market event that crossed the trigger to that submit call.
    ``lockstep`` installs ``Lockstep`` as the feed's ``after_bars`` hook (``Pipeline.lockstep``);
    None (the default) means: when ``clock`` is a ``MarketClock`` and the configured replay or
    synthetic source is unpaced (``speed = 0``). A caller that wants other lockstep settings
    changes that instance's attributes or replaces the hook (``after_bars`` holds one callable).
    ``retention`` adds the ``RetentionActor`` (archives old rows of ``store`` into
    ``[retention] archive_dir``, resolved against the store's directory); None means
    ``[retention] enabled``. A backtest passes False: its report reads every row.
    ``on_contingent_saved(rows)`` (optional, ``NotificationService.contingent_tap``) is called with
    the rows of every save the contingent-order manager's store accepted (``ObservedContingentStore``);
    it runs in the saving task and must be cheap.
    Raises ``StrategyLoadError``/``StrategyParamsError`` for a strategy that cannot load.
    """
    cfg = config
    running = current_config or (lambda: cfg)
    ch = cfg.channels
    feed = Feed(cfg.feed, source, market_capacity=ch.market_capacity)
    feed.start_gate = asyncio.Event()
    if isinstance(clock, MarketClock):
        feed.add_tap(_clock_tap(clock), latest_only=True)
    intents: Channel[OrderIntent | OrderList] = Channel("intents", ch.intent_capacity)
    commands: Channel[OrderCommand] = Channel("order_commands", ch.order_capacity)
    contingent_inbox: Channel[ContingentCommand] = Channel("contingent", ch.order_capacity)
    contingent_events: Channel[ContingentFeedback] = Channel("contingent_events", ch.event_capacity)
    submit_hook = on_submit
    trigger_hook: Callable[[int], None] | None = None
    if on_trigger_submit is not None:
        submit_hook, trigger_hook = _trigger_latency(on_submit, on_trigger_submit)
    events: Channel[RoutedEvent] = Channel("order_events", ch.event_capacity)
    control: Channel[ControlMessage] = Channel("risk_control", 64)
    state_events: Channel[TradingStateChanged] = Channel("trading_state", 64)

    om = OrderManager(
        "order_manager",
        venue=venue,
        store=store,
        commands=commands,
        events=events,  # type: ignore[arg-type]
        clock=clock,
        drain_timeout_s=cfg.daemon.order_drain_timeout_s,
        fills_lookback_s=cfg.reconciler.fills_lookback_s,
        on_submit=submit_hook,
        control=control,
        **dict(order_manager_options or {}),
    )
    support = venue.native_support() if isinstance(venue, NativeOrders) else NativeSupport()
    contingent = ContingencyManager(
        "contingent",
        inbox=contingent_inbox,
        feedback=contingent_events,
        intents=intents,
        commands=commands,
        store=store if on_contingent_saved is None else ObservedContingentStore(store, on_contingent_saved),
        clock=clock,
        settings=lambda: running().orders,
        support=support if cfg.orders.native == "auto" else NativeSupport(),
        venue_name=venue.name,
        lookup=om.order,
        find_order=om.find_order,
        orders_loaded=om.loaded,
        step_size=lambda symbol: _step_size(cfg, symbol),
        on_trigger=trigger_hook,
        find_fills=store.fills_for_orders,
        outcomes=events,
    )
    reconciler = Reconciler(
        "reconciler",
        store=store,
        venue=venue,
        target=om,
        settings=lambda: running().reconciler,
        control=control,  # type: ignore[arg-type]
        clock=clock,
    )
    gate = RiskGate(
        "risk_gate",
        intents=intents,
        orders=commands,
        strategy_events=events,
        risk=cfg.risk,
        instruments=cfg.instruments,
        portfolio=om.portfolio,
        events=store,
        state_store=store,
        control=control,
        state_events=state_events,
        data_age=feed.data_age_s,
        risk_provider=lambda: running().risk,
        clock=clock,
        contingent=contingent_inbox,
    )
    feed.add_tap(gate.on_market, latest_only=True)
    feed.add_tap(contingent.on_market, latest_only=True, quiet=contingent.quiet_on)
    if isinstance(venue, QuietMarketTap):
        feed.add_tap(venue.on_market, latest_only=True, quiet=venue.quiet_on)
    elif isinstance(venue, MarketTap):
        feed.add_tap(venue.on_market)  # sees every event: so do all taps (``Feed.add_tap``)

    strategy_events: dict[str, Channel[OrderFeedback]] = {}
    hosts: dict[str, StrategyHost] = {}
    host_specs: list[ChildSpec] = []
    for section in cfg.strategies:
        cls = load_strategy_class(section.strategy)
        strat_events: Channel[OrderFeedback] = Channel(f"events.{section.name}", ch.event_capacity)
        strategy_events[section.name] = strat_events
        portfolio = portfolios.get(section.name) if portfolios is not None else None
        host = StrategyHost.attach(
            feed,
            StrategyContext.from_section(section, instruments=cfg.instruments),
            cls,
            order_events=strat_events,
            intents=intents,
            portfolio=portfolio,
        )
        hosts[section.name] = host
        # A disabled strategy is known to its supervisor (the admin API or a reload starts it) but
        # never started with the others: it must not trade, not even for a moment at start-up.
        host_specs.append(ChildSpec(section.name, lambda h=host: h, restart=RestartType.TRANSIENT,  # type: ignore[misc]
                                    autostart=section.enabled))
    router = EventRouter("router", events, dict(strategy_events), contingent=contingent_events)
    bar_sub = feed.subscribe("bar_log", symbols=cfg.feed.symbols, timeframes=cfg.feed.timeframes)
    bar_log = BarLog("bar_log", bar_sub.bars)

    sup = cfg.supervisor
    drain = cfg.daemon.order_drain_timeout_s + sup.shutdown_timeout_s
    order_path = Supervisor(
        "order_path",
        [
            ChildSpec("order_manager", lambda: om, shutdown_timeout_s=drain),
            ChildSpec("reconciler", lambda: reconciler),
            ChildSpec("contingent", lambda: contingent),
            ChildSpec("risk_gate", lambda: gate),
            ChildSpec("router", lambda: router),
        ],
        supervisor_policy(sup, RestartStrategy.REST_FOR_ONE),
    )
    strategies = Supervisor("strategies", host_specs, supervisor_policy(sup))
    hook: Lockstep | None = None
    in_lockstep = (isinstance(clock, MarketClock) and _unpaced(cfg.feed)) if lockstep is None else lockstep
    if in_lockstep:
        channels: tuple[Channel[Any], ...] = (intents, commands, events, contingent_inbox, contingent_events)

        def order_path_quiet() -> bool:
            return not (any(len(c) for c in channels) or gate.pending_work() or om.pending_work()
                        or om.in_flight() or contingent.pending_work()
                        or any(len(c) for c in strategy_events.values()))

        hook = Lockstep(hosts, store, order_path_quiet, idle_signals=(contingent.next_idle,))
        feed.after_bars = hook
    keeper: RetentionActor | None = None
    if cfg.retention.enabled if retention is None else retention:

        def ledger_now() -> LedgerSnapshot | None:
            snap = om.snapshot()  # the order manager's published picture: its ledger as of now
            if not snap.loaded:
                return None
            return LedgerSnapshot(ts_ms=snap.ts_ms, positions=snap.positions, balances=dict(snap.balances))

        keeper = RetentionActor(
            "retention", store, clock, lambda: running().retention,
            archive_dir=segment_dir(archive_root(store.path.parent, cfg.retention.archive_dir), store.path),
            min_keep_ms=lambda: round(running().reconciler.fills_lookback_s * 1000), ledger=ledger_now,
        )
    return Pipeline(
        feed=feed,
        order_manager=om,
        contingent=contingent,
        reconciler=reconciler,
        risk_gate=gate,
        router=router,
        hosts=hosts,
        bar_log=bar_log,
        order_path=order_path,
        strategies=strategies,
        intents=intents,
        commands=commands,
        contingent_inbox=contingent_inbox,
        contingent_events=contingent_events,
        events=events,
        control=control,
        state_events=state_events,
        strategy_events=strategy_events,
        lockstep=hook,
        retention=keeper,
    )
