"""The web console's picture of the daemon: one JSON document built from the admin backend.

``build_state`` gathers what the console shows (status, readiness, health, risk, positions,
balances, open orders, active contingent (protective) orders, recent fills and denials,
breakers and reconnects, the equity curve, and the decimal places to print its numbers with)
and ``build_charts`` the candlestick series with their fills and open-order price levels.
Everything comes from the ``AdminBackend`` (published snapshots, bounded store queries);
``ConsoleStateCache`` builds it at most once per ``max_age_s`` however many browsers watch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from actors.kernel.clock import monotonic, wall_ms
from actors.model.orders import OPEN_STATUSES
from daemon.admin.backend import AdminBackend, AdminError, Record
from daemon.cli_format import Precision

RECENT_FILLS = 50
RECENT_DENIALS = 25
OPEN_ORDERS = 200
CONTINGENT = 200
CHART_FILLS = 500
_TO_PLAIN = msgspec.json.Encoder(enc_hook=str)


def plain(value: Any) -> Any:
    """A JSON-able copy of a record (msgspec Structs, Decimals as strings, enums as values)."""
    return msgspec.json.decode(_TO_PLAIN.encode(value))


def _field(rec: Any, name: str) -> Any:
    return rec.get(name) if isinstance(rec, Mapping) else getattr(rec, name, None)


async def _optional(what: str, problems: list[str], call: Any) -> Any:
    """Await ``call``; on an ``AdminError`` (e.g. store not open yet) note it and return []."""
    try:
        return await call
    except AdminError as exc:
        problems.append(f"{what}: {exc.message}")
        return []


def precision_block(config: Mapping[str, Any]) -> dict[str, Any]:
    """The console's ``precision``: decimal places per instrument and asset, as the CLI prints them.

    ``config`` is a plain config (``config_to_plain``, e.g. ``ConfigView.config``). The keys are
    ``cli_format.Precision``'s: ``tick`` ({symbol: places} for prices), ``step`` ({symbol: places}
    for sizes), ``quote`` ({symbol: quote asset}), ``asset`` ({asset: places} for money) and
    ``equity_asset`` (the asset equity, daily PnL and exposure are counted in).
    """
    p = Precision.from_config(config)
    return {"tick": dict(p.tick), "step": dict(p.step), "quote": dict(p.quote), "asset": dict(p.asset),
            "equity_asset": p.equity_asset}


class PrecisionCache:
    """The ``precision`` block of the running config, rebuilt only when the config version changes."""

    def __init__(self) -> None:
        self._version: Any = None
        self._block: dict[str, Any] | None = None

    def get(self, backend: AdminBackend, version: Any) -> dict[str, Any]:
        """The block for config ``version`` (``status()["config_version"]``; None: always rebuilt)."""
        if self._block is None or version is None or version != self._version:
            self._block = precision_block(backend.config_view().config)
            self._version = version
        return self._block


async def build_state(backend: AdminBackend, precision: PrecisionCache | None = None) -> dict[str, Any]:
    """The console's state document (see ``ConsoleState`` in the OpenAPI document), without charts.

    ``precision`` keeps the ``precision`` block between builds (without it, it is built anew).
    """
    problems: list[str] = []
    status = plain(backend.status())
    ready, not_ready = backend.readiness()
    verdict = backend.health()
    try:
        risk: Any = plain(backend.risk())
    except AdminError as exc:
        risk = None
        problems.append(f"risk: {exc.message}")
    open_orders = await _optional("orders", problems, backend.orders(
        statuses=OPEN_STATUSES, symbol=None, strategy=None, limit=OPEN_ORDERS, offset=0))
    contingent = await _optional("contingent orders", problems, backend.contingent_orders(
        active_only=True, limit=CONTINGENT))
    fills = await _optional("fills", problems, backend.recent_fills(
        symbol=None, since_ms=_chart_start_ms(backend), limit=RECENT_FILLS))
    denials = await _optional("risk events", problems, backend.risk_events(reason=None, limit=RECENT_DENIALS,
                                                                           offset=0))
    return {
        "ts_ms": wall_ms(),
        "status": status,
        "ready": ready,
        "not_ready": list(not_ready),
        "health": {"status": verdict.status, "reasons": list(verdict.reasons)},
        "trading_state": status.get("trading_state"),
        "kill_switch": status.get("kill_switch"),
        "risk": risk,
        "positions": plain(list(backend.positions())),
        "balances": plain(list(backend.balances())),
        "open_orders": plain(list(open_orders)),
        "contingent": plain(list(contingent)),
        "fills": plain(list(fills)),
        "denials": plain(list(denials)),
        "breakers": status.get("circuit_breakers", []),
        "reconnects": status.get("reconnects", {}),
        "equity": plain(list(backend.equity_history())),
        "precision": (precision or PrecisionCache()).get(backend, status.get("config_version")),
        "problems": problems,
    }


def _chart_start_ms(backend: AdminBackend) -> int | None:
    starts = [s.bars[0].ts_ms for s in backend.recent_bars().series if s.bars]
    return min(starts) if starts else None


def _level(order: Record) -> dict[str, Any] | None:
    price = _field(order, "price")
    if price is None:
        return None
    return {"client_order_id": _field(order, "client_order_id"), "side": plain(_field(order, "side")),
            "type": plain(_field(order, "type")), "price": str(price), "size": str(_field(order, "size")),
            "status": plain(_field(order, "status"))}


async def build_charts(backend: AdminBackend, open_orders: Sequence[Any]) -> dict[str, Any]:
    """Candles per (symbol, timeframe) as ``[time_s, open, high, low, close, volume]`` rows, the
    symbol's fills inside the window (entries and exits) and its open orders' price levels."""
    history = backend.recent_bars()
    series_out: list[dict[str, Any]] = []
    fills_by_symbol: dict[str, list[Any]] = {}
    for series in history.series:
        if not series.bars:
            continue
        symbol = series.symbol
        if symbol not in fills_by_symbol:
            starts = [s.bars[0].ts_ms for s in history.series if s.symbol == symbol and s.bars]
            try:
                fills = await backend.recent_fills(symbol=symbol, since_ms=min(starts), limit=CHART_FILLS)
            except AdminError:
                fills = []
            fills_by_symbol[symbol] = plain(list(reversed(fills)))  # oldest first, like the bars
        levels = [lv for o in open_orders if _field(o, "symbol") == symbol and (lv := _level(o)) is not None]
        series_out.append({
            "symbol": symbol,
            "timeframe": series.timeframe,
            "bars": [[b.ts_ms // 1000, b.open, b.high, b.low, b.close, b.volume] for b in series.bars],
            "fills": fills_by_symbol[symbol],
            "levels": levels,
        })
    return {"version": history.version, "series": series_out}


class ConsoleStateCache:
    """Builds the state (and charts) at most once per ``max_age_s``; concurrent readers share one build."""

    def __init__(self, backend: AdminBackend, max_age_s: float = 0.5) -> None:
        self.backend = backend
        self.max_age_s = max_age_s
        self._lock = asyncio.Lock()
        self._built_at = -1e18
        self._state: dict[str, Any] = {}
        self._charts: dict[str, Any] = {}
        self._precision = PrecisionCache()

    async def get(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(state, charts), at most ``max_age_s`` old."""
        async with self._lock:
            if monotonic() - self._built_at >= self.max_age_s:
                state = await build_state(self.backend, self._precision)
                self._charts = await build_charts(self.backend, state["open_orders"])
                self._state = state
                self._built_at = monotonic()
            return self._state, self._charts
