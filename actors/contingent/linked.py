"""Linked orders: OCO (two exits of one position) and OTO (a working order and a pending one).

Both keep their exits in an ``ExitSet`` (``actors.contingent.exit_leg``), which covers a
target quantity exactly once, natively or by emulated triggers. ``LinkedOrder`` is what they
and the bracket (``actors.contingent.bracket``) share: the write-ahead of their effects, the
market tap, denials and retries, the trailing save-behind.
"""

from __future__ import annotations

from abc import abstractmethod
from decimal import Decimal
from typing import Any, ClassVar, Self

import msgspec

from actors.contingent.base import BookContext, ContingentOrder, OrderLookup
from actors.contingent.effects import CancelChild, Effect, Notice, Release, ReleaseList
from actors.contingent.exit_leg import ZERO, Chunk, ExitLeg, ExitSet, NativeLeg, Phase, event_of, is_above, text
from actors.kernel.clock import monotonic
from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus, ContingentView, LegView
from actors.model.market import MarketEvent
from actors.model.orders import (
    TERMINAL_STATUSES,
    ApprovedList,
    ExecutionMode,
    ListKind,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderList,
    OrderStatus,
    OrderType,
)
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE

__all__ = ["LinkedOrder", "Oco", "Oto", "native_exits"]

_S = ContingentStatus
_FAILED_ENDS = frozenset({OrderStatus.REJECTED.value, OrderStatus.DENIED.value})


