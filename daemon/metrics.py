"""Prometheus metrics: one private registry, snapshot-based families, two latency histograms.

Design:

- Nothing here touches a module-level registry: ``Metrics`` owns a ``CollectorRegistry``
  with the process/platform/GC collectors and its own collector.
- Counters and gauges that actors already keep (channel depth, restarts, orders by status,
  risk denials, positions…) are *not* mirrored into prometheus_client objects on the hot
  path. A ``SnapshotCollector`` calls one ``source()`` callable at scrape time and turns the
  returned ``MetricsSnapshot`` (plain data) into metric families — zero cost per message.
  ``source()`` runs on the event loop inside a rendering: keep it a cheap read of
  published snapshots (linear in the number of series).
- The two latencies are real ``Histogram`` objects: ``observe_loop_lag(s)`` (the watchdog's
  ``on_lag``) and ``observe_tick_to_submit(s)`` (the order manager, per submitted order).
- ``render()`` is what ``GET /metrics`` awaits: one rendering at a time (concurrent scrapes
  share it), reused for ``cache_s`` seconds, and produced in ~1 ms slices with a yield to
  the event loop between them, so a scrape storm or a big label set never stalls trading
  (``generate_latest`` over ~1k series costs ~8 ms here in one piece).

Naming follows Prometheus practice: ``aaiti_`` prefix, base units (seconds), ``_total``
counters, and label values that are bounded sets (symbols, statuses, reasons, actor and
channel names) — never order ids or prices.
"""

from __future__ import annotations

import asyncio
import dataclasses
import platform
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from importlib import metadata

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from actors.kernel.channel import ChannelStats
from actors.kernel.clock import boot_time_s, monotonic, perf_s
from actors.kernel.supervisor import ChildStatus

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
HEALTH_STATES = ("healthy", "degraded", "unhealthy")
BREAKER_STATES = ("closed", "open", "half_open")
LOOP_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TICK_TO_SUBMIT_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)

Number = float | int | Decimal


@dataclasses.dataclass(frozen=True)
class PositionMetrics:
    """One symbol's position for the metrics (quote-currency PnL)."""

    symbol: str
    size: Number
    realized_pnl: Number = 0.0
    unrealized_pnl: Number | None = None


@dataclasses.dataclass(frozen=True)
class BreakerMetrics:
    """One circuit breaker: ``state`` is closed / open / half_open; ``trips`` counts closed→open."""

    name: str
    state: str
    trips: int = 0


@dataclasses.dataclass(frozen=True)
class MetricsSnapshot:
    """Everything the snapshot collector exports, as plain data read from published snapshots.

    Every field is optional: a family whose source is absent is simply not exported
    (empty mappings) or exported with its fixed label set (trading state, health).
    Counters are cumulative counts kept by their owners (a count resetting after an actor
    restart is fine: Prometheus ``rate()`` handles counter resets).
    """

    market_events: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    """(symbol, event type) → events received, e.g. ("BTC/USDT", "trade")."""
    channels: Sequence[ChannelStats] = ()
    actors: Sequence[ChildStatus] = ()
    orders_by_status: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """status → orders that entered it (order manager transition counters)."""
    open_orders: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """status → open orders now."""
    fills: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """symbol → fills applied."""
    risk_denials: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """reason code → denials."""
    positions: Sequence[PositionMetrics] = ()
    equity: Number | None = None
    equity_asset: str = ""
    trading_state: str | None = None
    kill_switch: bool | None = None
    health: str | None = None
    circuit_breakers: Sequence[BreakerMetrics] = ()
    reconnects: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """source (feed / venue stream name) → reconnects."""
    reconcile_discrepancies: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """kind (missing_fill, unknown_order, position_mismatch, …) → discrepancies found."""
    config_reloads: Mapping[str, int] = dataclasses.field(default_factory=dict)
    """result (applied, unchanged, invalid, restart_required, error) → reloads (ConfigReloader.counts)."""
    config_version: int | None = None
    config_loaded_at: float | None = None
    sd_notify_errors: int | None = None


def _f(value: Number) -> float:
    return float(value)


