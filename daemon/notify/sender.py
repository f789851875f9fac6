"""Delivery: one worker per target sends the outbox's pending messages through Apprise.

Each worker takes its target's oldest pending message, sends it and marks it sent, so a
target receives messages in the order they were stored (a failed head is retried before
anything behind it). Failures back off exponentially (``retry_initial_s`` doubling up to
``retry_max_s``) and are retried forever; the rows stay in the outbox, so a restart
resumes them. ``rate_per_minute`` successful sends per sliding minute: a worker that has
to wait for the window sends everything that piled up meanwhile as one summary message
(up to ``summary_max_items`` events), never dropping any.

Apprise's ``notify`` blocks (HTTP, SMTP): it runs in a worker thread, and the thread is
abandoned if the daemon stops meanwhile. A delivery that succeeded just before a crash
and was not yet marked is sent again after the restart: at least once, not exactly once,
across a crash.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import anyio
import anyio.to_thread
import structlog

from actors.kernel.clock import monotonic, wall_ms
from daemon.notify.events import Notification, Severity
from daemon.notify.outbox import COALESCED, SENT, AsyncOutbox, Pending
from daemon.notify.targets import NotifyConfigError, Target

#: How a worker waits (``asyncio.sleep``; tests pass a fake that advances a fake clock).
Sleep = Callable[[float], Awaitable[None]]


class Transport(Protocol):
    """Sends one message to one target; True when the target accepted it."""

    async def send(self, title: str, body: str, severity: Severity) -> bool:
        """Deliver; never raises for a delivery failure (returns False)."""
        ...


class AppriseTransport:
    """One Apprise URL; ``notify`` runs in a worker thread."""

    def __init__(self, target: Target) -> None:
        import apprise

        # Memory only: Apprise may cache per-service state; the daemon's sandbox has no home to write to.
        asset = apprise.AppriseAsset(storage_mode="memory")
        self._apprise = apprise.Apprise(asset=asset)
        if not self._apprise.add(target.url):
            raise NotifyConfigError(f"notify target {target.label}: Apprise does not accept this URL")

    async def send(self, title: str, body: str, severity: Severity) -> bool:
        """Deliver through Apprise; False when it reports a failure or raises."""
        call = functools.partial(self._apprise.notify, body=body, title=title, notify_type=severity.apprise_type)
        try:
            return bool(await anyio.to_thread.run_sync(call, abandon_on_cancel=True))
        except Exception:
            return False


#: Builds the transport of a target (tests replace it).
TransportFactory = Callable[[Target], Transport]


@dataclasses.dataclass(frozen=True)
class DeliverySettings:
    """The delivery knobs of ``[notify]``."""

    rate_per_minute: int = 20
    summary_max_items: int = 50
    retry_initial_s: float = 2.0
    retry_max_s: float = 300.0


class RateWindow:
    """Successful sends in the last 60 s (process time); ``delay`` says how long until one more fits."""

    WINDOW_S = 60.0

    def __init__(self, per_minute: int, now: Callable[[], float] = monotonic) -> None:
        self.per_minute = per_minute
        self._now = now
        self._sent: deque[float] = deque()

    def delay(self) -> float:
        """Seconds until a send fits in the window (0 when it fits now)."""
        now = self._now()
        sent = self._sent
        while sent and sent[0] <= now - self.WINDOW_S:
            sent.popleft()
        if len(sent) < self.per_minute:
            return 0.0
        return sent[0] + self.WINDOW_S - now

    def record(self) -> None:
        """Count one send now."""
        self._sent.append(self._now())


@dataclasses.dataclass
class SenderStats:
    """Counters of one target's worker."""

    sent: int = 0
    summaries: int = 0
    coalesced: int = 0
    failures: int = 0


class TargetSender:
    """The delivery worker of one target (``run`` until cancelled, or ``drain`` at stop)."""

    def __init__(
        self,
        target: Target,
        outbox: AsyncOutbox,
        transport: Transport,
        settings: DeliverySettings,
        *,
        instance: str = "aaiti",
        now: Callable[[], float] = monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.target = target
        self.stats = SenderStats()
        self.wake = asyncio.Event()
        self.stopping = False
        self._outbox = outbox
        self._transport = transport
        self._settings = settings
        self._instance = instance
        self._rate = RateWindow(settings.rate_per_minute, now)
        self._sleep = sleep
        self._log: Any = structlog.get_logger("aaiti").bind(actor="notify", target=target.label)

    async def run(self) -> None:
        """Deliver pending messages as they come; once ``stopping`` is set, return when none is left."""
        while True:
            if await self.step():
                continue
            if self.stopping:
                return
            self.wake.clear()
            # ``stopping`` is set together with ``wake``, so a stop during this await is not missed.
            if await self._outbox.pending_count(self.target.id) == 0:
                await self.wake.wait()

    async def step(self) -> bool:
        """Send the next message (or a summary of the backlog); False when nothing is pending.

        A failed send waits out its backoff and returns True: the same messages are next.
        """
        head = await self._outbox.pending(self.target.id, 1)
        if not head:
            return False
        wait = self._rate.delay()
        batch: Sequence[Pending] = head
        if wait > 0:
            # Rate-limited: whatever piles up until a slot frees goes out as one summary.
            await self._sleep(wait)
            batch = await self._outbox.pending(self.target.id, self._settings.summary_max_items)
        if len(batch) == 1:
            title, body, severity = batch[0].note.title, batch[0].note.body, batch[0].note.level
        else:
            title, body, severity = summary_message(self._instance, [p.note for p in batch])
        ids = [p.id for p in batch]
        if await self._transport.send(title, body, severity):
            self._rate.record()
            state = SENT if len(batch) == 1 else COALESCED
            await self._outbox.finish(self.target.id, ids, state, wall_ms())
            self.stats.sent += 1
            if len(batch) > 1:
                self.stats.summaries += 1
                self.stats.coalesced += len(batch)
            return True
        self.stats.failures += 1
        attempts = max(p.attempts for p in batch) + 1
        await self._outbox.note_attempt(self.target.id, ids)
        delay = backoff_delay(attempts, self._settings.retry_initial_s, self._settings.retry_max_s)
        self._log.warning("notify.delivery_failed", messages=len(batch), attempt=attempts, retry_in_s=round(delay, 3))
        await self._sleep(delay)
        return True


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """The wait after the ``attempt``-th failure: ``initial_s`` doubling, capped at ``max_s``."""
    return float(min(max_s, initial_s * 2 ** min(attempt - 1, 62)))


def summary_message(instance: str, notes: Sequence[Notification]) -> tuple[str, str, Severity]:
    """One message standing for several: a title, one line per event (oldest first), the worst severity."""
    worst = max((n.level for n in notes), key=lambda s: s.rank)
    kinds: dict[str, int] = {}
    for n in notes:
        kinds[n.kind.value] = kinds.get(n.kind.value, 0) + 1
    counts = ", ".join(f"{k} {v}" for k, v in kinds.items())
    title = f"{instance}: {len(notes)} notifications ({counts})"
    lines = [f"[{n.kind.value}] {n.title}" for n in notes]
    return title, "\n".join(lines), worst
