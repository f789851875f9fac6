"""Reconciliation: the venue's truth against ours.

``reconcile`` runs one pass. The order manager stays the single owner of orders, fills
and balances: the reconciler reads the venue and applies what it finds *through* the
order manager (``ReconcileTarget``), which runs the state machine, the ledger's dedup and
overfill checks, emits the events and writes the store. A full pass:

1. venue open orders: ours → applied if the venue knows more; not ours → adopted or
   cancelled per ``unknown_orders``;
2. our open orders the venue does not list → queried by client order id: finished →
   closed; unknown to the venue, older than ``inflight_query_after_s`` and than the time
   the venue may still execute a request (its optional ``submit_expiry_s``) → REJECTED
   (never acknowledged) or CANCELED, reason ``lost``; never resubmitted;
3. venue fills within the lookback we have not seen → applied (overfills refused);
4. balances per asset beyond ``balance_tolerance``, confirmed against a consistent picture
   (fills re-synced between two venue balance reads that agree: a fill executed between
   our reads is no mismatch) → reported, then the ledger adopts the venue's balances.

An ``inflight`` pass does step 2 for in-flight orders only. Every discrepancy is a row
in the audit log; those marked ``halting`` count towards ``halt_after_discrepancies``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Literal, Protocol

import msgspec

from actors.kernel.actor import Actor
from actors.kernel.channel import Channel, ChannelClosed
from actors.kernel.clock import Clock, WallClock, monotonic
from actors.model.control import SetTradingState, TradingState
from actors.model.orders import TERMINAL_STATUSES, Fill, OrderStatus, VenueOrder
from actors.model.records import LedgerSnapshot, OrderRecord
from actors.orders.ledger import FillOutcome
from actors.orders.order_table import InFlightOrder
from actors.ports.stores import OrderStore
from actors.ports.venue import OrderNotFound, Venue
from config.schema.trading import ReconcilerSection

PassKind = Literal["startup", "periodic", "inflight"]
#: Balance reads a pass makes at most to see the venue's balances hold still (see ``_check_balances``).
_BALANCE_READS = 3


class Discrepancy(msgspec.Struct, frozen=True, kw_only=True):
    """One difference between the venue and us, and what was done about it.

    Kinds: ``order_updated``, ``order_closed``, ``lost_order``, ``unknown_order_adopted``,
    ``unknown_order_canceled``, ``unknown_order_cancel_failed``, ``zombie_order_canceled``,
    ``zombie_order_cancel_failed`` (we closed it, the venue has it open), ``missing_fill``,
    ``fill_refused``, ``balance_mismatch``.
    """

    kind: str
    client_order_id: str = ""
    detail: str = ""
    halting: bool = False


class ReconcileReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one pass. ``errors`` lists venue calls that failed (pass incomplete)."""

    kind: str
    started_ms: int
    finished_ms: int
    discrepancies: tuple[Discrepancy, ...]
    counts: dict[str, int]
    orders_checked: int
    fills_checked: int
    assets_checked: int
    errors: tuple[str, ...] = ()

    @property
    def halting(self) -> int:
        """Discrepancies that count towards halting."""
        return sum(1 for d in self.discrepancies if d.halting)

    @property
    def complete(self) -> bool:
        """True when every venue call of the pass succeeded."""
        return not self.errors


