"""Protective orders through the admin API of a REAL ``aaiti run`` child (paper venue: emulated).

A test strategy buys brackets (market entry, take-profit and stop-loss far from the market) on
its first bars; a second one places tight brackets whose exits trigger soon, so a triggered
child is measured (``aaiti_trigger_to_submit_seconds``). The tests list and show them
(``GET /contingent``, ``/contingent/{id}``), follow them into ``/status``, ``/orders`` and
``/metrics``, cancel one (``POST /contingent/{id}/cancel``), and finally kill trading: every
active contingent order must be cancelled. Tests run in file order on one daemon and wait for
HTTP state with deadlines, never for a fixed time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.ops.daemon_harness import Api, OpsDaemon, ops_config, wait_until
from tests.integration.ops.test_daemon_admin import assert_error, metrics, sample

STRATEGIES = "tests.integration.ops.contingent_strategies"
RELAXED = {
    "price_collar_bps = 200": "price_collar_bps = 5000",
    "max_orders_per_minute = 12     # per minute of market time (replayed data runs on market time)":
        "max_orders_per_minute = 100000",
    'daily_loss_limit = "0.2"       # ETH': 'daily_loss_limit = "5"',
    "max_drawdown_pct = 5": "max_drawdown_pct = 90",
    # Only the test strategies trade: the default ones are switched off.
    'name = "ema_cross"': 'name = "ema_cross"\nenabled = false',
    'name = "momentum"': 'name = "momentum"\nenabled = false',
    'name = "mean_revert"': 'name = "mean_revert"\nenabled = false',
}


def _strategy(name: str, params: str) -> str:
    return (f'[[strategies]]\nname = "{name}"\nstrategy = "{STRATEGIES}:Brackets"\nsymbols = ["XRP/ETH"]\n'
            f'timeframe = "1m"\nparams = {{ {params} }}\n')


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsDaemon]:
    tmp = tmp_path_factory.mktemp("contingent")
    append = (_strategy("wide", 'count = 2, size = "30"')
              + _strategy("tight", 'count = 3, size = "30", take_profit = 1.002, stop_loss = 0.998'))
    d = OpsDaemon(ops_config(tmp, replace=RELAXED, append=append))
    try:
        d.wait_for_event("daemon.ready", timeout=30)
        yield d
        code = d.stop()
    finally:
        d.kill()
    assert code == 0, d.raw[-20:]
    assert d.problems() == [], d.problems()[:5]


@pytest.fixture
def api(daemon: OpsDaemon) -> Api:
    return daemon.api


def contingent(api: Api, **query: Any) -> list[dict[str, Any]]:
    """``GET /contingent`` rows."""
    rows: list[dict[str, Any]] = api.ok("GET", "/contingent", query)["contingent"]
    return rows


def wide_protected(api: Api) -> list[dict[str, Any]]:
    """Wait until both wide brackets are active with their entry filled (30 protected)."""
    def ready() -> list[dict[str, Any]] | None:
        rows = [v for v in contingent(api, active="true") if v["strategy"] == "wide"]
        return rows if len(rows) == 2 and all(v["protected"] == "30" for v in rows) else None

    return wait_until(ready, 30, "two wide brackets protecting their fills")


def test_strategies_disabled_in_the_config_never_start_or_trade(api: Api) -> None:
    wide_protected(api)  # the enabled ones have been trading for a while
    actors = {a["name"]: a for a in api.ok("GET", "/status")["actors"]}
    off = ("ema_cross", "momentum", "mean_revert")
    assert {n: actors[n]["state"] for n in off} == dict.fromkeys(off, "stopped")
    assert {n: actors[n]["restarts"] for n in off} == dict.fromkeys(off, 0)
    orders = api.ok("GET", "/orders", {"limit": 1000})["orders"]
    assert orders and not [o for o in orders if o["strategy"] in off]


def test_active_brackets_listed_shown_and_counted(api: Api) -> None:
    rows = wide_protected(api)
    for view in rows:
        assert (view["kind"], view["mode"], view["status"], view["symbol"]) == (
            "bracket", "emulated", "WORKING", "XRP/ETH"), view
        legs = {leg["name"]: leg for leg in view["legs"]}
        assert set(legs) == {"entry", "take_profit", "stop_loss"}
        assert legs["entry"]["filled"] == "30" and legs["entry"]["client_order_ids"]
        assert legs["take_profit"]["side"] == legs["stop_loss"]["side"] == "sell"
        assert float(legs["stop_loss"]["trigger_price"]) < float(legs["take_profit"]["trigger_price"])
        # One: live from the manager; all: the same rows (newest first) plus any finished ones.
        assert api.ok("GET", f"/contingent/{view['id']}")["contingent"]["id"] == view["id"]
        assert view["id"] in {v["id"] for v in contingent(api)}
        # The entry is a venue order: native, with the bracket as its parent.
        entry = api.ok("GET", f"/orders/{legs['entry']['client_order_ids'][0]}")["order"]
        assert entry["mode"] == "native" and entry["parent"] == view["id"] and entry["status"] == "FILLED"
        assert {"trigger_price", "trailing_bps", "display_size", "list_id"} <= set(entry)
    created = [v["created_ms"] for v in contingent(api)]
    assert created == sorted(created, reverse=True)
    assert len(contingent(api, limit=1)) == 1
    assert all(o["mode"] == "native" for o in api.ok("GET", "/orders", {"limit": 20})["orders"])

    status = api.ok("GET", "/status")["contingent"]
    assert status["active"] >= 2 and status["by_kind"]["bracket"]["emulated"] >= 2

    def counted() -> dict[str, Any] | None:
        fams = metrics(api)
        n = sample(fams, "aaiti_contingent_orders", kind="bracket", mode="emulated", status="WORKING") or 0
        return fams if n >= 2 else None

    fams = wait_until(counted, 10, "the brackets in aaiti_contingent_orders")
    assert (sample(fams, "aaiti_open_orders_by_mode", mode="emulated") or 0) >= 2
    assert sample(fams, "aaiti_open_orders_by_mode", mode="native") is not None
    assert fams["aaiti_trigger_to_submit_seconds"].type == "histogram"
    assert fams["aaiti_contingent_completed"].type == "counter"


def test_bad_parameters_400_unknown_404(api: Api) -> None:
    for query in ({"limit": "0"}, {"limit": "1001"}, {"active": "perhaps"}, {"status": "open"}):
        assert_error(api.get("/contingent", query), 400, "bad_request")
    assert_error(api.get("/contingent/ghost-1"), 404, "not_found")
    assert_error(api.post("/contingent/ghost-1/cancel", {"reason": "x"}), 404, "not_found")
    assert_error(api.post("/contingent/ghost-1/cancel", {"reason": 7}), 400, "bad_request")
    assert_error(api.get("/contingent", token=None), 401, "unauthorized")
    assert_error(api.post(f"/contingent/{'x' * 200}/cancel"), 400, "bad_request")


def test_cancel_one_202_then_canceled_409(api: Api) -> None:
    target = wide_protected(api)[0]["id"]
    resp = api.post(f"/contingent/{target}/cancel", {"reason": "ops test cancel"})
    assert resp.status == 202 and resp.json() == {"contingent_id": target, "cancel_requested": True}
    wait_until(lambda: target not in {v["id"] for v in contingent(api, active="true")}, 10, "the bracket cancelled")
    view = api.ok("GET", f"/contingent/{target}")["contingent"]
    assert view["status"] == "CANCELED" and view["reason"] == "ops test cancel", view
    assert target in {v["id"] for v in contingent(api) if v["status"] == "CANCELED"}
    assert_error(api.post(f"/contingent/{target}/cancel"), 409, "conflict")
    wait_until(lambda: (sample(metrics(api), "aaiti_contingent_completed", "aaiti_contingent_completed_total",
                               kind="bracket", mode="emulated", status="CANCELED") or 0) >= 1, 10,
               "the cancel counted in aaiti_contingent_completed_total")


def test_a_triggered_exit_is_measured_trigger_to_submit(api: Api) -> None:
    def measured() -> float | None:
        fams = metrics(api)
        count = sample(fams, "aaiti_trigger_to_submit_seconds", "aaiti_trigger_to_submit_seconds_count") or 0
        return count if count >= 1 else None

    wait_until(measured, 60, "a tight bracket's exit triggered and measured")
    tight = [v for v in contingent(api, limit=1000) if v["strategy"] == "tight"]
    assert any(v["status"] in ("DONE", "TRIGGERED") or any(leg["status"] == "FILLED" for leg in v["legs"][1:])
               for v in tight), tight


def test_kill_cancels_every_emulated_contingent_order(api: Api) -> None:
    active_before = [v["id"] for v in contingent(api, active="true")]
    assert active_before, "a wide bracket is still active"
    killed = api.ok("POST", "/kill", body={"reason": "ops contingent kill"})
    assert killed["state"] == "HALTED" and killed["kill_switch"] is True
    wait_until(lambda: contingent(api, active="true") == [], 15, "no active contingent order after the kill")
    for cid in active_before:
        assert api.ok("GET", f"/contingent/{cid}")["contingent"]["status"] == "CANCELED"
    assert api.ok("GET", "/status")["contingent"] == {"active": 0, "by_kind": {}}
