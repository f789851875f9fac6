"""Pre-trade risk checks: pure, fast functions that return ``None`` (pass) or a ``Denial``.

Each check looks at one limit and nothing else; ``evaluate`` runs them in a fixed order
over a ``RiskInputs`` value and returns the first denial or an ``Approval`` carrying the
size the intent resolved to. Nothing here does I/O, reads a clock or mutates shared
state, so every check is testable on its own and cheap enough to run per intent.

Money is ``Decimal``; market prices arrive as ``float`` and are converted with
``to_decimal`` (shortest repr, so an exchange price parsed from text stays exact).
Reason codes are stable strings (``Reason``): they are stored, shown in the admin API and
counted in metrics, and must never change once released.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from enum import StrEnum

import msgspec

from actors.model.control import TradingState
from actors.model.orders import Balance, OrderIntent, OrderType, Side
from config.schema.trading import InstrumentSection, RiskSection

_BPS = Decimal(10_000)
_ZERO = Decimal(0)


class Reason(StrEnum):
    """Stable denial reason codes."""

    TRADING_HALTED = "TRADING_HALTED"
    REDUCE_ONLY = "REDUCE_ONLY"
    KILL_SWITCH = "KILL_SWITCH"
    INVALID_INTENT = "INVALID_INTENT"
    UNKNOWN_INSTRUMENT = "UNKNOWN_INSTRUMENT"
    INSTRUMENT_NOT_TRADABLE = "INSTRUMENT_NOT_TRADABLE"
    PRICE_PRECISION = "PRICE_PRECISION"
    QTY_PRECISION = "QTY_PRECISION"
    QTY_BELOW_MIN = "QTY_BELOW_MIN"
    QTY_ABOVE_MAX = "QTY_ABOVE_MAX"
    MIN_NOTIONAL = "MIN_NOTIONAL"
    PRICE_COLLAR = "PRICE_COLLAR"
    MAX_ORDER_NOTIONAL = "MAX_ORDER_NOTIONAL"
    MAX_POSITION = "MAX_POSITION"
    MAX_GROSS_EXPOSURE = "MAX_GROSS_EXPOSURE"
    MAX_OPEN_ORDERS = "MAX_OPEN_ORDERS"
    ORDER_RATE = "ORDER_RATE"
    INSUFFICIENT_CASH = "INSUFFICIENT_CASH"
    STALE_DATA = "STALE_DATA"
    DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
    MAX_DRAWDOWN = "MAX_DRAWDOWN"
    NO_REFERENCE_PRICE = "NO_REFERENCE_PRICE"
    # Conditional and algorithmic orders, order lists (``actors.risk.contingent_checks``).
    TRIGGER_WRONG_SIDE = "TRIGGER_WRONG_SIDE"
    TRAILING_INVALID = "TRAILING_INVALID"
    OCO_NOT_BRACKETING = "OCO_NOT_BRACKETING"
    INVALID_DISPLAY_SIZE = "INVALID_DISPLAY_SIZE"
    INVALID_TWAP = "INVALID_TWAP"
    INVALID_ORDER_LIST = "INVALID_ORDER_LIST"
    CONTINGENT_UNAVAILABLE = "CONTINGENT_UNAVAILABLE"


#: Denials that also switch trading to HALTED.
HALTING_REASONS = frozenset({Reason.DAILY_LOSS_LIMIT, Reason.MAX_DRAWDOWN})


class Denial(msgspec.Struct, frozen=True, kw_only=True):
    """Why an intent was refused: a stable ``reason`` code, the ``limit`` hit (``name=value``)
    and a human-readable ``detail``."""

    reason: str
    limit: str = ""
    detail: str = ""


class Approval(msgspec.Struct, frozen=True, kw_only=True):
    """An intent passed every check: its resolved base ``size`` and the reference price used."""

    size: Decimal
    reference_price: Decimal


class SymbolLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The limits that apply to one symbol: the risk section's defaults with its overrides."""

    max_order_notional: Decimal
    max_position: Decimal
    price_collar_bps: float
    stale_data_s: float


