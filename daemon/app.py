"""Composition root: builds channels, actors, resources and the supervision tree.

Start order (children start in order, stop in reverse): watchdog, reconciler, order
manager, risk gate, strategies, feed. So an orderly stop stops producers first — feed,
strategies, risk gate — and then the order manager, which drains in-flight work.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from actors.watchdog import Watchdog
from config.loader import LoadedConfig
from config.render import secret_field_names
from daemon.logging_setup import LoggingSetup
from daemon.reloader import ConfigReloader
from daemon.supervisor import ChildSpec, RestartStrategy, Supervisor, SupervisorPolicy


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
        self.watchdog = Watchdog("watchdog", lambda: self.root, lambda: self.config.watchdog)
        self.root = Supervisor("root", self._child_specs(), self._policy(RestartStrategy.ONE_FOR_ONE))
        self.reloader.subscribe(self._on_reload)

    @property
    def config(self) -> Any:
        """The running config (AaitiConfig)."""
        return self.reloader.current.config

    def _policy(self, strategy: RestartStrategy) -> SupervisorPolicy:
        s = self.config.supervisor
        return SupervisorPolicy(
            strategy=strategy,
            max_restarts=s.max_restarts,
            period_s=s.period_s,
            restart_delay_s=s.restart_delay_s,
            backoff_max_s=s.restart_backoff_max_s,
            shutdown_timeout_s=s.shutdown_timeout_s,
        )

    def _child_specs(self) -> list[ChildSpec]:
        return [ChildSpec("watchdog", lambda: self.watchdog)]

    def _on_reload(self, new: LoadedConfig, changed: tuple[str, ...]) -> None:
        cfg = new.config
        if "log.level" in changed:
            self.logging.level.set(cfg.log.level)
        if "log.ring_size" in changed:
            self.logging.ring.resize(cfg.log.ring_size)

    # -- Runnable ----------------------------------------------------------------------
    async def open(self) -> None:
        """Open resources before the actor tree starts."""
        self.log.info("daemon.starting", name=self.config.daemon.name, mode=self.config.daemon.mode,
                      config=str(self.reloader.current.path or "<defaults>"))

    async def after_start(self) -> None:
        """The tree is running."""
        self.log.info("daemon.ready")

    async def on_give_up(self, reason: str) -> None:
        """Root supervisor gave up: nothing to unwind yet at the kernel level."""
        self.log.error("daemon.give_up_policy", reason=reason)

    def on_stopping(self) -> None:
        """An orderly stop has begun."""
        self.log.info("daemon.stopping")

    async def close(self) -> None:
        """Close resources after the tree stopped."""

    async def reload(self, source: str) -> None:
        """Reload from the config file (SIGHUP)."""
        await self.reloader.reload(source)
