"""Acceptance tests of the ops features against a REAL ``aaiti run`` child process.

Admin API (every route, auth, errors), Prometheus metrics, config hot reload (SIGHUP,
``POST /reload``, ``aaiti reload``), the kill switch across a restart, and sd_notify
(READY / RELOADING / STOPPING / WATCHDOG) on a fake ``NOTIFY_SOCKET``.

One daemon is shared by the tests that leave it as they found it (module fixture);
the kill switch and sd_notify tests start their own. Nothing waits on a fixed sleep:
tests wait for log lines, notify datagrams or HTTP state, each with a deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon.admin.console import ALL_ROUTES
from tests.integration.daemon.daemon_process import REPO
from tests.integration.daemon.paper_state import venue as venue_books
from tests.integration.ops.daemon_harness import (
    CCXT_SECRET,
    STRATEGIES,
    TOKEN,
    Api,
    NotifySocket,
    OpsDaemon,
    ops_config,
    replace_line,
    resting_strategy,
    wait_until,
)

# The default config's limits would throttle or halt a replay at 3000x within a minute
# (30 orders/min, 5 % drawdown); these tests are about operations, not those limits.
RELAXED = {
    "price_collar_bps = 200": "price_collar_bps = 5000",  # resting LIMIT buys at 0.7 x the market
    "max_orders_per_minute = 12     # per minute of market time (replayed data runs on market time)":
        "max_orders_per_minute = 100000",
    'daily_loss_limit = "0.2"       # ETH': 'daily_loss_limit = "5"',
    "max_drawdown_pct = 5": "max_drawdown_pct = 90",
}
TERMINAL = {"DENIED", "REJECTED", "FILLED", "CANCELED", "EXPIRED"}
# The routes of the issue: method, path (as in /openapi.json).
EXPECTED_ROUTES = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/status"), ("GET", "/orders"),
    ("GET", "/orders/{client_order_id}"), ("GET", "/fills"), ("GET", "/positions"), ("GET", "/balances"),
    ("GET", "/risk"), ("GET", "/risk/events"), ("GET", "/config"), ("GET", "/logs"), ("POST", "/reload"),
    ("POST", "/pause"), ("POST", "/resume"), ("POST", "/kill"), ("POST", "/orders/{client_order_id}/cancel"),
    ("POST", "/strategies/{name}/stop"), ("POST", "/strategies/{name}/start"), ("GET", "/openapi.json"),
    # Contingent (protective and algorithmic) orders.
    ("GET", "/contingent"), ("GET", "/contingent/{contingent_id}"), ("POST", "/contingent/{contingent_id}/cancel"),
    # The web console and the backtest reports it serves.
    ("GET", "/"), ("GET", "/console/console.js"), ("GET", "/console/console.css"),
    ("GET", "/console/lightweight-charts.js"), ("GET", "/console/session"), ("POST", "/console/login"),
    ("POST", "/console/logout"), ("GET", "/console/state"), ("GET", "/console/backtests"),
    ("GET", "/backtests/{run}/report.html"),
}
PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/", "/console/console.js", "/console/console.css",
          "/console/lightweight-charts.js", "/console/session"}


# -- fixtures and helpers ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsDaemon]:
    """One daemon for the tests that restore what they change: default strategies plus resting LIMIT buys."""
    tmp = tmp_path_factory.mktemp("shared")
    cfg = ops_config(tmp, top=f'[venue.ccxt]\nsecret = "{CCXT_SECRET}"', replace=RELAXED,
                     append=resting_strategy("resting", count=2))
    d = OpsDaemon(cfg)
    try:
        d.wait_for_event("daemon.ready", timeout=30)
        yield d
        code = d.stop()
    finally:
        d.kill()
    assert code == 0, d.raw[-20:]
    # The only error-level lines are the refused reloads the tests asked for.
    assert [r for r in d.problems() if r.get("event") != "config.reload_refused"] == []


@pytest.fixture
def api(shared: OpsDaemon) -> Api:
    return shared.api


def page(api: Api, path: str, **query: Any) -> list[dict[str, Any]]:
    """The rows of a list endpoint (``orders``, ``fills``, ``events``)."""
    data = api.ok("GET", path, query)
    key = {"/orders": "orders", "/fills": "fills", "/risk/events": "events"}[path]
    rows: list[dict[str, Any]] = data[key]
    assert data["count"] == len(rows)
    return rows


def open_resting(api: Api, n: int = 1) -> list[dict[str, Any]]:
    """Wait for ``n`` open resting LIMIT orders; return the open ones."""
    return wait_until(lambda: (lambda rows: rows if len(rows) >= n else None)(
        page(api, "/orders", status="open", strategy="resting")), 20, f"{n} open resting orders")


def metrics(api: Api) -> dict[str, Any]:
    """Metric families by name (parsed with the reference parser)."""
    resp = api.get("/metrics")
    assert resp.status == 200, resp.body[:300]
    return {fam.name: fam for fam in text_string_to_metric_families(resp.text)}


def sample(fams: Mapping[str, Any], family: str, name: str | None = None, **labels: str) -> float | None:
    """The value of one sample (None when absent)."""
    fam = fams.get(family)
    if fam is None:
        return None
    for s in fam.samples:
        if s.name == (name or family) and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def wait_metric(api: Api, counter: str, at_least: float, **labels: str) -> None:
    """Wait until ``<counter>_total{labels}`` reaches ``at_least`` (the rendering is cached briefly)."""
    wait_until(lambda: (sample(metrics(api), counter, f"{counter}_total", **labels) or 0) >= at_least, 10,
               f"{counter}{labels} >= {at_least}")


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, (resp.status, resp.body[:300])
    body: dict[str, Any] = resp.json()
    assert body["error"] == code and body["message"], body
    return body


@contextlib.contextmanager
def edited_config(d: OpsDaemon, replace: Mapping[str, str]) -> Iterator[None]:
    """Rewrite lines of the daemon's config file; afterwards restore it and reload it back."""
    original = d.config_path.read_text()
    text = original
    for old, new in replace.items():
        text = replace_line(text, old, new)
    d.config_path.write_text(text)
    try:
        yield
    finally:
        d.config_path.write_text(original)
        resp = d.api.post("/reload")
        assert resp.status == 200 and resp.json()["result"] in ("applied", "unchanged"), resp.body[:500]