class ReconcileTarget(Protocol):
    """The order owner as the reconciler sees it (``OrderManager`` implements it)."""

    loaded: asyncio.Event

    def open_orders(self) -> list[OrderRecord]:
        """Our open orders."""
        ...

    def order(self, client_order_id: str) -> OrderRecord | None:
        """An open or recently closed order."""
        ...

    def in_flight(self, older_than_s: float = 0.0) -> list[InFlightOrder]:
        """Orders waiting for the venue."""
        ...

    def apply_venue_order(self, vo: VenueOrder) -> bool:
        """Apply the venue's view of an order; True if it changed ours."""
        ...

    def apply_fill(self, fill: Fill) -> FillOutcome:
        """Apply a fill (dedup, overfill refusal)."""
        ...

    def knows_fill(self, venue: str, trade_id: str) -> bool:
        """True when this fill was applied or refused recently."""
        ...

    def mark_lost(self, client_order_id: str, reason: str) -> bool:
        """Close an order the venue does not know."""
        ...

    def adopt_order(self, vo: VenueOrder, strategy: str = "external") -> OrderRecord:
        """Track an order placed outside aaiti."""
        ...

    def balances(self) -> dict[str, Decimal]:
        """Balances derived from fills."""
        ...

    def rebase_balances(self, balances: dict[str, Decimal], reason: str) -> dict[str, Decimal]:
        """Adopt venue balances."""
        ...


class _Pass:
    """Accumulates one pass's findings; audits each discrepancy as it is found."""

    def __init__(self, store: OrderStore, kind: PassKind, now_ms: int) -> None:
        self.store = store
        self.kind = kind
        self.started_ms = now_ms
        self.found: list[Discrepancy] = []
        self.errors: list[str] = []
        self.orders = 0
        self.fills = 0
        self.assets = 0

    def add(self, kind: str, client_order_id: str = "", detail: str = "", halting: bool = False) -> None:
        d = Discrepancy(kind=kind, client_order_id=client_order_id, detail=detail, halting=halting)
        self.found.append(d)
        self.store.append_audit_nowait("reconcile.discrepancy", {
            "pass": self.kind, "kind": kind, "client_order_id": client_order_id, "detail": detail,
            "halting": halting})

    def report(self, now_ms: int) -> ReconcileReport:
        counts: dict[str, int] = {}
        for d in self.found:
            counts[d.kind] = counts.get(d.kind, 0) + 1
        return ReconcileReport(
            kind=self.kind, started_ms=self.started_ms, finished_ms=now_ms, discrepancies=tuple(self.found),
            counts=counts, orders_checked=self.orders, fills_checked=self.fills, assets_checked=self.assets,
            errors=tuple(self.errors),
        )


async def reconcile(
    store: OrderStore,
    venue: Venue,
    target: ReconcileTarget,
    settings: ReconcilerSection,
    *,
    kind: PassKind = "periodic",
    fills_since_ms: int | None = None,
    clock: Clock | None = None,
) -> ReconcileReport:
    """Run one reconciliation pass (see the module docstring) and return its report.

    ``clock`` is business time (the report's times, the fill look-back; wall clock by
    default). ``fills_since_ms`` defaults to now minus ``settings.fills_lookback_s``. Venue
    failures do not raise: they are listed in ``report.errors`` and the rest of the pass
    goes on.
    """
    clock = clock if clock is not None else WallClock()
    now = clock.now_ms()
    p = _Pass(store, kind, now)
    if kind == "inflight":
        await _check_missing(p, venue, target, settings, [
            rec for f in target.in_flight(settings.inflight_query_after_s)
            if (rec := target.order(f.client_order_id)) is not None
        ], {f.client_order_id: f.age_s for f in target.in_flight()})
        return p.report(clock.now_ms())
    since = fills_since_ms if fills_since_ms is not None else now - int(settings.fills_lookback_s * 1000)
    try:
        venue_open = await venue.open_orders()
    except Exception as exc:
        p.errors.append(f"open_orders: {exc}")
        venue_open = None
    if venue_open is not None:
        listed = {vo.client_order_id for vo in venue_open}
        await _check_venue_open(p, venue, target, settings, venue_open)
        ours = [rec for rec in target.open_orders() if rec.client_order_id not in listed]
        await _check_missing(p, venue, target, settings, ours, {f.client_order_id: f.age_s
                                                               for f in target.in_flight()})
    await _sync_fills(p, venue, target, since)
    await _check_balances(p, venue, target, settings, since)
    return p.report(clock.now_ms())


