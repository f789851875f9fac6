"""Trading sections: instruments, risk limits, venue, reconciler."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from typing import Literal

from config.fields import setting
from config.schema.market import ASSET_PATTERN, split_symbol

#: Most decimal places a tick or step size may have: prices and sizes are quantized to it
#: with Decimal's default 28-digit precision, which a finer increment would exceed.
MAX_INCREMENT_DECIMALS = 18
#: An environment variable name.
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: A file name inside the credentials directory (no path separator, not starting with a dot).
_FILE_NAME = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"


def _decimals(value: Decimal) -> int:
    """Number of decimal places of ``value`` as written ("0.010" -> 3, "1e-8" -> 8, "10" -> 0)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


@dataclasses.dataclass(frozen=True)
class InstrumentSection:
    """Static facts about a tradable instrument (paper venue; live venues report their own)."""

    base: str = setting(doc="Base asset, e.g. XRP; must be the BASE of the instrument's symbol.",
                        pattern=ASSET_PATTERN)
    quote: str = setting(doc="Quote asset, e.g. ETH; must be the QUOTE of the instrument's symbol.",
                         pattern=ASSET_PATTERN)
    tick_size: Decimal = setting(Decimal("0.00000001"), "Price increment (at most 18 decimal places).", gt=0)
    step_size: Decimal = setting(Decimal("1"), "Quantity increment (at most 18 decimal places).", gt=0)
    min_qty: Decimal = setting(Decimal("1"), "Minimum order quantity.", ge=0)
    max_qty: Decimal = setting(Decimal("90000000"), "Maximum order quantity (>= min_qty).", gt=0)
    min_notional: Decimal = setting(Decimal("0.01"), "Minimum order value in quote currency.", ge=0)
    tradable: bool = setting(True, "False stops new orders on this instrument.")

    def validate(self) -> list[tuple[str, str]]:
        """Cross-field checks: min_qty <= max_qty; increments quantizable."""
        issues: list[tuple[str, str]] = []
        if self.min_qty > self.max_qty:
            issues.append(("max_qty", f"expected a value >= min_qty ({self.min_qty}), got {self.max_qty}"))
        for name, value in (("tick_size", self.tick_size), ("step_size", self.step_size)):
            if _decimals(value) > MAX_INCREMENT_DECIMALS:
                issues.append((name, f"expected at most {MAX_INCREMENT_DECIMALS} decimal places, got {value}"))
        return issues

    def validate_key(self, symbol: str) -> list[tuple[str, str]]:
        """The instrument's key is a BASE/QUOTE[:SETTLE] symbol whose base and quote are this one's."""
        try:
            base, quote = split_symbol(symbol)
        except ValueError as exc:
            return [("", str(exc))]
        issues: list[tuple[str, str]] = []
        if self.base != base:
            issues.append(("base", f"{self.base!r} does not match the symbol {symbol!r} (expected {base!r})"))
        if self.quote != quote:
            issues.append(("quote", f"{self.quote!r} does not match the symbol {symbol!r} (expected {quote!r})"))
        return issues


@dataclasses.dataclass(frozen=True)
class SymbolRiskSection:
    """Per-symbol limits; unset fields fall back to the risk section's defaults."""

    max_order_notional: Decimal | None = setting(None, "Max value of one order (quote currency).", gt=0)
    max_position: Decimal | None = setting(None, "Max absolute position (base units).", ge=0)
    price_collar_bps: float | None = setting(None, "Max distance of a limit price from the reference.", gt=0)
    stale_data_s: float | None = setting(None, "Deny when this symbol's last market event is older.", gt=0)


