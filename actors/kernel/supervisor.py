"""OTP-style supervisor: restart strategies, restart types, intensity, escalation.

- Strategies: ``one_for_one`` restarts the failed child; ``one_for_all`` stops all
  children (reverse order) and restarts them (in order); ``rest_for_one`` restarts the
  failed child and every child started after it.
- Restart types: ``permanent`` (always), ``transient`` (after an abnormal exit only),
  ``temporary`` (never).
- Intensity: more than ``max_restarts`` within ``period_s`` → the supervisor stops its
  children and raises ``SupervisorGaveUp`` to its parent (escalation).
- Added to OTP: a restart delay doubling up to a cap, and a per-child shutdown timeout;
  a child still running after cancel + timeout is escalated (``ChildIgnoredCancel``).
- Children start in order and stop in reverse order. Supervisors nest: a Supervisor is
  itself a valid child.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any, Protocol

import structlog

from actors.kernel.actor import Actor, ActorState
from actors.kernel.clock import monotonic


class RestartType(StrEnum):
    """When a child is restarted."""

    PERMANENT = "permanent"
    TRANSIENT = "transient"
    TEMPORARY = "temporary"


class RestartStrategy(StrEnum):
    """Which children are restarted when one exits."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


class Child(Protocol):
    """Anything a supervisor can run: an Actor or a nested Supervisor."""

    name: str
    state: ActorState

    async def main(self) -> None:
        """Run until done; raise on failure."""


class SupervisorGaveUp(Exception):
    """A supervisor exceeded its restart intensity (or could not stop a child) and stopped."""

    def __init__(self, supervisor: str, reason: str) -> None:
        self.supervisor = supervisor
        self.reason = reason
        super().__init__(f"supervisor {supervisor} gave up: {reason}")


class ChildIgnoredCancel(Exception):
    """A child was still running after cancellation and its shutdown timeout."""

    def __init__(self, child: str, timeout_s: float) -> None:
        self.child = child
        super().__init__(f"child {child} ignored cancellation for {timeout_s:.1f}s")


class ActorStalled(Exception):
    """Exit reason recorded when the watchdog restarts a stalled actor."""


@dataclasses.dataclass(frozen=True)
class ChildSpec:
    """How to start a child and when to restart it.

    ``autostart=False``: the supervisor knows the child but does not start it with the others;
    ``start_child`` starts it later (a strategy configured with ``enabled = false``).
    """

    name: str
    factory: Callable[[], Child]
    restart: RestartType = RestartType.PERMANENT
    shutdown_timeout_s: float | None = None
    autostart: bool = True


@dataclasses.dataclass(frozen=True)
class ChildStatus:
    """Snapshot of one child for status pages and the watchdog."""

    name: str
    path: str
    kind: str
    state: str
    restarts: int
    heartbeat_age_s: float | None
    pending: int
    last_error: str | None


@dataclasses.dataclass(eq=False)
class _Entry:
    spec: ChildSpec
    child: Child
    task: asyncio.Task[None]
    stopping: bool = False
    kill_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class SupervisorPolicy:
    """Restart intensity and timing of one supervisor."""

    strategy: RestartStrategy = RestartStrategy.ONE_FOR_ONE
    max_restarts: int = 3
    period_s: float = 5.0
    restart_delay_s: float = 0.05
    backoff_max_s: float = 5.0
    shutdown_timeout_s: float = 3.0


