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
from actors.contingent.exit_leg import ZERO, ExitLeg, Phase, is_above, text
from actors.contingent.exit_set import ExitSet
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
    OrderStatus,
    OrderType,
)

__all__ = ["FAILED_ENDS", "LinkedOrder", "Oco", "native_exits"]

_S = ContingentStatus
#: Final statuses of an entry or working order that make its contingent order FAILED (else CANCELED).
FAILED_ENDS = frozenset({OrderStatus.REJECTED.value, OrderStatus.DENIED.value})


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
        left = self.position_left()
        # DONE with a position left: a rest below the quantity step (a base-asset fee's odd
        # decimals, a fill not in whole steps) that no order can sell; said, not failed.
        level = "error" if status is _S.FAILED else "warning" if status is _S.DONE and left > 0 else "info"
        return [*effects, Notice(event=f"contingent.{status.value.lower()}", level=level,
                                 fields={"id": self.id, "reason": reason, "position_left": text(left),
                                         "native_open": text(self.exits.native_open)})]

    def position_left(self) -> Decimal:
        """What the exits were to sell and did not (the final log line's ``position_left``)."""
        return self.target() - self.exits.exits_filled

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