async def _check_venue_open(
    p: _Pass, venue: Venue, target: ReconcileTarget, settings: ReconcilerSection, venue_open: list[VenueOrder]
) -> None:
    threshold = settings.inflight_query_after_s
    young = {f.client_order_id for f in target.in_flight() if f.age_s < threshold}
    for vo in venue_open:
        p.orders += 1
        if vo.client_order_id in young:
            continue  # its submit/cancel answer is on its way; not a discrepancy
        rec = target.order(vo.client_order_id)
        if rec is not None and rec.status in TERMINAL_STATUSES and vo.status not in TERMINAL_STATUSES:
            # We closed it (e.g. as lost) but the venue listed it open. The list may just be
            # older than what the update stream told us since (filled, cancelled): only an
            # order the venue still has open *now* is a zombie to cancel.
            try:
                now_vo = await venue.query(vo.client_order_id, vo.symbol)
            except Exception as exc:
                p.errors.append(f"query {vo.client_order_id}: {exc}")
                continue
            if now_vo is not None and now_vo.status not in TERMINAL_STATUSES:
                await _cancel_at_venue(p, venue, now_vo, "zombie_order")
            elif now_vo is not None and now_vo.status is not rec.status:
                p.add("zombie_order_canceled", vo.client_order_id,
                      f"{vo.side.value} {vo.size} {vo.symbol}: closed before it could be cancelled "
                      f"(ours {rec.status.value}, venue {now_vo.status.value})")
            continue
        if rec is not None:
            before = (rec.status, rec.filled)
            if target.apply_venue_order(vo):
                p.add("order_updated", vo.client_order_id,
                      f"ours {before[0].value} filled {before[1]}, venue {vo.status.value} filled {vo.filled}")
            continue
        if settings.unknown_orders == "adopt":
            target.adopt_order(vo)
            p.add("unknown_order_adopted", vo.client_order_id, f"{vo.side.value} {vo.size} {vo.symbol} adopted")
            continue
        await _cancel_at_venue(p, venue, vo, "unknown_order")


async def _cancel_at_venue(p: _Pass, venue: Venue, vo: VenueOrder, kind: str) -> None:
    what = f"{vo.side.value} {vo.size} {vo.symbol}"
    try:
        await venue.cancel(vo.client_order_id, vo.symbol)
    except OrderNotFound:
        p.add(f"{kind}_canceled", vo.client_order_id, f"{what}: closed before it could be cancelled")
    except Exception as exc:
        p.add(f"{kind}_cancel_failed", vo.client_order_id, f"{what}: {exc}", halting=True)
    else:
        p.add(f"{kind}_canceled", vo.client_order_id, f"{what} cancelled")


async def _check_missing(
    p: _Pass,
    venue: Venue,
    target: ReconcileTarget,
    settings: ReconcilerSection,
    ours: list[OrderRecord],
    ages: dict[str, float],
) -> None:
    """Resolve our open orders the venue did not list, by client order id.

    An order the venue does not know is only lost once its request can no longer reach the
    venue: a submit whose answer timed out may still be executed until the venue's
    ``submit_expiry_s`` (Binance: recvWindow) has passed since it was sent. Until then it is
    asked about again at the next pass.
    """
    threshold = settings.inflight_query_after_s
    lost_after = max(threshold, float(getattr(venue, "submit_expiry_s", 0.0) or 0.0))
    for rec in ours:
        coid = rec.client_order_id
        age = ages.get(coid)
        if age is not None and age < threshold:
            continue  # just sent: the venue may not list it yet
        p.orders += 1
        try:
            vo = await venue.query(coid, rec.symbol)
        except Exception as exc:
            p.errors.append(f"query {coid}: {exc}")
            continue
        current = target.order(coid)
        if current is None or current.status in TERMINAL_STATUSES:
            continue  # resolved meanwhile by the update stream
        if vo is None:
            if age is not None and age < lost_after:
                continue  # its request may still arrive at the venue: not lost yet
            halting = current.status not in (OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL)
            if target.mark_lost(coid, "lost"):
                p.add("lost_order", coid, f"unknown to the venue, was {current.status.value}", halting=halting)
            continue
        if target.apply_venue_order(vo):
            kind = "order_closed" if vo.status in TERMINAL_STATUSES else "order_updated"
            p.add(kind, coid, f"ours {current.status.value}, venue {vo.status.value} filled {vo.filled}")


