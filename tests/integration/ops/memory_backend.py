"""A small but real ``AdminBackend``: in-memory orders/fills/positions, a real ConfigReloader,
LogRing and Metrics, trading-state rules like the risk gate's (kill switch needs confirmation).

A stand-in daemon for contract work on the admin server alone: the admin-server tests use it
(the daemon itself is tested through a real child process in
``tests/integration/ops/test_daemon_admin.py``, and ``bench/admin_load.py`` measures the real
daemon).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from actors.bar_log import BarHistory, BarSeries
from actors.kernel.channel import Channel, OverflowPolicy
from actors.kernel.supervisor import ChildStatus
from actors.model.contingent import ACTIVE_CONTINGENT_STATUSES, ContingentView, LegView
from actors.model.control import HealthVerdict, TradingState
from actors.model.market import Bar
from actors.model.orders import OPEN_STATUSES, Fill, OrderStatus, OrderType, Side
from actors.model.positions import PositionView
from actors.model.records import OrderRecord
from adapters.storage.store import OrderEventRecord
from config.loader import load_config
from daemon.admin.backend import ConfigView, Conflict, KillSwitchEngaged, Record
from daemon.logging_setup import LogRing
from daemon.metrics import Metrics, MetricsSnapshot, PositionMetrics
from daemon.reloader import ConfigReloader, ReloadResult

_CYCLE = (
    OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.ACCEPTED, OrderStatus.REJECTED,
    OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
)


class MemoryBackend:
    """Implements ``daemon.admin.backend.AdminBackend`` over in-memory state."""

    def __init__(self, ring: LogRing, config_path: Path, *, symbols: int = 3, orders: int = 30,
                 metrics_cache_s: float = 0.0) -> None:
        self._ring = ring
        self.config_path = config_path
        self.reloader = ConfigReloader(load_config(config_path))
        self.started = time.monotonic()
        self.verdict = HealthVerdict(status="healthy", ts_ms=int(time.time() * 1000))
        self.not_ready: list[str] = ["startup reconciliation pending"]
        self.state = TradingState.ACTIVE
        self.kill_switch = False
        self.state_reason = ""
        self.symbols = [f"S{i:03d}/USDT" for i in range(symbols)]
        self.strategies: dict[str, bool] = {"ema_fast": True, "rsi_revert": True}
        self.audit: list[tuple[str, str]] = []
        self.market_events: dict[tuple[str, str], int] = {(s, k): 0 for s in self.symbols for k in ("trade", "bar")}
        self.channels = [Channel[Any]("market", 1024, OverflowPolicy.DROP_OLDEST), Channel[Any]("intents", 1024)]
        self.orders_by_id: dict[str, OrderRecord] = {}
        self.fills_list: list[Fill] = []
        self.denials: list[dict[str, Any]] = []
        self.contingents: dict[str, ContingentView] = {}
        self._seed(orders)
        self._seed_contingent()
        self.metrics = Metrics(self.metrics_snapshot, build_info={"mode": "paper"}, cache_s=metrics_cache_s)

    # -- data ------------------------------------------------------------------------------
    def _seed(self, n: int) -> None:
        base = 1_700_000_000_000
        strategies = list(self.strategies)
        for i in range(n):
            symbol = self.symbols[i % len(self.symbols)]
            status = _CYCLE[i % len(_CYCLE)]
            size = Decimal(10 + i)
            filled = size if status is OrderStatus.FILLED else (size / 2 if status is OrderStatus.PARTIALLY_FILLED
                                                                else Decimal(0))
            coid = f"aaiti-{i:05d}"
            rec = OrderRecord(
                client_order_id=coid, venue="paper", strategy=strategies[i % len(strategies)], symbol=symbol,
                side=Side.BUY if i % 2 == 0 else Side.SELL, type=OrderType.LIMIT, size=size, status=status,
                price=Decimal("0.5") + Decimal(i) / 1000, filled=filled,
                avg_price=Decimal("0.5") if filled else None, created_ms=base + i * 1000, updated_ms=base + i * 1000,
            )
            self.orders_by_id[coid] = rec
            if filled:
                self.fills_list.append(Fill(
                    venue="paper", trade_id=f"t{i}", client_order_id=coid, symbol=symbol, side=rec.side,
                    price=Decimal("0.5"), size=filled, fee=Decimal("0.001"), fee_currency="USDT", ts_ms=base + i * 1000,
                ))
        for i, reason in enumerate(("max_position", "stale_data", "max_position")):
            self.denials.append({"id": i + 1, "ts_ms": base + i, "reason": reason, "strategy": "ema_fast",
                                 "symbol": self.symbols[0], "intent": {"side": "buy"}, "limit": "1000", "detail": ""})

    def _seed_contingent(self) -> None:
        """An emulated bracket protecting a fill, a native stop, and a finished OCO."""
        base = 1_700_000_100_000
        sym = self.symbols[0]
        views = [
            ContingentView(
                id="ct-00001", strategy="ema_fast", symbol=sym, kind="bracket", mode="emulated", status="WORKING",
                protected="2.1", created_ms=base, updated_ms=base + 5,
                legs=(LegView(name="entry", type="limit", side="buy", status="FILLED", size="2.1", filled="2.1",
                              limit_price="0.5", client_order_ids=("aaiti-00001",)),
                      LegView(name="take_profit", type="take_profit", side="sell", status="WORKING", size="2.1",
                              trigger_price="0.55"),
                      LegView(name="stop_loss", type="stop_market", side="sell", status="WORKING", size="2.1",
                              trigger_price="0.47123", trailing="50bps"))),
            ContingentView(
                id="ct-00002", strategy="rsi_revert", symbol=self.symbols[1], kind="stop", mode="native",
                status="WORKING", protected="3", created_ms=base + 1000, updated_ms=base + 1000,
                legs=(LegView(name="order", type="stop_market", side="sell", status="ACCEPTED", size="3",
                              trigger_price="0.4", client_order_ids=("aaiti-00002",)),)),
            ContingentView(
                id="ct-00003", strategy="ema_fast", symbol=sym, kind="oco", mode="emulated", status="DONE",
                created_ms=base - 1000, updated_ms=base,
                legs=(LegView(name="above", type="take_profit", side="sell", status="FILLED", size="1", filled="1",
                              trigger_price="0.6"),
                      LegView(name="below", type="stop_market", side="sell", status="CANCELED", size="1",
                              trigger_price="0.45"))),
        ]
        self.contingents = {v.id: v for v in views}

    def positions_view(self) -> list[PositionView]:
        size: dict[str, Decimal] = {}
        count: dict[str, int] = {}
        for f in self.fills_list:
            size[f.symbol] = size.get(f.symbol, Decimal(0)) + (f.size if f.side is Side.BUY else -f.size)
            count[f.symbol] = count.get(f.symbol, 0) + 1
        return [PositionView(symbol=s, size=size.get(s, Decimal(0)), avg_price=Decimal("0.5"), fills=count.get(s, 0),
                             realized_pnl=Decimal("-0.001") * count.get(s, 0)) for s in self.symbols]

    def metrics_snapshot(self) -> MetricsSnapshot:
        status_counts: dict[str, int] = {}
        open_counts: dict[str, int] = {}
        for rec in self.orders_by_id.values():
            status_counts[rec.status.value] = status_counts.get(rec.status.value, 0) + 1
            if rec.status in OPEN_STATUSES:
                open_counts[rec.status.value] = open_counts.get(rec.status.value, 0) + 1
        fills: dict[str, int] = {}
        for f in self.fills_list:
            fills[f.symbol] = fills.get(f.symbol, 0) + 1
        denials: dict[str, int] = {}
        for d in self.denials:
            denials[d["reason"]] = denials.get(d["reason"], 0) + 1
        return MetricsSnapshot(
            market_events=self.market_events,
            channels=[c.stats for c in self.channels],
            actors=self.actor_statuses(),
            orders_by_status=status_counts,
            open_orders=open_counts,
            fills=fills,
            risk_denials=denials,
            positions=[PositionMetrics(p.symbol, p.size, p.realized_pnl, p.size * Decimal("0.01"))
                       for p in self.positions_view()],
            equity=Decimal("1000"),
            equity_asset="USDT",
            trading_state=self.state.value,
            kill_switch=self.kill_switch,
            health=self.verdict.status,
            config_reloads=self.reloader.counts,
            config_version=self.reloader.current.version,
            config_loaded_at=self.reloader.current.loaded_at,
        )

    def actor_statuses(self) -> list[ChildStatus]:
        age = time.monotonic() - self.started
        out = [ChildStatus("watchdog", "root/watchdog", "watchdog", "running", 0, 0.1, 0, None),
               ChildStatus("feed", "root/feed", "feed", "running", 1, 0.01, 0, "ConnectionError()")]
        out += [ChildStatus(name, f"root/strategies/{name}", "strategy", "running" if on else "stopped", 0,
                            min(age, 0.5), 0, None) for name, on in self.strategies.items()]
        return out

    # -- AdminBackend ------------------------------------------------------------------------
    @property
    def log_ring(self) -> LogRing:
        return self._ring

    def status(self) -> Mapping[str, Any]:
        cfg = self.reloader.current.config
        return {
            "name": cfg.daemon.name, "mode": cfg.daemon.mode, "version": "0.1.0", "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 3), "trading_state": self.state.value,
            "kill_switch": self.kill_switch, "health": {"status": self.verdict.status,
                                                        "reasons": list(self.verdict.reasons)},
            "config_version": self.reloader.current.version, "actors": self.actor_statuses(),
            "channels": [c.stats for c in self.channels],
            "circuit_breakers": [{"name": "venue", "state": "closed", "trips": 1, "latched": False,
                                  "open_remaining_s": None, "reason": ""}],
            "reconnects": {"market_data": 2},
            "contingent": self._contingent_summary(),
        }

    def _contingent_summary(self) -> dict[str, Any]:
        by_kind: dict[str, dict[str, int]] = {}
        active = [v for v in self.contingents.values() if v.status in ACTIVE_CONTINGENT_STATUSES]
        for v in active:
            by_kind.setdefault(v.kind, {})[v.mode] = by_kind.get(v.kind, {}).get(v.mode, 0) + 1
        return {"active": len(active), "by_kind": by_kind}

    def readiness(self) -> tuple[bool, Sequence[str]]:
        return (not self.not_ready, list(self.not_ready))

    def health(self) -> HealthVerdict:
        return self.verdict

    def positions(self) -> Sequence[Record]:
        return self.positions_view()

    def balances(self) -> Sequence[Record]:
        return [{"asset": "USDT", "free": Decimal("990.5"), "locked": Decimal("9.5"), "total": Decimal("1000")},
                {"asset": "S000", "free": Decimal("12"), "locked": Decimal(0), "total": Decimal("12")}]

    def risk(self) -> Record:
        cfg = self.reloader.current.config
        return {"state": self.state.value, "kill_switch": self.kill_switch, "limits": cfg.risk,
                "open_orders": sum(1 for r in self.orders_by_id.values() if r.is_open),
                "gross_exposure": Decimal("12.5"), "equity": Decimal("1000"), "daily_pnl": Decimal("-0.25"),
                "drawdown_pct": 0.5, "denied_by_reason": {"max_position": 2, "stale_data": 1}}

    def config_view(self) -> ConfigView:
        return ConfigView.from_loaded(self.reloader.current)

    async def metrics_exposition(self) -> bytes:
        return await self.metrics.render()

    async def orders(self, *, statuses: frozenset[OrderStatus] | None, symbol: str | None, strategy: str | None,
                     limit: int, offset: int) -> Sequence[Record]:
        await asyncio.sleep(0)  # a store query yields to the loop
        rows = [r for r in self.orders_by_id.values()
                if (statuses is None or r.status in statuses) and (symbol is None or r.symbol == symbol)
                and (strategy is None or r.strategy == strategy)]
        rows.sort(key=lambda r: r.created_ms, reverse=True)
        return rows[offset:offset + limit]

    async def order(self, client_order_id: str) -> Record | None:
        """Like ``AppAdmin.order``: the order and its stored event history."""
        await asyncio.sleep(0)
        rec = self.orders_by_id.get(client_order_id)
        if rec is None:
            return None
        return {"order": rec, "events": self.order_events(rec)}

    def order_events(self, rec: OrderRecord) -> list[OrderEventRecord]:
        """A plausible stored history ending in the order's status (what the store would return)."""
        path = [OrderStatus.SUBMITTED, OrderStatus.ACCEPTED]
        if rec.status not in path:
            path.append(rec.status)
        trade = next((f.trade_id for f in self.fills_list if f.client_order_id == rec.client_order_id), None)
        return [
            OrderEventRecord(id=i + 1, client_order_id=rec.client_order_id, status=status,
                             previous=path[i - 1] if i else None,
                             filled=rec.filled if status in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED)
                             else Decimal(0),
                             reason="", trade_id=trade if status is rec.status and rec.filled else None,
                             ts_ms=rec.created_ms + i)
            for i, status in enumerate(path)
        ]

    async def fills(self, *, client_order_id: str | None, symbol: str | None, limit: int,
                    offset: int) -> Sequence[Record]:
        await asyncio.sleep(0)
        rows = [f for f in self.fills_list if (client_order_id is None or f.client_order_id == client_order_id)
                and (symbol is None or f.symbol == symbol)]
        return rows[offset:offset + limit]

    async def risk_events(self, *, reason: str | None, limit: int, offset: int) -> Sequence[Record]:
        await asyncio.sleep(0)
        rows = [d for d in reversed(self.denials) if reason is None or d["reason"] == reason]
        return rows[offset:offset + limit]

    def equity_history(self) -> Sequence[Record]:
        """Two hours of equity sampled every 5 s would be 1440 points; a few suffice here."""
        return [{"ts_ms": 1_700_000_000_000 + i * 5000, "equity": Decimal(1000) + Decimal(i) / 10} for i in range(20)]

    def recent_bars(self) -> BarHistory:
        """Deterministic 1m bars per symbol, ending where the seeded fills are."""
        base = 1_700_000_000_000 - 10 * 60_000
        series = []
        for k, symbol in enumerate(self.symbols):
            bars = []
            for i in range(30):
                mid = 0.5 + 0.01 * ((i * (k + 3)) % 7) - 0.02
                bars.append(Bar(symbol=symbol, ts_ms=base + i * 60_000, timeframe="1m", open=mid,
                                high=mid + 0.01, low=mid - 0.01, close=mid + (0.005 if i % 2 else -0.005),
                                volume=100.0 + i))
            series.append(BarSeries(symbol=symbol, timeframe="1m", bars=tuple(bars)))
        return BarHistory(version=1, series=tuple(series))

    async def recent_fills(self, *, symbol: str | None, since_ms: int | None, limit: int) -> Sequence[Record]:
        await asyncio.sleep(0)
        rows = [f for f in self.fills_list if (symbol is None or f.symbol == symbol)
                and (since_ms is None or f.ts_ms >= since_ms)]
        return list(reversed(rows))[:limit]

    def backtests_dir(self) -> Path | None:
        return self.config_path.parent / "backtests"

    async def reload_config(self, source: str) -> ReloadResult:
        return await self.reloader.reload(source)

    def _trading(self) -> dict[str, Any]:
        return {"state": self.state.value, "kill_switch": self.kill_switch, "reason": self.state_reason}

    async def pause(self, reason: str) -> Record:
        if self.kill_switch:  # like AppAdmin.pause: pausing cannot lift a kill switch
            raise KillSwitchEngaged("trading was killed and stays HALTED; resume with confirmation first")
        self.audit.append(("pause", reason))
        if self.state is TradingState.ACTIVE:
            self.state, self.state_reason = TradingState.REDUCING, reason
        return self._trading()

    async def resume(self, reason: str, confirm: bool) -> Record:
        if self.kill_switch and not confirm:
            raise KillSwitchEngaged()
        self.audit.append(("resume", reason))
        self.state, self.kill_switch, self.state_reason = TradingState.ACTIVE, False, reason
        return self._trading()

    async def kill(self, reason: str) -> Record:
        self.audit.append(("kill", reason))
        self.state, self.kill_switch, self.state_reason = TradingState.HALTED, True, reason
        return self._trading()

    async def cancel_order(self, client_order_id: str, reason: str) -> bool:
        rec = self.orders_by_id.get(client_order_id)
        if rec is None:
            return False
        if rec.is_terminal:
            raise Conflict(f"order {client_order_id} is already {rec.status.value}", status=rec.status.value)
        self.audit.append(("cancel", client_order_id))
        self.orders_by_id[client_order_id] = OrderRecord(**{
            **{f: getattr(rec, f) for f in rec.__struct_fields__}, "status": OrderStatus.PENDING_CANCEL,
            "reason": reason})
        return True

    async def contingent_orders(self, *, active_only: bool, limit: int) -> Sequence[Record]:
        await asyncio.sleep(0)
        rows = [v for v in self.contingents.values() if not active_only or v.status in ACTIVE_CONTINGENT_STATUSES]
        rows.sort(key=lambda v: v.created_ms, reverse=True)
        return rows[:limit]

    async def contingent_order(self, contingent_id: str) -> Record | None:
        await asyncio.sleep(0)
        return self.contingents.get(contingent_id)

    async def cancel_contingent(self, contingent_id: str, reason: str) -> bool:
        view = self.contingents.get(contingent_id)
        if view is None:
            return False
        if view.status not in ACTIVE_CONTINGENT_STATUSES:
            raise Conflict(f"contingent order {contingent_id} is already {view.status}", status=view.status)
        self.audit.append(("cancel_contingent", contingent_id))
        self.contingents[contingent_id] = msgspec.structs.replace(view, status="CANCELED", reason=reason)
        return True

    async def strategy_stop(self, name: str) -> bool:
        if name not in self.strategies:
            return False
        self.strategies[name] = False
        return True

    async def strategy_start(self, name: str) -> bool:
        if name not in self.strategies:
            return False
        self.strategies[name] = True
        return True
