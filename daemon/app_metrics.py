"""Builds the metrics snapshot from the daemon's published snapshots (read at scrape time only),
and the contingent-order families (``ContingentMetrics``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from actors.model.orders import ExecutionMode
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


TRIGGER_TO_SUBMIT_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
)
"""Seconds: an emulated trigger's child is meant to reach the venue within 50 µs .. 50 ms."""


class ContingentCollector(Collector):
    """The contingent-order families, read from the daemon view at scrape time.

    - ``aaiti_contingent_orders{kind,mode,status}`` (gauge): active contingent orders.
    - ``aaiti_contingent_completed_total{kind,mode,status}`` (counter): orders that reached a
      final status since the manager (re)started (a restart resets it, as for other counters).
    - ``aaiti_open_orders_by_mode{mode}`` (gauge): ``native``: open orders on the venue;
      ``emulated``: active contingent orders the daemon itself holds (their triggers armed here).

    The families are always exported (possibly without samples), so dashboards and alerts
    can name them before the first protective order exists.
    """

    def __init__(self, view: DaemonView) -> None:
        self.view = view

    def describe(self) -> Iterable[Metric]:
        """Nothing up front (the registry must not collect at registration)."""
        return ()

    def collect(self) -> Iterator[Metric]:
        """Yield the families (cheap reads of the manager's book and the order manager's snapshot)."""
        labels = ["kind", "mode", "status"]
        active = GaugeMetricFamily("aaiti_contingent_orders",
                                   "Active contingent (protective and algorithmic) orders.", labels=labels)
        counts = self.view.contingent_counts()
        for (kind, mode, status), n in sorted(counts.items()):
            active.add_metric([kind.value, mode.value, status.value], n)
        yield active
        done = CounterMetricFamily("aaiti_contingent_completed",
                                   "Contingent orders that reached a final status.", labels=labels)
        for (kind, mode, status), n in sorted(self.view.contingent_completed().items()):
            done.add_metric([kind.value, mode.value, status.value], n)
        yield done
        by_mode = GaugeMetricFamily(
            "aaiti_open_orders_by_mode",
            "Open orders by execution mode: native = on the venue, emulated = contingent orders held by the daemon.",
            labels=["mode"],
        )
        snap = self.view.order_snapshot()
        native = sum(snap.counters.open_by_status.values()) if snap is not None else 0
        emulated = sum(n for (_, mode, _), n in counts.items() if mode is ExecutionMode.EMULATED)
        by_mode.add_metric([ExecutionMode.NATIVE.value], native)
        by_mode.add_metric([ExecutionMode.EMULATED.value], emulated)
        yield by_mode


class ContingentMetrics:
    """The contingent-order metrics on a ``Metrics`` registry: the collector above and the
    ``aaiti_trigger_to_submit_seconds`` histogram (market event that crossed an emulated
    trigger → its child order handed to the venue)."""

    def __init__(self, registry: CollectorRegistry, view: DaemonView) -> None:
        self.collector = ContingentCollector(view)
        registry.register(self.collector)
        self.trigger_to_submit = Histogram(
            "aaiti_trigger_to_submit_seconds",
            "Time from the market event that crossed an emulated trigger to its child order being sent to the venue.",
            buckets=TRIGGER_TO_SUBMIT_BUCKETS, registry=registry,
        )

    def observe_trigger_to_submit(self, latency_ns: int) -> None:
        """Record one trigger-to-submit latency (``build_pipeline(on_trigger_submit=...)``)."""
        self.trigger_to_submit.observe(latency_ns / 1e9)
