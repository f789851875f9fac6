"""The iceberg: a limit order shown a slice at a time, and the slice bookkeeping it shares with TWAP.

Native where the venue has a display size (one limit order with ``display_size``: the venue
shows that much and refills it); emulated otherwise: limit slices of the display size at the
order's price, each sent once the previous one filled, the remainder last. Every slice's
client order id is written ahead (a durable ``Persist``) before its ``Release``, so after a
restart a slice is either unknown to the order manager (released again under the same id)
or known (its fills are taken from the order manager's record, never sent twice).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, Self

from actors.contingent.base import BookContext, ContingentOrder, OrderLookup, str_or_none
from actors.contingent.effects import CancelChild, Effect, Notice, Release
from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus, ContingentView, LegView
from actors.model.orders import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    ApprovedIntent,
    ExecutionMode,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
)
from actors.model.positions import round_down
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE

__all__ = ["Iceberg", "SliceState", "round_down", "sliced_view"]

_ZERO = Decimal(0)


@dataclasses.dataclass(slots=True)
class SliceState:
    """One venue order a sliced order sent: a slice, or the single native order.

    ``status`` INITIALIZED: written ahead and released, no event seen yet (after a restart,
    unknown to the order manager means never sent). DENIED: the risk gate refused it.
    ``filled`` is cumulative (the order manager's ``filled``). ``attempts``: releases so far.
    """

    client_order_id: str
    n: int
    size: Decimal
    filled: Decimal = _ZERO
    status: OrderStatus = OrderStatus.INITIALIZED
    reason: str = ""
    attempts: int = 1

    @property
    def in_flight(self) -> bool:
        """True while the venue may still act on it (or it is on its way there)."""
        return self.status is OrderStatus.INITIALIZED or self.status in OPEN_STATUSES

    @property
    def final(self) -> bool:
        """True once filled, cancelled, expired, rejected or denied."""
        return self.status in TERMINAL_STATUSES

    def take(self, status: OrderStatus, filled: Decimal, reason: str) -> bool:
        """Apply an order event or record (cumulative ``filled``); True when anything changed.

        A final status is kept: a late or repeated event never reopens a slice.
        """
        before = (self.status, self.filled, self.reason)
        self.filled = max(self.filled, filled)
        if not self.final:
            self.status = status
            self.reason = reason or self.reason
        return (self.status, self.filled, self.reason) != before

    def to_body(self) -> dict[str, Any]:
        """JSON-able form (decimals as strings)."""
        return {"id": self.client_order_id, "n": self.n, "size": format(self.size, "f"),
                "filled": format(self.filled, "f"), "status": self.status.value, "reason": self.reason,
                "attempts": self.attempts}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> SliceState:
        """Rebuild from ``to_body``."""
        return cls(client_order_id=str(body["id"]), n=int(body["n"]), size=Decimal(body["size"]),
                   filled=Decimal(body["filled"]), status=OrderStatus(body["status"]),
                   reason=str(body.get("reason", "")), attempts=int(body.get("attempts", 1)))

    def leg(self, name: str, type: OrderType, side: Side, price: Decimal | None = None) -> LegView:
        """This slice as operators see it."""
        return LegView(name=name, type=type.value, side=side.value, status=self.status.value,
                       size=format(self.size, "f"), filled=format(self.filled, "f"),
                       limit_price=str_or_none(price), client_order_ids=(self.client_order_id,))


def sliced_view(order: ContingentOrder, legs: tuple[LegView, ...]) -> ContingentView:
    """The operators' view of a sliced order with its legs."""
    return ContingentView(id=order.id, strategy=order.strategy, symbol=order.symbol, kind=order.kind.value,
                          mode=order.mode.value, status=order.status.value, reason=order.reason, legs=legs,
                          created_ms=order.created_ms, updated_ms=order.updated_ms)


class Iceberg(ContingentOrder):
    """A limit order of ``size`` at ``price`` that shows at most ``display_size`` at a time.

    ``native``: the single venue order (native mode, or the one the venue refused before the
    fallback to emulation); ``slices``: the emulated slices, in order, the last one current.
    ``retry_at_ms``: business time the current (denied) release is sent again.
    """

    kind = ContingentKind.ICEBERG

    def __init__(self, *, side: Side, size: Decimal, price: Decimal, display_size: Decimal, tag: str = "",
                 intent_id: str = "", native: SliceState | None = None, slices: list[SliceState] | None = None,
                 retry_at_ms: int | None = None, **common: Any) -> None:
        super().__init__(**common)
        self.side = side
        self.size = size
        self.price = price
        self.display_size = display_size
        self.tag = tag
        self.intent_id = intent_id
        self.native = native
        self.slices: list[SliceState] = slices if slices is not None else []
        self.retry_at_ms = retry_at_ms

    @classmethod
    def from_approved(cls, approved: ApprovedIntent, ctx: BookContext) -> Self:
        """A new iceberg for an approved LIMIT intent with ``display_size`` (PENDING; ``start`` sends).

        Native when ``[orders] native = "auto"`` and the venue has icebergs, emulated otherwise.
        """
        intent = approved.intent
        if intent.type is not OrderType.LIMIT or intent.display_size is None or intent.limit_price is None:
            raise ValueError("an iceberg is a LIMIT intent with a limit_price and a display_size")
        native = ctx.native_enabled and ctx.support.iceberg
        now = ctx.now_ms()
        return cls(id=ctx.new_id(), strategy=intent.strategy, symbol=intent.symbol,
                   mode=ExecutionMode.NATIVE if native else ExecutionMode.EMULATED, created_ms=now,
                   updated_ms=now, side=intent.side, size=approved.size, price=intent.limit_price,
                   display_size=intent.display_size, tag=intent.tag, intent_id=intent.intent_id)

    # -- persistence -------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """Own state (decimals as strings)."""
        return {"reason": self.reason, "side": self.side.value, "size": format(self.size, "f"),
                "price": format(self.price, "f"), "display_size": format(self.display_size, "f"),
                "tag": self.tag, "intent_id": self.intent_id,
                "native": None if self.native is None else self.native.to_body(),
                "slices": [s.to_body() for s in self.slices], "retry_at_ms": self.retry_at_ms}

    @classmethod
    def from_body(cls, row: ContingentRow, body: dict[str, Any]) -> Self:
        """Rebuild from a stored row."""
        native = body.get("native")
        retry = body.get("retry_at_ms")
        return cls(**cls.common_of(row), side=Side(body["side"]), size=Decimal(body["size"]),
                   price=Decimal(body["price"]), display_size=Decimal(body["display_size"]),
                   tag=str(body.get("tag", "")), intent_id=str(body.get("intent_id", "")),
                   native=None if native is None else SliceState.from_body(native),
                   slices=[SliceState.from_body(s) for s in body.get("slices", [])],
                   retry_at_ms=None if retry is None else int(retry))

    # -- state -------------------------------------------------------------------------------
    @property
    def filled(self) -> Decimal:
        """Total filled so far (the native order's, or the slices')."""
        return sum((s.filled for s in self._all()), _ZERO)

    def _all(self) -> list[SliceState]:
        return ([self.native] if self.native is not None else []) + self.slices

    def _current(self) -> SliceState | None:
        if self.mode is ExecutionMode.NATIVE:
            return self.native
        return self.slices[-1] if self.slices else None

    def _find(self, client_order_id: str) -> SliceState | None:
        return next((s for s in self._all() if s.client_order_id == client_order_id), None)

    def _intent(self, sl: SliceState) -> OrderIntent:
        native = sl is self.native
        return OrderIntent(strategy=self.strategy, symbol=self.symbol, side=self.side, type=OrderType.LIMIT,
                           size=sl.size, limit_price=self.price, tag=self.tag,
                           intent_id=f"{self.id}:{'order' if native else 'slice'}:{sl.n}",
                           display_size=self.display_size if native else None,
                           client_order_id=sl.client_order_id, parent=self.id)

    def _finish(self, status: ContingentStatus, reason: str, ctx: BookContext) -> list[Effect]:
        self.status = status
        self.reason = reason
        self.retry_at_ms = None
        return [self.persist(ctx)]

    def _next_slice(self, ctx: BookContext) -> list[Effect]:
        """Write ahead and release the next slice (display size, the remainder last, down to the step)."""
        remaining = self.size - self.filled
        step = ctx.step_size(self.symbol)
        size = round_down(min(self.display_size, remaining), step)
        if size <= 0:
            # Only possible when the size or the display size is not a multiple of the step.
            if remaining < step:
                return [Notice(event="contingent.iceberg_remainder_below_step", level="warning",
                               fields={"id": self.id, "remaining": str(remaining), "step": str(step)}),
                        *self._finish(ContingentStatus.DONE, "remainder_below_step", ctx)]
            return self._finish(ContingentStatus.FAILED, "display_below_step", ctx)
        sl = SliceState(client_order_id=ctx.new_id(), n=len(self.slices), size=size)
        self.slices.append(sl)
        return [self.persist(ctx), Release(intent=self._intent(sl))]

    # -- handlers ----------------------------------------------------------------------------
    def start(self, ctx: BookContext) -> list[Effect]:
        """Send the native order, or the first slice (written ahead first)."""
        self.status = ContingentStatus.WORKING
        if self.mode is ExecutionMode.NATIVE:
            self.native = SliceState(client_order_id=ctx.new_id(), n=0, size=self.size)
            return [self.persist(ctx), Release(intent=self._intent(self.native))]
        return self._next_slice(ctx)

    def on_order_event(self, event: OrderEvent, ctx: BookContext) -> list[Effect]:
        """A slice's (or the native order's) event: fills, the next slice, the end."""
        sl = self._find(event.client_order_id)
        if sl is None:
            return []
        return self._apply(sl, event.status, event.filled, event.reason, ctx)

    def _apply(self, sl: SliceState, status: OrderStatus, filled: Decimal, reason: str,
               ctx: BookContext) -> list[Effect]:
        was_sent_only = sl.status is OrderStatus.INITIALIZED
        if not sl.take(status, filled, reason):
            return []
        if not self.active:
            if self.status is ContingentStatus.CANCELED and was_sent_only and sl.in_flight:
                # It reached the venue after our cancel (the order manager may not have known it then).
                return [self.persist(ctx, durable=False),
                        CancelChild(client_order_id=sl.client_order_id, reason=self.reason)]
            return [self.persist(ctx, durable=False)]
        if sl is not self._current():
            return [self.persist(ctx, durable=False)]
        if sl is self.native:
            return self._native_update(sl, ctx)
        if sl.status is OrderStatus.FILLED:
            if self.filled >= self.size:
                return self._finish(ContingentStatus.DONE, "", ctx)
            return self._next_slice(ctx)
        if sl.final:
            detail = f":{sl.reason}" if sl.reason else ""
            return self._finish(ContingentStatus.FAILED, f"slice_{sl.status.value.lower()}{detail}", ctx)
        return [self.persist(ctx, durable=False)]

    def _native_update(self, sl: SliceState, ctx: BookContext) -> list[Effect]:
        if sl.status is OrderStatus.FILLED:
            return self._finish(ContingentStatus.DONE, "", ctx)
        if sl.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
            return self._finish(ContingentStatus.CANCELED, sl.reason or sl.status.value.lower(), ctx)
        if sl.status is OrderStatus.REJECTED:
            if sl.reason == UNSUPPORTED_ORDER_TYPE and ctx.settings().fallback_to_emulation:
                self.mode = ExecutionMode.EMULATED
                notice = Notice(event="contingent.native_refused_emulating", level="warning",
                                fields={"id": self.id, "kind": self.kind.value, "symbol": self.symbol,
                                        "reason": sl.reason})
                return [notice, *self._next_slice(ctx)]
            return self._finish(ContingentStatus.FAILED, f"rejected:{sl.reason}", ctx)
        return [self.persist(ctx, durable=False)]

    def on_denied(self, denied: OrderDenied, ctx: BookContext) -> list[Effect]:
        """The risk gate refused the current release: send it again (same id) after ``child_retry_s``."""
        sl = self._find(denied.intent.client_order_id)
        if sl is None or sl is not self._current() or not self.active or not sl.in_flight:
            return []
        sl.status = OrderStatus.DENIED
        sl.reason = denied.reason
        settings = ctx.settings()
        if sl.attempts >= settings.max_child_attempts:
            return self._finish(ContingentStatus.FAILED, f"child_denied:{denied.reason}", ctx)
        self.retry_at_ms = ctx.now_ms() + int(settings.child_retry_s * 1000)
        return [Notice(event="contingent.child_denied", level="warning",
                       fields={"id": self.id, "client_order_id": sl.client_order_id, "reason": denied.reason,
                               "attempts": sl.attempts}),
                self.persist(ctx, durable=False)]

    def deadline_ms(self) -> int | None:
        """When a denied release is sent again."""
        return self.retry_at_ms if self.active else None

    def on_timer(self, now_ms: int, ctx: BookContext) -> list[Effect]:
        """Send the denied release again under the same client order id."""
        sl = self._current()
        if self.retry_at_ms is None or now_ms < self.retry_at_ms or not self.active or sl is None:
            return []
        self.retry_at_ms = None
        if sl.status is not OrderStatus.DENIED:
            return []
        sl.status = OrderStatus.INITIALIZED
        sl.reason = ""
        sl.attempts += 1
        return [self.persist(ctx), Release(intent=self._intent(sl))]

    def cancel(self, reason: str, ctx: BookContext) -> list[Effect]:
        """Cancel the open slice (or native order); CANCELED."""
        if not self.active:
            return []
        open_ids = [s.client_order_id for s in self._all() if s.in_flight]
        effects = self._finish(ContingentStatus.CANCELED, reason, ctx)
        return effects + [CancelChild(client_order_id=c, reason=reason) for c in open_ids]

    def resume(self, lookup: OrderLookup, ctx: BookContext) -> list[Effect]:
        """Catch up with the order manager: the current slice's fills, or send it again if it never left."""
        if not self.active:
            return []
        sl = self._current()
        if sl is None:
            return self.start(ctx)
        if not sl.in_flight:
            return []  # denied, waiting for its retry deadline
        record = lookup(sl.client_order_id)
        if record is None:
            if sl.status is OrderStatus.INITIALIZED:
                return [Release(intent=self._intent(sl))]
            return []
        return self._apply(sl, record.status, record.filled, record.reason, ctx)

    def child_ids(self) -> list[str]:
        """The native order's and every slice's client order id."""
        return [s.client_order_id for s in self._all()]

    def view(self) -> ContingentView:
        """One leg per slice (``slice``) or the native order (``order``)."""
        legs: list[LegView] = []
        if self.native is not None:
            legs.append(self.native.leg("order", OrderType.LIMIT, self.side, self.price))
        legs += [s.leg("slice", OrderType.LIMIT, self.side, self.price) for s in self.slices]
        return sliced_view(self, tuple(legs))
