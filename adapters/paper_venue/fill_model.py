"""The paper venue's fill model: what liquidity a taker meets, at what prices, and when a print fills a limit.

Pure functions of the market state and the ``[venue.paper]`` settings; the matching engine
(``adapters.paper_venue.matching``) applies what they decide to orders and balances.

Visible liquidity
    What a taker of one side meets now, best first, as ``(price, size)`` levels (size
    ``inf``: unlimited), from the freshest source: the order book's levels (a
    ``BookSnapshot``, or the book rebuilt from ``BookDelta`` events) when the book set the
    current touch; else the ``Quote``'s touch, up to its quoted size (unlimited when the
    quote carries none); else the last ``Trade`` at its price, up to its size when
    ``trade_volume_limited``; else the last ``Bar``'s close, up to its volume when
    ``trade_volume_limited``.

The walk (``plan``)
    A taker order takes the visible levels in turn. Beyond them, with
    ``market_remainder = "fill_at_worst"``, it walks a simulated depth: chunks the size of
    the first visible level, the k-th ``k x depth_step_bps`` worse than the last visible
    price, at most ``depth_levels`` of them, the last one taking all that is left. Each price
    is moved ``slippage_bps`` against us and rounded to the tick against us; a limit price
    caps it, and a level beyond the limit ends the walk. Consecutive executions at the same
    price are one fill. Sizes are rounded down to the step.

Working market orders (``partial_then_next_events``)
    Each later event brings fresh liquidity (``fresh``): a quote its touch, a book event its
    levels, a print its size only on a symbol without quotes, a bar its close only on a symbol
    with bars alone. Each working order sees the whole of it.

Resting limit orders
    A resting buy at P is reached by a trade print or an ask at or below P (``limit_fill =
    "touch"``) or strictly below it (``"through"``); sells mirror that. One print (or the
    quote's size on each side) is shared among the orders it reaches; with the volume limit
    a quote without a size fills none (``quoted``). The engine keeps one
    float threshold per side so the per-event test is a single comparison either way.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from actors.model.market import Bar, BookDelta, BookSnapshot, MarketEvent, Quote, Trade
from actors.model.orders import Side
from config.schema.trading import InstrumentSection, PaperVenueSection

__all__ = ["FillModel", "Level", "MarketState", "dec", "round_to"]

_ZERO = Decimal(0)
_BPS = Decimal(10_000)
_INF = float("inf")

#: A price level: (price, size); size ``inf`` means unlimited.
Level = tuple[float, float]
_NO_LEVELS: tuple[Level, ...] = ()


def dec(value: float) -> Decimal:
    """A float as the Decimal of its shortest repr (0.1 -> Decimal("0.1"), not its binary value)."""
    return Decimal(repr(value))


def round_to(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` rounded to a multiple of ``step`` (``ROUND_FLOOR`` / ``ROUND_CEILING``)."""
    try:
        return (value / step).to_integral_value(rounding=rounding) * step
    except InvalidOperation:
        return value


def _merge_levels(
    levels: tuple[Level, ...], changes: tuple[Level, ...], best_high: bool
) -> tuple[Level, ...]:
    """``levels`` with ``changes`` applied (size 0 removes a level), best first."""
    book = dict(levels)
    for price, size in changes:
        if size > 0.0:
            book[price] = size
        else:
            book.pop(price, None)
    return tuple(sorted(book.items(), reverse=best_high))


