"""The retention actor: every ``interval_s`` of business time, archive what is old enough.

It asks its ``ArchiveStore`` to move rows older than ``keep_days`` (business time: the wall
clock live, market time in a replay) to archive segment files, one segment after another
until nothing old is left or ``max_segments_per_run`` were written. The store does the
work (``adapters.storage.retention``); this actor only decides when, from the injected
``Clock``. It looks at the clock every ``check_interval_s`` of process time.

Positions at a restart are the newest ledger snapshot plus the fills stored after it, and
the store archives no fill after that snapshot. So each run first stores a ledger snapshot
of now (``ledger``: the order manager's published positions and balances, None while it is
not loaded), making every fill so far archivable once it is old enough.

Archiving is housekeeping: a failed run (a full disk, an unwritable archive directory) is
logged and counted and tried again at the next run, never a reason to stop trading, so it
does not escalate to the supervisor.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import msgspec

from actors.kernel.actor import Actor
from actors.kernel.clock import Clock
from actors.model.records import LedgerSnapshot
from actors.ports.stores import ArchivedSegment, ArchiveStore
from config.schema.ops import RetentionSection

__all__ = ["RetentionActor", "RetentionStats"]

_DAY_MS = 86_400_000


class RetentionStats(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the retention actor (for the admin and metrics)."""

    runs: int
    segments: int
    orders: int
    fills: int
    audit_rows: int
    failures: int
    last_run_ms: int | None
    last_error: str


class RetentionActor(Actor):
    """Runs the archive job periodically in business time (see the module docstring).

    ``settings`` returns the running ``[retention]`` section (a reload applies at the next
    run). ``min_keep_ms`` is the least age kept whatever ``keep_days`` says (the reconciler's
    fill look-back: fills the venue may report again must still be known). ``ledger``
    returns the positions and balances to snapshot before each run (None: not now).
    """

    kind = "retention"

    def __init__(
        self,
        name: str,
        store: ArchiveStore,
        clock: Clock,
        settings: Callable[[], RetentionSection],
        *,
        archive_dir: Path,
        min_keep_ms: Callable[[], int] = lambda: 0,
        ledger: Callable[[], LedgerSnapshot | None] = lambda: None,
    ) -> None:
        super().__init__(name)
        self._store = store
        self._clock = clock
        self._settings = settings
        self._archive_dir = archive_dir
        self._min_keep_ms = min_keep_ms
        self._ledger = ledger
        self._last_run_ms: int | None = None
        self.runs = 0
        self.segments = 0
        self.orders = 0
        self.fills = 0
        self.audit_rows = 0
        self.failures = 0
        self.last_error = ""
        #: Set after each run (tests and benches wait on it; cleared by whoever waits).
        self.ran = asyncio.Event()

    def stats(self) -> RetentionStats:
        """Counters."""
        return RetentionStats(runs=self.runs, segments=self.segments, orders=self.orders, fills=self.fills,
                              audit_rows=self.audit_rows, failures=self.failures, last_run_ms=self._last_run_ms,
                              last_error=self.last_error)

    async def run(self) -> None:
        """Look at the business clock every ``check_interval_s``; run when ``interval_s`` has passed."""
        while True:
            cfg = self._settings()
            now = self._clock.now_ms()
            if self._last_run_ms is None or now - self._last_run_ms >= cfg.interval_s * 1000:
                self._last_run_ms = now
                await self.run_once(now)
            self.beat(0)
            await asyncio.sleep(cfg.check_interval_s)

    async def run_once(self, now_ms: int) -> list[ArchivedSegment]:
        """One run at business time ``now_ms``: archive segments until none is due; returns them."""
        cfg = self._settings()
        keep_ms = max(round(cfg.keep_days * _DAY_MS), self._min_keep_ms())
        done: list[ArchivedSegment] = []
        try:
            snapshot = self._ledger()
            if snapshot is not None:  # taken and queued with no await between: it includes every fill queued
                await self._store.save_ledger_snapshot(snapshot)
            for _ in range(cfg.max_segments_per_run):
                seg = await self._store.archive_segment(
                    now_ms=now_ms, keep_ms=keep_ms, archive_dir=self._archive_dir,
                    max_orders=cfg.segment_max_orders, max_audit_rows=cfg.segment_max_audit_rows)
                if seg is None:
                    break
                done.append(seg)
                self._count(seg)
                if not seg.full:
                    break
                await asyncio.sleep(0)  # let trading run between two segments
        except Exception as exc:  # housekeeping: log, count, retry at the next run
            self.failures += 1
            self.last_error = str(exc)
            self.log.error("retention.failed", error=str(exc), archive_dir=str(self._archive_dir))
        finally:
            self.runs += 1
            self.ran.set()
        return done

    def _count(self, seg: ArchivedSegment) -> None:
        self.segments += 1
        self.orders += seg.orders
        self.fills += seg.fills
        self.audit_rows += seg.audit_rows
        self.beat()
        self.log.info("retention.archived", segment=seg.name, orders=seg.orders, order_events=seg.order_events,
                      fills=seg.fills, risk_events=seg.risk_events, audit_rows=seg.audit_rows,
                      skipped_orders=seg.skipped_orders)