@dataclasses.dataclass(frozen=True)
class RiskSection:
    """Pre-trade risk limits (hot-reloadable). Notional values are in each symbol's quote currency."""

    max_order_notional: Decimal = setting(Decimal("1"), "Max value of one order (quote currency).", gt=0)
    max_position: Decimal = setting(Decimal("1000"), "Max absolute position per symbol (base units).", ge=0)
    max_gross_exposure: Decimal = setting(Decimal("5"), "Max sum of |position| x price over symbols.", gt=0)
    max_open_orders: int = setting(10, "Max open orders in total.", ge=0)
    max_orders_per_minute: int = setting(60, "Max submitted orders per rolling minute.", ge=0)
    price_collar_bps: float = setting(500.0, "Max distance of a limit price from the reference price.", gt=0)
    stale_data_s: float = setting(120.0, "Deny when the symbol's last market event is older (feed time).", gt=0)
    daily_loss_limit: Decimal = setting(Decimal("0.5"), "Realized+unrealized loss per UTC day that HALTs.", gt=0)
    max_drawdown_pct: float = setting(20.0, "Drawdown from the equity peak (percent) that HALTs.", gt=0, le=100)
    assumed_fee_bps: float = setting(
        10.0, "Fee rate (basis points) the cash check adds to the cost of a buy.", ge=0, le=1000
    )
    market_buy_buffer_bps: float = setting(
        50.0,
        "Headroom over the reference price the cash check assumes for market buys (spread and slippage).",
        ge=0,
        le=10_000,
    )
    equity_asset: str = setting(
        "",
        "Asset equity, daily loss and drawdown are measured in; empty: the first instrument's quote asset.",
        pattern=f"(?:{ASSET_PATTERN})?",
    )
    pending_approval_ttl_s: float = setting(
        1.0,
        "How long an approval counts against open orders, position and cash until the order manager's "
        "snapshot shows its order (closes the gap while the approval is queued).",
        ge=0,
        le=300,
    )
    pnl_check_interval_s: float = setting(
        1.0, "How often daily loss and drawdown are re-evaluated between intents.", gt=0, le=3600
    )
    symbols: dict[str, SymbolRiskSection] = setting(factory=dict, doc="Per-symbol overrides.")


