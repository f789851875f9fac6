"""The order table: every order the order manager knows, the ledger, counters and the views.

Pure state: no I/O, no asyncio, no channels; time comes only from the injected clocks
(business time for record and event timestamps, process time for in-flight ages). The
order manager (the actor) owns one table and does the I/O around it: each mutation returns
the ``Change``s it caused, which the owner carries out in order (audit a refused
transition, persist the record, persist and publish the event).

Every status change goes through the state machine; an illegal one is refused and counted,
never applied. Fills go through the ledger (dedup by (venue, trade_id), overfill refusal).
Open orders live in the table until they are final; final ones are kept in a bounded window
(``closed_order_window``) for late updates and fills.

A venue may report a native conditional order (or an order-list leg) TRIGGERED or EXPIRED
before we saw it ACCEPTED, or while our cancel is pending (Binance expires the other leg of
an OCO that filled): the table then moves it through ACCEPTED first, since the venue must
have accepted it to trigger or expire it.

Every change to what the risk gate reads bumps ``version``; ``PortfolioPublisher`` turns
the table into an immutable ``PortfolioView`` at most once per version.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import NamedTuple

import msgspec

from actors.kernel.clock import Clock, monotonic
from actors.model.orders import TERMINAL_STATUSES, Fill, OrderEvent, OrderStatus, VenueOrder
from actors.model.positions import ZERO, PositionView, fee_in_quote, split_symbol
from actors.model.records import LedgerSnapshot, OrderRecord
from actors.orders.ledger import FillOutcome, Ledger
from actors.orders.open_quantities import portfolio_view_of
from actors.orders.state_machine import IllegalTransition, transition
from actors.ports.portfolio import PortfolioView

_S = OrderStatus
#: Statuses in which we wait for the venue's answer (submit, cancel or amend outcome unknown).
_IN_FLIGHT = frozenset({_S.SUBMITTED, _S.PENDING_CANCEL, _S.PENDING_UPDATE})
_CLOSED_BY_VENUE = (_S.REJECTED, _S.EXPIRED, _S.DENIED)
#: Venue statuses reached through ACCEPTED from a status that has no direct move to them.
_VIA_ACCEPTED = frozenset({(_S.SUBMITTED, _S.TRIGGERED), (_S.SUBMITTED, _S.EXPIRED),
                           (_S.PENDING_CANCEL, _S.TRIGGERED), (_S.PENDING_CANCEL, _S.EXPIRED)})


class InFlightOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order waiting for the venue (submit or cancel outcome unknown so far).

    ``age_s`` counts from when its request was sent (0 while a submit waits to be sent).
    """

    client_order_id: str
    symbol: str
    status: OrderStatus
    age_s: float


class OrderCounters(msgspec.Struct, frozen=True, kw_only=True):
    """Counters of the order manager (process lifetime)."""

    open_by_status: dict[str, int]
    transitions: dict[str, int]
    submitted: int
    rejected: int
    submit_unknown: int
    cancel_requests: int
    cancel_failures: int
    illegal_transitions: int
    stale_updates: int
    unknown_order_updates: int
    fills_applied: int
    duplicate_fills: int
    overfills: int
    unknown_order_fills: int
    store_errors: int
    events_published: int


class OrderManagerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """An immutable picture of the order manager for the admin API and metrics.

    Built fresh on request (never shared with the live state); ``balances`` are derived
    from fills (starting balances + fills - fees). ``last_intent_id`` is the intent of the
    latest approved intent taken in (its order is open, final or was denied by now).
    """

    ts_ms: int
    loaded: bool
    open_orders: tuple[OrderRecord, ...]
    in_flight: tuple[InFlightOrder, ...]
    positions: tuple[PositionView, ...]
    balances: dict[str, Decimal]
    counters: OrderCounters
    last_intent_id: str = ""


class Refusal(NamedTuple):
    """An illegal transition that was refused: the order as it stands and the status asked for."""

    record: OrderRecord
    new: OrderStatus
    detail: str