def config_version(api: Api) -> int:
    return int(api.ok("GET", "/config")["version"])


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m daemon.cli <argv>`` as an operator would run it."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "daemon.cli", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=30)


# -- 1. every route against the running daemon ---------------------------------------------------------
def test_probes_after_ready_200_without_token(shared: OpsDaemon, api: Api) -> None:
    health = api.get("/healthz", token=None)
    assert health.status == 200
    assert health.json()["status"] == "alive" and health.json()["health"] in ("healthy", "degraded")
    ready = wait_until(lambda: (lambda r: r if r.status == 200 else None)(api.get("/readyz", token=None)), 10,
                       "/readyz 200")
    assert ready.json() == {"ready": True, "reasons": []}


def concrete_path(path: str) -> str:
    """A documented path with its parameters filled in."""
    return (path.replace("{client_order_id}", "aa-none-0").replace("{name}", "resting").replace("{run}", "some-run")
            .replace("{contingent_id}", "aa-none-1"))


def test_openapi_lists_every_route_and_each_is_served(api: Api) -> None:
    doc = api.get("/openapi.json", token=None)
    assert doc.status == 200
    documented = {(m.upper(), p) for p, ops in doc.json()["paths"].items() for m in ops}
    assert documented == EXPECTED_ROUTES == {(r.method, r.path) for r in ALL_ROUTES}
    # Each documented route exists on the running server (no 404 "no route" / 405); checked with a wrong token
    # so that no command runs.
    for method, path in sorted(EXPECTED_ROUTES):
        concrete = concrete_path(path)
        resp = api.request(method, concrete, token="wrong-token-000000000000")
        assert resp.status in ((200, 503) if path in PUBLIC else (401,)), (method, path, resp.status)


def test_missing_or_wrong_token_401_on_every_protected_route(shared: OpsDaemon, api: Api) -> None:
    protected = sorted((m, p) for m, p in EXPECTED_ROUTES if p not in PUBLIC)
    state_before = api.ok("GET", "/risk")["state"]
    for method, path in protected:
        concrete = concrete_path(path)
        for token, headers in ((None, None), ("not-the-token-00000000000", None), (None, {"Authorization": TOKEN}),
                               (None, {"Authorization": f"Basic {TOKEN}"})):
            resp = api.request(method, concrete, token=token, headers=headers)
            body = assert_error(resp, 401, "unauthorized")
            assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), (method, path)
            assert TOKEN not in json.dumps(body)
    # The refused POST /kill, /pause, ... changed nothing.
    assert api.ok("GET", "/risk")["state"] == state_before == "ACTIVE"
    follow = api.get("/logs", {"follow": 1}, token=None)
    assert_error(follow, 401, "unauthorized")


def test_status_describes_the_running_daemon(shared: OpsDaemon, api: Api) -> None:
    st = api.ok("GET", "/status")
    assert st["name"] == "aaiti-paper" and st["mode"] == "paper" and st["pid"] == shared.proc.pid
    assert st["trading_state"] == "ACTIVE" and st["kill_switch"] is False and st["ready"] is True
    assert st["config_path"] == str(shared.config_path) and st["config_version"] >= 1
    actors = {a["name"]: a for a in st["actors"]}
    for name in ("watchdog", "order_manager", "reconciler", "risk_gate", "feed", "ema_cross", "momentum",
                 "mean_revert", "resting"):
        assert actors[name]["state"] == "running", (name, actors.get(name))
    assert {"intents", "order_commands", "order_events"} <= {c["name"] for c in st["channels"]}
    assert st["venue"] == {"kind": "paper", "name": "paper"} and st["feed"]["live"] is True


def test_orders_filters_and_paging_match(api: Api) -> None:
    filled = wait_until(lambda: page(api, "/orders", status="filled"), 30, "a filled order")
    assert {o["status"] for o in filled} == {"FILLED"}
    rest = open_resting(api, 2)
    assert all(o["type"] == "limit" and o["status"] not in TERMINAL and o["strategy"] == "resting" for o in rest)
    for o in page(api, "/orders", status="open"):
        assert o["status"] not in TERMINAL
    for o in page(api, "/orders", status="terminal"):
        assert o["status"] in TERMINAL
    both = page(api, "/orders", status="FILLED,canceled", limit=1000)
    assert {o["status"] for o in both} <= {"FILLED", "CANCELED"}
    assert page(api, "/orders", symbol="BTC/USDT") == []
    assert all(o["symbol"] == "XRP/ETH" for o in page(api, "/orders", symbol="XRP/ETH"))
    strategies = {o["strategy"] for o in filled}
    for name in strategies:
        assert {o["strategy"] for o in page(api, "/orders", strategy=name)} == {name}
    assert page(api, "/orders", strategy="no-such-strategy") == []
    # Newest first, and pages are consecutive slices (retried if an order arrived in between).
    for _ in range(10):
        everything = [o["client_order_id"] for o in page(api, "/orders", limit=1000)]
        first = page(api, "/orders", limit=2)
        second = page(api, "/orders", limit=2, offset=2)
        again = [o["client_order_id"] for o in page(api, "/orders", limit=1000)]
        if everything == again:
            break
    else:
        pytest.fail("orders kept changing between the paging requests")
    assert len(everything) >= 3
    assert [o["client_order_id"] for o in first + second] == everything[:4]
    created = [o["created_ms"] for o in page(api, "/orders", limit=1000)]
    assert created == sorted(created, reverse=True)
    assert page(api, "/orders", offset=len(everything) + 10_000) == []


