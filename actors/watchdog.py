"""Watchdog: heartbeats, event-loop lag and health checks → one health verdict.

An actor that has pending work but made no progress for ``stall_after_s`` is reported
stalled and restarted through its own supervisor. An idle actor (no pending work) is
never stalled, however old its heartbeat, and its wait starts when work arrives (the
last sample that saw it idle), not at its last heartbeat. Time during which the event
loop itself was blocked is the loop's lag, reported as such: no actor could run then,
so it does not count towards any actor's wait. The verdict (healthy / degraded /
unhealthy with reasons) is published as an immutable ``HealthVerdict`` that sd_notify,
/readyz and the status page read; systemd's WATCHDOG=1 is only sent while it is healthy.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from actors.kernel.actor import Actor, ActorState
from actors.kernel.clock import monotonic, wall_ms
from actors.kernel.supervisor import Supervisor
from actors.model.control import HealthVerdict
from config.schema.kernel import WatchdogSection

HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
# A check returns (severity, reason) pairs; severity is "degraded" or "unhealthy".
HealthCheck = Callable[[], list[tuple[str, str]]]


class LoopBlockLedger:
    """Recent spans of process time during which the event loop was blocked.

    A watchdog sample that wakes ``lag`` seconds after its timer was due shows that the
    loop ran nothing else in time during those ``lag`` seconds. Spans are disjoint and
    recorded in order; the oldest are dropped past ``maxlen``, which only makes a stall
    look longer, never shorter.
    """

    def __init__(self, maxlen: int = 1200) -> None:
        self._spans: deque[tuple[float, float]] = deque(maxlen=maxlen)

    def record(self, start: float, end: float) -> None:
        """Note that the loop was blocked from ``start`` to ``end`` (monotonic seconds)."""
        if end > start:
            self._spans.append((start, end))

    def blocked_between(self, since: float, until: float) -> float:
        """Seconds of recorded blocking that fall between ``since`` and ``until``."""
        total = 0.0
        for start, end in reversed(self._spans):
            if end <= since:
                break
            total += max(0.0, min(end, until) - max(start, since))
        return total


class Watchdog(Actor):
    """Samples heartbeats and loop lag every ``interval_s`` and publishes a verdict."""

    kind = "watchdog"

    def __init__(
        self,
        name: str,
        tree: Callable[[], Supervisor | None],
        settings: Callable[[], WatchdogSection],
        checks: list[HealthCheck] | None = None,
        on_verdict: Callable[[HealthVerdict], object] | None = None,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(name)
        self._tree = tree
        self._settings = settings
        self._checks = list(checks or [])
        self._on_verdict = on_verdict
        self._on_lag = on_lag
        self.verdict = HealthVerdict(status=HEALTHY, reasons=(), ts_ms=wall_ms())
        self.loop_lag_ms = 0.0
        self.lag_window: deque[float] = deque(maxlen=1200)
        self.stalls_detected = 0
        self._blocked = LoopBlockLedger()
        # Per running actor, when a sample last saw it with nothing pending: its current
        # work cannot have been waiting for longer than since then.
        self._idle_at: dict[Actor, float] = {}
        self._restarting: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def add_check(self, check: HealthCheck) -> None:
        """Add a health check (e.g. feed staleness, trading state)."""
        self._checks.append(check)

    async def run(self) -> None:
        """Sample forever."""
        while True:
            interval = self._settings().interval_s
            t0 = monotonic()
            await asyncio.sleep(interval)
            self.sample(max(0.0, monotonic() - t0 - interval))
            self.beat()

    def sample(self, lag_s: float) -> HealthVerdict:
        """Take one sample: the timer that just fired was ``lag_s`` seconds late.

        Records the lag, publishes the verdict and remembers the span for later samples.
        """
        woke = monotonic()
        self.loop_lag_ms = lag_s * 1000.0
        self.lag_window.append(self.loop_lag_ms)
        if self._on_lag is not None:
            self._on_lag(lag_s)
        verdict = self.evaluate()
        # Recorded after evaluate(), which counts the lag just measured itself: later
        # samples still know that no actor could run during this span.
        self._blocked.record(woke - lag_s, woke)
        return verdict

    def evaluate(self) -> HealthVerdict:
        """Check heartbeats, lag and the registered checks; publish and return the verdict."""
        cfg = self._settings()
        unhealthy: list[str] = []
        degraded: list[str] = []
        tree = self._tree()
        now = monotonic()
        idle_at: dict[Actor, float] = {}
        if tree is not None:
            for sup, child in tree.walk():
                if not isinstance(child, Actor) or child is self:
                    continue
                if child.state is ActorState.FAILED:
                    degraded.append(f"actor {child.name} failed")
                    continue
                if child.state is not ActorState.RUNNING:
                    continue
                pending = child.pending_work()
                if pending <= 0:
                    idle_at[child] = now
                    continue
                if child in self._idle_at:
                    idle_at[child] = self._idle_at[child]
                age = self._waiting_s(child, now, cfg.stall_after_s)
                if age > cfg.stall_after_s:
                    unhealthy.append(f"actor {child.name} stalled: {pending} pending, no progress for {age:.1f}s")
                    self._restart_stalled(sup, child.name, f"stalled for {age:.1f}s with {pending} pending")
        self._idle_at = idle_at
        if self.loop_lag_ms > cfg.loop_lag_unhealthy_ms:
            unhealthy.append(f"event loop lag {self.loop_lag_ms:.0f}ms")
        elif self.loop_lag_ms > cfg.loop_lag_degraded_ms:
            degraded.append(f"event loop lag {self.loop_lag_ms:.0f}ms")
        for check in self._checks:
            try:
                results = check()
            except Exception as exc:  # a broken check must not kill the watchdog
                degraded.append(f"health check failed: {exc!r}")
                continue
            for severity, reason in results:
                (unhealthy if severity == UNHEALTHY else degraded).append(reason)
        status = UNHEALTHY if unhealthy else DEGRADED if degraded else HEALTHY
        verdict = HealthVerdict(status=status, reasons=tuple(unhealthy + degraded), ts_ms=wall_ms())
        if verdict.status != self.verdict.status or verdict.reasons != self.verdict.reasons:
            log = self.log.warning if status != HEALTHY else self.log.info
            log("health.verdict", status=status, reasons=list(verdict.reasons))
        self.verdict = verdict
        if self._on_verdict is not None:
            self._on_verdict(verdict)
        return verdict

    def _waiting_s(self, child: Actor, now: float, stall_after_s: float) -> float:
        """How long ``child``'s pending work has waited without progress while the loop could run.

        The wait starts at the later of its last progress and the last sample that saw it
        idle. While the whole loop was blocked (the lag just measured, and the spans of
        earlier samples) no actor could run: that time is the loop's lag, reported on its
        own, not a stall of whichever actors had work queued through it.
        """
        since = max(child.last_progress, self._idle_at.get(child, child.last_progress))
        age = now - since
        if age <= stall_after_s:  # blocked time only shortens it: nothing more to look up
            return age
        lag_s = self.loop_lag_ms / 1000.0
        blocked = min(lag_s, age) + self._blocked.blocked_between(since, now - lag_s)
        return age - blocked

    def _restart_stalled(self, sup: Supervisor, name: str, reason: str) -> None:
        if name in self._restarting:
            return
        self.stalls_detected += 1
        self._restarting.add(name)
        self.log.error("actor.stalled", stalled=name, reason=reason)

        async def restart() -> None:
            try:
                await sup.restart_child(name, reason)
            finally:
                self._restarting.discard(name)

        task = asyncio.create_task(restart(), name=f"watchdog-restart-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def lag_p99_ms(self) -> float:
        """99th percentile of recent loop-lag samples."""
        if not self.lag_window:
            return 0.0
        data = sorted(self.lag_window)
        return data[min(len(data) - 1, int(len(data) * 0.99))]

    async def on_stop(self) -> None:
        """Cancel in-flight restart helpers."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
