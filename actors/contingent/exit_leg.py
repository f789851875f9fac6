"""The exits of one position: emulated trigger legs, the children they release, native chunks.

``ExitLeg`` is one trigger (a stop, a take-profit, a trailing stop, or a plain order that
needs no trigger) and knows how to watch the market and build the orders it sends.
``ExitSet`` is the shared engine of the linked kinds (OCO, OTO, bracket): it keeps a
*target* quantity covered, exactly once, by either

* emulated legs: armed triggers that cover whatever no order in flight covers; the first
  leg crossed releases ONE child for that whole quantity and disarms its siblings (the
  legs of an ``ExitSet`` are one-cancels-the-other); or
* native chunks: one venue order (one leg) or one native OCO list (two legs) per slice of
  the target, so that the open chunks always add up to what is not yet exited.

Quantities (``target`` is the owner's: a bracket's entry filled, an OCO's size, an OTO's
working filled)::

    exits_filled = sum of every child's and native leg's filled
    in_flight    = unfilled rest of the emulated children still sent or awaiting a retry
    native_open  = unfilled rest of the native chunks still open
    uncovered    = target - exits_filled - in_flight - native_open

Invariant after every handler: ``uncovered >= 0``, and ``uncovered == 0`` unless a leg is
armed (the armed legs cover exactly ``uncovered``). A child is released for ``uncovered``
only, so no quantity is ever covered twice. A child the venue rejects or cancels gives its
rest back to ``uncovered`` and re-arms the legs (the position is still there). A native
chunk that closes with a rest (refused, cancelled, denied) switches the set to emulation,
so protection never depends on the venue accepting the same thing twice.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec

from actors.contingent.base import BookContext, ContingentOrder
from actors.contingent.triggers import TrailingState, crossed, is_stop, trail, trail_crossed, watched_price
from actors.model.market import MarketEvent
from actors.model.orders import (
    OrderEvent,
    OrderIntent,
    OrderType,
    Side,
    TrailingSpec,
    TriggerSource,
)
from actors.model.records import OrderRecord

__all__ = ["ZERO", "Chunk", "ExitChild", "ExitLeg", "NativeLeg", "Phase", "event_of", "is_above", "text"]

ZERO = Decimal(0)
_PLAIN = frozenset({OrderType.MARKET, OrderType.LIMIT})
_LIMIT_CHILD = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})


class Phase(StrEnum):
    """Where a child or a chunk is: ``sent`` (released, may be open at the venue), ``retry``
    (the risk gate denied it: never reached the order manager, released again later under the
    same id), ``final`` (terminal at the venue), ``dropped`` (never reached the venue and never will)."""

    SENT = "sent"
    RETRY = "retry"
    FINAL = "final"
    DROPPED = "dropped"


class ExitLeg(msgspec.Struct, kw_only=True):
    """One trigger: type, side, trigger price, limit price, trailing spec and state, trigger source.

    ``armed``: watching the market (emulated). ``last``: the last price it watched (a denied
    child is retried only while the condition still holds at it). ``attempts``: children of
    this leg the venue rejected since one of them last filled (``max_child_attempts`` -> FAILED).
    """

    name: str
    type: OrderType
    side: Side
    trigger_price: Decimal | None = None
    limit_price: Decimal | None = None
    trailing: TrailingSpec | None = None
    trail: TrailingState = msgspec.field(default_factory=TrailingState)
    source: TriggerSource = TriggerSource.LAST
    armed: bool = False
    last: Decimal | None = None
    attempts: int = 0

    @classmethod
    def of(cls, name: str, intent: OrderIntent) -> ExitLeg:
        """The leg an order of a list describes."""
        return cls(name=name, type=intent.type, side=intent.side, trigger_price=intent.trigger_price,
                   limit_price=intent.limit_price, trailing=intent.trailing, source=intent.trigger)

    @property
    def plain(self) -> bool:
        """A market or limit order: no trigger, it fires as soon as it is armed."""
        return self.type in _PLAIN and self.trailing is None

    @property
    def level(self) -> Decimal | None:
        """The price it triggers at now: the trailing level (once active) or the trigger price."""
        return self.trail.level if self.trailing is not None else self.trigger_price

    def native_ok(self, ctx: BookContext) -> bool:
        """True when the venue runs this leg natively (and ``[orders] native`` allows it)."""
        if not ctx.native_enabled or self.type not in ctx.support.order_types:
            return False
        spec = self.trailing
        return spec is None or (ctx.support.trailing_bps and spec.offset_bps is not None and spec.offset is None)

    def observe(self, event: MarketEvent) -> Decimal | None:
        """Record the price ``event`` shows this leg (None: nothing for it)."""
        price = watched_price(event, self.source, self.side)
        if price is not None:
            self.last = price
        return price

    def follow(self, price: Decimal) -> bool:
        """Move a trailing level with ``price``; True when it moved."""
        if self.trailing is None:
            return False
        state = trail(self.trailing, self.side, self.trail, price)
        moved = state != self.trail
        self.trail = state
        return moved

    def holds(self) -> bool:
        """True when the trigger condition holds at the last watched price."""
        if self.plain:
            return True
        if self.last is None:
            return False
        if self.trailing is not None:
            return trail_crossed(self.side, self.trail, self.last)
        return self.trigger_price is not None and crossed(self.type, self.side, self.trigger_price, self.last)

    def check(self, event: MarketEvent) -> bool:
        """Watch ``event``: follow a trailing level, then True when this armed leg is crossed."""
        price = self.observe(event)
        if not self.armed or (price is None and not self.plain):
            return False
        if price is not None:
            self.follow(price)
        return self.holds()

    def child_intent(self, owner: ContingentOrder, *, size: Decimal, client_order_id: str, intent_id: str,
                     origin_ns: int, protective: bool, tag: str) -> OrderIntent:
        """The market (or limit, at the leg's limit price) order an emulated trigger releases."""
        limit = self.type in _LIMIT_CHILD
        return OrderIntent(
            strategy=owner.strategy, symbol=owner.symbol, side=self.side,
            type=OrderType.LIMIT if limit else OrderType.MARKET, size=size,
            limit_price=self.limit_price if limit else None, tag=tag, intent_id=intent_id, origin_ns=origin_ns,
            client_order_id=client_order_id, parent=owner.id, protective=protective)

    def native_intent(self, owner: ContingentOrder, *, size: Decimal, client_order_id: str, intent_id: str,
                      protective: bool, tag: str) -> OrderIntent:
        """This leg as a native conditional order (the venue holds the trigger)."""
        return OrderIntent(
            strategy=owner.strategy, symbol=owner.symbol, side=self.side, type=self.type, size=size,
            limit_price=self.limit_price, tag=tag, intent_id=intent_id, trigger_price=self.trigger_price,
            trailing=self.trailing, trigger=self.source, client_order_id=client_order_id, parent=owner.id,
            protective=protective)

    def trailing_text(self) -> str | None:
        """The trailing spec as operators read it."""
        spec = self.trailing
        if spec is None:
            return None
        text = f"{spec.offset_bps}bps" if spec.offset_bps is not None else format(spec.offset or ZERO, "f")
        return text if spec.activation_price is None else f"{text} from {format(spec.activation_price, 'f')}"


class ExitChild(msgspec.Struct, kw_only=True):
    """An order an emulated leg released (or a plain leg's slice)."""

    id: str
    leg: str
    size: Decimal
    intent_id: str
    origin_ns: int = 0
    filled: Decimal = ZERO
    phase: Phase = Phase.SENT
    status: str = ""
    attempts: int = 0
    retry_at_ms: int = 0

    @property
    def open_rest(self) -> Decimal:
        """Unfilled quantity it still covers (0 once final or dropped)."""
        return self.size - self.filled if self.phase in (Phase.SENT, Phase.RETRY) else ZERO


class NativeLeg(msgspec.Struct, kw_only=True):
    """One venue order of a native chunk."""

    id: str
    leg: str
    intent_id: str
    filled: Decimal = ZERO
    status: str = ""
    reason: str = ""
    final: bool = False
    cancel_sent: bool = False


class Chunk(msgspec.Struct, kw_only=True):
    """A slice of the target covered natively: one order, or an OCO list of two (``list_id``).

    ``external``: placed by the owner as part of its own list (a native OTO's pending order);
    the owner, not the set, sends it again on resume.
    """

    size: Decimal
    legs: list[NativeLeg]
    list_id: str = ""
    phase: Phase = Phase.SENT
    external: bool = False

    @property
    def filled(self) -> Decimal:
        """Filled over its legs."""
        return sum((leg.filled for leg in self.legs), ZERO)

    @property
    def open_rest(self) -> Decimal:
        """Unfilled quantity it still covers (0 once closed)."""
        return self.size - self.filled if self.phase is Phase.SENT else ZERO


def event_of(record: OrderRecord, parent: str) -> OrderEvent:
    """An order event standing for what the order manager's ``record`` says (used on resume)."""
    return OrderEvent(client_order_id=record.client_order_id, strategy=record.strategy, symbol=record.symbol,
                      status=record.status, filled=record.filled, size=record.size, reason=record.reason,
                      ts_ms=record.updated_ms, intent_id=record.intent_id, parent=parent)


def is_above(intent: OrderIntent) -> bool:
    """True for an exit above the market: a sell take-profit or a buy stop."""
    return (intent.side is Side.SELL) != is_stop(intent.type)


def text(value: Decimal | None) -> str | None:
    """A decimal as operators read it (plain notation); None stays None."""
    return None if value is None else format(value, "f")