class SnapshotCollector(Collector):
    """Builds ``aaiti_`` families from ``source()`` each time the registry is collected."""

    def __init__(self, source: Callable[[], MetricsSnapshot], build_info: Mapping[str, str]) -> None:
        self.source = source
        self.build_info = dict(build_info)

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the registry must not call ``collect()`` at registration."""
        return ()

    def collect(self) -> Iterator[Metric]:
        """Yield every family (one ``source()`` call, so the families are mutually consistent)."""
        s = self.source()
        keys = sorted(self.build_info)
        info = GaugeMetricFamily("aaiti_build_info", "Build information (value 1).", labels=keys)
        info.add_metric([self.build_info[k] for k in keys], 1)
        yield info

        if s.market_events:
            fam = CounterMetricFamily("aaiti_market_events", "Market-data events received.", labels=["symbol", "type"])
            for (symbol, kind), n in sorted(s.market_events.items()):
                fam.add_metric([symbol, kind], n)
            yield fam

        if s.channels:
            depth = GaugeMetricFamily("aaiti_channel_depth", "Items waiting in a channel.", labels=["channel"])
            cap = GaugeMetricFamily("aaiti_channel_capacity", "Channel capacity.", labels=["channel"])
            hw = GaugeMetricFamily("aaiti_channel_high_water", "Highest depth seen.", labels=["channel"])
            sent = CounterMetricFamily("aaiti_channel_sent", "Items sent into a channel.", labels=["channel"])
            drops = CounterMetricFamily(
                "aaiti_channel_dropped", "Items dropped by a full drop_oldest/conflate channel.", labels=["channel"]
            )
            conf = CounterMetricFamily(
                "aaiti_channel_conflated", "Items replaced in place by a newer one (conflation).", labels=["channel"]
            )
            for ch in s.channels:
                depth.add_metric([ch.name], ch.depth)
                cap.add_metric([ch.name], ch.capacity)
                hw.add_metric([ch.name], ch.high_water)
                sent.add_metric([ch.name], ch.sent)
                drops.add_metric([ch.name], ch.dropped)
                conf.add_metric([ch.name], ch.conflated)
            yield from (depth, cap, hw, sent, drops, conf)

        if s.actors:
            names = [a.name for a in s.actors]
            restarts = CounterMetricFamily("aaiti_actor_restarts", "Restarts of a supervised child.", labels=["actor"])
            age = GaugeMetricFamily(
                "aaiti_actor_heartbeat_age_seconds", "Seconds since an actor last made progress.", labels=["actor"]
            )
            up = GaugeMetricFamily("aaiti_actor_up", "1 while a supervised child is running.", labels=["actor"])
            for a in s.actors:
                label = a.name if names.count(a.name) == 1 else a.path  # label values must be unique
                restarts.add_metric([label], a.restarts)
                up.add_metric([label], 1 if a.state == "running" else 0)
                if a.heartbeat_age_s is not None:
                    age.add_metric([label], a.heartbeat_age_s)
            yield from (restarts, age, up)

        orders = CounterMetricFamily("aaiti_orders", "Orders that entered each status.", labels=["status"])
        for status, n in sorted(s.orders_by_status.items()):
            orders.add_metric([status], n)
        yield orders
        open_orders = GaugeMetricFamily("aaiti_open_orders", "Open orders by status.", labels=["status"])
        for status, n in sorted(s.open_orders.items()):
            open_orders.add_metric([status], n)
        yield open_orders
        fills = CounterMetricFamily("aaiti_fills", "Fills applied.", labels=["symbol"])
        for symbol, n in sorted(s.fills.items()):
            fills.add_metric([symbol], n)
        yield fills
        denials = CounterMetricFamily("aaiti_risk_denials", "Order intents denied by the risk gate.", labels=["reason"])
        for reason, n in sorted(s.risk_denials.items()):
            denials.add_metric([reason], n)
        yield denials

        if s.positions:
            size = GaugeMetricFamily("aaiti_position_size", "Position in base units (signed).", labels=["symbol"])
            rpnl = GaugeMetricFamily(
                "aaiti_position_realized_pnl", "Realized PnL net of fees (quote currency).", labels=["symbol"]
            )
            upnl = GaugeMetricFamily(
                "aaiti_position_unrealized_pnl", "Unrealized PnL at the latest price (quote currency).",
                labels=["symbol"],
            )
            for p in s.positions:
                size.add_metric([p.symbol], _f(p.size))
                rpnl.add_metric([p.symbol], _f(p.realized_pnl))
                if p.unrealized_pnl is not None:
                    upnl.add_metric([p.symbol], _f(p.unrealized_pnl))
            yield from (size, rpnl, upnl)

        if s.equity is not None:
            eq = GaugeMetricFamily("aaiti_equity", "Account equity in the equity asset.", labels=["asset"])
            eq.add_metric([s.equity_asset], _f(s.equity))
            yield eq

        if s.trading_state is not None:
            ts = GaugeMetricFamily("aaiti_trading_state", "1 for the current trading state.", labels=["state"])
            for state in TRADING_STATES:
                ts.add_metric([state], 1 if s.trading_state == state else 0)
            yield ts
        if s.kill_switch is not None:
            yield GaugeMetricFamily(
                "aaiti_kill_switch", "1 while the kill switch is engaged.", value=int(s.kill_switch)
            )
        if s.health is not None:
            hs = GaugeMetricFamily("aaiti_health_status", "1 for the watchdog's current verdict.", labels=["status"])
            for status in HEALTH_STATES:
                hs.add_metric([status], 1 if s.health == status else 0)
            yield hs

        if s.circuit_breakers:
            bs = GaugeMetricFamily(
                "aaiti_circuit_breaker_state", "1 for each breaker's current state.", labels=["breaker", "state"]
            )
            trips = CounterMetricFamily(
                "aaiti_circuit_breaker_trips", "Times a breaker opened.", labels=["breaker"]
            )
            for b in s.circuit_breakers:
                for state in BREAKER_STATES:
                    bs.add_metric([b.name, state], 1 if b.state == state else 0)
                trips.add_metric([b.name], b.trips)
            yield from (bs, trips)

        reconnects = CounterMetricFamily("aaiti_reconnects", "Stream reconnects.", labels=["source"])
        for source, n in sorted(s.reconnects.items()):
            reconnects.add_metric([source], n)
        yield reconnects
        disc = CounterMetricFamily(
            "aaiti_reconcile_discrepancies", "Differences the reconciler found between venue and store.",
            labels=["kind"],
        )
        for kind, n in sorted(s.reconcile_discrepancies.items()):
            disc.add_metric([kind], n)
        yield disc
        reloads = CounterMetricFamily("aaiti_config_reloads", "Config reload attempts by result.", labels=["result"])
        for result, n in sorted(s.config_reloads.items()):
            reloads.add_metric([result], n)
        yield reloads
        if s.config_version is not None:
            yield GaugeMetricFamily("aaiti_config_version", "Version of the running config.", value=s.config_version)
        if s.config_loaded_at is not None:
            yield GaugeMetricFamily(
                "aaiti_config_load_timestamp_seconds", "When the running config was loaded (Unix time).",
                value=s.config_loaded_at,
            )
        if s.sd_notify_errors is not None:
            yield CounterMetricFamily(
                "aaiti_sd_notify_errors", "sd_notify datagrams that could not be sent.", value=s.sd_notify_errors
            )


class _ProcessCollector(ProcessCollector):
    """ProcessCollector that also works under systemd ``ProcSubset=pid``.

    The stock collector reads the boot time from ``/proc/stat`` and exports nothing at all
    when it cannot; ``ProcSubset=pid`` hides that file. CLOCK_BOOTTIME gives the same figure.
    """

    def _boot_time(self) -> float:
        try:
            btime = super()._boot_time()  # type: ignore[no-untyped-call]
        except OSError:
            btime = None
        if not btime:
            btime = boot_time_s()
        return float(btime)


def default_build_info() -> dict[str, str]:
    """Labels of ``aaiti_build_info``: package version and Python."""
    try:
        version = metadata.version("aaiti")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "version": version,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }


class _Families(Collector):
    """A collector over a fixed list of families (to render a slice with generate_latest)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