def test_order_by_id_200_with_events_unknown_404(api: Api) -> None:
    filled = wait_until(lambda: page(api, "/orders", status="filled"), 30, "a filled order")[0]
    one = api.ok("GET", f"/orders/{filled['client_order_id']}")
    assert one["order"]["client_order_id"] == filled["client_order_id"] and one["order"]["status"] == "FILLED"
    statuses = [e["status"] for e in one["events"]]
    assert "SUBMITTED" in statuses and statuses[-1] == "FILLED", statuses
    assert_error(api.get("/orders/aa-does-not-exist-1"), 404, "not_found")


def test_fills_positions_balances_consistent(api: Api) -> None:
    filled = wait_until(lambda: page(api, "/orders", status="filled"), 30, "a filled order")[0]
    coid = filled["client_order_id"]
    fills = page(api, "/fills", client_order_id=coid)
    assert fills and {f["client_order_id"] for f in fills} == {coid}
    assert sum(float(f["size"]) for f in fills) == pytest.approx(float(filled["filled"]))
    assert page(api, "/fills", symbol="BTC/USDT") == []
    assert len(page(api, "/fills", limit=1)) == 1
    positions = {p["symbol"]: p for p in api.ok("GET", "/positions")["positions"]}
    assert positions["XRP/ETH"]["fills"] >= 1 and positions["XRP/ETH"]["mark"] is not None
    balances = {b["asset"]: b for b in api.ok("GET", "/balances")["balances"]}
    assert {"ETH", "XRP"} <= set(balances)
    for b in balances.values():
        assert float(b["free"]) + float(b["locked"]) == pytest.approx(float(b["total"]))
    assert float(balances["ETH"]["locked"]) > 0  # the resting LIMIT buys lock quote currency


def test_risk_and_risk_events_served(api: Api) -> None:
    risk = api.ok("GET", "/risk")
    assert risk["state"] == "ACTIVE" and risk["kill_switch"] is False
    assert risk["limits"]["max_open_orders"] == 5 and risk["limits"]["max_order_notional"] == "1.2"
    assert risk["open_orders"] >= 0 and risk["decisions"] == risk["approved"] + risk["denied"]
    events = api.ok("GET", "/risk/events", {"limit": 5})
    assert events["limit"] == 5 and len(events["events"]) <= 5
    for ev in page(api, "/risk/events", reason="MAX_POSITION"):
        assert ev["reason"] == "MAX_POSITION"


def test_config_and_logs_redact_secrets(shared: OpsDaemon, api: Api) -> None:
    view = api.get("/config")
    assert view.status == 200
    assert CCXT_SECRET not in view.text and TOKEN not in view.text
    cfg = view.json()
    assert cfg["config"]["venue"]["ccxt"]["secret"] == "***" and cfg["path"] == str(shared.config_path)
    assert cfg["config"]["risk"]["max_open_orders"] == 5
    for path, query in (("/logs", {"n": 10000}), ("/status", None), ("/risk", None)):
        text = api.get(path, query).text
        assert CCXT_SECRET not in text and TOKEN not in text, path
    assert not any(CCXT_SECRET in line or TOKEN in line for line in shared.raw)


def test_logs_tail_honours_n_level_logger(shared: OpsDaemon, api: Api) -> None:
    api.ok("POST", "/pause", body={"reason": "log tail probe"})
    api.ok("POST", "/resume")
    five = api.ok("GET", "/logs", {"n": 5})
    assert five["count"] == len(five["records"]) == 5
    assert api.ok("GET", "/logs", {"n": 0})["records"] == []
    levels = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
    warn = api.ok("GET", "/logs", {"n": 10000, "level": "warning"})["records"]
    assert all(levels[r["level"]] >= 30 for r in warn)
    everything = api.ok("GET", "/logs", {"n": 10000})["records"]
    assert len(everything) > len(warn) and {r["level"] for r in everything} >= {"info"}
    admin = api.ok("GET", "/logs", {"n": 10, "level": "info", "logger": "admin"})["records"]
    assert 0 < len(admin) <= 10 and all(r.get("actor") == "admin" for r in admin)
    commands = [r["path"] for r in admin if r["event"] == "admin.command"]
    assert commands[-2:] == ["/pause", "/resume"]  # newest last
    routed = api.ok("GET", "/logs", {"n": 20, "logger": "router"})["records"]
    assert all(r.get("actor") == "router" for r in routed)
    assert api.ok("GET", "/logs", {"n": 10, "logger": "no-such-actor"})["records"] == []