class MarketState:
    """One symbol's market as the feed last showed it. The events themselves are kept: no copies.

    ``top`` is the freshest touch: the last ``Quote``, or the book when a book event came
    last; ``depth`` the last book (snapshot, or rebuilt from deltas); ``trade`` and ``bar``
    the last print and bar.
    """

    __slots__ = ("bar", "depth", "top", "trade")

    def __init__(self) -> None:
        self.top: Quote | BookSnapshot | None = None
        self.depth: BookSnapshot | None = None
        self.trade: Trade | None = None
        self.bar: Bar | None = None

    def apply_book(self, event: BookSnapshot | BookDelta) -> None:
        """Take a book snapshot, or apply a delta to the last book (from empty when there is none)."""
        if type(event) is BookSnapshot:
            book = event
        else:
            prev = self.depth
            assert isinstance(event, BookDelta)
            book = BookSnapshot(
                symbol=event.symbol, ts_ms=event.ts_ms, recv_ns=event.recv_ns, seq=event.last_seq,
                bids=_merge_levels(prev.bids if prev is not None else _NO_LEVELS, event.bids, True),
                asks=_merge_levels(prev.asks if prev is not None else _NO_LEVELS, event.asks, False),
            )
        self.depth = book
        self.top = book

    def touch(self, side: Side) -> Level:
        """The best opposite level a taker of ``side`` meets: (price, size); (0.0, 0.0) when unknown."""
        top = self.top
        if top is None:
            return 0.0, 0.0
        if type(top) is Quote:
            return (top.ask, top.ask_size) if side is Side.BUY else (top.bid, top.bid_size)
        assert isinstance(top, BookSnapshot)
        levels = top.asks if side is Side.BUY else top.bids
        return levels[0] if levels else (0.0, 0.0)

    def reference(self, side: Side) -> float:
        """Price a taker of ``side`` would meet now, before slippage (0.0: unknown)."""
        price = self.touch(side)[0]
        if price > 0.0:
            return price
        if self.trade is not None and self.trade.price > 0.0:
            return self.trade.price
        if self.bar is not None and self.bar.close > 0.0:
            return self.bar.close
        return 0.0


