"""Market-data and strategy sections."""

from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType
from typing import Any, Literal

from config.fields import setting

TIMEFRAME_PATTERN = r"[1-9][0-9]*[smhd]"
_UNIT_MS = MappingProxyType({"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000})
#: An asset code as ccxt writes it: "BTC", "USDT", "1000SHIB".
ASSET_PATTERN = r"[A-Za-z0-9._-]{1,32}"
#: A unified symbol: BASE/QUOTE, optionally with a settlement suffix (":USDT", ":BTC-211225-60000-C").
SYMBOL_PATTERN = rf"{ASSET_PATTERN}/{ASSET_PATTERN}(?::[A-Za-z0-9._-]{{1,64}})?"
_SYMBOL = re.compile(SYMBOL_PATTERN)
_SYMBOL_FORM = "BASE/QUOTE or BASE/QUOTE:SETTLE form, e.g. 'XRP/ETH' or 'BTC/USDT:USDT'"


def split_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote asset of a unified symbol: "XRP/ETH" -> ("XRP", "ETH").

    A settlement suffix ("BTC/USDT:USDT") is not part of either. Raises ValueError naming
    the text when it is not a symbol of that form.
    """
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise ValueError(f"invalid symbol {symbol!r} (expected {_SYMBOL_FORM})")
    base, _, quote = symbol.partition(":")[0].partition("/")
    return base, quote


def symbol_issues(key: str, symbols: tuple[str, ...]) -> list[tuple[str, str]]:
    """Problems of a list of symbols at ``key``: malformed or repeated entries."""
    issues: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, sym in enumerate(symbols):
        try:
            split_symbol(sym)
        except ValueError as exc:
            issues.append((f"{key}[{i}]", str(exc)))
        if sym in seen:
            issues.append((f"{key}[{i}]", f"duplicate symbol {sym!r}"))
        seen.add(sym)
    return issues


def timeframe_ms(timeframe: str) -> int:
    """Length of a timeframe such as "1m", "5m", "15m", "1h" or "1d" in milliseconds.

    Raises ValueError naming the text when it is not ``<positive integer><s|m|h|d>``.
    """
    if not isinstance(timeframe, str) or not re.fullmatch(TIMEFRAME_PATTERN, timeframe):
        raise ValueError(f"invalid timeframe {timeframe!r} (expected e.g. '1m', '5m', '15m', '1h', '1d')")
    return int(timeframe[:-1]) * _UNIT_MS[timeframe[-1]]


@dataclasses.dataclass(frozen=True)
class ReplaySection:
    """Replay of recorded market data from CSV (optionally gzip-compressed) files.

    The file is read and validated completely at start-up; a malformed or truncated file
    stops the daemon before trading starts, with the file name and line number.
    """

    path: str = setting(
        "data/market/binance_XRP-ETH_trades_2019-10.csv.gz",
        "Data file; relative paths are resolved against the config file's directory.",
        pattern=r".*\S.*",
        restart=True,
    )
    format: Literal["trades", "candles"] = setting(
        "trades", "trades: ts_ms,trade_id,side,price,amount,cost; candles: ts_ms,open,high,low,close,volume.",
        restart=True,
    )
    symbol: str = setting(
        "", "Symbol the file's rows belong to; empty = the first of feed.symbols.",
        pattern=f"(?:{SYMBOL_PATTERN})?", restart=True,
    )
    candle_timeframe: str = setting(
        "1m", "Timeframe of the rows when format = candles.", pattern=TIMEFRAME_PATTERN, restart=True
    )
    speed: float = setting(
        0.0, "Replay speed factor: 1 = real time, 3600 = an hour per second, 0 = as fast as possible.", ge=0
    )
    loop: bool = setting(False, "Start over at the end of the file (timestamps shifted to keep increasing).")
    derive_quotes: bool = setting(
        False,
        "After each trade print also emit a Quote centred on the trade price (a last-trade proxy for "
        "strategies and bars on the mid; not a real order book).",
        restart=True,
    )
    quote_spread_bps: float = setting(
        0.0, "Bid/ask spread of derived quotes around the trade price, in basis points.", ge=0, le=10_000
    )


@dataclasses.dataclass(frozen=True)
class SyntheticSection:
    """Seeded random-walk market with a spread and trade prints."""

    seed: int = setting(7, "RNG seed; the same seed gives the same market.", restart=True)
    start_price: float = setting(100.0, "First mid price.", gt=0)
    volatility_bps: float = setting(
        5.0, "Standard deviation of each step's return, in basis points.", ge=0, le=10_000
    )
    # 20,000 bps would put the bid at 0: keep it well inside.
    spread_bps: float = setting(2.0, "Bid/ask spread around the mid, in basis points.", ge=0, le=10_000)
    tick_interval_ms: int = setting(100, "Market time between events.", ge=1)
    trade_every: int = setting(1, "Emit a trade print every N quotes (0 = never).", ge=0)
    mean_trade_size: float = setting(1.0, "Mean size of a trade print (exponentially distributed).", gt=0)
    start_ts_ms: int = setting(
        1_700_006_400_000,
        "Market time of the first event (epoch ms; default 2023-11-15 00:00 UTC); 0 = the wall clock at "
        "start (then timestamps, but not prices, differ between runs).",
        ge=0,
        restart=True,
    )
    speed: float = setting(0.0, "1 = real time, 0 = as fast as possible.", ge=0)
    max_events: int = setting(0, "Stop after this many events (0 = unbounded).", ge=0)


@dataclasses.dataclass(frozen=True)
class FeedSection:
    """Where market data comes from and how it is turned into bars."""

    source: Literal["replay", "synthetic", "ccxt"] = setting("replay", "Market data source.", restart=True)
    symbols: tuple[str, ...] = setting(
        factory=lambda: ("XRP/ETH",), doc="Symbol universe (unified BASE/QUOTE form).", restart=True
    )
    timeframes: tuple[str, ...] = setting(
        factory=lambda: ("1m",), doc="Bar timeframes built from trades (or quotes' mid).", restart=True
    )
    bars_from: Literal["trades", "mid"] = setting(
        "trades",
        "What bars are built from: trade prints (OHLC of prices, summed sizes) or the mid price of "
        "quotes (volume 0, trades = number of quotes). Candle files bring their own bars.",
        restart=True,
    )
    bar_grace_ms: int = setting(
        0, "How long after a bar's period ends late prints are still accepted into it.", ge=0, le=3_600_000
    )
    stale_after_s: float = setting(
        30.0, "Age of the last event after which a symbol's data counts as stale (in feed time).", gt=0
    )
    on_end: Literal["idle", "stop"] = setting(
        "idle",
        "When a finite source ends: idle = keep running (data then goes stale); stop = flush open bars, "
        "close the subscribers' channels and end the feed actor (backtests, benchmarks).",
        restart=True,
    )
    replay: ReplaySection = setting(factory=ReplaySection, doc="Replay source settings.")
    synthetic: SyntheticSection = setting(factory=SyntheticSection, doc="Synthetic source settings.")

    def validate(self) -> list[tuple[str, str]]:
        """Cross-field checks: symbols and timeframes parse, the replay symbol is in the universe."""
        issues: list[tuple[str, str]] = []
        if not self.symbols:
            issues.append(("symbols", "expected at least one symbol"))
        issues.extend(symbol_issues("symbols", self.symbols))
        if not self.timeframes:
            issues.append(("timeframes", "expected at least one timeframe"))
        for i, tf in enumerate(self.timeframes):
            try:
                timeframe_ms(tf)
            except ValueError as exc:
                issues.append((f"timeframes[{i}]", str(exc)))
        if len(set(self.timeframes)) != len(self.timeframes):
            issues.append(("timeframes", "duplicate timeframe"))
        if self.source == "replay":
            if self.replay.symbol and self.replay.symbol not in self.symbols:
                issues.append(("replay.symbol", f"symbol {self.replay.symbol!r} is not in feed.symbols"))
            if self.replay.format == "trades" and self.bars_from == "mid" and not self.replay.derive_quotes:
                issues.append(
                    ("bars_from", "'mid' needs quotes, and a trade tape has none: set replay.derive_quotes = true")
                )
            if self.replay.format == "candles":
                base = timeframe_ms(self.replay.candle_timeframe)
                for i, tf in enumerate(self.timeframes):
                    try:
                        ms = timeframe_ms(tf)
                    except ValueError:
                        continue
                    if ms % base:
                        issues.append(
                            (
                                f"timeframes[{i}]",
                                f"{tf} cannot be built from {self.replay.candle_timeframe} candles "
                                "(expected a whole multiple)",
                            )
                        )
        return issues


@dataclasses.dataclass(frozen=True)
class StrategySection:
    """One strategy instance: a class by import path, its symbols, timeframe and parameters."""

    name: str = setting(doc="Unique instance name (used in order tags, logs and the admin API).",
                        pattern=r"[A-Za-z0-9_.-]{1,32}")
    strategy: str = setting(
        doc="Import path of the strategy class, e.g. 'actors.strategies.ema_cross:EmaCross'.",
        pattern=r"[A-Za-z_][\w.]*:[A-Za-z_]\w*",
    )
    enabled: bool = setting(True, "Run this instance (hot-reloadable).")
    symbols: tuple[str, ...] = setting(factory=tuple, doc="Symbols it trades (subset of feed.symbols).")
    timeframe: str = setting("1m", "Bar timeframe it receives.", pattern=TIMEFRAME_PATTERN)
    params: dict[str, Any] = setting(factory=dict, doc="Strategy parameters (validated by the strategy class).")

    def validate(self) -> list[tuple[str, str]]:
        """Its symbols are well-formed and listed once (membership in feed.symbols is checked by the root)."""
        return symbol_issues("symbols", self.symbols)