def test_bad_parameters_400(api: Api) -> None:
    cases: list[tuple[str, str, Mapping[str, Any] | None, Any]] = [
        ("GET", "/orders", {"limit": -1}, None),
        ("GET", "/orders", {"limit": 0}, None),
        ("GET", "/orders", {"limit": "ten"}, None),
        ("GET", "/orders", {"limit": 1001}, None),  # admin.max_page_size
        ("GET", "/orders", {"offset": -1}, None),
        ("GET", "/orders", {"status": "bogus"}, None),
        ("GET", "/orders", {"stauts": "open"}, None),  # a typo must not return everything
        ("GET", "/fills", {"limit": -1}, None),
        ("GET", "/risk/events", {"offset": "x"}, None),
        ("GET", "/logs", {"n": -1}, None),
        ("GET", "/logs", {"n": 10001}, None),  # admin.log_tail_max
        ("GET", "/logs", {"level": "loud"}, None),
        ("GET", "/logs", {"follow": "maybe"}, None),
        ("GET", "/status", {"verbose": 1}, None),
        ("POST", "/pause", None, {"reason": "x", "bogus": 1}),
        ("POST", "/resume", None, {"confirm": "yes please"}),
        ("POST", "/kill", None, {"reason": 42}),
        ("POST", "/reload", None, {"path": "/etc/passwd"}),
    ]
    for method, path, query, body in cases:
        resp = api.request(method, path, query, body)
        assert_error(resp, 400, "bad_request")
    for raw in (b"not json", b"[1, 2]", b'"reason"'):
        assert_error(api.request("POST", "/kill", raw=raw), 400, "bad_request")
    assert api.ok("GET", "/risk")["state"] == "ACTIVE"  # none of the refused commands ran


def test_pause_and_resume_change_trading_state(shared: OpsDaemon, api: Api) -> None:
    m = shared.mark()
    paused = api.ok("POST", "/pause", body={"reason": "ops test pause"})
    assert paused == {"state": "REDUCING", "kill_switch": False, "reason": "ops test pause"}
    assert api.ok("GET", "/risk")["state"] == "REDUCING"
    assert api.ok("GET", "/status")["trading_state"] == "REDUCING"
    resumed = api.ok("POST", "/resume", body={"reason": "ops test resume"})
    assert resumed["state"] == "ACTIVE" and resumed["kill_switch"] is False
    assert api.ok("GET", "/risk")["state"] == "ACTIVE"
    shared.wait_new("admin.command", m, path="/pause", status=200)
    shared.wait_new("admin.command", m, path="/resume", status=200)


def test_repeated_pause_resume_answer_at_once(api: Api) -> None:
    # A command that changes nothing is answered from the current state: no wait for a state change
    # that never comes (it used to take App.set_trading_state's whole 2 s timeout).
    for path, state in (("/resume", "ACTIVE"), ("/pause", "REDUCING"), ("/pause", "REDUCING"),
                        ("/resume", "ACTIVE"), ("/resume", "ACTIVE")):
        t0 = time.monotonic()
        assert api.ok("POST", path)["state"] == state
        assert time.monotonic() - t0 < 1.0, path


def test_logs_follow_streams_a_line_written_after_connecting(shared: OpsDaemon, api: Api) -> None:
    with api.sse("/logs", {"follow": 1, "n": 0, "logger": "admin"}) as stream:
        assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        frames = stream.frames()
        assert next(frames) == (":comment", "connected")
        api.ok("POST", "/pause", body={"reason": "sse probe"})
        try:
            for event, data in frames:
                if event != "log":
                    continue
                assert data is not None
                rec = json.loads(data)
                assert rec.get("actor") == "admin"  # the logger filter applies to the live stream
                if rec.get("event") == "admin.command" and rec.get("path") == "/pause":
                    break
            else:
                pytest.fail("stream ended before the new line")
        finally:
            api.ok("POST", "/resume")


def test_cancel_order_202_then_canceled_twice_409_unknown_404(api: Api) -> None:
    target = open_resting(api, 1)[0]["client_order_id"]
    resp = api.post(f"/orders/{target}/cancel", {"reason": "ops test cancel"})
    assert resp.status == 202 and resp.json() == {"client_order_id": target, "cancel_requested": True}
    done = wait_until(lambda: (lambda o: o if o["order"]["status"] == "CANCELED" else None)(
        api.ok("GET", f"/orders/{target}")), 10, "the order CANCELED")
    assert "PENDING_CANCEL" in [e["status"] for e in done["events"]]
    body = assert_error(api.post(f"/orders/{target}/cancel"), 409, "conflict")
    assert body.get("status") == "CANCELED"
    assert_error(api.post("/orders/aa-does-not-exist-1/cancel"), 404, "not_found")
    open_resting(api, 2)  # the strategy replaces what was cancelled


def test_strategy_stop_then_start(api: Api) -> None:
    def state() -> str:
        return str({a["name"]: a for a in api.ok("GET", "/status")["actors"]}["resting"]["state"])

    stopped = api.ok("POST", "/strategies/resting/stop")
    assert stopped == {"strategy": "resting", "action": "stop", "accepted": True}
    assert state() == "stopped"
    started = api.ok("POST", "/strategies/resting/start")
    assert started == {"strategy": "resting", "action": "start", "accepted": True}
    wait_until(lambda: state() == "running", 10, "resting running again")
    assert_error(api.post("/strategies/nope/stop"), 404, "not_found")
    assert_error(api.post("/strategies/nope/start"), 404, "not_found")
    # Still trading: a cancelled resting order is replaced by the restarted instance.
    target = open_resting(api, 1)[0]["client_order_id"]
    api.post(f"/orders/{target}/cancel")
    wait_until(lambda: target not in {o["client_order_id"] for o in open_resting(api, 2)}, 20,
               "a replacement resting order")


