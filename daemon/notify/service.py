"""The notification service: a bounded hand-off from the daemon, the outbox, and the delivery workers.

The daemon hands events in with ``offer`` (or the typed ``on_*`` hooks): a deque append,
never blocking and never doing I/O, safe to call from the trading path. When the deque
holds ``queue_capacity`` items the oldest is dropped and counted (``stats().dropped``).
The service's own tasks do the rest::

    offer() -> inbox (bounded) -> drain task: translate, filter, store in the outbox (thread)
                                           -> one TargetSender per URL: Apprise (thread), retries
    poll task: breakers/reconnects, the daily digest, outbox pruning

Contingent orders come in through two more hooks, both cheap: ``attach`` reads a child
fill's contingent order from the manager in the router's tap (``ChildFill``, to tell a
protective exit's fill from an entry's), and ``contingent_tap`` (wired into the manager's
store, ``ObservedContingentStore``) queues every contingent order saved ``FAILED``.

Without URLs the service is off: ``offer`` returns at once, no file is created and no
task runs. ``close`` queues ``daemon_stop``, stores what is still in the inbox, gives the
workers ``stop_flush_s`` to deliver, and leaves the rest in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio
import structlog

from actors.event_router import EventRouter, RoutedEvent
from actors.kernel.clock import Clock, WallClock, monotonic, wall_ms
from actors.model.contingent import CONTINGENT_GIVEN_UP, ContingentRow, ContingentStatus
from actors.model.control import HealthVerdict, TradingStateChanged
from actors.model.orders import OrderDenied
from actors.orders.order_manager import OrderManagerSnapshot
from actors.ports.capabilities import ConnectionHealth
from actors.risk.risk_gate import RiskSnapshot
from config.schema.ops import NotifySection
from daemon.notify.contingent import ChildFill, ContingentLookup, RowsTap
from daemon.notify.digest import DailyDigest
from daemon.notify.events import SEVERITY, EventKind, Notification, Severity
from daemon.notify.outbox import OUTBOX_FILE, AsyncOutbox
from daemon.notify.sender import AppriseTransport, DeliverySettings, Sleep, TargetSender, TransportFactory
from daemon.notify.sources import EventTranslator, OrderLookup
from daemon.notify.targets import Target, resolve_targets, secret_parts

_PRUNE_EVERY_S = 3600.0
_STATE_KINDS = (EventKind.KILL, EventKind.PAUSE, EventKind.RESUME)
_CONNECTION_KINDS = (EventKind.BREAKER_OPEN, EventKind.BREAKER_CLOSED, EventKind.RECONNECT)


class EndedContingents(Protocol):
    """Where the contingent orders that ended are read (``adapters.storage.Store``)."""

    async def contingents_ended_since(self, status: ContingentStatus, since_ms: int) -> list[ContingentRow]:
        """Final rows of ``status`` changed at or after ``since_ms``."""
        ...


class DaemonReads(Protocol):
    """The snapshot reads the service polls (``daemon.app.App`` has them)."""

    def connection_health(self) -> ConnectionHealth:
        """Breakers and reconnects of the venue and the market-data source."""
        ...

    def risk_snapshot(self) -> RiskSnapshot | None:
        """The risk gate's snapshot (None before the pipeline exists)."""
        ...

    def order_snapshot(self) -> OrderManagerSnapshot | None:
        """The order manager's snapshot (None before the pipeline exists)."""
        ...


@dataclasses.dataclass(frozen=True)
class NotifyStats:
    """Counters of the service (process lifetime)."""

    enabled: bool
    targets: tuple[str, ...]
    offered: int
    dropped: int
    stored: int
    duplicates: int
    sent: int
    summaries: int
    coalesced: int
    failures: int


