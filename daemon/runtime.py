"""Run the daemon: event loop choice, signals, orderly stop and exit codes.

First SIGTERM/SIGINT: orderly stop — the root supervisor stops its children in reverse
start order (producers first: feed, strategies, risk gate, then the order manager, which
gets ``daemon.order_drain_timeout_s`` to finish in-flight work), then resources close.
A second signal exits at once with 128 + signal. SIGHUP reloads the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

import anyio
import structlog

from actors.kernel.supervisor import ChildIgnoredCancel, Supervisor, SupervisorGaveUp
from daemon import exit_codes


class Runnable(Protocol):
    """What the runtime needs from the composition root."""

    root: Supervisor
    stop_timeout_s: float

    async def open(self) -> None:
        """Open resources (store, venue, admin server) before the actor tree starts."""

    async def after_start(self) -> None:
        """Called once the tree is running (readiness, sd_notify)."""

    async def on_give_up(self, reason: str) -> None:
        """Shutdown policy when the root supervisor gives up (halt, optionally cancel orders)."""

    async def close(self) -> None:
        """Close resources after the tree stopped."""

    async def reload(self, source: str) -> None:
        """Reload the config (SIGHUP)."""

    def on_stopping(self) -> None:
        """An orderly stop has begun."""


async def serve(app: Runnable) -> int:
    """Run ``app`` until a signal or the root supervisor gives up; return the exit code."""
    log: Any = structlog.get_logger("aaiti").bind(actor="runtime")
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals_seen = 0
    background: set[asyncio.Task[None]] = set()

    def on_stop_signal(signum: int) -> None:
        nonlocal signals_seen
        signals_seen += 1
        name = signal.Signals(signum).name
        if signals_seen == 1:
            log.info("shutdown.requested", signal=name)
            stop.set()
        else:
            log.warning("shutdown.forced", signal=name)
            sys.stdout.flush()
            os._exit(exit_codes.FORCED_BASE + signum)

    def on_hup() -> None:
        task = asyncio.create_task(app.reload("SIGHUP"))
        background.add(task)
        task.add_done_callback(background.discard)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    code = exit_codes.OK
    try:
        try:
            await app.open()
        except Exception as exc:
            startup_code = getattr(exc, "exit_code", None)
            if not isinstance(startup_code, int):
                raise
            # A known start-up failure: one clear line in the log and on stderr, no traceback.
            log.error("daemon.startup_failed", error=str(exc), exit_code=startup_code)
            print(f"aaiti: {exc}", file=sys.stderr)
            return startup_code
        root_task = asyncio.create_task(app.root.main(), name="root-supervisor")
        stop_task = asyncio.create_task(stop.wait(), name="stop-signal")
        started = asyncio.create_task(app.after_start(), name="after-start")
        background.add(started)
        started.add_done_callback(background.discard)
        await asyncio.wait({root_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if root_task.done():
            stop_task.cancel()
            failure = root_task.exception() if not root_task.cancelled() else None
            reason = str(failure) if failure else "root supervisor exited"
            if isinstance(failure, SupervisorGaveUp | ChildIgnoredCancel):
                log.error("supervisor.root_gave_up", reason=reason)
            else:
                log.error("supervisor.root_failed", reason=reason, error=repr(failure))
            await _bounded(app.on_give_up(reason), app.stop_timeout_s, log, "give_up_policy")
            code = exit_codes.SUPERVISOR_GAVE_UP
        else:
            app.on_stopping()
            root_task.cancel()
            done, _ = await asyncio.wait({root_task}, timeout=app.stop_timeout_s)
            if not done:
                log.error("shutdown.timeout", timeout_s=app.stop_timeout_s)
                code = exit_codes.STOP_TIMEOUT
            elif not root_task.cancelled() and isinstance(root_task.exception(), ChildIgnoredCancel):
                log.error("shutdown.child_ignored_cancel", error=str(root_task.exception()))
                code = exit_codes.STOP_TIMEOUT
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        # A second signal during close still forces the exit.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda s, f: os._exit(exit_codes.FORCED_BASE + s))
        await _bounded(app.close(), app.stop_timeout_s, log, "close")
        for task in list(background):
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    log.info("daemon.stopped", exit_code=code)
    return code


async def _bounded(aw: Awaitable[None], timeout: float, log: Any, what: str) -> None:
    # anyio's cancel scope bounds the step and cancels it cleanly at the deadline.
    with anyio.move_on_after(timeout) as scope:
        try:
            await aw
        except Exception as exc:
            log.error("shutdown.step_failed", step=what, error=repr(exc))
            return
    if scope.cancelled_caught:
        log.error("shutdown.step_timeout", step=what, timeout_s=timeout)


def run_loop(main: Callable[[], Coroutine[Any, Any, int]], use_uvloop: bool = True) -> int:
    """Run ``main`` on uvloop when available (plain asyncio otherwise); cancel leftovers."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if use_uvloop:
        with contextlib.suppress(ImportError):
            import uvloop

            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