class LinkedOrder(ContingentOrder):
    """Base of OCO, OTO and bracket: an ``exits`` set covering ``target()``.

    Effects go out as ``[Persist, *effects]``: the Persist is durable whenever something is
    sent or cancelled or the status changed (the write-ahead: the ids it names are committed
    before they are released), else written behind. A trailing level that moved is saved
    behind at most every ``trailing_persist_interval_s`` of process time.
    """

    kind: ClassVar[ContingentKind]

    def __init__(self, *, exits: ExitSet, **common: Any) -> None:
        super().__init__(**common)
        self.exits = exits
        self._saved_at = 0.0

    @abstractmethod
    def target(self) -> Decimal:
        """The quantity the exits must cover (filled so far, or a fixed size)."""

    @abstractmethod
    def settle(self, ctx: BookContext) -> list[Effect]:
        """Status after a handler (DONE, FAILED, ...) and what that needs sent (cancels)."""

    def _emit(self, ctx: BookContext, effects: list[Effect], before: ContingentStatus,
              durable: bool = False) -> list[Effect]:
        """``effects`` behind the Persist that writes them ahead."""
        effects = effects + self.settle(ctx)
        self.mode = ExecutionMode.NATIVE if self.exits.native else ExecutionMode.EMULATED
        durable = durable or self.status is not before or any(
            isinstance(e, Release | ReleaseList | CancelChild) for e in effects)
        if durable:
            self._saved_at = monotonic()
        return [self.persist(ctx, durable=durable), *effects]

    def fired(self, ctx: BookContext) -> list[Effect]:
        """What else an exit trigger asks for (a bracket cancels its entry's rest)."""
        return []

    # -- handlers ----------------------------------------------------------------------------------
    def on_market(self, event: MarketEvent, ctx: BookContext) -> list[Effect]:
        """Armed emulated legs watch ``event``; the first crossed releases its child."""
        if not self.active:
            return []
        before = self.status
        effects, moved = self.exits.on_market(event, self.target(), self, ctx)
        if effects:
            return self._emit(ctx, effects + self.fired(ctx), before, durable=True)
        if moved and monotonic() - self._saved_at >= ctx.settings().trailing_persist_interval_s:
            self._saved_at = monotonic()
            return [self.persist(ctx, durable=False)]
        return []

    def on_order_event(self, event: OrderEvent, ctx: BookContext) -> list[Effect]:
        """An event of an exit order."""
        if not self.active:
            return []
        before = self.status
        out = self.exits.on_order_event(event, self, ctx)
        if out is None:
            return []
        # an order's end is saved durably: nothing after a restart depends on finding it again
        return self._emit(ctx, out + self.exits.cover(self.target(), self, ctx), before,
                          durable=event.status in TERMINAL_STATUSES)

    def on_denied(self, denied: OrderDenied, ctx: BookContext) -> list[Effect]:
        """The risk gate denied an exit order: retried later, or covered by emulation."""
        if not self.active:
            return []
        before = self.status
        out = self.exits.on_denied(denied, self, ctx)
        if out is None:
            return []
        return self._emit(ctx, out + self.exits.cover(self.target(), self, ctx), before, durable=True)

    def on_timer(self, now_ms: int, ctx: BookContext) -> list[Effect]:
        """Denied children due for a retry."""
        if not self.active:
            return []
        before = self.status
        out = self.exits.on_timer(now_ms, self)
        if not out:
            return []
        return self._emit(ctx, out + self.exits.cover(self.target(), self, ctx), before, durable=True)

    def deadline_ms(self) -> int | None:
        """The next retry of a denied child."""
        return self.exits.deadline_ms() if self.active else None

    def watches_market(self) -> bool:
        """True while an emulated leg is armed, or a denied child waits to see its condition still holds."""
        return self.active and (self.exits.armed or self.exits.deadline_ms() is not None)

    def _resume_exits(self, lookup: OrderLookup, ctx: BookContext) -> list[Effect]:
        return self.exits.resume(lookup, self, ctx) + self.exits.cover(self.target(), self, ctx)

    def _finish(self, status: ContingentStatus, reason: str, ctx: BookContext) -> list[Effect]:
        """Final ``status``. DONE/CANCELED: nothing stays armed or open (no orphans). FAILED: the
        legs disarm, but exit orders still at the venue stay there (they still protect what is
        left, and a native OCO cancels its own sibling); the error Notice says what is left."""
        self.status = status
        self.reason = reason
        if status is _S.FAILED:
            self.exits.disarm()
            effects: list[Effect] = []
        else:
            effects = self.exits.close(reason or status.value.lower())
        left = self.target() - self.exits.exits_filled
        return [*effects, Notice(event=f"contingent.{status.value.lower()}", level="error" if status is _S.FAILED
                                 else "info", fields={"id": self.id, "reason": reason, "position_left": text(left),
                                                      "native_open": text(self.exits.native_open)})]

    def _working_status(self) -> ContingentStatus:
        """TRIGGERED while a child a trigger released is on its way (a plain pending order is no trigger)."""
        x = self.exits
        fired = any(c.phase in (Phase.SENT, Phase.RETRY) and not x.leg(c.leg).plain for c in x.children)
        return _S.TRIGGERED if fired else _S.WORKING

    def _exit_views(self) -> tuple[LegView, ...]:
        """Each exit leg: status, the quantity it covers, filled, its trigger, its orders."""
        x = self.exits
        views = []
        uncovered = max(x.uncovered(self.target()), ZERO)
        for leg in x.legs:
            kids = [c for c in x.children if c.leg == leg.name]
            natives = [nl for ch in x.chunks for nl in ch.legs if nl.leg == leg.name]
            open_native = sum((ch.open_rest for ch in x.chunks if any(nl.leg == leg.name for nl in ch.legs)), ZERO)
            in_flight = sum((c.open_rest for c in kids), ZERO)
            if leg.armed:
                status, size = "armed", uncovered
            elif in_flight > 0:
                status, size = "triggered", in_flight
            elif open_native > 0:
                status, size = "open", open_native
            else:
                status, size = ("done" if kids or natives else "idle"), ZERO
            filled = sum((c.filled for c in kids), ZERO) + sum((nl.filled for nl in natives), ZERO)
            views.append(LegView(
                name=leg.name, type=leg.type.value, side=leg.side.value, status=status, size=text(size),
                filled=text(filled) or "0", trigger_price=text(leg.level), limit_price=text(leg.limit_price),
                trailing=leg.trailing_text(), client_order_ids=tuple([c.id for c in kids] + [n.id for n in natives])))
        return tuple(views)

    def _view(self, legs: tuple[LegView, ...], protected: Decimal | None) -> ContingentView:
        return ContingentView(
            id=self.id, strategy=self.strategy, symbol=self.symbol, kind=self.kind.value, mode=self.mode.value,
            status=self.status.value, trigger=self.exits.legs[0].source.value,
            protected=None if protected is None else format(protected, "f"), reason=self.reason, legs=legs,
            created_ms=self.created_ms, updated_ms=self.updated_ms)