async def _sync_fills(p: _Pass, venue: Venue, target: ReconcileTarget, since_ms: int) -> bool:
    """Apply the venue's fills we have not seen; False when they could not be read."""
    try:
        fills = await venue.fills_since(since_ms)
    except Exception as exc:
        p.errors.append(f"fills_since: {exc}")
        return False
    for f in fills:
        p.fills += 1
        if target.knows_fill(f.venue, f.trade_id):
            continue
        out = target.apply_fill(f)
        if out.accepted:
            p.add("missing_fill", f.client_order_id, f"trade {f.trade_id}: {f.side.value} {f.size} @ {f.price}")
        elif out.reason != "duplicate":
            p.add("fill_refused", f.client_order_id, f"trade {f.trade_id}: {out.reason}", halting=True)
    return True


async def _check_balances(
    p: _Pass, venue: Venue, target: ReconcileTarget, settings: ReconcilerSection, since_ms: int
) -> None:
    """Compare our balances with the venue's; report and adopt the venue's on a real mismatch.

    Our balances come from the fills we applied, the venue's from a read at another moment:
    a fill executed in between looks like a mismatch, and adopting the venue's balances then
    would count that fill twice once it reaches us. So a difference is only believed when
    it holds against a consistent picture: venue balances read, fills re-synced, ours taken,
    venue balances read again and *unchanged* (nothing executed meanwhile). If they keep
    changing, or the fills cannot be read, nothing is compared this pass (``errors``).
    """
    tol = settings.balance_tolerance

    async def read() -> dict[str, Decimal] | None:
        try:
            return {a: b.total for a, b in (await venue.balances()).items()}
        except Exception as exc:
            p.errors.append(f"balances: {exc}")
            return None

    def differences(ours: dict[str, Decimal], theirs: dict[str, Decimal]) -> dict[str, tuple[Decimal, Decimal]]:
        return {
            a: (ours.get(a, Decimal(0)), theirs.get(a, Decimal(0)))
            for a in set(ours) | set(theirs)
            if abs(theirs.get(a, Decimal(0)) - ours.get(a, Decimal(0))) > tol
        }

    venue_totals = await read()
    if venue_totals is None:
        return
    diffs = differences(target.balances(), venue_totals)
    for _ in range(_BALANCE_READS):
        if not diffs:
            break
        # Let pending updates through, re-sync fills, and look again against a still venue.
        await asyncio.sleep(0)
        if not await _sync_fills(p, venue, target, since_ms):
            return
        ours = target.balances()
        again = await read()
        if again is None:
            return
        still = again == venue_totals
        venue_totals = again
        diffs = differences(ours, again)
        if still:
            break
    else:
        if diffs:
            p.errors.append(f"balances: still changing after {_BALANCE_READS} reads; not compared")
            return
    p.assets = len(venue_totals)
    p.store.save_ledger_snapshot_nowait(LedgerSnapshot(ts_ms=p.started_ms, balances=venue_totals, source="venue"))
    if not diffs:
        return
    for asset, (ours_v, venue_v) in sorted(diffs.items()):
        p.add("balance_mismatch", "", f"{asset}: ours {ours_v}, venue {venue_v}, diff {venue_v - ours_v}",
              halting=True)
    target.rebase_balances(venue_totals, f"reconcile {p.kind}")