@dataclasses.dataclass(frozen=True)
class PaperVenueSection:
    """Simulated venue that fills against the market feed; paper trading and backtests share its fill model.

    Orders are checked against the instrument's filters (``[instruments]``) before anything is
    booked, with the reason codes the live ccxt venue gives for the same order: ``PRECISION``
    (size off ``step_size``, price off ``tick_size``), ``INVALID_QUANTITY`` / ``INVALID_PRICE``
    (not a positive number; a market order with a price), ``INVALID_ORDER`` (the exchange's
    "Filter failure": size outside ``min_qty``..``max_qty`` is LOT_SIZE, value under
    ``min_notional`` is NOTIONAL), ``INSUFFICIENT_FUNDS``, ``NO_MARKET_DATA``, ``UNKNOWN_SYMBOL``.

    The *visible liquidity* a taker meets is, from the freshest source: the order book's levels
    (when a book snapshot or delta came after the last quote); else the quote's touch, up to its
    quoted size (unlimited when the quote carries no size); else the last trade print, up to its
    size when ``trade_volume_limited``; else the last bar's close, up to its volume when
    ``trade_volume_limited``. Every taker price is moved ``slippage_bps`` against us and rounded
    to the tick against us; executions at the same price are reported as one fill, each fill
    with its own fee. A market buy locks nothing: what the free quote balance cannot pay for
    when it fills EXPIRES (reason ``INSUFFICIENT_FUNDS``); a market sell locks its size, a limit
    buy ``size x price x (1 + the larger fee)``, a limit sell its size. Each market event's size
    is fresh liquidity (nothing remembers what an earlier fill took from it), and our own
    orders never trade with each other. The same events always give the same fills (no
    randomness).
    """

    maker_fee_bps: float = setting(
        10.0, "Fee, in basis points of the fill's value (quote currency), of fills of resting limit orders.",
        ge=0, le=1000,
    )
    taker_fee_bps: float = setting(
        10.0, "Fee, in basis points of the fill's value (quote currency), of fills of market orders and of "
        "limit orders marketable when they reach the book.", ge=0, le=1000,
    )
    slippage_bps: float = setting(
        1.0, "Adverse slippage of every taker execution: each price taken (book level, touch or trade print) "
        "is moved this much against us, then rounded to the tick against us; a limit order's price caps it.",
        ge=0, le=1000,
    )
    latency_ms: float = setting(
        0.0, "Market time from submission to the book (whole ms, rounded up). On a market clock (replay, "
        "backtest) an order submitted at market time t is acknowledged as ACCEPTED at once and reaches the book "
        "at the first market event with ts >= t + latency_ms, then trades against the market as of that event "
        "(fills arrive on the update stream); cancels act at once. On the wall clock (live data) submit and "
        "cancel wait this long in real time, then act on the market as it is. 0: orders reach the book on "
        "submission.", ge=0, le=10_000,
    )
    ack_delay_ms: float = setting(
        0.0, "Real (process) time every submit and cancel call waits before it acts, on any clock: simulates a "
        "slow venue round trip for tests of in-flight orders. Keep 0 in backtests, where it only slows the run.",
        ge=0, le=10_000,
    )
    limit_fill: Literal["touch", "through"] = setting(
        "touch", "When a market price fills a resting limit order at its limit (as maker): \"touch\", a trade "
        "print or an opposite quote at or through the limit (buy: trade or ask <= limit); \"through\", only "
        "strictly through it (buy: trade or ask < limit), as if our order were last in the queue at its price. "
        "A book event's best levels count as a quote.",
    )
    trade_volume_limited: bool = setting(
        True, "A trade print (or a quote's size, or with match_on_bars a bar's volume) offers only its own size: "
        "one print is shared among the resting limit orders it reaches (best price, then oldest first; a share "
        "rounded down to step_size), and with no quotes a market order meets the last print's size as visible "
        "liquidity. A quote without a size (as quotes derived from trades are) then fills no resting order; a print "
        "or bar of size 0 (unknown) fills any size. False: prints, quotes and bars fill any size.",
    )
    market_remainder: Literal["fill_at_worst", "partial_then_next_events"] = setting(
        "fill_at_worst", "What a market order (or the taker part of a marketable limit order) does beyond the "
        "visible liquidity: \"fill_at_worst\", it fills now through the simulated depth (see depth_step_bps, "
        "depth_levels; a limit order stops at its limit and rests the rest); \"partial_then_next_events\", it "
        "takes only the visible liquidity now (PARTIALLY_FILLED) and then each later market event's (a quote's "
        "touch size, a book's levels, or with no quotes a print's size) until filled or canceled; a limit "
        "order rests its remainder at once.",
    )
    depth_step_bps: float = setting(
        0.0, "Simulated depth beyond the visible liquidity (fill_at_worst): the k-th extra chunk, the size of the "
        "first visible level, trades k x depth_step_bps worse than the last visible price. 0: the rest fills "
        "at the last visible price.", ge=0, le=1000,
    )
    depth_levels: int = setting(
        10, "Most extra chunks of simulated depth a fill_at_worst order walks; what is left after them fills at "
        "the last chunk's price (bounds the fills of a large order against a thin book).", ge=0, le=1000,
    )
    initial_balances: dict[str, Decimal] = setting(
        factory=lambda: {"ETH": Decimal("10"), "XRP": Decimal("0")},
        doc="Starting balances of a new paper account (asset code -> amount >= 0).",
        ge=0,
    )
    match_on_bars: bool = setting(
        False,
        "Fill resting limit orders against bar high/low and volume (candle-only data; keep off when the "
        "feed carries trade prints, or orders would match twice).",
    )
    fsync: bool = setting(
        True,
        "Commit the paper account with synchronous=FULL (survives power loss); false survives process "
        "crashes only.",
        restart=True,
    )
    update_buffer: int = setting(
        100_000,
        "Updates buffered per updates() subscriber; beyond that they are dropped and counted (reconcile).",
        ge=1,
        le=10_000_000,
    )

    def validate(self) -> list[tuple[str, str]]:
        """The balances' keys are asset codes."""
        return [
            (f"initial_balances.{asset}", f"expected an asset code matching {ASSET_PATTERN}, got {asset!r}")
            for asset in self.initial_balances
            if not re.fullmatch(ASSET_PATTERN, asset)
        ]


