"""The strategy API: what a strategy sees, what it may do, and how one is loaded.

A strategy is a plain synchronous object driven by its host (``actors.strategy_host``):

- it is constructed with a ``StrategyContext`` (name, symbols, timeframe, raw params from
  its ``[[strategies]]`` config section), an ``emitter`` and a ``PortfolioView``;
- its ``params`` are validated by the class's own typed ``params_type`` (a msgspec Struct
  with ``forbid_unknown_fields``); a bad value raises ``StrategyParamsError`` naming the key;
- the host calls ``on_start``, then ``on_bar`` / ``on_trade`` / ``on_quote`` /
  ``on_order_event`` (order events and risk denials, ``OrderDenied``) as they arrive, and
  ``on_stop``;
- it acts only through ``buy``/``sell`` and the protective/algorithmic helpers (``stop``,
  ``take_profit``, ``trailing_stop``, ``oco``, ``oto``, ``submit_list``), which build an
  ``OrderIntent`` or ``OrderList`` and hand it to the emitter. It never sees a venue, the
  risk gate or the order manager;
- it reads its positions and open orders through the read-only ``PortfolioView``;
- ``reconfigure(params)`` validates new params at once and applies them at the next bar
  boundary (just before the next ``on_bar``), via ``on_params_changed``.

Strategies are loaded by import path ``"package.module:ClassName"`` (``load_strategy_class``);
a user's own modules live in the config's ``[daemon] strategy_dirs`` (``use_strategy_dirs``).
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import msgspec
import structlog

from actors.model.market import Bar, Quote, Trade
from actors.model.orders import (
    TERMINAL_STATUSES,
    ListKind,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderList,
    OrderType,
    Side,
    TrailingSpec,
    TriggerSource,
    TwapSpec,
)
from actors.model.positions import round_down
from actors.strategy_orders import DecimalLike, Exit, ExitLike, opt_decimal, shape_problem
from config.loader import LoadedConfig
from config.schema.market import StrategySection
from config.schema.trading import InstrumentSection

__all__ = [
    "Exit",
    "IntentEmitter",
    "ListKind",
    "NoParams",
    "OpenOrder",
    "OrderList",
    "PortfolioView",
    "Strategy",
    "StrategyContext",
    "StrategyLoadError",
    "StrategyParamsError",
    "Submission",
    "TrailingSpec",
    "TriggerSource",
    "TwapSpec",
    "load_strategy_class",
    "strategy_dirs",
    "use_strategy_dirs",
]

P = TypeVar("P", bound=msgspec.Struct)
#: What a strategy hands to its emitter: one order or a list of linked orders.
Submission = OrderIntent | OrderList
IntentEmitter = Callable[[Submission], None]
_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
_AT = re.compile(r"^(?P<msg>.*) - at `\$(?P<path>[^`]*)`$")
_KEYED = re.compile(r"^(?P<key>[A-Za-z_]\w*): (?P<msg>.*)$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]*)`$")


class StrategyParamsError(ValueError):
    """A strategy's params are invalid; the message names the strategy and the key."""

    def __init__(self, strategy: str, key: str, problem: str) -> None:
        self.strategy = strategy
        self.key = key
        self.problem = problem
        where = f"params.{key}" if key else "params"
        super().__init__(f"strategy {strategy!r}: {where}: {problem}")


class StrategyLoadError(ImportError):
    """A strategy import path cannot be loaded."""




class OpenOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An open order as a strategy sees it (``side`` None when the view does not know it)."""

    client_order_id: str
    symbol: str
    side: Side | None
    size: Decimal
    filled: Decimal = Decimal(0)
    price: Decimal | None = None
    strategy: str = ""


@runtime_checkable
class PortfolioView(Protocol):
    """Read-only view of one strategy's positions and open orders, supplied by the host."""

    def position(self, symbol: str) -> Decimal:
        """Signed position in base units (0 when flat)."""
        ...

    def open_orders(self, symbol: str | None = None) -> tuple[OpenOrder, ...]:
        """Open orders, optionally of one symbol."""
        ...


class NoParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Params of a strategy that takes none.

    Params types are msgspec Structs with ``forbid_unknown_fields=True``; constraints go in
    ``Annotated[..., msgspec.Meta(ge=...)]``; cross-field checks in ``__post_init__`` raise
    ``ValueError("key: problem")`` so the error names the key.
    """


@dataclasses.dataclass(frozen=True)
class StrategyContext:
    """What a strategy instance is told about itself (from its config section)."""

    name: str
    symbols: tuple[str, ...]
    timeframe: str = "1m"
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    strategy_path: str = ""
    run_id: str = ""
    #: The ``[instruments]`` of ``symbols`` that the config declares (quantity step, minimum).
    instruments: Mapping[str, InstrumentSection] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_section(cls, section: StrategySection, run_id: str = "",
                     instruments: Mapping[str, InstrumentSection] | None = None) -> StrategyContext:
        """Build the context of a ``[[strategies]]`` config section (``instruments``: the config's)."""
        known = instruments or {}
        return cls(
            name=section.name,
            symbols=tuple(section.symbols),
            timeframe=section.timeframe,
            params=dict(section.params),
            strategy_path=section.strategy,
            run_id=run_id,
            instruments={s: known[s] for s in section.symbols if s in known},
        )

    def with_params(self, params: Mapping[str, Any]) -> StrategyContext:
        """A copy with other raw params."""
        return dataclasses.replace(self, params=dict(params))


def validate_params(strategy: str, params_type: type[P], raw: Mapping[str, Any]) -> P:
    """Convert raw config params into ``params_type``; raise StrategyParamsError naming the key."""
    if not isinstance(raw, Mapping):
        raise StrategyParamsError(strategy, "", f"expected a table, got {type(raw).__name__}")
    try:
        return msgspec.convert(dict(raw), params_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = _UNKNOWN.match(text)
        if m:
            allowed = ", ".join(sorted(params_type.__struct_fields__)) or "none"
            raise StrategyParamsError(strategy, m["key"], f"unknown key (expected one of: {allowed})") from None
        m = _AT.match(text)
        if m:
            key = m["path"].lstrip(".")
            raise StrategyParamsError(strategy, key, m["msg"]) from None
        m = _KEYED.match(text)  # a params type's own check: "key: problem"
        if m:
            raise StrategyParamsError(strategy, m["key"], m["msg"]) from None
        raise StrategyParamsError(strategy, "", text) from None


class Strategy(Generic[P]):
    """Base class of strategies. Subclasses set ``params_type`` and override callbacks.

    ``subscribe_trades`` / ``subscribe_quotes`` say whether the host should deliver trade
    prints / quotes as well as bars (bars of ``context.timeframe`` are always delivered).
    """

    params_type: ClassVar[type[Any]] = NoParams
    subscribe_trades: ClassVar[bool] = False
    subscribe_quotes: ClassVar[bool] = False

    def __init__(self, context: StrategyContext, *, emitter: IntentEmitter, portfolio: PortfolioView) -> None:
        self.context = context
        self.name = context.name
        self.symbols = context.symbols
        self.timeframe = context.timeframe
        self.params: P = self.validate_params(context.params, strategy=context.name)
        self.portfolio = portfolio
        self.log: Any = structlog.get_logger("aaiti").bind(strategy=context.name)
        self._emit = emitter
        self._pending_params: P | None = None
        self._seq = 0
        self._origin_ns = 0
        self._in_flight: dict[str, int] = {}
        self._in_flight_ids: dict[str, str] = {}  # intent_id -> symbol, of what in_flight counts
        self.intents_emitted = 0

    # -- params ------------------------------------------------------------------------
    @classmethod
    def validate_params(cls, raw: Mapping[str, Any], *, strategy: str = "") -> P:
        """Validate raw params against ``params_type``; StrategyParamsError names the key."""
        out: P = validate_params(strategy or cls.__name__, cls.params_type, raw)
        return out

    def reconfigure(self, raw: Mapping[str, Any]) -> None:
        """Validate new params now (raising on errors); apply them at the next bar boundary."""
        self._pending_params = self.validate_params(raw, strategy=self.name)

    @property
    def reconfigure_pending(self) -> bool:
        """True while new params wait for the next bar."""
        return self._pending_params is not None

    def _apply_pending_params(self) -> None:
        new = self._pending_params
        if new is None:
            return
        self._pending_params = None
        old = self.params
        self.params = new
        self.context = self.context.with_params(msgspec.to_builtins(new))
        self.on_params_changed(old, new)

    # -- callbacks (override) ----------------------------------------------------------
    def on_start(self) -> None:
        """Called once before any market data."""

    def on_bar(self, bar: Bar) -> None:
        """A bar of ``timeframe`` closed for one of ``symbols``."""

    def on_trade(self, trade: Trade) -> None:
        """A trade print (only with ``subscribe_trades``; conflated: the latest per symbol)."""

    def on_quote(self, quote: Quote) -> None:
        """A top-of-book update (only with ``subscribe_quotes``; conflated per symbol)."""

    def on_order_event(self, event: OrderEvent | OrderDenied) -> None:
        """An order of this strategy changed state or filled, or the risk gate denied an intent."""

    def on_params_changed(self, old: P, new: P) -> None:
        """New params were applied (at a bar boundary). Rebuild indicators here if needed."""

    def on_stop(self) -> None:
        """Called once when the strategy stops."""

    # -- dispatch (called by the host) -------------------------------------------------
    def handle_bar(self, bar: Bar) -> None:
        """Apply pending params (bar boundary), then call ``on_bar``."""
        self._origin_ns = bar.recv_ns
        if self._pending_params is not None:
            self._apply_pending_params()
        self.on_bar(bar)

    def handle_trade(self, trade: Trade) -> None:
        """Call ``on_trade``."""
        self._origin_ns = trade.recv_ns
        self.on_trade(trade)

    def handle_quote(self, quote: Quote) -> None:
        """Call ``on_quote``."""
        self._origin_ns = quote.recv_ns
        self.on_quote(quote)

    def handle_order_event(self, event: OrderEvent | OrderDenied) -> None:
        """Track intents in flight, then call ``on_order_event``."""
        if isinstance(event, OrderDenied):
            it = event.intent
            self._settle(it.intent_id, it.symbol, it.parent)
        elif event.status in TERMINAL_STATUSES:
            self._settle(event.intent_id, event.symbol, event.parent)
        self.on_order_event(event)

    def _settle(self, intent_id: str, symbol: str, parent: str) -> None:
        ids = self._in_flight_ids
        if intent_id or parent:
            # Only an intent we count settles: not a resting order's child, nothing twice.
            sym = ids.pop(intent_id, None)
        else:
            # An event without an intent id (an order recorded before they were kept):
            # settle the oldest intent of the symbol, as counting by symbol always did.
            key = next((k for k, s in ids.items() if s == symbol), None)
            sym = ids.pop(key) if key is not None else None
        if sym is not None and self._in_flight.get(sym, 0) > 0:
            self._in_flight[sym] -= 1

    # -- reading state -----------------------------------------------------------------
    def position(self, symbol: str) -> Decimal:
        """This strategy's position in ``symbol`` (base units)."""
        return self.portfolio.position(symbol)

    def open_orders(self, symbol: str | None = None) -> tuple[OpenOrder, ...]:
        """This strategy's open orders."""
        return self.portfolio.open_orders(symbol)

    def in_flight(self, symbol: str) -> int:
        """Intents emitted for ``symbol`` whose order has not reached a final state yet.

        Plain market/limit intents and bracket entries count, from emission until an
        ``OrderDenied`` of that intent (for a list: of its first order, i.e. the bracket's
        entry) or a final ``OrderEvent`` (filled, rejected, canceled, expired) with its
        ``intent_id`` arrives (a bracket whose entry the contingent-order manager gave up on
        after the risk gate denied its release ends with an ``OrderDenied`` of reason
        ``CONTINGENT_GIVEN_UP``); it keeps a strategy from sending the same entry again while
        the first is still on its way. Resting orders (stops, take-profits, trailing stops,
        icebergs, TWAPs, OCO and OTO lists) do not count.
        """
        return self._in_flight.get(symbol, 0)

    def tradable(self, symbol: str) -> Decimal:
        """The part of the position in ``symbol`` an order can close (signed like the position).

        A fee charged in the base asset leaves positions that are not whole quantity steps
        (buying 0.0016 BTC at 0.1 % holds 0.0015984): this is the position rounded towards zero
        to the instrument's ``step_size``, and 0 when that is below its ``min_qty`` (dust no
        order can sell). Without an ``[instruments]`` entry for the symbol, the position.
        """
        pos = self.position(symbol)
        inst = self.context.instruments.get(symbol)
        if inst is None or not pos:
            return pos
        size = round_down(abs(pos), inst.step_size)
        if size < inst.min_qty or size <= 0:
            return Decimal(0)
        return size if pos > 0 else -size

    def is_flat(self, symbol: str) -> bool:
        """Nothing tradable held (``tradable`` is 0: dust below a step or the minimum counts as
        flat), no open order and nothing in flight for ``symbol``."""
        return self.tradable(symbol) == 0 and not self.in_flight(symbol) and not self.open_orders(symbol)

    def is_long(self, symbol: str) -> bool:
        """A positive tradable position, no open order and nothing in flight for ``symbol``."""
        return self.tradable(symbol) > 0 and not self.in_flight(symbol) and not self.open_orders(symbol)

    # -- acting ------------------------------------------------------------------------
    def buy(self, symbol: str, *, size: DecimalLike | None = None, notional: DecimalLike | None = None,
            type: OrderType = OrderType.MARKET, limit_price: DecimalLike | None = None, tag: str = "",
            trigger_price: DecimalLike | None = None, trailing: TrailingSpec | None = None,
            trigger: TriggerSource = TriggerSource.LAST, display_size: DecimalLike | None = None,
            twap: TwapSpec | None = None, stop_loss: ExitLike | None = None,
            take_profit: ExitLike | None = None) -> OrderIntent | OrderList:
        """Emit a buy of ``size`` base units or ``notional`` quote units; return what was emitted.

        ``type`` MARKET or LIMIT (with ``limit_price``), or a conditional type with
        ``trigger_price`` (STOP_MARKET, STOP_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT; a stop with
        ``trailing`` trails instead). ``trigger``: the price an emulated trigger watches.
        ``display_size``: a LIMIT shown in parts (iceberg); ``twap``: a MARKET spread over time.
        ``stop_loss`` / ``take_profit`` (an ``Exit`` or a trigger price), or ``trailing`` on a
        MARKET/LIMIT entry (a trailing stop exit), make a bracket: an ``OrderList`` of the
        entry and its exits, sells that protect exactly what the entry filled.
        """
        return self._order(Side.BUY, symbol, size, notional, type, limit_price, tag, trigger_price, trailing,
                           trigger, display_size, twap, stop_loss, take_profit)

    def sell(self, symbol: str, *, size: DecimalLike | None = None, notional: DecimalLike | None = None,
             type: OrderType = OrderType.MARKET, limit_price: DecimalLike | None = None, tag: str = "",
             trigger_price: DecimalLike | None = None, trailing: TrailingSpec | None = None,
             trigger: TriggerSource = TriggerSource.LAST, display_size: DecimalLike | None = None,
             twap: TwapSpec | None = None, stop_loss: ExitLike | None = None,
             take_profit: ExitLike | None = None) -> OrderIntent | OrderList:
        """Emit a sell; the arguments are those of ``buy`` (a bracket's exits are buys)."""
        return self._order(Side.SELL, symbol, size, notional, type, limit_price, tag, trigger_price, trailing,
                           trigger, display_size, twap, stop_loss, take_profit)

    def stop(self, symbol: str, side: Side, *, size: DecimalLike, trigger_price: DecimalLike,
             limit_price: DecimalLike | None = None, trigger: TriggerSource = TriggerSource.LAST,
             tag: str = "") -> OrderIntent:
        """A stop: once the market reaches ``trigger_price`` (a sell stop below the market, a buy
        stop above it), a market order, or a limit order at ``limit_price``."""
        return self._send(self._exit(Side(side), symbol, Exit(trigger_price, limit_price), stop=True, size=size,
                                     trigger=trigger, tag=tag))

    def take_profit(self, symbol: str, side: Side, *, size: DecimalLike, trigger_price: DecimalLike,
                    limit_price: DecimalLike | None = None, trigger: TriggerSource = TriggerSource.LAST,
                    tag: str = "") -> OrderIntent:
        """A take-profit: like ``stop`` on the winning side (a sell take-profit above the market)."""
        return self._send(self._exit(Side(side), symbol, Exit(trigger_price, limit_price), stop=False, size=size,
                                     trigger=trigger, tag=tag))

    def trailing_stop(self, symbol: str, side: Side, *, size: DecimalLike, offset: DecimalLike | None = None,
                      offset_bps: int | None = None, activation_price: DecimalLike | None = None,
                      trigger: TriggerSource = TriggerSource.LAST, tag: str = "") -> OrderIntent:
        """A stop that follows the best price since activation at ``offset`` (price units) or
        ``offset_bps`` (basis points; give one); from ``activation_price`` on, if set."""
        spec = TrailingSpec(offset=opt_decimal(offset, "offset"), offset_bps=offset_bps,
                            activation_price=opt_decimal(activation_price, "activation_price"))
        return self._send(self.build_order(symbol, Side(side), size=size, type=OrderType.STOP_MARKET, trailing=spec,
                                     trigger=trigger, tag=tag))

    def oco(self, symbol: str, side: Side, *, size: DecimalLike, above: ExitLike, below: ExitLike,
            trigger: TriggerSource = TriggerSource.LAST, tag: str = "") -> OrderList:
        """Two exits of ``size``, one ``above`` and one ``below`` the market: when one triggers
        the other is cancelled. For a sell the leg above is a take-profit and the one below a
        stop; for a buy the reverse."""
        side = Side(side)
        sell = side is Side.SELL
        legs = (self._exit(side, symbol, above, stop=not sell, size=size, trigger=trigger, tag=tag),
                self._exit(side, symbol, below, stop=sell, size=size, trigger=trigger, tag=tag))
        return self._send_list(OrderList(kind=ListKind.OCO, strategy=self.name, symbol=symbol, orders=legs, tag=tag))

    def oto(self, working: OrderIntent, pending: OrderIntent, *, tag: str = "") -> OrderList:
        """Place ``working``; once (and as far as) it fills, place ``pending``. Build both with
        ``build_order``; a pending order with neither size nor notional follows the working order's
        fills (e.g. a take-profit for what a limit buy bought)."""
        return self.submit_list(OrderList(kind=ListKind.OTO, strategy=self.name, symbol=working.symbol,
                                          orders=(working, pending), tag=tag or working.tag))

    def build_order(self, symbol: str, side: Side, *, size: DecimalLike | None = None,
                    notional: DecimalLike | None = None, type: OrderType = OrderType.MARKET,
                    limit_price: DecimalLike | None = None, trigger_price: DecimalLike | None = None,
                    trailing: TrailingSpec | None = None, trigger: TriggerSource = TriggerSource.LAST,
                    display_size: DecimalLike | None = None, twap: TwapSpec | None = None,
                    tag: str = "") -> OrderIntent:
        """Build and check one order without emitting it: a leg for ``oto`` or ``submit_list``
        (arguments as for ``buy``). Without size or notional it follows the fills of the list's
        first order."""
        intent = OrderIntent(
            strategy=self.name, symbol=symbol, side=Side(side), type=OrderType(type),
            size=opt_decimal(size, "size"), notional=opt_decimal(notional, "notional"),
            limit_price=opt_decimal(limit_price, "limit_price"),
            trigger_price=opt_decimal(trigger_price, "trigger_price"), trailing=trailing,
            trigger=TriggerSource(trigger),
            display_size=opt_decimal(display_size, "display_size"), twap=twap, tag=tag, origin_ns=self._origin_ns,
        )
        self._check(intent, sized=size is not None or notional is not None)
        return intent

    def submit_list(self, order_list: OrderList) -> OrderList:
        """Emit an order list (OCO, OTO, bracket: see ``OrderList``) and return it as emitted,
        with its ``list_id`` and each order's ``intent_id`` (``f"{list_id}.{i}"``) set.
        A denial of the list comes back as an ``OrderDenied`` of its first order."""
        lst = order_list
        if lst.strategy != self.name or not lst.orders:
            raise ValueError(f"strategy {self.name!r}: a list needs orders and strategy={self.name!r}")
        for o in lst.orders:
            if (o.strategy, o.symbol) != (lst.strategy, lst.symbol):
                raise ValueError(f"strategy {self.name!r}: every order of a list has its strategy and symbol")
            if o.parent or o.client_order_id or o.protective:
                raise ValueError(f"strategy {self.name!r}: parent, client_order_id, protective are the daemon's")
            self._check(o, sized=o.size is not None or o.notional is not None)
        return self._send_list(lst)

    # -- building and emitting ---------------------------------------------------------
    def _order(self, side: Side, symbol: str, size: DecimalLike | None, notional: DecimalLike | None,
               type: OrderType, limit_price: DecimalLike | None, tag: str, trigger_price: DecimalLike | None,
               trailing: TrailingSpec | None, trigger: TriggerSource, display_size: DecimalLike | None,
               twap: TwapSpec | None, stop_loss: ExitLike | None,
               take_profit: ExitLike | None) -> OrderIntent | OrderList:
        type = OrderType(type)
        entry_type = type is OrderType.MARKET or type is OrderType.LIMIT
        trailing_exit = trailing is not None and entry_type
        if (size is None) == (notional is None):
            raise ValueError(f"strategy {self.name!r}: give exactly one of size or notional")
        if stop_loss is None and take_profit is None and not trailing_exit:
            return self._send(self.build_order(symbol, side, size=size, notional=notional, type=type,
                                         limit_price=limit_price, trigger_price=trigger_price, trailing=trailing,
                                         trigger=trigger, display_size=display_size, twap=twap, tag=tag))
        if not entry_type or trigger_price is not None or display_size is not None or twap is not None:
            raise ValueError(f"strategy {self.name!r}: a bracket's entry is a plain market or limit order")
        if stop_loss is not None and trailing is not None:
            raise ValueError(f"strategy {self.name!r}: give stop_loss or trailing, not both")
        entry = self.build_order(symbol, side, size=size, notional=notional, type=type, limit_price=limit_price,
                                 tag=tag)
        out = Side.SELL if side is Side.BUY else Side.BUY
        exits: list[OrderIntent] = []
        if take_profit is not None:
            exits.append(self._exit(out, symbol, take_profit, stop=False, size=None, trigger=trigger, tag=tag))
        if stop_loss is not None:
            exits.append(self._exit(out, symbol, stop_loss, stop=True, size=None, trigger=trigger, tag=tag))
        elif trailing is not None:
            exits.append(self.build_order(symbol, out, type=OrderType.STOP_MARKET, trailing=trailing, trigger=trigger,
                                    tag=tag))
        # Untradable dust of an earlier position on the entry's side rides with this bracket's exits.
        held = self.position(symbol)
        same_side = held > 0 if side is Side.BUY else held < 0
        carry = abs(held) if same_side and not self.tradable(symbol) else Decimal(0)
        return self._send_list(OrderList(kind=ListKind.BRACKET, strategy=self.name, symbol=symbol,
                                         orders=(entry, *exits), tag=tag, carry=carry))

    def _exit(self, side: Side, symbol: str, level: ExitLike, *, stop: bool, size: DecimalLike | None,
              trigger: TriggerSource, tag: str) -> OrderIntent:
        lvl = level if isinstance(level, Exit) else Exit(level)
        priced = lvl.limit_price is not None
        if stop:
            type = OrderType.STOP_LIMIT if priced else OrderType.STOP_MARKET
        else:
            type = OrderType.TAKE_PROFIT_LIMIT if priced else OrderType.TAKE_PROFIT
        return self.build_order(symbol, side, size=size, type=type, trigger_price=lvl.trigger_price,
                          limit_price=lvl.limit_price, trigger=trigger, tag=tag)

    def _check(self, intent: OrderIntent, *, sized: bool) -> None:
        """Raise ValueError for an order whose fields do not fit together (prices and sides
        are the risk gate's to judge, with reason codes)."""
        problem = shape_problem(intent, sized=sized, symbols=self.symbols)
        if problem:
            raise ValueError(f"strategy {self.name!r}: {problem}")

    def _next_id(self) -> str:
        self._seq += 1
        run = f"{self.context.run_id}-" if self.context.run_id else ""
        return f"{self.name}-{run}{self._seq}"

    def _count(self, intent: OrderIntent) -> None:
        self._in_flight_ids[intent.intent_id] = intent.symbol
        self._in_flight[intent.symbol] = self._in_flight.get(intent.symbol, 0) + 1

    def _send(self, intent: OrderIntent) -> OrderIntent:
        intent = msgspec.structs.replace(intent, intent_id=self._next_id(), origin_ns=self._origin_ns)
        if intent.is_plain:
            self._count(intent)
        self.intents_emitted += 1
        self._emit(intent)
        return intent

    def _send_list(self, lst: OrderList) -> OrderList:
        list_id = self._next_id()
        orders = tuple(msgspec.structs.replace(o, intent_id=f"{list_id}.{i}", origin_ns=self._origin_ns)
                       for i, o in enumerate(lst.orders))
        lst = msgspec.structs.replace(lst, orders=orders, list_id=list_id, origin_ns=self._origin_ns)
        if lst.kind is ListKind.BRACKET:
            self._count(orders[0])
        self.intents_emitted += 1
        self._emit(lst)
        return lst


def strategy_dirs(loaded: LoadedConfig) -> tuple[Path, ...]:
    """The config's ``[daemon] strategy_dirs``, absolute (relative ones against the config file's directory)."""
    return tuple(loaded.resolve(d).resolve() for d in loaded.config.daemon.strategy_dirs)


def use_strategy_dirs(loaded: LoadedConfig) -> tuple[Path, ...]:
    """Make the modules in the config's strategy directories importable; the directories that exist.

    The one set-up step, called once where a command loads its config (``aaiti run``,
    ``check-config``, ``backtest``): every later ``load_strategy_class`` (start-up, reload
    checks, the backtest's pipeline) then finds ``mymodule:MyClass`` in them. The
    directories are appended to the interpreter's import path (``sys.path``, what
    PYTHONPATH would do, but after the installed packages, so a user module can never
    shadow the standard library or the daemon's own packages); nothing is kept here.
    Calling it again with the same config changes nothing; missing directories are skipped.
    """
    present = tuple(d for d in strategy_dirs(loaded) if d.is_dir())
    added = False
    for d in present:
        if str(d) not in sys.path:
            sys.path.append(str(d))
            added = True
    if added:  # a finder may have cached "no such module" for a name before the directory was added
        importlib.invalidate_caches()
    return present


def load_strategy_class(path: str) -> type[Strategy[Any]]:
    """Import ``"package.module:ClassName"`` and check it is a Strategy subclass.

    The module is found on the import path: the installed packages and the config's
    strategy directories once ``use_strategy_dirs`` has run.
    """
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise StrategyLoadError(f"strategy path {path!r}: expected 'package.module:ClassName'")
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = ""
        if isinstance(exc, ModuleNotFoundError) and exc.name == module_name.partition(".")[0]:
            hint = " (not installed, and not found in a directory of [daemon] strategy_dirs)"
        raise StrategyLoadError(
            f"strategy path {path!r}: cannot import module {module_name!r}: {exc}{hint}"
        ) from None
    cls = getattr(module, attr, None)
    if cls is None:
        where = f" ({module.__file__})" if getattr(module, "__file__", None) else ""
        raise StrategyLoadError(f"strategy path {path!r}: module {module_name!r}{where} has no attribute {attr!r}")
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyLoadError(f"strategy path {path!r}: {attr!r} is not a Strategy subclass")
    return cls
