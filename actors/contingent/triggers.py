"""Trigger prices: which price an emulated trigger watches, when it is crossed, trailing levels.

Pure functions over market events. Market prices are floats on the hot path; they become
Decimal here only for symbols with an armed trigger, so the comparison is exact against the
order's Decimal trigger price.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from actors.model.market import MarketEvent, Quote, Trade
from actors.model.orders import STOP_TYPES, OrderType, Side, TrailingSpec, TriggerSource

__all__ = ["TrailingState", "crossed", "is_stop", "trail", "trail_crossed", "watched_price"]

_BPS = Decimal(10_000)


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


def watched_price(event: MarketEvent, source: TriggerSource, side: Side) -> Decimal | None:
    """The price ``event`` shows for a trigger watching ``source`` whose child order is on ``side``.

    ``LAST``: a trade's price. ``BID_ASK``: the quote side the child would hit (a sell hits
    the bid, a buy the ask). ``MID``: the quote's mid. None when the event says nothing about
    that price (a quote for ``LAST``, a trade for the others; bars and books never trigger).
    """
    if source is TriggerSource.LAST:
        return _dec(event.price) if isinstance(event, Trade) else None
    if not isinstance(event, Quote) or event.bid <= 0 or event.ask <= 0:
        return None
    if source is TriggerSource.MID:
        return (_dec(event.bid) + _dec(event.ask)) / 2
    return _dec(event.bid) if side is Side.SELL else _dec(event.ask)


def is_stop(type: OrderType) -> bool:
    """True for stop types (trigger on the losing side), False for take-profits."""
    return type in STOP_TYPES


def crossed(type: OrderType, side: Side, trigger_price: Decimal, price: Decimal) -> bool:
    """True when ``price`` reaches the trigger of a conditional order of ``type`` on ``side``.

    A sell stop triggers at or below its price, a buy stop at or above; a sell take-profit at
    or above, a buy take-profit at or below.
    """
    falling = (side is Side.SELL) == is_stop(type)  # the trigger waits for the price to fall to it
    return price <= trigger_price if falling else price >= trigger_price


class TrailingState(msgspec.Struct, frozen=True, kw_only=True):
    """A trailing stop's progress: ``active`` once its activation price was reached (at once
    without one), ``extreme`` the best price since (highest for a sell stop, lowest for a buy
    stop), ``level`` the stop price that follows it at the offset."""

    active: bool = False
    extreme: Decimal | None = None
    level: Decimal | None = None


def _level(spec: TrailingSpec, side: Side, extreme: Decimal) -> Decimal:
    offset = spec.offset if spec.offset is not None else extreme * Decimal(spec.offset_bps or 0) / _BPS
    return extreme - offset if side is Side.SELL else extreme + offset


def trail(spec: TrailingSpec, side: Side, state: TrailingState, price: Decimal) -> TrailingState:
    """The trailing state after ``price`` (``side`` is the stop's side: a sell protects a long).

    Activation: a sell trail activates once the price is at or above ``activation_price``, a
    buy trail at or below it. Once active, the extreme only ever improves, so the level only
    ever tightens (a sell stop's level never falls, a buy stop's never rises).
    """
    active = state.active
    if not active:
        act = spec.activation_price
        if act is not None and (price < act if side is Side.SELL else price > act):
            return state
        active = True
    extreme = state.extreme
    if extreme is None or (price > extreme if side is Side.SELL else price < extreme):
        extreme = price
    if extreme is state.extreme and active == state.active:
        return state
    return TrailingState(active=True, extreme=extreme, level=_level(spec, side, extreme))


def trail_crossed(side: Side, state: TrailingState, price: Decimal) -> bool:
    """True when an active trailing stop's level is reached by ``price``."""
    if not state.active or state.level is None:
        return False
    return price <= state.level if side is Side.SELL else price >= state.level
