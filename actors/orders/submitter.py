"""The order manager's submit path: write-ahead, then the venue calls for orders and native lists.

A batch of approved intents becomes orders that are committed to the store (status
SUBMITTED, "may be at the venue") before ``venue.submit`` is called for any of them; a native
order list (``ApprovedList`` from the contingent-order manager) is written ahead the same way,
every leg in one insert, then sent with one ``submit_list``. If the write-ahead fails nothing
is sent and the orders are DENIED with reason ``store_unavailable``. Outcomes:

- ``OrderRejected`` → REJECTED with the venue's reason code (every leg of a list);
- ``VenueUnavailable`` (or any unexpected error) → unknown: the orders stay SUBMITTED and in
  flight until a query by client order id resolves them (the reconciler); never resent;
- ``VenueOrder``s → each applied only if its order is still SUBMITTED (the update stream may
  already have told us more).

An order's in-flight age counts from when its submit is sent, not from its write-ahead.
A list for a venue without ``NativeOrders`` is written ahead and every leg REJECTED with
``UNSUPPORTED_ORDER_TYPE`` (the contingent-order manager then emulates it).

Preset client order ids: an intent the contingent-order manager released carries its own id
(recorded in its durable state before the release), so a re-release after a restart carries
the same one. An id the order manager already knows is dropped (log
``order.duplicate_client_order_id``, no event). The table answers for the orders of this run;
the store is read only for an id the table does not know, and only when the table cannot know
every order written so far (it was loaded from an existing database, or it let closed orders
go): a plain intent without a preset id never waits for that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Sequence
from decimal import Decimal
from typing import Any, Protocol

from actors.kernel.clock import Clock
from actors.model.orders import (
    PRICED_TYPES,
    ApprovedIntent,
    ApprovedList,
    OrderEvent,
    OrderIntent,
    OrderListRequest,
    OrderRequest,
    OrderStatus,
    VenueOrder,
)
from actors.model.positions import ZERO
from actors.model.records import OrderRecord
from actors.orders.order_table import Change, OrderTable
from actors.ports.capabilities import NativeOrders
from actors.ports.stores import OrderStore
from actors.ports.venue import (
    UNSUPPORTED_ORDER_TYPE,
    OrderRejected,
    Venue,
    VenueError,
    VenueUnavailable,
    is_authentication_refusal,
)

__all__ = ["INVALID_ORDER_LIST", "STORE_UNAVAILABLE", "SubmitHost", "Submitter"]

_S = OrderStatus
#: Reason of orders denied because their write-ahead (or the check of a preset id) failed.
STORE_UNAVAILABLE = "store_unavailable"
#: Reason of list legs denied because the list is malformed (a leg without a size).
INVALID_ORDER_LIST = "INVALID_ORDER_LIST"


class SubmitHost(Protocol):
    """What the submit path needs from the order manager that owns it."""

    log: Any
    on_submit: Callable[[int], None] | None
    venue_refusal: str | None

    def apply_venue_order(self, vo: VenueOrder) -> bool:
        """Apply the venue's view of one of our orders."""
        ...

    def commit_changes(self, changes: Iterable[Change]) -> None:
        """Audit refusals, persist records and publish events of the table's changes, in order."""
        ...

    def emit_event(self, event: OrderEvent, persist: bool = True) -> None:
        """Persist (optionally) and publish one event."""
        ...

    def start_task(self, coro: Coroutine[Any, Any, None], *, eager: bool = False) -> asyncio.Task[None]:
        """Run a venue call as a tracked task (drained at shutdown); ``eager``: its first step now."""
        ...

    async def halt_for_credentials(self, exc: VenueError, where: str) -> None:
        """The venue refused our credentials: halt trading."""
        ...

    def submit_answered(self, client_order_id: str) -> None:
        """The submit of this order is over: carry out a cancel deferred meanwhile."""
        ...