class Reconciler(Actor):
    """Runs a startup pass (retried until the venue answers), then periodic and in-flight passes.

    ``ready`` is set once the startup pass completed (strategies start after it). When a
    pass finds more halting discrepancies than ``halt_after_discrepancies`` it sends
    ``SetTradingState(HALTED)`` to ``control``. ``settings`` is called before each pass, so
    reloaded intervals apply. ``clock`` is business time (report times, fill look-backs);
    the intervals between passes are process time.
    """

    kind = "reconciler"

    def __init__(
        self,
        name: str,
        *,
        store: OrderStore,
        venue: Venue,
        target: ReconcileTarget,
        settings: Callable[[], ReconcilerSection],
        control: Channel[SetTradingState] | None = None,
        clock: Clock | None = None,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        super().__init__(name)
        self._store = store
        self._venue = venue
        self._target = target
        self._settings = settings
        self._control = control
        self._clock = clock if clock is not None else WallClock()
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self.ready = asyncio.Event()
        self.last_report: ReconcileReport | None = None
        self.passes = 0
        self.discrepancies_total: dict[str, int] = {}
        self.halts_requested = 0

    async def run(self) -> None:
        """Startup pass, then passes on an interval."""
        await self._target.loaded.wait()
        delay = self._retry_initial_s
        while True:
            report = await self.run_pass("startup")
            if report.complete:
                break
            self.log.warning("reconcile.startup_incomplete", errors=list(report.errors), retry_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._retry_max_s)
        self.ready.set()
        last_full = monotonic()
        last_full_ms = report.started_ms
        while True:
            s = self._settings()
            tick = min(s.interval_s, s.inflight_query_after_s)
            await asyncio.sleep(tick)
            if monotonic() - last_full >= s.interval_s:
                last_full = monotonic()
                # Fills since the previous full pass, with an interval and a minute to spare, in
                # business time: a replay on market time covers the market minutes that passed.
                now_ms = self._clock.now_ms()
                since_ms = max(now_ms - int(s.fills_lookback_s * 1000),
                               last_full_ms - int(s.interval_s * 1000) - 60_000)
                last_full_ms = now_ms
                await self.run_pass("periodic", since_ms)
            elif self._target.in_flight(s.inflight_query_after_s):
                await self.run_pass("inflight")
            self.beat()

    async def run_pass(self, kind: PassKind, fills_since_ms: int | None = None) -> ReconcileReport:
        """Run one pass now, record it, and halt trading if it found too much."""
        s = self._settings()
        report = await reconcile(self._store, self._venue, self._target, s, kind=kind,
                                 fills_since_ms=fills_since_ms, clock=self._clock)
        self.passes += 1
        self.last_report = report
        for k, n in report.counts.items():
            self.discrepancies_total[k] = self.discrepancies_total.get(k, 0) + n
        if report.discrepancies or report.errors:
            self.log.warning("reconcile.discrepancies", pass_kind=kind, counts=report.counts,
                             halting=report.halting, errors=list(report.errors))
        elif kind != "inflight":
            self.log.info("reconcile.clean", pass_kind=kind, orders=report.orders_checked,
                          fills=report.fills_checked, assets=report.assets_checked)
        if report.halting > s.halt_after_discrepancies:
            await self._halt(report)
        self.beat()
        return report

    async def _halt(self, report: ReconcileReport) -> None:
        reason = (f"reconciler: {report.halting} discrepancies in the {report.kind} pass "
                  f"(limit {self._settings().halt_after_discrepancies}): "
                  + ", ".join(f"{k}={n}" for k, n in sorted(report.counts.items())))
        self.halts_requested += 1
        self.log.error("reconcile.halt_requested", reason=reason)
        if self._control is None:
            return
        try:
            await self._control.send(SetTradingState(state=TradingState.HALTED, reason=reason))
        except ChannelClosed:
            self.log.error("reconcile.halt_not_delivered", reason=reason)
