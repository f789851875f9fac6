"""Config hot reload against a REAL ``aaiti run`` child, through the real admin API (and SIGHUP, the CLI).

A reload validates everything first — schema, every strategy class and its params, as at
start-up — then applies all or nothing: an invalid file or a change to a field only read at
build time is refused with 409 naming the key, and ``GET /config`` / ``GET /risk`` keep
showing what runs. Nothing waits on a fixed sleep: tests wait on log lines or HTTP state.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.integration.daemon.daemon_process import REPO
from tests.integration.ops.daemon_harness import TOKEN, Api, OpsDaemon, ops_config, replace_line

EMA_LINE = 'strategy = "actors.strategies.ema_cross:EmaCross"'
PARAMS_LINE = 'params = { fast = 10, slow = 20, kind = "ema", size = "500" }'
RISK_LINE = "max_open_orders = 5"
INVALID = {
    "unknown-class": ({EMA_LINE: 'strategy = "actors.strategies.ema_cross:Nope"'},
                      "strategies[0].strategy", "has no attribute 'Nope'"),
    "unknown-param": ({PARAMS_LINE: 'params = { fast = 10, slow = 20, kind = "ema", size = "500", bogus = 3 }'},
                      "strategies[0].params.bogus", "unknown key"),
    "fast-above-slow": ({PARAMS_LINE: 'params = { fast = 30, slow = 20, kind = "ema", size = "500" }'},
                        "strategies[0].params.fast", "must be less than slow"),
}
RUNNING_PARAMS = {"fast": 10, "slow": 20, "kind": "ema", "size": "500"}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpsDaemon]:
    """One daemon on the default paper config (three strategies) for every reload test here."""
    d = OpsDaemon(ops_config(tmp_path_factory.mktemp("reload"), speed=60.0))
    try:
        d.wait_for_event("daemon.ready", timeout=30)
        yield d
        code = d.stop()
    finally:
        d.kill()
    assert code == 0, d.raw[-20:]
    # Refused reloads log an error line each; nothing ever failed half-way through an apply.
    assert not [r for r in d.lines if r.get("event") in ("config.subscriber_failed", "strategy.callback_failed")]


@pytest.fixture
def api(daemon: OpsDaemon) -> Api:
    return daemon.api


@contextlib.contextmanager
def edited(d: OpsDaemon, replace: Mapping[str, str], append: str = "") -> Iterator[None]:
    """Rewrite lines of the daemon's config file; afterwards restore it and reload it back."""
    original = d.config_path.read_text()
    text = original
    for old, new in replace.items():
        text = replace_line(text, old, new)
    d.config_path.write_text(text + append)
    try:
        yield
    finally:
        d.config_path.write_text(original)
        resp = d.api.post("/reload")
        assert resp.status == 200 and resp.json()["result"] in ("applied", "unchanged"), resp.body[:500]


def refused(resp: Any, result: str) -> dict[str, Any]:
    """A 409 answer of a refused reload; its body."""
    assert resp.status == 409, (resp.status, resp.body[:500])
    body: dict[str, Any] = resp.json()
    assert body["ok"] is False and body["error"] == body["result"] == result, body
    return body


