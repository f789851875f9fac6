"""The running daemon as the admin API sees it: ``AdminBackend`` over a ``DaemonView``.

Reads come from snapshots the actors publish (order manager, risk gate, feed, supervisor
tree, the contingent-order manager's views) or from the store; commands are messages:
trading-state changes go to the risk gate's control channel, order cancels to the order
manager's command channel, contingent-order cancels to the contingent-order manager's inbox
(a kill's ``CancelAll`` goes to both).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from actors.bar_log import BarHistory
from actors.contingent.kinds import row_view
from actors.kernel.clock import wall_ms
from actors.model.contingent import ACTIVE_CONTINGENT_STATUSES, ContingentView
from actors.model.control import HealthVerdict, SetTradingState, TradingState
from actors.model.orders import TERMINAL_STATUSES, CancelAll, CancelOrder, ExecutionMode, OrderStatus
from actors.model.records import OrderRecord
from daemon.admin.backend import (
    RESUME_CONFIRMATION,
    ConfigView,
    Conflict,
    KillSwitchEngaged,
    Record,
    Unavailable,
)
from daemon.daemon_view import DaemonView
from daemon.logging_setup import LogRing
from daemon.reloader import ReloadResult

if TYPE_CHECKING:
    from adapters.storage.store import Store

VERSION = "0.1.0"
EQUITY_SAMPLE_S = 5.0
EQUITY_SAMPLES = 1440  # two hours at one sample per 5 s
FILL_PAGE = 1000
MAX_FILL_PAGES = 20  # a bound on one recent_fills call: 20 store reads of 1000 rows
_ACTIVE_VALUES = frozenset(s.value for s in ACTIVE_CONTINGENT_STATUSES)


def order_json(rec: OrderRecord) -> dict[str, Any]:
    """An order as the admin API shows it: the record plus ``mode`` (every order in the order
    manager runs on the venue: ``native``; emulated orders are contingent orders, ``/contingent``)."""
    out = msgspec.structs.asdict(rec)
    out["mode"] = ExecutionMode.NATIVE.value
    return out


def contingent_summary(views: Sequence[ContingentView]) -> dict[str, Any]:
    """``/status``'s ``contingent`` block: active orders in total and by kind and mode."""
    by_kind: dict[str, dict[str, int]] = {}
    for v in views:
        modes = by_kind.setdefault(v.kind, {})
        modes[v.mode] = modes.get(v.mode, 0) + 1
    return {"active": len(views), "by_kind": by_kind}


class EquityHistory:
    """A bounded ring of ``(wall-clock ms, equity)`` samples: the console's equity curve.

    ``run`` samples every ``interval_s`` of process time (the curve is about what the
    operator watched happen, so its axis is wall time even when the data is replayed).
    """

    def __init__(self, maxlen: int = EQUITY_SAMPLES) -> None:
        self._samples: deque[tuple[int, Decimal]] = deque(maxlen=maxlen)

    def add(self, ts_ms: int, equity: Decimal) -> None:
        """Keep one sample (the oldest is dropped when full)."""
        self._samples.append((ts_ms, equity))

    def samples(self) -> list[tuple[int, Decimal]]:
        """The samples, oldest first."""
        return list(self._samples)

    async def run(self, read: Callable[[], Decimal | None], interval_s: float = EQUITY_SAMPLE_S) -> None:
        """Sample ``read()`` (skipping None: equity unknown yet) until cancelled."""
        while True:
            value = read()
            if value is not None:
                self.add(wall_ms(), value)
            await asyncio.sleep(interval_s)