@dataclasses.dataclass(frozen=True)
class CcxtVenueSection:
    """A live venue through ccxt / ccxt.pro."""

    exchange_id: str = setting("binance", "ccxt exchange id.", pattern=r"[a-z][a-z0-9_]*", restart=True)
    api_key_env: str = setting(
        "AAITI_API_KEY", "Environment variable holding the API key.", pattern=_ENV_NAME, restart=True
    )
    secret_env: str = setting(
        "AAITI_API_SECRET", "Environment variable holding the API secret.", pattern=_ENV_NAME, restart=True
    )
    credentials_dir_env: str = setting(
        "CREDENTIALS_DIRECTORY",
        "Environment variable naming a directory with files api_key and api_secret (systemd LoadCredential=).",
        pattern=_ENV_NAME,
        restart=True,
    )
    api_key: str = setting("", "API key (prefer the environment or credential files).", secret=True, restart=True)
    secret: str = setting("", "API secret (prefer the environment or credential files).", secret=True, restart=True)
    base_url: str = setting("", "Override of the REST/WS origin, e.g. http://127.0.0.1:8765 for the simulator.",
                            restart=True)
    start_simulator: bool = setting(False, "Start the built-in Binance simulator in-process.", restart=True)
    simulator_port: int = setting(8765, "Port of the in-process simulator.", ge=0, le=65535, restart=True)
    request_timeout_s: float = setting(10.0, "REST timeout.", gt=0, le=120)
    stream_idle_timeout_s: float = setting(30.0, "A market stream silent this long is re-dialled.", gt=0)
    api_key_credential: str = setting(
        "api_key", "File name of the API key in the credentials directory.", pattern=_FILE_NAME, restart=True
    )
    secret_credential: str = setting(
        "api_secret", "File name of the API secret in the credentials directory.", pattern=_FILE_NAME, restart=True
    )
    ws_keepalive_s: float = setting(
        10.0, "Websocket ping interval; a socket without pongs for 2-3 intervals is dropped (black hole).",
        gt=0, le=600, restart=True,
    )
    user_stream_idle_timeout_s: float = setting(
        60.0,
        "A user-data stream silent this long is re-dialled and our orders and fills re-read over REST "
        "(a zombie stream cannot be told from a quiet account).",
        gt=0, restart=True,
    )
    dial_timeout_s: float = setting(15.0, "Deadline for a websocket dial plus subscription.", gt=0, restart=True)
    reconnect_initial_s: float = setting(
        0.5, "First delay before re-dialling a broken stream (doubles, with jitter).", gt=0, restart=True
    )
    reconnect_max_s: float = setting(
        30.0, "Longest delay between stream re-dials (>= reconnect_initial_s).", gt=0, restart=True
    )
    reconnect_stable_s: float = setting(
        60.0, "A stream up this long resets the re-dial backoff.", gt=0, restart=True
    )
    poll_interval_s: float = setting(
        5.0, "Period of REST polling of open orders and fills while the user-data stream is down.", gt=0,
        restart=True,
    )
    read_retry_attempts: int = setting(
        3, "Attempts of a REST read on network errors (never for orders).", ge=1, le=10, restart=True
    )
    read_retry_initial_s: float = setting(
        0.25, "First back-off of a retried REST read (exponential, with jitter).", gt=0, restart=True
    )
    read_retry_max_s: float = setting(
        2.0, "Longest back-off between REST read attempts (>= read_retry_initial_s).", gt=0, restart=True
    )
    breaker_failure_threshold: int = setting(
        5, "REST failures (timeouts, 5xx, 429) within breaker_window_s that open the REST circuit.", ge=1,
        restart=True,
    )
    breaker_window_s: float = setting(
        60.0, "Window for counting REST failures; 0 = count consecutive failures.", ge=0, restart=True
    )
    breaker_break_s: float = setting(
        30.0, "How long an open circuit fails fast before half-open trial calls.", gt=0, restart=True
    )
    breaker_half_open_calls: int = setting(
        1, "Concurrent trial calls admitted while half-open.", ge=1, le=100, restart=True
    )
    order_breaker_failure_threshold: int = setting(
        3, "Consecutive ambiguous order submissions (timeout, 5xx, disconnect) that open the order circuit.",
        ge=1, restart=True,
    )
    order_breaker_latching: bool = setting(
        True,
        "Keep the order circuit open after it tripped until the venue's open orders and fills were re-read "
        "over REST (no trial orders); false: half-open trial orders after breaker_break_s.",
        restart=True,
    )
    rate_limit_pause_s: float = setting(
        10.0, "Pause after a rate limit (429: all REST calls; -1015: new orders) without a Retry-After.", gt=0,
        restart=True,
    )
    recv_window_ms: int = setting(
        10_000,
        "recvWindow of signed requests (ms): how long after its timestamp the venue still accepts a request "
        "(Binance: at most 60000, its own default 5000). An order whose reply was lost may be executed until "
        "then, so it is only declared lost after this (plus 2 s).",
        ge=1, le=60_000, restart=True,
    )
    auth_retry_s: float = setting(
        300.0,
        "After the venue refused our credentials (wrong key or secret, IP allow-list, permissions), how long "
        "every private call fails fast before one is tried again; trading is HALTED meanwhile.",
        gt=0, le=86_400, restart=True,
    )
    update_buffer: int = setting(
        100_000,
        "Updates buffered per updates() subscriber; beyond that they are dropped and counted (reconcile).",
        ge=1, le=10_000_000, restart=True,
    )
    quotes: Literal["bids_asks", "ticker", "none"] = setting(
        "bids_asks", "Top-of-book source of the ccxt feed: bookTicker (bids_asks), the 24h ticker, or none.",
        restart=True,
    )
    trades: bool = setting(True, "Stream public trades into the ccxt feed.", restart=True)
    order_book: bool = setting(
        False, "Also stream the order book (snapshots of the top order_book_depth levels).", restart=True
    )
    order_book_depth: int = setting(10, "Levels per side published from the order book.", ge=1, le=1000,
                                    restart=True)

    def validate(self) -> list[tuple[str, str]]:
        """Cross-field checks: each back-off starts no longer than its maximum."""
        issues: list[tuple[str, str]] = []
        for first, most in (("reconnect_initial_s", "reconnect_max_s"), ("read_retry_initial_s", "read_retry_max_s")):
            lo, hi = getattr(self, first), getattr(self, most)
            if lo > hi:
                issues.append((most, f"expected a value >= {first} ({lo}), got {hi}"))
        return issues


