"""Chaos/crash test harness: a Binance simulator in this process, a real ``aaiti run`` child against it.

The simulator runs on its own event loop in a background thread, so the synchronous test
code (admin HTTP calls, log waits, signals) never blocks it and it outlives any number of
daemon processes. Fault injection goes through :meth:`SimThread.call`, which runs on the
simulator's loop.

Comparisons (:func:`compare`) read our side over the admin API and the simulator's side
from its in-memory exchange, and return human-readable mismatches (empty = converged).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs

from adapters.binance_sim import BinanceSimulator, MarketSourceConfig, SimulatorConfig
from adapters.binance_sim.orders import Order
from tests.integration.ops.daemon_harness import Api, OpsDaemon, wait_until

T = TypeVar("T")

PREFIX = "aa-"
SYMBOLS = ("BTC/USDT", "ETH/USDT")
VENUE_IDS = {"BTC/USDT": "BTCUSDT", "ETH/USDT": "ETHUSDT"}
UNIFIED = {v: k for k, v in VENUE_IDS.items()}
STRATEGY = "tests.chaos.chaos_strategy:ChaosTrader"
ORDER_PATH = "/api/v3/order"
#: Binance order status → ours.
STATUS_MAP = {
    "NEW": "ACCEPTED",
    "PARTIALLY_FILLED": "PARTIALLY_FILLED",
    "FILLED": "FILLED",
    "CANCELED": "CANCELED",
    "EXPIRED": "EXPIRED",
    "REJECTED": "REJECTED",
}
#: Our statuses of an order the venue never acknowledged.
CLOSED_UNSEEN = frozenset({"REJECTED", "DENIED"})
#: The daemon's ``recvWindow`` (``venue.ccxt.recv_window_ms``): a server clock ahead of ours by
#: more than this refuses our signed requests (-1021), as does one behind by more than 1 s.
RECV_WINDOW_MS = 10_000


def sim_config(*, seed: int = 7, tick_ms: float = 100.0, **overrides: Any) -> SimulatorConfig:
    """A lively synthetic market (a print per symbol every ``tick_ms``) with a large request log."""
    base = SimulatorConfig(
        market=MarketSourceConfig(kind="synthetic", seed=seed, tick_interval_ms=tick_ms, history_minutes=30),
        ticker_interval_ms=200,
        kline_interval_ms=500,
        request_log_max=500_000,
        seed=seed,
    )
    return dataclasses.replace(base, **overrides)


class SimThread:
    """A :class:`BinanceSimulator` on its own event loop in a daemon thread."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="binance-sim", daemon=True)
        self._thread.start()
        self.sim: BinanceSimulator = self.run(self._start())

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    async def _start(self) -> BinanceSimulator:
        sim = BinanceSimulator(self.config)
        await sim.start()
        return sim

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the simulator's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a plain function on the simulator's loop (thread-safe access to its state)."""
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def go() -> None:
            try:
                fut.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # handed to the caller
                fut.set_exception(exc)

        self.loop.call_soon_threadsafe(go)
        return fut.result(30.0)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.sim.base_url

    def stop(self) -> None:
        """Stop the simulator and its loop."""
        try:
            self.run(self.sim.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()

    # -- reading the simulator's truth (on its loop) -----------------------------------
    def snapshot(self) -> SimState:
        """Our orders, their fills and the account balances, as the simulator has them."""
        return self.call(_sim_state, self.sim)


@dataclasses.dataclass(frozen=True)
class SimState:
    """The simulator's view: orders by client id (list: duplicates show), fills by trade id, balances."""

    orders: dict[str, list[tuple[str, Decimal, int]]]
    fills: dict[str, tuple[str, Decimal, Decimal, Decimal, str]]
    balances: dict[str, Decimal]
    posts: dict[str, list[tuple[int | None, int | None]]]


