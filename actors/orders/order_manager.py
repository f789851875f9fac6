"""The order manager: the only path to the venue; owns orders, fills, positions and balances.

Inputs: a ``block`` channel of commands (``ApprovedIntent``, ``ApprovedList``,
``CancelOrder``, ``CancelAll``) and the venue's ``updates()`` stream (``VenueOrder`` and
``Fill``). Output: ``OrderEvent``s on a ``block`` channel (strategies, the risk gate and the
contingent-order manager consume them), in the order the changes happened. The state
itself lives in an ``OrderTable`` (pure); this actor does the I/O around it: venue calls,
store writes, events, tasks. The risk gate reads the account through ``portfolio``, a
``PortfolioSource`` rebuilt at most once per change.

Write-ahead and submits (``actors.orders.submitter``): approved orders are committed to the
store (status SUBMITTED) before the venue sees them; a submit whose outcome is unknown leaves
the order SUBMITTED and in flight until a query by client order id resolves it (the
reconciler), never resubmitted. An intent with a preset client order id (a child the
contingent-order manager released) keeps it, and is dropped if that id is already known (a
re-release after a restart). Native order lists are written ahead leg by leg in one insert
and sent with one ``submit_list``.

Refused credentials (``VenueAuthenticationError``, or a submit rejected with reason
``AUTHENTICATION``) are definite: the order manager asks the risk gate to HALT trading
(``SetTradingState`` on ``control``, once until the venue accepts us again) and stays up. On a
first start, when the venue refuses the balance read, it waits for the venue with back-off
instead of failing (a failure would be restarted into a loop).

Every status change goes through the table's state machine; an illegal one is refused,
logged, counted and audited. Everything after the write-ahead (status updates, events,
fills, snapshots) is written behind: after a crash, the reconciler re-establishes it from
the venue.

State mutations are synchronous (no ``await`` between reading and writing state), so the
command loop, the update consumer, submit/cancel tasks and the reconciler can all call in
without a lock. Events go to an ordered outbox drained by one publisher.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from decimal import Decimal
from typing import Any, Protocol

from actors.kernel.actor import Actor, start_eager_task
from actors.kernel.channel import Channel, ChannelClosed
from actors.kernel.clock import Clock, WallClock, monotonic
from actors.model.control import SetTradingState, TradingState
from actors.model.orders import (
    ApprovedIntent,
    ApprovedList,
    CancelAll,
    CancelOrder,
    Fill,
    OrderEvent,
    OrderStatus,
    VenueOrder,
)
from actors.model.positions import PositionView
from actors.model.records import LedgerSnapshot, OrderRecord
from actors.orders.ledger import OVERFILL, FillOutcome
from actors.orders.order_loader import OrderLoader
from actors.orders.order_table import (
    Change,
    InFlightOrder,
    OrderManagerSnapshot,
    OrderTable,
    PortfolioPublisher,
)
from actors.orders.outbox import EventOutbox
from actors.orders.submitter import STORE_UNAVAILABLE, Submitter
from actors.ports.stores import OrderStore
from actors.ports.venue import (
    OrderNotFound,
    Venue,
    VenueAuthenticationError,
    VenueError,
    VenueUnavailable,
)

__all__ = ["STORE_UNAVAILABLE", "ControlSink", "OrderCommand", "OrderManager", "OrderManagerSnapshot"]

#: What the order manager's inbox takes.
OrderCommand = ApprovedIntent | ApprovedList | CancelOrder | CancelAll

_S = OrderStatus


class ControlSink(Protocol):
    """Where trading-state requests go: the risk gate's control channel (a ``Channel`` satisfies it)."""

    async def send(self, item: SetTradingState) -> None:
        """Deliver one request, waiting for room if needed."""