@dataclasses.dataclass(frozen=True)
class VenueSection:
    """Which venue orders go to."""

    kind: Literal["paper", "ccxt"] = setting("paper", "paper or ccxt.", restart=True)
    name: str = setting(
        "paper", "Venue name, stored with every order and fill (part of the state file name).",
        pattern=r"[A-Za-z0-9_.-]{1,64}", restart=True,
    )
    paper: PaperVenueSection = setting(factory=PaperVenueSection, doc="Paper venue settings.")
    ccxt: CcxtVenueSection = setting(factory=CcxtVenueSection, doc="ccxt venue settings.")


@dataclasses.dataclass(frozen=True)
class ReconcilerSection:
    """Reconciliation of our state with the venue's (intervals hot-reloadable)."""

    interval_s: float = setting(30.0, "Period of open-order and balance comparisons.", gt=0)
    inflight_query_after_s: float = setting(5.0, "Query in-flight orders older than this by client order id.", gt=0)
    fills_lookback_s: float = setting(86400.0, "How far back start-up reconciliation fetches fills.", gt=0)
    balance_tolerance: Decimal = setting(
        Decimal("0.00000001"), "Balance difference (per asset) tolerated before it counts as a mismatch.", ge=0
    )
    halt_after_discrepancies: int = setting(
        5, "Discrepancies in one pass above which trading is HALTED.", ge=0
    )
    unknown_orders: Literal["adopt", "cancel"] = setting("cancel", "What to do with venue orders we did not place.")


@dataclasses.dataclass(frozen=True)
class OrdersSection:
    """Protective and algorithmic orders (stops, take-profits, trailing stops, OCO, OTO,
    brackets, icebergs, TWAP): native on the venue where it has the type, or emulated by the
    daemon, which evaluates triggers on every market event and writes its state ahead."""

    native: str = setting(
        "auto",
        "'auto': send a type natively where the venue supports it (Binance spot: stop-loss, take-profit, "
        "trailingDelta in basis points, icebergQty, OCO and OTO lists), emulate the rest; 'never': emulate "
        "everything in the daemon.",
        choices=("auto", "never"),
        restart=True,
    )
    fallback_to_emulation: bool = setting(
        True,
        "When the venue refuses a native type (not a funds or filter refusal), emulate it instead and log "
        "contingent.native_refused_emulating; false: the order fails with the venue's reason.",
    )
    trailing_persist_interval_s: float = setting(
        1.0,
        "Process time between two write-behind saves of a moving trailing level (after a crash the level "
        "resumes from the last save: at most this much looser).",
        gt=0,
        le=3600,
    )
    child_retry_s: float = setting(
        1.0,
        "Process time before an emulated trigger whose child order the risk gate denied is released again "
        "(while the trigger condition still holds).",
        gt=0,
        le=3600,
    )
    max_child_attempts: int = setting(
        5, "Most releases of one emulated trigger's child before the contingent order FAILED.", ge=1, le=1000
    )