# -- 2. metrics ------------------------------------------------------------------------------------------
def test_metrics_parse_and_have_the_issue_families(api: Api) -> None:
    wait_until(lambda: page(api, "/orders", status="filled"), 30, "a filled order")
    resp = api.get("/metrics")
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")

    def ready() -> dict[str, Any] | None:  # the rendering is cached for admin.metrics_cache_s
        fams = metrics(api)
        done = (sample(fams, "aaiti_tick_to_submit_seconds", "aaiti_tick_to_submit_seconds_count") or 0) > 0
        return fams if done and (sample(fams, "aaiti_fills", "aaiti_fills_total", symbol="XRP/ETH") or 0) > 0 else None

    fams = wait_until(ready, 10, "metrics with orders")
    types = {
        "aaiti_market_events": "counter", "aaiti_channel_depth": "gauge", "aaiti_channel_dropped": "counter",
        "aaiti_actor_restarts": "counter", "aaiti_actor_heartbeat_age_seconds": "gauge",
        "aaiti_event_loop_lag_seconds": "histogram", "aaiti_tick_to_submit_seconds": "histogram",
        "aaiti_orders": "counter", "aaiti_fills": "counter", "aaiti_risk_denials": "counter",
        "aaiti_open_orders": "gauge", "aaiti_position_size": "gauge", "aaiti_position_realized_pnl": "gauge",
        "aaiti_position_unrealized_pnl": "gauge", "aaiti_equity": "gauge", "aaiti_trading_state": "gauge",
        "aaiti_kill_switch": "gauge", "aaiti_health_status": "gauge", "aaiti_reconnects": "counter",
        "aaiti_reconcile_discrepancies": "counter", "aaiti_config_reloads": "counter", "aaiti_build_info": "gauge",
        "process_resident_memory_bytes": "gauge", "process_cpu_seconds": "counter", "process_open_fds": "gauge",
        "process_start_time_seconds": "gauge", "python_gc_collections": "counter",
        "aaiti_contingent_orders": "gauge", "aaiti_contingent_completed": "counter",
        "aaiti_trigger_to_submit_seconds": "histogram", "aaiti_open_orders_by_mode": "gauge",
    }
    missing = sorted(n for n in types if n not in fams)
    assert not missing, missing
    assert {n: fams[n].type for n in types} == types

    assert (sample(fams, "aaiti_market_events", "aaiti_market_events_total", symbol="XRP/ETH", type="trade") or 0) > 0
    assert (sample(fams, "aaiti_market_events", "aaiti_market_events_total", symbol="XRP/ETH", type="bar") or 0) > 0
    assert sample(fams, "aaiti_channel_depth", channel="intents") is not None
    assert sample(fams, "aaiti_channel_dropped", "aaiti_channel_dropped_total", channel="intents") is not None
    for actor in ("order_manager", "risk_gate", "feed", "resting"):
        assert sample(fams, "aaiti_actor_restarts", "aaiti_actor_restarts_total", actor=actor) is not None, actor
        assert sample(fams, "aaiti_actor_heartbeat_age_seconds", actor=actor) is not None, actor
    assert (sample(fams, "aaiti_event_loop_lag_seconds", "aaiti_event_loop_lag_seconds_count") or 0) > 0
    assert sample(fams, "aaiti_tick_to_submit_seconds", "aaiti_tick_to_submit_seconds_bucket", le="+Inf") == sample(
        fams, "aaiti_tick_to_submit_seconds", "aaiti_tick_to_submit_seconds_count")
    assert (sample(fams, "aaiti_orders", "aaiti_orders_total", status="FILLED") or 0) > 0
    assert (sample(fams, "aaiti_open_orders", status="ACCEPTED") or 0) >= 1  # resting LIMIT buys
    # Every order the order manager holds runs on the venue: native; no strategy here uses emulated orders.
    assert sample(fams, "aaiti_open_orders_by_mode", mode="native") == sum(
        s.value for s in fams["aaiti_open_orders"].samples)
    assert sample(fams, "aaiti_open_orders_by_mode", mode="emulated") == 0
    for fam in ("aaiti_position_size", "aaiti_position_realized_pnl", "aaiti_position_unrealized_pnl"):
        assert sample(fams, fam, symbol="XRP/ETH") is not None, fam
    assert (sample(fams, "aaiti_equity", asset="ETH") or 0) > 0
    assert sample(fams, "aaiti_trading_state", state="ACTIVE") == 1
    assert sample(fams, "aaiti_trading_state", state="HALTED") == 0
    assert sample(fams, "aaiti_kill_switch") == 0
    build = fams["aaiti_build_info"].samples[0].labels
    assert build["mode"] == "paper" and build["instance"] == "aaiti-paper" and build["version"]
    # Circuit breakers: the families are exported per breaker; the paper venue and the replay have none.
    breakers = api.ok("GET", "/status")["circuit_breakers"]
    if breakers:
        assert "aaiti_circuit_breaker_state" in fams and "aaiti_circuit_breaker_trips" in fams
    else:
        assert "aaiti_circuit_breaker_state" not in fams and "aaiti_circuit_breaker_trips" not in fams
    # No order ids or prices as label values.
    for fam in fams.values():
        for s in fam.samples:
            for key, value in s.labels.items():
                assert not value.startswith("aa-"), (s.name, key, value)
                assert key not in ("client_order_id", "price", "order_id"), s.name