def assert_running_config_is_original(api: Api, version: int) -> None:
    view = api.ok("GET", "/config")
    assert view["version"] == version
    strategies = view["config"]["strategies"]
    assert [s["name"] for s in strategies] == ["ema_cross", "momentum", "mean_revert"]
    assert strategies[0]["strategy"] == "actors.strategies.ema_cross:EmaCross"
    assert strategies[0]["params"] == RUNNING_PARAMS and strategies[0]["timeframe"] == "1m"
    assert view["config"]["risk"]["max_open_orders"] == 5
    assert api.ok("GET", "/risk")["limits"]["max_open_orders"] == 5


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """``python -m daemon.cli <argv>`` as an operator would run it."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "daemon.cli", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=30)


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_strategy_refused_409_naming_the_key(case: str, daemon: OpsDaemon, api: Api) -> None:
    replace, key, problem = INVALID[case]
    v0 = int(api.ok("GET", "/config")["version"])
    with edited(daemon, replace):
        body = refused(api.post("/reload"), "invalid")
        assert body["version"] == v0
        assert any(f"{key}: " in e and problem in e for e in body["errors"]), body["errors"]
        assert key in body["message"] and problem in body["message"]
        assert_running_config_is_original(api, v0)
        # SIGHUP takes the same path and logs the refusal with the same reason.
        m = daemon.mark()
        daemon.proc.send_signal(signal.SIGHUP)
        rec = daemon.wait_new("config.reload_refused", m, source="SIGHUP")
        assert rec["result"] == "invalid" and any(key in e for e in rec["errors"]), rec
        # The CLI says why and exits non-zero.
        out = cli("reload", "--url", api.base_url, "--token", TOKEN)
        assert out.returncode == 2 and "refused: invalid" in out.stderr and key in out.stderr, out
    assert_running_config_is_original(api, v0)


def test_risk_change_beside_a_bad_strategy_is_not_applied(daemon: OpsDaemon, api: Api) -> None:
    v0 = int(api.ok("GET", "/config")["version"])
    replace, key, _ = INVALID["unknown-param"]
    with edited(daemon, {**replace, RISK_LINE: "max_open_orders = 7"}):
        body = refused(api.post("/reload"), "invalid")
        assert any(key in e for e in body["errors"]) and body["changed"] == []
        assert_running_config_is_original(api, v0)


@pytest.mark.parametrize(("replace", "append", "field"), [
    ({'timeframe = "1m"': 'timeframe = "5m"'}, "", "strategies[0].timeframe"),
    ({EMA_LINE: 'strategy = "actors.strategies.stochrsi_trend:StochRsiTrend"',
      PARAMS_LINE: 'params = { size = "500" }'}, "", "strategies[0].strategy"),
    ({'name = "ema_cross"': 'name = "ema_fast"'}, "", "strategies[0].name"),
    ({}, '\n[[strategies]]\nname = "extra"\nstrategy = "actors.strategies.ema_cross:EmaCross"\n'
         'symbols = ["XRP/ETH"]\n', "strategies[3]"),
    ({}, "\n[channels]\nintent_capacity = 16\n", "channels.intent_capacity"),
    ({}, "\n[supervisor]\nmax_restarts = 9\n", "supervisor.max_restarts"),
], ids=["timeframe", "class", "name", "added-entry", "channels", "supervisor"])
def test_build_time_change_refused_409_naming_the_field(
    replace: dict[str, str], append: str, field: str, daemon: OpsDaemon, api: Api
) -> None:
    v0 = int(api.ok("GET", "/config")["version"])
    # A hot risk change in the same file is refused with it.
    with edited(daemon, {**replace, RISK_LINE: "max_open_orders = 7"}, append):
        body = refused(api.post("/reload"), "restart_required")
        assert body["changed"] == [field] and field in body["message"] and "restart" in body["message"]
        assert_running_config_is_original(api, v0)


def test_valid_params_change_is_applied_to_the_running_strategy(daemon: OpsDaemon, api: Api) -> None:
    v0 = int(api.ok("GET", "/config")["version"])
    m = daemon.mark()
    with edited(daemon, {PARAMS_LINE: 'params = { fast = 8, slow = 20, kind = "ema", size = "500" }'}):
        result = api.ok("POST", "/reload")
        assert result["result"] == "applied" and result["changed"] == ["strategies[0].params"]
        assert result["version"] == v0 + 1
        view = api.ok("GET", "/config")
        assert view["version"] == v0 + 1 and view["config"]["strategies"][0]["params"]["fast"] == 8
        rec = daemon.wait_new("strategy.reconfigured", m, strategy="ema_cross")
        assert rec["params"]["fast"] == 8 and rec["running"] is True
    # Restored and reloaded back: the running host has the original params again.
    daemon.wait_new("strategy.reconfigured", m, strategy="ema_cross", params=RUNNING_PARAMS)
    assert_running_config_is_original(api, v0 + 2)
