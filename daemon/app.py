"""Composition root: opens resources, builds the pipeline and the supervision tree.

Tree (children start in order and stop in reverse)::

    root (one_for_one)
    ├── watchdog
    ├── order_path (rest_for_one): order_manager, reconciler, contingent, risk_gate, router
    ├── strategies (one_for_one): one StrategyHost per configured strategy
    ├── bar_log
    └── feed

Everything below the watchdog is built by ``daemon.pipeline.build_pipeline``, the one
wiring that backtests, benchmarks and tests use too. So an orderly stop stops producers
first — feed, strategies, then the risk gate — and the order manager last, with
``daemon.order_drain_timeout_s`` to finish in-flight work. A crash of the order manager
restarts everything after it in the order path, and the reconciler re-establishes truth
from the venue before the feed is let through.

Admin and metrics see the daemon through ``DaemonView`` (``daemon.daemon_view``), which
``App`` implements with snapshot reads and messages.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import structlog

from actors.bar_log import BarHistory
from actors.contingent.book import CountKey
from actors.feed_state import FeedSnapshot
from actors.kernel.channel import ChannelStats
from actors.kernel.clock import Clock, MarketClock, WallClock, perf_ns, wall_ms
from actors.kernel.supervisor import ChildSpec, ChildStatus, Supervisor
from actors.model.contingent import ContingentView
from actors.model.control import ConfigChanged, HealthVerdict, SetTradingState, TradingState, TradingStateChanged
from actors.model.orders import CancelAll, CancelOrder
from actors.orders.order_manager import OrderManagerSnapshot
from actors.ports.capabilities import AdjustableSpeed, ConnectionHealth, ReportsConnectionHealth
from actors.ports.market_data import MarketDataSource
from actors.ports.venue import Venue
from actors.risk.risk_gate import RiskSnapshot
from actors.strategy_portfolio import TrackingPortfolio
from actors.watchdog import DEGRADED, Watchdog
from adapters.storage.store import Store
from config.loader import LoadedConfig
from config.render import secret_field_names
from config.schema.root import AaitiConfig
from daemon import exit_codes
from daemon.admin.auth import AdminConfigError, resolve_token
from daemon.admin.server import AdminServer
from daemon.app_admin import AppAdmin, EquityHistory
from daemon.app_metrics import ContingentMetrics, metrics_snapshot
from daemon.logging_setup import LoggingSetup, LogRing
from daemon.metrics import Metrics
from daemon.notify import NotificationService, NotifyConfigError, OutboxError
from daemon.pipeline import Pipeline, build_pipeline, supervisor_policy
from daemon.reloader import ConfigReloader, ReloadResult
from daemon.resources import Resources, StartupError
from daemon.sd_notify import SystemdNotifier
from daemon.summary import DaemonSummary

VERSION = "0.1.0"


def clock_for(config: AaitiConfig) -> Clock:
    """Market time when the data is replayed or simulated, the wall clock when it is live.

    A market clock is created at 0 and moved to the data's first timestamp once the source
    is open (``App.open``), before anything reads it.
    """
    return MarketClock() if config.feed.source in ("replay", "synthetic") else WallClock()


class App:
    """The running daemon: resources, the pipeline, the root supervisor; implements DaemonView.

    It owns no trading state: the order manager owns orders and positions, the risk gate
    the trading state; ``App`` reads their published snapshots.
    """

    def __init__(self, loaded: LoadedConfig, logging_setup: LoggingSetup) -> None:
        self.logging = logging_setup
        self.reloader = ConfigReloader(loaded)
        self._started_at_ms = wall_ms()
        self.log: Any = structlog.get_logger("aaiti").bind(actor="app")
        cfg = loaded.config
        self.logging.redactor.set_keys(set(cfg.log.redact_keys) | secret_field_names(cfg))
        self.stop_timeout_s = cfg.daemon.stop_timeout_s
        self.state_dir = loaded.resolve(cfg.daemon.state_dir)
        self.clock = clock_for(cfg)
        self.notifier = SystemdNotifier(min_status=cfg.systemd.watchdog_min_status, enabled=cfg.systemd.notify)
        # Off (no-op hooks) until open() resolves the [notify] URLs.
        self.notifications = NotificationService.off()
        self.metrics = Metrics(
            build_info={"mode": cfg.daemon.mode, "instance": cfg.daemon.name, "version": VERSION},
            cache_s=cfg.admin.metrics_cache_s,
        )
        self.metrics.set_source(lambda: metrics_snapshot(self))
        self.contingent_metrics = ContingentMetrics(self.metrics.registry, self)
        self.watchdog = Watchdog(
            "watchdog",
            lambda: self.root,
            lambda: self.config.watchdog,
            checks=[self._health_checks],
            on_verdict=self._on_verdict,
            on_lag=self.metrics.observe_loop_lag,
        )
        self.root = Supervisor(
            "root", [ChildSpec("watchdog", lambda: self.watchdog)], supervisor_policy(cfg.supervisor)
        )
        self.resources = Resources(loaded, self.state_dir, self.clock)
        self.pipeline: Pipeline | None = None
        self.admin: AdminServer | None = None
        self._state_changed = asyncio.Event()
        self._ready_sent = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.reloader.subscribe(self._on_reload)

    @property
    def config(self) -> AaitiConfig:
        """The running config."""
        return self.reloader.current.config

    # -- building ----------------------------------------------------------------------
    def _build_tree(self, store: Store, venue: Venue, source: MarketDataSource,
                    portfolios: dict[str, TrackingPortfolio]) -> None:
        cfg = self.config
        pipeline = build_pipeline(
            cfg, store=store, venue=venue, source=source, clock=self.clock,
            current_config=lambda: self.config, portfolios=portfolios, on_submit=self._on_submit,
            on_trigger_submit=self.contingent_metrics.observe_trigger_to_submit,
            on_contingent_saved=self.notifications.contingent_tap,
        )
        self.pipeline = pipeline
        self.root = Supervisor(
            "root", [ChildSpec("watchdog", lambda: self.watchdog), *pipeline.children()],
            supervisor_policy(cfg.supervisor),
        )
        self._spawn(self._watch_trading_state(pipeline.state_events))
        self.notifications.attach(pipeline.router, pipeline.order_manager.order, pipeline.contingent.view_of)

    def _on_submit(self, origin_ns: int) -> None:
        # End of tick-to-submit: from the market event that caused the intent to the venue call.
        if origin_ns:
            self.metrics.observe_tick_to_submit((perf_ns() - origin_ns) / 1e9)

    # -- DaemonView: reads ---------------------------------------------------------------
    @property
    def loaded(self) -> LoadedConfig:
        """The running config with its path, version and load time."""
        return self.reloader.current

    @property
    def started_at_ms(self) -> int:
        """Wall-clock start time of the process, epoch ms."""
        return self._started_at_ms

    @property
    def store(self) -> Store | None:
        """The state store once open."""
        return self.resources.store

    @property
    def log_ring(self) -> LogRing:
        """The in-memory log ring."""
        return self.logging.ring

    def health(self) -> HealthVerdict:
        """The watchdog's latest verdict."""
        return self.watchdog.verdict

    def loop_lag_ms(self) -> float:
        """The watchdog's latest event-loop lag sample."""
        return self.watchdog.loop_lag_ms

    def trading_state(self) -> tuple[TradingState, bool]:
        """The risk gate's trading state and kill switch (ACTIVE before it exists)."""
        gate = self.pipeline.risk_gate if self.pipeline is not None else None
        if gate is None:
            return TradingState.ACTIVE, False
        return gate.trading_state, gate.kill_switch

    def actor_statuses(self) -> list[ChildStatus]:
        """Every supervised actor's status."""
        return self.root.statuses()

    def channel_stats(self) -> list[ChannelStats]:
        """Counters of every channel of the pipeline."""
        return [ch.stats for ch in self.pipeline.channels] if self.pipeline is not None else []

    def connection_health(self) -> ConnectionHealth:
        """Breakers and reconnects of the venue and the market-data source."""
        breakers: list[Any] = []
        reconnects: dict[str, int] = {}
        owners: tuple[object, ...] = (self.resources.venue, self.resources.source)
        for owner in owners:
            if isinstance(owner, ReportsConnectionHealth):
                h = owner.connection_health()
                breakers.extend(h.breakers)
                reconnects.update(h.reconnects)
        return ConnectionHealth(breakers=tuple(breakers), reconnects=reconnects)

    def feed_snapshot(self) -> FeedSnapshot | None:
        """The feed's snapshot."""
        return self.pipeline.feed.snapshot() if self.pipeline is not None else None

    def order_snapshot(self) -> OrderManagerSnapshot | None:
        """The order manager's snapshot."""
        return self.pipeline.order_manager.snapshot() if self.pipeline is not None else None

    def risk_snapshot(self) -> RiskSnapshot | None:
        """The risk gate's snapshot."""
        return self.pipeline.risk_gate.snapshot() if self.pipeline is not None else None

    def reference_price(self, symbol: str) -> Decimal | None:
        """The risk gate's reference price for ``symbol``."""
        return self.pipeline.risk_gate.reference_price(symbol) if self.pipeline is not None else None

    def contingent_views(self) -> list[ContingentView]:
        """The contingent-order manager's active orders."""
        return self.pipeline.contingent.views() if self.pipeline is not None else []

    def contingent_counts(self) -> dict[CountKey, int]:
        """Active contingent orders by (kind, mode, status)."""
        return self.pipeline.contingent.counts() if self.pipeline is not None else {}

    def contingent_completed(self) -> dict[CountKey, int]:
        """Contingent orders finished since the manager (re)started."""
        return self.pipeline.contingent.completed() if self.pipeline is not None else {}

    def reconcile_discrepancies(self) -> dict[str, int]:
        """Discrepancies by kind since start."""
        return dict(self.pipeline.reconciler.discrepancies_total) if self.pipeline is not None else {}

    def reload_counts(self) -> dict[str, int]:
        """Config reloads by result."""
        return dict(self.reloader.counts)

    def sd_notify_errors(self) -> int:
        """Failed sd_notify sends."""
        return self.notifier.errors

    def strategy_names(self) -> Sequence[str]:
        """Configured strategy instances."""
        return sorted(self.pipeline.hosts) if self.pipeline is not None else []

    async def metrics_exposition(self) -> bytes:
        """Prometheus text."""
        return await self.metrics.render()

    # Created in open(); None until then (the console's equity curve is empty).
    _equity_history: EquityHistory | None = None
    # Created in open() once the tree is built; close() logs its final line.
    _summary: DaemonSummary | None = None

    def recent_bars(self) -> BarHistory:
        """The newest closed bars per (symbol, timeframe), kept by the bar log."""
        if self.pipeline is None:
            return BarHistory(version=0, series=())
        return self.pipeline.bar_log.history()

    def equity_history(self) -> Sequence[tuple[int, Decimal]]:
        """Sampled ``(wall-clock ms, equity)`` pairs, oldest first (bounded ring)."""
        return self._equity_history.samples() if self._equity_history is not None else []

    def _current_equity(self) -> Decimal | None:
        snap = self.risk_snapshot()
        return snap.equity if snap is not None else None

    # -- health and readiness ------------------------------------------------------------
    def _health_checks(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        p = self.pipeline
        if p is not None and not p.reconciler.ready.is_set():
            out.append((DEGRADED, "start-up reconciliation not complete"))
        if p is not None:
            snap = p.feed.snapshot()
            if snap.live and not snap.ended:
                for sym in snap.symbols:
                    if sym.stale:
                        out.append((DEGRADED, f"market data for {sym.symbol} is stale"))
        if self.trading_state()[0] is TradingState.HALTED:
            out.append((DEGRADED, "trading HALTED"))
        return out

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready once reconciled, the feed is live and trading is not halted."""
        reasons: list[str] = []
        p = self.pipeline
        if p is None or not p.reconciler.ready.is_set():
            reasons.append("start-up reconciliation not complete")
        if p is None or not p.feed.snapshot().live:
            reasons.append("market data feed not live")
        if self.trading_state()[0] is TradingState.HALTED:
            reasons.append("trading is HALTED")
        return (not reasons, reasons)

    async def _watch_trading_state(self, ch: Any) -> None:
        # The gate owns the state; this only wakes whoever waits for a change.
        ev: TradingStateChanged
        async for ev in ch:
            self.log.debug("daemon.trading_state_seen", state=ev.state.value)
            self._state_changed.set()
            self._state_changed = asyncio.Event()
            self.notifications.on_trading_state(ev)
            if ev.state is TradingState.HALTED and not self._ready_sent:
                # Halted before start-up finished (e.g. the venue refused our credentials):
                # the daemon is up for the operator, so tell systemd instead of letting
                # TimeoutStartSec kill it into a restart loop.
                self._ready_sent = True
                self.notifier.ready(f"trading HALTED before start-up completed: {ev.reason}")

    async def _gate_feed_on_reconcile(self) -> None:
        p = self.pipeline
        assert p is not None and p.feed.start_gate is not None
        await p.reconciler.ready.wait()
        report = p.reconciler.last_report
        self.log.info(
            "reconcile.startup_done",
            discrepancies=len(report.discrepancies) if report is not None else 0,
        )
        p.feed.start_gate.set()
        state = self.trading_state()[0].value
        self.log.info("daemon.ready", strategies=sorted(p.hosts), trading_state=state)
        self._ready_sent = True
        self.notifier.ready(f"trading {state}; strategies: {', '.join(sorted(p.hosts))}")

    # -- reload ----------------------------------------------------------------------------
    def _on_reload(self, new: LoadedConfig, changed: tuple[str, ...]) -> None:
        """Apply a validated config to the running daemon (``ConfigReloader`` subscriber).

        Only fields in ``config.reload_diff.LIVE_FIELDS`` can differ from what runs; the set of
        strategies and their identity cannot (restart-required), so every section has its
        host. Idempotent: it compares with what runs, so the reloader can call it again with
        the previous config to undo a failed apply. Strategies go first: their params are
        re-validated by the host and are the only step expected to be able to raise.
        """
        cfg = new.config
        p = self.pipeline
        if p is not None:
            for section in cfg.strategies:
                host = p.hosts.get(section.name)
                if host is None:
                    raise RuntimeError(f"strategy {section.name!r} is configured but not running")
                if dict(host.context.params) != dict(section.params):
                    host.reconfigure(section.params)
            for section in cfg.strategies:
                if section.enabled and not p.strategies.is_running(section.name):
                    p.strategies.start_child(section.name)
                elif not section.enabled and p.strategies.is_running(section.name):
                    self._spawn(p.strategies.terminate_child(section.name))
            # The gate re-reads its limits through ``current_config`` at its next message boundary.
            if any(path.startswith("risk.") for path in changed) and not p.control.try_send(
                ConfigChanged(version=new.version)
            ):
                raise RuntimeError("the risk gate's control channel is full; the new limits were not delivered")
        if "log.level" in changed:
            self.logging.level.set(cfg.log.level)
        if "log.ring_size" in changed:
            self.logging.ring.resize(cfg.log.ring_size)
        if "admin.metrics_cache_s" in changed:
            self.metrics.cache_s = cfg.admin.metrics_cache_s
        if any(path in ("feed.replay.speed", "feed.synthetic.speed") for path in changed):
            source: object = self.resources.source
            if isinstance(source, AdjustableSpeed):
                kind = cfg.feed.source
                source.set_speed(cfg.feed.replay.speed if kind == "replay" else cfg.feed.synthetic.speed)

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
        await self._open_notifications()
        store, venue, source = await self.resources.open()
        portfolios = await self.resources.strategy_portfolios()
        try:
            self._build_tree(store, venue, source, portfolios)
        except Exception as exc:
            raise StartupError(f"cannot build the daemon: {exc}", exit_codes.CONFIG_ERROR) from None
        # A failure saved just before a crash may never have reached the notification outbox.
        await self.notifications.catch_up_failures(store)
        # The console's equity curve: a bounded sampler; close() cancels it with the other tasks.
        self._equity_history = EquityHistory()
        self._spawn(self._equity_history.run(self._current_equity))
        # The periodic one-line summary (daemon.summary); close() logs the final one.
        self._summary = DaemonSummary(self)
        if cfg.log.summary_interval_s > 0:
            self._spawn(self._summary.run(cfg.log.summary_interval_s))
        if cfg.admin.enabled:
            await self._start_admin()

    async def _open_notifications(self) -> None:
        cfg = self.config
        try:
            self.notifications = await NotificationService.open(
                cfg.notify, state_dir=self.state_dir, clock=self.clock, instance=cfg.daemon.name, reads=self,
                add_secret=self.logging.redactor.add_secret_value,
                start_detail=f"mode {cfg.daemon.mode}, venue {cfg.venue.name}, version {VERSION}",
            )
        except NotifyConfigError as exc:
            raise StartupError(f"notifications: {exc}", exit_codes.CONFIG_ERROR) from None
        except OutboxError as exc:
            raise StartupError(f"notification outbox unusable: {exc}") from None

    def _on_verdict(self, verdict: HealthVerdict) -> None:
        self.notifier.on_verdict(verdict)
        self.notifications.on_verdict(verdict)

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
        """The tree is running: release the feed once reconciled (disabled strategies never started)."""
        await self._gate_feed_on_reconcile()

    async def on_give_up(self, reason: str) -> None:
        """Root supervisor gave up: trading is over; apply the open-order policy, audit."""
        self.log.error("daemon.give_up_policy", reason=reason,
                       cancel_open_orders=self.config.daemon.cancel_open_orders_on_exit)
        if self.resources.store is not None:
            with contextlib.suppress(Exception):
                await self.resources.store.append_audit("daemon.gave_up", {"reason": reason})
        if self.config.daemon.cancel_open_orders_on_exit:
            await self.resources.cancel_open_orders("root supervisor gave up")

    def on_stopping(self) -> None:
        """An orderly stop has begun."""
        self.log.info("daemon.stopping")
        self.notifier.stopping("stopping: finishing in-flight orders")

    async def close(self) -> None:
        """Close resources after the tree stopped (source, venue, store), in that order."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._summary is not None:  # the tree has stopped: these are the run's final figures
            self._summary.final()
        if self.admin is not None:
            await self.admin.stop()
        if self.config.daemon.cancel_open_orders_on_exit and self.pipeline is not None:
            await self.resources.cancel_open_orders("orderly stop")
        await self.resources.close()
        # Last: the stop message goes out (for up to notify.stop_flush_s) once everything else is closed.
        await self.notifications.close()
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
        if self.resources.store is not None:
            # Every reload attempt is part of the audit trail: who changed what, and what was refused.
            with contextlib.suppress(Exception):
                self.resources.store.append_audit_nowait("config.reload", result.as_dict())
        return result

    # -- DaemonView: commands (messages) ---------------------------------------------------
    async def set_trading_state(self, cmd: SetTradingState, timeout_s: float = 2.0) -> TradingState:
        """Send a trading-state command to the risk gate and wait for the resulting state."""
        if self.pipeline is None:
            raise RuntimeError("daemon not started")
        waiter = self._state_changed
        await self.pipeline.control.send(cmd)
        with anyio.move_on_after(timeout_s):
            await waiter.wait()
        return self.trading_state()[0]

    async def send_order_command(self, cmd: CancelOrder | CancelAll) -> None:
        """Send a command to the order manager."""
        if self.pipeline is None:
            raise RuntimeError("daemon not started")
        await self.pipeline.commands.send(cmd)

    async def send_contingent_command(self, cmd: CancelOrder | CancelAll) -> None:
        """Send a command to the contingent-order manager."""
        if self.pipeline is None:
            raise RuntimeError("daemon not started")
        await self.pipeline.contingent_inbox.send(cmd)

    async def stop_strategy(self, name: str) -> bool:
        """Stop one strategy instance (it stays stopped until started or reloaded)."""
        if self.pipeline is None or name not in self.pipeline.hosts:
            return False
        await self.pipeline.strategies.terminate_child(name)
        return True

    def start_strategy(self, name: str) -> bool:
        """Start a stopped strategy instance."""
        if self.pipeline is None or name not in self.pipeline.hosts:
            return False
        self.pipeline.strategies.start_child(name)
        return True

    @property
    def data_dir(self) -> Path:
        """Directory holding the state databases."""
        return self.state_dir
