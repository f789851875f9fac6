"""Configuration of the Binance-SPOT protocol simulator.

Everything is a frozen dataclass so a config can be shared between the simulator, tests
and the CLI without anyone mutating it behind the others' backs. Run-time changes (faults,
clock skew) go through :class:`adapters.binance_sim.faults.FaultPlan` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

#: Order types advertised in ``exchangeInfo``; ccxt refuses types not listed here client-side.
DEFAULT_ORDER_TYPES: tuple[str, ...] = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)

MarketKind = Literal["synthetic", "replay", "static"]


@dataclass(frozen=True, slots=True)
class SymbolConfig:
    """One spot market: Binance id, assets, exchange filters and how its market looks.

    ``trade_qty`` is the mean size of a simulated public print and ``level_qty`` the mean
    size of one level of the simulated background order book, both in the base asset.
    ``iceberg_parts`` is the ICEBERG_PARTS limit and ``min/max_trailing_delta`` the
    TRAILING_DELTA filter range in BIPS (the same for above and below deltas, as on BTCUSDT).
    """

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    initial_price: Decimal
    trade_qty: Decimal
    level_qty: Decimal
    max_qty: Decimal = Decimal("9000000")
    max_price: Decimal = Decimal("1000000")
    max_notional: Decimal = Decimal("9000000")
    base_asset_precision: int = 8
    quote_asset_precision: int = 8
    order_types: tuple[str, ...] = DEFAULT_ORDER_TYPES
    iceberg_parts: int = 10
    min_trailing_delta: int = 10
    max_trailing_delta: int = 2000

    def __post_init__(self) -> None:
        if not self.symbol.isalnum() or self.symbol.upper() != self.symbol:
            raise ValueError(f"symbol must be upper-case alphanumeric, got {self.symbol!r}")
        for name in ("tick_size", "step_size", "min_qty", "initial_price", "trade_qty", "level_qty"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{self.symbol}: {name} must be > 0")
        if self.min_notional < 0:
            raise ValueError(f"{self.symbol}: min_notional must be >= 0")
        if self.iceberg_parts < 1 or not 0 < self.min_trailing_delta <= self.max_trailing_delta:
            raise ValueError(f"{self.symbol}: iceberg_parts must be >= 1 and 0 < min <= max trailing delta")

    @property
    def min_price(self) -> Decimal:
        """Lowest accepted price (one tick)."""
        return self.tick_size


def default_symbols() -> tuple[SymbolConfig, ...]:
    """BTCUSDT and ETHUSDT with Binance's real filters, plus XRPETH matching the bundled tape."""
    return (
        SymbolConfig(
            symbol="BTCUSDT",
            base_asset="BTC",
            quote_asset="USDT",
            tick_size=Decimal("0.01"),
            step_size=Decimal("0.00001"),
            min_qty=Decimal("0.00001"),
            min_notional=Decimal("5"),
            initial_price=Decimal("50000.00"),
            trade_qty=Decimal("0.01"),
            level_qty=Decimal("0.5"),
        ),
        SymbolConfig(
            symbol="ETHUSDT",
            base_asset="ETH",
            quote_asset="USDT",
            tick_size=Decimal("0.01"),
            step_size=Decimal("0.0001"),
            min_qty=Decimal("0.0001"),
            min_notional=Decimal("5"),
            initial_price=Decimal("3000.00"),
            trade_qty=Decimal("0.2"),
            level_qty=Decimal("8"),
        ),
        SymbolConfig(
            symbol="XRPETH",
            base_asset="XRP",
            quote_asset="ETH",
            tick_size=Decimal("0.00000001"),
            step_size=Decimal("1"),
            min_qty=Decimal("1"),
            min_notional=Decimal("0.001"),
            initial_price=Decimal("0.00141342"),
            trade_qty=Decimal("200"),
            level_qty=Decimal("5000"),
        ),
    )


def default_balances() -> tuple[tuple[str, Decimal], ...]:
    """Starting balances (all free) of the single simulated account."""
    return (
        ("BTC", Decimal("1")),
        ("ETH", Decimal("100")),
        ("USDT", Decimal("100000")),
        ("XRP", Decimal("100000")),
    )


