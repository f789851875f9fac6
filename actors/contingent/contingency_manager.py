"""The contingent-order manager actor: I/O around the ``ContingentBook``.

Inputs: ``inbox`` (``ApprovedIntent``/``ApprovedList`` from the risk gate, ``CancelOrder`` by
contingent id, ``CancelAll``), ``feedback`` (``OrderEvent``s of our venue orders and
``OrderDenied`` of our releases, from the router), business-time deadlines, and the market
through ``on_market``, a synchronous feed tap: it evaluates the armed triggers of the event's
symbol in the feed's task and queues their effects for this actor's task.

Effects run in order. A durable ``Persist`` is committed before the next effect runs (the
write-ahead); if the store refuses it, ``contingent.write_ahead_failed`` is logged, what
follows it is not sent, and the orders it saved are put back as last saved (they retry on the
next event or timer). ``Release`` and ``ReleaseList`` go to ``intents`` (the risk gate checks
every child and leg), ``CancelChild`` to ``commands`` (the order manager), ``TellStrategy``
to ``outcomes`` (the event router's inbox, which hands it to the strategy), ``Notice`` to the log.

Restart: ``on_start`` loads the active rows, waits until the order manager has loaded, reads
back from the store the fills whose fees size exits (``find_fills``), then resumes each order
against the order manager (children it never saw are released again under their ids).
The tap stays inert until then.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from actors.contingent.base import BookContext, OrderLookup
from actors.contingent.book import ContingentBook, CountKey
from actors.contingent.effects import CancelChild, Effect, Notice, Persist, Release, ReleaseList, TellStrategy
from actors.kernel.actor import Actor
from actors.kernel.channel import Channel, OverflowPolicy, wait_any
from actors.kernel.clock import Clock
from actors.model.contingent import ContingentRow, ContingentView
from actors.model.market import MarketEvent
from actors.model.orders import (
    ApprovedIntent,
    ApprovedList,
    CancelAll,
    CancelOrder,
    Fill,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderList,
)
from actors.model.records import OrderRecord
from actors.ports.capabilities import NativeSupport
from actors.ports.stores import ContingentStore
from config.schema.trading import OrdersSection

__all__ = ["ContingencyManager", "ContingentCommand", "ContingentFeedback", "segments"]

#: What the manager's inbox carries.
ContingentCommand = ApprovedIntent | ApprovedList | CancelOrder | CancelAll
#: What its feedback channel carries.
ContingentFeedback = OrderEvent | OrderDenied

T_contra = TypeVar("T_contra", contravariant=True)

#: Process time between two looks at business-time deadlines while any is set (seconds).
_TIMER_POLL_S = 0.25
_BATCH = 256


class Sink(Protocol[T_contra]):
    """Where the manager sends (a ``Channel`` of a wider type satisfies it)."""

    async def send(self, item: T_contra) -> None:
        """Deliver one message, waiting for room if needed."""

    def try_send(self, item: T_contra) -> bool:
        """Deliver one message if there is room now; False otherwise."""
        ...


def segments(effects: Sequence[Effect]) -> list[list[Effect]]:
    """Split ``effects`` at each durable ``Persist``: each segment's head guards the rest of it.

    Every order saves its state (durably) before it sends anything, so a segment is one
    order's step; when its head fails, nothing of that segment may run.
    """
    out: list[list[Effect]] = []
    for effect in effects:
        if not out or (isinstance(effect, Persist) and effect.durable):
            out.append([effect])
        else:
            out[-1].append(effect)
    return out


def _sends_orders_only(effects: Sequence[Effect]) -> bool:
    """True when what follows a trigger's state is orders for the order manager (each written
    ahead there, after the state queued before it) and log lines, with at least one order."""
    sends = False
    for effect in effects:
        if isinstance(effect, Release | ReleaseList):
            sends = True
        elif not isinstance(effect, CancelChild | Notice):
            return False
    return sends


def _names(segment: Sequence[Effect], ids: set[str]) -> bool:
    head = segment[0]
    return isinstance(head, Persist) and head.durable and any(r.id in ids for r in head.rows)


class ContingencyManager(Actor):
    """Owns the contingent orders (see the module docstring).

    ``intents`` is the risk gate's inbox, ``commands`` the order manager's. ``settings`` returns
    the current ``[orders]`` section (``native`` is read once: it needs a restart).
    ``support`` is what the venue runs natively (``NativeOrders.native_support()``; an empty
    ``NativeSupport()`` emulates everything), ``lookup`` the order manager's record of a client
    order id, ``orders_loaded`` set once the order manager has loaded (``OrderManager.loaded``).
    ``step_size(symbol)`` is the quantity step. ``on_trigger(origin_ns)`` (optional) is called
    after a triggered child (one with an ``origin_ns``) was handed to the risk gate; it must be
    cheap and must not raise. ``find_order`` (optional, ``OrderManager.find_order``) also asks
    the store, at resume, for children ``lookup`` does not know (closed in an earlier run);
    without it such a child is released again and the order manager drops it as a duplicate.
    ``find_fills`` (optional, the order store's ``fills_for_orders``) reads back, at resume, the
    fills of the orders whose base-asset fees size exits (a bracket's buy entry), so fills the
    last saved row missed count; without it those fills count at their traded quantity.
    ``outcomes`` (optional, the event router's inbox) gets the ``OrderDenied`` that tells a
    strategy an order of its own was given up (``TellStrategy``); without it that is only logged.
    """

    kind = "contingency_manager"

    def __init__(
        self,
        name: str,
        *,
        inbox: Channel[ContingentCommand],
        feedback: Channel[ContingentFeedback],
        intents: Sink[OrderIntent | OrderList],
        commands: Sink[CancelOrder],
        store: ContingentStore,
        clock: Clock,
        settings: Callable[[], OrdersSection],
        support: NativeSupport,
        venue_name: str,
        lookup: OrderLookup,
        orders_loaded: asyncio.Event,
        step_size: Callable[[str], Decimal],
        client_id_prefix: str = "aa",
        on_trigger: Callable[[int], None] | None = None,
        find_order: Callable[[str], Awaitable[OrderRecord | None]] | None = None,
        find_fills: Callable[[Iterable[str]], Awaitable[list[Fill]]] | None = None,
        outcomes: Sink[OrderDenied] | None = None,
    ) -> None:
        super().__init__(name, inbox)
        self._inbox = inbox
        self._feedback = feedback
        self._intents = intents
        self._commands = commands
        self._store = store
        self._clock = clock
        self._lookup = lookup
        self._find_order = find_order
        self._find_fills = find_fills
        self._outcomes = outcomes
        self._orders_loaded = orders_loaded
        self.on_trigger = on_trigger
        self._ctx = BookContext(
            new_id=lambda: store.next_client_order_id(client_id_prefix),
            now_ms=clock.now_ms,
            settings=settings,
            support=support,
            native_enabled=settings().native == "auto",
            step_size=step_size,
            venue=venue_name,
        )
        self._book = ContingentBook(self._ctx)
        # Effects of the feed tap, run by this actor's task; the signal channel wakes it.
        self._queued: deque[list[Effect]] = deque()
        self._untold: deque[OrderDenied] = deque()  # strategies' final denials waiting for room
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._signal: Channel[bool] = Channel(f"{name}.tap", 1, OverflowPolicy.CONFLATE, key=lambda _: 0)
        self._ready = False
        self._busy = 0  # effect lists being executed (popped from the queue, not yet done)
        #: Set once restored orders were resumed (the tap works from then on); cleared on (re)start.
        self.resumed = asyncio.Event()
        #: Durable saves the store refused (nothing after them was sent).
        self.write_ahead_failures = 0

    # -- taps and reads (any task) ---------------------------------------------------------------
    @property
    def book(self) -> ContingentBook:
        """The book (tests, status)."""
        return self._book

    def on_market(self, event: MarketEvent) -> None:
        """Feed tap (synchronous): evaluate the armed triggers of ``event.symbol`` and any deadline
        business time passed; release a crossed trigger's child right here when nothing waits
        ahead of it, else queue what they ask for. Inert until restored and resumed."""
        book = self._book
        if not (book.watchers or book.next_deadline is not None) or not self._ready:
            return  # the common case, on every market event: nothing armed, nothing due
        effects = book.on_market(event)
        deadline = book.next_deadline_ms()
        if deadline is not None:
            now = self._clock.now_ms()
            if now >= deadline:
                effects.extend(book.on_timer(now))
        if effects:
            # A crossed trigger's child goes out from here when nothing is ahead of it and every
            # step can be taken without waiting (the state is queued on the store's writer, the
            # child put on the risk gate's channel): no hop to this actor's task on the path from
            # the market event to the submit. Whatever cannot is left, in order, to that task.
            rest = effects if (self._queued or self._busy) else self._run_now(effects)
            if rest:
                self._queued.append(rest)
                self._signal.try_send(True)

    def quiet_on(self, symbol: str) -> bool:
        """True while no trigger watches ``symbol`` (the feed may then call the tap latest-only)."""
        return not self._book.watching(symbol)

    def views(self) -> list[ContingentView]:
        """Active contingent orders as operators see them."""
        return self._book.views()

    def view_of(self, contingent_id: str) -> ContingentView | None:
        """One active contingent order as operators see it; None once it is final (or unknown).

        Read-only and cheap (one dict lookup and one order's view): the notification service
        calls it from the event router's tap, for each fill of an order with a ``parent``,
        before the router hands that fill to this actor, to tell a protective exit's fill
        from an entry's or a slice's."""
        order = self._book.get(contingent_id)
        return order.view() if order is not None else None

    def counts(self) -> dict[CountKey, int]:
        """Active contingent orders by (kind, mode, status)."""
        return self._book.counts()

    def completed(self) -> dict[CountKey, int]:
        """Contingent orders finished since this actor (re)started, by (kind, mode, final status)."""
        return self._book.completed()

    def pending_work(self) -> int:
        """Inbox and feedback depth plus tap effects queued or being executed, and strategies' final
        denials not handed over yet (stall detection, lockstep)."""
        return len(self._inbox) + len(self._feedback) + len(self._queued) + self._busy + len(self._untold)

    # -- lifecycle --------------------------------------------------------------------------------
    async def on_start(self) -> None:
        """Restore the active orders, wait for the order manager, resume them."""
        self._ready = False
        self.resumed.clear()
        self._queued.clear()
        self._signal.drain(1)
        self._book = ContingentBook(self._ctx)
        rows = await self._store.active_contingents()
        await self._execute(self._book.restore(rows))
        if not self._orders_loaded.is_set():
            self.log.info("contingent.waiting_for_orders", active=len(rows))
            await self._orders_loaded.wait()
        sources = self._book.fill_sources()
        if sources and self._find_fills is not None:
            self._book.restore_fills(await self._find_fills(sources))
        effects = self._book.resume(await self._resume_lookup())
        self._ready = True
        await self._execute(effects)
        self.resumed.set()
        self.log.info("contingent.resumed", active=len(self._book), restored=len(rows))

    async def _resume_lookup(self) -> OrderLookup:
        """``lookup``, completed with the stored records of children the order manager's table may
        not hold (closed before the restart), so a child that ended while we were down is never
        taken for one that was never sent."""
        find = self._find_order
        if find is None:
            return self._lookup
        lookup = self._lookup
        stored: dict[str, OrderRecord] = {}
        for coid in self._book.child_ids():
            if lookup(coid) is None:
                record = await find(coid)
                if record is not None:
                    stored[coid] = record

        def resume_lookup(coid: str) -> OrderRecord | None:
            return lookup(coid) or stored.get(coid)

        return resume_lookup

    async def run(self) -> None:
        """Run queued tap effects, feedback, commands and due timers until the inbox closes."""
        inbox, feedback, book = self._inbox, self._feedback, self._book
        while True:
            self._signal.drain(1)
            self._flush_untold()
            done = 0
            while self._queued:
                await self._execute(self._queued.popleft(), triggered=True)
                done += 1
            for item in feedback.drain(_BATCH):
                await self._execute(self._on_feedback(item))
                done += 1
            for msg in inbox.drain(_BATCH):
                await self._execute(self._on_command(msg))
                done += 1
            deadline = book.next_deadline_ms()
            if deadline is not None and self._clock.now_ms() >= deadline:
                await self._execute(book.on_timer(self._clock.now_ms()))
                done += 1
            if done:
                self.beat(done)
                continue
            self._wake_idle_waiters()
            if inbox.closed:
                return
            await self._wait(book.next_deadline_ms() is not None or bool(self._untold))

    def next_idle(self) -> asyncio.Future[None]:
        """A future set the next time this actor has run out of work (a lockstep replay waits on it)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(fut)
        return fut

    def _wake_idle_waiters(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _wait(self, timed: bool) -> None:
        """Until a message, a tap effect or (with a deadline set) the next timer poll."""
        try:
            async with asyncio.timeout(_TIMER_POLL_S if timed else None):
                await wait_any((self._inbox, self._feedback, self._signal))
        except TimeoutError:
            pass

    # -- inputs ------------------------------------------------------------------------------------
    def _on_command(self, msg: ContingentCommand) -> list[Effect]:
        book = self._book
        if isinstance(msg, ApprovedIntent | ApprovedList):
            return book.add(msg)
        if isinstance(msg, CancelOrder):
            return book.cancel(msg.client_order_id, msg.reason)
        return book.cancel_all(msg.symbol, msg.strategy, msg.reason)

    def _on_feedback(self, item: ContingentFeedback) -> list[Effect]:
        if isinstance(item, OrderEvent):
            return self._book.on_order_event(item)
        return self._book.on_denied(item)

    # -- effects -----------------------------------------------------------------------------------
    async def _execute(self, effects: Sequence[Effect], *, triggered: bool = False) -> None:
        """Run ``effects`` in order, segment by segment (see ``segments``); ``triggered``: they came
        from the market tap (a crossed trigger), so their releases feed the trigger latency hook."""
        if not effects:
            return
        self._busy += 1
        try:
            for segment in segments(effects):
                head = segment[0]
                if isinstance(head, Persist) and head.durable:
                    if triggered and _sends_orders_only(segment[1:]):
                        # A crossed trigger: its new state is queued on the store's one writer,
                        # which commits it with (or before) the child's own write-ahead, so it is
                        # still committed before the venue sees the child, without a commit of its
                        # own on the path from the market event to the submit.
                        if not self._write_ordered(head.rows):
                            continue
                    elif not await self._write_ahead(head.rows):
                        continue
                    segment = segment[1:]
                for effect in segment:
                    await self._run(effect, triggered)
        finally:
            self._busy -= 1

    async def _write_ahead(self, rows: Sequence[ContingentRow]) -> bool:
        try:
            await self._store.save_contingents(rows)
        except Exception as exc:
            return self._write_failed(rows, exc)
        self._book.committed(rows)
        return True

    def _write_failed(self, rows: Sequence[ContingentRow], exc: Exception) -> bool:
        """The store refused a write-ahead: undo those orders' steps (nothing after it is sent); False."""
        self.write_ahead_failures += 1
        ids = self._book.revert(rows)
        self._purge(set(ids))
        self.log.error("contingent.write_ahead_failed", contingent_ids=ids, error=repr(exc))
        return False

    def _run_now(self, effects: list[Effect]) -> list[Effect]:
        """Run a crossed trigger's effects synchronously as far as no step has to wait; the rest."""
        segs = segments(effects)
        for i, segment in enumerate(segs):
            head = segment[0]
            if isinstance(head, Persist) and head.durable:
                if not _sends_orders_only(segment[1:]):
                    return [e for seg in segs[i:] for e in seg]
                if not self._write_ordered(head.rows):
                    continue
                segment = segment[1:]
            for j, effect in enumerate(segment):
                if not self._try_run(effect):
                    return segment[j:] + [e for seg in segs[i + 1:] for e in seg]
        return []

    def _try_run(self, effect: Effect) -> bool:
        """One effect without waiting; False (nothing done) when its channel is full."""
        if isinstance(effect, Release):
            if not self._intents.try_send(effect.intent):
                return False
            if effect.intent.origin_ns and self.on_trigger is not None:
                self._call_hook(effect.intent.origin_ns)
        elif isinstance(effect, ReleaseList):
            return self._intents.try_send(effect.order_list)
        elif isinstance(effect, CancelChild):
            return self._commands.try_send(CancelOrder(client_order_id=effect.client_order_id, reason=effect.reason))
        elif isinstance(effect, Persist):
            self._save_behind(effect.rows)
        elif isinstance(effect, TellStrategy):
            self._tell(effect.denied)
        else:
            self._notice(effect)
        return True

    def _write_ordered(self, rows: Sequence[ContingentRow]) -> bool:
        try:
            self._store.save_contingents_nowait(rows)
        except Exception as exc:
            return self._write_failed(rows, exc)
        self._book.committed(rows)
        return True

    def _purge(self, ids: set[str]) -> None:
        """Drop queued tap steps of reverted orders (they were taken from state now undone)."""
        if not self._queued:
            return
        kept: deque[list[Effect]] = deque()
        for effects in self._queued:
            rest = [e for seg in segments(effects) if not _names(seg, ids) for e in seg]
            if rest:
                kept.append(rest)
        self._queued = kept

    async def _run(self, effect: Effect, triggered: bool = False) -> None:
        if isinstance(effect, Release):
            await self._intents.send(effect.intent)
            if triggered and effect.intent.origin_ns and self.on_trigger is not None:
                self._call_hook(effect.intent.origin_ns)
        elif isinstance(effect, ReleaseList):
            await self._intents.send(effect.order_list)
        elif isinstance(effect, CancelChild):
            await self._commands.send(CancelOrder(client_order_id=effect.client_order_id, reason=effect.reason))
        elif isinstance(effect, Persist):
            self._save_behind(effect.rows)
        elif isinstance(effect, TellStrategy):
            self._tell(effect.denied)
        else:
            self._notice(effect)

    def _tell(self, denied: OrderDenied) -> None:
        """Hand a strategy's final denial to the router, never waiting: the router may itself be
        waiting for room in our feedback channel. What does not fit now waits in ``_untold``."""
        if self._outcomes is None:
            self.log.warning("contingent.given_up_untold", strategy=denied.intent.strategy,
                             intent_id=denied.intent.intent_id, detail=denied.detail)
            return
        self._untold.append(denied)
        self._flush_untold()

    def _flush_untold(self) -> None:
        outcomes, untold = self._outcomes, self._untold
        while untold and outcomes is not None and outcomes.try_send(untold[0]):
            untold.popleft()

    def _save_behind(self, rows: Iterable[ContingentRow]) -> None:
        rows = tuple(rows)
        try:
            self._store.save_contingents_nowait(rows)
        except Exception as exc:  # losing a write-behind only leaves a looser trailing level
            self.log.warning("contingent.write_behind_failed", contingent_ids=[r.id for r in rows], error=repr(exc))
            return
        self._book.committed(rows)

    def _notice(self, notice: Notice) -> None:
        log: Any = getattr(self.log, notice.level, self.log.info)
        log(notice.event, **notice.fields)

    def _call_hook(self, origin_ns: int) -> None:
        assert self.on_trigger is not None
        try:
            self.on_trigger(origin_ns)
        except Exception as exc:
            self.log.warning("contingent.on_trigger_failed", error=repr(exc))