class AppAdmin:
    """Implements ``daemon.admin.backend.AdminBackend`` over the daemon's narrow view."""

    def __init__(self, app: DaemonView) -> None:
        self.app = app
        self._log: Any = structlog.get_logger("aaiti").bind(actor="admin")

    # -- reads -------------------------------------------------------------------------
    @property
    def log_ring(self) -> LogRing:
        """The in-memory log ring."""
        return self.app.log_ring

    def status(self) -> Mapping[str, Any]:
        """Overview: process, trading state, health, config, actors, channels, breakers."""
        app = self.app
        cfg = app.config
        verdict = app.health()
        state, kill = app.trading_state()
        loaded = app.loaded
        ready, reasons = app.readiness()
        conn = app.connection_health()
        return {
            "name": cfg.daemon.name,
            "mode": cfg.daemon.mode,
            "version": VERSION,
            "pid": os.getpid(),
            "uptime_s": round((wall_ms() - app.started_at_ms) / 1000, 3),
            "ready": ready,
            "not_ready_reasons": reasons,
            "trading_state": state.value,
            "kill_switch": kill,
            "health": {"status": verdict.status, "reasons": list(verdict.reasons)},
            "loop_lag_ms": round(app.loop_lag_ms(), 3),
            "config_version": loaded.version,
            "config_loaded_at": loaded.loaded_at,
            "config_path": str(loaded.path) if loaded.path else None,
            "actors": app.actor_statuses(),
            "channels": app.channel_stats(),
            "circuit_breakers": [
                {"name": b.name, "state": b.state, "trips": b.trips, "latched": b.latched,
                 "open_remaining_s": b.open_remaining_s, "reason": b.reason}
                for b in conn.breakers
            ],
            "reconnects": dict(conn.reconnects),
            "feed": app.feed_snapshot(),
            "venue": {"kind": cfg.venue.kind, "name": cfg.venue.name},
            "contingent": contingent_summary(app.contingent_views()),
        }

    def readiness(self) -> tuple[bool, Sequence[str]]:
        """Ready once reconciled, the feed is live and trading is not halted."""
        return self.app.readiness()

    def health(self) -> HealthVerdict:
        """The watchdog's latest verdict."""
        return self.app.health()

    def positions(self) -> Sequence[Record]:
        """Per symbol: size, average price, realized PnL, fees, mark and unrealized PnL."""
        snap = self.app.order_snapshot()
        if snap is None:
            return []
        out: list[Record] = []
        for pos in snap.positions:
            mark = self.app.reference_price(pos.symbol)
            out.append(
                {
                    "symbol": pos.symbol,
                    "size": pos.size,
                    "avg_price": pos.avg_price,
                    "realized_pnl": pos.realized_pnl,
                    "fees": pos.fees,
                    "fills": pos.fills,
                    "mark": mark,
                    "unrealized_pnl": pos.unrealized_pnl(mark) if mark is not None else None,
                }
            )
        return out

    def balances(self) -> Sequence[Record]:
        """Per asset: total (from fills), locked by open orders, free."""
        snap = self.app.order_snapshot()
        if snap is None:
            return []
        locked: dict[str, Decimal] = {}
        instruments = self.app.config.instruments
        for o in snap.open_orders:
            inst = instruments.get(o.symbol)
            if inst is None:
                continue
            remaining = o.size - o.filled
            if o.side.value == "buy":
                price = o.price if o.price is not None else Decimal(0)
                locked[inst.quote] = locked.get(inst.quote, Decimal(0)) + remaining * price
            else:
                locked[inst.base] = locked.get(inst.base, Decimal(0)) + remaining
        return [
            {"asset": asset, "total": total, "locked": locked.get(asset, Decimal(0)),
             "free": total - locked.get(asset, Decimal(0))}
            for asset, total in sorted(snap.balances.items())
        ]

    def risk(self) -> Record:
        """The risk gate's snapshot: state, kill switch, limits and usage."""
        snap = self.app.risk_snapshot()
        if snap is None:
            raise Unavailable("risk gate not started")
        return snap

    def config_view(self) -> ConfigView:
        """The running config, secrets redacted."""
        return ConfigView.from_loaded(self.app.loaded)

    async def metrics_exposition(self) -> bytes:
        """Prometheus text (cached and sliced rendering)."""
        return await self.app.metrics_exposition()

    async def orders(
        self,
        *,
        statuses: frozenset[OrderStatus] | None,
        symbol: str | None,
        strategy: str | None,
        limit: int,
        offset: int,
    ) -> Sequence[Record]:
        """Stored orders, newest first."""
        store = self._store()
        rows = await store.orders(status=statuses, symbol=symbol, strategy=strategy, limit=limit, offset=offset)
        return [order_json(r) for r in rows]

    async def order(self, client_order_id: str) -> Record | None:
        """One order with its event history."""
        store = self._store()
        rec = await store.order(client_order_id)
        if rec is None:
            return None
        events = await store.order_events(client_order_id)
        return {"order": order_json(rec), "events": events}

    async def fills(
        self, *, client_order_id: str | None, symbol: str | None, limit: int, offset: int
    ) -> Sequence[Record]:
        """Stored fills."""
        return await self._store().fills(client_order_id=client_order_id, symbol=symbol, limit=limit, offset=offset)

    async def risk_events(self, *, reason: str | None, limit: int, offset: int) -> Sequence[Record]:
        """Stored risk denials, newest first."""
        return await self._store().risk_events(reason=reason, limit=limit, offset=offset)

    async def contingent_orders(self, *, active_only: bool, limit: int) -> Sequence[Record]:
        """Active contingent orders (the manager's live views) and, unless ``active_only``, finished
        ones from the store; newest first, at most ``limit``."""
        live = {v.id: v for v in self.app.contingent_views()}
        views = list(live.values())
        if not active_only:
            rows = await self._store().recent_contingents(limit)
            # An active row the manager does not hold (it is restarting) is shown as last saved.
            views += [row_view(r, self._log) for r in rows if r.id not in live]
        views.sort(key=lambda v: (v.created_ms, v.id), reverse=True)
        return views[:limit]

    async def contingent_order(self, contingent_id: str) -> Record | None:
        """One contingent order: live if the manager holds it, else as stored."""
        for v in self.app.contingent_views():
            if v.id == contingent_id:
                return v
        row = await self._store().contingent(contingent_id)
        return row_view(row, self._log) if row is not None else None

    async def cancel_contingent(self, contingent_id: str, reason: str) -> bool:
        """Ask the contingent-order manager to cancel one; Conflict if it is already finished."""
        found = await self.contingent_order(contingent_id)
        if found is None:
            return False
        assert isinstance(found, ContingentView)
        if found.status not in _ACTIVE_VALUES:
            raise Conflict(f"contingent order {contingent_id} is already {found.status}", status=found.status)
        try:
            await self.app.send_contingent_command(
                CancelOrder(client_order_id=contingent_id, reason=reason or "admin cancel"))
        except RuntimeError:
            raise Unavailable("contingent-order manager not started") from None
        self._audit("admin.cancel_contingent", {"contingent_id": contingent_id, "reason": reason})
        return True

    def equity_history(self) -> Sequence[Record]:
        """Sampled equity, oldest first: ``{"ts_ms", "equity"}``."""
        return [{"ts_ms": ts, "equity": eq} for ts, eq in self.app.equity_history()]

    def recent_bars(self) -> BarHistory:
        """The bar log's recent bars per (symbol, timeframe)."""
        return self.app.recent_bars()

    async def recent_fills(self, *, symbol: str | None, since_ms: int | None, limit: int) -> Sequence[Record]:
        """The newest ``limit`` stored fills with venue time >= ``since_ms``, newest first.

        The store pages fills oldest first, so this reads forward from ``since_ms`` and keeps
        the tail; callers pass a recent ``since_ms`` (the charts' first bar) to keep it short.
        """
        store = self._store()
        tail: deque[Record] = deque(maxlen=limit)
        for page in range(MAX_FILL_PAGES):
            rows = await store.fills(symbol=symbol, since_ms=since_ms, limit=FILL_PAGE, offset=page * FILL_PAGE)
            tail.extend(rows)
            if len(rows) < FILL_PAGE:
                break
        return list(reversed(tail))

    def backtests_dir(self) -> Path | None:
        """``backtests/`` next to the config file (None when running on built-in defaults)."""
        loaded = self.app.loaded
        return loaded.base_dir / "backtests" if loaded.path is not None else None

    def _audit(self, kind: str, payload: dict[str, Any]) -> None:
        # Operator commands belong in the tamper-evident trail next to the trading decisions.
        if self.app.store is not None:
            self.app.store.append_audit_nowait(kind, payload)

    def _store(self) -> Store:
        if self.app.store is None:
            raise Unavailable("state store not open yet")
        return self.app.store

    # -- commands ----------------------------------------------------------------------
    async def reload_config(self, source: str) -> ReloadResult:
        """Reload through the one serialized path."""
        return await self.app.reload_config(source)

    async def pause(self, reason: str) -> Record:
        """REDUCING: only orders that shrink a position. Refused (409) while the kill switch is engaged."""
        _, kill = self.app.trading_state()
        if kill:
            # The gate would refuse it (leaving HALTED needs the kill switch lifted): say so at once.
            raise KillSwitchEngaged(
                "trading was killed and stays HALTED; pausing cannot lift the kill switch: resume with the body "
                f'{{"confirm": "{RESUME_CONFIRMATION}"}} first (CLI: aaiti resume --confirm)'
            )
        if not self._already(TradingState.REDUCING, kill_switch=False):
            await self._set_state(SetTradingState(state=TradingState.REDUCING, reason=reason or "admin pause"))
        return self._state_record(reason)

    async def resume(self, reason: str, confirm: bool) -> Record:
        """ACTIVE; lifting a kill switch needs ``confirm``."""
        if self.app.risk_snapshot() is None:
            raise Unavailable("risk gate not started")
        _, kill = self.app.trading_state()
        if kill and not confirm:
            raise KillSwitchEngaged()
        if not self._already(TradingState.ACTIVE, kill_switch=False):
            cmd = SetTradingState(
                state=TradingState.ACTIVE, reason=reason or "admin resume", kill_switch=False if confirm else None
            )
            await self._set_state(cmd)
        return self._state_record(reason)

    async def kill(self, reason: str) -> Record:
        """HALTED + kill switch (persisted), then cancel every contingent order and every open order.

        The contingent-order manager gets its ``CancelAll`` first, so its emulated triggers are
        disarmed before the venue orders go (the risk gate also sends it one when the kill switch
        engages; a second finds nothing left to cancel).
        """
        if not self._already(TradingState.HALTED, kill_switch=True):
            await self._set_state(
                SetTradingState(state=TradingState.HALTED, reason=reason or "admin kill", kill_switch=True)
            )
        cancel_all = CancelAll(reason="kill switch")
        try:
            await self.app.send_contingent_command(cancel_all)
        except RuntimeError:
            raise Unavailable("contingent-order manager not started") from None
        await self._send(cancel_all)
        return self._state_record(reason)

    async def _set_state(self, cmd: SetTradingState) -> None:
        try:
            await self.app.set_trading_state(cmd)
        except RuntimeError:
            raise Unavailable("risk gate not started") from None

    async def _send(self, cmd: CancelOrder | CancelAll) -> None:
        try:
            await self.app.send_order_command(cmd)
        except RuntimeError:
            raise Unavailable("order manager not started") from None

    def _already(self, state: TradingState, *, kill_switch: bool) -> bool:
        """True when the gate is in ``state`` with that kill switch already.

        The gate publishes nothing for a command that changes nothing, so sending one would
        make ``set_trading_state`` wait out its whole timeout (a 2 s stall on a repeated
        pause/resume/kill).
        """
        if self.app.risk_snapshot() is None:
            return False
        current, kill = self.app.trading_state()
        return current is state and kill == kill_switch

    async def cancel_order(self, client_order_id: str, reason: str) -> bool:
        """Ask the order manager to cancel; Conflict if the order is already finished."""
        rec = await self._store().order(client_order_id)
        if rec is None:
            return False
        if rec.status in TERMINAL_STATUSES:
            raise Conflict(f"order {client_order_id} is already {rec.status.value}", status=rec.status.value)
        await self._send(CancelOrder(client_order_id=client_order_id, reason=reason or "admin cancel"))
        self._audit("admin.cancel_order", {"client_order_id": client_order_id, "reason": reason})
        return True

    async def strategy_stop(self, name: str) -> bool:
        """Stop one strategy instance (it stays stopped until started or reloaded)."""
        if not await self.app.stop_strategy(name):
            return False
        self._audit("admin.strategy_stop", {"strategy": name})
        return True

    async def strategy_start(self, name: str) -> bool:
        """Start a stopped strategy instance."""
        if not self.app.start_strategy(name):
            return False
        self._audit("admin.strategy_start", {"strategy": name})
        return True

    def _state_record(self, reason: str) -> Record:
        state, kill = self.app.trading_state()
        return {"state": state.value, "kill_switch": kill, "reason": reason}