def native_exits(exits: ExitSet, ctx: BookContext) -> bool:
    """True when the venue runs these exits natively: every leg's type (and trailing rule), and an
    OCO list when there are two."""
    return all(leg.native_ok(ctx) for leg in exits.legs) and (
        len(exits.legs) == 1 or ListKind.OCO in ctx.support.lists)


class Oco(LinkedOrder):
    """One-cancels-the-other: two exits of an existing position, one above and one below the market.

    Native (a venue OCO list; the venue cancels the sibling, and so do we if it is still open
    after a fill) when the venue has OCO lists and both legs' types; else emulated: both legs
    armed, the first crossed releases one child for the size and disarms the other in the
    same durable Persist. DONE once the size is exited. A native list the venue refuses as
    ``UNSUPPORTED_ORDER_TYPE`` falls back to emulation (``fallback_to_emulation``).
    """

    kind = ContingentKind.OCO

    def __init__(self, *, size: Decimal, **rest: Any) -> None:
        super().__init__(**rest)
        self.size = size

    @classmethod
    def from_approved(cls, approved: ApprovedList, ctx: BookContext) -> Self:
        """An OCO (not started) of an approved list ``(above, below)`` in either order."""
        ol = approved.order_list
        if ol.kind is not ListKind.OCO or len(ol.orders) != 2 or len(approved.sizes) != 2:
            raise ValueError("an OCO is a list of two exits")
        size, other = approved.sizes
        if size is None or size <= 0 or size != other:
            raise ValueError("the two legs of an OCO must have the same size")
        first, second = ol.orders
        if first.side is not second.side or is_above(first) == is_above(second):
            raise ValueError("an OCO needs one exit above and one below the market, on the same side")
        if any(o.type in (OrderType.MARKET, OrderType.LIMIT) and o.trailing is None for o in ol.orders):
            raise ValueError("the legs of an OCO are stops, take-profits or trailing stops")
        legs = [ExitLeg.of("above" if is_above(o) else "below", o) for o in ol.orders]
        exits = ExitSet(legs=legs, tag=ol.tag)
        exits.native = native_exits(exits, ctx)
        if not exits.native:
            exits.arm()
        now = ctx.now_ms()
        return cls(id=ctx.new_id(), strategy=ol.strategy, symbol=ol.symbol,
                   mode=ExecutionMode.NATIVE if exits.native else ExecutionMode.EMULATED, created_ms=now,
                   updated_ms=now, size=size, exits=exits)

    def target(self) -> Decimal:
        """The size both legs exit."""
        return self.size

    def body(self) -> dict[str, Any]:
        """State as builtins."""
        return {"reason": self.reason, "size": format(self.size, "f"), "exits": msgspec.to_builtins(self.exits)}

    @classmethod
    def from_body(cls, row: ContingentRow, body: dict[str, Any]) -> Self:
        """Rebuild from a stored row."""
        return cls(**cls.common_of(row), size=Decimal(body["size"]), exits=msgspec.convert(body["exits"], ExitSet))

    def start(self, ctx: BookContext) -> list[Effect]:
        """Native: the list (leg ids and list id written ahead); emulated: the legs are armed."""
        before = self.status
        self.status = _S.WORKING
        sends = self.exits.cover(self.size, self, ctx)
        notice = Notice(event="contingent.started", fields={"id": self.id, "kind": self.kind.value,
                                                             "mode": self.mode.value, "size": format(self.size, "f")})
        return self._emit(ctx, [*sends, notice], before, durable=True)

    def settle(self, ctx: BookContext) -> list[Effect]:
        """DONE once the size is exited; FAILED when the exits cannot go on."""
        if not self.active:
            return []
        if self.exits.failed:
            return self._finish(_S.FAILED, self.exits.failed, ctx)
        if self.exits.exits_filled >= self.size and not self.exits.children_in_flight:
            return self._finish(_S.DONE, "", ctx)
        self.status = self._working_status()
        return []

    def cancel(self, reason: str, ctx: BookContext) -> list[Effect]:
        """Disarm, cancel the native legs or released children still open."""
        if not self.active:
            return []
        before = self.status
        return self._emit(ctx, self._finish(_S.CANCELED, reason, ctx), before, durable=True)

    def resume(self, lookup: OrderLookup, ctx: BookContext) -> list[Effect]:
        """Catch up with the order manager (see ``ExitSet.resume``)."""
        if not self.active:
            return []
        before = self.status
        return self._emit(ctx, self._resume_exits(lookup, ctx), before, durable=True)

    def child_ids(self) -> list[str]:
        """Every native leg and released child."""
        return list(self.exits.child_ids())

    def view(self) -> ContingentView:
        """Legs ``above`` and ``below``."""
        return self._view(self._exit_views(), self.size - self.exits.exits_filled)


