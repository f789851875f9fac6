"""Composition root: opens resources, builds the pipeline and the supervision tree.

Tree (children start in order and stop in reverse)::

    root (one_for_one)
    ├── watchdog
    ├── order_path (rest_for_one): order_manager, reconciler, risk_gate, router
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
import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import structlog

from actors.bar_log import BarHistory
from actors.feed_state import FeedSnapshot
from actors.kernel.channel import ChannelStats
from actors.kernel.clock import Clock, MarketClock, WallClock, perf_ns, wall_ms
from actors.kernel.supervisor import ChildSpec, ChildStatus, Supervisor
from actors.model.control import ConfigChanged, HealthVerdict, SetTradingState, TradingState, TradingStateChanged
from actors.model.orders import CancelAll, CancelOrder
from actors.orders.order_manager import OrderManagerSnapshot
from actors.ports.capabilities import AdjustableSpeed, ConnectionHealth, HasStartTime, ReportsConnectionHealth
from actors.ports.market_data import MarketDataSource
from actors.ports.venue import Venue
from actors.risk.risk_gate import RiskSnapshot
from actors.strategy_api import OpenOrder
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
from daemon.app_admin import AppAdmin, EquityHistory
from daemon.app_metrics import metrics_snapshot
from daemon.logging_setup import LoggingSetup, LogRing
from daemon.metrics import Metrics
from daemon.notify import NotificationService, NotifyConfigError, OutboxError
from daemon.pipeline import Pipeline, build_pipeline, supervisor_policy
from daemon.reloader import ConfigReloader, ReloadResult
from daemon.sd_notify import SystemdNotifier

VERSION = "0.1.0"


class StartupError(Exception):
    """Start-up cannot proceed (bad state file, bad data file); carries the exit code."""

    def __init__(self, message: str, exit_code: int = exit_codes.STATE_ERROR) -> None:
        self.exit_code = exit_code
        super().__init__(message)


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
        self._store: Store | None = None
        self.venue: Venue | None = None
        self.simulator: Any = None
        self.source: MarketDataSource | None = None
        self.pipeline: Pipeline | None = None
        self._disabled_at_start: list[str] = []
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
                clock=self.clock,
            )
        else:
            from adapters.ccxt_venue.venue import CcxtVenue

            venue = CcxtVenue(self._ccxt_section(), name=cfg.venue.name, symbols=cfg.feed.symbols, clock=self.clock)
        try:
            await venue.start()
        except Exception as exc:
            # Release whatever the half-started venue opened (client sessions, files).
            with contextlib.suppress(Exception):
                await venue.close()
            # A paper venue fails on its account file (state); a network venue on the network or
            # the credentials, which the operator fixes elsewhere: its own exit code.
            code = exit_codes.STATE_ERROR if cfg.venue.kind == "paper" else exit_codes.VENUE_ERROR
            raise StartupError(f"venue {cfg.venue.name} could not start: {exc}", code) from None
        return venue

    async def _start_simulator(self) -> None:
        """Start the in-process Binance simulator when the config asks for it."""
        section = self.config.venue.ccxt
        if not section.start_simulator or (self.config.venue.kind != "ccxt" and self.config.feed.source != "ccxt"):
            return
        from daemon.embedded_simulator import start_simulator

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

        exchange: Any = None
        if self.config.venue.kind == "ccxt" and self.venue is not None:
            from adapters.ccxt_venue.venue import CcxtVenue

            # One ccxt client for the venue and the market data (one rate-limit budget).
            if isinstance(self.venue, CcxtVenue):
                exchange = self.venue.exchange
        try:
            source = build_source(
                self.config.feed, self.reloader.current.resolve, ccxt=self._ccxt_section(), exchange=exchange
            )
        except DataFileError as exc:
            raise StartupError(f"market data file unusable: {exc}") from None
        except Exception as exc:
            raise StartupError(f"market data source unusable: {exc}", exit_codes.CONFIG_ERROR) from None
        src: object = source
        if isinstance(self.clock, MarketClock) and isinstance(src, HasStartTime):
            self.clock.advance(src.start_ts_ms)
        return source

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

    def _build_tree(self, store: Store, venue: Venue, source: MarketDataSource,
                    portfolios: dict[str, TrackingPortfolio]) -> None:
        cfg = self.config
        pipeline = build_pipeline(
            cfg, store=store, venue=venue, source=source, clock=self.clock,
            current_config=lambda: self.config, portfolios=portfolios, on_submit=self._on_submit,
        )
        self.pipeline = pipeline
        self.root = Supervisor(
            "root", [ChildSpec("watchdog", lambda: self.watchdog), *pipeline.children()],
            supervisor_policy(cfg.supervisor),
        )
        self._disabled_at_start = [s.name for s in cfg.strategies if not s.enabled]
        self._spawn(self._watch_trading_state(pipeline.state_events))
        self.notifications.attach(pipeline.router, pipeline.order_manager.order)

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
        return self._store

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
        owners: tuple[object, ...] = (self.venue, self.source)
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

        Only fields in ``daemon.reloader.LIVE_FIELDS`` can differ from what runs; the set of
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
            source: object = self.source
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
        await self._start_simulator()
        self._store = await self._open_store()
        if cfg.venue.kind == "ccxt":
            # The market source shares the venue's ccxt client: venue first.
            self.venue = await self._open_venue()
            self.source = self._open_source()
        else:
            self.source = self._open_source()
            self.venue = await self._open_venue()
        portfolios = await self._strategy_portfolios(self._store)
        try:
            self._build_tree(self._store, self.venue, self.source, portfolios)
        except Exception as exc:
            raise StartupError(f"cannot build the daemon: {exc}", exit_codes.CONFIG_ERROR) from None
        # The console's equity curve: a bounded sampler; close() cancels it with the other tasks.
        self._equity_history = EquityHistory()
        self._spawn(self._equity_history.run(self._current_equity))
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
        """The tree is running: stop disabled strategies, release the feed once reconciled."""
        if self.pipeline is not None:
            for name in self._disabled_at_start:
                await self.pipeline.strategies.terminate_child(name)
        await self._gate_feed_on_reconcile()

    async def on_give_up(self, reason: str) -> None:
        """Root supervisor gave up: trading is over; apply the open-order policy, audit."""
        self.log.error("daemon.give_up_policy", reason=reason,
                       cancel_open_orders=self.config.daemon.cancel_open_orders_on_exit)
        if self._store is not None:
            with contextlib.suppress(Exception):
                await self._store.append_audit("daemon.gave_up", {"reason": reason})
        if self.config.daemon.cancel_open_orders_on_exit:
            await self._cancel_open_orders_directly("root supervisor gave up")

    async def _cancel_open_orders_directly(self, reason: str) -> None:
        if self._store is None or self.venue is None:
            return
        for rec in await self._store.open_orders():
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
        if self.config.daemon.cancel_open_orders_on_exit and self.pipeline is not None:
            await self._cancel_open_orders_directly("orderly stop")
        for name, closer in (("source", self.source), ("venue", self.venue), ("store", self._store)):
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
        if self._store is not None:
            # Every reload attempt is part of the audit trail: who changed what, and what was refused.
            with contextlib.suppress(Exception):
                self._store.append_audit_nowait("config.reload", result.as_dict())
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
