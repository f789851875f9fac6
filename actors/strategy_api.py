"""The strategy API: what a strategy sees, what it may do, and how one is loaded.

A strategy is a plain synchronous object driven by its host (``actors.strategy_host``):

- it is constructed with a ``StrategyContext`` (name, symbols, timeframe, raw params from
  its ``[[strategies]]`` config section), an ``emitter`` and a ``PortfolioView``;
- its ``params`` are validated by the class's own typed ``params_type`` (a msgspec Struct
  with ``forbid_unknown_fields``); a bad value raises ``StrategyParamsError`` naming the key;
- the host calls ``on_start``, then ``on_bar`` / ``on_trade`` / ``on_quote`` /
  ``on_order_event`` (order events and risk denials, ``OrderDenied``) as they arrive, and
  ``on_stop``;
- it acts only through ``buy``/``sell``, which build an ``OrderIntent`` and hand it to the
  emitter. It never sees a venue, the risk gate or the order manager;
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
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import msgspec
import structlog

from actors.model.market import Bar, Quote, Trade
from actors.model.orders import (
    TERMINAL_STATUSES,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderType,
    Side,
)
from config.loader import LoadedConfig
from config.schema.market import StrategySection

__all__ = [
    "IntentEmitter",
    "NoParams",
    "OpenOrder",
    "PortfolioView",
    "Strategy",
    "StrategyContext",
    "StrategyLoadError",
    "StrategyParamsError",
    "load_strategy_class",
    "strategy_dirs",
    "use_strategy_dirs",
]

P = TypeVar("P", bound=msgspec.Struct)
IntentEmitter = Callable[[OrderIntent], None]
DecimalLike = Decimal | int | float | str
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

    @classmethod
    def from_section(cls, section: StrategySection, run_id: str = "") -> StrategyContext:
        """Build the context of a ``[[strategies]]`` config section."""
        return cls(
            name=section.name,
            symbols=tuple(section.symbols),
            timeframe=section.timeframe,
            params=dict(section.params),
            strategy_path=section.strategy,
            run_id=run_id,
        )

    def with_params(self, params: Mapping[str, Any]) -> StrategyContext:
        """A copy with other raw params."""
        return dataclasses.replace(self, params=dict(params))


def to_decimal(value: DecimalLike, what: str) -> Decimal:
    """Convert a size or price to Decimal (floats via their shortest repr, so 0.1 -> 0.1)."""
    if isinstance(value, bool):
        raise ValueError(f"{what}: expected a number, got {value!r}")
    try:
        out = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"{what}: expected a number, got {value!r}") from None
    if not out.is_finite():
        raise ValueError(f"{what}: expected a finite number, got {value!r}")
    return out


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
            self._settle(event.intent.symbol)
        elif event.status in TERMINAL_STATUSES:
            self._settle(event.symbol)
        self.on_order_event(event)

    def _settle(self, symbol: str) -> None:
        n = self._in_flight.get(symbol, 0)
        if n > 0:
            self._in_flight[symbol] = n - 1

    # -- reading state -----------------------------------------------------------------
    def position(self, symbol: str) -> Decimal:
        """This strategy's position in ``symbol`` (base units)."""
        return self.portfolio.position(symbol)

    def open_orders(self, symbol: str | None = None) -> tuple[OpenOrder, ...]:
        """This strategy's open orders."""
        return self.portfolio.open_orders(symbol)

    def in_flight(self, symbol: str) -> int:
        """Intents emitted for ``symbol`` whose order has not reached a final state yet.

        Counted from emission until an ``OrderDenied`` or a final ``OrderEvent`` (filled,
        rejected, canceled, expired) for the symbol arrives; it keeps a strategy from sending
        the same entry again while the first is still on its way.
        """
        return self._in_flight.get(symbol, 0)

    def is_flat(self, symbol: str) -> bool:
        """No position, no open order and nothing in flight for ``symbol``."""
        return self.position(symbol) == 0 and not self.in_flight(symbol) and not self.open_orders(symbol)

    def is_long(self, symbol: str) -> bool:
        """A positive position, no open order and nothing in flight for ``symbol``."""
        return self.position(symbol) > 0 and not self.in_flight(symbol) and not self.open_orders(symbol)

    # -- acting ------------------------------------------------------------------------
    def buy(self, symbol: str, *, size: DecimalLike | None = None, notional: DecimalLike | None = None,
            type: OrderType = OrderType.MARKET, limit_price: DecimalLike | None = None,
            tag: str = "") -> OrderIntent:
        """Emit a buy intent of ``size`` base units or ``notional`` quote units."""
        return self._intent(Side.BUY, symbol, size, notional, type, limit_price, tag)

    def sell(self, symbol: str, *, size: DecimalLike | None = None, notional: DecimalLike | None = None,
             type: OrderType = OrderType.MARKET, limit_price: DecimalLike | None = None,
             tag: str = "") -> OrderIntent:
        """Emit a sell intent of ``size`` base units or ``notional`` quote units."""
        return self._intent(Side.SELL, symbol, size, notional, type, limit_price, tag)

    def _intent(self, side: Side, symbol: str, size: DecimalLike | None, notional: DecimalLike | None,
                type: OrderType, limit_price: DecimalLike | None, tag: str) -> OrderIntent:
        if symbol not in self.symbols:
            raise ValueError(f"strategy {self.name!r}: {symbol!r} is not one of its symbols {list(self.symbols)}")
        if (size is None) == (notional is None):
            raise ValueError(f"strategy {self.name!r}: give exactly one of size or notional")
        dsize = to_decimal(size, "size") if size is not None else None
        dnotional = to_decimal(notional, "notional") if notional is not None else None
        if (dsize is not None and dsize <= 0) or (dnotional is not None and dnotional <= 0):
            raise ValueError(f"strategy {self.name!r}: size/notional must be > 0")
        type = OrderType(type)
        dlimit = to_decimal(limit_price, "limit_price") if limit_price is not None else None
        if type is OrderType.LIMIT and (dlimit is None or dlimit <= 0):
            raise ValueError(f"strategy {self.name!r}: a limit order needs a limit_price > 0")
        if type is OrderType.MARKET and dlimit is not None:
            raise ValueError(f"strategy {self.name!r}: a market order takes no limit_price")
        self._seq += 1
        run = f"{self.context.run_id}-" if self.context.run_id else ""
        intent = OrderIntent(
            strategy=self.name,
            symbol=symbol,
            side=side,
            type=type,
            size=dsize,
            notional=dnotional,
            limit_price=dlimit,
            tag=tag,
            intent_id=f"{self.name}-{run}{self._seq}",
            origin_ns=self._origin_ns,
        )
        self._in_flight[symbol] = self._in_flight.get(symbol, 0) + 1
        self.intents_emitted += 1
        self._emit(intent)
        return intent


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