class FillModel:
    """The fill rules of ``[venue.paper]``: visible liquidity, the walk, taker prices, limit triggers."""

    __slots__ = ("_depth_levels", "_depth_step", "_slip", "fill_rest", "through", "volume_limited")

    def __init__(self, config: PaperVenueSection) -> None:
        self._slip = dec(config.slippage_bps) / _BPS
        self._depth_step = dec(config.depth_step_bps) / _BPS
        self._depth_levels = config.depth_levels
        self.through = config.limit_fill == "through"
        """Resting limits fill only when the market trades or quotes strictly through them."""
        self.volume_limited = config.trade_volume_limited
        """Prints, quotes and bars offer only their own size."""
        self.fill_rest = config.market_remainder == "fill_at_worst"
        """A taker fills beyond the visible liquidity now (the simulated depth)."""

    # -- liquidity ---------------------------------------------------------------------------
    def _sized(self, price: float, size: float) -> tuple[Level, ...]:
        return ((price, size if self.volume_limited and size > 0.0 else _INF),)

    def visible(self, market: MarketState, side: Side) -> tuple[Level, ...]:
        """The liquidity a taker of ``side`` meets now, best first (empty: no market data)."""
        top = market.top
        if top is not None:
            if type(top) is Quote:
                price, size = (top.ask, top.ask_size) if side is Side.BUY else (top.bid, top.bid_size)
                if price > 0.0:
                    return ((price, size if size > 0.0 else _INF),)
            else:
                assert isinstance(top, BookSnapshot)
                levels = top.asks if side is Side.BUY else top.bids
                if levels:
                    return levels
        trade = market.trade
        if trade is not None and trade.price > 0.0:
            return self._sized(trade.price, trade.size)
        bar = market.bar
        if bar is not None and bar.close > 0.0:
            return self._sized(bar.close, bar.volume)
        return _NO_LEVELS

    def fresh(self, market: MarketState, event: MarketEvent, side: Side) -> tuple[Level, ...]:
        """The liquidity ``event`` brings a working taker order (already applied to ``market``).

        A quote or book event brings the new touch or levels; a print brings its size only
        when no quote or book was ever seen; a bar its close only when neither was.
        """
        cls = type(event)
        if cls is Quote or cls is BookSnapshot or cls is BookDelta:
            return self.visible(market, side)
        if cls is Trade and market.top is None:
            assert isinstance(event, Trade)
            return self._sized(event.price, event.size)
        if cls is Bar and market.top is None and market.trade is None:
            assert isinstance(event, Bar)
            return self._sized(event.close, event.volume)
        return _NO_LEVELS

    # -- prices ------------------------------------------------------------------------------
    def taker_price(self, side: Side, ref: Decimal, inst: InstrumentSection, cap: Decimal | None) -> Decimal:
        """``ref`` moved by the slippage against us and rounded to the tick against us, capped at ``cap``."""
        if side is Side.BUY:
            p = round_to(ref * (1 + self._slip), inst.tick_size, ROUND_CEILING)
            return min(p, cap) if cap is not None else p
        p = round_to(ref * (1 - self._slip), inst.tick_size, ROUND_FLOOR)
        if p <= 0:
            p = inst.tick_size
        return max(p, cap) if cap is not None else p

    def plan(
        self, levels: tuple[Level, ...], side: Side, qty: Decimal, inst: InstrumentSection, cap: Decimal | None
    ) -> list[tuple[Decimal, Decimal]]:
        """Executions ``(size, price)`` of a taker of ``qty`` against ``levels`` (see the module doc).

        The walk goes past ``levels`` only with ``fill_at_worst``; with ``cap`` (a limit
        price) it stops at the first level beyond it. Their sizes may add up to less than ``qty``.
        """
        buy = side is Side.BUY
        step = inst.step_size
        out: list[tuple[Decimal, Decimal]] = []
        remaining = qty
        cap_f = float(cap) if cap is not None else 0.0
        last: Decimal | None = None
        chunk: Decimal | None = None
        for price, size in levels:
            if cap is not None and (price > cap_f if buy else price < cap_f):
                return out
            last = dec(price)
            avail = remaining if size == _INF else round_to(dec(size), step, ROUND_FLOOR)
            if chunk is None:
                chunk = avail
            take = min(remaining, avail)
            if take > 0:
                self._add(out, take, self.taker_price(side, last, inst, cap))
                remaining -= take
                if remaining <= 0:
                    return out
        if last is None or not self.fill_rest:
            return out
        # The simulated depth beyond the visible levels.
        step_frac = self._depth_step
        n = self._depth_levels if step_frac > 0 and chunk is not None and chunk > 0 else 0
        if n == 0:
            self._add(out, remaining, self.taker_price(side, last, inst, cap))
            return out
        assert chunk is not None
        for k in range(1, n + 1):
            raw = last * (1 + k * step_frac) if buy else last * (1 - k * step_frac)
            if cap is not None and (raw > cap if buy else raw < cap):
                return out
            take = remaining if k == n else min(chunk, remaining)
            self._add(out, take, self.taker_price(side, raw, inst, cap))
            remaining -= take
            if remaining <= 0:
                break
        return out

    @staticmethod
    def _add(out: list[tuple[Decimal, Decimal]], qty: Decimal, price: Decimal) -> None:
        if out and out[-1][1] == price:
            out[-1] = (out[-1][0] + qty, price)
        else:
            out.append((qty, price))

    # -- resting limit orders ------------------------------------------------------------------
    def available(self, size: float) -> Decimal | None:
        """What a print (or bar) of ``size`` offers resting orders; None: unlimited (0: size unknown)."""
        return dec(size) if self.volume_limited and size > 0.0 else None

    def quoted(self, size: float) -> Decimal | None:
        """What a quote of ``size`` at or through resting orders offers them; None: unlimited.

        With the volume limit a quote without a size offers nothing: quotes derived from
        trades carry none, and the print they come from already filled what it could.
        """
        if not self.volume_limited:
            return None
        return dec(size) if size > 0.0 else _ZERO

    def buy_trigger(self, best_buy: float) -> float:
        """A trade or ask at or below this reaches a resting buy priced ``best_buy``."""
        return math.nextafter(best_buy, -_INF) if self.through else best_buy

    def sell_trigger(self, best_sell: float) -> float:
        """A trade or bid at or above this reaches a resting sell priced ``best_sell``."""
        return math.nextafter(best_sell, _INF) if self.through else best_sell

    def reaches_buy(self, limit: float, low: float) -> bool:
        """A market price ``low`` fills a resting buy at ``limit``."""
        return limit > low if self.through else limit >= low

    def reaches_sell(self, limit: float, high: float) -> bool:
        """A market price ``high`` fills a resting sell at ``limit``."""
        return limit < high if self.through else limit <= high
