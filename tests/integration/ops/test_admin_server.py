"""The real AdminServer on 127.0.0.1:0 with a real (in-memory) backend, over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
import structlog
from prometheus_client.parser import text_string_to_metric_families

from actors.model.control import HealthVerdict
from config.schema.ops import AdminSection
from daemon.admin.auth import InsecureBindError
from daemon.admin.routes import ROUTES
from daemon.admin.server import AdminBindError, AdminServer
from daemon.logging_setup import LoggingSetup
from tests.integration.ops.conftest import CONFIG_TEXT, TOKEN, edit_file
from tests.integration.ops.memory_backend import MemoryBackend
from tests.waiting import wait_until

SAMPLE_PATH_VALUES = {"client_order_id": "aaiti-00002", "name": "ema_fast"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)


async def call(session: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    async with session.request(method, path, **kw) as resp:
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


def assert_error(body: Any, code: str) -> None:
    assert isinstance(body, dict), body
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"], body


# -- probes ---------------------------------------------------------------------------------
async def test_healthz_without_token_200(anon: aiohttp.ClientSession, backend: MemoryBackend) -> None:
    backend.verdict = HealthVerdict(status="degraded", reasons=("feed reconnecting",))
    status, body = await call(anon, "GET", "/healthz")
    assert status == 200
    assert body == {"status": "alive", "health": "degraded", "reasons": ["feed reconnecting"]}


async def test_readyz_until_ready_503_then_200(anon: aiohttp.ClientSession, backend: MemoryBackend) -> None:
    status, body = await call(anon, "GET", "/readyz")
    assert status == 503
    assert_error(body, "not_ready")
    assert body["ready"] is False and body["reasons"] == ["startup reconciliation pending"]
    backend.not_ready.clear()
    status, body = await call(anon, "GET", "/readyz")
    assert (status, body) == (200, {"ready": True, "reasons": []})


# -- auth -----------------------------------------------------------------------------------
PROTECTED = [r for r in ROUTES if r.auth != "public"]


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
async def test_protected_route_without_token_401(
    anon: aiohttp.ClientSession, backend: MemoryBackend, route: Any
) -> None:
    async with anon.request(route.method, concrete(route.path)) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert_error(await resp.json(), "unauthorized")
    assert backend.audit == []  # a refused command did nothing


@pytest.mark.parametrize("route", PROTECTED, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", "Bearer ", f"Basic {TOKEN}", TOKEN])
async def test_protected_route_wrong_token_401(
    server: AdminServer, backend: MemoryBackend, route: Any, header: str
) -> None:
    async with aiohttp.ClientSession(base_url=server.url, headers={"Authorization": header}) as s:
        status, body = await call(s, route.method, concrete(route.path))
    assert status == 401
    assert_error(body, "unauthorized")
    assert backend.audit == []


async def test_unauthorized_burst_logged_once(
    anon: aiohttp.ClientSession, server: AdminServer, logging_setup: LoggingSetup
) -> None:
    for _ in range(20):
        await call(anon, "GET", "/status")
    logged = [r for r in logging_setup.ring.records if r["event"] == "admin.unauthorized"]
    assert len(logged) == 1 and server.ctx.unauthorized == 20


async def test_metrics_without_token_401_unless_public(server: AdminServer, backend: MemoryBackend) -> None:
    current = {"s": AdminSection(port=0)}
    srv = AdminServer(backend, lambda: current["s"], TOKEN)
    await srv.start()
    try:
        async with aiohttp.ClientSession(base_url=srv.url) as s:
            assert (await call(s, "GET", "/metrics"))[0] == 401
            current["s"] = dataclasses.replace(current["s"], metrics_public=True)  # hot reload
            status, text = await call(s, "GET", "/metrics")
            assert status == 200 and "aaiti_build_info" in text
            assert (await call(s, "GET", "/status"))[0] == 401
    finally:
        await srv.stop()


async def test_post_with_browser_origin_403(client: aiohttp.ClientSession, backend: MemoryBackend) -> None:
    for path in ("/kill", "/resume", "/orders/aaiti-00002/cancel"):
        status, body = await call(client, "POST", path, headers={"Origin": "https://evil.example"},
                                  data=b'{"confirm": "resume-after-kill"}')
        assert status == 403
        assert_error(body, "forbidden")
    assert backend.audit == []


async def test_no_token_foreign_host_header_403(backend: MemoryBackend) -> None:
    srv = AdminServer(backend, AdminSection(port=0), None)
    await srv.start()
    try:
        async with aiohttp.ClientSession(base_url=srv.url) as s:
            status, body = await call(s, "GET", "/status", headers={"Host": f"rebind.evil.example:{srv.port}"})
            assert status == 403
            assert_error(body, "forbidden")
            status, _ = await call(s, "GET", "/status", headers={"Host": f"localhost:{srv.port}"})
            assert status == 200
            status, _ = await call(s, "POST", "/pause", headers={"Origin": "http://127.0.0.1:1"})
            assert status == 403 and backend.audit == []
    finally:
        await srv.stop()


# -- reads ----------------------------------------------------------------------------------
async def test_metrics_with_token_parses(client: aiohttp.ClientSession) -> None:
    async with client.get("/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {"aaiti_orders", "aaiti_trading_state", "aaiti_event_loop_lag_seconds", "process_cpu_seconds"} <= names


async def test_status_overview_200(client: aiohttp.ClientSession) -> None:
    status, body = await call(client, "GET", "/status")
    assert status == 200
    assert body["name"] == "ops-test" and body["trading_state"] == "ACTIVE"
    assert {a["name"] for a in body["actors"]} >= {"watchdog", "feed"}
    assert body["channels"][0]["name"] == "market"


async def test_orders_filtered_and_paged_200(client: aiohttp.ClientSession, backend: MemoryBackend) -> None:
    status, body = await call(client, "GET", "/orders", params={"limit": "5"})
    assert status == 200 and body["count"] == 5 and body["limit"] == 5 and body["offset"] == 0
    created = [o["created_ms"] for o in body["orders"]]
    assert created == sorted(created, reverse=True)
    _, page2 = await call(client, "GET", "/orders", params={"limit": "5", "offset": "5"})
    assert not {o["client_order_id"] for o in body["orders"]} & {o["client_order_id"] for o in page2["orders"]}
    _, filled = await call(client, "GET", "/orders",
                           params={"status": "filled", "symbol": "S000/USDT", "strategy": "ema_fast", "limit": "1000"})
    assert filled["orders"] and all(
        (o["status"], o["symbol"], o["strategy"]) == ("FILLED", "S000/USDT", "ema_fast") for o in filled["orders"]
    )
    _, open_ = await call(client, "GET", "/orders", params={"status": "open"})
    assert {o["status"] for o in open_["orders"]} == {"ACCEPTED", "PARTIALLY_FILLED"}
    _, several = await call(client, "GET", "/orders", params={"status": "REJECTED,CANCELED"})
    assert {o["status"] for o in several["orders"]} == {"REJECTED", "CANCELED"}
    one = body["orders"][0]
    assert isinstance(one["size"], str)  # Decimal travels as an exact string


BAD_PARAMS = [
    ("/orders", "limit=abc"),
    ("/orders", "limit=0"),
    ("/orders", "limit=1001"),
    ("/orders", "offset=-1"),
    ("/orders", "offset=1e3"),
    ("/orders", "status=BOGUS"),
    ("/orders", "stauts=FILLED"),
    ("/orders", "symbol="),
    ("/orders", "limit=1&limit=2"),
    ("/fills", "limit="),
    ("/fills", "client_order_id=" + "x" * 129),
    ("/risk/events", "offset=x"),
    ("/logs", "level=loud"),
    ("/logs", "n=-1"),
    ("/logs", "n=10001"),
    ("/logs", "follow=maybe"),
    ("/positions", "symbol=BTC/USDT"),
]


@pytest.mark.parametrize(("path", "query"), BAD_PARAMS)
async def test_bad_query_param_400(client: aiohttp.ClientSession, path: str, query: str) -> None:
    status, body = await call(client, "GET", f"{path}?{query}")
    assert status == 400
    assert_error(body, "bad_request")


async def test_order_known_200_unknown_404(client: aiohttp.ClientSession) -> None:
    status, body = await call(client, "GET", "/orders/aaiti-00002")
    assert status == 200 and set(body) == {"order", "events"}
    assert body["order"]["client_order_id"] == "aaiti-00002" and body["order"]["status"] == "ACCEPTED"
    assert [e["status"] for e in body["events"]] == ["SUBMITTED", "ACCEPTED"]
    status, body = await call(client, "GET", "/orders/nope-123")
    assert status == 404
    assert_error(body, "not_found")
    assert "nope-123" in body["message"]


async def test_fills_positions_balances_risk_200(client: aiohttp.ClientSession) -> None:
    status, fills = await call(client, "GET", "/fills", params={"client_order_id": "aaiti-00000"})
    assert status == 200 and [f["trade_id"] for f in fills["fills"]] == ["t0"]
    status, positions = await call(client, "GET", "/positions")
    assert status == 200 and {p["symbol"] for p in positions["positions"]} == {"S000/USDT", "S001/USDT", "S002/USDT"}
    status, balances = await call(client, "GET", "/balances")
    assert status == 200 and balances["balances"][0]["asset"] == "USDT"
    status, risk = await call(client, "GET", "/risk")
    assert status == 200 and risk["state"] == "ACTIVE" and risk["limits"]["max_open_orders"] == 10
    status, events = await call(client, "GET", "/risk/events", params={"reason": "max_position"})
    assert status == 200 and events["count"] == 2 and events["events"][0]["id"] == 3


async def test_config_redacted_with_version_200(client: aiohttp.ClientSession, config_path: Path) -> None:
    status, body = await call(client, "GET", "/config")
    assert status == 200
    assert body["version"] == 1 and body["loaded_at"] > 0 and body["path"] == str(config_path)
    assert body["config"]["admin"]["token"] == "***"
    assert "config-secret-value" not in str(body)


async def test_logs_tail_filtered_200(client: aiohttp.ClientSession) -> None:
    log = structlog.get_logger("aaiti").bind(actor="tester")
    log.info("tail.one")
    log.warning("tail.two")
    structlog.get_logger("aaiti").bind(actor="other").warning("tail.other")
    log.error("tail.three")
    status, body = await call(client, "GET", "/logs", params={"n": "5", "level": "warning", "logger": "tester"})
    assert status == 200
    assert [r["event"] for r in body["records"]] == ["tail.two", "tail.three"]
    _, last = await call(client, "GET", "/logs", params={"n": "1"})
    assert last["count"] == 1 and last["records"][0]["event"] == "tail.three"


# -- live log stream --------------------------------------------------------------------------
async def sse_events(resp: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str]]:
    """(event, data) pairs; comments come through as ("comment", text). Blank dispatches are skipped."""
    event: str = "message"
    data: str | None = None
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            yield "comment", line[1:].strip()
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data is not None:
            yield event, data
            event, data = "message", None


async def test_sse_follow_line_logged_after_connect_received(client: aiohttp.ClientSession) -> None:
    structlog.get_logger("aaiti").bind(actor="tester").info("sse.before")
    async with asyncio.timeout(10), client.get("/logs", params={"follow": "1", "n": "1"}) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        events = sse_events(resp)
        assert await anext(events) == ("comment", "connected")
        kind, data = await anext(events)
        assert kind == "log" and '"sse.before"' in data  # the backlog
        structlog.get_logger("aaiti").bind(actor="tester").debug("sse.filtered_out", secret="hunter2")
        structlog.get_logger("aaiti").bind(actor="tester").info("sse.after_connect", token="abc123456")
        async for kind, data in events:
            if kind == "log" and "sse.after_connect" in data:
                assert '"token":"***"' in data  # redacted before the ring
                break


async def test_sse_follow_level_filter_applied(client: aiohttp.ClientSession) -> None:
    async with asyncio.timeout(10), client.get("/logs?follow=1&n=0&level=error") as resp:
        events = sse_events(resp)
        assert await anext(events) == ("comment", "connected")
        log = structlog.get_logger("aaiti").bind(actor="tester")
        log.warning("sse.warning_skipped")
        log.error("sse.error_kept")
        kind, data = await anext(events)
        assert kind == "log" and "sse.error_kept" in data


async def test_sse_server_stop_ends_stream(server: AdminServer, client: aiohttp.ClientSession) -> None:
    async with asyncio.timeout(10), client.get("/logs?follow=1&n=0") as resp:
        events = sse_events(resp)
        assert await anext(events) == ("comment", "connected")
        stopping = asyncio.create_task(server.stop())
        kinds = [kind async for kind, _ in events]
        assert kinds[-1] == "end"
        await stopping
    assert server.ctx.streams.active == 0


async def test_sse_client_disconnect_unregistered(server: AdminServer, client: aiohttp.ClientSession) -> None:
    ring = server.ctx.streams.ring
    followers_before = len(ring._followers)
    async with client.get("/logs?follow=1&n=0") as resp:
        assert (await resp.content.readline()).startswith(b": connected")
        assert server.ctx.streams.active == 1
    structlog.get_logger("aaiti").info("sse.after_disconnect")  # the next write notices the gone client
    await wait_until(lambda: server.ctx.streams.active == 0)
    assert len(ring._followers) == followers_before


async def test_sse_too_many_followers_429(backend: MemoryBackend) -> None:
    srv = AdminServer(backend, AdminSection(port=0, sse_max_followers=1), TOKEN)
    await srv.start()
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers={"Authorization": f"Bearer {TOKEN}"}) as s:
            async with s.get("/logs?follow=1") as first:
                assert (await first.content.readline()).startswith(b": connected")
                status, body = await call(s, "GET", "/logs?follow=1")
                assert status == 429
                assert_error(body, "too_many_followers")
    finally:
        await srv.stop()


# -- commands ---------------------------------------------------------------------------------
async def test_resume_after_kill_without_confirmation_409(
    client: aiohttp.ClientSession, backend: MemoryBackend
) -> None:
    status, body = await call(client, "POST", "/kill", json={"reason": "drill"})
    assert status == 200 and body == {"state": "HALTED", "kill_switch": True, "reason": "drill"}
    status, body = await call(client, "POST", "/resume")
    assert status == 409
    assert_error(body, "kill_switch_engaged")
    assert "resume-after-kill" in body["message"]
    status, body = await call(client, "POST", "/resume", json={"confirm": "yes"})
    assert status == 400
    assert_error(body, "bad_request")
    assert backend.kill_switch
    status, body = await call(client, "POST", "/resume", json={"confirm": "resume-after-kill", "reason": "ok"})
    assert status == 200 and body["state"] == "ACTIVE" and body["kill_switch"] is False
    assert [a[0] for a in backend.audit] == ["kill", "resume"]


async def test_pause_then_resume_without_kill_200(client: aiohttp.ClientSession, backend: MemoryBackend) -> None:
    status, body = await call(client, "POST", "/pause")
    assert status == 200 and body["state"] == "REDUCING"
    assert backend.audit == [("pause", "admin: POST /pause")]
    status, body = await call(client, "POST", "/resume", data=b"")
    assert status == 200 and body["state"] == "ACTIVE"


async def test_commands_logged_with_outcome(client: aiohttp.ClientSession, logging_setup: LoggingSetup) -> None:
    await call(client, "POST", "/kill")
    await call(client, "POST", "/resume")
    logged = [(r["path"], r["status"]) for r in logging_setup.ring.records if r["event"] == "admin.command"]
    assert logged == [("/kill", 200), ("/resume", 409)]


BAD_BODIES = [
    ("/pause", b"{not json"),
    ("/pause", b"[1, 2]"),
    ("/pause", b'{"reason": 5}'),
    ("/pause", b'{"reason": "x", "extra": 1}'),
    ("/kill", b'{"reason": "' + b"x" * 201 + b'"}'),
    ("/reload", b'{"path": "/etc/passwd"}'),
    ("/strategies/ema_fast/stop", b'{"now": true}'),
]


@pytest.mark.parametrize(("path", "body"), BAD_BODIES)
async def test_bad_body_400(client: aiohttp.ClientSession, backend: MemoryBackend, path: str, body: bytes) -> None:
    status, resp = await call(client, "POST", path, data=body, headers={"Content-Type": "application/json"})
    assert status == 400
    assert_error(resp, "bad_request")
    assert backend.audit == []


async def test_body_too_large_413(client: aiohttp.ClientSession) -> None:
    status, body = await call(client, "POST", "/pause", data=b'{"reason": "' + b"x" * 70_000 + b'"}')
    assert status == 413
    assert_error(body, "payload_too_large")


async def test_cancel_open_202_unknown_404_finished_409(
    client: aiohttp.ClientSession, backend: MemoryBackend
) -> None:
    status, body = await call(client, "POST", "/orders/aaiti-00002/cancel", json={"reason": "manual"})
    assert (status, body) == (202, {"client_order_id": "aaiti-00002", "cancel_requested": True})
    assert backend.orders_by_id["aaiti-00002"].status == "PENDING_CANCEL"
    status, body = await call(client, "POST", "/orders/ghost/cancel")
    assert status == 404
    assert_error(body, "not_found")
    status, body = await call(client, "POST", "/orders/aaiti-00000/cancel")
    assert status == 409
    assert_error(body, "conflict")
    assert body["status"] == "FILLED"


async def test_strategy_stop_start_known_200_unknown_404(
    client: aiohttp.ClientSession, backend: MemoryBackend
) -> None:
    status, body = await call(client, "POST", "/strategies/ema_fast/stop")
    assert (status, body) == (200, {"strategy": "ema_fast", "action": "stop", "accepted": True})
    assert backend.strategies["ema_fast"] is False
    status, _ = await call(client, "POST", "/strategies/ema_fast/start")
    assert status == 200 and backend.strategies["ema_fast"] is True
    status, body = await call(client, "POST", "/strategies/nope/stop")
    assert status == 404
    assert_error(body, "not_found")


async def test_reload_applied_invalid_restart_required(client: aiohttp.ClientSession, config_path: Path) -> None:
    edit_file(config_path, replace=("level = 'info'", "level = 'debug'"))
    status, body = await call(client, "POST", "/reload")
    assert status == 200 and body["ok"] is True and body["result"] == "applied" and body["changed"] == ["log.level"]
    assert body["version"] == 2
    edit_file(config_path, "[log]\nlevel = 3\n")
    status, body = await call(client, "POST", "/reload")
    assert status == 409
    assert_error(body, "invalid")
    assert "log.level" in body["message"] and body["version"] == 2
    edit_file(config_path, CONFIG_TEXT.replace("'ops-test'", "'renamed'").replace("'info'", "'debug'"))
    status, body = await call(client, "POST", "/reload")
    assert status == 409
    assert_error(body, "restart_required")
    assert body["changed"] == ["daemon.name"]
    _, cfg = await call(client, "GET", "/config")
    assert cfg["version"] == 2 and cfg["config"]["daemon"]["name"] == "ops-test"


# -- errors -----------------------------------------------------------------------------------
async def test_unknown_route_404_json(client: aiohttp.ClientSession, anon: aiohttp.ClientSession) -> None:
    for session in (client, anon):
        status, body = await call(session, "GET", "/nope")
        assert status == 404
        assert_error(body, "not_found")


async def test_wrong_method_405_json(client: aiohttp.ClientSession) -> None:
    async with client.post("/orders") as resp:
        assert resp.status == 405 and resp.headers["Allow"] == "GET"
        assert_error(await resp.json(), "method_not_allowed")
    async with client.get("/kill") as resp:
        assert resp.status == 405 and resp.headers["Allow"] == "POST"
        assert_error(await resp.json(), "method_not_allowed")


async def test_backend_failure_500_logged(
    client: aiohttp.ClientSession, backend: MemoryBackend, logging_setup: LoggingSetup, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom() -> dict[str, Any]:
        raise RuntimeError("snapshot broke")

    monkeypatch.setattr(backend, "status", boom)
    status, body = await call(client, "GET", "/status")
    assert status == 500
    assert_error(body, "internal")
    assert "snapshot broke" not in body["message"]
    failed = [r for r in logging_setup.ring.records if r["event"] == "admin.handler_failed"]
    assert failed and "snapshot broke" in failed[0]["error"]


async def test_oversize_request_line_400_json_logged_once_as_warning(
    client: aiohttp.ClientSession, logging_setup: LoggingSetup
) -> None:
    async with client.get("/fills", params={"client_order_id": "x" * 10_000}) as resp:
        assert resp.status == 400 and resp.content_type == "application/json"
        body = await resp.json()
    assert_error(body, "bad_request")
    assert "too long" in body["message"] and len(body["message"]) < 200
    records = logging_setup.ring.records
    assert not [r for r in records if r.get("logger", "").startswith("aiohttp")], records
    assert not [r for r in records if r["level"] in ("error", "critical")], records
    bad = [r for r in records if r["event"] == "admin.bad_http_request"]
    assert len(bad) == 1 and bad[0]["level"] == "warning" and bad[0]["actor"] == "admin", bad
    assert bad[0]["status"] == 400 and "x" * 100 not in str(bad[0])
    status, _ = await call(client, "GET", "/status")  # the server keeps serving
    assert status == 200


@pytest.mark.parametrize("raw", [
    b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"y" * 10_000 + b"\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
    b"GET /status HTTP/9.9\r\n\r\n",
])
async def test_malformed_http_400_json(server: AdminServer, logging_setup: LoggingSetup, raw: bytes) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(raw)
        await writer.drain()
        answer = await reader.read()  # the server answers and closes the connection
    finally:
        writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") or head.startswith(b"HTTP/1.0 400 "), head
    assert b"content-type: application/json" in head.lower(), head
    body = orjson.loads(payload)
    assert_error(body, "bad_request")
    records = logging_setup.ring.records
    assert not [r for r in records if r["level"] in ("error", "critical")], records
    assert len([r for r in records if r["event"] == "admin.bad_http_request"]) == 1


# -- OpenAPI ----------------------------------------------------------------------------------
async def test_openapi_matches_registered_routes(anon: aiohttp.ClientSession, server: AdminServer) -> None:
    status, doc = await call(anon, "GET", "/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    registered = {(r.method, r.resource.canonical) for r in server.app.router.routes() if r.resource is not None}
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert registered == documented
    for path, ops in doc["paths"].items():
        in_path = set(re.findall(r"\{(\w+)\}", path))
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == in_path, (path, declared)
            for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(op).replace("'", '"')):
                assert ref in doc["components"]["schemas"], ref


# Every documented response body is validated against this document in
# test_admin_openapi_contract.py (a maintained JSON Schema validator, every route and status).


# -- binding ----------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "admin.example.com"])
def test_non_loopback_bind_without_token_refused(backend: MemoryBackend, host: str) -> None:
    with pytest.raises(InsecureBindError, match="not a loopback address"):
        AdminServer(backend, AdminSection(host=host, port=0), None)
    AdminServer(backend, AdminSection(host=host, port=0), TOKEN)  # with a token: allowed


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_bind_without_token_allowed(backend: MemoryBackend, host: str) -> None:
    AdminServer(backend, AdminSection(host=host, port=0), None)


async def test_no_token_loopback_serves_without_auth(backend: MemoryBackend, logging_setup: LoggingSetup) -> None:
    srv = AdminServer(backend, AdminSection(port=0), None)
    await srv.start()
    try:
        async with aiohttp.ClientSession(base_url=srv.url) as s:
            assert (await call(s, "GET", "/status"))[0] == 200
    finally:
        await srv.stop()
    assert any(r["event"] == "admin.no_token" for r in logging_setup.ring.records)


async def test_listening_logged_with_bound_port(server: AdminServer, logging_setup: LoggingSetup) -> None:
    rec = next(r for r in logging_setup.ring.records if r["event"] == "admin.listening")
    assert rec["host"] == "127.0.0.1" and rec["port"] == server.port > 0 and rec["auth"] == "token"
    assert server.url == f"http://127.0.0.1:{server.port}"


async def test_port_in_use_bind_error(server: AdminServer, backend: MemoryBackend) -> None:
    other = AdminServer(backend, AdminSection(port=server.port), TOKEN)
    with pytest.raises(AdminBindError, match=f"127.0.0.1:{server.port}"):
        await other.start()
    await other.stop()


async def test_stop_idempotent_start_twice_refused(backend: MemoryBackend) -> None:
    srv = AdminServer(backend, AdminSection(port=0), TOKEN)
    await srv.stop()  # never started: no-op
    await srv.start()
    with pytest.raises(RuntimeError):
        await srv.start()
    await srv.stop()
    await srv.stop()
