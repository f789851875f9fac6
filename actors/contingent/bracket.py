"""The bracket: an entry order plus a take-profit and/or a stop-loss (or trailing stop) that
protect exactly what the entry filled, and nothing more."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Self

import msgspec

from actors.contingent.base import BookContext, OrderLookup
from actors.contingent.effects import CancelChild, Effect, Notice, Release
from actors.contingent.exit_leg import ZERO, ExitLeg, event_of
from actors.contingent.exit_set import ExitSet
from actors.contingent.linked import FAILED_ENDS, LinkedOrder, native_exits
from actors.contingent.net_fill import BaseFees, sellable
from actors.contingent.triggers import is_stop
from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus, ContingentView, LegView
from actors.model.orders import (
    TERMINAL_STATUSES,
    ApprovedList,
    ExecutionMode,
    Fill,
    ListKind,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderStatus,
    OrderType,
    Side,
)
from actors.model.positions import base_asset

__all__ = ["Bracket"]

_S = ContingentStatus


class Bracket(LinkedOrder):
    """Entry (market or limit) + take-profit and/or stop-loss (the stop may trail).

    The entry is released first, under the strategy's ``intent_id``, not protective. The
    protected quantity is what the entry's fills credited (``net_filled``: a buy's fills net
    of fees charged in the base asset, see ``actors.contingent.net_fill``) minus what the
    exits filled; the exits (``ExitSet``) cover ``target()``, that net rounded down to the
    instrument's quantity step (``step``, fixed when the bracket is made), minus what they
    filled. A rest below the step is no order's to sell: it is named in the final log line
    (``position_left``).

    * Emulated: the legs are armed from the start and watch over the protected quantity not
      yet in flight. The first crossed releases ONE child for all of it, disarms its sibling
      and cancels the entry's unfilled rest, in this order: durable Persist (child id, legs
      disarmed, entry cancel) -> Release(child) -> CancelChild(entry). Entry fills after that
      release another child of the same leg for the new amount. A child the venue rejects
      (or that ends with a rest) re-arms the legs for that rest (error Notice); a child the
      risk gate denies is retried after ``child_retry_s`` under the same id while its
      condition holds (else the legs re-arm); ``max_child_attempts`` failures -> FAILED.
    * Native: per entry fill delta, one native OCO list (take-profit + stop), or one native
      order when there is one exit, sized at the delta, its leg ids written ahead. A leg that
      fills ends its own chunk only (the venue expires its sibling; we cancel it if still
      open); the other chunks keep protecting the rest. A chunk refused by the venue or
      denied by the risk gate hands its rest to emulated legs (see ``ExitSet``).

    DONE once the entry is final and the exits filled ``target()``; any exit still open then is
    cancelled. Entry rejected/denied with nothing filled -> FAILED, cancelled/expired ->
    CANCELED; nothing was armed for it.

    Invariants, after every handler while active (``uncovered`` as in ``ExitSet``):
      (a) emulated: armed quantity (``uncovered`` while a leg is armed, else 0) ==
          target - exits filled - children in flight - open native chunks; native:
          open native chunks + in flight == target - exits filled; ``protected`` ==
          net filled - exits filled;
      (b) after a trigger at most one leg family is active: the legs are disarmed together,
          and a child is only ever released for ``uncovered``, so no two orders sell the same
          quantity;
      (c) once the position is closed (DONE) no exit is armed and every exit order that may
          still be open has been sent a CancelChild (no orphans).
    """

    kind = ContingentKind.BRACKET

    def __init__(self, *, entry: OrderIntent, entry_filled: Decimal = ZERO, entry_status: str = "",
                 entry_final: bool = False, entry_cancel_sent: bool = False, step: Decimal = ZERO,
                 entry_fees: BaseFees | None = None, carry: Decimal = ZERO, **rest: Any) -> None:
        super().__init__(**rest)
        self.carry = carry
        self.entry = entry
        self.entry_filled = entry_filled
        self.entry_status = entry_status
        self.entry_final = entry_final
        self.entry_cancel_sent = entry_cancel_sent
        self.step = step
        self.entry_fees = entry_fees or BaseFees()
        self._base = base_asset(self.symbol)

    @classmethod
    def from_approved(cls, approved: ApprovedList, ctx: BookContext) -> Self:
        """A bracket (not started) of an approved list ``(entry, exit, [exit])``."""
        ol = approved.order_list
        if ol.kind is not ListKind.BRACKET or len(ol.orders) not in (2, 3) or len(approved.sizes) != len(ol.orders):
            raise ValueError("a bracket is an entry and one or two exits")
        size = approved.sizes[0]
        first = ol.orders[0]
        if size is None or size <= 0 or first.type not in (OrderType.MARKET, OrderType.LIMIT) or not first.is_plain:
            raise ValueError("a bracket's entry is a market or limit order with a size")
        exits_in = ol.orders[1:]
        if any(x.side is first.side for x in exits_in):
            raise ValueError("a bracket's exits are on the entry's opposite side")
        if any(x.type in (OrderType.MARKET, OrderType.LIMIT) and x.trailing is None for x in exits_in):
            raise ValueError("a bracket's exits are stops, take-profits or trailing stops")
        names = ["stop_loss" if is_stop(x.type) or x.trailing is not None else "take_profit" for x in exits_in]
        if len(set(names)) != len(names):
            raise ValueError("a bracket has at most one take-profit and one stop-loss")
        cid, eid = ctx.new_id(), ctx.new_id()
        entry = msgspec.structs.replace(first, strategy=ol.strategy, symbol=ol.symbol, size=size, notional=None,
                                        client_order_id=eid, parent=cid, protective=False, tag=first.tag or ol.tag)
        exits = ExitSet(legs=[ExitLeg.of(n, x) for n, x in zip(names, exits_in, strict=True)], tag=ol.tag or first.tag)
        exits.native = native_exits(exits, ctx)
        if not exits.native:
            exits.arm()
        now = ctx.now_ms()
        return cls(id=cid, strategy=ol.strategy, symbol=ol.symbol,
                   mode=ExecutionMode.NATIVE if exits.native else ExecutionMode.EMULATED,
                   created_ms=now, updated_ms=now, entry=entry, exits=exits, step=ctx.step_size(ol.symbol),
                   carry=max(ol.carry, ZERO))

    @property
    def net_filled(self) -> Decimal:
        """What the entry's fills credited.

        A buy entry: its fills net of the fees charged in the base asset (the account holds
        that much less than it bought). A sell entry: what it sold, whatever its fee: a fee in
        the quote asset (or in the base asset, taken on top) reduces what the sale brought in,
        not the quantity a buy-back exit must buy to close the position.

        Plus ``carry`` once the entry filled anything: the strategy's untradable rest of an
        earlier position on this side (dust below the step), sold with these exits.
        """
        net = self.entry_filled - self.entry_fees.total if self.entry.side is Side.BUY else self.entry_filled
        return net + self.carry if self.entry_filled > 0 else net

    def target(self) -> Decimal:
        """What the exits must cover: the entry's net filled, rounded down to the quantity step."""
        return sellable(self.net_filled, self.step)

    @property
    def entry_id(self) -> str:
        """Client order id of the entry."""
        return self.entry.client_order_id

    @property
    def protected(self) -> Decimal:
        """The open position this bracket protects: entry net filled - exits filled."""
        return self.net_filled - self.exits.exits_filled

    def position_left(self) -> Decimal:
        """What the entry credited and no exit sold (a rest below the step once DONE)."""
        return self.protected

    def fill_sources(self) -> tuple[str, ...]:
        """The entry: its fills' base-asset fees size the exits (a buy entry only)."""
        return (self.entry_id,) if self.entry.side is Side.BUY else ()

    def restore_fill(self, fill: Fill) -> None:
        """A fill of the entry read back from the store after a restart (counted once by trade id)."""
        self._record_fill(fill)

    def _record_fill(self, fill: Fill | None) -> None:
        if fill is not None and self.entry.side is Side.BUY and fill.client_order_id == self.entry_id:
            self.entry_fees.record(fill, self._base)

    # -- persistence -------------------------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """State as builtins."""
        return {"reason": self.reason, "entry": msgspec.to_builtins(self.entry),
                "entry_filled": format(self.entry_filled, "f"), "entry_status": self.entry_status,
                "entry_final": self.entry_final, "entry_cancel_sent": self.entry_cancel_sent,
                "step": format(self.step, "f"), "entry_fees": self.entry_fees.body(),
                "carry": format(self.carry, "f"), "exits": msgspec.to_builtins(self.exits)}

    @classmethod
    def from_body(cls, row: ContingentRow, body: dict[str, Any]) -> Self:
        """Rebuild from a stored row."""
        return cls(**cls.common_of(row), entry=msgspec.convert(body["entry"], OrderIntent),
                   entry_filled=Decimal(body["entry_filled"]), entry_status=body["entry_status"],
                   entry_final=bool(body["entry_final"]), entry_cancel_sent=bool(body["entry_cancel_sent"]),
                   step=Decimal(str(body.get("step", "0"))), entry_fees=BaseFees.of(body.get("entry_fees")),
                   carry=Decimal(str(body.get("carry", "0"))),
                   exits=msgspec.convert(body["exits"], ExitSet))

    # -- handlers ----------------------------------------------------------------------------------
    def start(self, ctx: BookContext) -> list[Effect]:
        """Write the entry's id ahead, then release it."""
        before = self.status
        self.status = _S.WORKING
        notice = Notice(event="contingent.started", fields={
            "id": self.id, "kind": self.kind.value, "mode": self.mode.value, "entry": self.entry_id,
            "size": format(self.entry.size or ZERO, "f")})
        return self._emit(ctx, [Release(intent=self.entry), notice], before, durable=True)

    def fired(self, ctx: BookContext) -> list[Effect]:
        """An exit triggered: the entry's unfilled rest must not add to a position being closed."""
        return self._cancel_entry("bracket_exit_triggered")

    def _cancel_entry(self, reason: str) -> list[Effect]:
        if self.entry_final or self.entry_cancel_sent:
            return []
        self.entry_cancel_sent = True
        return [CancelChild(client_order_id=self.entry_id, reason=reason)]

    def on_order_event(self, event: OrderEvent, ctx: BookContext) -> list[Effect]:
        """The entry's fills grow the protected quantity; exit events go to the exits."""
        if not self.active or event.client_order_id != self.entry_id:
            return super().on_order_event(event, ctx)
        before = self.status
        self._record_fill(event.fill)
        self._entry_event(event)
        return self._emit(ctx, self.exits.cover(self.target(), self, ctx), before,
                          durable=event.status in TERMINAL_STATUSES)

    def _entry_event(self, event: OrderEvent) -> None:
        self.entry_filled = max(self.entry_filled, min(event.filled, self.entry.size or event.filled))
        self.entry_status = event.status.value
        if event.status in TERMINAL_STATUSES:
            self.entry_final = True
            if event.reason and self.entry_filled == 0:
                self.reason = f"entry_{event.status.value.lower()}:{event.reason}"

    def on_denied(self, denied: OrderDenied, ctx: BookContext) -> list[Effect]:
        """The entry denied: FAILED (nothing was filled, nothing armed). An exit: see ``ExitSet``."""
        if not self.active or denied.intent.client_order_id != self.entry_id:
            return super().on_denied(denied, ctx)
        before = self.status
        self.entry_final = True
        self.entry_status = OrderStatus.DENIED.value
        self.reason = f"entry_denied:{denied.reason}"
        return self._emit(ctx, [], before, durable=True)

    def settle(self, ctx: BookContext) -> list[Effect]:
        """FAILED/CANCELED for an entry that never filled; DONE once the position is closed."""
        if not self.active:
            return []
        if self.exits.failed:
            return self._cancel_entry("bracket_failed") + self._finish(_S.FAILED, self.exits.failed, ctx)
        if self.entry_final and self.entry_filled == 0 and not self.exits.busy:
            status = _S.FAILED if self.entry_status in FAILED_ENDS else _S.CANCELED
            return self._finish(status, self.reason or f"entry_{self.entry_status.lower()}", ctx)
        if self.entry_final and self.exits.exits_filled >= self.target() and not self.exits.children_in_flight:
            return self._finish(_S.DONE, "", ctx)
        self.status = self._working_status()
        return []

    def cancel(self, reason: str, ctx: BookContext) -> list[Effect]:
        """Disarm the exits, cancel the entry and every exit order still open."""
        if not self.active:
            return []
        before = self.status
        effects = self._cancel_entry(reason) + self._finish(_S.CANCELED, reason, ctx)
        return self._emit(ctx, effects, before, durable=True)

    def resume(self, lookup: OrderLookup, ctx: BookContext) -> list[Effect]:
        """Entry first (released again if the order manager never got it; its fills taken from
        the record; a cancel written ahead but maybe never sent is sent again), then the exits
        (``ExitSet.resume``), then whatever the protected quantity now needs."""
        if not self.active:
            return []
        before = self.status
        effects: list[Effect] = []
        rec = lookup(self.entry_id)
        if rec is None and not self.entry_final:
            if self.entry_cancel_sent:
                self.entry_final = True  # cancelled before it ever reached the order manager
                self.entry_status = OrderStatus.CANCELED.value
            else:
                effects.append(Release(intent=self.entry))
        elif rec is not None:
            self._entry_event(event_of(rec, self.id))
            if self.entry_cancel_sent and not self.entry_final:
                effects.append(CancelChild(client_order_id=self.entry_id, reason="bracket_exit_triggered"))
        effects += self._resume_exits(lookup, ctx)
        return self._emit(ctx, effects, before, durable=True)

    # -- views -------------------------------------------------------------------------------------
    def child_ids(self) -> list[str]:
        """The entry and every exit order."""
        return [self.entry_id, *self.exits.child_ids()]

    def view(self) -> ContingentView:
        """Legs ``entry``, ``take_profit``, ``stop_loss``; ``protected`` = entry filled - exits filled."""
        e = self.entry
        status = self.entry_status or "released"
        if self.entry_cancel_sent and not self.entry_final:
            status = "canceling"
        entry = LegView(name="entry", type=e.type.value, side=e.side.value, status=status,
                        size=None if e.size is None else format(e.size, "f"), filled=format(self.entry_filled, "f"),
                        limit_price=None if e.limit_price is None else format(e.limit_price, "f"),
                        client_order_ids=(self.entry_id,))
        return self._view((entry, *self._exit_views()), self.protected)
