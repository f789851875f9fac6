"""Single trigger orders: a stop, a take-profit or a trailing stop protecting one position.

Native where the venue has the type (``native_possible``): the conditional order itself is
written ahead under a fresh client order id and released to the venue, which holds the
trigger; this order only follows its events. Emulated otherwise: the trigger is armed here
and evaluated on every market event of the symbol; once crossed, the child (a market order,
or a limit order at ``limit_price`` for the limit types) is written ahead and released.

A moving trailing level is saved behind (``Persist(durable=False)``) at most every
``trailing_persist_interval_s`` of process time: after a crash it resumes from the last
save, at most that much looser. The trigger's own write-ahead always carries the level.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, ClassVar, Self, cast

import msgspec

from actors.contingent.base import BookContext, ContingentOrder, OrderLookup, dec_or_none, str_or_none
from actors.contingent.effects import CancelChild, Effect, Notice, Persist, Release
from actors.contingent.triggers import TrailingState, crossed, trail, trail_crossed, watched_price
from actors.kernel.clock import monotonic
from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus, ContingentView, LegView
from actors.model.market import MarketEvent
from actors.model.orders import (
    CONDITIONAL_TYPES,
    OPEN_STATUSES,
    PRICED_TYPES,
    STOP_TYPES,
    ApprovedIntent,
    ExecutionMode,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderStatus,
    OrderType,
)
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE

__all__ = [
    "StopOrder",
    "TakeProfitOrder",
    "TrailingStopOrder",
    "TriggerOrder",
    "native_possible",
    "trigger_class",
    "trigger_kind",
]

_ZERO = Decimal(0)
_LEG = "order"
_S = ContingentStatus
#: Venue-order states after which the child (or native order) can do nothing more.
_ENDED = frozenset({OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED, OrderStatus.REJECTED,
                    OrderStatus.DENIED})


def trigger_kind(intent: OrderIntent) -> ContingentKind:
    """The kind of trigger order ``intent`` asks for (ValueError when it is none)."""
    if intent.trailing is not None:
        return ContingentKind.TRAILING_STOP
    if intent.type in STOP_TYPES:
        return ContingentKind.STOP
    if intent.type in CONDITIONAL_TYPES:
        return ContingentKind.TAKE_PROFIT
    raise ValueError(f"a {intent.type.value} intent without trailing is not a trigger order")


def native_possible(intent: OrderIntent, ctx: BookContext) -> bool:
    """True when the venue runs this trigger itself: native enabled, its type supported and, for a
    trailing stop, a trailing delta in basis points (a price offset is always emulated)."""
    if not ctx.native_enabled or intent.type not in ctx.support.order_types:
        return False
    spec = intent.trailing
    if spec is None:
        return True
    return ctx.support.trailing_bps and spec.offset_bps is not None and spec.offset is None


def _state_body(state: TrailingState) -> dict[str, Any]:
    return {"active": state.active, "extreme": str_or_none(state.extreme), "level": str_or_none(state.level)}


def _state_of(body: Any) -> TrailingState:
    if not isinstance(body, dict):
        return TrailingState()
    return TrailingState(active=bool(body.get("active", False)), extreme=dec_or_none(body.get("extreme")),
                         level=dec_or_none(body.get("level")))


class TriggerOrder(ContingentOrder):
    """One conditional order (see the module docstring); concrete kinds below set ``kind``.

    State: the strategy's ``intent`` and approved ``size``; ``child_id`` is the client order id
    of the venue order working for it now (the native order, or the emulated trigger's child;
    "" while armed), ``child_seq`` how many distinct ids it used, ``filled`` that order's
    cumulative fill, ``attempts`` the releases of the current id (risk-gate denials retry
    after ``child_retry_s``, ``retry_at_ms``), ``retired_ids`` ids it will never use again
    (a refused native order, a denied child before re-arming), ``trail_state`` a trailing
    stop's progress, ``seen_price`` the price that fired the trigger.
    """

    def __init__(self, *, intent: OrderIntent, size: Decimal, reference_price: Decimal = _ZERO,
                 child_id: str = "", child_seq: int = 0, filled: Decimal = _ZERO,
                 child_status: OrderStatus | None = None, attempts: int = 0, retry_at_ms: int | None = None,
                 retired_ids: Iterable[str] = (), trail_state: TrailingState | None = None,
                 seen_price: Decimal | None = None, **common: Any) -> None:
        super().__init__(**common)
        self.intent = intent
        self.size = size
        self.reference_price = reference_price
        self.child_id = child_id
        self.child_seq = child_seq
        self.filled = filled
        self.child_status = child_status
        self.attempts = attempts
        self.retry_at_ms = retry_at_ms
        self.retired_ids = list(retired_ids)
        self.trail_state = trail_state if trail_state is not None else TrailingState()
        self.seen_price = seen_price
        # In memory only: the latest watched price (a denied release is retried only while the
        # trigger still holds at it; after a restart, the price that fired it), and the
        # write-behind throttle of a moving trailing level (process time of the last save).
        self._last_price: Decimal | None = seen_price
        self._level_dirty = False
        self._saved_at = 0.0

    # -- construction and persistence -----------------------------------------------------------
    @classmethod
    def from_approved(cls, approved: ApprovedIntent, ctx: BookContext) -> Self:
        """A new trigger order for an approved conditional intent (mode chosen here).

        On ``TriggerOrder`` itself it picks the kind (``trigger_class``); on a kind it checks it.
        """
        intent = approved.intent
        if cls is TriggerOrder:  # the family: pick the concrete kind
            return cast(Self, trigger_class(intent).from_approved(approved, ctx))
        kind = trigger_kind(intent)
        if kind is not cls.kind:
            raise ValueError(f"{cls.__name__} cannot hold a {kind.value} intent")
        if intent.trailing is None and intent.trigger_price is None:
            raise ValueError(f"a {intent.type.value} intent needs a trigger price")
        now = ctx.now_ms()
        mode = ExecutionMode.NATIVE if native_possible(intent, ctx) else ExecutionMode.EMULATED
        return cls(id=ctx.new_id(), strategy=intent.strategy, symbol=intent.symbol, mode=mode, created_ms=now,
                   updated_ms=now, intent=intent, size=approved.size, reference_price=approved.reference_price)

    def body(self) -> dict[str, Any]:
        """This order's state as JSON-able builtins."""
        return {
            "intent": msgspec.to_builtins(self.intent),
            "size": str_or_none(self.size),
            "reference_price": str_or_none(self.reference_price),
            "child_id": self.child_id,
            "child_seq": self.child_seq,
            "filled": str_or_none(self.filled),
            "child_status": self.child_status.value if self.child_status is not None else None,
            "attempts": self.attempts,
            "retry_at_ms": self.retry_at_ms,
            "retired_ids": list(self.retired_ids),
            "trail": _state_body(self.trail_state),
            "seen_price": str_or_none(self.seen_price),
            "reason": self.reason,
        }

    @classmethod
    def from_body(cls, row: ContingentRow, body: dict[str, Any]) -> Self:
        """Rebuild from a stored row and its decoded body."""
        status = body.get("child_status")
        retry = body.get("retry_at_ms")
        return cls(intent=msgspec.convert(body["intent"], OrderIntent), size=Decimal(str(body["size"])),
                   reference_price=dec_or_none(body.get("reference_price")) or _ZERO,
                   child_id=str(body.get("child_id", "")), child_seq=int(body.get("child_seq", 0)),
                   filled=dec_or_none(body.get("filled")) or _ZERO,
                   child_status=OrderStatus(status) if status else None, attempts=int(body.get("attempts", 0)),
                   retry_at_ms=int(retry) if retry is not None else None,
                   retired_ids=[str(i) for i in body.get("retired_ids", ())], trail_state=_state_of(body.get("trail")),
                   seen_price=dec_or_none(body.get("seen_price")), **cls.common_of(row))

    def _save(self, ctx: BookContext, *, durable: bool = True) -> Persist:
        self._level_dirty = False
        self._saved_at = monotonic()
        return self.persist(ctx, durable=durable)

    # -- what it sends ------------------------------------------------------------------------------
    def _intent_id(self) -> str:
        return f"{self.id}:{_LEG}:{self.child_seq}"

    def _native_intent(self) -> OrderIntent:
        """The conditional intent itself, under our client order id, for the venue to hold."""
        return msgspec.structs.replace(self.intent, size=self.size, notional=None, intent_id=self._intent_id(),
                                       origin_ns=0, client_order_id=self.child_id, parent=self.id, protective=True)

    def _child_intent(self, origin_ns: int) -> OrderIntent:
        """The order an emulated trigger releases: market, or limit at ``limit_price``."""
        intent = self.intent
        limit = intent.type in PRICED_TYPES
        return OrderIntent(strategy=intent.strategy, symbol=intent.symbol, side=intent.side,
                           type=OrderType.LIMIT if limit else OrderType.MARKET, size=self.size,
                           limit_price=intent.limit_price if limit else None, tag=intent.tag,
                           intent_id=self._intent_id(), origin_ns=origin_ns, trigger=intent.trigger,
                           client_order_id=self.child_id, parent=self.id, protective=True)

    def _release(self, origin_ns: int = 0) -> Release:
        if self.mode is ExecutionMode.NATIVE:
            return Release(intent=self._native_intent())
        return Release(intent=self._child_intent(origin_ns))

    def _fields(self, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"contingent_id": self.id, "kind": self.kind.value, "mode": self.mode.value,
                                  "strategy": self.strategy, "symbol": self.symbol}
        if self.child_id:
            fields["child"] = self.child_id
        fields.update(extra)
        return fields

    def _finish(self, status: ContingentStatus, reason: str, ctx: BookContext, level: str = "info") -> list[Effect]:
        self.status = status
        self.reason = reason
        self.retry_at_ms = None
        fields = self._fields(filled=str(self.filled))
        if reason:
            fields["reason"] = reason
        return [self._save(ctx), Notice(event=f"contingent.{status.value.lower()}", fields=fields, level=level)]

    # -- handlers ------------------------------------------------------------------------------------
    def start(self, ctx: BookContext) -> list[Effect]:
        """Native: write the order's id ahead and release it. Emulated: arm (written ahead)."""
        self.status = _S.WORKING
        if self.mode is ExecutionMode.NATIVE:
            self._new_child(ctx)
            return [self._save(ctx), self._release(), Notice(event="contingent.native_sent", fields=self._fields())]
        return [self._save(ctx), Notice(event="contingent.armed", fields=self._fields())]

    def _new_child(self, ctx: BookContext) -> None:
        self.child_seq += 1
        self.child_id = ctx.new_id()
        self.child_status = None
        self.attempts = 1
        self.filled = _ZERO

    def _armed(self) -> bool:
        return self.mode is ExecutionMode.EMULATED and self.status is _S.WORKING

    def _holds(self, price: Decimal) -> bool:
        """True when ``price`` is at or beyond the trigger (after the trailing update)."""
        intent = self.intent
        if intent.trailing is not None:
            return trail_crossed(intent.side, self.trail_state, price)
        assert intent.trigger_price is not None  # checked in from_approved
        return crossed(intent.type, intent.side, intent.trigger_price, price)

    def on_market(self, event: MarketEvent, ctx: BookContext) -> list[Effect]:
        """Armed: follow the trailing level, fire on a crossing. Waiting to retry: note the price."""
        if self.mode is not ExecutionMode.EMULATED:
            return []
        intent = self.intent
        price = watched_price(event, intent.trigger, intent.side)
        if price is None:
            return []
        self._last_price = price
        if self.status is not _S.WORKING:
            return []
        spec = intent.trailing
        if spec is not None:
            state = trail(spec, intent.side, self.trail_state, price)
            if state is not self.trail_state:
                self.trail_state = state
                self._level_dirty = True
        if self._holds(price):
            return self._trigger(price, event.recv_ns, ctx)
        if self._level_dirty and monotonic() - self._saved_at >= ctx.settings().trailing_persist_interval_s:
            return [self._save(ctx, durable=False)]
        return []

    def _trigger(self, price: Decimal, origin_ns: int, ctx: BookContext) -> list[Effect]:
        self.status = _S.TRIGGERED
        self.seen_price = price
        self._new_child(ctx)
        fields = self._fields(price=str(price))
        if self.trail_state.level is not None:
            fields["level"] = str(self.trail_state.level)
        return [self._save(ctx), self._release(origin_ns), Notice(event="contingent.triggered", fields=fields)]

    def on_order_event(self, event: OrderEvent, ctx: BookContext) -> list[Effect]:
        """The native order's or the child's progress; final once it ends."""
        if event.client_order_id != self.child_id or not self.active:
            return []
        if event.filled > self.filled:
            self.filled = event.filled
        self.child_status = event.status
        return self._after_child(event.status, event.reason, ctx)

    def _after_child(self, status: OrderStatus, reason: str, ctx: BookContext) -> list[Effect]:
        if status is OrderStatus.FILLED:
            return self._finish(_S.DONE, "", ctx)
        if status not in _ENDED:
            if self.mode is ExecutionMode.NATIVE and status is OrderStatus.TRIGGERED:
                self.status = _S.TRIGGERED  # the venue fired it; its child is on the book there
                return [self._save(ctx, durable=False)]
            return [self._save(ctx, durable=False)] if status is OrderStatus.PARTIALLY_FILLED else []
        if self.mode is ExecutionMode.NATIVE:
            if status is OrderStatus.REJECTED and reason == UNSUPPORTED_ORDER_TYPE:
                return self._native_refused(reason, ctx)
            if status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
                return self._finish(_S.CANCELED, reason or f"native_{status.value.lower()}", ctx)
            return self._finish(_S.FAILED, reason or f"native_{status.value.lower()}", ctx, "warning")
        if self.filled >= self.size:
            return self._finish(_S.DONE, "", ctx)
        why = f"child_{status.value.lower()}" + (f":{reason}" if reason else "")
        return self._finish(_S.FAILED, why, ctx, "warning")

    def _native_refused(self, reason: str, ctx: BookContext) -> list[Effect]:
        """The venue does not take this type: emulate it (if allowed), else fail."""
        if not ctx.settings().fallback_to_emulation:
            return self._finish(_S.FAILED, reason, ctx, "warning")
        refused = self.child_id
        self.retired_ids.append(refused)
        self.child_id = ""
        self.child_status = None
        self.attempts = 0
        self.filled = _ZERO
        self.mode = ExecutionMode.EMULATED
        self.status = _S.WORKING
        return [self._save(ctx), Notice(event="contingent.native_refused_emulating",
                                        fields=self._fields(refused=refused, reason=reason), level="warning")]

    def on_denied(self, denied: OrderDenied, ctx: BookContext) -> list[Effect]:
        """The risk gate refused the release: retry the same id later, fail after the last attempt."""
        if denied.intent.client_order_id != self.child_id or not self.child_id or not self.active:
            return []
        settings = ctx.settings()
        if self.attempts >= settings.max_child_attempts:
            return self._finish(_S.FAILED, denied.reason, ctx, "warning")
        self.retry_at_ms = ctx.now_ms() + int(settings.child_retry_s * 1000)
        notice = Notice(event="contingent.child_denied", level="warning",
                        fields=self._fields(reason=denied.reason, attempt=self.attempts))
        return [self._save(ctx, durable=False), notice]

    def deadline_ms(self) -> int | None:
        """When a denied release is due again."""
        return self.retry_at_ms if self.active else None

    def on_timer(self, now_ms: int, ctx: BookContext) -> list[Effect]:
        """Release a denied order again (same id) while its trigger still holds; else re-arm."""
        if self.retry_at_ms is None or now_ms < self.retry_at_ms or not self.active:
            return []
        self.retry_at_ms = None
        if self.mode is ExecutionMode.NATIVE or self._last_price is None or self._holds(self._last_price):
            self.attempts += 1
            return [self._save(ctx), self._release(),
                    Notice(event="contingent.child_retry", fields=self._fields(attempt=self.attempts))]
        # The market moved back: the denied id never reached the order manager; arm again.
        self.retired_ids.append(self.child_id)
        self.child_id = ""
        self.status = _S.WORKING
        return [self._save(ctx), Notice(event="contingent.rearmed", fields=self._fields())]

    def cancel(self, reason: str, ctx: BookContext) -> list[Effect]:
        """Disarm; cancel the native order or the child if one may be open at the venue."""
        if not self.active:
            return []
        child_open = bool(self.child_id) and self.retry_at_ms is None and (
            self.child_status is None or self.child_status in OPEN_STATUSES)
        effects = self._finish(_S.CANCELED, reason, ctx)
        if child_open:
            effects.insert(1, CancelChild(client_order_id=self.child_id, reason=reason))
        return effects

    def resume(self, lookup: OrderLookup, ctx: BookContext) -> list[Effect]:
        """Release an order the order manager never saw (same id); take a known one's fills and status."""
        if not self.active:
            return []
        if self.status is _S.PENDING:
            return self.start(ctx)
        if not self.child_id or self.retry_at_ms is not None:
            return []  # armed, or a denied release waiting for its timer
        record = lookup(self.child_id)
        if record is None:
            return [self._release(), Notice(event="contingent.released_again", fields=self._fields())]
        if record.filled > self.filled:
            self.filled = record.filled
        self.child_status = record.status
        return self._after_child(record.status, record.reason, ctx)

    # -- views ------------------------------------------------------------------------------------------
    def child_ids(self) -> Iterable[str]:
        """Every client order id this order used or uses."""
        return (*self.retired_ids, self.child_id) if self.child_id else tuple(self.retired_ids)

    def watches_market(self) -> bool:
        """Armed emulated triggers (and denied ones waiting to retry, which need the price)."""
        return self.mode is ExecutionMode.EMULATED and (
            self.status is _S.WORKING or (self.retry_at_ms is not None and self.active))

    def view(self) -> ContingentView:
        """What operators see: one leg named ``order``."""
        intent = self.intent
        spec = intent.trailing
        level = self.trail_state.level if spec is not None else intent.trigger_price
        trailing = None
        if spec is not None:
            trailing = f"{spec.offset_bps}bps" if spec.offset_bps is not None else str_or_none(spec.offset)
        leg = LegView(name=_LEG, type=intent.type.value, side=intent.side.value,
                      status=self.child_status.value if self.child_status is not None else self.status.value,
                      size=str_or_none(self.size), filled=str(self.filled), trigger_price=str_or_none(level),
                      limit_price=str_or_none(intent.limit_price), trailing=trailing,
                      client_order_ids=tuple(self.child_ids()))
        return ContingentView(id=self.id, strategy=self.strategy, symbol=self.symbol, kind=self.kind.value,
                              mode=self.mode.value, status=self.status.value, trigger=intent.trigger.value,
                              protected=str_or_none(self.size - self.filled) if self.active else None,
                              reason=self.reason, legs=(leg,), created_ms=self.created_ms,
                              updated_ms=self.updated_ms)


class StopOrder(TriggerOrder):
    """A stop-market or stop-limit order (a sell stop below the market protects a long)."""

    kind: ClassVar[ContingentKind] = ContingentKind.STOP


class TakeProfitOrder(TriggerOrder):
    """A take-profit, market or limit (a sell take-profit above the market closes a long in profit)."""

    kind: ClassVar[ContingentKind] = ContingentKind.TAKE_PROFIT


class TrailingStopOrder(TriggerOrder):
    """A trailing stop: its level follows the best price since activation at a fixed offset."""

    kind: ClassVar[ContingentKind] = ContingentKind.TRAILING_STOP


def trigger_class(intent: OrderIntent) -> type[TriggerOrder]:
    """The trigger-order class of ``intent`` (ValueError when it is not a trigger order)."""
    kind = trigger_kind(intent)
    if kind is ContingentKind.TRAILING_STOP:
        return TrailingStopOrder
    return StopOrder if kind is ContingentKind.STOP else TakeProfitOrder