def order_record(it: OrderIntent, size: Decimal, coid: str, venue: str, now_ms: int, list_id: str = "") -> OrderRecord:
    """The SUBMITTED record of an approved intent, as written ahead."""
    trailing = it.trailing
    return OrderRecord(
        client_order_id=coid, venue=venue, strategy=it.strategy, symbol=it.symbol, side=it.side, type=it.type,
        size=size, price=it.limit_price if it.type in PRICED_TYPES else None, status=_S.SUBMITTED, tag=it.tag,
        intent_id=it.intent_id, created_ms=now_ms, updated_ms=now_ms, trigger_price=it.trigger_price,
        trailing_bps=trailing.offset_bps if trailing is not None else None, display_size=it.display_size,
        parent=it.parent, list_id=list_id,
    )


def order_request(rec: OrderRecord) -> OrderRequest:
    """What the venue is sent for a written-ahead order."""
    return OrderRequest(client_order_id=rec.client_order_id, symbol=rec.symbol, side=rec.side, type=rec.type,
                        size=rec.size, price=rec.price, trigger_price=rec.trigger_price,
                        trailing_bps=rec.trailing_bps, display_size=rec.display_size)


class Submitter:
    """Writes approved orders ahead and sends them (see the module docstring).

    ``max_concurrent_requests`` bounds the submits (single or list) running at once; a
    batch waits for room (backpressure). ``history_in_store`` is set by the owner when the
    store holds orders of earlier runs that the table did not load (closed ones).
    """

    def __init__(self, host: SubmitHost, table: OrderTable, store: OrderStore, venue: Venue, clock: Clock,
                 prefix: str, max_concurrent_requests: int) -> None:
        self._host = host
        self._table = table
        self._store = store
        self._venue = venue
        self._native = venue if isinstance(venue, NativeOrders) else None
        self._clock = clock
        self._prefix = prefix
        self._max_requests = max_concurrent_requests
        self._sem = asyncio.Semaphore(max_concurrent_requests)
        self.history_in_store = False

    def reset(self) -> None:
        """A fresh start of the owner: new request slots."""
        self._sem = asyncio.Semaphore(self._max_requests)

    async def lookup(self, client_order_id: str) -> OrderRecord | None:
        """The order with this id from the table, or from the store when the table may not know it.

        A final order read from the store is kept in the table's closed window afterwards.
        Raises ``StoreError`` when the store cannot be read.
        """
        table = self._table
        rec = table.order(client_order_id)
        if rec is not None or not (self.history_in_store or table.forgot_closed):
            return rec
        rec = await self._store.order(client_order_id)
        if rec is not None:
            table.remember_closed(rec)
        return rec

    # -- single orders ----------------------------------------------------------------------
    async def submit_intents(self, intents: list[ApprovedIntent]) -> None:
        """Write a batch of approved intents ahead, then start their submits."""
        last_intent_id = intents[-1].intent.intent_id
        if any(ap.intent.client_order_id for ap in intents):
            intents = await self._unknown_ids_only(intents)
            if not intents:
                self._table.took_in(last_intent_id)
                return
        now = self._clock.now_ms()
        venue_name = self._venue.name
        store = self._store
        records = [
            order_record(ap.intent, ap.size, ap.intent.client_order_id or store.next_client_order_id(self._prefix),
                         venue_name, now)
            for ap in intents
        ]
        if not await self._write_ahead(records, last_intent_id):
            return
        for rec, ap in zip(records, intents, strict=True):
            self._add(rec, ap.reference_price)
            await self._sem.acquire()
            # Eager: the venue call starts in this turn, not behind the tasks woken meanwhile
            # (the store's writer, the event publisher); its SUBMITTED event is already queued.
            task = self._host.start_task(self._send(rec, ap.intent.origin_ns), eager=True)
            task.add_done_callback(lambda _: self._sem.release())

    async def _unknown_ids_only(self, intents: list[ApprovedIntent]) -> list[ApprovedIntent]:
        """The intents whose preset client order id (if any) no order has yet."""
        fresh: list[ApprovedIntent] = []
        batch: set[str] = set()
        for ap in intents:
            coid = ap.intent.client_order_id
            if coid:
                try:
                    known = coid in batch or await self.lookup(coid) is not None
                except Exception as exc:
                    # Unsure whether it was sent before: never risk sending it twice.
                    self._table.counts.store_errors += 1
                    self._host.log.error("order.client_order_id_check_failed", client_order_id=coid, error=str(exc))
                    rec = order_record(ap.intent, ap.size, coid, self._venue.name, self._clock.now_ms())
                    self._host.emit_event(self._table.deny_unsent(rec, STORE_UNAVAILABLE), persist=False)
                    continue
                if known:
                    self._duplicate(coid, ap.intent)
                    continue
                batch.add(coid)
            fresh.append(ap)
        return fresh

    def _duplicate(self, coid: str, it: OrderIntent) -> None:
        self._host.log.info("order.duplicate_client_order_id", client_order_id=coid, intent_id=it.intent_id,
                            parent=it.parent)

    async def _send(self, rec: OrderRecord, origin_ns: int) -> None:
        coid = rec.client_order_id
        table = self._table
        req = order_request(rec)
        self._call_hook(origin_ns)
        table.mark_sent(coid)
        try:
            vo = await self._venue.submit(req)
        except OrderRejected as exc:
            await self._rejected((rec,), exc, f"submit {coid}")
        except VenueUnavailable as exc:
            table.counts.submit_unknown += 1
            self._host.log.warning("order.submit_outcome_unknown", client_order_id=coid, reason=exc.reason)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug: the outcome is just as unknown
            table.counts.submit_unknown += 1
            self._host.log.error("order.submit_failed_unexpectedly", client_order_id=coid, error=repr(exc))
        else:
            self._answered((vo,))
        finally:
            table.finish_submit(coid)
        self._host.submit_answered(coid)

    # -- native order lists -----------------------------------------------------------------
    async def submit_list(self, ap: ApprovedList) -> None:
        """Write every leg of a native order list ahead (one insert), then send the list once."""
        ol = ap.order_list
        legs = ol.orders
        if not legs:
            return
        table, store = self._table, self._store
        last_intent_id = legs[-1].intent_id
        list_id = ol.list_id or store.next_client_order_id(self._prefix)
        sizes: Sequence[Decimal | None] = ap.sizes if len(ap.sizes) == len(legs) else (None,) * len(legs)
        now = self._clock.now_ms()
        venue_name = self._venue.name
        records = [
            order_record(it, size if size is not None else ZERO,
                         it.client_order_id or store.next_client_order_id(self._prefix), venue_name, now, list_id)
            for it, size in zip(legs, sizes, strict=True)
        ]
        reason = INVALID_ORDER_LIST if any(size is None for size in sizes) else ""
        try:
            known = [rec.client_order_id for rec, it in zip(records, legs, strict=True)
                     if it.client_order_id and await self.lookup(rec.client_order_id) is not None]
        except Exception as exc:
            table.counts.store_errors += 1
            self._host.log.error("order.client_order_id_check_failed", list_id=list_id, error=str(exc))
            known, reason = [], STORE_UNAVAILABLE
        if known:
            self._host.log.info("order.duplicate_client_order_id", list_id=list_id, client_order_ids=known)
            table.took_in(last_intent_id)
            return
        if reason:
            table.took_in(last_intent_id)
            self._host.log.error("order.list_denied", list_id=list_id, reason=reason)
            for rec in records:
                self._host.emit_event(table.deny_unsent(rec, reason), persist=False)
            return
        if not await self._write_ahead(records, last_intent_id):
            return
        for rec in records:
            self._add(rec, ap.reference_price)
        native = self._native
        if native is None:
            self._host.log.warning("order.list_unsupported", list_id=list_id, kind=ol.kind.value,
                                   venue=venue_name)
            for rec in records:
                table.finish_submit(rec.client_order_id)
            await self._rejected(records, OrderRejected(UNSUPPORTED_ORDER_TYPE, f"{venue_name} has no order lists"),
                                 f"submit_list {list_id}")
            return
        request = OrderListRequest(list_client_id=list_id, kind=ol.kind,
                                   orders=tuple(order_request(rec) for rec in records))
        await self._sem.acquire()
        task = self._host.start_task(self._send_list(native, records, request, ol.origin_ns), eager=True)
        task.add_done_callback(lambda _: self._sem.release())

    async def _send_list(self, native: NativeOrders, records: list[OrderRecord], request: OrderListRequest,
                         origin_ns: int) -> None:
        table = self._table
        list_id = request.list_client_id
        self._call_hook(origin_ns)
        for rec in records:
            table.mark_sent(rec.client_order_id)
        try:
            vos = await native.submit_list(request)
        except OrderRejected as exc:
            await self._rejected(records, exc, f"submit_list {list_id}")
        except VenueUnavailable as exc:
            table.counts.submit_unknown += len(records)
            self._host.log.warning("order.list_outcome_unknown", list_id=list_id, reason=exc.reason,
                                   client_order_ids=[r.client_order_id for r in records])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an adapter bug: the outcome is just as unknown
            table.counts.submit_unknown += len(records)
            self._host.log.error("order.submit_list_failed_unexpectedly", list_id=list_id, error=repr(exc))
        else:
            self._answered(vos)
        finally:
            for rec in records:
                table.finish_submit(rec.client_order_id)
        for rec in records:
            self._host.submit_answered(rec.client_order_id)

    # -- shared -------------------------------------------------------------------------------
    async def _write_ahead(self, records: list[OrderRecord], last_intent_id: str) -> bool:
        """Commit the records before anything is sent; on failure deny them all (False)."""
        table = self._table
        try:
            await self._store.insert_orders(records)
        except Exception as exc:
            table.took_in(last_intent_id)
            table.counts.store_errors += 1
            self._host.log.error("order.write_ahead_failed", error=str(exc), orders=len(records))
            for rec in records:
                self._host.emit_event(table.deny_unsent(rec, STORE_UNAVAILABLE), persist=False)
            return False
        table.took_in(last_intent_id)
        return True

    def _add(self, rec: OrderRecord, reference_price: Decimal) -> None:
        """Track a written-ahead order and publish its SUBMITTED event; audit the decision trail."""
        event = self._table.add_submitted(rec, sent=False)
        payload: dict[str, Any] = {
            "client_order_id": rec.client_order_id, "strategy": rec.strategy, "symbol": rec.symbol,
            "side": rec.side.value, "type": rec.type.value, "size": rec.size, "price": rec.price,
            "intent_id": rec.intent_id, "reference_price": reference_price}
        if rec.parent or rec.list_id:
            payload.update(parent=rec.parent, list_id=rec.list_id, trigger_price=rec.trigger_price,
                           trailing_bps=rec.trailing_bps, display_size=rec.display_size)
        # The decision trail: which approved intent became which order, tamper-evident.
        self._store.append_audit_nowait("order.submitted", payload)
        self._host.emit_event(event)

    def _call_hook(self, origin_ns: int) -> None:
        hook = self._host.on_submit
        if hook is not None:
            try:
                hook(origin_ns)
            except Exception as exc:
                self._host.log.error("order.on_submit_hook_failed", error=repr(exc))

    async def _rejected(self, records: Iterable[OrderRecord], exc: OrderRejected, where: str) -> None:
        table = self._table
        changes = []
        for rec in records:
            table.counts.rejected += 1
            cur = table.open_order(rec.client_order_id)
            if cur is not None and cur.status is _S.SUBMITTED:
                changes.append(table.transition(cur, _S.REJECTED, exc.reason))
        self._host.commit_changes(changes)
        if is_authentication_refusal(exc):
            await self._host.halt_for_credentials(exc, where)

    def _answered(self, vos: Iterable[VenueOrder]) -> None:
        host, table = self._host, self._table
        host.venue_refusal = None
        for vo in vos:
            cur = table.open_order(vo.client_order_id)
            if cur is not None and cur.status is _S.SUBMITTED:
                host.apply_venue_order(vo)