class Supervisor:
    """Runs children as tasks and applies its restart policy when they exit."""

    kind = "supervisor"

    def __init__(self, name: str, specs: list[ChildSpec], policy: SupervisorPolicy | None = None) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"supervisor {name}: duplicate child names {names}")
        self.name = name
        self.specs = list(specs)
        self.policy = policy or SupervisorPolicy()
        self.state = ActorState.STOPPED
        self.log: Any = structlog.get_logger("aaiti").bind(actor=name)
        self._entries: dict[str, _Entry] = {}
        self._exits: asyncio.Queue[tuple[_Entry, BaseException | None]] = asyncio.Queue()
        self._restart_times: deque[float] = deque()
        self.restart_counts: dict[str, int] = {s.name: 0 for s in specs}
        self.last_errors: dict[str, str] = {}
        self.total_restarts = 0

    # -- introspection -----------------------------------------------------------------
    def children(self) -> list[Child]:
        """Currently running children, in start order."""
        return [self._entries[s.name].child for s in self.specs if s.name in self._entries]

    def walk(self) -> Iterator[tuple[Supervisor, Child]]:
        """Every (owning supervisor, child) pair in this subtree, depth first."""
        for child in self.children():
            yield self, child
            if isinstance(child, Supervisor):
                yield from child.walk()

    def statuses(self, prefix: str = "") -> list[ChildStatus]:
        """Status of every child in this subtree."""
        out: list[ChildStatus] = []
        now = monotonic()
        path = f"{prefix}/{self.name}" if prefix else self.name
        for spec in self.specs:
            entry = self._entries.get(spec.name)
            child = entry.child if entry else None
            if isinstance(child, Actor):
                age: float | None = now - child.last_progress
                pending = child.pending_work()
                kind = child.kind
            else:
                age, pending, kind = None, 0, getattr(child, "kind", "supervisor")
            out.append(
                ChildStatus(
                    name=spec.name,
                    path=f"{path}/{spec.name}",
                    kind=kind,
                    state=str(child.state) if child is not None else "stopped",
                    restarts=self.restart_counts.get(spec.name, 0),
                    heartbeat_age_s=age,
                    pending=pending,
                    last_error=self.last_errors.get(spec.name),
                )
            )
            if isinstance(child, Supervisor):
                out.extend(child.statuses(path))
        return out

    # -- running -----------------------------------------------------------------------
    async def main(self) -> None:
        """Start children in order and supervise until cancelled or giving up."""
        self.state = ActorState.STARTING
        try:
            for spec in self.specs:
                if spec.autostart:
                    self._start(spec)
            self.state = ActorState.RUNNING
            await self._supervise()
        except asyncio.CancelledError:
            self.state = ActorState.STOPPING
            await self._stop_all()
            self.state = ActorState.STOPPED
            raise
        except BaseException:
            self.state = ActorState.FAILED
            try:
                await self._stop_all()
            except ChildIgnoredCancel as exc:
                self.log.error("supervisor.child_ignored_cancel", child=exc.child)
            raise

    async def stop(self) -> None:
        """Stop all children in reverse start order (used by the root on shutdown)."""
        await self._stop_all()

    def _start(self, spec: ChildSpec) -> None:
        child = spec.factory()
        task = asyncio.create_task(child.main(), name=f"{self.name}/{spec.name}")
        entry = _Entry(spec, child, task)
        self._entries[spec.name] = entry
        task.add_done_callback(lambda t, e=entry: self._on_exit(e, t))  # type: ignore[misc]

    def _on_exit(self, entry: _Entry, task: asyncio.Task[None]) -> None:
        exc: BaseException | None
        if task.cancelled():
            exc = ActorStalled(entry.kill_reason) if entry.kill_reason else asyncio.CancelledError()
        else:
            exc = task.exception()
        self._exits.put_nowait((entry, exc))

    async def _supervise(self) -> None:
        while True:
            entry, exc = await self._exits.get()
            name = entry.spec.name
            if entry.stopping or self._entries.get(name) is not entry:
                continue
            abnormal = exc is not None
            if isinstance(exc, ChildIgnoredCancel):
                raise SupervisorGaveUp(self.name, str(exc))
            if abnormal:
                self.last_errors[name] = repr(exc)
                self.log.error("child.failed", child=name, error=repr(exc), restart=entry.spec.restart.value)
            else:
                self.log.info("child.exited", child=name)
            kind = entry.spec.restart
            if kind is RestartType.TEMPORARY or (kind is RestartType.TRANSIENT and not abnormal):
                del self._entries[name]
                continue
            delay = self._record_restart(name)
            await self._restart(name, delay)

    def _record_restart(self, name: str) -> float:
        now = monotonic()
        times = self._restart_times
        times.append(now)
        while times and now - times[0] > self.policy.period_s:
            times.popleft()
        if len(times) > self.policy.max_restarts:
            raise SupervisorGaveUp(
                self.name,
                f"{len(times)} restarts within {self.policy.period_s}s exceeds max_restarts="
                f"{self.policy.max_restarts} (last: {name})",
            )
        self.restart_counts[name] = self.restart_counts.get(name, 0) + 1
        self.total_restarts += 1
        return float(min(self.policy.restart_delay_s * (2 ** (len(times) - 1)), self.policy.backoff_max_s))

    async def _restart(self, failed: str, delay: float) -> None:
        order = [s.name for s in self.specs]
        idx = order.index(failed)
        strategy = self.policy.strategy
        if strategy is RestartStrategy.ONE_FOR_ONE:
            targets = [failed]
        elif strategy is RestartStrategy.ONE_FOR_ALL:
            targets = [n for n in order if n in self._entries]
        else:
            targets = [n for n in order[idx:] if n in self._entries]
        others = [n for n in targets if n != failed]
        try:
            for n in reversed(others):
                await self._stop_entry(self._entries[n], raise_on_timeout=True)
        except ChildIgnoredCancel as exc:
            raise SupervisorGaveUp(self.name, str(exc)) from exc
        for n in others:
            if self._entries[n].spec.restart is RestartType.TEMPORARY:
                del self._entries[n]
        if delay > 0:
            await asyncio.sleep(delay)
        for spec in self.specs:
            if spec.name in targets and (spec.name == failed or spec.name in self._entries):
                self.log.info("child.restarting", child=spec.name, delay_s=round(delay, 3))
                self._start(spec)

    async def _stop_entry(self, entry: _Entry, *, raise_on_timeout: bool) -> None:
        entry.stopping = True
        task = entry.task
        if task.done():
            return
        task.cancel()
        timeout = entry.spec.shutdown_timeout_s or self.policy.shutdown_timeout_s
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            self.log.error("child.ignored_cancel", child=entry.spec.name, timeout_s=timeout)
            if raise_on_timeout:
                raise ChildIgnoredCancel(entry.spec.name, timeout)

    async def _stop_all(self) -> None:
        stuck: list[str] = []
        for spec in reversed(self.specs):
            entry = self._entries.get(spec.name)
            if entry is None:
                continue
            try:
                await self._stop_entry(entry, raise_on_timeout=True)
            except ChildIgnoredCancel:
                stuck.append(spec.name)
        self._entries.clear()
        if stuck:
            timeout = self.policy.shutdown_timeout_s
            raise ChildIgnoredCancel(",".join(stuck), timeout)

    async def terminate_child(self, name: str) -> bool:
        """Stop a child on request (admin, config) without restarting it. False if not running."""
        entry = self._entries.get(name)
        if entry is None:
            return False
        await self._stop_entry(entry, raise_on_timeout=False)
        if self._entries.get(name) is entry:
            del self._entries[name]
        self.log.info("child.terminated", child=name)
        return True

    def start_child(self, name: str) -> bool:
        """Start a configured child that is not running. False if unknown or already running."""
        spec = next((s for s in self.specs if s.name == name), None)
        if spec is None or name in self._entries:
            return False
        self._start(spec)
        self.log.info("child.started", child=name)
        return True

    def is_running(self, name: str) -> bool:
        """True while the named child has a live task."""
        entry = self._entries.get(name)
        return entry is not None and not entry.task.done()

    async def restart_child(self, name: str, reason: str) -> bool:
        """Restart a child from outside (the watchdog, for a stall). False if unknown."""
        entry = self._entries.get(name)
        if entry is None or entry.task.done():
            return False
        entry.kill_reason = reason
        entry.task.cancel()
        timeout = entry.spec.shutdown_timeout_s or self.policy.shutdown_timeout_s
        done, _ = await asyncio.wait({entry.task}, timeout=timeout)
        if not done:
            # The stalled child swallowed cancellation: escalate through the supervise loop.
            self._exits.put_nowait((entry, ChildIgnoredCancel(name, timeout)))
        return True
