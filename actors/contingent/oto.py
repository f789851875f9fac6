"""One-triggers-the-other (OTO): a working order and a pending order placed for what it fills."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Self

import msgspec

from actors.contingent.base import BookContext, OrderLookup
from actors.contingent.effects import CancelChild, Effect, Notice, Release, ReleaseList
from actors.contingent.exit_leg import ZERO, Chunk, ExitLeg, NativeLeg, Phase, event_of, text
from actors.contingent.exit_set import ExitSet
from actors.contingent.linked import FAILED_ENDS, LinkedOrder
from actors.contingent.net_fill import BaseFees, sellable
from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus, ContingentView, LegView
from actors.model.market import MarketEvent
from actors.model.orders import (
    TERMINAL_STATUSES,
    ApprovedList,
    ExecutionMode,
    Fill,
    ListKind,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderList,
    OrderStatus,
    OrderType,
    Side,
)
from actors.model.positions import base_asset
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE

__all__ = ["Oto"]

_S = ContingentStatus

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

    A pending *exit* (the other side) of a buy working order follows what the fills credited:
    net of fees charged in the base asset, rounded down to the quantity step (``step``), as a
    bracket's exits do (see ``Bracket.net_filled``). The venue's own list sizes its pending
    order ahead, before any fill: that one is the working order's size.
    """

    kind = ContingentKind.OTO

    def __init__(self, *, working: OrderIntent, pending_size: Decimal, working_leg: ExitLeg | None = None,
                 working_phase: Phase | None = None, working_filled: Decimal = ZERO, working_status: str = "",
                 working_attempts: int = 0, working_retry_at_ms: int = 0, list_id: str = "",
                 step: Decimal = ZERO, working_fees: BaseFees | None = None, **rest: Any) -> None:
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
        self.step = step
        self.working_fees = working_fees or BaseFees()
        self._base = base_asset(self.symbol)

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
                   working_leg=working_leg, list_id=list_id, exits=exits, step=ctx.step_size(ol.symbol))

    @property
    def _nets_fees(self) -> bool:
        """True when the pending order sells what a buy working order bought (see ``net_filled``)."""
        return self.exits.protective and self.working.side is Side.BUY

    @property
    def net_filled(self) -> Decimal:
        """What the working order's fills credited: a buy's net of base-asset fees when the pending
        order is its exit; else what it traded (a sell's fee does not change what a buy-back
        must buy; a pending order on the same side adds to the position, it does not sell it)."""
        if self._nets_fees:
            return self.working_filled - self.working_fees.total
        return self.working_filled

    def target(self) -> Decimal:
        """What the pending order must cover: the working order's (net) fills, capped at its own
        size; an exit's rounded down to the quantity step."""
        if self._nets_fees:
            return min(sellable(self.net_filled, self.step), self.pending_size)
        return min(self.working_filled, self.pending_size)

    def position_left(self) -> Decimal:
        """What the working order credited (up to the pending size) and the pending order did not fill."""
        return min(self.net_filled, self.pending_size) - self.exits.exits_filled

    def fill_sources(self) -> tuple[str, ...]:
        """The working order, when the pending exit is sized net of its base-asset fees."""
        return (self.working_id,) if self._nets_fees else ()

    def restore_fill(self, fill: Fill) -> None:
        """A fill of the working order read back from the store after a restart."""
        self._record_fill(fill)

    def _record_fill(self, fill: Fill | None) -> None:
        if fill is not None and self._nets_fees and fill.client_order_id == self.working_id:
            self.working_fees.record(fill, self._base)

    # -- persistence -------------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """State as builtins."""
        return {"reason": self.reason, "working": msgspec.to_builtins(self.working),
                "pending_size": format(self.pending_size, "f"),
                "working_leg": msgspec.to_builtins(self.working_leg),
                "working_phase": None if self.working_phase is None else self.working_phase.value,
                "working_filled": format(self.working_filled, "f"), "working_status": self.working_status,
                "working_attempts": self.working_attempts, "working_retry_at_ms": self.working_retry_at_ms,
                "list_id": self.list_id, "step": format(self.step, "f"), "working_fees": self.working_fees.body(),
                "exits": msgspec.to_builtins(self.exits)}

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
                   step=Decimal(str(body.get("step", "0"))), working_fees=BaseFees.of(body.get("working_fees")),
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
        self._record_fill(event.fill)
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
            status = _S.FAILED if self.working_status in FAILED_ENDS else _S.CANCELED
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
        return self._view((working, *self._exit_views()), self.position_left())

