"""The order manager: owns orders, fills, positions and balances; the only path to the venue.

Inputs: a ``block`` channel of commands (``ApprovedIntent``, ``CancelOrder``, ``CancelAll``)
and the venue's ``updates()`` stream (``VenueOrder`` and ``Fill``). Output: ``OrderEvent``s
on a ``block`` channel (strategies and the risk gate consume them), in the order the
changes happened.

Write-ahead: a batch of approved intents becomes orders with fresh client order ids that
are committed to the store (status SUBMITTED, "may be at the venue") before
``venue.submit`` is called for any of them. If that commit fails nothing is sent and the
orders are DENIED with reason ``store_unavailable``. Submit outcomes:

- ``OrderRejected`` → REJECTED with the venue's reason code;
- ``VenueUnavailable`` (or any unexpected error) → the outcome is unknown: the order stays
  SUBMITTED and in flight until a query by client order id resolves it (the reconciler);
  it is never resubmitted;
- a ``VenueOrder`` → applied only if the order is still SUBMITTED (the update stream may
  already have told us more).

Every status change goes through the state machine; an illegal one is refused, logged,
counted and audited. Fills go through the ledger (dedup by (venue, trade_id), overfill
refusal). Everything after the write-ahead (status updates, events, fills, snapshots) is
written behind: after a crash, the reconciler re-establishes it from the venue.

State mutations are synchronous (no ``await`` between reading and writing state), so the
command loop, the update consumer, submit/cancel tasks and the reconciler can all call in
without a lock. Events go to an ordered outbox drained by one publisher.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import msgspec

from actors.kernel.actor import Actor
from actors.kernel.channel import Channel, ChannelClosed
from actors.model.orders import (
    TERMINAL_STATUSES,
    ApprovedIntent,
    CancelAll,
    CancelOrder,
    Fill,
    OrderEvent,
    OrderRequest,
    OrderStatus,
    OrderType,
    VenueOrder,
)
from actors.model.positions import ZERO, PositionView, fee_in_quote, split_symbol
from actors.model.records import LedgerSnapshot, OrderRecord
from actors.orders.ledger import OVERFILL, FillOutcome, Ledger
from actors.orders.state_machine import IllegalTransition, transition
from actors.ports.stores import OrderStore
from actors.ports.venue import OrderNotFound, OrderRejected, Venue, VenueUnavailable

OrderCommand = ApprovedIntent | CancelOrder | CancelAll

_S = OrderStatus
_IN_FLIGHT = frozenset({_S.SUBMITTED, _S.PENDING_CANCEL, _S.PENDING_UPDATE})
STORE_UNAVAILABLE = "store_unavailable"


class InFlightOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order waiting for the venue (submit or cancel outcome unknown so far)."""

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
    """An immutable picture of the order manager for the admin and the risk gate.

    Built fresh on request (never shared with the live state); ``balances`` are derived
    from fills (starting balances + fills - fees). ``last_intent_id`` is the intent of the
    latest approved intent taken in (its order is open, final or was denied by now): the
    risk gate stops counting that approval, and every earlier one, as pending.
    """

    ts_ms: int
    loaded: bool
    open_orders: tuple[OrderRecord, ...]
    in_flight: tuple[InFlightOrder, ...]
    positions: tuple[PositionView, ...]
    balances: dict[str, Decimal]
    counters: OrderCounters
    last_intent_id: str = ""


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class OrderManager(Actor):
    """Owns the order lifecycle (see the module docstring).

    ``commands`` is the inbox (block policy); ``events`` receives every ``OrderEvent``.
    ``client_id_prefix`` starts every client order id (1-12 letters/digits).
    ``drain_timeout_s`` bounds the wait for in-flight submits/cancels at shutdown — give
    the supervisor's child shutdown timeout a little more than this.
    ``on_submit`` (optional) is called with the intent's ``origin_ns`` (the ``recv_ns`` of
    the market event behind it; 0 when unknown) right before each ``venue.submit`` call —
    the end of tick-to-submit latency for metrics and benchmarks. It must be cheap and
    must not raise (an exception is logged and otherwise ignored).
    """

    kind = "order_manager"

    def __init__(
        self,
        name: str,
        *,
        venue: Venue,
        store: OrderStore,
        commands: Channel[OrderCommand],
        events: Channel[OrderEvent],
        client_id_prefix: str = "aa",
        drain_timeout_s: float = 5.0,
        max_concurrent_requests: int = 64,
        fills_lookback_s: float = 86_400.0,
        snapshot_every_fills: int = 10_000,
        snapshot_interval_s: float = 60.0,
        outbox_limit: int = 10_000,
        store_backlog_limit: int = 50_000,
        dedup_window: int = 200_000,
        closed_order_window: int = 10_000,
        clock_ms: Callable[[], int] = _wall_ms,
        on_submit: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(name, inbox=commands)
        if not (0 < len(client_id_prefix) <= 12 and client_id_prefix.isascii() and client_id_prefix.isalnum()):
            raise ValueError(f"client_id_prefix must be 1-12 ASCII letters/digits, got {client_id_prefix!r}")
        self._venue = venue
        self._store = store
        self._commands = commands
        self._events = events
        self._prefix = client_id_prefix
        self._drain_timeout_s = drain_timeout_s
        self._max_requests = max_concurrent_requests
        self._lookback_ms = int(fills_lookback_s * 1000)
        self._snapshot_every = snapshot_every_fills
        self._snapshot_interval_s = snapshot_interval_s
        self._outbox_limit = outbox_limit
        self._store_backlog_limit = store_backlog_limit
        self._dedup_window = dedup_window
        self._closed_window = closed_order_window
        self._clock_ms = clock_ms
        self.on_submit = on_submit
        self.last_intent_id = ""
        self.loaded = asyncio.Event()
        self._ledger_totals = (0, 0, 0, 0)
        self._reset_state()
        # Counters survive restarts of this actor instance.
        self._transitions: dict[str, int] = {}
        self._submitted = 0
        self._rejected = 0
        self._submit_unknown = 0
        self._cancel_requests = 0
        self._cancel_failures = 0
        self._illegal = 0
        self._stale = 0
        self._unknown_updates = 0
        self._store_errors = 0
        self._published = 0

    def _reset_state(self) -> None:
        self._orders: dict[str, OrderRecord] = {}
        self._closed: dict[str, OrderRecord] = {}
        self._closed_order: deque[str] = deque()
        self._inflight: dict[str, float] = {}
        self._submitting: set[str] = set()
        self._deferred_cancels: dict[str, str] = {}
        self._ledger = Ledger(dedup_window=self._dedup_window, closed_order_window=self._closed_window)
        self._outbox: deque[OrderEvent] = deque()
        self._outbox_wake = asyncio.Event()
        self._outbox_room = asyncio.Event()
        self._outbox_room.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sem = asyncio.Semaphore(self._max_requests)
        self._background: list[asyncio.Task[None]] = []
        self._stopping = False
        self._fills_since_snapshot = 0
        self._last_snapshot = time.monotonic()

    # ------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        """Load open orders, positions and balances from the store (restart safety)."""
        self.loaded.clear()
        self._ledger_totals = self._merged_ledger_totals()
        self._reset_state()
        store = self._store
        snap = await store.latest_ledger_snapshot()
        if snap is None:
            # First start on this database: the venue's balances are the starting point.
            balances = {a: b.total for a, b in (await self._venue.balances()).items()}
            seq = await store.save_ledger_snapshot(LedgerSnapshot(ts_ms=self._clock_ms(), balances=balances))
            self._ledger.restore((), balances)
            self.log.info("orders.first_start", balances={a: str(v) for a, v in balances.items()}, fill_seq=seq)
        else:
            self._ledger.restore(snap.positions, snap.balances)
            replay = await store.fills_after(snap.fill_seq)
            for _, f in replay:
                self._ledger.replay_fill(f)
            if replay:
                self.log.info("orders.fills_replayed", count=len(replay), since_seq=snap.fill_seq)
        for venue_name, trade_id in await store.fill_keys_since(self._clock_ms() - self._lookback_ms):
            self._ledger.mark_seen(venue_name, trade_id)
        open_orders = await store.open_orders()
        per_order: dict[str, list[Fill]] = {}
        for f in await store.fills_for_orders(r.client_order_id for r in open_orders):
            per_order.setdefault(f.client_order_id, []).append(f)
        now_ms = self._clock_ms()
        mono = time.monotonic()
        for rec in open_orders:
            filled, notional, fees = self._totals(rec.symbol, per_order.get(rec.client_order_id, ()))
            if filled != rec.filled:
                rec = msgspec.structs.replace(
                    rec, filled=filled, avg_price=notional / filled if filled else None, fees=fees
                )
            self._ledger.register_order(
                rec.client_order_id, symbol=rec.symbol, side=rec.side, size=rec.size,
                filled=filled, notional=notional, fees=fees,
            )
            self._orders[rec.client_order_id] = rec
            if rec.status in _IN_FLIGHT:
                self._inflight[rec.client_order_id] = mono - max(0, now_ms - rec.updated_ms) / 1000
        self.log.info("orders.loaded", open_orders=len(self._orders), in_flight=len(self._inflight),
                      positions=len(self._ledger.positions()))
        self.loaded.set()

    @staticmethod
    def _totals(symbol: str, fills: Iterable[Fill]) -> tuple[Decimal, Decimal, Decimal]:
        base, quote = split_symbol(symbol)
        filled = notional = fees = ZERO
        for f in fills:
            filled += f.size
            notional += f.size * f.price
            fees += fee_in_quote(f.fee, f.fee_currency, f.price, base, quote) or ZERO
        return filled, notional, fees

    async def run(self) -> None:
        """Consume commands in batches; the update consumer and publisher run alongside."""
        self._background = [
            asyncio.create_task(self._consume_updates(), name=f"{self.name}.updates"),
            asyncio.create_task(self._publish(), name=f"{self.name}.publisher"),
        ]
        commands = self._commands
        while True:
            try:
                first = await commands.recv()
            except ChannelClosed:
                return
            batch = [first, *commands.drain(255)]
            await self._handle_commands(batch)
            self.beat(len(batch))
            await self._backpressure()

    async def wait_requests(self, within_s: float | None = None) -> int:
        """Wait for the venue calls (submits, cancels) running now; return how many are unfinished."""
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=within_s)
        return len(pending)

    async def on_stop(self) -> None:
        """Bounded drain: wait for in-flight submits/cancels, flush events and the store.

        Venue calls still running after ``drain_timeout_s`` are cancelled; their orders stay
        in flight in the store and the reconciler resolves them at the next start.
        """
        self._stopping = True
        deadline = time.monotonic() + self._drain_timeout_s
        if await self.wait_requests(self._drain_timeout_s):
            pending = list(self._tasks)
            self.log.warning("orders.drain_timeout", unfinished=len(pending))
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        while self._outbox and time.monotonic() < deadline and not self._events.closed:
            self._outbox_room.clear()
            try:
                await asyncio.wait_for(self._outbox_room.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
        for t in self._background:
            t.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        if self._outbox:
            self.log.warning("orders.events_undelivered", count=len(self._outbox))
        if self.loaded.is_set():
            try:
                await self._store.save_ledger_snapshot(self._ledger_snapshot())
                await self._store.flush()
            except Exception as exc:
                self._store_errors += 1
                self.log.error("orders.final_snapshot_failed", error=str(exc))

    def pending_work(self) -> int:
        """Commands waiting plus events not yet delivered.

        In-flight venue calls are excluded: a slow venue is not a stalled order manager.
        """
        return len(self._commands) + len(self._outbox)

    async def _backpressure(self) -> None:
        if len(self._outbox) > self._outbox_limit:
            self._outbox_room.clear()
            await self._outbox_room.wait()
        if self._store.backlog > self._store_backlog_limit:
            await self._store.flush()

    # ------------------------------------------------------------------------------------
    # commands
    # ------------------------------------------------------------------------------------
    async def _handle_commands(self, batch: list[OrderCommand]) -> None:
        intents: list[ApprovedIntent] = []
        for cmd in batch:
            if isinstance(cmd, ApprovedIntent):
                intents.append(cmd)
                continue
            if intents:
                await self._submit_intents(intents)
                intents = []
            if isinstance(cmd, CancelOrder):
                self.cancel(cmd.client_order_id, cmd.reason)
            else:
                self.cancel_all(symbol=cmd.symbol, strategy=cmd.strategy, reason=cmd.reason)
        if intents:
            await self._submit_intents(intents)

    async def _submit_intents(self, intents: list[ApprovedIntent]) -> None:
        now = self._clock_ms()
        venue_name = self._venue.name
        records = []
        for ap in intents:
            it = ap.intent
            records.append(
                OrderRecord(
                    client_order_id=self._store.next_client_order_id(self._prefix),
                    venue=venue_name,
                    strategy=it.strategy,
                    symbol=it.symbol,
                    side=it.side,
                    type=it.type,
                    size=ap.size,
                    price=it.limit_price if it.type is OrderType.LIMIT else None,
                    status=_S.SUBMITTED,
                    tag=it.tag,
                    intent_id=it.intent_id,
                    created_ms=now,
                    updated_ms=now,
                )
            )
        try:
            await self._store.insert_orders(records)  # write-ahead: committed before any submit
        except Exception as exc:
            self.last_intent_id = intents[-1].intent.intent_id
            self._store_errors += 1
            self.log.error("orders.write_ahead_failed", error=str(exc), orders=len(records))
            for rec in records:
                self._count(_S.DENIED)
                self._emit(self._event(rec, _S.DENIED, _S.INITIALIZED, STORE_UNAVAILABLE), persist=False)
            return
        self.last_intent_id = intents[-1].intent.intent_id
        mono = time.monotonic()
        for rec, ap in zip(records, intents, strict=True):
            coid = rec.client_order_id
            self._orders[coid] = rec
            self._inflight[coid] = mono
            self._submitting.add(coid)
            self._ledger.register_order(coid, symbol=rec.symbol, side=rec.side, size=rec.size)
            # The decision trail: which approved intent became which order, tamper-evident.
            self._store.append_audit_nowait("order.submitted", {
                "client_order_id": coid, "strategy": rec.strategy, "symbol": rec.symbol, "side": rec.side.value,
                "type": rec.type.value, "size": rec.size, "price": rec.price, "intent_id": rec.intent_id,
                "reference_price": ap.reference_price})
            self._count(_S.SUBMITTED)
            self._submitted += 1
            self._emit(self._event(rec, _S.SUBMITTED, _S.INITIALIZED))
            await self._spawn(rec, ap.intent.origin_ns)

    async def _spawn(self, rec: OrderRecord, origin_ns: int = 0) -> None:
        """Start a submit once fewer than ``max_concurrent_requests`` are running (backpressure)."""
        await self._sem.acquire()
        task = self._start_task(self._submit(rec, origin_ns))
        task.add_done_callback(lambda _: self._sem.release())

    def _start_task(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("orders.task_failed", error=repr(task.exception()))

    async def _submit(self, rec: OrderRecord, origin_ns: int = 0) -> None:
        coid = rec.client_order_id
        req = OrderRequest(client_order_id=coid, symbol=rec.symbol, side=rec.side, type=rec.type,
                           size=rec.size, price=rec.price)
        hook = self.on_submit
        if hook is not None:
            try:
                hook(origin_ns)
            except Exception as exc:
                self.log.error("orders.on_submit_hook_failed", error=repr(exc))
        try:
            vo = await self._venue.submit(req)
        except OrderRejected as exc:
            self._rejected += 1
            cur = self._orders.get(coid)
            if cur is not None and cur.status is _S.SUBMITTED:
                self._set_status(cur, _S.REJECTED, exc.reason)
        except VenueUnavailable as exc:
            self._submit_unknown += 1
            self.log.warning("orders.submit_outcome_unknown", client_order_id=coid, reason=exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug: the outcome is just as unknown
            self._submit_unknown += 1
            self.log.error("orders.submit_failed_unexpectedly", client_order_id=coid, error=repr(exc))
        else:
            cur = self._orders.get(coid)
            if cur is not None and cur.status is _S.SUBMITTED:
                self.apply_venue_order(vo)
        finally:
            self._submitting.discard(coid)
        reason = self._deferred_cancels.pop(coid, None)
        if reason is not None and not self._stopping:
            self._request_cancel(coid, reason)

    def cancel(self, client_order_id: str, reason: str = "") -> bool:
        """Request a cancel (PENDING_CANCEL, then ``venue.cancel``); False if not open here."""
        self._cancel_requests += 1
        return self._request_cancel(client_order_id, reason)

    def _request_cancel(self, client_order_id: str, reason: str) -> bool:
        rec = self._orders.get(client_order_id)
        if rec is None:
            self.log.info("orders.cancel_unknown_order", client_order_id=client_order_id)
            return False
        if client_order_id in self._submitting:
            # Cancelling before the venue answered the submit would race it: wait for the answer.
            self._deferred_cancels[client_order_id] = reason or "cancel_requested"
            return True
        if rec.status is _S.PENDING_CANCEL:
            return True
        new = self._set_status(rec, _S.PENDING_CANCEL, reason or "cancel_requested")
        if new is None:
            return False
        self._start_task(self._send_cancel(new))
        return True

    def cancel_all(self, *, symbol: str | None = None, strategy: str | None = None, reason: str = "") -> int:
        """Cancel every open order (optionally of one symbol / strategy); returns how many."""
        n = 0
        for rec in list(self._orders.values()):
            if (symbol is None or rec.symbol == symbol) and (strategy is None or rec.strategy == strategy):
                n += self.cancel(rec.client_order_id, reason or "cancel_all")
        return n

    async def _send_cancel(self, rec: OrderRecord) -> None:
        coid = rec.client_order_id
        try:
            vo = await self._venue.cancel(coid, rec.symbol)
        except OrderNotFound:
            # Unknown to the venue or already closed: find out which.
            try:
                found = await self._venue.query(coid, rec.symbol)
            except Exception as exc:
                self._cancel_failures += 1
                self.log.warning("orders.cancel_unresolved", client_order_id=coid, error=str(exc))
                return
            if found is not None:
                self.apply_venue_order(found)
            return
        except VenueUnavailable as exc:
            self._cancel_failures += 1
            self.log.warning("orders.cancel_outcome_unknown", client_order_id=coid, reason=exc.reason)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._cancel_failures += 1
            self.log.error("orders.cancel_failed_unexpectedly", client_order_id=coid, error=repr(exc))
            return
        self.apply_venue_order(vo)

    # ------------------------------------------------------------------------------------
    # venue updates (also the reconciler's entry points)
    # ------------------------------------------------------------------------------------
    async def _consume_updates(self) -> None:
        backoff = 0.2
        while not self._stopping:
            stream = self._venue.updates()
            try:
                async for update in stream:
                    if isinstance(update, Fill):
                        self.apply_fill(update)
                    else:
                        self.apply_venue_order(update)
                    backoff = 0.2
                    if len(self._outbox) > self._outbox_limit:
                        self._outbox_room.clear()
                        await self._outbox_room.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("orders.updates_failed", error=repr(exc))
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    try:
                        await aclose()
                    except Exception as exc:
                        self.log.debug("orders.updates_close_failed", error=repr(exc))
            # The stream ended or failed: updates in between are lost; the reconciler covers them.
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    def apply_venue_order(self, vo: VenueOrder) -> bool:
        """Apply the venue's view of one of our orders; False if ignored (stale/unknown/illegal)."""
        coid = vo.client_order_id
        rec = self._orders.get(coid) or self._closed.get(coid)
        if rec is None:
            self._unknown_updates += 1
            return False
        if vo.filled < rec.filled:
            self._stale += 1
            return False
        if vo.venue_order_id and vo.venue_order_id != rec.venue_order_id:
            rec = msgspec.structs.replace(rec, venue_order_id=vo.venue_order_id)
            self._put(rec)
        if vo.status is rec.status:
            return False
        return self._set_status(rec, vo.status, vo.reason) is not None

    def apply_fill(self, fill: Fill) -> FillOutcome:
        """Apply one execution (dedup, overfill refusal, status, event, store)."""
        out = self._ledger.apply_fill(fill)
        if not out.accepted:
            if out.reason == OVERFILL:
                self.log.warning("orders.overfill_refused", client_order_id=fill.client_order_id,
                                 trade_id=fill.trade_id, size=str(fill.size), filled=str(out.order_filled),
                                 order_size=str(out.order_size))
                self._store.append_audit_nowait("order.overfill_refused", {
                    "client_order_id": fill.client_order_id, "venue": fill.venue, "trade_id": fill.trade_id,
                    "size": fill.size, "filled": out.order_filled, "order_size": out.order_size})
            return out
        self._store.insert_fill_nowait(fill)
        self._store.append_audit_nowait("order.fill", {
            "client_order_id": fill.client_order_id, "venue": fill.venue, "trade_id": fill.trade_id,
            "side": fill.side.value, "price": fill.price, "size": fill.size, "fee": fill.fee,
            "fee_currency": fill.fee_currency})
        self._maybe_snapshot()
        coid = fill.client_order_id
        rec = self._orders.get(coid) or self._closed.get(coid)
        if rec is None:
            self.log.warning("orders.fill_for_unknown_order", client_order_id=coid, trade_id=fill.trade_id)
            self._store.append_audit_nowait("order.unknown_fill", {"fill": fill})
            return out
        rec = msgspec.structs.replace(
            rec,
            filled=out.order_filled,
            avg_price=out.order_avg_price,
            fees=out.order_fees,
            venue_order_id=rec.venue_order_id or fill.venue_order_id,
            updated_ms=self._clock_ms(),
        )
        status = rec.status
        target = _S.FILLED if out.complete else _S.PARTIALLY_FILLED
        if status is _S.FILLED or status in (_S.REJECTED, _S.EXPIRED, _S.DENIED):
            if status is not _S.FILLED:
                self._illegal_transition(rec, target, "fill on a closed order")
            self._put(rec)
            self._emit(self._event(rec, status, status, "fill", fill))
        elif status is _S.CANCELED and not out.complete:
            # A late partial fill: record it, and the order stays cancelled.
            mid = self._set_status(rec, _S.PARTIALLY_FILLED, "late_fill", fill)
            if mid is not None:
                self._set_status(mid, _S.CANCELED, "late_fill")
        else:
            self._set_status(rec, target, "", fill)
        return out

    def mark_lost(self, client_order_id: str, reason: str) -> bool:
        """The venue does not know an order we think is open: SUBMITTED → REJECTED, else → CANCELED."""
        rec = self._orders.get(client_order_id)
        if rec is None:
            return False
        target = _S.REJECTED if rec.status is _S.SUBMITTED else _S.CANCELED
        return self._set_status(rec, target, reason) is not None

    def adopt_order(self, vo: VenueOrder, strategy: str = "external") -> OrderRecord:
        """Start tracking an order placed outside aaiti (reconciler, ``unknown_orders = "adopt"``)."""
        now = self._clock_ms()
        rec = OrderRecord(
            client_order_id=vo.client_order_id, venue=vo.venue, strategy=strategy, symbol=vo.symbol,
            side=vo.side, type=vo.type, size=vo.size, price=vo.price, status=vo.status,
            venue_order_id=vo.venue_order_id, reason="adopted", created_ms=vo.ts_ms or now, updated_ms=now,
        )
        self._ledger.register_order(rec.client_order_id, symbol=rec.symbol, side=rec.side, size=rec.size)
        self._put(rec)
        self._count(rec.status)
        self._emit(self._event(rec, rec.status, None, "adopted"))
        return rec

    def rebase_balances(self, balances: dict[str, Decimal], reason: str) -> dict[str, Decimal]:
        """Adopt venue balances as truth (after a reported mismatch); returns the changes."""
        changes = self._ledger.rebase_balances(balances)
        if changes:
            self._store.save_ledger_snapshot_nowait(self._ledger_snapshot())
            self.log.warning("orders.balances_rebased", reason=reason,
                             changes={a: str(v) for a, v in changes.items()})
        return changes

    # ------------------------------------------------------------------------------------
    # state changes
    # ------------------------------------------------------------------------------------
    def _set_status(
        self, rec: OrderRecord, new: OrderStatus, reason: str = "", fill: Fill | None = None
    ) -> OrderRecord | None:
        prev = rec.status
        try:
            transition(prev, new, rec.client_order_id)
        except IllegalTransition:
            self._illegal_transition(rec, new, reason)
            return None
        rec = msgspec.structs.replace(rec, status=new, reason=reason or rec.reason, updated_ms=self._clock_ms())
        self._put(rec)
        self._count(new)
        self._emit(self._event(rec, new, prev, reason, fill))
        return rec

    def _illegal_transition(self, rec: OrderRecord, new: OrderStatus, detail: str) -> None:
        self._illegal += 1
        self.log.warning("orders.illegal_transition", client_order_id=rec.client_order_id,
                         current=rec.status.value, new=new.value, detail=detail)
        self._store.append_audit_nowait("order.illegal_transition", {
            "client_order_id": rec.client_order_id, "current": rec.status, "new": new, "detail": detail})

    def _put(self, rec: OrderRecord) -> None:
        """Store the new version of an order in memory and (write-behind) in the store."""
        coid = rec.client_order_id
        if rec.status in TERMINAL_STATUSES:
            self._orders.pop(coid, None)
            self._inflight.pop(coid, None)
            self._deferred_cancels.pop(coid, None)
            if coid not in self._closed:
                self._closed_order.append(coid)
                while len(self._closed_order) > self._closed_window:
                    self._closed.pop(self._closed_order.popleft(), None)
            self._closed[coid] = rec
            self._ledger.close_order(coid)
        else:
            self._closed.pop(coid, None)
            self._orders[coid] = rec
            if rec.status in _IN_FLIGHT:
                if coid not in self._inflight:
                    self._inflight[coid] = time.monotonic()
            else:
                self._inflight.pop(coid, None)
        self._store.update_order_nowait(rec)

    def _count(self, status: OrderStatus) -> None:
        self._transitions[status.value] = self._transitions.get(status.value, 0) + 1

    def _event(
        self, rec: OrderRecord, status: OrderStatus, previous: OrderStatus | None, reason: str = "",
        fill: Fill | None = None,
    ) -> OrderEvent:
        return OrderEvent(
            client_order_id=rec.client_order_id, strategy=rec.strategy, symbol=rec.symbol, status=status,
            previous=previous, filled=rec.filled, size=rec.size, fill=fill, reason=reason, ts_ms=self._clock_ms(),
        )

    def _emit(self, event: OrderEvent, persist: bool = True) -> None:
        if persist:
            self._store.append_order_event_nowait(event)
        outbox = self._outbox
        if not outbox:
            try:
                if self._events.try_send(event):
                    self._published += 1
                    return
            except ChannelClosed:
                return
        outbox.append(event)
        self._outbox_wake.set()

    async def _publish(self) -> None:
        outbox = self._outbox
        events = self._events
        while True:
            if not outbox:
                self._outbox_room.set()
                self._outbox_wake.clear()
                await self._outbox_wake.wait()
                continue
            try:
                await events.send(outbox[0])
            except ChannelClosed:
                outbox.clear()
                continue
            outbox.popleft()
            self._published += 1
            self.beat()
            if len(outbox) <= self._outbox_limit // 2:
                self._outbox_room.set()

    def _maybe_snapshot(self) -> None:
        self._fills_since_snapshot += 1
        if (self._fills_since_snapshot >= self._snapshot_every
                or time.monotonic() - self._last_snapshot >= self._snapshot_interval_s):
            self._store.save_ledger_snapshot_nowait(self._ledger_snapshot())

    def _ledger_snapshot(self) -> LedgerSnapshot:
        self._fills_since_snapshot = 0
        self._last_snapshot = time.monotonic()
        return LedgerSnapshot(ts_ms=self._clock_ms(), positions=self._ledger.positions(),
                              balances=self._ledger.balances())

    def _merged_ledger_totals(self) -> tuple[int, int, int, int]:
        # Ledger counters restart with the ledger; keep process-lifetime totals.
        base = self._ledger_totals
        c = self._ledger.counters()
        return (base[0] + c.fills_applied, base[1] + c.duplicate_fills, base[2] + c.overfills,
                base[3] + c.unknown_order_fills)

    # ------------------------------------------------------------------------------------
    # views
    # ------------------------------------------------------------------------------------
    def order(self, client_order_id: str) -> OrderRecord | None:
        """An open or recently closed order."""
        return self._orders.get(client_order_id) or self._closed.get(client_order_id)

    def open_orders(self) -> list[OrderRecord]:
        """Open orders, oldest first."""
        return list(self._orders.values())

    def open_order_count(self) -> int:
        """Number of open orders (cheap; for the risk gate)."""
        return len(self._orders)

    def in_flight(self, older_than_s: float = 0.0) -> list[InFlightOrder]:
        """Orders waiting for the venue, with age in seconds."""
        now = time.monotonic()
        out = []
        for coid, since in self._inflight.items():
            age = now - since
            rec = self._orders.get(coid)
            if rec is not None and age >= older_than_s:
                out.append(InFlightOrder(client_order_id=coid, symbol=rec.symbol, status=rec.status, age_s=age))
        return out

    def position(self, symbol: str) -> PositionView:
        """The position of one symbol (cheap; for the risk gate)."""
        return self._ledger.position(symbol)

    def balances(self) -> dict[str, Decimal]:
        """Balances derived from fills."""
        return self._ledger.balances()

    def knows_fill(self, venue: str, trade_id: str) -> bool:
        """True when the fill was applied (or refused) recently."""
        return self._ledger.seen(venue, trade_id)

    def snapshot(self) -> OrderManagerSnapshot:
        """An immutable picture: open orders, in-flight, positions, balances, counters."""
        open_by_status: dict[str, int] = {}
        for rec in self._orders.values():
            open_by_status[rec.status.value] = open_by_status.get(rec.status.value, 0) + 1
        c = self._ledger.counters()
        t = self._ledger_totals
        counters = OrderCounters(
            open_by_status=open_by_status,
            transitions=dict(self._transitions),
            submitted=self._submitted,
            rejected=self._rejected,
            submit_unknown=self._submit_unknown,
            cancel_requests=self._cancel_requests,
            cancel_failures=self._cancel_failures,
            illegal_transitions=self._illegal,
            stale_updates=self._stale,
            unknown_order_updates=self._unknown_updates,
            fills_applied=t[0] + c.fills_applied,
            duplicate_fills=t[1] + c.duplicate_fills,
            overfills=t[2] + c.overfills,
            unknown_order_fills=t[3] + c.unknown_order_fills,
            store_errors=self._store_errors,
            events_published=self._published,
        )
        return OrderManagerSnapshot(
            ts_ms=self._clock_ms(),
            loaded=self.loaded.is_set(),
            open_orders=tuple(self._orders.values()),
            in_flight=tuple(self.in_flight()),
            positions=self._ledger.positions(),
            balances=self._ledger.balances(),
            counters=counters,
            last_intent_id=self.last_intent_id,
        )
