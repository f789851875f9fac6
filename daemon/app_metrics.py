"""Builds the metrics snapshot from the daemon's published snapshots (read at scrape time only)."""

from __future__ import annotations

from daemon.daemon_view import DaemonView
from daemon.metrics import BreakerMetrics, MetricsSnapshot, PositionMetrics


def metrics_snapshot(app: DaemonView) -> MetricsSnapshot:
    """Everything the ``aaiti_`` families export, from cheap snapshot reads."""
    market: dict[tuple[str, str], int] = {}
    feed = app.feed_snapshot()
    if feed is not None:
        for sym in feed.symbols:
            for kind, n in (("trade", sym.trades), ("quote", sym.quotes), ("bar", sym.bars), ("book", sym.books)):
                if n:
                    market[(sym.symbol, kind)] = n
    orders_by_status: dict[str, int] = {}
    open_orders: dict[str, int] = {}
    fills: dict[str, int] = {}
    positions: list[PositionMetrics] = []
    snap = app.order_snapshot()
    if snap is not None:
        orders_by_status = dict(snap.counters.transitions)
        open_orders = dict(snap.counters.open_by_status)
        for pos in snap.positions:
            fills[pos.symbol] = pos.fills
            mark = app.reference_price(pos.symbol)
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
    state, kill_switch = app.trading_state()
    kill: bool | None = None
    risk = app.risk_snapshot()
    if risk is not None:
        denials = dict(risk.denied_by_reason)
        equity = risk.equity
        kill = kill_switch
    conn = app.connection_health()
    breakers = [BreakerMetrics(name=b.name, state=b.state, trips=b.trips) for b in conn.breakers]
    loaded = app.loaded
    cfg = app.config
    return MetricsSnapshot(
        market_events=market,
        channels=app.channel_stats(),
        actors=app.actor_statuses(),
        orders_by_status=orders_by_status,
        open_orders=open_orders,
        fills=fills,
        risk_denials=denials,
        positions=positions,
        equity=equity,
        equity_asset=cfg.risk.equity_asset or next((i.quote for i in cfg.instruments.values()), ""),
        trading_state=state.value,
        kill_switch=kill,
        health=app.health().status,
        circuit_breakers=breakers,
        reconnects=dict(conn.reconnects),
        reconcile_discrepancies=app.reconcile_discrepancies(),
        config_reloads=app.reload_counts(),
        config_version=loaded.version,
        config_loaded_at=loaded.loaded_at,
        sd_notify_errors=app.sd_notify_errors(),
    )