class Metrics:
    """The daemon's metrics: a private registry, the snapshot collector, two histograms, a cached renderer.

    ``source`` returns the current ``MetricsSnapshot`` (called once per rendering, on the
    event loop); ``set_source`` replaces it once the object graph exists. ``build_info``
    adds labels to ``aaiti_build_info`` (e.g. ``{"mode": "paper", "instance": "main"}``).
    ``cache_s`` may be changed at run time (config reload). A rendering yields to the loop
    whenever it has run ``slice_s`` seconds; families larger than ``chunk_samples`` are
    rendered in pieces so that one big family cannot hold the loop either.
    """

    def __init__(
        self,
        source: Callable[[], MetricsSnapshot] | None = None,
        *,
        build_info: Mapping[str, str] | None = None,
        cache_s: float = 1.0,
        chunk_samples: int = 100,
        slice_s: float = 0.001,
        process_metrics: bool = True,
        proc_path: str = "/proc",
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.cache_s = cache_s
        self.chunk_samples = max(1, chunk_samples)
        self.slice_s = slice_s
        self._clock = clock
        if process_metrics:
            _ProcessCollector(proc=proc_path, registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.loop_lag = Histogram(
            "aaiti_event_loop_lag_seconds", "Event-loop scheduling lag sampled by the watchdog.",
            buckets=LOOP_LAG_BUCKETS, registry=self.registry,
        )
        self.tick_to_submit = Histogram(
            "aaiti_tick_to_submit_seconds",
            "Time from a market event entering the daemon to the order it triggered being sent to the venue.",
            buckets=TICK_TO_SUBMIT_BUCKETS, registry=self.registry,
        )
        info = default_build_info()
        info.update(build_info or {})
        self.snapshots = SnapshotCollector(source or MetricsSnapshot, info)
        self.registry.register(self.snapshots)
        self._cached: bytes | None = None
        self._cached_at = 0.0
        self._inflight: asyncio.Task[bytes] | None = None
        self.renders = 0
        self.last_render_s = 0.0
        self.last_samples = 0

    def set_source(self, source: Callable[[], MetricsSnapshot]) -> None:
        """Read snapshots from ``source`` from now on."""
        self.snapshots.source = source

    # -- hot-path hooks (pre-bound, no labels) --------------------------------------------
    def observe_loop_lag(self, seconds: float) -> None:
        """Record one event-loop lag sample (wire to ``Watchdog(on_lag=...)``)."""
        self.loop_lag.observe(seconds)

    def observe_tick_to_submit(self, seconds: float) -> None:
        """Record the market-event → venue-submit latency of one order."""
        self.tick_to_submit.observe(seconds)

    # -- rendering --------------------------------------------------------------------------
    def render_now(self) -> bytes:
        """Render synchronously in one go (tests, tools); the admin server uses ``render()``."""
        return generate_latest(self.registry)

    async def render(self) -> bytes:
        """The exposition text: cached for ``cache_s``, one rendering at a time, in slices."""
        if self._cached is not None and self._clock() - self._cached_at < self.cache_s:
            return self._cached
        if self._inflight is None:
            self._inflight = asyncio.ensure_future(self._render_sliced())
            self._inflight.add_done_callback(self._render_done)
        # shield: a scraper that disconnects must not cancel the rendering others wait for.
        return await asyncio.shield(self._inflight)

    def _render_done(self, task: asyncio.Task[bytes]) -> None:
        self._inflight = None
        if not task.cancelled() and task.exception() is None:
            self._cached = task.result()
            self._cached_at = self._clock()

    async def _render_sliced(self) -> bytes:
        t0 = last_yield = perf_s()
        chunk, budget = self.chunk_samples, self.slice_s
        parts: list[bytes] = []
        samples = 0
        # registry.collect() is lazy: each collector (and each family of the snapshot
        # collector) is produced when reached, between our yields to the loop.
        for family in self.registry.collect():
            n = len(family.samples)
            samples += n
            if n <= chunk or any(s.name.endswith("_created") for s in family.samples):
                parts.append(generate_latest(_Families([family])))
            else:
                for i in range(0, n, chunk):
                    part = Metric(family.name, family.documentation, family.type)
                    part.samples = family.samples[i : i + chunk]
                    text = generate_latest(_Families([part]))
                    # Continuation slices drop their "# HELP" / "# TYPE" header lines.
                    parts.append(text if i == 0 else text.split(b"\n", 2)[2])
                    if perf_s() - last_yield >= budget:
                        await asyncio.sleep(0)
                        last_yield = perf_s()
            if perf_s() - last_yield >= budget:
                await asyncio.sleep(0)
                last_yield = perf_s()
        self.renders += 1
        self.last_render_s = perf_s() - t0
        self.last_samples = samples
        return b"".join(parts)

    def invalidate(self) -> None:
        """Drop the cached rendering (the next scrape renders afresh)."""
        self._cached = None