class Change(NamedTuple):
    """One outcome of a mutation, carried out by the owner in field order.

    ``refused``: an illegal transition to log and audit; ``record``: the order's new
    version to persist; ``event``: the event to persist and publish.
    """

    refused: Refusal | None = None
    record: OrderRecord | None = None
    event: OrderEvent | None = None


class TableCounts:
    """Process-lifetime counters; the owner counts its I/O outcomes here too."""

    __slots__ = ("cancel_failures", "cancel_requests", "illegal", "rejected", "stale", "store_errors",
                 "submit_unknown", "submitted", "transitions", "unknown_updates")

    def __init__(self) -> None:
        self.transitions: dict[str, int] = {}
        self.submitted = 0
        self.rejected = 0
        self.submit_unknown = 0
        self.cancel_requests = 0
        self.cancel_failures = 0
        self.illegal = 0
        self.stale = 0
        self.unknown_updates = 0
        self.store_errors = 0


def _fill_totals(symbol: str, fills: Iterable[Fill]) -> tuple[Decimal, Decimal, Decimal]:
    """Filled size, notional and fees (in quote; third-asset fees left out) of an order's fills."""
    base, quote = split_symbol(symbol)
    filled = notional = fees = ZERO
    for f in fills:
        filled += f.size
        notional += f.size * f.price
        fees += fee_in_quote(f.fee, f.fee_currency, f.price, base, quote) or ZERO
    return filled, notional, fees


