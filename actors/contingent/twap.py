"""TWAP: a market order spread in equal slices over a horizon, always emulated.

The schedule runs in business time from acceptance: ``n = ceil(horizon / interval)`` slices,
slice ``k`` due at ``start + k * interval``. A due slice is what is still unsent divided by
the slices left, rounded down to the quantity step (when the step is unknown: to 1e-8 or
the size's own last digit, whichever is finer, so slice sizes stay exact); with ``max_participation`` it is also
capped at that share of the volume traded on the symbol since the previous slice (the capped
part carries over). A slice of size 0 is skipped. What is unfilled at the horizon is
reported (``horizon_reached``), never forced. Each slice is written ahead before its release.
"""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Decimal, localcontext
from typing import Any, Self

from actors.contingent.base import BookContext, ContingentOrder, OrderLookup
from actors.contingent.effects import CancelChild, Effect, Notice, Release
from actors.contingent.iceberg import SliceState, sliced_view
from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus, ContingentView
from actors.model.market import MarketEvent, Trade
from actors.model.orders import (
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

__all__ = ["Twap"]

_ZERO = Decimal(0)
_MS = Decimal(1000)
#: Finest slice unit when the instrument's step is unknown (a satoshi); coarser sizes keep their own digits.
_FINEST_UNKNOWN_STEP_EXP = -8


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


class Twap(ContingentOrder):
    """A market order of ``size`` sliced every ``interval_s`` over ``horizon_s``.

    ``start_ms``: business time of acceptance (slice 0 is due then). ``next_k``: the next
    slice of the schedule. ``unsent``: size not released yet (capped parts and the size of
    denied or unfilled slices come back here). ``volume``: traded on the symbol since the
    previous slice (counted only with ``max_participation``). ``horizon_passed``: the horizon
    was reached (the order ends once no slice is in flight). ``denials``: consecutive risk
    denials (``max_child_attempts`` of them: FAILED).
    """

    kind = ContingentKind.TWAP

    def __init__(self, *, side: Side, size: Decimal, horizon_s: float, interval_s: float,
                 max_participation: float | None = None, tag: str = "", intent_id: str = "",
                 start_ms: int = 0, next_k: int = 0, unsent: Decimal | None = None, volume: Decimal = _ZERO,
                 horizon_passed: bool = False, denials: int = 0, slices: list[SliceState] | None = None,
                 **common: Any) -> None:
        super().__init__(**common)
        self.side = side
        self.size = size
        # Floats even when built from ints, so the stored body round-trips exactly.
        self.horizon_s = float(horizon_s)
        self.interval_s = float(interval_s)
        self.max_participation = None if max_participation is None else float(max_participation)
        self.tag = tag
        self.intent_id = intent_id
        self.start_ms = start_ms
        self.next_k = next_k
        self.unsent = size if unsent is None else unsent
        self.volume = volume
        self.horizon_passed = horizon_passed
        self.denials = denials
        self.slices: list[SliceState] = slices if slices is not None else []

    @classmethod
    def from_approved(cls, approved: ApprovedIntent, ctx: BookContext) -> Self:
        """A new TWAP for an approved MARKET intent with ``twap`` set (PENDING; ``start`` begins the schedule)."""
        intent = approved.intent
        if intent.type is not OrderType.MARKET or intent.twap is None:
            raise ValueError("a TWAP is a MARKET intent with twap set")
        now = ctx.now_ms()
        spec = intent.twap
        return cls(id=ctx.new_id(), strategy=intent.strategy, symbol=intent.symbol, mode=ExecutionMode.EMULATED,
                   created_ms=now, updated_ms=now, side=intent.side, size=approved.size,
                   horizon_s=spec.horizon_s, interval_s=spec.interval_s, max_participation=spec.max_participation,
                   tag=intent.tag, intent_id=intent.intent_id)

    # -- persistence -------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """Own state (decimals as strings)."""
        return {"reason": self.reason, "side": self.side.value, "size": format(self.size, "f"),
                "horizon_s": self.horizon_s, "interval_s": self.interval_s,
                "max_participation": self.max_participation, "tag": self.tag, "intent_id": self.intent_id,
                "start_ms": self.start_ms, "next_k": self.next_k, "unsent": format(self.unsent, "f"),
                "volume": format(self.volume, "f"), "horizon_passed": self.horizon_passed,
                "denials": self.denials, "slices": [s.to_body() for s in self.slices]}

    @classmethod
    def from_body(cls, row: ContingentRow, body: dict[str, Any]) -> Self:
        """Rebuild from a stored row."""
        p = body.get("max_participation")
        return cls(**cls.common_of(row), side=Side(body["side"]), size=Decimal(body["size"]),
                   horizon_s=float(body["horizon_s"]), interval_s=float(body["interval_s"]),
                   max_participation=None if p is None else float(p), tag=str(body.get("tag", "")),
                   intent_id=str(body.get("intent_id", "")), start_ms=int(body["start_ms"]),
                   next_k=int(body["next_k"]), unsent=Decimal(body["unsent"]), volume=Decimal(body["volume"]),
                   horizon_passed=bool(body.get("horizon_passed", False)), denials=int(body.get("denials", 0)),
                   slices=[SliceState.from_body(s) for s in body.get("slices", [])])

    # -- schedule ----------------------------------------------------------------------------
    @property
    def n_slices(self) -> int:
        """Slices of the schedule: ceil(horizon / interval), at least 1 (exact in decimal: 1.0/0.1 is 10)."""
        return max(1, math.ceil(_dec(self.horizon_s) / _dec(self.interval_s)))

    def slot_ms(self, k: int) -> int:
        """Business time slice ``k`` is due."""
        return self.start_ms + int(_dec(self.interval_s) * _MS * k)

    @property
    def horizon_ms(self) -> int:
        """Business time of the horizon."""
        return self.start_ms + int(_dec(self.horizon_s) * _MS)

    @property
    def filled(self) -> Decimal:
        """Total filled by the slices so far."""
        return sum((s.filled for s in self.slices), _ZERO)

    def slice_size(self, k: int, step: Decimal) -> Decimal:
        """Size of due slice ``k``: unsent / slices left down to ``step``, capped by participation."""
        with localcontext() as dec_ctx:
            dec_ctx.rounding = ROUND_DOWN
            size = round_down(self.unsent / (self.n_slices - k), step)
        if self.max_participation is not None:
            size = min(size, round_down(_dec(self.max_participation) * self.volume, step))
        return max(size, _ZERO)

    def step(self, ctx: BookContext) -> Decimal:
        """The quantity step slices are rounded down to (a fine unit of the size when the step is unknown)."""
        step = ctx.step_size(self.symbol)
        if step > 0:
            return step
        exp = self.size.as_tuple().exponent
        return Decimal(1).scaleb(min(exp if isinstance(exp, int) else 0, _FINEST_UNKNOWN_STEP_EXP))

    def _intent(self, sl: SliceState) -> OrderIntent:
        return OrderIntent(strategy=self.strategy, symbol=self.symbol, side=self.side, type=OrderType.MARKET,
                           size=sl.size, tag=self.tag, intent_id=f"{self.id}:slice:{sl.n}",
                           client_order_id=sl.client_order_id, parent=self.id)

    def _find(self, client_order_id: str) -> SliceState | None:
        return next((s for s in self.slices if s.client_order_id == client_order_id), None)

    def _release(self, size: Decimal, ctx: BookContext) -> list[Effect]:
        sl = SliceState(client_order_id=ctx.new_id(), n=len(self.slices), size=size)
        self.slices.append(sl)
        self.unsent -= size
        self.volume = _ZERO
        return [self.persist(ctx), Release(intent=self._intent(sl))]

    def _conclude(self, ctx: BookContext) -> list[Effect]:
        """DONE once filled, or at the horizon with the rest reported; nothing while a slice is in flight."""
        if any(s.in_flight for s in self.slices):
            return []
        filled = self.filled
        if filled >= self.size:
            self.status = ContingentStatus.DONE
            self.reason = ""
            return [self.persist(ctx)]
        if not self.horizon_passed:
            return []
        self.status = ContingentStatus.DONE
        self.reason = "horizon_reached"
        return [self.persist(ctx),
                Notice(event="contingent.twap_horizon_reached", level="warning",
                       fields={"id": self.id, "strategy": self.strategy, "symbol": self.symbol,
                               "size": str(self.size), "filled": str(filled), "remaining": str(self.size - filled)})]

    # -- handlers ----------------------------------------------------------------------------
    def start(self, ctx: BookContext) -> list[Effect]:
        """Start the schedule now; slice 0 is due at once."""
        self.status = ContingentStatus.WORKING
        self.start_ms = ctx.now_ms()
        return [self.persist(ctx), *self.on_timer(self.start_ms, ctx)]

    def deadline_ms(self) -> int | None:
        """The next slice's due time, then the horizon."""
        if not self.active:
            return None
        if self.next_k < self.n_slices:
            return self.slot_ms(self.next_k)
        return None if self.horizon_passed else self.horizon_ms

    def on_timer(self, now_ms: int, ctx: BookContext) -> list[Effect]:
        """Release every due slice (written ahead, one release each); at the horizon, conclude."""
        if not self.active:
            return []
        if now_ms >= self.horizon_ms:
            # Slices not released by the horizon (a restart gap) are never sent late.
            self.next_k = self.n_slices
            self.horizon_passed = True
            return self._conclude(ctx) or [self.persist(ctx, durable=False)]
        effects: list[Effect] = []
        step = self.step(ctx)
        advanced = False
        while self.next_k < self.n_slices and self.slot_ms(self.next_k) <= now_ms:
            size = self.slice_size(self.next_k, step)
            self.next_k += 1
            advanced = True
            if size > 0:
                effects += self._release(size, ctx)
        if advanced and not effects:
            effects.append(self.persist(ctx, durable=False))
        return effects

    def on_market(self, event: MarketEvent, ctx: BookContext) -> list[Effect]:
        """Count the symbol's traded volume (for the participation cap)."""
        if self.max_participation is not None and isinstance(event, Trade) and event.symbol == self.symbol:
            self.volume += _dec(event.size)
        return []

    def watches_market(self) -> bool:
        """Only a participation cap needs the trades."""
        return self.active and self.max_participation is not None

    def on_order_event(self, event: OrderEvent, ctx: BookContext) -> list[Effect]:
        """A slice's event: its fills; an unfilled rest comes back to ``unsent``."""
        sl = self._find(event.client_order_id)
        if sl is None:
            return []
        return self._apply(sl, event.status, event.filled, event.reason, ctx)

    def _apply(self, sl: SliceState, status: OrderStatus, filled: Decimal, reason: str,
               ctx: BookContext) -> list[Effect]:
        was_sent_only = sl.status is OrderStatus.INITIALIZED
        was_final = sl.final
        if not sl.take(status, filled, reason):
            return []
        if not self.active:
            if self.status is ContingentStatus.CANCELED and was_sent_only and sl.in_flight:
                return [self.persist(ctx, durable=False),
                        CancelChild(client_order_id=sl.client_order_id, reason=self.reason)]
            return [self.persist(ctx, durable=False)]
        self.denials = 0
        if sl.final and not was_final:
            self.unsent += sl.size - sl.filled  # rejected, cancelled or expired: retried by later slices
        return self._conclude(ctx) or [self.persist(ctx, durable=False)]

    def on_denied(self, denied: OrderDenied, ctx: BookContext) -> list[Effect]:
        """The risk gate refused a slice: its size is added back (sent with the next slice)."""
        sl = self._find(denied.intent.client_order_id)
        if sl is None or not self.active or not sl.in_flight:
            return []
        sl.status = OrderStatus.DENIED
        sl.reason = denied.reason
        self.unsent += sl.size
        self.denials += 1
        if self.denials >= ctx.settings().max_child_attempts:
            self.status = ContingentStatus.FAILED
            self.reason = f"child_denied:{denied.reason}"
            return [self.persist(ctx)]
        notice = Notice(event="contingent.child_denied", level="warning",
                        fields={"id": self.id, "client_order_id": sl.client_order_id, "reason": denied.reason})
        return [notice, *(self._conclude(ctx) or [self.persist(ctx, durable=False)])]

    def cancel(self, reason: str, ctx: BookContext) -> list[Effect]:
        """Stop the schedule, cancel slices in flight; CANCELED."""
        if not self.active:
            return []
        open_ids = [s.client_order_id for s in self.slices if s.in_flight]
        self.status = ContingentStatus.CANCELED
        self.reason = reason
        return [self.persist(ctx), *(CancelChild(client_order_id=c, reason=reason) for c in open_ids)]

    def resume(self, lookup: OrderLookup, ctx: BookContext) -> list[Effect]:
        """Catch up with the order manager; a slice it never saw is released again (same id).

        Slices that fell due while the daemon was down are released by ``on_timer`` (the
        deadline is already past).
        """
        if not self.active:
            return []
        if self.status is ContingentStatus.PENDING:
            return self.start(ctx)
        effects: list[Effect] = []
        for sl in self.slices:
            if not sl.in_flight:
                continue
            record = lookup(sl.client_order_id)
            if record is None:
                if sl.status is OrderStatus.INITIALIZED:
                    effects.append(Release(intent=self._intent(sl)))
                continue
            effects += self._apply(sl, record.status, record.filled, record.reason, ctx)
        return effects

    def child_ids(self) -> list[str]:
        """Every slice's client order id."""
        return [s.client_order_id for s in self.slices]

    def view(self) -> ContingentView:
        """One ``slice`` leg per released slice."""
        return sliced_view(self, tuple(s.leg("slice", OrderType.MARKET, self.side) for s in self.slices))
