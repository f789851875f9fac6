"""Builds the metrics snapshot from the App's published snapshots (read at scrape time only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daemon.metrics import BreakerMetrics, MetricsSnapshot, PositionMetrics

if TYPE_CHECKING:
    from daemon.app import App


def app_metrics_snapshot(app: App) -> MetricsSnapshot:
    """Everything the ``aaiti_`` families export, from cheap snapshot reads."""
    market: dict[tuple[str, str], int] = {}
    if app.feed is not None:
        for sym in app.feed.snapshot().symbols:
            for kind, n in (("trade", sym.trades), ("quote", sym.quotes), ("bar", sym.bars), ("book", sym.books)):
                if n:
                    market[(sym.symbol, kind)] = n
    orders_by_status: dict[str, int] = {}
    open_orders: dict[str, int] = {}
    fills: dict[str, int] = {}
    positions: list[PositionMetrics] = []
    if app.order_manager is not None:
        snap = app.order_manager.snapshot()
        orders_by_status = dict(snap.counters.transitions)
        open_orders = dict(snap.counters.open_by_status)
        gate = app.risk_gate
        for pos in snap.positions:
            fills[pos.symbol] = pos.fills
            mark = gate.reference_price(pos.symbol) if gate is not None else None
            positions.append(
                PositionMetrics(
                    symbol=pos.symbol,
                    size=pos.size,
                    realized_pnl=pos.realized_pnl,
                    unrealized_pnl=pos.unrealized_pnl(mark) if mark is not None else None,
                )
            )
    denials: dict[str, int] = {}
    equity = None
    trading_state = app.trading_state.value
    kill = None
    if app.risk_gate is not None:
        risk = app.risk_gate.snapshot()
        denials = dict(risk.denied_by_reason)
        equity = risk.equity
        trading_state = risk.state.value
        kill = risk.kill_switch
    breakers = [BreakerMetrics(name=b["name"], state=b["state"], trips=b["trips"]) for b in app.breaker_snapshots()]
    loaded = app.reloader.current
    return MetricsSnapshot(
        market_events=market,
        channels=[ch.stats for ch in app.channels],
        actors=app.root.statuses(),
        orders_by_status=orders_by_status,
        open_orders=open_orders,
        fills=fills,
        risk_denials=denials,
        positions=positions,
        equity=equity,
        equity_asset=app.config.risk.equity_asset or next((i.quote for i in app.config.instruments.values()), ""),
        trading_state=trading_state,
        kill_switch=kill,
        health=app.watchdog.verdict.status,
        circuit_breakers=breakers,
        reconnects=app.reconnect_counts(),
        reconcile_discrepancies=dict(app.reconciler.discrepancies_total) if app.reconciler is not None else {},
        config_reloads=dict(app.reloader.counts),
        config_version=loaded.version,
        config_loaded_at=loaded.loaded_at,
        sd_notify_errors=app.notifier.errors,
    )