# -- 3. hot reload ----------------------------------------------------------------------------------------
def test_sighup_hot_risk_limit_applied_versioned_and_enforced(shared: OpsDaemon, api: Api) -> None:
    v0 = config_version(api)
    target = open_resting(api, 2)[0]["client_order_id"]  # placed under the old limit
    with edited_config(shared, {'max_order_notional = "1.2"     # ETH per order': 'max_order_notional = "0.000001"'}):
        m = shared.mark()
        shared.proc.send_signal(signal.SIGHUP)
        rec = shared.wait_new("config.reload", m, source="SIGHUP")
        assert rec["result"] == "applied" and rec["changed"] == ["risk.max_order_notional"]
        assert rec["version"] == v0 + 1
        view = api.ok("GET", "/config")
        assert view["version"] == v0 + 1 and view["config"]["risk"]["max_order_notional"] == "0.000001"
        wait_until(lambda: api.ok("GET", "/risk")["limits"]["max_order_notional"] == "0.000001", 10,
                   "the risk gate using the new limit")
        # Behaviour: the next intent is denied. Cancelling a resting order makes the strategy send a new one.
        m = shared.mark()
        assert api.post(f"/orders/{target}/cancel").status == 202
        denied = shared.wait_new("risk.denied", m, reason="MAX_ORDER_NOTIONAL")
        assert denied["limit"].startswith("max_order_notional") and "0.000001" in denied["limit"]
        events = page(api, "/risk/events", reason="MAX_ORDER_NOTIONAL")
        assert events and events[0]["reason"] == "MAX_ORDER_NOTIONAL"
        wait_metric(api, "aaiti_risk_denials", 1, reason="MAX_ORDER_NOTIONAL")
    # edited_config reloaded the original back.
    view = api.ok("GET", "/config")
    assert view["version"] == v0 + 2 and view["config"]["risk"]["max_order_notional"] == "1.2"
    open_resting(api, 2)  # approved again
    wait_metric(api, "aaiti_config_reloads", 2, result="applied")


def test_reload_log_level_hot_applied_filters_info_lines(shared: OpsDaemon, api: Api) -> None:
    v0 = config_version(api)
    m = shared.mark()
    with edited_config(shared, {'level = "info"': 'level = "warning"'}):
        result = api.ok("POST", "/reload")
        assert result["result"] == "applied" and result["changed"] == ["log.level"] and result["version"] == v0 + 1
        assert api.ok("GET", "/config")["config"]["log"]["level"] == "warning"
        api.ok("POST", "/pause", body={"reason": "quiet"})
        api.ok("POST", "/resume", body={"reason": "quiet"})
    # Restoring logs at info again. Before it, at warning, the info lines of the first reload and of the
    # commands were filtered out.
    end = shared.wait_new("config.reload", m, version=v0 + 2)
    between = shared.lines[m:shared.lines.index(end)]
    assert not [r for r in between if r.get("event") in ("admin.command", "config.reload")]
    assert api.ok("GET", "/config")["config"]["log"]["level"] == "info"
    m = shared.mark()
    api.ok("POST", "/pause", body={"reason": "loud again"})
    api.ok("POST", "/resume")
    shared.wait_new("admin.command", m, path="/pause")


def test_sighup_invalid_file_keeps_running_config_and_names_the_key(shared: OpsDaemon, api: Api) -> None:
    v0 = config_version(api)
    with edited_config(shared, {"max_open_orders = 5": "max_open_orders = -3"}):
        m = shared.mark()
        shared.proc.send_signal(signal.SIGHUP)
        rec = shared.wait_new("config.reload_refused", m, source="SIGHUP")
        assert rec["result"] == "invalid" and rec["version"] == v0
        assert any("risk.max_open_orders" in e for e in rec["errors"]), rec["errors"]
        resp = api.post("/reload")
        body = assert_error(resp, 409, "invalid")
        assert body["ok"] is False and body["version"] == v0
        assert any("risk.max_open_orders" in e for e in body["errors"]) and "risk.max_open_orders" in body["message"]
        view = api.ok("GET", "/config")
        assert view["version"] == v0 and view["config"]["risk"]["max_open_orders"] == 5
        assert api.ok("GET", "/risk")["limits"]["max_open_orders"] == 5
    with edited_config(shared, {"[risk]": "[risk\nbroken = "}):
        body = assert_error(api.post("/reload"), 409, "invalid")
        assert body["errors"] and config_version(api) == v0
    assert config_version(api) == v0  # the restores found nothing to change
    wait_metric(api, "aaiti_config_reloads", 3, result="invalid")


def test_restart_required_change_refused_naming_the_fields(shared: OpsDaemon, api: Api) -> None:
    v0 = config_version(api)
    state_line = next(line for line in shared.config_path.read_text().splitlines() if line.startswith("state_dir"))
    with edited_config(shared, {"port = 0": "port = 18787", state_line: "state_dir = '/tmp/elsewhere'"}):
        m = shared.mark()
        shared.proc.send_signal(signal.SIGHUP)
        rec = shared.wait_new("config.reload_refused", m, source="SIGHUP")
        assert rec["result"] == "restart_required"
        errors = " ".join(rec["errors"])
        assert "admin.port" in errors and "daemon.state_dir" in errors and "restart" in errors
        body = assert_error(api.post("/reload"), 409, "restart_required")
        assert set(body["changed"]) == {"admin.port", "daemon.state_dir"}
        assert "admin.port" in body["message"] and "daemon.state_dir" in body["message"]
        assert config_version(api) == v0
    assert api.ok("GET", "/config")["config"]["admin"]["port"] == 0
    assert api.ok("GET", "/readyz")["ready"] is True  # still serving on the port it bound


