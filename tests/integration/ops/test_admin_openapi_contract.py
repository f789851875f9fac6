"""Every response the OpenAPI document promises, produced over real HTTP and validated against it.

For each (path, method, status) in the served ``/openapi.json`` a scenario makes the real
admin server answer with exactly that status (a backend with orders, fills, positions,
denials and a config file behind it), and the body is validated with a maintained JSON
Schema 2020-12 / OpenAPI 3.1 validator (``openapi-schema-validator``) against the schema
documented for that status and content type. A documented response without a scenario
fails, so a new route or status cannot be added without its body being checked; a
response whose status or content type the document does not list fails too.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openapi_schema_validator import OAS31Validator, oas31_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from config.schema.ops import AdminSection
from daemon.admin.backend import Unavailable
from daemon.admin.openapi import build_openapi
from daemon.admin.server import AdminServer
from daemon.logging_setup import LoggingSetup
from tests.integration.ops.conftest import TOKEN, edit_file
from tests.integration.ops.memory_backend import MemoryBackend

DOC_URI = "urn:aaiti:admin-openapi"
DOCUMENTED = sorted(
    (path, method.upper(), int(status))
    for path, ops in build_openapi()["paths"].items()
    for method, op in ops.items()
    for status in op["responses"]
)
SAMPLE = {"client_order_id": "aaiti-00002", "name": "ema_fast", "run": "run-1", "contingent_id": "ct-00001"}
# an open order, a known strategy, a backtest run (``_backtest_report`` writes it), an active contingent order
LONG_ID = "x" * 200  # longer than any path id may be


@dataclasses.dataclass
class Req:
    """One request of a scenario."""

    path: str = ""  # concrete path; "" = the route's path with SAMPLE values
    query: dict[str, str] = dataclasses.field(default_factory=dict)
    body: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    auth: bool = True
    server: str = "token"  # "token" or "open" (no token configured)
    stream: bool = False  # read only the first event of a text/event-stream answer


@dataclasses.dataclass
class Env:
    """What a scenario may prepare: the backend, the daemon's config file, injected failures."""

    backend: MemoryBackend
    config_path: Path
    monkeypatch: pytest.MonkeyPatch

    def fail_handlers_with(self, exc: Exception) -> None:
        """Every handler raises ``exc`` (injected where each request's query is parsed)."""

        def broken(*_: Any) -> Any:
            raise exc

        self.monkeypatch.setattr("daemon.admin.server.Query", broken)


Setup = Callable[[Env], None]


@dataclasses.dataclass
class Scenario:
    """Requests that must each get the documented status, after ``setup``."""

    requests: list[Req]
    setup: Setup | None = None


def _kill(env: Env) -> None:
    env.backend.kill_switch = True
    env.backend.state = env.backend.state.HALTED


def _backtest_report(env: Env) -> None:
    """A backtests directory next to the config with one report (what ``aaiti backtest`` leaves)."""
    run = env.config_path.parent / "backtests" / "run-1"
    run.mkdir(parents=True, exist_ok=True)
    (run / "report.html").write_text("<!DOCTYPE html><html><body><h1>report</h1></body></html>")