def _sim_state(sim: BinanceSimulator) -> SimState:
    orders: dict[str, list[tuple[str, Decimal, int]]] = {}
    fills: dict[str, tuple[str, Decimal, Decimal, Decimal, str]] = {}
    for venue_id, unified in UNIFIED.items():
        mine: dict[int, Order] = {}
        for o in sim.exchange.orders.all_orders(venue_id):
            if o.client_order_id.startswith(PREFIX):
                orders.setdefault(o.client_order_id, []).append((o.status.value, o.executed_qty, o.order_id))
                mine[o.order_id] = o
        for f in sim.exchange.orders.fills(venue_id):
            order = mine.get(f.order_id)
            if order is not None:
                fills[f"{unified}:{f.trade_id}"] = (order.client_order_id, f.qty, f.price, f.commission,
                                                   f.commission_asset)
    balances = {a: free + locked for a, (free, locked) in sim.balances().items()}
    posts: dict[str, list[tuple[int | None, int | None]]] = {}
    for req in sim.requests.find("POST", ORDER_PATH):
        coid = parse_qs(req.body).get("newClientOrderId", [""])[0]
        if coid.startswith(PREFIX):
            posts.setdefault(coid, []).append((req.status, req.error_code))
    return SimState(orders, fills, balances, posts)


@dataclasses.dataclass(frozen=True)
class OurState:
    """Our view over the admin API."""

    orders: dict[str, dict[str, Any]]
    fills: dict[str, dict[str, Any]]
    balances: dict[str, Decimal]