def test_cli_reload_applies_and_reports_refusals(shared: OpsDaemon, api: Api) -> None:
    url = api.base_url
    v0 = config_version(api)
    out = cli("reload", "--url", url, "--token", TOKEN)
    assert out.returncode == 0 and "config reload unchanged" in out.stdout, out
    with edited_config(shared, {"interval_s = 10": "interval_s = 11"}):
        out = cli("reload", "--url", url, "--token", TOKEN)
        assert out.returncode == 0, out
        assert f"config reload applied: version {v0 + 1}, changed: reconciler.interval_s" in out.stdout
        assert api.ok("GET", "/config")["config"]["reconciler"]["interval_s"] == 11
        with edited_config(shared, {"interval_s = 11": "interval_s = -1"}):
            out = cli("reload", "--url", url, "--token", TOKEN)
            assert out.returncode == 2, out
            assert "refused: invalid" in out.stderr and "reconciler.interval_s" in out.stderr
            out = cli("reload", "--json", "--url", url, "--token", TOKEN)
            assert out.returncode == 2 and json.loads(out.stdout)["result"] == "invalid"
    out = cli("reload", "--url", url, "--token", "wrong-token-0000000000000")
    assert out.returncode == 7 and "token refused" in out.stderr
    assert api.ok("GET", "/config")["config"]["reconciler"]["interval_s"] == 10


# -- 4. kill switch -----------------------------------------------------------------------------------------
def test_kill_halts_cancels_open_orders_survives_restart_and_needs_confirmation(tmp_path: Path) -> None:
    cfg = ops_config(tmp_path, replace=RELAXED, append=resting_strategy("resting", count=3))
    first = OpsDaemon(cfg)
    try:
        first.wait_for_event("daemon.ready", timeout=30)
        api = first.api
        before = {o["client_order_id"] for o in open_resting(api, 3)}
        m = first.mark()
        killed = api.ok("POST", "/kill", body={"reason": "ops acceptance kill"})
        assert killed == {"state": "HALTED", "kill_switch": True, "reason": "ops acceptance kill"}
        t0 = time.monotonic()
        assert api.ok("POST", "/kill")["state"] == "HALTED"  # again: at once, nothing changes
        paused = assert_error(api.post("/pause"), 409, "kill_switch_engaged")  # pausing cannot lift a kill
        assert "resume-after-kill" in paused["message"] and time.monotonic() - t0 < 1.0
        risk = api.ok("GET", "/risk")
        assert risk["state"] == "HALTED" and risk["kill_switch"] is True
        wait_until(lambda: page(api, "/orders", status="open") == [], 10, "no open orders")
        for coid in before:
            assert api.ok("GET", f"/orders/{coid}")["order"]["status"] == "CANCELED", coid
        # The strategy replaces its cancelled orders: denied now, and nothing new opens.
        denied = first.wait_new("risk.denied", m, strategy="resting")
        assert denied["reason"] in ("TRADING_HALTED", "KILL_SWITCH"), denied
        assert page(api, "/orders", status="open") == []
        ready = api.get("/readyz")
        assert ready.status == 503 and "trading is HALTED" in ready.json()["reasons"]
        fams = wait_until(lambda: (lambda f: f if sample(f, "aaiti_kill_switch") == 1 else None)(metrics(api)), 10,
                          "kill switch in the metrics")
        assert sample(fams, "aaiti_trading_state", state="HALTED") == 1
        assert first.stop() == 0
    finally:
        first.kill()
    # The venue's own books agree: the orders that were open are cancelled there.
    at_venue = venue_books(tmp_path / "state").orders
    assert all(at_venue[c][0].lower() in ("canceled", "cancelled") for c in before), {c: at_venue[c] for c in before}

    second = OpsDaemon(cfg)
    try:
        assert second.wait_for_event("daemon.ready", timeout=30)["trading_state"] == "HALTED"
        api = second.api
        st = api.ok("GET", "/status")
        assert st["trading_state"] == "HALTED" and st["kill_switch"] is True and st["ready"] is False
        ready = api.get("/readyz", token=None)
        assert ready.status == 503 and ready.json()["error"] == "not_ready"
        assert "trading is HALTED" in ready.json()["reasons"]
        refused = assert_error(api.post("/resume", {"reason": "no confirmation"}), 409, "kill_switch_engaged")
        assert "resume-after-kill" in refused["message"]
        assert api.ok("GET", "/risk")["state"] == "HALTED"
        resumed = api.ok("POST", "/resume", body={"confirm": "resume-after-kill", "reason": "checked"})
        assert resumed["state"] == "ACTIVE" and resumed["kill_switch"] is False
        wait_until(lambda: api.get("/readyz").status == 200, 10, "/readyz 200 after resume")
        open_resting(api, 1)  # trading again
        assert second.stop() == 0
    finally:
        second.kill()
    assert [r for r in first.problems() + second.problems()] == []


