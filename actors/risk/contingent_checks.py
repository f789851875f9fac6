"""Pre-trade checks of conditional and algorithmic orders, and of the orders the
contingent-order manager releases: pure functions like ``actors.risk.checks``.

Three kinds of decision, chosen by the risk gate:

- ``evaluate_order(intent, x, child=False)``: a strategy's stop, take-profit, trailing stop,
  iceberg or TWAP. It rests in the contingent-order manager, so what only matters once it
  reaches the venue (open-order count, cash) is checked when its children are released;
  the order rate counts it here, once. Iceberg and TWAP parents are exempt from the
  per-order notional limit (their slices are checked against it).
- ``evaluate_order(intent, x, child=True)``: an order the contingent-order manager releases
  (``intent.parent`` set). Its parent was counted, so it is exempt from the order rate. A
  ``protective`` child (an exit that protects a position) also passes while trading is
  paused (REDUCING) and is exempt from the open-order, exposure/position, notional, price
  collar, loss and stale-data limits: it can only make the position smaller, and the
  moment to place it is when the market moves. The kill switch and HALTED deny it anyway.
  ``protective`` is the manager's claim, checked here (``reduces_position``): a child that
  would not shrink the symbol's position without flipping it (a buy stop that opens a
  position, an exit whose position is already gone) gets every check of a plain child.
- ``evaluate_list`` / ``evaluate_native_list``: a strategy's OCO, OTO or bracket, and the
  native OCO/OTO list the manager sends for it.

Every leg is checked against the instrument's filters (tick, step, min/max quantity, min
notional) at the leg's own price: its limit price, else its trigger price, else the
trailing activation price, else the reference price. Trigger prices must be on the right
side of the reference: a stop on the losing side of the market, a take-profit on the
winning side (for a bracket's exits and an OTO's pending order, of the entry's price).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import msgspec

from actors.model.control import TradingState
from actors.model.orders import (
    CONDITIONAL_TYPES,
    PRICED_TYPES,
    STOP_TYPES,
    ListKind,
    OrderIntent,
    OrderList,
    OrderType,
    Side,
)
from actors.risk.checks import (
    Approval,
    Denial,
    Reason,
    RiskInputs,
    check_cash,
    check_daily_loss,
    check_drawdown,
    check_gross_exposure,
    check_halted,
    check_instrument,
    check_kill_switch,
    check_max_order_notional,
    check_max_position,
    check_min_notional,
    check_open_orders,
    check_order_rate,
    check_price_collar,
    check_price_precision,
    check_qty_bounds,
    check_qty_precision,
    check_reduce_only,
    check_reference_price,
    check_stale_data,
    is_multiple,
    round_down,
)
from config.schema.trading import InstrumentSection

_BPS = Decimal(10_000)
_ZERO = Decimal(0)


class ListApproval(msgspec.Struct, frozen=True, kw_only=True):
    """An order list passed every check: each order's resolved base size (None for a
    bracket's exits, which follow the entry's fills; an OTO's pending order without a size of
    its own gets the working order's, and is released as far as that one fills) and the
    reference price used."""

    sizes: tuple[Decimal | None, ...]
    reference_price: Decimal


def _deny(reason: Reason, detail: str, limit: str = "") -> Denial:
    return Denial(reason=reason, limit=limit, detail=detail)


def _positive(value: Decimal | None) -> bool:
    return value is not None and value.is_finite() and value > 0


def leg_price(intent: OrderIntent, reference: Decimal) -> Decimal:
    """The price a leg is measured at: limit price, else trigger price, else the trailing
    activation price, else ``reference``."""
    if intent.type in PRICED_TYPES and intent.limit_price is not None:
        return intent.limit_price
    if intent.trigger_price is not None:
        return intent.trigger_price
    if intent.trailing is not None and intent.trailing.activation_price is not None:
        return intent.trailing.activation_price
    return reference


def leg_size(intent: OrderIntent, price: Decimal, step: Decimal) -> Decimal:
    """Base size: ``size`` as given, or ``notional`` / ``price`` rounded down to ``step``."""
    if intent.size is not None:
        return intent.size
    if intent.notional is None or price <= 0:
        return _ZERO
    return round_down(intent.notional / price, step)


def is_stop_side_exit(intent: OrderIntent) -> bool:
    """A stop (fixed or trailing): triggers on the losing side of the market."""
    return intent.type in STOP_TYPES


def unavailable(what: str) -> Denial:
    """The denial of a conditional order or list when no contingent-order manager runs."""
    return Denial(reason=Reason.CONTINGENT_UNAVAILABLE, detail=f"no contingent-order manager for a {what} order")


def denied_intent_of(lst: OrderList) -> OrderIntent:
    """The order a list's denial is reported with (``OrderDenied.intent``): its first (a
    bracket's entry); for an empty list, a placeholder carrying the list's id."""
    if lst.orders:
        return lst.orders[0]
    return OrderIntent(strategy=lst.strategy, symbol=lst.symbol, side=Side.BUY, intent_id=lst.list_id, tag=lst.tag)


# -- single checks ---------------------------------------------------------------------------


def check_order_shape(intent: OrderIntent, *, sized: bool = True) -> Denial | None:
    """Fields that belong together: amount, limit price, trigger price, trailing, display, TWAP.

    ``sized``: exactly one of size / notional, positive; otherwise neither (the order
    follows another's fills).
    """
    if sized:
        if (intent.size is None) == (intent.notional is None):
            return _deny(Reason.INVALID_INTENT, "exactly one of size or notional must be set")
        if not _positive(intent.size if intent.size is not None else intent.notional):
            return _deny(Reason.INVALID_INTENT, "size/notional must be positive")
    elif intent.size is not None or intent.notional is not None:
        return _deny(Reason.INVALID_INTENT, "an order that follows another's fills takes no size or notional")
    t = intent.type
    if t in PRICED_TYPES:
        if not _positive(intent.limit_price):
            return _deny(Reason.INVALID_INTENT, f"a {t.value} order needs a positive limit_price")
    elif intent.limit_price is not None:
        return _deny(Reason.INVALID_INTENT, f"a {t.value} order takes no limit_price")
    if t in CONDITIONAL_TYPES:
        if intent.trailing is None and not _positive(intent.trigger_price):
            return _deny(Reason.INVALID_INTENT, f"a {t.value} order needs a positive trigger_price")
    elif intent.trigger_price is not None:
        return _deny(Reason.INVALID_INTENT, f"a {t.value} order takes no trigger_price")
    if intent.trailing is not None and t not in STOP_TYPES:
        return _deny(Reason.TRAILING_INVALID, f"only stops trail, not a {t.value} order")
    if intent.display_size is not None and t is not OrderType.LIMIT:
        return _deny(Reason.INVALID_DISPLAY_SIZE, f"display_size needs a limit order, not {t.value}")
    if intent.twap is not None and t is not OrderType.MARKET:
        return _deny(Reason.INVALID_TWAP, f"twap needs a market order, not {t.value}")
    return None


def check_trigger_side(intent: OrderIntent, reference: Decimal) -> Denial | None:
    """A stop's trigger on the losing side of ``reference`` (a sell stop below it), a
    take-profit's on the winning side (a sell take-profit above it). Trailing stops are
    checked by ``check_trailing``."""
    trigger = intent.trigger_price
    if trigger is None or intent.type not in CONDITIONAL_TYPES or intent.trailing is not None:
        return None
    sell = intent.side is Side.SELL
    below = is_stop_side_exit(intent) == sell  # sell stop / buy take-profit: below the reference
    if (trigger < reference) if below else (trigger > reference):
        return None
    where = "below" if below else "above"
    return _deny(Reason.TRIGGER_WRONG_SIDE, f"{intent.side.value} {intent.type.value} trigger {trigger} must be "
                 f"{where} {reference}", limit=f"reference_price={reference}")


def check_trailing(intent: OrderIntent, reference: Decimal) -> Denial | None:
    """Exactly one of offset / offset_bps, positive (bps below 10000); an activation price on
    the side the market has yet to reach (a sell trail activates above the reference); a
    trigger price, if set, equal to the activation price."""
    spec = intent.trailing
    if spec is None:
        return None
    if (spec.offset is None) == (spec.offset_bps is None):
        return _deny(Reason.TRAILING_INVALID, "give exactly one of offset or offset_bps")
    if spec.offset is not None and not _positive(spec.offset):
        return _deny(Reason.TRAILING_INVALID, f"offset {spec.offset} must be > 0")
    if spec.offset_bps is not None and not 0 < spec.offset_bps < _BPS:
        return _deny(Reason.TRAILING_INVALID, f"offset_bps {spec.offset_bps} must be in (0, 10000)")
    act = spec.activation_price
    if intent.trigger_price is not None and intent.trigger_price != act:
        return _deny(Reason.TRAILING_INVALID, "a trailing stop's trigger_price, if set, is its activation price")
    if act is not None:
        sell = intent.side is Side.SELL
        if not _positive(act) or ((act <= reference) if sell else (act >= reference)):
            where = "above" if sell else "below"
            return _deny(Reason.TRAILING_INVALID, f"{intent.side.value} trailing activation {act} must be {where} "
                         f"{reference}", limit=f"reference_price={reference}")
    return None


def check_display_size(display: Decimal | None, size: Decimal, inst: InstrumentSection) -> Denial | None:
    """An iceberg shows a positive part of its size, at least the venue's minimum quantity,
    in whole steps."""
    if display is None:
        return None
    if not _positive(display) or display >= size:
        return _deny(Reason.INVALID_DISPLAY_SIZE, f"display_size {display} must be > 0 and < size {size}")
    if display < inst.min_qty or not is_multiple(display, inst.step_size):
        return _deny(Reason.INVALID_DISPLAY_SIZE, f"display_size {display} is below {inst.min_qty} or not a "
                     f"multiple of {inst.step_size}", limit=f"min_qty={inst.min_qty}")
    return None


def check_twap(intent: OrderIntent) -> Denial | None:
    """0 < interval <= horizon; participation, if set, in (0, 1]."""
    spec = intent.twap
    if spec is None:
        return None
    if not (0 < spec.interval_s <= spec.horizon_s < float("inf")):
        return _deny(Reason.INVALID_TWAP, f"need 0 < interval_s ({spec.interval_s:g}) <= horizon_s "
                     f"({spec.horizon_s:g})")
    p = spec.max_participation
    if p is not None and not 0 < p <= 1:
        return _deny(Reason.INVALID_TWAP, f"max_participation {p:g} must be in (0, 1]")
    return None


def check_leg(intent: OrderIntent, size: Decimal, anchor: Decimal, inst: InstrumentSection) -> Denial | None:
    """A leg's trigger/trailing/display/TWAP fields and the venue's filters for ``size`` at
    the leg's price; triggers relative to ``anchor`` (reference or entry price)."""
    price = leg_price(intent, anchor)
    return (
        check_trigger_side(intent, anchor)
        or check_trailing(intent, anchor)
        or check_twap(intent)
        or check_price_precision(intent.limit_price, inst.tick_size)
        or check_price_precision(intent.trigger_price, inst.tick_size)
        or check_qty_precision(size, inst.step_size)
        or check_qty_bounds(size, inst.min_qty, inst.max_qty)
        or check_min_notional(size * price, inst.min_notional)
        or check_display_size(intent.display_size, size, inst)
    )


# -- decisions -------------------------------------------------------------------------------


def check_gate(symbol: str, x: RiskInputs, *, protective: bool = False) -> Denial | None:
    """Kill switch, HALTED, loss limits (not for protective exits) and the instrument."""
    d = check_kill_switch(x.kill_switch) or check_halted(x.state)
    if d is None and not protective:
        d = check_daily_loss(x.daily_pnl, x.risk.daily_loss_limit) or check_drawdown(
            x.equity, x.equity_peak, x.risk.max_drawdown_pct)
    return d or check_instrument(symbol, x.instrument)


def reduces_position(intent: OrderIntent, position: Decimal) -> bool:
    """True when ``intent`` shrinks ``position`` without flipping it (its size at most the position)."""
    size = intent.size
    if size is None or size <= 0:
        return False
    if intent.side is Side.SELL:
        return position > 0 and size <= position
    return position < 0 and size <= -position


def evaluate_order(intent: OrderIntent, x: RiskInputs, *, child: bool, cash: bool = True,
                   count_rate: bool = True) -> Approval | Denial:
    """Decide a conditional/algorithmic order (``child=False``) or a released child
    (``child=True``); see the module docstring for what applies to which.

    ``cash=False`` skips the cash check (the second leg of a native list shares the
    first's); ``count_rate=False`` skips the order rate (a list is counted once).
    """
    protective = child and intent.protective and reduces_position(intent, x.position)
    d = check_gate(intent.symbol, x, protective=protective) or check_order_shape(intent)
    inst = x.instrument
    if d is not None or inst is None:
        return d or _deny(Reason.UNKNOWN_INSTRUMENT, intent.symbol)
    ref = x.reference_price
    if protective and not _positive(ref):
        ref = leg_price(intent, _ZERO) or None  # a protective exit still has its own price
    d = check_reference_price(intent.symbol, ref)
    if d is not None or ref is None:
        return d or _deny(Reason.NO_REFERENCE_PRICE, intent.symbol)
    if not protective:
        d = check_stale_data(x.data_age_s, x.limits.stale_data_s)
        if d is not None:
            return d
    price = leg_price(intent, ref)
    size = leg_size(intent, price, inst.step_size)
    d = check_leg(intent, size, ref, inst)
    if d is not None:
        return d
    side = intent.side
    if not protective:
        sliced = not child and (intent.twap is not None or intent.display_size is not None)
        collar_anchor = intent.trigger_price if intent.trigger_price is not None else ref
        d = (
            check_reduce_only(x.state, side, size, x.position, x.open_sell if side is Side.SELL else x.open_buy)
            or (None if intent.trailing is not None
                else check_price_collar(intent.limit_price, collar_anchor, x.limits.price_collar_bps))
            or (None if sliced else check_max_order_notional(size * price, x.limits.max_order_notional))
            or check_max_position(side, size, x.position, x.open_buy if side is Side.BUY else x.open_sell,
                                  x.limits.max_position)
            or check_gross_exposure(x.gross_exposure, x.position, side, size, ref, x.risk.max_gross_exposure)
            or (check_open_orders(x.open_orders, x.risk.max_open_orders) if child
                else check_order_rate(x.recent_orders, x.risk.max_orders_per_minute, x.rate_window_s)
                if count_rate else None)
        )
        if d is not None:
            return d
    if child and cash:
        cash_price = price
        if intent.type not in PRICED_TYPES and side is Side.BUY:
            cash_price = price * (1 + Decimal(repr(x.risk.market_buy_buffer_bps)) / _BPS)
        d = check_cash(side, size, cash_price, x.risk.assumed_fee_bps, x.base_free, x.quote_free)
        if d is not None:
            return d
    return Approval(size=size, reference_price=ref)


def _list_shape(lst: OrderList) -> str:
    """What is wrong with a strategy's list as a whole ('' when nothing)."""
    orders = lst.orders
    if not orders:
        return "an order list needs orders"
    for o in orders:
        if o.strategy != lst.strategy or o.symbol != lst.symbol:
            return "every order of a list has the list's strategy and symbol"
        if o.parent or o.client_order_id or o.protective:
            return "parent, client_order_id and protective are set by the daemon, not by a strategy"
    n = len(orders)
    if lst.kind is ListKind.BRACKET:
        entry, exits = orders[0], orders[1:]
        if not entry.is_plain:
            return "a bracket's entry is a market or limit order"
        if not 1 <= n - 1 <= 2:
            return "a bracket has an entry and one or two exits"
        if any(e.side is entry.side or e.type not in CONDITIONAL_TYPES for e in exits):
            return "a bracket's exits are stops or take-profits on the entry's opposite side"
        if any(e.size is not None or e.notional is not None for e in exits):
            return "a bracket's exits have no size: they follow the entry's fills"
        if n == 3 and is_stop_side_exit(exits[0]) == is_stop_side_exit(exits[1]):
            return "a bracket has at most one take-profit and one stop"
        if any(e.display_size is not None or e.twap is not None for e in exits):
            return "a bracket's exits are neither icebergs nor TWAPs"
    elif n != 2:
        return f"an {lst.kind.value} list has two orders"
    elif lst.kind is ListKind.OCO and any(o.size is None for o in orders):
        return "both legs of an OCO have a size"
    elif lst.kind is ListKind.OCO and orders[0].size != orders[1].size:
        return "both legs of an OCO have the same size"
    return ""


def _oco_bracketing(legs: Sequence[OrderIntent], ref: Decimal) -> str:
    """'' when the legs are exits of one side, a take-profit and a stop, one above and one below."""
    a, b = legs
    if a.side is not b.side:
        return "the legs of an OCO are on the same side"
    if a.type not in CONDITIONAL_TYPES or b.type not in CONDITIONAL_TYPES:
        return "the legs of an OCO are a stop and a take-profit"
    if is_stop_side_exit(a) == is_stop_side_exit(b):
        return "the legs of an OCO are one stop and one take-profit"
    for leg in legs:
        if check_trigger_side(leg, ref) is not None:
            return f"{leg.type.value} trigger {leg.trigger_price} is on the wrong side of {ref}: not one leg " \
                   "above and one below the market"
    return ""


def evaluate_list(lst: OrderList, x: RiskInputs) -> ListApproval | Denial:
    """Decide a strategy's OCO, OTO or bracket. The list is counted once against the order rate."""
    d = check_gate(lst.symbol, x)
    inst = x.instrument
    if d is not None or inst is None:
        return d or _deny(Reason.UNKNOWN_INSTRUMENT, lst.symbol)
    problem = _list_shape(lst)
    if problem:
        return _deny(Reason.INVALID_ORDER_LIST, problem)
    ref = x.reference_price
    d = check_reference_price(lst.symbol, ref) or check_stale_data(x.data_age_s, x.limits.stale_data_s)
    if d is not None or ref is None:
        return d or _deny(Reason.NO_REFERENCE_PRICE, lst.symbol)
    orders = lst.orders
    if lst.kind is ListKind.OCO:
        problem = _oco_bracketing(orders, ref)
        if problem:
            return _deny(Reason.OCO_NOT_BRACKETING, problem, limit=f"reference_price={ref}")
    first = evaluate_order(orders[0], x, child=False)
    if not isinstance(first, Approval):
        return first
    if lst.kind is ListKind.OCO:
        second = evaluate_order(orders[1], x, child=False, count_rate=False)
        if not isinstance(second, Approval):
            return second
        return ListApproval(sizes=(first.size, second.size), reference_price=ref)
    # Bracket exits and an OTO's pending order follow the first order's fills (the pending
    # one up to its own size, if it has one); their triggers are judged against its price.
    anchor = leg_price(orders[0], ref)
    sizes: list[Decimal | None] = [first.size]
    for o in orders[1:]:
        follows = o.size is None and o.notional is None
        d = check_order_shape(o, sized=not follows)
        size = first.size if follows else leg_size(o, leg_price(o, anchor), inst.step_size)
        d = d or check_leg(o, size, anchor, inst)
        if d is None and not follows and x.state is TradingState.REDUCING:
            d = check_reduce_only(x.state, o.side, size, x.position, x.open_sell if o.side is Side.SELL else x.open_buy)
        if d is not None:
            return d
        sizes.append(None if lst.kind is ListKind.BRACKET else size)
    return ListApproval(sizes=tuple(sizes), reference_price=ref)


def evaluate_native_list(lst: OrderList, x: RiskInputs) -> ListApproval | Denial:
    """Decide a native OCO/OTO list the contingent-order manager sends: every leg as a child
    (cash once, for the first leg: the legs of a list share what they lock)."""
    orders = lst.orders
    if lst.kind is ListKind.BRACKET or len(orders) != 2 or any(
        not o.parent or o.parent != orders[0].parent or o.symbol != lst.symbol or o.strategy != lst.strategy
        for o in orders
    ):
        return _deny(Reason.INVALID_ORDER_LIST, "a native list is an OCO or OTO of two orders of one parent")
    sizes: list[Decimal | None] = []
    ref = _ZERO
    for i, o in enumerate(orders):
        out = evaluate_order(o, x, child=True, cash=i == 0)
        if not isinstance(out, Approval):
            return out
        sizes.append(out.size)
        ref = out.reference_price
    return ListApproval(sizes=tuple(sizes), reference_price=ref)