class OrderTable:
    """Orders, ledger and counters of one order manager (see the module docstring).

    The table outlives restarts of its actor: ``reset`` forgets orders and the ledger before
    they are reloaded from the store, while counters and ``version`` carry on.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        dedup_window: int = 200_000,
        closed_order_window: int = 10_000,
        process_time: Callable[[], float] = monotonic,
    ) -> None:
        self._clock = clock
        self._process_time = process_time
        self._dedup_window = dedup_window
        self._closed_window = closed_order_window
        self.version = 0
        self.last_intent_id = ""
        self.counts = TableCounts()
        self._ledger_totals = (0, 0, 0, 0)
        self._ledger = Ledger(dedup_window=dedup_window, closed_order_window=closed_order_window)
        self._orders: dict[str, OrderRecord] = {}
        self._closed: dict[str, OrderRecord] = {}
        self._closed_order: deque[str] = deque()
        # In flight since (process time) the request was sent; None: written ahead, not sent yet.
        self._inflight: dict[str, float | None] = {}
        self._submitting: set[str] = set()
        self._deferred_cancels: dict[str, str] = {}
        #: True once a closed order fell out of the window: the table no longer knows every order.
        self.forgot_closed = False

    # -- loading ------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every order and the ledger (counters and ``version`` carry on)."""
        c = self._ledger.counters()
        t = self._ledger_totals
        self._ledger_totals = (t[0] + c.fills_applied, t[1] + c.duplicate_fills, t[2] + c.overfills,
                               t[3] + c.unknown_order_fills)
        self._ledger = Ledger(dedup_window=self._dedup_window, closed_order_window=self._closed_window)
        self._orders = {}
        self._closed = {}
        self._closed_order = deque()
        self._inflight = {}
        self._submitting = set()
        self._deferred_cancels = {}
        self.forgot_closed = False
        self.version += 1

    def restore_ledger(self, positions: Iterable[PositionView], balances: dict[str, Decimal]) -> None:
        """Start the ledger from a stored snapshot (or the venue's balances on a first start)."""
        self._ledger.restore(positions, balances)
        self.version += 1

    def replay_fill(self, fill: Fill) -> None:
        """Re-apply a stored fill newer than the snapshot to positions and balances."""
        self._ledger.replay_fill(fill)
        self.version += 1

    def mark_seen(self, venue: str, trade_id: str) -> None:
        """Remember a stored fill's trade id, so a redelivery is a duplicate."""
        self._ledger.mark_seen(venue, trade_id)

    def load_open_order(self, rec: OrderRecord, fills: Iterable[Fill]) -> None:
        """Track a stored open order again; its fill totals are recomputed from its stored fills.

        An in-flight order's age is counted from its last update (business time).
        """
        filled, notional, fees = _fill_totals(rec.symbol, fills)
        if filled != rec.filled:
            rec = msgspec.structs.replace(rec, filled=filled, avg_price=notional / filled if filled else None,
                                          fees=fees)
        coid = rec.client_order_id
        self._ledger.register_order(coid, symbol=rec.symbol, side=rec.side, size=rec.size, filled=filled,
                                    notional=notional, fees=fees)
        self._orders[coid] = rec
        if rec.status in _IN_FLIGHT:
            age_s = max(0, self._clock.now_ms() - rec.updated_ms) / 1000
            self._inflight[coid] = self._process_time() - age_s
        self.version += 1

    def load_filled_awaiting_fills(self, rec: OrderRecord, fills: Iterable[Fill]) -> None:
        """Track a stored FILLED order whose fills are still on their way (the venue's answer said
        FILLED before its executions arrived, then the daemon stopped): in the closed window, with
        its fill totals in the ledger, so the late fills add up on it instead of starting at 0."""
        filled, notional, fees = _fill_totals(rec.symbol, fills)
        rec = msgspec.structs.replace(rec, filled=filled, avg_price=notional / filled if filled else None, fees=fees)
        coid = rec.client_order_id
        self._ledger.register_order(coid, symbol=rec.symbol, side=rec.side, size=rec.size, filled=filled,
                                    notional=notional, fees=fees)
        self._ledger.close_order(coid)
        self._remember_closed(rec)
        self.version += 1

    def remember_closed(self, rec: OrderRecord) -> None:
        """Keep a final order read back from the store in the closed window, for lookups only."""
        if rec.status in TERMINAL_STATUSES and self.order(rec.client_order_id) is None:
            self._remember_closed(rec)

    # -- submits and cancels ----------------------------------------------------------------
    def took_in(self, intent_id: str) -> None:
        """Note the latest approved intent taken in (its orders are written or denied)."""
        self.last_intent_id = intent_id
        self.version += 1

    def add_submitted(self, rec: OrderRecord, *, sent: bool = True) -> OrderEvent:
        """Track a new order whose write-ahead insert committed (SUBMITTED, in flight).

        ``sent=False``: its submit is still to be sent; its in-flight age counts from
        :meth:`mark_sent` (a submit queued behind others is not late), 0 until then.
        """
        coid = rec.client_order_id
        self._orders[coid] = rec
        self._inflight[coid] = self._process_time() if sent else None
        self._submitting.add(coid)
        self._ledger.register_order(coid, symbol=rec.symbol, side=rec.side, size=rec.size)
        self._count(_S.SUBMITTED)
        self.counts.submitted += 1
        self.version += 1
        return self._event(rec, _S.SUBMITTED, _S.INITIALIZED)

    def deny_unsent(self, rec: OrderRecord, reason: str) -> OrderEvent:
        """An order that could not be written ahead: DENIED, never tracked, never sent."""
        self._count(_S.DENIED)
        return self._event(rec, _S.DENIED, _S.INITIALIZED, reason)

    def mark_sent(self, client_order_id: str) -> None:
        """The submit is being sent to the venue now: its in-flight age starts here.

        How long the venue may still execute a request whose answer was lost counts from when
        it was sent, not from the write-ahead (which may be a while earlier under backpressure).
        """
        if client_order_id in self._inflight:
            self._inflight[client_order_id] = self._process_time()

    def finish_submit(self, client_order_id: str) -> None:
        """The venue answered the submit (or the call ended without an answer)."""
        self._submitting.discard(client_order_id)

    def is_submitting(self, client_order_id: str) -> bool:
        """True while the submit of this order waits for the venue's answer."""
        return client_order_id in self._submitting

    def defer_cancel(self, client_order_id: str, reason: str) -> None:
        """Remember a cancel to request once the submit has been answered."""
        self._deferred_cancels[client_order_id] = reason

    def pop_deferred_cancel(self, client_order_id: str) -> str | None:
        """The reason of a cancel deferred while submitting, if any (forgotten once read)."""
        return self._deferred_cancels.pop(client_order_id, None)

    # -- state changes ----------------------------------------------------------------------
    def transition(
        self, rec: OrderRecord, new: OrderStatus, reason: str = "", fill: Fill | None = None
    ) -> Change:
        """Move an order to ``new`` if the state machine allows it.

        Applied: the change carries the new record and its event. Refused: only ``refused``.
        """
        prev = rec.status
        try:
            transition(prev, new, rec.client_order_id)
        except IllegalTransition:
            self.counts.illegal += 1
            return Change(refused=Refusal(rec, new, reason))
        rec = msgspec.structs.replace(rec, status=new, reason=reason or rec.reason, updated_ms=self._clock.now_ms())
        self._put(rec)
        self._count(new)
        return Change(record=rec, event=self._event(rec, new, prev, reason, fill))

    def apply_venue_order(self, vo: VenueOrder) -> list[Change]:
        """Apply the venue's view of one of our orders; no changes when stale, unknown or the same."""
        rec = self.order(vo.client_order_id)
        if rec is None:
            self.counts.unknown_updates += 1
            return []
        if vo.filled < rec.filled:
            self.counts.stale += 1
            return []
        changes: list[Change] = []
        if vo.venue_order_id and vo.venue_order_id != rec.venue_order_id:
            rec = msgspec.structs.replace(rec, venue_order_id=vo.venue_order_id)
            self._put(rec)
            changes.append(Change(record=rec))
        if vo.status is not rec.status:
            if (rec.status, vo.status) in _VIA_ACCEPTED:
                accepted = self.transition(rec, _S.ACCEPTED)
                changes.append(accepted)
                if accepted.record is None:
                    return changes
                rec = accepted.record
            changes.append(self.transition(rec, vo.status, vo.reason))
        return changes

    def apply_fill(self, fill: Fill) -> tuple[FillOutcome, list[Change]]:
        """Apply one execution to the ledger and to its order.

        No changes when the ledger refused it, or when the order is not (or no longer)
        known here: the money moved all the same.
        """
        out = self._ledger.apply_fill(fill)
        if not out.accepted:
            return out, []
        self.version += 1
        rec = self.order(fill.client_order_id)
        if rec is None:
            return out, []
        rec = msgspec.structs.replace(
            rec,
            filled=out.order_filled,
            avg_price=out.order_avg_price,
            fees=out.order_fees,
            venue_order_id=rec.venue_order_id or fill.venue_order_id,
            updated_ms=self._clock.now_ms(),
        )
        status = rec.status
        target = _S.FILLED if out.complete else _S.PARTIALLY_FILLED
        if status is _S.FILLED or status in _CLOSED_BY_VENUE:
            # The order is final: record the fill on it, its status stays.
            changes: list[Change] = []
            if status is not _S.FILLED:
                self.counts.illegal += 1
                changes.append(Change(refused=Refusal(rec, target, "fill on a closed order")))
            self._put(rec)
            changes.append(Change(record=rec, event=self._event(rec, status, status, "fill", fill)))
            return out, changes
        if status is _S.CANCELED and not out.complete:
            # A late partial fill: record it, and the order stays cancelled.
            mid = self.transition(rec, _S.PARTIALLY_FILLED, "late_fill", fill)
            if mid.record is None:
                return out, [mid]
            return out, [mid, self.transition(mid.record, _S.CANCELED, "late_fill")]
        return out, [self.transition(rec, target, "", fill)]

    def mark_lost(self, client_order_id: str, reason: str) -> Change | None:
        """Close an open order the venue does not know: SUBMITTED → REJECTED, else → CANCELED."""
        rec = self._orders.get(client_order_id)
        if rec is None:
            return None
        target = _S.REJECTED if rec.status is _S.SUBMITTED else _S.CANCELED
        return self.transition(rec, target, reason)

    def adopt(self, vo: VenueOrder, strategy: str) -> tuple[OrderRecord, Change]:
        """Start tracking an order placed outside aaiti."""
        now = self._clock.now_ms()
        rec = OrderRecord(
            client_order_id=vo.client_order_id, venue=vo.venue, strategy=strategy, symbol=vo.symbol,
            side=vo.side, type=vo.type, size=vo.size, price=vo.price, status=vo.status,
            venue_order_id=vo.venue_order_id, reason="adopted", created_ms=vo.ts_ms or now, updated_ms=now,
        )
        self._ledger.register_order(rec.client_order_id, symbol=rec.symbol, side=rec.side, size=rec.size)
        self._put(rec)
        self._count(rec.status)
        return rec, Change(record=rec, event=self._event(rec, rec.status, None, "adopted"))

    def rebase_balances(self, balances: dict[str, Decimal]) -> dict[str, Decimal]:
        """Adopt venue balances as truth; returns the per-asset changes."""
        changes = self._ledger.rebase_balances(balances)
        if changes:
            self.version += 1
        return changes

    def _put(self, rec: OrderRecord) -> None:
        coid = rec.client_order_id
        if rec.status in TERMINAL_STATUSES:
            self._orders.pop(coid, None)
            self._inflight.pop(coid, None)
            self._deferred_cancels.pop(coid, None)
            self._remember_closed(rec)
            self._ledger.close_order(coid)
        else:
            self._closed.pop(coid, None)
            self._orders[coid] = rec
            if rec.status in _IN_FLIGHT:
                if coid not in self._inflight:
                    self._inflight[coid] = self._process_time()
            else:
                self._inflight.pop(coid, None)
        self.version += 1

    def _remember_closed(self, rec: OrderRecord) -> None:
        coid = rec.client_order_id
        if coid not in self._closed:
            self._closed_order.append(coid)
            while len(self._closed_order) > self._closed_window:
                self._closed.pop(self._closed_order.popleft(), None)
                self.forgot_closed = True
        self._closed[coid] = rec

    def _count(self, status: OrderStatus) -> None:
        t = self.counts.transitions
        t[status.value] = t.get(status.value, 0) + 1

    def _event(
        self, rec: OrderRecord, status: OrderStatus, previous: OrderStatus | None, reason: str = "",
        fill: Fill | None = None,
    ) -> OrderEvent:
        return OrderEvent(
            client_order_id=rec.client_order_id, strategy=rec.strategy, symbol=rec.symbol, status=status,
            previous=previous, filled=rec.filled, size=rec.size, fill=fill, reason=reason,
            ts_ms=self._clock.now_ms(), intent_id=rec.intent_id, parent=rec.parent,
        )

    # -- views --------------------------------------------------------------------------------
    def order(self, client_order_id: str) -> OrderRecord | None:
        """An open or recently closed order."""
        return self._orders.get(client_order_id) or self._closed.get(client_order_id)

    def open_order(self, client_order_id: str) -> OrderRecord | None:
        """An open order (None once final or unknown)."""
        return self._orders.get(client_order_id)

    def open_orders(self) -> list[OrderRecord]:
        """Open orders, oldest first."""
        return list(self._orders.values())

    def open_order_count(self) -> int:
        """Number of open orders."""
        return len(self._orders)

    def in_flight(self, older_than_s: float = 0.0) -> list[InFlightOrder]:
        """Orders waiting for the venue, with their age in seconds since sent (process time)."""
        now = self._process_time()
        out = []
        for coid, since in self._inflight.items():
            age = 0.0 if since is None else now - since
            rec = self._orders.get(coid)
            if rec is not None and age >= older_than_s:
                out.append(InFlightOrder(client_order_id=coid, symbol=rec.symbol, status=rec.status, age_s=age))
        return out

    def position(self, symbol: str) -> PositionView:
        """The position of one symbol."""
        return self._ledger.position(symbol)

    def positions(self) -> tuple[PositionView, ...]:
        """Every position ever traded, sorted by symbol."""
        return self._ledger.positions()

    def balances(self) -> dict[str, Decimal]:
        """Balances derived from fills (a fresh dict)."""
        return self._ledger.balances()

    def knows_fill(self, venue: str, trade_id: str) -> bool:
        """True when the fill was applied (or refused) recently."""
        return self._ledger.seen(venue, trade_id)

    def ledger_snapshot(self) -> LedgerSnapshot:
        """Positions and balances now, to be stored."""
        return LedgerSnapshot(ts_ms=self._clock.now_ms(), positions=self._ledger.positions(),
                              balances=self._ledger.balances())

    def snapshot(self, *, loaded: bool, events_published: int) -> OrderManagerSnapshot:
        """An immutable picture: open orders, in flight, positions, balances, counters."""
        open_by_status: dict[str, int] = {}
        for rec in self._orders.values():
            open_by_status[rec.status.value] = open_by_status.get(rec.status.value, 0) + 1
        c = self._ledger.counters()
        t = self._ledger_totals
        n = self.counts
        counters = OrderCounters(
            open_by_status=open_by_status,
            transitions=dict(n.transitions),
            submitted=n.submitted,
            rejected=n.rejected,
            submit_unknown=n.submit_unknown,
            cancel_requests=n.cancel_requests,
            cancel_failures=n.cancel_failures,
            illegal_transitions=n.illegal,
            stale_updates=n.stale,
            unknown_order_updates=n.unknown_updates,
            fills_applied=t[0] + c.fills_applied,
            duplicate_fills=t[1] + c.duplicate_fills,
            overfills=t[2] + c.overfills,
            unknown_order_fills=t[3] + c.unknown_order_fills,
            store_errors=n.store_errors,
            events_published=events_published,
        )
        return OrderManagerSnapshot(
            ts_ms=self._clock.now_ms(),
            loaded=loaded,
            open_orders=tuple(self._orders.values()),
            in_flight=tuple(self.in_flight()),
            positions=self._ledger.positions(),
            balances=self._ledger.balances(),
            counters=counters,
            last_intent_id=self.last_intent_id,
        )

    def portfolio_view(self) -> PortfolioView:
        """The account as the risk gate reads it, at the current ``version`` (``open_quantities``)."""
        return portfolio_view_of(self._orders.values(), self._ledger, version=self.version,
                                 last_intent_id=self.last_intent_id)

    def sizes(self) -> dict[str, int]:
        """Sizes of the structures that could grow with uptime (soak runs check their caps)."""
        return {
            "open": len(self._orders),
            "closed": len(self._closed),
            "closed_order": len(self._closed_order),
            "inflight": len(self._inflight),
            **{f"ledger_{k}": v for k, v in self._ledger.sizes().items()},
        }


class PortfolioPublisher:
    """Read-only access to an order table's ``PortfolioView`` (a ``PortfolioSource``).

    The view is rebuilt lazily, at most once per table version, and shared by every reader
    until the table changes again.
    """

    __slots__ = ("_table", "_view")

    def __init__(self, table: OrderTable) -> None:
        self._table = table
        self._view: PortfolioView | None = None

    @property
    def version(self) -> int:
        """The table's version: changes whenever orders, fills or balances change."""
        return self._table.version

    def current(self) -> PortfolioView:
        """The view of the current version."""
        view = self._view
        if view is None or view.version != self._table.version:
            view = self._view = self._table.portfolio_view()
        return view