class NotificationService:
    """Notifications for one daemon; see the module docstring. Build with ``open`` (or ``off``)."""

    def __init__(
        self,
        section: NotifySection,
        *,
        targets: tuple[Target, ...] | list[Target],
        state_dir: Path,
        clock: Clock,
        instance: str = "aaiti",
        run_id: str | None = None,
        transport_factory: TransportFactory = AppriseTransport,
        now: Callable[[], float] = monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.section = section
        self.targets = tuple(targets)
        self.enabled = bool(self.targets)
        self.state_dir = state_dir
        self.instance = instance
        self.run_id = run_id or f"{wall_ms()}-{os.getpid()}"
        min_rank = Severity(section.min_severity).rank
        self.wanted = frozenset(
            k for k in EventKind if section.events.get(k.value, True) and SEVERITY[k].rank >= min_rank
        )
        self._fills_wanted = bool(self.wanted & {EventKind.FILL, EventKind.PROTECTIVE_EXIT})
        self._denials_wanted = EventKind.RISK_DENIALS in self.wanted
        self._state_wanted = bool(self.wanted.intersection(_STATE_KINDS))
        self._contingent_lookup: ContingentLookup | None = None
        self._inbox: deque[object] = deque()
        self._unsaved: list[Notification] = []  # translated, not yet in the outbox
        self._wake = asyncio.Event()
        self._offered = self._dropped = self._stored = self._duplicates = 0
        self._translator = EventTranslator(
            run_id=self.run_id, clock=clock, denial_burst=section.denial_burst,
            denial_window_s=section.denial_window_s, instance=instance, now=now,
        )
        self._digest = DailyDigest(clock, instance)
        self._clock = clock
        self._reads: DaemonReads | None = None
        self._transport_factory = transport_factory
        self._now = now
        self._sleep = sleep
        self._outbox: AsyncOutbox | None = None
        self._senders: list[TargetSender] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._sender_tasks: list[asyncio.Task[None]] = []
        self._log: Any = structlog.get_logger("aaiti").bind(actor="notify")

    # -- construction --------------------------------------------------------------------
    @classmethod
    def off(cls) -> NotificationService:
        """A service with no targets: every hook is a no-op."""
        return cls(NotifySection(), targets=(), state_dir=Path("."), clock=WallClock())

    @classmethod
    async def open(
        cls,
        section: NotifySection,
        *,
        state_dir: Path,
        clock: Clock,
        add_secret: Callable[[str], None],
        instance: str = "aaiti",
        reads: DaemonReads | None = None,
        start_detail: str = "",
        environ: Mapping[str, str] | None = None,
    ) -> NotificationService:
        """Resolve the URLs, register them as log secrets and start (nothing runs without URLs).

        Raises ``NotifyConfigError`` (an unreadable credential, a URL Apprise refuses) and
        ``OutboxError`` (the outbox file is unusable).
        """
        targets = resolve_targets(section, environ=environ)
        for target in targets:
            for part in secret_parts(target.url):
                add_secret(part)
        service = cls(section, targets=targets, state_dir=state_dir, clock=clock, instance=instance)
        if service.enabled:
            await service.start(reads=reads, start_detail=start_detail)
        return service

    async def start(self, *, reads: DaemonReads | None = None, start_detail: str = "") -> None:
        """Open the outbox, start the workers and queue ``daemon_start``."""
        if not self.enabled or self._outbox is not None:
            return
        self._reads = reads
        settings = DeliverySettings(
            rate_per_minute=self.section.rate_per_minute, summary_max_items=self.section.summary_max_items,
            retry_initial_s=self.section.retry_initial_s, retry_max_s=self.section.retry_max_s,
        )
        transports = [self._transport_factory(t) for t in self.targets]
        outbox = await AsyncOutbox.open(self.state_dir / OUTBOX_FILE)
        self._outbox = outbox
        now_ms = wall_ms()
        abandoned = await outbox.drop_other_targets([t.id for t in self.targets], now_ms)
        pruned = await outbox.prune(now_ms - int(self.section.keep_days * 86_400_000))
        pending = await outbox.pending_count()
        self._senders = [
            TargetSender(t, outbox, tr, settings, instance=self.instance, now=self._now, sleep=self._sleep)
            for t, tr in zip(self.targets, transports, strict=True)
        ]
        self._sender_tasks = [asyncio.create_task(s.run(), name=f"notify-{s.target.label}") for s in self._senders]
        self._tasks = [asyncio.create_task(self._drain_loop(), name="notify-drain"),
                       asyncio.create_task(self._poll_loop(), name="notify-poll")]
        off = sorted(k.value for k in set(EventKind) - self.wanted)
        self._log.info("notify.started", targets=[t.label for t in self.targets], pending=pending,
                       pruned=pruned, abandoned=abandoned, disabled=off)
        self.notify(Notification(kind=EventKind.DAEMON_START, key=f"daemon_start:{self.run_id}",
                                 title=f"{self.instance}: started", body=start_detail or "starting",
                                 event_ms=self._clock.now_ms()))

    # -- hand-off (hot path: no I/O, never blocks) ----------------------------------------
    def offer(self, item: object) -> None:
        """Queue a daemon event for translation; drops the oldest queued item when full."""
        if not self.enabled:
            return
        inbox = self._inbox
        if len(inbox) >= self.section.queue_capacity:
            inbox.popleft()
            self._dropped += 1
        inbox.append(item)
        self._offered += 1
        self._wake.set()

    def notify(self, note: Notification) -> None:
        """Queue a ready-made notification (unless its kind is switched off)."""
        if note.kind in self.wanted:
            self.offer(note)

    def on_order_event(self, ev: RoutedEvent) -> None:
        """Router tap: fills and risk denials (other order events are ignored at once).

        A fill of a contingent order's child (``parent`` set) is queued with that order's view
        (``ChildFill``), read now: the router hands the fill to the manager after this tap, and
        the manager drops an order once it is final. The manager's ``CONTINGENT_GIVEN_UP``
        denial is not queued: its FAILED order makes ``protection_failed`` (``contingent_tap``)."""
        if isinstance(ev, OrderDenied):
            if self._denials_wanted and ev.reason != CONTINGENT_GIVEN_UP:
                self.offer(ev)
        elif ev.fill is not None and self._fills_wanted:
            lookup = self._contingent_lookup
            if ev.parent and lookup is not None:
                self.offer(ChildFill(event=ev, contingent=lookup(ev.parent)))
            else:
                self.offer(ev)

    @property
    def contingent_tap(self) -> RowsTap | None:
        """The hook for the contingent-order manager's store (``ObservedContingentStore``); None
        when the service is off or ``protection_failed`` is not wanted (then nothing is wrapped)."""
        if not self.enabled or EventKind.PROTECTION_FAILED not in self.wanted:
            return None
        return self.on_contingent_rows

    def on_contingent_rows(self, rows: Sequence[ContingentRow]) -> None:
        """Rows the contingent-order manager's store accepted: a FAILED one is queued (hot path:
        a status check per row; the translation runs in the service's task)."""
        for row in rows:
            if row.status is ContingentStatus.FAILED:
                self.offer(row)

    async def catch_up_failures(self, store: EndedContingents) -> int:
        """At start-up: queue the contingent orders that ended FAILED within ``keep_days`` (business
        time), so a failure saved just before a crash, whose notification never reached the outbox,
        is still told. The outbox stores each key once: one already sent is not sent again.
        Returns how many rows were queued (0 when ``protection_failed`` is not wanted)."""
        tap = self.contingent_tap
        if tap is None:
            return 0
        since = self._clock.now_ms() - int(self.section.keep_days * 86_400_000)
        try:
            rows = await store.contingents_ended_since(ContingentStatus.FAILED, since)
        except Exception as exc:  # a notification is never a reason not to start
            self._log.warning("notify.catch_up_failed", error=str(exc))
            return 0
        tap(rows)
        return len(rows)

    def on_trading_state(self, ev: TradingStateChanged) -> None:
        """A trading-state change of the risk gate (kill, pause, resume)."""
        if self._state_wanted:
            self.offer(ev)

    def on_verdict(self, verdict: HealthVerdict) -> None:
        """A watchdog verdict (it calls this only when the verdict changed)."""
        if EventKind.WATCHDOG_UNHEALTHY in self.wanted:
            self.offer(verdict)

    def attach(self, router: EventRouter, order_lookup: OrderLookup | None = None,
               contingent_lookup: ContingentLookup | None = None) -> None:
        """Tap the router's order events, read order tags through ``order_lookup`` and the contingent
        order of a child fill through ``contingent_lookup`` (``ContingencyManager.view_of``); off when
        disabled."""
        if not self.enabled:
            return
        self._translator.order_lookup = order_lookup
        self._contingent_lookup = contingent_lookup
        tap_router(router, self.on_order_event)

    # -- the service's tasks -----------------------------------------------------------------
    async def _drain_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain_once()
            except Exception as exc:
                # The notes stay in ``_unsaved`` (bounded by queue_capacity); try again shortly.
                self._log.error("notify.outbox_failed", error=repr(exc))
                await asyncio.sleep(1.0)
                self._wake.set()

    async def _drain_once(self) -> None:
        inbox, unsaved = self._inbox, self._unsaved
        translate, wanted = self._translator.translate, self.wanted
        while inbox:
            unsaved.extend(n for n in translate(inbox.popleft()) if n.kind in wanted)
        excess = len(unsaved) - self.section.queue_capacity
        if excess > 0:  # the outbox has been failing for a while: keep the newest
            del unsaved[:excess]
            self._dropped += excess
        if not unsaved or self._outbox is None:
            return
        notes = list(unsaved)
        added = await self._outbox.add(notes, [t.id for t in self.targets], wall_ms())
        # Only now: a failed write leaves the notes for the next try.
        del unsaved[: len(notes)]
        self._stored += added
        self._duplicates += len(notes) - added
        if added:
            for sender in self._senders:
                sender.wake.set()

    async def _poll_loop(self) -> None:
        last_prune = self._now()
        while True:
            await asyncio.sleep(self.section.poll_interval_s)
            try:
                self.poll()
                if self._now() - last_prune >= _PRUNE_EVERY_S and self._outbox is not None:
                    last_prune = self._now()
                    await self._outbox.prune(wall_ms() - int(self.section.keep_days * 86_400_000))
            except Exception as exc:
                self._log.error("notify.poll_failed", error=repr(exc))

    def poll(self) -> None:
        """Sample breakers, reconnects and the business day once (the poll task calls it)."""
        reads = self._reads
        if reads is None:
            return
        if self.wanted.intersection(_CONNECTION_KINDS):
            self.offer(reads.connection_health())
        if EventKind.DAILY_DIGEST in self.wanted:
            note = self._digest.sample(reads.risk_snapshot(), reads.order_snapshot())
            if note is not None:
                self.offer(note)

    # -- stop -------------------------------------------------------------------------------
    async def close(self, reason: str = "orderly stop") -> None:
        """Queue ``daemon_stop``, deliver for up to ``stop_flush_s``, close the outbox; idempotent."""
        outbox = self._outbox
        if outbox is None:
            return
        self.notify(Notification(kind=EventKind.DAEMON_STOP, key=f"daemon_stop:{self.run_id}",
                                 title=f"{self.instance}: stopping", body=reason, event_ms=self._clock.now_ms()))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._drain_once()
        for sender in self._senders:
            sender.stopping = True
            sender.wake.set()
        with anyio.move_on_after(self.section.stop_flush_s):
            await asyncio.gather(*self._sender_tasks, return_exceptions=True)
        for task in self._sender_tasks:
            task.cancel()
        await asyncio.gather(*self._sender_tasks, return_exceptions=True)
        left = 0
        with contextlib.suppress(Exception):
            left = await outbox.pending_count()
        await outbox.close()
        self._outbox = None
        s = self.stats()
        self._log.info("notify.stopped", sent=s.sent, coalesced=s.coalesced, dropped=s.dropped, pending=left)

    def stats(self) -> NotifyStats:
        """Counters since start."""
        return NotifyStats(
            enabled=self.enabled,
            targets=tuple(t.label for t in self.targets),
            offered=self._offered,
            dropped=self._dropped,
            stored=self._stored,
            duplicates=self._duplicates,
            sent=sum(s.stats.sent for s in self._senders),
            summaries=sum(s.stats.summaries for s in self._senders),
            coalesced=sum(s.stats.coalesced for s in self._senders),
            failures=sum(s.stats.failures for s in self._senders),
        )


def tap_router(router: EventRouter, tap: Callable[[RoutedEvent], None]) -> None:
    """Call ``tap`` with every event the router handles, before it routes it."""
    router.add_tap(tap)