# -- 5. sd_notify ---------------------------------------------------------------------------------------------
@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory for a socket path (AF_UNIX paths are limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="aaiti-sd-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(times)]


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_sd_notify_ready_reloading_ready_watchdog_stopping_in_order(kind: str, tmp_path: Path, short_dir: Path
                                                                    ) -> None:
    sock = NotifySocket(short_dir, abstract=kind == "abstract")
    cfg = ops_config(tmp_path, top="[watchdog]\ninterval_s = 0.1")
    d = OpsDaemon(cfg, extra_env={"NOTIFY_SOCKET": sock.address, "WATCHDOG_USEC": "400000"})
    try:
        ready = sock.wait_for("READY")[0]
        assert ready.get("STATUS", "").startswith("trading ACTIVE")
        n = len(sock.pings())
        wait_until(lambda: len(sock.pings()) >= n + 3, 10, "WATCHDOG=1 pings after READY=1")
        d.proc.send_signal(signal.SIGHUP)
        sock.wait_for("READY", count=2)
        n = len(sock.pings())
        wait_until(lambda: len(sock.pings()) >= n + 3, 10, "WATCHDOG=1 pings after the reload")
        assert d.stop() == 0
        sock.wait_for("STOPPING")
    finally:
        d.kill()
        sock.close()
    assert sock.kinds() == ["READY", "RELOADING", "READY", "STOPPING"]
    lifecycle = [(mono, f) for _, mono, f in sock.messages if "WATCHDOG" not in f]
    reloading = next((mono, f) for mono, f in lifecycle if f.get("RELOADING") == "1")
    # MONOTONIC_USEC is CLOCK_MONOTONIC (the same clock as time.monotonic here) at the start of the reload.
    assert abs(int(reloading[1]["MONOTONIC_USEC"]) / 1e6 - reloading[0]) < 2.0, reloading
    marks = [mono for mono, _ in lifecycle]
    pings = [mono for _, mono in sock.pings()]
    assert any(marks[0] < p < marks[1] for p in pings) and any(marks[2] < p < marks[3] for p in pings)
    # At most every WATCHDOG_USEC / 2 = 0.2 s: counted over the run, so receipt jitter cannot fail it.
    assert len(pings) - 1 <= (pings[-1] - pings[0]) / 0.2 + 1, _gaps(pings)
    assert min(_gaps(pings)) > 0.1, _gaps(pings)
    assert not [r for r in d.lines if r.get("event") == "sd_notify.failed"]


def test_sd_notify_watchdog_pings_stop_while_stalled_and_resume(tmp_path: Path, short_dir: Path) -> None:
    sock = NotifySocket(short_dir)
    block_s = 2.5
    staller = (f'[[strategies]]\nname = "staller"\nstrategy = "{STRATEGIES}:StallOnce"\nsymbols = ["XRP/ETH"]\n'
               f'timeframe = "1m"\nparams = {{ after_bars = 100, block_s = {block_s} }}\n')
    cfg = ops_config(tmp_path, top="[watchdog]\ninterval_s = 0.1\nstall_after_s = 1.0", append=staller)
    d = OpsDaemon(cfg, extra_env={"NOTIFY_SOCKET": sock.address, "WATCHDOG_USEC": "400000"})
    try:
        sock.wait_for("READY")
        begin = d.wait_for_event("ops_test.stall_begin", timeout=30)
        end = d.wait_for_event("ops_test.stall_end", timeout=10)
        # The first verdict after the block (the log is in order: it is judged once the loop ran again).
        # Before the block a loaded machine may well have seen lag of its own: not what is tested here.
        verdict = d.wait_new("health.verdict", d.lines.index(end) + 1)
        # The verdict that lifts it, after any further samples whose own lag still reads unhealthy.
        recovered = wait_until(lambda: next((r for r in d.events("health.verdict", d.lines.index(verdict) + 1)
                                             if r["status"] != "unhealthy"), None), 15, "a better health verdict")
        n = len([p for p in sock.pings() if p[0] > _wall(end)])
        wait_until(lambda: len([p for p in sock.pings() if p[0] > _wall(end)]) >= n + 5, 10,
                   "WATCHDOG=1 pings after the stall")
        assert d.stop() == 0
    finally:
        d.kill()
        sock.close()
    t_begin, t_end, t_verdict = _wall(begin), _wall(end), _wall(verdict)
    assert t_end - t_begin >= block_s * 0.95
    assert verdict["status"] == "unhealthy" and any("event loop lag" in r for r in verdict["reasons"]), verdict
    assert t_verdict >= t_end - 0.05  # judged once the loop ran again
    # The blocked loop is the loop's lag: no actor that waited through it is called stalled (nor restarted).
    window = d.lines[d.lines.index(begin):d.lines.index(recovered)]
    assert all(r.startswith("event loop lag") for v in window if v.get("event") == "health.verdict"
               for r in v["reasons"]), window
    assert not [r for r in window if r.get("event") == "actor.stalled"], window
    walls = [w for w, _ in sock.pings()]
    before = [w for w in walls if w <= t_begin]
    after = [w for w in walls if w >= t_end]
    assert before and after, (before[-3:], after[:3])
    # One gap covers the whole stall, and the first ping after it comes only after the unhealthy verdict
    # has been replaced by a better one (the verdict gates the ping, not a bare timer).
    gap = after[0] - before[-1]
    assert gap >= block_s, gap
    assert recovered["status"] in ("healthy", "degraded"), recovered
    assert after[0] > t_verdict and after[0] >= _wall(recovered) - 0.05
    regular = _gaps([w for w in walls if w >= after[0]])
    assert regular and max(regular) < 1.0, regular  # regular pings again
    assert not [w for w in walls if t_begin + 0.05 < w < t_end]  # (pings are stamped when sent)


def _wall(rec: Mapping[str, Any]) -> float:
    """A log record's ISO timestamp as Unix time."""
    return datetime.fromisoformat(str(rec["timestamp"]).replace("Z", "+00:00")).timestamp()
