"""The book of active contingent orders: dispatch of every input to the orders it concerns.

Pure like the orders themselves: each method changes orders and returns the ``Effect``s the
actor must execute, in order. The book keeps three indexes in step with the orders after
every handler: contingent id -> order, client order id of every venue order they sent ->
contingent id, and per symbol the orders that watch the market (armed emulated triggers),
so a market event of a symbol nothing watches costs one dict lookup. An order that reaches a
final status is persisted (durable) and dropped.

Write-ahead bookkeeping: the actor reports rows it saved (``committed``) and rows whose
durable save failed (``revert``); a reverted order is rebuilt from its last saved row, so it
stays as it was and retries on the next event or timer (a new order whose first save failed
goes back to PENDING and starts again after ``child_retry_s``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from actors.contingent.base import BookContext, ContingentOrder, OrderLookup
from actors.contingent.effects import Effect, Notice, Persist, TellStrategy
from actors.contingent.kinds import KindUnavailable, class_of, create
from actors.model.contingent import (
    CONTINGENT_GIVEN_UP,
    ContingentKind,
    ContingentRow,
    ContingentStatus,
    ContingentView,
)
from actors.model.market import MarketEvent
from actors.model.orders import ApprovedIntent, ApprovedList, ExecutionMode, Fill, OrderDenied, OrderEvent, OrderStatus
from actors.model.records import OrderRecord

__all__ = ["ContingentBook", "CountKey", "given_up"]

#: Metric labels of a count: (kind, mode, status).
CountKey = tuple[ContingentKind, ExecutionMode, ContingentStatus]


class ContingentBook:
    """Active contingent orders and their indexes (see the module docstring)."""

    def __init__(self, ctx: BookContext) -> None:
        self._ctx = ctx
        self._orders: dict[str, ContingentOrder] = {}
        self._by_child: dict[str, str] = {}
        self._child_ids: dict[str, tuple[str, ...]] = {}
        # symbol -> {contingent id: order} (insertion order: older orders see an event first)
        self._watchers: dict[str, dict[str, ContingentOrder]] = {}
        #: The same dict, read-only for the manager's feed tap (empty: nothing watches any symbol).
        self.watchers: Mapping[str, Mapping[str, ContingentOrder]] = self._watchers
        self._deadlines: dict[str, int] = {}
        self._next_deadline: int | None = None
        #: ``next_deadline_ms()`` as a plain attribute (the feed tap reads it on every event).
        self.next_deadline: int | None = None
        self._saved: dict[str, ContingentRow] = {}
        # New orders whose first write-ahead has not committed yet: their state before start
        # (PENDING); and those whose first write-ahead failed: when to start them again.
        self._unsaved: dict[str, ContingentRow] = {}
        self._restart_at: dict[str, int] = {}
        self._completed: Counter[CountKey] = Counter()
        # Risk-gate denials per client order id of a release, this run (said when giving up).
        self._denials: Counter[str] = Counter()

    @property
    def ctx(self) -> BookContext:
        """The context the orders run in."""
        return self._ctx

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, contingent_id: str) -> ContingentOrder | None:
        """An active order by contingent id."""
        return self._orders.get(contingent_id)

    # -- inputs ----------------------------------------------------------------------------------
    def add(self, approved: ApprovedIntent | ApprovedList) -> list[Effect]:
        """Accept an approved intent or list: create its order and start it."""
        try:
            order = create(approved, self._ctx)
        except (KindUnavailable, ValueError) as exc:
            source = approved.intent if isinstance(approved, ApprovedIntent) else approved.order_list
            return [Notice(event="contingent.refused", level="error",
                           fields={"strategy": source.strategy, "symbol": source.symbol, "error": str(exc)})]
        self._orders[order.id] = order
        self._unsaved[order.id] = order.row()
        return self._settle(order, order.start(self._ctx))

    def on_market(self, event: MarketEvent) -> list[Effect]:
        """A market event: to every order watching its symbol (none: one dict lookup)."""
        watchers = self._watchers.get(event.symbol)
        if not watchers:
            return []
        ctx = self._ctx
        effects: list[Effect] = []
        for order in tuple(watchers.values()):
            out = order.on_market(event, ctx)
            if out:
                effects.extend(self._settle(order, out))
            else:
                self._touch(order)
        return effects

    def on_order_event(self, event: OrderEvent) -> list[Effect]:
        """An event of one of our venue orders (by ``parent``, else by client order id).

        An order the venue reported FILLED before its fills reached the order manager (a
        market order's reply, ahead of the trades on the update stream) is handed over as
        PARTIALLY_FILLED until its fills add up: the orders act on ``filled`` (what protects
        or was bought), and a FILLED with nothing filled would read as "ended empty".
        """
        order = self._owner(event.parent, event.client_order_id)
        if order is None:
            return []
        if event.status is OrderStatus.FILLED and event.filled < event.size:
            event = msgspec.structs.replace(event, status=OrderStatus.PARTIALLY_FILLED)
        return self._settle(order, order.on_order_event(event, self._ctx))

    def on_denied(self, denied: OrderDenied) -> list[Effect]:
        """The risk gate denied one of our releases. When the order gives up on it (FAILED), the
        strategy is told once (``TellStrategy``, after the durable save of the failure): the
        router never hands it a denial of an order the manager released."""
        order = self._owner(denied.intent.parent, denied.intent.client_order_id)
        if order is None:
            return []
        coid = denied.intent.client_order_id
        self._denials[coid] += 1
        attempts = self._denials[coid]
        effects = self._settle(order, order.on_denied(denied, self._ctx))
        if order.status is not ContingentStatus.FAILED:
            return effects
        return [*effects, TellStrategy(denied=given_up(denied, attempts))]

    def on_timer(self, now_ms: int) -> list[Effect]:
        """Business time ``now_ms``: every order whose deadline passed."""
        if self._next_deadline is None or now_ms < self._next_deadline:
            return []
        effects: list[Effect] = []
        for cid, deadline in list(self._deadlines.items()):
            order = self._orders.get(cid)
            if order is None or deadline > now_ms:
                continue
            restart = self._restart_at.get(cid)
            if restart is not None and restart <= now_ms:
                del self._restart_at[cid]
                effects.extend(self._settle(order, order.start(self._ctx)))
            else:
                effects.extend(self._settle(order, order.on_timer(now_ms, self._ctx)))
        return effects

    def cancel(self, contingent_id: str, reason: str) -> list[Effect]:
        """Cancel one order, by contingent id (or the client order id of one of its venue orders)."""
        order = self._owner(contingent_id, contingent_id)
        if order is None:
            return [Notice(event="contingent.cancel_unknown", fields={"contingent_id": contingent_id,
                                                                        "reason": reason}, level="warning")]
        return self._settle(order, order.cancel(reason, self._ctx))

    def cancel_all(self, symbol: str | None = None, strategy: str | None = None, reason: str = "") -> list[Effect]:
        """Cancel every order (optionally of one symbol and/or one strategy)."""
        effects: list[Effect] = []
        for order in list(self._orders.values()):
            if (symbol is None or order.symbol == symbol) and (strategy is None or order.strategy == strategy):
                effects.extend(self._settle(order, order.cancel(reason, self._ctx)))
        return effects

    # -- restart ----------------------------------------------------------------------------------
    def restore(self, rows: Iterable[ContingentRow]) -> list[Effect]:
        """Load stored active rows (nothing is sent); a row of an unavailable kind is reported."""
        effects: list[Effect] = []
        for row in rows:
            if not row.active:
                continue
            try:
                order = class_of(row.kind).from_row(row)
            except (KindUnavailable, ValueError, KeyError, TypeError) as exc:
                effects.append(Notice(event="contingent.restore_failed", level="error",
                                      fields={"contingent_id": row.id, "kind": row.kind.value, "error": str(exc)}))
                continue
            self._saved[row.id] = row
            self._orders[order.id] = order
            self._settle(order, [])
        return effects

    def resume(self, lookup: OrderLookup) -> list[Effect]:
        """Once the order manager has loaded: bring every order up to date and return what to send.

        A record FILLED whose fills are not all in yet reads as PARTIALLY_FILLED (see
        ``on_order_event``); the rest of its fills come as events.
        """

        def settled(client_order_id: str) -> OrderRecord | None:
            rec = lookup(client_order_id)
            if rec is not None and rec.status is OrderStatus.FILLED and rec.filled < rec.size:
                return msgspec.structs.replace(rec, status=OrderStatus.PARTIALLY_FILLED)
            return rec

        effects: list[Effect] = []
        for order in list(self._orders.values()):
            effects.extend(self._settle(order, order.resume(settled, self._ctx)))
        return effects

    def fill_sources(self) -> list[str]:
        """Client order ids whose stored fills the active orders need before ``resume``."""
        return [coid for order in self._orders.values() for coid in order.fill_sources()]

    def restore_fills(self, fills: Iterable[Fill]) -> None:
        """Stored fills of ``fill_sources()`` (after ``restore``, before ``resume``): each to its order."""
        for fill in fills:
            order = self._owner("", fill.client_order_id)
            if order is not None:
                order.restore_fill(fill)

    # -- write-ahead bookkeeping -------------------------------------------------------------------
    def committed(self, rows: Iterable[ContingentRow]) -> None:
        """Rows the store accepted (committed, or queued behind): the state a revert returns to."""
        for row in rows:
            self._unsaved.pop(row.id, None)
            if row.active:
                self._saved[row.id] = row
            else:
                self._saved.pop(row.id, None)
                self._completed[(row.kind, row.mode, row.status)] += 1

    def revert(self, rows: Iterable[ContingentRow]) -> list[str]:
        """A durable save of ``rows`` failed: put each order back as last saved. Returns their ids.

        A new order whose first save failed goes back to PENDING and starts again after
        ``child_retry_s`` (business time): a protective order is not dropped for a store hiccup.
        """
        ids: list[str] = []
        for row in rows:
            ids.append(row.id)
            current = self._orders.get(row.id)
            if current is not None:
                self._forget(current)
            saved = self._saved.get(row.id)
            base = saved if saved is not None else self._unsaved.get(row.id)
            if base is None:
                continue
            order = class_of(base.kind).from_row(base)
            self._orders[order.id] = order
            if saved is None:
                self._restart_at[order.id] = self._ctx.now_ms() + int(self._ctx.settings().child_retry_s * 1000)
            self._settle(order, [])
        return ids

    # -- reads -------------------------------------------------------------------------------------
    def watching(self, symbol: str) -> bool:
        """True while an order needs every market event of ``symbol``."""
        return bool(self._watchers.get(symbol))

    def child_ids(self) -> list[str]:
        """Client order ids of every venue order the active orders sent or will send."""
        return list(self._by_child)

    def next_deadline_ms(self) -> int | None:
        """The earliest deadline of any order (business time), or None."""
        return self._next_deadline

    def views(self) -> list[ContingentView]:
        """Every active order as operators see it, oldest first."""
        return [order.view() for order in self._orders.values()]

    def counts(self) -> dict[CountKey, int]:
        """Active orders by (kind, mode, status) (a gauge)."""
        return dict(Counter((o.kind, o.mode, o.status) for o in self._orders.values()))

    def completed(self) -> dict[CountKey, int]:
        """Orders that reached a final status and were saved so, since this book was made (a counter)."""
        return dict(self._completed)

    # -- indexes -----------------------------------------------------------------------------------
    def _owner(self, contingent_id: str, client_order_id: str) -> ContingentOrder | None:
        order = self._orders.get(contingent_id) if contingent_id else None
        if order is None and client_order_id:
            owner = self._by_child.get(client_order_id)
            order = self._orders.get(owner) if owner is not None else None
        return order

    def _settle(self, order: ContingentOrder, effects: list[Effect]) -> list[Effect]:
        """Bring the indexes in step with ``order`` after a handler; drop it once final."""
        if order.id not in self._orders:
            return effects
        ids = tuple(order.child_ids())
        if ids != self._child_ids.get(order.id, ()):
            for cid in self._child_ids.get(order.id, ()):
                self._by_child.pop(cid, None)
            if self._denials:
                for cid in set(self._child_ids.get(order.id, ())).difference(ids):
                    self._denials.pop(cid, None)
            for cid in ids:
                self._by_child[cid] = order.id
            self._child_ids[order.id] = ids
        if order.active:
            self._touch(order)
            return effects
        if not _persists_final(effects, order):
            effects = [*effects, order.persist(self._ctx)]
        self._forget(order)
        return effects

    def _touch(self, order: ContingentOrder) -> None:
        """Watch set and deadline of an active order (cheap: called per market event per watcher)."""
        oid = order.id
        watchers = self._watchers.get(order.symbol)
        if order.watches_market():
            if watchers is None:
                self._watchers[order.symbol] = {oid: order}
            elif oid not in watchers:
                watchers[oid] = order
        elif watchers is not None and oid in watchers:
            del watchers[oid]
            if not watchers:
                del self._watchers[order.symbol]
        deadline = order.deadline_ms()
        restart = self._restart_at.get(oid)
        if restart is not None:
            deadline = restart if deadline is None else min(deadline, restart)
        if deadline != self._deadlines.get(oid):
            if deadline is None:
                del self._deadlines[oid]
            else:
                self._deadlines[oid] = deadline
            self._next_deadline = self.next_deadline = min(self._deadlines.values(), default=None)

    def _forget(self, order: ContingentOrder) -> None:
        oid = order.id
        self._orders.pop(oid, None)
        self._restart_at.pop(oid, None)
        for cid in self._child_ids.pop(oid, ()):
            self._by_child.pop(cid, None)
            self._denials.pop(cid, None)
        watchers = self._watchers.get(order.symbol)
        if watchers is not None and watchers.pop(oid, None) is not None and not watchers:
            del self._watchers[order.symbol]
        if self._deadlines.pop(oid, None) is not None:
            self._next_deadline = self.next_deadline = min(self._deadlines.values(), default=None)


def given_up(denied: OrderDenied, attempts: int) -> OrderDenied:
    """The strategy's final word on an order the manager gave up on after ``attempts`` denials of
    ``denied.intent`` (its last one): reason ``CONTINGENT_GIVEN_UP``, the denial's own reason in
    ``detail``, its limit kept."""
    detail = f"{denied.reason}: denied {attempts} time{'s' if attempts != 1 else ''}, given up"
    if denied.detail:
        detail = f"{detail} ({denied.detail})"
    return OrderDenied(intent=denied.intent, reason=CONTINGENT_GIVEN_UP, limit=denied.limit, detail=detail,
                       ts_ms=denied.ts_ms)


def _persists_final(effects: Sequence[Effect], order: ContingentOrder) -> bool:
    """True when ``effects`` hold a durable save of ``order`` in its final status."""
    return any(isinstance(e, Persist) and e.durable and any(r.id == order.id and r.status is order.status
                                                             for r in e.rows) for e in effects)