SPECIFIC: dict[tuple[str, str, int], Scenario] = {
    ("/healthz", "GET", 200): Scenario([Req(auth=False)]),
    ("/readyz", "GET", 200): Scenario([Req(auth=False)], lambda env: env.backend.not_ready.clear()),
    ("/readyz", "GET", 503): Scenario([Req(auth=False)]),
    ("/metrics", "GET", 200): Scenario([Req()]),
    ("/status", "GET", 200): Scenario([Req()]),
    ("/orders", "GET", 200): Scenario([Req(), Req(query={"status": "open", "limit": "3"})]),
    ("/orders", "GET", 400): Scenario([Req(query={"limit": "0"}), Req(query={"stauts": "open"})]),
    ("/orders/{client_order_id}", "GET", 200): Scenario([Req(path=f"/orders/aaiti-{i:05d}") for i in range(6)]),
    ("/orders/{client_order_id}", "GET", 400): Scenario([Req(path=f"/orders/{LONG_ID}")]),
    ("/orders/{client_order_id}", "GET", 404): Scenario([Req(path="/orders/nope-1")]),
    ("/fills", "GET", 200): Scenario([Req(), Req(query={"client_order_id": "aaiti-00000"})]),
    ("/fills", "GET", 400): Scenario([Req(query={"limit": "0"})]),
    ("/positions", "GET", 200): Scenario([Req()]),
    ("/balances", "GET", 200): Scenario([Req()]),
    ("/risk", "GET", 200): Scenario([Req()]),
    ("/risk/events", "GET", 200): Scenario([Req()]),
    ("/risk/events", "GET", 400): Scenario([Req(query={"offset": "-1"})]),
    ("/config", "GET", 200): Scenario([Req()]),
    ("/logs", "GET", 200): Scenario([Req(query={"n": "5"}), Req(query={"follow": "1", "n": "2"}, stream=True)]),
    ("/logs", "GET", 400): Scenario([Req(query={"level": "loud"})]),
    ("/logs", "GET", 429): Scenario([Req(query={"follow": "1"})], lambda env: None),  # see test: one stream open
    ("/openapi.json", "GET", 200): Scenario([Req(auth=False)]),
    ("/reload", "POST", 200): Scenario([Req()], lambda env: edit_file(env.config_path, replace=("'info'", "'debug'"))),
    ("/reload", "POST", 400): Scenario([Req(body=b'{"path": "/etc/passwd"}')]),
    ("/reload", "POST", 409): Scenario([Req()], lambda env: edit_file(env.config_path, "[log]\nlevel = 3\n")),
    ("/pause", "POST", 200): Scenario([Req(body=b'{"reason": "contract"}')]),
    ("/pause", "POST", 400): Scenario([Req(body=b'{"reason": 5}')]),
    ("/pause", "POST", 409): Scenario([Req()], _kill),
    ("/resume", "POST", 200): Scenario([Req(body=b'{"confirm": "resume-after-kill"}')], _kill),
    ("/resume", "POST", 400): Scenario([Req(body=b'{"confirm": "yes"}')]),
    ("/resume", "POST", 409): Scenario([Req()], _kill),
    ("/kill", "POST", 200): Scenario([Req(body=b'{"reason": "contract"}')]),
    ("/kill", "POST", 400): Scenario([Req(body=b"[1, 2]")]),
    ("/orders/{client_order_id}/cancel", "POST", 202): Scenario([Req()]),
    ("/orders/{client_order_id}/cancel", "POST", 400): Scenario([Req(path=f"/orders/{LONG_ID}/cancel")]),
    ("/orders/{client_order_id}/cancel", "POST", 404): Scenario([Req(path="/orders/ghost/cancel")]),
    ("/orders/{client_order_id}/cancel", "POST", 409): Scenario([Req(path="/orders/aaiti-00000/cancel")]),
    # contingent orders (daemon/admin/routes_contingent.py)
    ("/contingent", "GET", 200): Scenario([Req(), Req(query={"active": "true", "limit": "1"}),
                                           Req(query={"active": "false", "limit": "1000"})]),
    ("/contingent", "GET", 400): Scenario([Req(query={"limit": "0"}), Req(query={"limit": "1001"}),
                                           Req(query={"active": "maybe"}), Req(query={"activ": "1"})]),
    ("/contingent/{contingent_id}", "GET", 200): Scenario([Req(path=f"/contingent/ct-0000{i}") for i in (1, 2, 3)]),
    ("/contingent/{contingent_id}", "GET", 400): Scenario([Req(path=f"/contingent/{LONG_ID}")]),
    ("/contingent/{contingent_id}", "GET", 404): Scenario([Req(path="/contingent/ghost")]),
    ("/contingent/{contingent_id}/cancel", "POST", 202): Scenario([Req(), Req(path="/contingent/ct-00002/cancel",
                                                                              body=b'{"reason": "contract"}')]),
    ("/contingent/{contingent_id}/cancel", "POST", 400): Scenario([Req(path=f"/contingent/{LONG_ID}/cancel"),
                                                                   Req(body=b'{"reason": 5}')]),
    ("/contingent/{contingent_id}/cancel", "POST", 404): Scenario([Req(path="/contingent/ghost/cancel")]),
    ("/contingent/{contingent_id}/cancel", "POST", 409): Scenario([Req(path="/contingent/ct-00003/cancel")]),
    ("/strategies/{name}/stop", "POST", 200): Scenario([Req()]),
    ("/strategies/{name}/stop", "POST", 400): Scenario([Req(body=b'{"now": true}')]),
    ("/strategies/{name}/stop", "POST", 404): Scenario([Req(path="/strategies/ghost/stop")]),
    ("/strategies/{name}/start", "POST", 200): Scenario([Req()]),
    ("/strategies/{name}/start", "POST", 400): Scenario([Req(path=f"/strategies/{LONG_ID}/start")]),
    ("/strategies/{name}/start", "POST", 404): Scenario([Req(path="/strategies/ghost/start")]),
    # the web console (daemon/admin/console.py)
    ("/", "GET", 200): Scenario([Req(auth=False)]),
    ("/console/console.js", "GET", 200): Scenario([Req(auth=False)]),
    ("/console/console.css", "GET", 200): Scenario([Req(auth=False)]),
    ("/console/lightweight-charts.js", "GET", 200): Scenario([Req(auth=False)]),
    ("/console/session", "GET", 200): Scenario([Req(auth=False), Req()]),
    ("/console/login", "POST", 200): Scenario([Req()]),
    ("/console/login", "POST", 400): Scenario([Req(body=b'{"token": "in-the-body"}')]),
    ("/console/logout", "POST", 200): Scenario([Req()]),
    ("/console/logout", "POST", 400): Scenario([Req(body=b"[1]")]),
    ("/console/state", "GET", 200): Scenario([Req(), Req(query={"follow": "1"}, stream=True)]),
    ("/console/state", "GET", 400): Scenario([Req(query={"follow": "maybe"})]),
    ("/console/state", "GET", 429): Scenario([Req(query={"follow": "1"})], lambda env: None),  # one stream open
    ("/console/backtests", "GET", 200): Scenario([Req()], _backtest_report),
    ("/backtests/{run}/report.html", "GET", 200): Scenario([Req()], _backtest_report),
    ("/backtests/{run}/report.html", "GET", 400): Scenario([Req(path="/backtests/.hidden/report.html")]),
    ("/backtests/{run}/report.html", "GET", 404): Scenario([Req(path="/backtests/nope/report.html")]),
}