class Oto(LinkedOrder):
    """One-triggers-the-other: a working order, and a pending order placed for what it fills.

    The working order is plain (market, limit) or conditional (native where the venue has the
    type, else an emulated trigger that releases a market or limit child for its size). The
    pending order (an ``ExitSet`` of one leg) follows the working order's fills: at every
    fill, pending released == min(working filled, pending size) (a plain pending order is
    released at once per fill; a conditional one is armed or placed natively per fill). DONE
    once the working order is final and the pending quantity is filled.

    A native OTO list (one ``ReleaseList``) needs a plain LIMIT working order (Binance's OTO
    takes no other) and a pending order plain or of a type the venue runs. The venue places
    the pending order (our client id, written ahead) once the working order FULLY filled, not
    per fill; if the working order ends partly filled, the venue drops the pending order with
    the list and the pending set emulates it for the filled part. Any other working order
    sends no list: the pending order follows each fill (native per fill if the venue runs it).
    """

    kind = ContingentKind.OTO

    def __init__(self, *, working: OrderIntent, pending_size: Decimal, working_leg: ExitLeg | None = None,
                 working_phase: Phase | None = None, working_filled: Decimal = ZERO, working_status: str = "",
                 working_attempts: int = 0, working_retry_at_ms: int = 0, list_id: str = "", **rest: Any) -> None:
        super().__init__(**rest)
        self.working = working
        self.pending_size = pending_size
        self.working_leg = working_leg
        self.working_phase = working_phase  # None: not released yet (an armed trigger)
        self.working_filled = working_filled
        self.working_status = working_status
        self.working_attempts = working_attempts
        self.working_retry_at_ms = working_retry_at_ms
        self.list_id = list_id  # set while the pair runs as a native OTO list

    @classmethod
    def from_approved(cls, approved: ApprovedList, ctx: BookContext) -> Self:
        """An OTO (not started) of an approved list ``(working, pending)``."""
        ol = approved.order_list
        if ol.kind is not ListKind.OTO or len(ol.orders) != 2 or len(approved.sizes) != 2:
            raise ValueError("an OTO is a list of a working and a pending order")
        size, pending_size = approved.sizes
        if size is None or size <= 0:
            raise ValueError("the working order of an OTO needs a size")
        cid, wid = ctx.new_id(), ctx.new_id()
        work, pend = ol.orders
        working = msgspec.structs.replace(work, strategy=ol.strategy, symbol=ol.symbol, size=size, notional=None,
                                          client_order_id=wid, parent=cid, protective=False, tag=work.tag or ol.tag)
        pleg = ExitLeg.of("pending", pend)
        exits = ExitSet(legs=[pleg], protective=pend.side is not work.side, tag=pend.tag or ol.tag)
        wleg = ExitLeg.of("working", working)
        conditional = not wleg.plain
        native_list = (ctx.native_enabled and ListKind.OTO in ctx.support.lists and work.type is OrderType.LIMIT
                       and work.is_plain and (pleg.plain or pleg.native_ok(ctx)))
        list_id = ""
        if native_list:
            list_id = ctx.new_id()
            exits.native = True
            exits.chunks.append(Chunk(size=pending_size or size, external=True, list_id=list_id,
                                      legs=[NativeLeg(id=ctx.new_id(), leg="pending", intent_id=f"{cid}:pending:0")]))
        elif pleg.native_ok(ctx):
            exits.native = True
        else:
            exits.arm()
        working_leg = None
        if conditional and not wleg.native_ok(ctx):
            working_leg = wleg
            working_leg.armed = True
        now = ctx.now_ms()
        return cls(id=cid, strategy=ol.strategy, symbol=ol.symbol,
                   mode=ExecutionMode.NATIVE if native_list or exits.native else ExecutionMode.EMULATED,
                   created_ms=now, updated_ms=now, working=working, pending_size=pending_size or size,
                   working_leg=working_leg, list_id=list_id, exits=exits)

    def target(self) -> Decimal:
        """What the pending order must cover: the working order's fills (capped at its own size)."""
        return min(self.working_filled, self.pending_size)

    # -- persistence -------------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """State as builtins."""
        return {"reason": self.reason, "working": msgspec.to_builtins(self.working),
                "pending_size": format(self.pending_size, "f"),
                "working_leg": msgspec.to_builtins(self.working_leg),
                "working_phase": None if self.working_phase is None else self.working_phase.value,
                "working_filled": format(self.working_filled, "f"), "working_status": self.working_status,
                "working_attempts": self.working_attempts, "working_retry_at_ms": self.working_retry_at_ms,
                "list_id": self.list_id, "exits": msgspec.to_builtins(self.exits)}

    @classmethod
    def from_body(cls, row: ContingentRow, body: dict[str, Any]) -> Self:
        """Rebuild from a stored row."""
        leg = body.get("working_leg")
        phase = body.get("working_phase")
        return cls(**cls.common_of(row), working=msgspec.convert(body["working"], OrderIntent),
                   pending_size=Decimal(body["pending_size"]),
                   working_leg=None if leg is None else msgspec.convert(leg, ExitLeg),
                   working_phase=None if phase is None else Phase(phase),
                   working_filled=Decimal(body["working_filled"]), working_status=body["working_status"],
                   working_attempts=int(body["working_attempts"]),
                   working_retry_at_ms=int(body["working_retry_at_ms"]), list_id=body["list_id"],
                   exits=msgspec.convert(body["exits"], ExitSet))

    # -- the working order ---------------------------------------------------------------------------
    @property
    def working_id(self) -> str:
        """Client order id of the working order."""
        return self.working.client_order_id

    @property
    def working_final(self) -> bool:
        """True once the working order can fill no more."""
        return self.working_phase in (Phase.FINAL, Phase.DROPPED)

    def _working_send(self, origin_ns: int = 0) -> Effect:
        """The working order as it goes out: the native list, the order itself, or an emulated
        trigger's market/limit child."""
        if self.list_id:
            chunk = self.exits.chunks[0]
            pending = self.exits.legs[0].native_intent(
                self, size=chunk.size, client_order_id=chunk.legs[0].id, intent_id=chunk.legs[0].intent_id,
                protective=self.exits.protective, tag=self.exits.tag)
            return ReleaseList(order_list=OrderList(kind=ListKind.OTO, strategy=self.strategy, symbol=self.symbol,
                                                    orders=(self.working, pending), list_id=self.list_id,
                                                    tag=self.working.tag))
        if self.working_leg is not None:
            return Release(intent=self.working_leg.child_intent(
                self, size=self.working.size or ZERO, client_order_id=self.working_id,
                intent_id=self.working.intent_id, origin_ns=origin_ns, protective=False, tag=self.working.tag))
        return Release(intent=self.working)

    def start(self, ctx: BookContext) -> list[Effect]:
        """Release the working order (written ahead), or arm its emulated trigger."""
        before = self.status
        self.status = _S.WORKING
        effects: list[Effect] = [Notice(event="contingent.started", fields={
            "id": self.id, "kind": self.kind.value, "mode": self.mode.value, "working": self.working_id})]
        if self.working_leg is None:
            self.working_phase = Phase.SENT
            effects.append(self._working_send())
        return self._emit(ctx, effects, before, durable=True)

    def on_market(self, event: MarketEvent, ctx: BookContext) -> list[Effect]:
        """The working order's trigger, then the pending legs."""
        leg = self.working_leg
        if self.active and leg is not None and leg.check(event) and self.working_phase is None:
            before = self.status
            leg.armed = False
            self.working_phase = Phase.SENT
            notice = Notice(event="contingent.triggered", fields={"id": self.id, "leg": "working",
                                                                 "price": str(leg.last), "trigger": str(leg.level)})
            return self._emit(ctx, [notice, self._working_send(event.recv_ns)], before, durable=True)
        return super().on_market(event, ctx)

    def on_order_event(self, event: OrderEvent, ctx: BookContext) -> list[Effect]:
        """The working order's progress feeds the pending order; the pending order's own events."""
        if not self.active or event.client_order_id != self.working_id:
            return super().on_order_event(event, ctx)
        before = self.status
        return self._emit(ctx, self._on_working(event, ctx), before, durable=event.status in TERMINAL_STATUSES)

    def _on_working(self, event: OrderEvent, ctx: BookContext) -> list[Effect]:
        self.working_filled = max(self.working_filled, event.filled)
        self.working_status = event.status.value
        if self.working_phase is Phase.RETRY:
            self.working_phase = Phase.SENT
        effects: list[Effect] = []
        if event.status in TERMINAL_STATUSES:
            self.working_phase = Phase.FINAL
            if (event.reason == UNSUPPORTED_ORDER_TYPE and self.working_filled == 0
                    and ctx.settings().fallback_to_emulation):
                effects += self._emulate_working(ctx)
            elif self.list_id and self.working_filled > 0 and event.status is not OrderStatus.FILLED:
                effects += self._take_over_pending()
        return effects + self.exits.cover(self.target(), self, ctx)

    def _take_over_pending(self) -> list[Effect]:
        """The list's working order ended partly filled: the venue drops the pending order with the
        list (it waits for a full fill), so the pending set emulates it for the filled part."""
        dropped = [ch for ch in self.exits.chunks if ch.external and ch.phase is Phase.SENT and ch.filled == 0]
        if not dropped:
            return []  # the pending order's own end came first: the set took over then
        for chunk in dropped:
            chunk.phase = Phase.DROPPED
        self.exits.arm()
        return [Notice(event="contingent.oto_pending_emulated", fields={
            "id": self.id, "working_status": self.working_status, "working_filled": text(self.working_filled),
            "pending": [nl.id for ch in dropped for nl in ch.legs]})]

    def _emulate_working(self, ctx: BookContext) -> list[Effect]:
        """The venue does not run the native working order (or list): emulate it under a new id."""
        old = self.working_id
        self.working = msgspec.structs.replace(self.working, client_order_id=ctx.new_id())
        if self.list_id:
            self.list_id = ""
            for chunk in self.exits.chunks:
                if chunk.phase is Phase.SENT:
                    chunk.phase = Phase.DROPPED  # rejected with the list: the pending set emulates
            self.exits.arm()
        effects: list[Effect] = [Notice(event="contingent.native_refused_emulating", level="warning",
                                        fields={"id": self.id, "client_order_id": old,
                                                "new_client_order_id": self.working_id})]
        self.working_status = ""
        wleg = ExitLeg.of("working", self.working)
        if wleg.plain:
            self.working_phase = Phase.SENT
            effects.append(self._working_send())
        else:
            wleg.armed = True
            self.working_leg, self.working_phase = wleg, None
        return effects

    def on_denied(self, denied: OrderDenied, ctx: BookContext) -> list[Effect]:
        """The working order (or the native list) denied: a triggered working child is retried;
        else the OTO fails. A pending order's denial: see ``ExitSet.on_denied``."""
        coid = denied.intent.client_order_id
        pending_of_list = bool(self.list_id) and any(nl.id == coid for ch in self.exits.chunks for nl in ch.legs)
        if not self.active or (coid != self.working_id and not pending_of_list):
            return super().on_denied(denied, ctx)
        before = self.status
        self.working_attempts += 1
        settings = ctx.settings()
        if self.working_leg is not None and self.working_attempts < settings.max_child_attempts:
            self.working_phase = Phase.RETRY
            self.working_retry_at_ms = ctx.now_ms() + int(settings.child_retry_s * 1000)
            return self._emit(ctx, [Notice(event="contingent.child_denied", level="warning", fields={
                "id": self.id, "client_order_id": coid, "reason": denied.reason})], before, durable=True)
        self.working_phase = Phase.DROPPED
        self.working_status = OrderStatus.DENIED.value
        for chunk in self.exits.chunks:
            if chunk.external and chunk.phase is Phase.SENT:
                chunk.phase = Phase.DROPPED  # denied with its list: never reached the venue
        self.reason = f"denied:{denied.reason}"
        return self._emit(ctx, [], before, durable=True)

    def on_timer(self, now_ms: int, ctx: BookContext) -> list[Effect]:
        """A denied working child again (while its trigger holds, else re-armed); pending retries."""
        leg = self.working_leg
        if self.active and leg is not None and self.working_phase is Phase.RETRY and self.working_retry_at_ms <= now_ms:
            before = self.status
            if leg.holds():
                self.working_phase = Phase.SENT
                return self._emit(ctx, [self._working_send()], before, durable=True)
            self.working_phase, leg.armed = None, True
            return self._emit(ctx, [], before, durable=True)
        return super().on_timer(now_ms, ctx)

    def deadline_ms(self) -> int | None:
        """The next retry (working or pending)."""
        due = [d for d in (super().deadline_ms(),) if d is not None]
        if self.active and self.working_phase is Phase.RETRY:
            due.append(self.working_retry_at_ms)
        return min(due) if due else None

    def watches_market(self) -> bool:
        """True while the working trigger or a pending leg is armed (or a retry waits)."""
        wleg = self.working_leg
        return super().watches_market() or (self.active and wleg is not None and (
            wleg.armed or self.working_phase is Phase.RETRY))

    # -- status --------------------------------------------------------------------------------------
    def settle(self, ctx: BookContext) -> list[Effect]:
        """FAILED/CANCELED when the working order ends unfilled; DONE once the pending quantity is filled."""
        if not self.active:
            return []
        if self.exits.failed:
            return self._cancel_working("pending_failed") + self._finish(_S.FAILED, self.exits.failed, ctx)
        if self.working_final and self.working_filled == 0:
            status = _S.FAILED if self.working_status in _FAILED_ENDS else _S.CANCELED
            return self._finish(status, self.reason or f"working_{self.working_status.lower()}", ctx)
        if self.working_final and self.exits.exits_filled >= self.target() and not self.exits.children_in_flight:
            return self._finish(_S.DONE, "", ctx)
        triggered = self.working_leg is not None and self.working_phase in (Phase.SENT, Phase.RETRY)
        self.status = _S.TRIGGERED if triggered and self.working_filled == 0 else self._working_status()
        return []

    def _cancel_working(self, reason: str) -> list[Effect]:
        if self.working_phase is Phase.SENT and self.working_status not in {s.value for s in TERMINAL_STATUSES}:
            return [CancelChild(client_order_id=self.working_id, reason=reason)]
        return []

    def cancel(self, reason: str, ctx: BookContext) -> list[Effect]:
        """Disarm; cancel the working order and pending orders still open."""
        if not self.active:
            return []
        before = self.status
        if self.working_leg is not None:
            self.working_leg.armed = False
        effects = self._cancel_working(reason)
        if self.working_phase in (None, Phase.RETRY):
            self.working_phase = Phase.DROPPED
        return self._emit(ctx, effects + self._finish(_S.CANCELED, reason, ctx), before, durable=True)

    def resume(self, lookup: OrderLookup, ctx: BookContext) -> list[Effect]:
        """The pending set's orders first, then the working order (released again if the order
        manager never got it): a pending order the working order's catch-up releases is new, so
        it is not released a second time as one the order manager never got."""
        if not self.active:
            return []
        before = self.status
        effects = self.exits.resume(lookup, self, ctx)
        if self.working_phase is Phase.SENT:
            rec = lookup(self.working_id)
            if rec is None:
                effects.append(self._working_send())
            else:
                effects += self._on_working(event_of(rec, self.id), ctx)
        effects += self.exits.cover(self.target(), self, ctx)
        return self._emit(ctx, effects, before, durable=True)

    def child_ids(self) -> list[str]:
        """The working order and every pending order."""
        return [self.working_id, *self.exits.child_ids()]

    def view(self) -> ContingentView:
        """Legs ``working`` and ``pending``."""
        w = self.working
        wleg = self.working_leg
        status = self.working_status or ("armed" if wleg is not None and wleg.armed else
                                         self.working_phase.value if self.working_phase else "pending")
        working = LegView(
            name="working", type=w.type.value, side=w.side.value, status=status,
            size=None if w.size is None else format(w.size, "f"), filled=format(self.working_filled, "f"),
            trigger_price=None if wleg is None or wleg.level is None else format(wleg.level, "f"),
            limit_price=None if w.limit_price is None else format(w.limit_price, "f"),
            trailing=None if wleg is None else wleg.trailing_text(), client_order_ids=(self.working_id,))
        return self._view((working, *self._exit_views()), self.target() - self.exits.exits_filled)

