"""Composition root: builds resources, channels, actors and the supervision tree.

Tree (children start in order and stop in reverse)::

    root (one_for_one)
    ├── watchdog
    ├── order_path (rest_for_one): order_manager, reconciler, risk_gate, router
    ├── strategies (one_for_one): one StrategyHost per configured strategy
    └── feed

So an orderly stop stops producers first — feed, strategies, then the risk gate — and
the order manager last, with ``daemon.order_drain_timeout_s`` to finish in-flight work.
A crash of the order manager restarts everything after it in the order path, and the
reconciler re-establishes truth from the venue before the feed is let through.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Any

import structlog

from actors.bar_log import BarLog
from actors.event_router import EventRouter, RoutedEvent
from actors.feed import FeedActor
from actors.kernel.channel import Channel
from actors.kernel.supervisor import ChildSpec, RestartStrategy, Supervisor, SupervisorPolicy
from actors.model.control import ConfigChanged, SetTradingState, TradingState, TradingStateChanged
from actors.model.orders import OrderIntent
from actors.orders.order_manager import OrderCommand, OrderManager
from actors.orders.reconciler import ReconcilerActor
from actors.ports.market_data import MarketDataSource
from actors.ports.venue import Venue
from actors.risk.portfolio import portfolio_from_orders
from actors.risk.risk_gate import RiskGate
from actors.strategy_api import OpenOrder, StrategyContext, load_strategy_class
from actors.strategy_host import OrderFeedback, StrategyHost
from actors.strategy_portfolio import TrackingPortfolio
from actors.watchdog import DEGRADED, Watchdog
from adapters.market_data.factory import build_source
from adapters.storage.paths import state_db_path
from adapters.storage.store import Store
from config.loader import LoadedConfig
from config.render import secret_field_names
from config.schema.root import AaitiConfig
from config.schema.trading import CcxtVenueSection
from daemon import exit_codes
from daemon.admin.auth import AdminConfigError, resolve_token
from daemon.admin.server import AdminServer
from daemon.app_admin import AppAdmin
from daemon.app_metrics import app_metrics_snapshot
from daemon.logging_setup import LoggingSetup
from daemon.metrics import Metrics
from daemon.reloader import ConfigReloader, ReloadResult
from daemon.sd_notify import SystemdNotifier


class StartupError(Exception):
    """Start-up cannot proceed (bad state file, bad data file); carries the exit code."""

    def __init__(self, message: str, exit_code: int = exit_codes.STATE_ERROR) -> None:
        self.exit_code = exit_code
        super().__init__(message)


class App:
    """The running daemon's object graph. Owns no trading state itself; actors do."""

    def __init__(self, loaded: LoadedConfig, logging_setup: LoggingSetup) -> None:
        self.logging = logging_setup
        self.reloader = ConfigReloader(loaded)
        self.started_at = time.time()
        self.log: Any = structlog.get_logger("aaiti").bind(actor="app")
        cfg = loaded.config
        self.logging.redactor.set_keys(set(cfg.log.redact_keys) | secret_field_names(cfg))
        self.stop_timeout_s = cfg.daemon.stop_timeout_s
        self.state_dir = loaded.resolve(cfg.daemon.state_dir)
        self.notifier = SystemdNotifier(min_status=cfg.systemd.watchdog_min_status, enabled=cfg.systemd.notify)
        self.metrics = Metrics(
            build_info={"mode": cfg.daemon.mode, "instance": cfg.daemon.name, "version": "0.1.0"},
            cache_s=cfg.admin.metrics_cache_s,
        )
        self.metrics.set_source(lambda: app_metrics_snapshot(self))
        self.watchdog = Watchdog(
            "watchdog",
            lambda: self.root,
            lambda: self.config.watchdog,
            checks=[self._health_checks],
            on_verdict=self.notifier.on_verdict,
            on_lag=self.metrics.observe_loop_lag,
        )
        self.root = Supervisor("root", [ChildSpec("watchdog", lambda: self.watchdog)], self._policy())
        self.store: Store | None = None
        self.venue: Venue | None = None
        self.simulator: Any = None
        self.source: MarketDataSource | None = None
        self.feed: FeedActor | None = None
        self.order_manager: OrderManager | None = None
        self.reconciler: ReconcilerActor | None = None
        self.risk_gate: RiskGate | None = None
        self.hosts: dict[str, StrategyHost] = {}
        self._disabled_at_start: list[str] = []
        self.strategies_sup: Supervisor | None = None
        self.control: Channel[SetTradingState | ConfigChanged] | None = None
        self.commands: Channel[OrderCommand] | None = None
        self.channels: list[Channel[Any]] = []
        self.admin: AdminServer | None = None
        self.trading_state = TradingState.ACTIVE
        self._state_changed = asyncio.Event()
        self._ready_logged = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.reloader.subscribe(self._on_reload)

    @property
    def config(self) -> AaitiConfig:
        """The running config."""
        return self.reloader.current.config

    def _policy(self, strategy: RestartStrategy = RestartStrategy.ONE_FOR_ONE) -> SupervisorPolicy:
        s = self.config.supervisor
        return SupervisorPolicy(
            strategy=strategy,
            max_restarts=s.max_restarts,
            period_s=s.period_s,
            restart_delay_s=s.restart_delay_s,
            backoff_max_s=s.restart_backoff_max_s,
            shutdown_timeout_s=s.shutdown_timeout_s,
        )

    # -- building ----------------------------------------------------------------------
    async def _open_store(self) -> Store:
        from adapters.storage.errors import StoreError

        cfg = self.config
        path = state_db_path(self.state_dir, cfg.daemon.mode, cfg.venue.name)
        try:
            return await Store.open(path, fsync_orders=cfg.daemon.mode == "live")
        except StoreError as exc:
            raise StartupError(f"state database unusable: {exc}") from None

    async def _open_venue(self) -> Venue:
        cfg = self.config
        venue: Venue
        if cfg.venue.kind == "paper":
            from adapters.paper_venue import PaperVenue

            venue = PaperVenue(
                self.state_dir / f"paper-venue-{cfg.venue.name}.db",
                cfg.venue.paper,
                cfg.instruments,
                venue_name=cfg.venue.name,
            )
        else:
            from adapters.ccxt_venue.venue import CcxtVenue

            venue = CcxtVenue(self._ccxt_section(), name=cfg.venue.name, symbols=cfg.feed.symbols)
        try:
            await venue.start()
        except Exception as exc:
            raise StartupError(f"venue {cfg.venue.name} could not start: {exc}") from None
        return venue

    async def _start_simulator(self) -> None:
        """Start the in-process Binance simulator when the config asks for it."""
        section = self.config.venue.ccxt
        if not section.start_simulator or (self.config.venue.kind != "ccxt" and self.config.feed.source != "ccxt"):
            return
        from adapters.ccxt_venue.client import start_simulator

        try:
            self.simulator = await start_simulator(section)
        except OSError as exc:
            raise StartupError(f"cannot start the simulator on port {section.simulator_port}: {exc.strerror}",
                               exit_codes.CONFIG_ERROR) from None
        self.log.info("simulator.started", base_url=self.simulator.base_url)

    def _ccxt_section(self) -> CcxtVenueSection:
        """The ccxt section, pointed at the in-process simulator's actual address if one runs."""
        section = self.config.venue.ccxt
        if self.simulator is not None:
            return dataclasses.replace(section, base_url=self.simulator.base_url)
        return section

    def _open_source(self) -> MarketDataSource:
        from adapters.market_data.errors import DataFileError

        try:
            exchange = getattr(self.venue, "exchange", None) if self.config.venue.kind == "ccxt" else None
            return build_source(
                self.config.feed, self.reloader.current.resolve, ccxt=self._ccxt_section(), exchange=exchange
            )
        except DataFileError as exc:
            raise StartupError(f"market data file unusable: {exc}") from None
        except Exception as exc:
            raise StartupError(f"market data source unusable: {exc}", exit_codes.CONFIG_ERROR) from None

    async def _strategy_portfolios(self, store: Store) -> dict[str, TrackingPortfolio]:
        """Each strategy's positions and open orders as stored, so a restart resumes them."""
        views = {s.name: TrackingPortfolio() for s in self.config.strategies}
        for (strategy, symbol), size in (await store.strategy_positions()).items():
            if strategy in views and size != 0:
                views[strategy].set_position(symbol, size)
        for rec in await store.open_orders():
            view = views.get(rec.strategy)
            if view is not None:
                view.add_open_order(OpenOrder(client_order_id=rec.client_order_id, symbol=rec.symbol, side=rec.side,
                                              size=rec.size, filled=rec.filled, price=rec.price,
                                              strategy=rec.strategy))
        return views

    def _build_tree(
        self, store: Store, venue: Venue, source: MarketDataSource, portfolios: dict[str, TrackingPortfolio]
    ) -> None:
        cfg = self.config
        ch = cfg.channels
        feed = FeedActor(cfg.feed, source, market_capacity=ch.market_capacity)
        feed.start_gate = asyncio.Event()
        self.feed = feed
        intents: Channel[OrderIntent] = Channel("intents", ch.intent_capacity)
        commands: Channel[OrderCommand] = Channel("order_commands", ch.order_capacity)
        events: Channel[RoutedEvent] = Channel("order_events", ch.event_capacity)
        control: Channel[SetTradingState | ConfigChanged] = Channel("risk_control", 64)
        state_events: Channel[TradingStateChanged] = Channel("trading_state", 64)
        self.commands, self.control = commands, control
        self.channels = [intents, commands, events, control, state_events]

        om = OrderManager(
            "order_manager",
            venue=venue,
            store=store,
            commands=commands,
            events=events,  # type: ignore[arg-type]
            drain_timeout_s=cfg.daemon.order_drain_timeout_s,
            fills_lookback_s=cfg.reconciler.fills_lookback_s,
            on_submit=self._on_submit,
        )
        self.order_manager = om
        reconciler = ReconcilerActor(
            "reconciler",
            store=store,
            venue=venue,
            target=om,
            settings=lambda: self.config.reconciler,
            control=control,  # type: ignore[arg-type]
        )
        self.reconciler = reconciler
        gate = RiskGate(
            "risk_gate",
            intents=intents,
            orders=commands,
            strategy_events=events,
            risk=cfg.risk,
            instruments=cfg.instruments,
            portfolio=lambda: portfolio_from_orders(
                om.snapshot(), self.config.instruments, gate.reference_price,
                fee_bps=self.config.risk.assumed_fee_bps,
            ),
            events=store,
            state_store=store,
            control=control,
            state_events=state_events,
            data_age=feed.data_age_s,
            risk_provider=lambda: self.config.risk,
        )
        self.risk_gate = gate
        feed.add_tap(gate.on_market)
        on_market = getattr(venue, "on_market", None)
        if callable(on_market):
            feed.add_tap(on_market)

        targets: dict[str, Channel[Any]] = {}
        host_specs: list[ChildSpec] = []
        for section in cfg.strategies:
            cls = load_strategy_class(section.strategy)
            strat_events: Channel[OrderFeedback] = Channel(f"events.{section.name}", ch.event_capacity)
            targets[section.name] = strat_events
            host = StrategyHost.attach(
                feed,
                StrategyContext.from_section(section),
                cls,
                order_events=strat_events,
                intents=intents,
                portfolio=portfolios[section.name],
            )
            self.hosts[section.name] = host
            self.channels.append(strat_events)
            host_specs.append(ChildSpec(section.name, lambda h=host: h))  # type: ignore[misc]
        router = EventRouter("router", events, targets)
        self.router = router
        bar_sub = feed.subscribe("bar_log", symbols=cfg.feed.symbols, timeframes=cfg.feed.timeframes)
        bar_log = BarLog("bar_log", bar_sub.bars)

        drain = cfg.daemon.order_drain_timeout_s + cfg.supervisor.shutdown_timeout_s
        order_path = Supervisor(
            "order_path",
            [
                ChildSpec("order_manager", lambda: om, shutdown_timeout_s=drain),
                ChildSpec("reconciler", lambda: reconciler),
                ChildSpec("risk_gate", lambda: gate),
                ChildSpec("router", lambda: router),
            ],
            self._policy(RestartStrategy.REST_FOR_ONE),
        )
        strategies = Supervisor("strategies", host_specs, self._policy())
        self.strategies_sup = strategies
        enabled = {s.name for s in cfg.strategies if s.enabled}
        self.root = Supervisor(
            "root",
            [
                ChildSpec("watchdog", lambda: self.watchdog),
                ChildSpec("order_path", lambda: order_path),
                ChildSpec("strategies", lambda: strategies),
                ChildSpec("bar_log", lambda: bar_log),
                ChildSpec("feed", lambda: feed),
            ],
            self._policy(),
        )
        self._disabled_at_start = [s.name for s in cfg.strategies if s.name not in enabled]
        self._spawn(self._watch_trading_state(state_events))

    def _on_submit(self, origin_ns: int) -> None:
        # End of tick-to-submit: from the market event that caused the intent to the venue call.
        if origin_ns:
            self.metrics.observe_tick_to_submit((time.perf_counter_ns() - origin_ns) / 1e9)

    def _adapter_stats(self) -> list[Any]:
        out = []
        for owner in (self.venue, self.source):
            stats = getattr(owner, "stats", None)
            if callable(stats):
                out.append(stats())
        return out

    def breaker_snapshots(self) -> list[dict[str, Any]]:
        """Circuit breakers of the venue adapter (name, state, trips, latched, reason)."""
        out: list[dict[str, Any]] = []
        for stats in self._adapter_stats():
            for b in getattr(stats, "breakers", ()):
                out.append({"name": b.name, "state": str(b.state), "trips": b.trips_total, "latched": b.latched,
                            "open_remaining_s": b.open_remaining_s, "reason": b.reason})
        return out

    def reconnect_counts(self) -> dict[str, int]:
        """Reconnects per stream of the venue adapter (user data) and the market source."""
        out: dict[str, int] = {}
        for stats in self._adapter_stats():
            reconnects = getattr(stats, "reconnects", None)
            if isinstance(reconnects, dict):
                out.update({str(k): int(v) for k, v in reconnects.items()})
        return out

    # -- health and readiness ------------------------------------------------------------
    def _health_checks(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        if self.reconciler is not None and not self.reconciler.ready.is_set():
            out.append((DEGRADED, "start-up reconciliation not complete"))
        if self.feed is not None:
            snap = self.feed.snapshot()
            if snap.live and not snap.ended:
                for sym in snap.symbols:
                    if sym.stale:
                        out.append((DEGRADED, f"market data for {sym.symbol} is stale"))
        if self.trading_state is TradingState.HALTED:
            out.append((DEGRADED, "trading HALTED"))
        return out

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready once reconciled, the feed is live and trading is not halted."""
        reasons: list[str] = []
        if self.reconciler is None or not self.reconciler.ready.is_set():
            reasons.append("start-up reconciliation not complete")
        if self.feed is None or not self.feed.snapshot().live:
            reasons.append("market data feed not live")
        if self.trading_state is TradingState.HALTED:
            reasons.append("trading is HALTED")
        return (not reasons, reasons)

    async def _watch_trading_state(self, ch: Channel[TradingStateChanged]) -> None:
        async for ev in ch:
            self.trading_state = ev.state
            self._state_changed.set()
            self._state_changed = asyncio.Event()

    async def _gate_feed_on_reconcile(self) -> None:
        assert self.reconciler is not None and self.feed is not None and self.feed.start_gate is not None
        await self.reconciler.ready.wait()
        report = self.reconciler.last_report
        self.log.info(
            "reconcile.startup_done",
            discrepancies=len(report.discrepancies) if report is not None else 0,
        )
        if self.risk_gate is not None:
            self.trading_state = self.risk_gate.trading_state
        self.feed.start_gate.set()
        self.log.info("daemon.ready", strategies=sorted(self.hosts), trading_state=self.trading_state.value)
        self.notifier.ready(f"trading {self.trading_state.value}; strategies: {', '.join(sorted(self.hosts))}")

    # -- reload ----------------------------------------------------------------------------
    def _on_reload(self, new: LoadedConfig, changed: tuple[str, ...]) -> None:
        cfg = new.config
        if "log.level" in changed:
            self.logging.level.set(cfg.log.level)
        if "log.ring_size" in changed:
            self.logging.ring.resize(cfg.log.ring_size)
        if "admin.metrics_cache_s" in changed:
            self.metrics.cache_s = cfg.admin.metrics_cache_s
        if any(p.startswith("risk.") for p in changed) and self.control is not None:
            # The gate re-reads its limits at its next message boundary.
            self.control.try_send(ConfigChanged(version=new.version))
        if any(p.startswith("feed.replay.speed") or p.startswith("feed.synthetic.speed") for p in changed):
            set_speed = getattr(self.source, "set_speed", None)
            if callable(set_speed):
                kind = cfg.feed.source
                set_speed(cfg.feed.replay.speed if kind == "replay" else cfg.feed.synthetic.speed)
        for section in cfg.strategies:
            host = self.hosts.get(section.name)
            if host is None:
                continue
            if dict(host.context.params) != dict(section.params):
                host.reconfigure(section.params)
            sup = self.strategies_sup
            if sup is not None:
                if section.enabled and not sup.is_running(section.name):
                    sup.start_child(section.name)
                elif not section.enabled and sup.is_running(section.name):
                    self._spawn(self._terminate_strategy(section.name))

    async def _terminate_strategy(self, name: str) -> None:
        if self.strategies_sup is not None:
            await self.strategies_sup.terminate_child(name)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- Runnable ----------------------------------------------------------------------
    async def open(self) -> None:
        """Open the store, the venue and the data source, and build the actor tree."""
        cfg = self.config
        self.log.info("daemon.starting", name=cfg.daemon.name, mode=cfg.daemon.mode,
                      config=str(self.reloader.current.path or "<defaults>"), state_dir=str(self.state_dir))
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create state directory {self.state_dir}: {exc.strerror}") from None
        await self._start_simulator()
        self.store = await self._open_store()
        self.venue = await self._open_venue()
        self.source = self._open_source()
        portfolios = await self._strategy_portfolios(self.store)
        try:
            self._build_tree(self.store, self.venue, self.source, portfolios)
        except Exception as exc:
            raise StartupError(f"cannot build the daemon: {exc}", exit_codes.CONFIG_ERROR) from None
        if cfg.admin.enabled:
            await self._start_admin()

    async def _start_admin(self) -> None:
        cfg = self.config
        try:
            resolved = resolve_token(cfg.admin, base_dir=self.reloader.current.base_dir)
            if resolved is not None:
                self.logging.redactor.add_secret_value(resolved.value)
            self.admin = AdminServer(AppAdmin(self), lambda: self.config.admin, resolved.value if resolved else None)
            await self.admin.start()
        except AdminConfigError as exc:
            raise StartupError(f"admin endpoint: {exc}", exit_codes.CONFIG_ERROR) from None

    async def after_start(self) -> None:
        """The tree is running: stop disabled strategies, release the feed once reconciled."""
        for name in self._disabled_at_start:
            if self.strategies_sup is not None:
                await self.strategies_sup.terminate_child(name)
        await self._gate_feed_on_reconcile()

    async def on_give_up(self, reason: str) -> None:
        """Root supervisor gave up: trading is over; apply the open-order policy, audit."""
        self.log.error("daemon.give_up_policy", reason=reason,
                       cancel_open_orders=self.config.daemon.cancel_open_orders_on_exit)
        if self.store is not None:
            with contextlib.suppress(Exception):
                await self.store.append_audit("daemon.gave_up", {"reason": reason})
        if self.config.daemon.cancel_open_orders_on_exit:
            await self._cancel_open_orders_directly("root supervisor gave up")

    async def _cancel_open_orders_directly(self, reason: str) -> None:
        if self.store is None or self.venue is None:
            return
        for rec in await self.store.open_orders():
            try:
                await self.venue.cancel(rec.client_order_id, rec.symbol)
                self.log.info("order.cancel_on_exit", client_order_id=rec.client_order_id, reason=reason)
            except Exception as exc:
                self.log.error("order.cancel_on_exit_failed", client_order_id=rec.client_order_id,
                               error=repr(exc))

    def on_stopping(self) -> None:
        """An orderly stop has begun."""
        self.log.info("daemon.stopping")
        self.notifier.stopping("stopping: finishing in-flight orders")

    async def close(self) -> None:
        """Close resources after the tree stopped (source, venue, store), in that order."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.admin is not None:
            await self.admin.stop()
        if self.config.daemon.cancel_open_orders_on_exit and self.order_manager is not None:
            await self._cancel_open_orders_directly("orderly stop")
        for name, closer in (("source", self.source), ("venue", self.venue), ("store", self.store)):
            if closer is None:
                continue
            try:
                await closer.close()
            except Exception as exc:
                self.log.error("daemon.close_failed", resource=name, error=repr(exc))
        if self.simulator is not None:
            try:
                await self.simulator.stop()
            except Exception as exc:
                self.log.error("daemon.close_failed", resource="simulator", error=repr(exc))
        self.notifier.close()

    async def reload(self, source: str) -> None:
        """Reload from the config file (SIGHUP)."""
        await self.reload_config(source)

    async def reload_config(self, source: str) -> ReloadResult:
        """The one reload path for SIGHUP, POST /reload and ``aaiti reload``, with sd_notify around it."""
        self.notifier.reloading(f"reloading config ({source})")
        try:
            result = await self.reloader.reload(source)
        finally:
            self.notifier.ready(f"config version {self.reloader.current.version}")
        if self.store is not None:
            # Every reload attempt is part of the audit trail: who changed what, and what was refused.
            with contextlib.suppress(Exception):
                self.store.append_audit_nowait("config.reload", result.as_dict())
        return result

    # -- commands (admin) ----------------------------------------------------------------
    async def set_trading_state(self, cmd: SetTradingState, timeout_s: float = 2.0) -> TradingState:
        """Send a trading-state command to the risk gate and wait for the resulting state."""
        if self.control is None:
            raise RuntimeError("daemon not started")
        waiter = self._state_changed
        await self.control.send(cmd)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout_s)
        if self.risk_gate is not None:
            self.trading_state = self.risk_gate.trading_state
        return self.trading_state

    @property
    def data_dir(self) -> Path:
        """Directory holding the state databases."""
        return self.state_dir