def scenario_for(path: str, method: str, status: int) -> Scenario | None:
    """The route's own scenario, else the rule for a status every route of its kind may give."""
    if (path, method, status) in SPECIFIC:
        return SPECIFIC[(path, method, status)]
    if status == 401:
        return Scenario([Req(auth=False)])
    if status == 403 and method == "POST":  # a browser's cross-site POST
        return Scenario([Req(headers={"Origin": "https://evil.example"})])
    if status == 403:  # no token configured and a foreign Host header (DNS rebinding)
        return Scenario([Req(server="open", headers={"Host": "rebind.evil.example"})])
    if status == 413:
        return Scenario([Req(body=b'{"reason": "' + b"x" * 4096 + b'"}')])
    if status == 500:
        return Scenario([Req()], lambda env: env.fail_handlers_with(RuntimeError("injected failure")))
    if status == 503:
        return Scenario([Req()], lambda env: env.fail_handlers_with(Unavailable("state store not open yet")))
    return None


@pytest.fixture
async def servers(backend: MemoryBackend) -> AsyncIterator[dict[str, AdminServer]]:
    """The admin server with a token (small body limit, one log stream) and one without a token."""
    out = {"token": AdminServer(backend, AdminSection(port=0, max_body_bytes=1024, sse_max_followers=1), TOKEN),
           "open": AdminServer(backend, AdminSection(port=0), None)}
    for srv in out.values():
        await srv.start()
    try:
        yield out
    finally:
        for srv in out.values():
            await srv.stop()