class OrderManager(Actor):
    """Owns the order lifecycle (see the module docstring).

    ``commands`` is the inbox (block policy); ``events`` receives every ``OrderEvent``.
    ``clock`` is business time (record and event timestamps, the fill look-back at start).
    ``client_id_prefix`` starts every client order id (1-12 letters/digits).
    ``drain_timeout_s`` bounds the wait for in-flight submits/cancels at shutdown — give
    the supervisor's child shutdown timeout a little more than this.
    ``on_submit`` (optional) is called with the intent's ``origin_ns`` (the ``recv_ns`` of
    the market event behind it; 0 when unknown) right before each ``venue.submit`` call (once
    per ``submit_list``, with the list's ``origin_ns``) —
    the end of tick-to-submit latency for metrics and benchmarks. It must be cheap and
    must not raise (an exception is logged and otherwise ignored).
    ``control`` (optional; also settable as an attribute) is the risk gate's control channel:
    refused venue credentials halt trading through it.
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
        clock: Clock | None = None,
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
        on_submit: Callable[[int], None] | None = None,
        control: ControlSink | None = None,
    ) -> None:
        super().__init__(name, inbox=commands)
        if not (0 < len(client_id_prefix) <= 12 and client_id_prefix.isascii() and client_id_prefix.isalnum()):
            raise ValueError(f"client_id_prefix must be 1-12 ASCII letters/digits, got {client_id_prefix!r}")
        self._clock = clock if clock is not None else WallClock()
        self._venue = venue
        self._store = store
        self._commands = commands
        self._drain_timeout_s = drain_timeout_s
        self._snapshot_every = snapshot_every_fills
        self._snapshot_interval_s = snapshot_interval_s
        self._store_backlog_limit = store_backlog_limit
        self.on_submit = on_submit
        self.control = control
        self.loaded = asyncio.Event()
        #: Why trading was halted for refused venue credentials (None: the venue accepts us).
        self.venue_refusal: str | None = None
        # The table outlives restarts of this actor: counters and the published version go on.
        self._table = OrderTable(clock=self._clock, dedup_window=dedup_window,
                                 closed_order_window=closed_order_window)
        self.portfolio = PortfolioPublisher(self._table)
        self._loader = OrderLoader(self._table, store, venue, self._clock,
                                   fills_lookback_ms=int(fills_lookback_s * 1000), log=self.log)
        self._outbox = EventOutbox(events, outbox_limit, self.beat)
        self._submitter = Submitter(self, self._table, store, venue, self._clock, client_id_prefix,
                                    max_concurrent_requests)
        self._reset_io()

    def _reset_io(self) -> None:
        self._outbox.reset()
        self._tasks: set[asyncio.Task[None]] = set()
        self._submitter.reset()
        self._background: list[asyncio.Task[None]] = []
        self._stopping = False
        self._fills_since_snapshot = 0
        self._last_snapshot = monotonic()
        self._waiting_for_venue = False

    # ------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------
    async def on_start(self) -> None:
        """Load open orders, positions and balances from the store (restart safety)."""
        self.loaded.clear()
        self._table.reset()
        self._reset_io()
        loader = self._loader
        restored = await loader.restore()
        # Orders closed in earlier runs are in the store only: preset ids are checked there too.
        self._submitter.history_in_store = restored
        if not restored:
            # First start on this database: the venue's balances are the starting point.
            try:
                await loader.first_start()
            except VenueAuthenticationError as exc:
                # Restarting would only hammer the venue: run() waits for it, then loads.
                await self.halt_for_credentials(exc, "first start")
                self._waiting_for_venue = True
                return
        await loader.load_orders()
        self.loaded.set()

    async def _await_venue_then_load(self) -> None:
        """First start refused by the venue: wait until it accepts us, then load."""
        await self._loader.first_start_when_venue_accepts(lambda: self.beat(0))
        self.venue_refusal = None
        self._waiting_for_venue = False
        await self._loader.load_orders()
        self.loaded.set()

    async def run(self) -> None:
        """Consume commands in batches; the update consumer and publisher run alongside."""
        if self._waiting_for_venue:
            await self._await_venue_then_load()
        self._background = [
            asyncio.create_task(self._consume_updates(), name=f"{self.name}.updates"),
            asyncio.create_task(self._outbox.run(), name=f"{self.name}.publisher"),
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
        deadline = monotonic() + self._drain_timeout_s
        if await self.wait_requests(self._drain_timeout_s):
            pending = list(self._tasks)
            self.log.warning("order.drain_timeout", unfinished=len(pending))
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._outbox.flush(deadline)
        for t in self._background:
            t.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background = []
        if self._outbox:
            self.log.warning("order.events_undelivered", count=len(self._outbox))
        if self.loaded.is_set():
            try:
                await self._store.save_ledger_snapshot(self._ledger_snapshot())
                await self._store.flush()
            except Exception as exc:
                self._table.counts.store_errors += 1
                self.log.error("order.final_snapshot_failed", error=str(exc))

    def pending_work(self) -> int:
        """Commands waiting plus events not yet delivered.

        In-flight venue calls are excluded: a slow venue is not a stalled order manager; nor is
        one waiting for the venue to accept our credentials.
        """
        if self._waiting_for_venue:
            return 0
        return len(self._commands) + len(self._outbox)

    async def _backpressure(self) -> None:
        await self._outbox.wait_for_room()
        if self._store.backlog > self._store_backlog_limit:
            await self._store.flush()

    # ------------------------------------------------------------------------------------
    # commands
    # ------------------------------------------------------------------------------------
    async def _handle_commands(self, batch: list[OrderCommand]) -> None:
        submitter = self._submitter
        intents: list[ApprovedIntent] = []
        for cmd in batch:
            if isinstance(cmd, ApprovedIntent):
                intents.append(cmd)
                continue
            if intents:
                await submitter.submit_intents(intents)
                intents = []
            if isinstance(cmd, ApprovedList):
                await submitter.submit_list(cmd)
            elif isinstance(cmd, CancelOrder):
                self.cancel(cmd.client_order_id, cmd.reason)
            else:
                self.cancel_all(symbol=cmd.symbol, strategy=cmd.strategy, reason=cmd.reason)
        if intents:
            await submitter.submit_intents(intents)

    def start_task(self, coro: Coroutine[Any, Any, None], *, eager: bool = False) -> asyncio.Task[None]:
        """Run a venue call (submit, cancel) as a task that shutdown drains (the submit path's host).

        ``eager``: the call starts now, in this turn, up to its first wait (``start_eager_task``),
        not after everything else the loop has ready: a submit leaves as soon as it is written ahead.
        """
        task: asyncio.Task[None] = start_eager_task(coro) if eager else asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("order.task_failed", error=repr(task.exception()))

    def submit_answered(self, client_order_id: str) -> None:
        """The submit of an order is over: request a cancel that waited for it (the submit path's host)."""
        reason = self._table.pop_deferred_cancel(client_order_id)
        if reason is not None and not self._stopping:
            self._request_cancel(client_order_id, reason)

    def cancel(self, client_order_id: str, reason: str = "") -> bool:
        """Request a cancel (PENDING_CANCEL, then ``venue.cancel``); False if not open here."""
        self._table.counts.cancel_requests += 1
        return self._request_cancel(client_order_id, reason)

    def _request_cancel(self, client_order_id: str, reason: str) -> bool:
        table = self._table
        rec = table.open_order(client_order_id)
        if rec is None:
            self.log.info("order.cancel_unknown_order", client_order_id=client_order_id)
            return False
        if table.is_submitting(client_order_id):
            # Cancelling before the venue answered the submit would race it: wait for the answer.
            table.defer_cancel(client_order_id, reason or "cancel_requested")
            return True
        if rec.status is _S.PENDING_CANCEL:
            return True
        change = table.transition(rec, _S.PENDING_CANCEL, reason or "cancel_requested")
        self.commit_changes((change,))
        if change.record is None:
            return False
        self.start_task(self._send_cancel(change.record))
        return True

    def cancel_all(self, *, symbol: str | None = None, strategy: str | None = None, reason: str = "") -> int:
        """Cancel every open order (optionally of one symbol / strategy); returns how many."""
        n = 0
        for rec in self._table.open_orders():
            if (symbol is None or rec.symbol == symbol) and (strategy is None or rec.strategy == strategy):
                n += self.cancel(rec.client_order_id, reason or "cancel_all")
        return n

    async def _send_cancel(self, rec: OrderRecord) -> None:
        coid = rec.client_order_id
        counts = self._table.counts
        try:
            vo = await self._venue.cancel(coid, rec.symbol)
        except OrderNotFound:
            # Unknown to the venue or already closed: find out which.
            try:
                found = await self._venue.query(coid, rec.symbol)
            except Exception as exc:
                counts.cancel_failures += 1
                self.log.warning("order.cancel_unresolved", client_order_id=coid, error=str(exc))
                return
            if found is not None:
                self.apply_venue_order(found)
            return
        except VenueUnavailable as exc:
            counts.cancel_failures += 1
            self.log.warning("order.cancel_outcome_unknown", client_order_id=coid, reason=exc.reason)
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            counts.cancel_failures += 1
            self.log.error("order.cancel_failed_unexpectedly", client_order_id=coid, error=repr(exc))
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
                    self.venue_refusal = None
                    if isinstance(update, Fill):
                        self.apply_fill(update)
                    else:
                        self.apply_venue_order(update)
                    backoff = 0.2
                    await self._outbox.wait_for_room()
            except asyncio.CancelledError:
                raise
            except VenueAuthenticationError as exc:
                await self.halt_for_credentials(exc, "update stream")
            except Exception as exc:
                self.log.warning("order.updates_failed", error=repr(exc))
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    try:
                        await aclose()
                    except Exception as exc:
                        self.log.debug("order.updates_close_failed", error=repr(exc))
            # The stream ended or failed: updates in between are lost; the reconciler covers them.
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)

    async def halt_for_credentials(self, exc: VenueError, where: str) -> None:
        """The venue refused our credentials: ask the risk gate to HALT trading (once until it accepts us)."""
        if self.venue_refusal is not None:
            return
        reason = f"{where}: {exc}"
        self.venue_refusal = reason
        self.log.warning("order.halt_requested", reason=reason)
        control = self.control
        if control is not None:
            try:
                await control.send(SetTradingState(state=TradingState.HALTED, reason=reason))
                return
            except ChannelClosed:
                pass
        self.log.error("order.halt_not_delivered", reason=reason, control_channel=control is not None)

    def apply_venue_order(self, vo: VenueOrder) -> bool:
        """Apply the venue's view of one of our orders; False if ignored (stale/unknown/illegal/same)."""
        changes = self._table.apply_venue_order(vo)
        self.commit_changes(changes)
        return any(c.event is not None for c in changes)

    def apply_fill(self, fill: Fill) -> FillOutcome:
        """Apply one execution (dedup, overfill refusal, status, event, store)."""
        out, changes = self._table.apply_fill(fill)
        if not out.accepted:
            if out.reason == OVERFILL:
                self.log.warning("order.overfill_refused", client_order_id=fill.client_order_id,
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
        if not changes:
            self.log.warning("order.fill_for_unknown_order", client_order_id=fill.client_order_id,
                             trade_id=fill.trade_id)
            self._store.append_audit_nowait("order.unknown_fill", {"fill": fill})
            return out
        self.commit_changes(changes)
        return out

    def mark_lost(self, client_order_id: str, reason: str) -> bool:
        """The venue does not know an order we think is open: SUBMITTED → REJECTED, else → CANCELED."""
        change = self._table.mark_lost(client_order_id, reason)
        if change is None:
            return False
        self.commit_changes((change,))
        return change.record is not None

    def adopt_order(self, vo: VenueOrder, strategy: str = "external") -> OrderRecord:
        """Start tracking an order placed outside aaiti (reconciler, ``unknown_orders = "adopt"``)."""
        rec, change = self._table.adopt(vo, strategy)
        self.commit_changes((change,))
        return rec

    def rebase_balances(self, balances: dict[str, Decimal], reason: str) -> dict[str, Decimal]:
        """Adopt venue balances as truth (after a reported mismatch); returns the changes."""
        changes = self._table.rebase_balances(balances)
        if changes:
            self._store.save_ledger_snapshot_nowait(self._ledger_snapshot())
            self.log.warning("order.balances_rebased", reason=reason,
                             changes={a: str(v) for a, v in changes.items()})
        return changes

    # ------------------------------------------------------------------------------------
    # carrying out the table's changes
    # ------------------------------------------------------------------------------------
    def commit_changes(self, changes: Iterable[Change]) -> None:
        """Audit refusals, persist records (write-behind) and publish events, in order."""
        store = self._store
        for refused, record, event in changes:
            if refused is not None:
                rec = refused.record
                self.log.warning("order.illegal_transition", client_order_id=rec.client_order_id,
                                 current=rec.status.value, new=refused.new.value, detail=refused.detail)
                store.append_audit_nowait("order.illegal_transition", {
                    "client_order_id": rec.client_order_id, "current": rec.status, "new": refused.new,
                    "detail": refused.detail})
            if record is not None:
                store.update_order_nowait(record)
            if event is not None:
                self.emit_event(event)

    def emit_event(self, event: OrderEvent, persist: bool = True) -> None:
        """Persist (write-behind, unless ``persist`` is False) and publish one event, in order."""
        if persist:
            self._store.append_order_event_nowait(event)
        self._outbox.put(event)

    def _maybe_snapshot(self) -> None:
        self._fills_since_snapshot += 1
        if (self._fills_since_snapshot >= self._snapshot_every
                or monotonic() - self._last_snapshot >= self._snapshot_interval_s):
            self._store.save_ledger_snapshot_nowait(self._ledger_snapshot())

    def _ledger_snapshot(self) -> LedgerSnapshot:
        self._fills_since_snapshot = 0
        self._last_snapshot = monotonic()
        return self._table.ledger_snapshot()

    # ------------------------------------------------------------------------------------
    # views
    # ------------------------------------------------------------------------------------
    @property
    def last_intent_id(self) -> str:
        """The latest approved intent taken in (its orders were written ahead, or denied)."""
        return self._table.last_intent_id

    def order(self, client_order_id: str) -> OrderRecord | None:
        """An open or recently closed order (sync; the contingent-order manager's ``OrderLookup``).

        After a restart it knows the open orders loaded from the store and every order since,
        not those closed before: ``find_order`` also asks the store.
        """
        return self._table.order(client_order_id)

    async def find_order(self, client_order_id: str) -> OrderRecord | None:
        """``order``, or the stored record when the table may not know it (closed in an earlier run).

        A final order found in the store is remembered, so ``order`` knows it afterwards.
        Raises ``StoreError`` when the store cannot be read.
        """
        return await self._submitter.lookup(client_order_id)

    def open_orders(self) -> list[OrderRecord]:
        """Open orders, oldest first."""
        return self._table.open_orders()

    def open_order_count(self) -> int:
        """Number of open orders (cheap)."""
        return self._table.open_order_count()

    def in_flight(self, older_than_s: float = 0.0) -> list[InFlightOrder]:
        """Orders waiting for the venue, with age in seconds."""
        return self._table.in_flight(older_than_s)

    def position(self, symbol: str) -> PositionView:
        """The position of one symbol (cheap)."""
        return self._table.position(symbol)

    def balances(self) -> dict[str, Decimal]:
        """Balances derived from fills."""
        return self._table.balances()

    def knows_fill(self, venue: str, trade_id: str) -> bool:
        """True when the fill was applied (or refused) recently."""
        return self._table.knows_fill(venue, trade_id)

    def snapshot(self) -> OrderManagerSnapshot:
        """An immutable picture: open orders, in-flight, positions, balances, counters."""
        return self._table.snapshot(loaded=self.loaded.is_set(), events_published=self._outbox.published)

    def sizes(self) -> dict[str, int]:
        """Sizes of the structures that could grow with uptime (soak runs check their caps)."""
        t = self._table.sizes()
        return {
            "om_open": t["open"], "om_closed": t["closed"], "om_closed_order": t["closed_order"],
            "om_inflight": t["inflight"], "om_tasks": len(self._tasks), "om_outbox": len(self._outbox),
            "ledger_seen": t["ledger_seen"], "ledger_closed": t["ledger_closed"], "ledger_orders": t["ledger_orders"],
        }