class RiskInputs(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ``evaluate`` needs to decide one intent; assembled by the risk gate."""

    state: TradingState
    kill_switch: bool
    instrument: InstrumentSection | None
    limits: SymbolLimits
    risk: RiskSection
    reference_price: Decimal | None
    data_age_s: float | None
    position: Decimal = _ZERO
    open_buy: Decimal = _ZERO
    open_sell: Decimal = _ZERO
    gross_exposure: Decimal = _ZERO
    open_orders: int = 0
    recent_orders: int = 0
    rate_window_s: float = 60.0
    base_free: Decimal = _ZERO
    quote_free: Decimal = _ZERO
    daily_pnl: Decimal | None = None
    equity: Decimal | None = None
    equity_peak: Decimal | None = None


# -- helpers ---------------------------------------------------------------------------------


def to_decimal(value: float) -> Decimal:
    """Convert a market-data float to Decimal via its shortest repr (exact for parsed prices)."""
    return Decimal(repr(value))


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """True when ``value`` is an exact multiple of ``step`` (``step`` > 0)."""
    try:
        return value % step == 0
    except InvalidOperation:
        return False


def round_down(value: Decimal, step: Decimal) -> Decimal:
    """Round a non-negative ``value`` down to a multiple of ``step``."""
    if value <= 0:
        return _ZERO
    try:
        return (value / step).to_integral_value(rounding=ROUND_DOWN) * step
    except InvalidOperation:
        return _ZERO


def limits_for(risk: RiskSection, symbol: str) -> SymbolLimits:
    """The limits for ``symbol``: per-symbol overrides where set, the section's defaults otherwise."""
    o = risk.symbols.get(symbol)
    return SymbolLimits(
        max_order_notional=(
            o.max_order_notional if o is not None and o.max_order_notional is not None else risk.max_order_notional
        ),
        max_position=o.max_position if o is not None and o.max_position is not None else risk.max_position,
        price_collar_bps=(
            o.price_collar_bps if o is not None and o.price_collar_bps is not None else risk.price_collar_bps
        ),
        stale_data_s=o.stale_data_s if o is not None and o.stale_data_s is not None else risk.stale_data_s,
    )


def gross_exposure(positions: Mapping[str, Decimal], prices: Mapping[str, Decimal]) -> Decimal:
    """Sum of |position| x reference price over symbols that have a price."""
    total = _ZERO
    for symbol, qty in positions.items():
        price = prices.get(symbol)
        if qty and price is not None:
            total += abs(qty) * price
    return total


def mark_to_market(
    balances: Mapping[str, Balance],
    instruments: Mapping[str, InstrumentSection],
    prices: Mapping[str, Decimal],
    asset: str,
) -> Decimal | None:
    """Value of all balances in ``asset``, converting through instruments quoted in it.

    Returns None when some non-zero balance has no price path to ``asset`` (equity unknown:
    better no loss checks than wrong ones).
    """
    rate: dict[str, Decimal] = {asset: Decimal(1)}
    for symbol, inst in instruments.items():
        price = prices.get(symbol)
        if price is None:
            continue
        if inst.quote == asset and inst.base not in rate:
            rate[inst.base] = price
        elif inst.base == asset and inst.quote not in rate and price > 0:
            rate[inst.quote] = Decimal(1) / price
    total = _ZERO
    for name, bal in balances.items():
        amount = bal.free + bal.locked
        if not amount:
            continue
        r = rate.get(name)
        if r is None:
            return None
        total += amount * r
    return total


def order_price(intent: OrderIntent, reference: Decimal) -> Decimal:
    """The price an order's notional is measured at: its limit price, else the reference."""
    if intent.type is OrderType.LIMIT and intent.limit_price is not None:
        return intent.limit_price
    return reference


def resolve_size(intent: OrderIntent, reference: Decimal, step: Decimal) -> Decimal:
    """Base size of an intent: ``size`` as given, or ``notional`` / price rounded DOWN to ``step``.

    The price is the limit price for limit orders (what the notional buys there), else the
    reference price.
    """
    if intent.size is not None:
        return intent.size
    notional = intent.notional if intent.notional is not None else _ZERO
    price = order_price(intent, reference)
    if price <= 0:
        return _ZERO
    return round_down(notional / price, step)


# -- checks ----------------------------------------------------------------------------------


def check_kill_switch(kill_switch: bool) -> Denial | None:
    """Deny everything while the kill switch is engaged."""
    if kill_switch:
        return Denial(reason=Reason.KILL_SWITCH, limit="kill_switch=true", detail="kill switch engaged")
    return None


def check_halted(state: TradingState) -> Denial | None:
    """HALTED allows cancels only, so every intent is denied."""
    if state is TradingState.HALTED:
        return Denial(reason=Reason.TRADING_HALTED, limit="trading_state=HALTED", detail="trading is halted")
    return None


def check_reduce_only(
    state: TradingState, side: Side, size: Decimal, position: Decimal, open_reducing: Decimal = _ZERO
) -> Denial | None:
    """In REDUCING, allow only orders that shrink the position without flipping it.

    ``open_reducing`` is the unfilled size of open orders already working on the reducing
    side; together with this order it may not exceed the position.
    """
    if state is not TradingState.REDUCING:
        return None
    reduces = (position > 0 and side is Side.SELL) or (position < 0 and side is Side.BUY)
    if reduces and size + open_reducing <= abs(position):
        return None
    return Denial(
        reason=Reason.REDUCE_ONLY,
        limit="trading_state=REDUCING",
        detail=f"{side.value} {size} does not reduce position {position} (open reducing {open_reducing})",
    )


def check_instrument(symbol: str, instrument: InstrumentSection | None) -> Denial | None:
    """The symbol must be a configured instrument that is tradable."""
    if instrument is None:
        return Denial(reason=Reason.UNKNOWN_INSTRUMENT, limit="instruments", detail=f"unknown symbol {symbol!r}")
    if not instrument.tradable:
        return Denial(
            reason=Reason.INSTRUMENT_NOT_TRADABLE,
            limit="instruments.tradable=false",
            detail=f"{symbol} is not tradable",
        )
    return None


def check_intent_shape(intent: OrderIntent) -> Denial | None:
    """Exactly one of size / notional, positive; limit orders carry a positive limit price."""
    if (intent.size is None) == (intent.notional is None):
        return Denial(reason=Reason.INVALID_INTENT, detail="exactly one of size or notional must be set")
    amount = intent.size if intent.size is not None else intent.notional
    if amount is None or not amount.is_finite() or amount <= 0:
        return Denial(reason=Reason.INVALID_INTENT, detail=f"size/notional must be positive, got {amount}")
    if intent.type is OrderType.LIMIT:
        lp = intent.limit_price
        if lp is None or not lp.is_finite() or lp <= 0:
            return Denial(reason=Reason.INVALID_INTENT, detail="limit order needs a positive limit_price")
    elif intent.limit_price is not None:
        return Denial(reason=Reason.INVALID_INTENT, detail="market order must not carry a limit_price")
    return None


def check_reference_price(symbol: str, reference: Decimal | None) -> Denial | None:
    """A reference price (last trade, quote mid or bar close) must be known."""
    if reference is None or reference <= 0:
        return Denial(reason=Reason.NO_REFERENCE_PRICE, detail=f"no market price for {symbol} yet")
    return None


def check_stale_data(age_s: float | None, max_age_s: float) -> Denial | None:
    """The symbol's last market event must be younger than ``max_age_s`` (None: never seen)."""
    if age_s is None:
        return Denial(reason=Reason.STALE_DATA, limit=f"stale_data_s={max_age_s:g}", detail="no market data")
    if age_s > max_age_s:
        return Denial(
            reason=Reason.STALE_DATA,
            limit=f"stale_data_s={max_age_s:g}",
            detail=f"last market event {age_s:.3f}s old",
        )
    return None


def check_price_precision(price: Decimal | None, tick_size: Decimal) -> Denial | None:
    """A limit price must be a multiple of the tick size."""
    if price is not None and not is_multiple(price, tick_size):
        return Denial(
            reason=Reason.PRICE_PRECISION,
            limit=f"tick_size={tick_size}",
            detail=f"price {price} is not a multiple of {tick_size}",
        )
    return None


def check_qty_precision(size: Decimal, step_size: Decimal) -> Denial | None:
    """A size must be a multiple of the step size."""
    if not is_multiple(size, step_size):
        return Denial(
            reason=Reason.QTY_PRECISION,
            limit=f"step_size={step_size}",
            detail=f"size {size} is not a multiple of {step_size}",
        )
    return None


def check_qty_bounds(size: Decimal, min_qty: Decimal, max_qty: Decimal) -> Denial | None:
    """The venue's minimum and maximum order quantity (a zero size is below any minimum)."""
    if size <= 0 or size < min_qty:
        return Denial(reason=Reason.QTY_BELOW_MIN, limit=f"min_qty={min_qty}", detail=f"size {size} < {min_qty}")
    if size > max_qty:
        return Denial(reason=Reason.QTY_ABOVE_MAX, limit=f"max_qty={max_qty}", detail=f"size {size} > {max_qty}")
    return None


def check_min_notional(notional: Decimal, min_notional: Decimal) -> Denial | None:
    """The order's value must reach the venue's minimum notional."""
    if notional < min_notional:
        return Denial(
            reason=Reason.MIN_NOTIONAL,
            limit=f"min_notional={min_notional}",
            detail=f"notional {notional} < {min_notional}",
        )
    return None


def check_price_collar(limit_price: Decimal | None, reference: Decimal, collar_bps: float) -> Denial | None:
    """A limit price may not be further than ``collar_bps`` from the reference (either side)."""
    if limit_price is None or reference <= 0:
        return None
    distance_bps = abs(limit_price - reference) / reference * _BPS
    if distance_bps > Decimal(repr(collar_bps)):
        return Denial(
            reason=Reason.PRICE_COLLAR,
            limit=f"price_collar_bps={collar_bps:g}",
            detail=f"limit {limit_price} is {distance_bps:.1f} bps from reference {reference}",
        )
    return None


def check_max_order_notional(notional: Decimal, max_notional: Decimal) -> Denial | None:
    """The order's value may not exceed the per-order maximum."""
    if notional > max_notional:
        return Denial(
            reason=Reason.MAX_ORDER_NOTIONAL,
            limit=f"max_order_notional={max_notional}",
            detail=f"notional {notional} > {max_notional}",
        )
    return None


def check_max_position(
    side: Side,
    size: Decimal,
    position: Decimal,
    open_same_side: Decimal,
    max_position: Decimal,
) -> Denial | None:
    """|position + open orders on this side + this order| may not exceed the limit.

    An order that leaves the absolute position smaller than before always passes, so a
    position over its (possibly just lowered) limit can still be reduced.
    """
    if side is Side.BUY:
        before = position + open_same_side
        after = before + size
    else:
        before = position - open_same_side
        after = before - size
    if abs(after) > max_position and abs(after) > abs(before):
        return Denial(
            reason=Reason.MAX_POSITION,
            limit=f"max_position={max_position}",
            detail=f"position after order {after} exceeds {max_position}",
        )
    return None


def check_gross_exposure(
    gross_now: Decimal,
    position: Decimal,
    side: Side,
    size: Decimal,
    price: Decimal,
    max_gross: Decimal,
) -> Denial | None:
    """Sum over symbols of |position| x price after the order may not exceed the limit.

    ``gross_now`` must include this symbol's current exposure at ``price``. Orders that
    lower the gross exposure always pass.
    """
    delta = size if side is Side.BUY else -size
    after = gross_now - abs(position) * price + abs(position + delta) * price
    if after > max_gross and after > gross_now:
        return Denial(
            reason=Reason.MAX_GROSS_EXPOSURE,
            limit=f"max_gross_exposure={max_gross}",
            detail=f"gross exposure after order {after} exceeds {max_gross}",
        )
    return None


def check_open_orders(open_orders: int, max_open_orders: int) -> Denial | None:
    """At most ``max_open_orders`` orders may be open, this one included."""
    if open_orders >= max_open_orders:
        return Denial(
            reason=Reason.MAX_OPEN_ORDERS,
            limit=f"max_open_orders={max_open_orders}",
            detail=f"{open_orders} orders already open",
        )
    return None


def check_order_rate(recent_orders: int, max_orders: int, window_s: float = 60.0) -> Denial | None:
    """At most ``max_orders`` submissions within the rolling window, this one included."""
    if recent_orders >= max_orders:
        return Denial(
            reason=Reason.ORDER_RATE,
            limit=f"max_orders_per_minute={max_orders}",
            detail=f"{recent_orders} orders in the last {window_s:g}s",
        )
    return None


def check_cash(
    side: Side,
    size: Decimal,
    price: Decimal,
    fee_bps: float,
    base_free: Decimal,
    quote_free: Decimal,
) -> Denial | None:
    """Spot: a buy needs size x price plus fees in free quote; a sell needs size in free base."""
    if side is Side.BUY:
        need = size * price * (1 + Decimal(repr(fee_bps)) / _BPS)
        if need > quote_free:
            return Denial(
                reason=Reason.INSUFFICIENT_CASH,
                limit="balance.quote",
                detail=f"buy needs {need} quote, {quote_free} free",
            )
    elif size > base_free:
        return Denial(
            reason=Reason.INSUFFICIENT_CASH,
            limit="balance.base",
            detail=f"sell needs {size} base, {base_free} free",
        )
    return None


def check_daily_loss(daily_pnl: Decimal | None, limit: Decimal) -> Denial | None:
    """Deny (and halt) once today's loss reaches the limit. Unknown PnL passes."""
    if daily_pnl is not None and -daily_pnl >= limit:
        return Denial(
            reason=Reason.DAILY_LOSS_LIMIT,
            limit=f"daily_loss_limit={limit}",
            detail=f"today's pnl {daily_pnl}",
        )
    return None


def drawdown_pct(equity: Decimal | None, peak: Decimal | None) -> float | None:
    """Drawdown from the peak in percent (None when unknown)."""
    if equity is None or peak is None or peak <= 0:
        return None
    return float((peak - equity) / peak * 100) if equity < peak else 0.0


def check_drawdown(equity: Decimal | None, peak: Decimal | None, max_drawdown_pct: float) -> Denial | None:
    """Deny (and halt) once equity is ``max_drawdown_pct`` below its peak. Unknown equity passes."""
    dd = drawdown_pct(equity, peak)
    if dd is not None and dd >= max_drawdown_pct:
        return Denial(
            reason=Reason.MAX_DRAWDOWN,
            limit=f"max_drawdown_pct={max_drawdown_pct:g}",
            detail=f"equity {equity} is {dd:.2f}% below peak {peak}",
        )
    return None


# -- all checks, in order --------------------------------------------------------------------


def evaluate(intent: OrderIntent, x: RiskInputs) -> Approval | Denial:
    """Run every check in order; return the first Denial, or an Approval with the resolved size."""
    d = check_kill_switch(x.kill_switch) or check_halted(x.state)
    if d is not None:
        return d
    risk = x.risk
    d = check_daily_loss(x.daily_pnl, risk.daily_loss_limit) or check_drawdown(
        x.equity, x.equity_peak, risk.max_drawdown_pct
    )
    if d is not None:
        return d
    inst = x.instrument
    d = check_instrument(intent.symbol, inst)
    if d is not None or inst is None:
        return d or Denial(reason=Reason.UNKNOWN_INSTRUMENT, detail=intent.symbol)
    d = check_intent_shape(intent)
    if d is not None:
        return d
    ref = x.reference_price
    d = check_reference_price(intent.symbol, ref)
    if d is not None or ref is None:
        return d or Denial(reason=Reason.NO_REFERENCE_PRICE, detail=intent.symbol)
    d = check_stale_data(x.data_age_s, x.limits.stale_data_s)
    if d is not None:
        return d
    size = resolve_size(intent, ref, inst.step_size)
    price = order_price(intent, ref)
    notional = size * price
    side = intent.side
    d = (
        check_reduce_only(x.state, side, size, x.position, x.open_sell if side is Side.SELL else x.open_buy)
        or check_price_precision(intent.limit_price, inst.tick_size)
        or check_qty_precision(size, inst.step_size)
        or check_qty_bounds(size, inst.min_qty, inst.max_qty)
        or check_min_notional(notional, inst.min_notional)
        or check_price_collar(intent.limit_price, ref, x.limits.price_collar_bps)
        or check_max_order_notional(notional, x.limits.max_order_notional)
        or check_max_position(
            side, size, x.position, x.open_buy if side is Side.BUY else x.open_sell, x.limits.max_position
        )
        or check_gross_exposure(x.gross_exposure, x.position, side, size, ref, risk.max_gross_exposure)
        or check_open_orders(x.open_orders, risk.max_open_orders)
        or check_order_rate(x.recent_orders, risk.max_orders_per_minute, x.rate_window_s)
    )
    if d is not None:
        return d
    cash_price = price
    if intent.type is OrderType.MARKET and side is Side.BUY:
        cash_price = ref * (1 + Decimal(repr(risk.market_buy_buffer_bps)) / _BPS)
    d = check_cash(side, size, cash_price, risk.assumed_fee_bps, x.base_free, x.quote_free)
    if d is not None:
        return d
    return Approval(size=size, reference_price=ref)