def validator_for(doc: dict[str, Any], schema: dict[str, Any]) -> OAS31Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve inside ``doc``."""
    registry: Registry[Any] = Registry().with_resource(
        DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012))
    ref = schema.get("$ref")
    root = {"$ref": DOC_URI + ref} if isinstance(ref, str) and ref.startswith("#/") else schema
    return OAS31Validator(root, registry=registry, format_checker=oas31_format_checker)


async def send(srv: AdminServer, route_path: str, method: str, req: Req) -> tuple[int, str, Any]:
    """Send ``req``; (status, media type, decoded body: JSON value, or text)."""
    headers = dict(req.headers)
    if req.auth and req.server == "token":
        headers["Authorization"] = f"Bearer {TOKEN}"
    if req.body is not None:
        headers["Content-Type"] = "application/json"
    path = req.path or re.sub(r"\{(\w+)\}", lambda m: SAMPLE[m.group(1)], route_path)
    async with aiohttp.ClientSession(base_url=srv.url) as s, s.request(
        method, path, params=req.query, data=req.body, headers=headers
    ) as resp:
        if req.stream:
            first_event = await resp.content.readuntil(b"\n\n")
            return resp.status, resp.content_type, first_event.decode()
        raw = await resp.read()
        if resp.content_type == "application/json":
            return resp.status, resp.content_type, orjson.loads(raw)
        return resp.status, resp.content_type, raw.decode()


def test_every_documented_response_has_a_scenario() -> None:
    missing = [key for key in DOCUMENTED if scenario_for(*key) is None]
    assert missing == [], f"documented responses without a scenario (add one to SPECIFIC): {missing}"
    stale = sorted(set(SPECIFIC) - set(DOCUMENTED))
    assert stale == [], f"scenarios for responses the document does not list: {stale}"


@pytest.mark.parametrize(("path", "method", "status"), DOCUMENTED, ids=[f"{m} {p} {s}" for p, m, s in DOCUMENTED])
async def test_documented_response_body_matches_openapi(
    servers: dict[str, AdminServer], backend: MemoryBackend, config_path: Path, logging_setup: LoggingSetup,
    monkeypatch: pytest.MonkeyPatch, path: str, method: str, status: int,
) -> None:
    scenario = scenario_for(path, method, status)
    if scenario is None:
        pytest.fail(f"no scenario for the documented response {method} {path} {status}")
    _, _, doc = await send(servers["token"], "/openapi.json", "GET", Req(auth=False))  # the served document
    documented = doc["paths"][path][method.lower()]["responses"]
    hold_open: aiohttp.ClientResponse | None = None
    session: aiohttp.ClientSession | None = None
    try:
        if status == 429:  # the only allowed stream (of the log, of the console state) is taken
            session = aiohttp.ClientSession(base_url=servers["token"].url,
                                            headers={"Authorization": f"Bearer {TOKEN}"})
            hold_open = await session.get(path, params={"follow": "1"})
            await hold_open.content.readuntil(b"\n")
        if scenario.setup is not None:
            scenario.setup(Env(backend, config_path, monkeypatch))
        for req in scenario.requests:
            got, media, body = await send(servers[req.server], path, method, req)
            assert got == status, (req, body)
            content = documented[str(got)].get("content", {})
            assert media in content, f"{method} {path} {got}: {media} not documented ({list(content)})"
            errors = sorted(validator_for(doc, content[media]["schema"]).iter_errors(body), key=str)
            assert not errors, (f"{method} {path} {got}: body does not match the documented schema: "
                                f"{[f'{list(e.absolute_path)}: {e.message}' for e in errors][:5]}")
    finally:
        if hold_open is not None:
            hold_open.close()
        if session is not None:
            await session.close()