def _pages(api: Api, path: str, key: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = api.ok("GET", path, {"limit": 1000, "offset": offset})
        rows = page[key]
        out.extend(rows)
        if len(rows) < 1000:
            return out
        offset += len(rows)


def our_state(api: Api) -> OurState:
    """Orders, fills and balances of the daemon (admin API)."""
    orders = {o["client_order_id"]: o for o in _pages(api, "/orders", "orders")}
    fills = {f["trade_id"]: f for f in _pages(api, "/fills", "fills")}
    balances = {b["asset"]: Decimal(str(b["total"])) for b in api.ok("GET", "/balances")["balances"]}
    return OurState(orders, fills, balances)


#: How long after its submission an order the venue never saw may stay SUBMITTED: its request
#: may still arrive until the venue's request expiry (``CcxtVenue.submit_expiry_s``, 12 s).
UNDECIDABLE_S = 13.0


def compare(ours: OurState, sim: SimState, *, inflight_ok: bool = False) -> list[str]:
    """Every difference between our state and the simulator's (empty: equal).

    ``inflight_ok``: orders of ours still SUBMITTED that the simulator never saw and that
    were submitted less than ``UNDECIDABLE_S`` ago are not (yet) a difference: nobody can
    tell yet whether their request will arrive.
    """
    now_ms = time.time() * 1000
    problems: list[str] = []
    for coid, versions in sim.orders.items():
        if len(versions) > 1:
            problems.append(f"duplicate orders at the venue for {coid}: {versions}")
        status, executed, _ = versions[-1]
        rec = ours.orders.get(coid)
        if rec is None:
            problems.append(f"lost order: {coid} is at the venue ({status}) but not in our store")
            continue
        if rec["status"] != STATUS_MAP[status]:
            problems.append(f"{coid}: status ours {rec['status']}, venue {status}")
        if Decimal(str(rec["filled"])) != executed:
            problems.append(f"{coid}: filled ours {rec['filled']}, venue {executed}")
    for coid, rec in ours.orders.items():
        if coid in sim.orders:
            continue
        if rec["status"] == "SUBMITTED" and inflight_ok and now_ms - rec["created_ms"] < UNDECIDABLE_S * 1000:
            continue
        if rec["status"] not in CLOSED_UNSEEN:
            problems.append(f"{coid}: ours {rec['status']} but unknown to the venue")
    for tid, (coid, qty, price, fee, fee_ccy) in sim.fills.items():
        f = ours.fills.get(tid)
        if f is None:
            problems.append(f"missing fill {tid} of {coid}")
            continue
        got = (f["client_order_id"], Decimal(str(f["size"])), Decimal(str(f["price"])), Decimal(str(f["fee"])),
               f["fee_currency"])
        if got != (coid, qty, price, fee, fee_ccy):
            problems.append(f"fill {tid}: ours {got}, venue {(coid, qty, price, fee, fee_ccy)}")
    for tid in set(ours.fills) - set(sim.fills):
        problems.append(f"fill {tid} is ours but not the venue's")
    for asset in sorted(set(ours.balances) | set(sim.balances)):
        a, b = ours.balances.get(asset, Decimal(0)), sim.balances.get(asset, Decimal(0))
        if a != b:
            problems.append(f"balance {asset}: ours {a}, venue {b}")
    return problems


def ledger_balances(initial: Mapping[str, Decimal], fills: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Balances implied by ``initial`` plus our stored fills (independent of any rebase)."""
    out = dict(initial)
    for f in fills:
        base, quote = str(f["symbol"]).split("/")
        size, price, fee = Decimal(str(f["size"])), Decimal(str(f["price"])), Decimal(str(f["fee"]))
        sign = 1 if f["side"] == "buy" else -1
        out[base] = out.get(base, Decimal(0)) + sign * size
        out[quote] = out.get(quote, Decimal(0)) - sign * size * price
        out[f["fee_currency"]] = out.get(f["fee_currency"], Decimal(0)) - fee
    return out


def duplicate_posts(sim: SimState) -> dict[str, list[tuple[int | None, int | None]]]:
    """Client ids POSTed more than once where an earlier attempt did not definitely fail.

    A definite failure is a 4xx answer with a Binance error code (the request was refused
    before an order existed); anything else (no answer, 5xx, 429/418, a success) makes a
    later POST of the same id a duplicate submission.
    """
    out = {}
    for coid, attempts in sim.posts.items():
        for status, code in attempts[:-1]:
            if not (status is not None and 400 <= status < 500 and status not in (418, 429) and code is not None):
                out[coid] = attempts
                break
    return out


# -- the daemon's config -----------------------------------------------------------------------
def chaos_config(
    tmp: Path,
    sim: SimThread,
    *,
    every_ms: int = 400,
    enabled: bool = True,
    ccxt: Mapping[str, Any] | None = None,
    reconciler: Mapping[str, Any] | None = None,
    extra: str = "",
    strategy: str = STRATEGY,
    params: str | None = None,
) -> Path:
    """A live config against ``sim`` (ccxt venue and feed), small timeouts, one ChaosTrader
    (``enabled`` at start) trading every ``every_ms`` per symbol.

    ``strategy`` (an import path) and ``params`` (a TOML inline table) replace the strategy
    named ``chaos`` and its parameters.
    """
    ccxt_section: dict[str, Any] = {
        "exchange_id": "binance",
        "start_simulator": False,
        "base_url": sim.base_url,
        "request_timeout_s": 1.5,
        "stream_idle_timeout_s": 2.0,
        "user_stream_idle_timeout_s": 3.0,
        "ws_keepalive_s": 1.0,
        "dial_timeout_s": 3.0,
        "reconnect_initial_s": 0.05,
        "reconnect_max_s": 0.5,
        "reconnect_stable_s": 2.0,
        "poll_interval_s": 0.5,
        "read_retry_attempts": 3,
        "read_retry_initial_s": 0.05,
        "read_retry_max_s": 0.2,
        "breaker_failure_threshold": 5,
        "breaker_window_s": 5.0,
        "breaker_break_s": 1.0,
        "rate_limit_pause_s": 1.0,
        "recv_window_ms": RECV_WINDOW_MS,
        "quotes": "bids_asks",
        "trades": True,
        "order_book": True,
        "order_book_depth": 5,
    }
    ccxt_section.update(ccxt or {})
    rec: dict[str, Any] = {"interval_s": 2.0, "inflight_query_after_s": 1.0, "unknown_orders": "cancel",
                           "halt_after_discrepancies": 5}
    rec.update(reconciler or {})
    params = f"params = {params}" if params is not None else (
        'params = { sizes = { "BTC/USDT" = "0.0002", "ETH/USDT" = "0.004" }, '
        f'ticks = {{ "BTC/USDT" = "0.01", "ETH/USDT" = "0.01" }}, every_ms = {every_ms}, max_resting = 4 }}'
    )
    text = f"""
[daemon]
name = "aaiti-chaos"
mode = "live"
state_dir = '{tmp / "state"}'
stop_timeout_s = 20
order_drain_timeout_s = 3

[admin]
port = 0

[log]
level = "info"

[feed]
source = "ccxt"
symbols = ["BTC/USDT", "ETH/USDT"]
timeframes = ["1m"]
stale_after_s = 5

[instruments."BTC/USDT"]
base = "BTC"
quote = "USDT"
tick_size = "0.01"
step_size = "0.00001"
min_qty = "0.00001"
min_notional = "5"

[instruments."ETH/USDT"]
base = "ETH"
quote = "USDT"
tick_size = "0.01"
step_size = "0.0001"
min_qty = "0.0001"
min_notional = "5"

[risk]
max_order_notional = "100"
max_position = "1"
max_gross_exposure = "100000"
max_open_orders = 40
max_orders_per_minute = 600
price_collar_bps = 200
stale_data_s = 5
daily_loss_limit = "100000"
max_drawdown_pct = 90
equity_asset = "USDT"

[venue]
kind = "ccxt"
name = "binance-sim"

[venue.ccxt]
{_toml_table(ccxt_section)}

[reconciler]
{_toml_table(rec)}

[[strategies]]
name = "chaos"
strategy = "{strategy}"
enabled = {_toml_value(enabled)}
symbols = ["BTC/USDT", "ETH/USDT"]
timeframe = "1m"
{params}
{extra}
"""
    path = tmp / "aaiti.toml"
    path.write_text(text)
    return path


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_table(values: Mapping[str, Any]) -> str:
    return "\n".join(f"{k} = {_toml_value(v)}" for k, v in values.items())


def sim_env(sim: SimThread) -> dict[str, str]:
    """Credentials for the child, through the environment (``AAITI_API_KEY``/``AAITI_API_SECRET``)."""
    return {"AAITI_API_KEY": sim.config.api_key, "AAITI_API_SECRET": sim.config.api_secret}


# -- observing the daemon ---------------------------------------------------------------------
_METRIC = re.compile(r'^(?P<name>[a-z_:]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$')


def metrics(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The Prometheus exposition as ``{(name, labels): value}``."""
    resp = api.get("/metrics")
    assert resp.status == 200, resp.status
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in resp.text.splitlines():
        m = _METRIC.match(line)
        if m is None or line.startswith("#"):
            continue
        labels = frozenset(
            tuple(part.split("=", 1)) for part in re.findall(r'[a-z_]+="[^"]*"', m["labels"] or "")
        )
        labels = frozenset((k, v.strip('"')) for k, v in labels)
        out[(m["name"], labels)] = float(m["value"])
    return out


def metric(values: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float | None:
    """One sample's value (None if absent)."""
    return values.get((name, frozenset(labels.items())))


def count_events(daemon: OpsDaemon, event: str, since: int = 0) -> int:
    """Log records with ``event`` since index ``since``."""
    return len(daemon.events(event, since))


def wait_events(daemon: OpsDaemon, event: str, count: int, since: int, timeout: float, **match: Any) -> None:
    """Wait until ``count`` records with ``event`` (and fields ``match``) were logged since ``since``."""

    def enough() -> bool:
        n = sum(1 for r in daemon.lines[since:] if r.get("event") == event
                and all(r.get(k) == v for k, v in match.items()))
        if daemon.proc.poll() is not None:
            raise AssertionError(f"daemon exited ({daemon.proc.returncode}) while waiting for {event}: "
                                 f"{daemon.raw[-15:]}")
        return n >= count

    wait_until(enough, timeout, f"{count} x {event} {match or ''}", interval=0.05)


def converge(api: Api, sim: SimThread, timeout: float, *, inflight_ok: bool = False) -> tuple[OurState, SimState]:
    """Poll until our state equals the simulator's; fail with the remaining differences."""
    last: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        ours = our_state(api)
        theirs = sim.snapshot()
        last = compare(ours, theirs, inflight_ok=inflight_ok)
        if not last:
            return ours, theirs
        if time.monotonic() >= deadline:
            raise AssertionError(f"no convergence within {timeout}s: {len(last)} differences:\n  "
                                 + "\n  ".join(last[:40]))
        time.sleep(0.25)


def status_counts(ours: OurState) -> Counter[str]:
    """Our orders by status (for reporting)."""
    return Counter(o["status"] for o in ours.orders.values())