@dataclass(frozen=True, slots=True)
class MarketSourceConfig:
    """What drives the simulated market.

    - ``synthetic`` (default): a seeded random walk; every ``tick_interval_ms`` each symbol
      prints ``trades_per_tick`` trades and its background book is rebuilt around the price.
    - ``replay``: prints come from a CSV trade tape (``ts_ms,trade_id,side,price,amount,cost``,
      ``.gz`` allowed) for ``replay_symbol``; the other symbols stay static. ``replay_speed`` is
      tape-time per wall-time (``<= 0``: as fast as possible).
    - ``static``: the book is built once; nothing trades unless a test injects prints.
    """

    kind: MarketKind = "synthetic"
    seed: int = 7
    tick_interval_ms: float = 200.0
    trades_per_tick: int = 1
    volatility_bps: float = 2.0
    book_levels: int = 20
    level_spacing_bps: float = 1.0
    history_minutes: int = 600
    replay_path: str | None = None
    replay_symbol: str = "XRPETH"
    replay_speed: float = 1.0
    replay_loop: bool = True

    def __post_init__(self) -> None:
        if self.kind not in ("synthetic", "replay", "static"):
            raise ValueError(f"unknown market kind {self.kind!r}")
        if self.kind == "replay" and not self.replay_path:
            raise ValueError("market kind 'replay' needs replay_path")
        if self.tick_interval_ms <= 0 or self.trades_per_tick < 0 or self.book_levels < 1:
            raise ValueError("tick_interval_ms must be > 0, trades_per_tick >= 0, book_levels >= 1")


@dataclass(frozen=True, slots=True)
class HistoryFile:
    """A recorded file the simulator serves as ``symbol``'s history (``GET /klines``, ``/aggTrades``, ...).

    ``kind`` is ``"trades"`` for a trade tape (``ts_ms,trade_id,side,price,amount,cost``) or
    the kline interval of a candle file (``ts_ms,open,high,low,close,volume``, e.g. ``"1m"``).
    ``.gz`` files are read as gzip.
    """

    symbol: str
    kind: str
    path: str

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError(f"history file for {self.symbol}: empty path")


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Faults active from start-up (rates are probabilities per request/event, 0 = off).

    Tests usually leave these at zero and arm one-shot faults through ``sim.faults``.
    """

    seed: int = 11
    clock_skew_ms: int = 0
    rest_error_rate: float = 0.0
    rest_error_status: int = 503
    rest_delay_rate: float = 0.0
    rest_delay_s: float = 0.0
    depth_gap_rate: float = 0.0
    exec_report_duplicate_rate: float = 0.0
    exec_report_swap_rate: float = 0.0
    ws_drop_interval_s: float = 0.0
    ws_drop_abort_ratio: float = 0.5

    def __post_init__(self) -> None:
        for name in (
            "rest_error_rate",
            "rest_delay_rate",
            "depth_gap_rate",
            "exec_report_duplicate_rate",
            "exec_report_swap_rate",
            "ws_drop_abort_ratio",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Complete simulator configuration; every field has a usable default.

    Rate limits mirror Binance spot (6000 weight/minute, 100 orders/10 s). After a 429 a
    client that sends ``ban_after_429s`` more requests inside the window is banned (418) for
    ``ban_seconds``. ``fill_on_touch``: a resting order fills when a print reaches its price
    (``False``: only when a print goes strictly through it).
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str = "simkey"
    api_secret: str = "simsecret"
    symbols: tuple[SymbolConfig, ...] = field(default_factory=default_symbols)
    initial_balances: tuple[tuple[str, Decimal], ...] = field(default_factory=default_balances)
    maker_fee_bps: Decimal = Decimal("10")
    taker_fee_bps: Decimal = Decimal("10")
    market: MarketSourceConfig = field(default_factory=MarketSourceConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 1
    weight_limit_per_minute: int = 6000
    order_limit_per_10s: int = 100
    ban_after_429s: int = 5
    ban_seconds: float = 120.0
    ticker_interval_ms: float = 1000.0
    kline_interval_ms: float = 1000.0
    fill_on_touch: bool = True
    ws_queue_max: int = 50_000
    request_log_max: int = 10_000
    recent_trades_max: int = 10_000
    order_history_max: int = 100_000
    candle_history_minutes: int = 2 * 24 * 60
    shutdown_timeout_s: float = 0.5
    #: Recorded files served as history (see :class:`HistoryFile`); empty = live data only.
    history: tuple[HistoryFile, ...] = ()

    def __post_init__(self) -> None:
        names = [s.symbol for s in self.symbols]
        if not names or len(set(names)) != len(names):
            raise ValueError("symbols must be a non-empty list of distinct markets")
        if self.market.kind == "replay" and self.market.replay_symbol not in names:
            raise ValueError(f"replay_symbol {self.market.replay_symbol!r} is not a configured symbol")
        if not self.api_key or not self.api_secret:
            raise ValueError("api_key and api_secret must be non-empty")
        if self.ticker_interval_ms <= 0 or self.kline_interval_ms <= 0:
            raise ValueError("ticker_interval_ms and kline_interval_ms must be > 0")
        for item in self.history:
            if item.symbol not in names:
                raise ValueError(f"history file {item.path}: {item.symbol!r} is not a configured symbol")

    def symbol(self, name: str) -> SymbolConfig:
        """Return the market config for Binance id ``name`` (KeyError if unknown)."""
        for spec in self.symbols:
            if spec.symbol == name:
                return spec
        raise KeyError(name)
