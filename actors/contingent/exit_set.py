"""The exits of a bracket, OCO or OTO: keeping a target quantity covered exactly once,
by emulated legs or by native chunks (``ExitSet``)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import msgspec

from actors.contingent.base import BookContext, ContingentOrder, OrderLookup
from actors.contingent.effects import CancelChild, Effect, Notice, Release, ReleaseList
from actors.contingent.exit_leg import ZERO, Chunk, ExitChild, ExitLeg, NativeLeg, Phase, event_of, is_above, text
from actors.model.market import MarketEvent
from actors.model.orders import (
    TERMINAL_STATUSES,
    ListKind,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderList,
    OrderStatus,
)
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE

__all__ = ["ExitSet"]

class ExitSet(msgspec.Struct, kw_only=True):
    """The engine shared by OCO, OTO and bracket (see the module docstring for its invariant).

    ``native``: new slices of the target go out as native chunks; else emulated legs cover
    them. ``triggered``: the leg that fired last; while no leg is armed, new target quantity
    is released at once as another child of that leg. ``failed``: why it cannot go on (the
    owner turns FAILED).
    """

    legs: list[ExitLeg]
    native: bool = False
    protective: bool = True
    tag: str = ""
    children: list[ExitChild] = msgspec.field(default_factory=list)
    chunks: list[Chunk] = msgspec.field(default_factory=list)
    triggered: str = ""
    seq: int = 0
    failed: str = ""

    # -- quantities ----------------------------------------------------------------------------
    @property
    def exits_filled(self) -> Decimal:
        """Filled by every child and native leg."""
        return sum((c.filled for c in self.children), ZERO) + sum((ch.filled for ch in self.chunks), ZERO)

    @property
    def in_flight(self) -> Decimal:
        """Unfilled rest of the emulated children sent or awaiting a retry."""
        return sum((c.open_rest for c in self.children), ZERO)

    @property
    def native_open(self) -> Decimal:
        """Unfilled rest of the open native chunks."""
        return sum((ch.open_rest for ch in self.chunks), ZERO)

    def uncovered(self, target: Decimal) -> Decimal:
        """Target quantity no order covers (what armed legs watch over)."""
        return target - self.exits_filled - self.in_flight - self.native_open

    @property
    def armed(self) -> bool:
        """True while an emulated leg watches the market."""
        return any(leg.armed for leg in self.legs)

    @property
    def busy(self) -> bool:
        """True while an order of the set may still be open at the venue or is awaiting a retry."""
        return any(c.phase in (Phase.SENT, Phase.RETRY) for c in self.children) or any(
            ch.phase is Phase.SENT for ch in self.chunks)

    @property
    def children_in_flight(self) -> bool:
        """True while an emulated child is sent and not final, or awaiting a retry."""
        return any(c.phase in (Phase.SENT, Phase.RETRY) for c in self.children)

    def leg(self, name: str) -> ExitLeg:
        """The leg called ``name``."""
        return next(leg for leg in self.legs if leg.name == name)

    def child_ids(self) -> Iterator[str]:
        """Ids of every child and native leg."""
        for c in self.children:
            yield c.id
        for ch in self.chunks:
            for nl in ch.legs:
                yield nl.id

    # -- arming ----------------------------------------------------------------------------------
    def arm(self) -> None:
        """Arm the legs (emulation). A plain leg has nothing to watch: it fires at once."""
        self.native = False
        for leg in self.legs:
            if leg.plain:
                self.triggered = leg.name
            else:
                leg.armed = True

    def disarm(self) -> None:
        """Stop watching the market."""
        for leg in self.legs:
            leg.armed = False

    def _next_intent_id(self, owner: ContingentOrder, leg: str) -> str:
        self.seq += 1
        return f"{owner.id}:{leg}:{self.seq}"

    # -- sending ---------------------------------------------------------------------------------
    def cover(self, target: Decimal, owner: ContingentOrder, ctx: BookContext, origin_ns: int = 0) -> list[Effect]:
        """Make sure ``uncovered`` is covered: a new native chunk, nothing (armed legs cover it),
        or one more child of the leg that triggered. The caller persists durably first."""
        qty = self.uncovered(target)
        if qty <= 0 or self.failed:
            return []
        if self.native:
            return [self._new_chunk(qty, owner, ctx)]
        if self.armed:
            return []
        if self.triggered:
            return [self._new_child(self.leg(self.triggered), qty, owner, ctx, origin_ns)]
        self.arm()
        return self.cover(target, owner, ctx, origin_ns) if self.triggered else []

    def _new_child(self, leg: ExitLeg, qty: Decimal, owner: ContingentOrder, ctx: BookContext,
                   origin_ns: int) -> Release:
        child = ExitChild(id=ctx.new_id(), leg=leg.name, size=qty, intent_id=self._next_intent_id(owner, leg.name),
                          origin_ns=origin_ns)
        self.children.append(child)
        return Release(intent=self._child_intent(child, owner))

    def leg_tag(self, leg: str) -> str:
        """An exit order's tag: the list's tag and the leg (``ema.entry:stop_loss``), so reports
        and logs say which exit closed a position."""
        return f"{self.tag}:{leg}" if self.tag else leg

    def _child_intent(self, child: ExitChild, owner: ContingentOrder) -> OrderIntent:
        return self.leg(child.leg).child_intent(owner, size=child.size, client_order_id=child.id,
                                                intent_id=child.intent_id, origin_ns=child.origin_ns,
                                                protective=self.protective, tag=self.leg_tag(child.leg))

    def _new_chunk(self, qty: Decimal, owner: ContingentOrder, ctx: BookContext) -> Effect:
        list_id = ctx.new_id() if len(self.legs) > 1 else ""
        legs = [NativeLeg(id=ctx.new_id(), leg=leg.name, intent_id=self._next_intent_id(owner, leg.name))
                for leg in self.legs]
        chunk = Chunk(size=qty, legs=legs, list_id=list_id)
        self.chunks.append(chunk)
        return self._chunk_effect(chunk, owner)

    def _chunk_effect(self, chunk: Chunk, owner: ContingentOrder) -> Effect:
        intents = tuple(
            self.leg(nl.leg).native_intent(owner, size=chunk.size, client_order_id=nl.id, intent_id=nl.intent_id,
                                           protective=self.protective, tag=self.leg_tag(nl.leg))
            for nl in chunk.legs)
        if len(intents) == 1:
            return Release(intent=intents[0])
        return ReleaseList(order_list=OrderList(kind=ListKind.OCO, strategy=owner.strategy, symbol=owner.symbol,
                                                orders=_above_below(intents), list_id=chunk.list_id, tag=self.tag))

    def fire(self, leg: ExitLeg, target: Decimal, owner: ContingentOrder, ctx: BookContext,
             origin_ns: int) -> list[Effect]:
        """``leg`` crossed: one child for the whole uncovered quantity, every leg disarmed."""
        qty = self.uncovered(target)
        self.disarm()
        self.triggered = leg.name
        release = self._new_child(leg, qty, owner, ctx, origin_ns)
        return [Notice(event="contingent.triggered",
                       fields={"id": owner.id, "leg": leg.name, "price": text(leg.last),
                               "trigger": text(leg.level), "size": text(qty),
                               "client_order_id": release.intent.client_order_id}),
                release]

    # -- market ------------------------------------------------------------------------------------
    def on_market(self, event: MarketEvent, target: Decimal, owner: ContingentOrder,
                  ctx: BookContext) -> tuple[list[Effect], bool]:
        """Watch ``event``: trailing levels follow while a position exists; the first armed leg
        crossed fires. Returns the effects and whether a trailing level moved."""
        position = target - self.exits_filled
        moved = False
        hit: ExitLeg | None = None
        for leg in self.legs:
            price = leg.observe(event)
            if not leg.armed:
                continue
            if price is not None and position > 0:
                moved = leg.follow(price) or moved
            if hit is None and (price is not None or leg.plain) and leg.holds():
                hit = leg
        if hit is None or self.uncovered(target) <= 0:
            return [], moved
        return self.fire(hit, target, owner, ctx, event.recv_ns), moved

    # -- order events ------------------------------------------------------------------------------
    def on_order_event(self, event: OrderEvent, owner: ContingentOrder, ctx: BookContext) -> list[Effect] | None:
        """An event of one of the set's orders (None: not one of them)."""
        coid = event.client_order_id
        for child in self.children:
            if child.id == coid:
                return self._child_event(child, event, owner, ctx)
        for chunk in self.chunks:
            for nl in chunk.legs:
                if nl.id == coid:
                    return self._chunk_event(chunk, nl, event, owner, ctx)
        return None

    def _child_event(self, child: ExitChild, event: OrderEvent, owner: ContingentOrder,
                     ctx: BookContext) -> list[Effect]:
        if child.phase in (Phase.FINAL, Phase.DROPPED):
            child.filled = max(child.filled, min(event.filled, child.size))  # a late fill on a closed order
            return []
        child.filled = max(child.filled, min(event.filled, child.size))
        child.status = event.status.value
        if child.phase is Phase.RETRY:
            child.phase = Phase.SENT  # the order manager has it after all (a resume re-release)
        if event.filled > 0:
            self.leg(child.leg).attempts = 0
        if event.status not in TERMINAL_STATUSES:
            return []
        child.phase = Phase.FINAL
        rest = child.size - child.filled
        if rest <= 0:
            return []
        leg = self.leg(child.leg)
        rejected = event.status in (OrderStatus.REJECTED, OrderStatus.DENIED)
        notice = Notice(event="contingent.exit_rejected" if rejected else "contingent.exit_closed",
                        fields={"id": owner.id, "leg": child.leg, "client_order_id": child.id,
                                "status": event.status.value, "reason": event.reason, "rest": text(rest)},
                        level="error" if rejected else "warning")
        if rejected:
            leg.attempts += 1
            if leg.attempts >= ctx.settings().max_child_attempts:
                self.failed = f"exit_rejected:{event.reason or event.status.value}"
                self.disarm()
                return [notice]
        self.arm()  # the position is still there: watch over the rest again
        return [notice]

    def _chunk_event(self, chunk: Chunk, nl: NativeLeg, event: OrderEvent, owner: ContingentOrder,
                     ctx: BookContext) -> list[Effect]:
        nl.filled = max(nl.filled, event.filled)
        nl.status = event.status.value
        if event.reason:
            nl.reason = event.reason
        if chunk.phase is Phase.RETRY:
            chunk.phase = Phase.SENT
        out: list[Effect] = []
        if event.status in TERMINAL_STATUSES:
            nl.final = True
        if event.status is OrderStatus.FILLED:
            for sib in chunk.legs:
                if not sib.final and not sib.cancel_sent:
                    # The venue expires an OCO sibling itself; if it has not yet, make sure.
                    sib.cancel_sent = True
                    out.append(CancelChild(client_order_id=sib.id, reason="oco_sibling_filled"))
        if chunk.phase is not Phase.SENT or not all(x.final for x in chunk.legs):
            return out
        chunk.phase = Phase.FINAL
        rest = chunk.size - chunk.filled
        if rest <= 0:
            return out
        return out + self._native_lost(chunk, rest, owner, ctx)

    def _native_lost(self, chunk: Chunk, rest: Decimal, owner: ContingentOrder, ctx: BookContext) -> list[Effect]:
        """A native chunk closed with a rest: fall back to emulation (or fail when not allowed)."""
        unsupported = any(nl.reason == UNSUPPORTED_ORDER_TYPE for nl in chunk.legs)
        fields = {"id": owner.id, "legs": [nl.id for nl in chunk.legs], "rest": text(rest),
                  "status": [nl.status for nl in chunk.legs], "reason": [nl.reason for nl in chunk.legs]}
        if unsupported and not ctx.settings().fallback_to_emulation:
            self.failed = UNSUPPORTED_ORDER_TYPE
            return [Notice(event="contingent.native_refused", fields=fields, level="error")]
        self.arm()
        if unsupported:
            return [Notice(event="contingent.native_refused_emulating", fields=fields, level="warning")]
        return [Notice(event="contingent.native_exit_lost_emulating", fields=fields, level="error")]

    # -- risk gate denials and retries -------------------------------------------------------------
    def on_denied(self, denied: OrderDenied, owner: ContingentOrder, ctx: BookContext) -> list[Effect] | None:
        """The risk gate denied one of the set's releases (None: not one of them)."""
        coid = denied.intent.client_order_id
        settings = ctx.settings()
        for child in self.children:
            if child.id != coid:
                continue
            if child.phase is not Phase.SENT:
                return []
            child.attempts += 1
            fields = {"id": owner.id, "leg": child.leg, "client_order_id": coid, "reason": denied.reason,
                      "attempts": child.attempts}
            if child.attempts >= settings.max_child_attempts:
                child.phase = Phase.DROPPED
                self.failed = f"child_denied:{denied.reason}"
                self.disarm()
                return [Notice(event="contingent.child_denied", fields=fields, level="error")]
            child.phase = Phase.RETRY
            child.retry_at_ms = ctx.now_ms() + int(settings.child_retry_s * 1000)
            return [Notice(event="contingent.child_denied", fields=fields, level="warning")]
        for chunk in self.chunks:
            if any(nl.id == coid for nl in chunk.legs):
                if chunk.phase is not Phase.SENT:
                    return []
                # A native exit the gate refuses (a small slice below the minimum, say) would be
                # refused again: cover its quantity by emulation, which sizes at trigger time.
                chunk.phase = Phase.DROPPED
                self.arm()
                return [Notice(event="contingent.native_denied_emulating",
                               fields={"id": owner.id, "client_order_id": coid, "reason": denied.reason},
                               level="warning")]
        return None

    def deadline_ms(self) -> int | None:
        """When the next denied child is due for a retry."""
        due = [c.retry_at_ms for c in self.children if c.phase is Phase.RETRY]
        return min(due) if due else None

    def on_timer(self, now_ms: int, owner: ContingentOrder) -> list[Effect]:
        """Release due children again (same id) while their leg's condition holds; else give
        their quantity back to the armed legs."""
        out: list[Effect] = []
        for child in self.children:
            if child.phase is not Phase.RETRY or child.retry_at_ms > now_ms:
                continue
            if self.leg(child.leg).holds():
                child.phase = Phase.SENT
                out.append(Release(intent=self._child_intent(child, owner)))
            else:
                child.phase = Phase.DROPPED
                self.arm()
                out.append(Notice(event="contingent.retry_dropped",
                                  fields={"id": owner.id, "leg": child.leg, "client_order_id": child.id}))
        return out

    # -- cancel, close, resume -------------------------------------------------------------------
    def close(self, reason: str) -> list[Effect]:
        """Disarm and cancel every order of the set that may still be open (no orphans)."""
        self.disarm()
        out: list[Effect] = []
        for child in self.children:
            if child.phase is Phase.RETRY:
                child.phase = Phase.DROPPED
            elif child.phase is Phase.SENT:
                out.append(CancelChild(client_order_id=child.id, reason=reason))
        for chunk in self.chunks:
            if chunk.phase is Phase.RETRY:
                chunk.phase = Phase.DROPPED
            for nl in chunk.legs:
                if chunk.phase is Phase.SENT and not nl.final and not nl.cancel_sent:
                    nl.cancel_sent = True
                    out.append(CancelChild(client_order_id=nl.id, reason=reason))
        return out

    def resume(self, lookup: OrderLookup, owner: ContingentOrder, ctx: BookContext) -> list[Effect]:
        """Catch up with the order manager: what it never received is released again under the
        same ids; what it knows is applied as if its events had arrived."""
        out: list[Effect] = []
        for child in list(self.children):
            if child.phase is not Phase.SENT:
                continue
            rec = lookup(child.id)
            if rec is None:
                out.append(Release(intent=self._child_intent(child, owner)))
            else:
                out += self._child_event(child, event_of(rec, owner.id), owner, ctx)
        for chunk in list(self.chunks):
            if chunk.phase is not Phase.SENT:
                continue
            recs = [lookup(nl.id) for nl in chunk.legs]
            if all(r is None for r in recs):
                if not chunk.external:
                    out.append(self._chunk_effect(chunk, owner))
                continue
            known = [(nl, rec) for nl, rec in zip(chunk.legs, recs, strict=True) if rec is not None]
            # a filled leg last: a sibling the venue already expired needs no cancel
            for nl, rec in sorted(known, key=lambda pair: pair[1].status is OrderStatus.FILLED):
                out += self._chunk_event(chunk, nl, event_of(rec, owner.id), owner, ctx)
        return out



def _above_below(intents: tuple[OrderIntent, ...]) -> tuple[OrderIntent, ...]:
    """An OCO's legs as (above, below) the market."""
    first, second = intents
    return (first, second) if is_above(first) else (second, first)

