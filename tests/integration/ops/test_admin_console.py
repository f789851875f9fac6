"""The web console's server side on a real AdminServer (in-memory backend): session cookie, guards,
static assets and their Content-Security-Policy, backtest reports, the live state stream.

The browser itself is exercised in ``tests/integration/browser/test_console.py``; here each
rule is checked with hand-made requests, including the ones a browser would never send.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path

import aiohttp
import orjson
import pytest

from actors.bar_log import BarLog
from actors.kernel.channel import Channel
from actors.model.market import Bar
from config.schema.ops import AdminSection
from daemon.admin.console import CHART_LOGO_STYLE, CONSOLE_CSP
from daemon.admin.console_session import ConsoleSessions
from daemon.admin.server import AdminServer
from daemon.logging_setup import LoggingSetup
from daemon.web import LIGHTWEIGHT_CHARTS_JS, asset_text
from tests.integration.ops.conftest import TOKEN
from tests.integration.ops.memory_backend import MemoryBackend


@pytest.fixture
async def srv(backend: MemoryBackend) -> AsyncIterator[AdminServer]:
    server = AdminServer(backend, AdminSection(port=0), TOKEN)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _origin(srv: AdminServer) -> str:
    return f"http://127.0.0.1:{srv.port}"


async def _login(s: aiohttp.ClientSession, srv: AdminServer) -> str:
    """Log in like the console does; the session id from Set-Cookie."""
    async with s.post("/console/login", headers={"Authorization": f"Bearer {TOKEN}", "Origin": _origin(srv)}) as r:
        assert r.status == 200, await r.text()
        raw = r.headers["Set-Cookie"]
    cookie = SimpleCookie(raw)[f"aaiti_console_{srv.port}"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/", raw
    assert int(cookie["max-age"]) > 0
    return cookie.value


def _cookie(srv: AdminServer, sid: str) -> dict[str, str]:
    return {"Cookie": f"aaiti_console_{srv.port}={sid}"}


# -- session --------------------------------------------------------------------------------------
async def test_login_cookie_authorizes_reads_and_same_origin_commands(srv: AdminServer,
                                                                      backend: MemoryBackend) -> None:
    async with aiohttp.ClientSession(base_url=srv.url) as s:
        async with s.get("/console/session") as r:
            assert await r.json() == {"authenticated": False, "auth_required": True, "session_ttl_s": 28800.0}
        sid = await _login(s, srv)
        assert TOKEN not in sid
        async with s.get("/console/session", headers=_cookie(srv, sid)) as r:
            assert (await r.json())["authenticated"] is True
        async with s.get("/positions", headers=_cookie(srv, sid)) as r:
            assert r.status == 200 and (await r.json())["positions"]
        # A POST with the cookie must come from the console's own origin.
        async with s.post("/kill", headers={**_cookie(srv, sid), "Origin": _origin(srv)}) as r:
            assert r.status == 200 and (await r.json())["state"] == "HALTED"
        async with s.post("/resume", headers={**_cookie(srv, sid), "Origin": _origin(srv)}) as r:
            assert r.status == 409 and (await r.json())["error"] == "kill_switch_engaged"
        assert backend.kill_switch


@pytest.mark.parametrize(("method", "path", "headers", "status"), [
    ("POST", "/kill", {}, 401),  # no Origin: not the console
    ("POST", "/kill", {"Origin": "http://127.0.0.1:1"}, 403),  # another local port: same site, other origin
    ("POST", "/kill", {"Origin": "https://evil.example"}, 403),
    ("POST", "/kill", {"Origin": "null"}, 403),  # a sandboxed page (the backtest reports)
    ("GET", "/positions", {"Sec-Fetch-Site": "same-site"}, 401),
    ("GET", "/positions", {"Sec-Fetch-Site": "cross-site"}, 401),
    ("GET", "/positions", {"Host": "rebind.evil.example"}, 401),  # DNS rebinding never gets the cookie through
])
async def test_cookie_is_refused_outside_the_console(srv: AdminServer, backend: MemoryBackend, method: str,
                                                     path: str, headers: dict[str, str], status: int) -> None:
    async with aiohttp.ClientSession(base_url=srv.url) as s:
        sid = await _login(s, srv)
        async with s.request(method, path, headers={**_cookie(srv, sid), **headers}) as r:
            assert r.status == status, await r.text()
    assert backend.audit == []


async def test_wrong_token_logout_and_forged_cookies(srv: AdminServer, logging_setup: LoggingSetup) -> None:
    async with aiohttp.ClientSession(base_url=srv.url) as s:
        async with s.post("/console/login", headers={"Authorization": "Bearer wrong-token-000000000000"}) as r:
            assert r.status == 401 and "Set-Cookie" not in r.headers
        async with s.post("/console/login", data=b'{"token": "' + TOKEN.encode() + b'"}',
                          headers={"Content-Type": "application/json"}) as r:
            assert r.status == 401  # the token goes in the Authorization header, never in a body
        sid = await _login(s, srv)
        async with s.get("/status", headers=_cookie(srv, sid + "x")) as r:
            assert r.status == 401
        async with s.get("/status", headers={"Cookie": f"aaiti_console_1={sid}"}) as r:
            assert r.status == 401  # another port's cookie name
        async with s.post("/console/logout", headers={**_cookie(srv, sid), "Origin": _origin(srv)}) as r:
            assert r.status == 200 and "aaiti_console_" in r.headers["Set-Cookie"]
        async with s.get("/status", headers=_cookie(srv, sid)) as r:
            assert r.status == 401
    assert not [rec for rec in logging_setup.ring.records if TOKEN in str(rec)]


def test_sessions_are_bounded_and_expire() -> None:
    sessions = ConsoleSessions(max_sessions=2)
    first, second, third = sessions.issue(), sessions.issue(), sessions.issue()
    assert not sessions.valid(first) and sessions.valid(second) and sessions.valid(third)
    assert sessions.active == 2
    expired = ConsoleSessions(ttl_s=0.0)
    assert not expired.valid(expired.issue())
    assert not sessions.valid(None) and not sessions.valid("")


async def test_no_token_console_needs_no_login_but_keeps_the_origin_guard(backend: MemoryBackend) -> None:
    srv = AdminServer(backend, AdminSection(port=0), None)
    await srv.start()
    try:
        async with aiohttp.ClientSession(base_url=srv.url) as s:
            async with s.get("/console/session") as r:
                assert (await r.json())["authenticated"] is True
            async with s.post("/pause", headers={"Origin": _origin(srv)}) as r:
                assert r.status == 200  # the console's own page
            async with s.post("/kill", headers={"Origin": "http://localhost:1"}) as r:
                assert r.status == 403
            async with s.get("/", headers={"Host": f"rebind.evil.example:{srv.port}"}) as r:
                assert r.status == 403
    finally:
        await srv.stop()


# -- page and assets ------------------------------------------------------------------------------
async def test_page_and_assets_are_served_with_a_strict_csp(srv: AdminServer) -> None:
    async with aiohttp.ClientSession(base_url=srv.url) as s:
        for path, media in (("/", "text/html"), ("/console/console.js", "text/javascript"),
                            ("/console/console.css", "text/css"),
                            ("/console/lightweight-charts.js", "text/javascript")):
            async with s.get(path) as r:
                assert r.status == 200 and r.content_type == media, path
                assert r.headers["Content-Security-Policy"] == CONSOLE_CSP
                assert r.headers["X-Content-Type-Options"] == "nosniff"
                assert r.headers["X-Frame-Options"] == "DENY"
                body = await r.text()
            if path != "/console/lightweight-charts.js":
                assert not re.search(r"(src|href)=[\"']?(https?:)?//", body), path  # nothing from elsewhere
    assert "http" not in CONSOLE_CSP and "unsafe" not in CONSOLE_CSP
    # The one inline style the CSP allows by hash is the chart library's logo style, verbatim.
    assert f'innerText="{CHART_LOGO_STYLE}"' in asset_text(LIGHTWEIGHT_CHARTS_JS)
    page = asset_text("console/index.html")
    # Even without the script, the form never sends the token (its input has no name), let alone in a URL.
    assert 'method="post"' in page and re.search(r'<input id="token"[^>]*>', page)
    assert "name=" not in re.search(r'<input id="token"[^>]*>', page).group(0)  # type: ignore[union-attr]
    assert "<script>" not in page and "style=" not in page


# -- backtest reports -------------------------------------------------------------------------------
async def test_backtest_reports_are_listed_and_served_without_escaping(srv: AdminServer, config_path: Path,
                                                                      tmp_path: Path) -> None:
    async with aiohttp.ClientSession(base_url=srv.url, headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        async with s.get("/console/backtests") as r:
            assert (await r.json())["exists"] is False
        base = config_path.parent / "backtests"
        (base / "good-run").mkdir(parents=True)
        (base / "good-run" / "report.html").write_text("<html>ok</html>")
        (base / "no-report").mkdir()
        (base / ".hidden").mkdir()
        (base / ".hidden" / "report.html").write_text("<html>hidden</html>")
        secret = tmp_path / "outside"
        secret.mkdir()
        (secret / "report.html").write_text("<html>secret</html>")
        (base / "escape").symlink_to(secret, target_is_directory=True)
        async with s.get("/console/backtests") as r:
            listing = await r.json()
        assert listing["exists"] is True
        assert [rep["name"] for rep in listing["reports"]] == ["good-run"]
        async with s.get("/backtests/good-run/report.html") as r:
            assert r.status == 200 and await r.text() == "<html>ok</html>"
            assert "sandbox" in r.headers["Content-Security-Policy"]
        for path, status in (("/backtests/escape/report.html", 404), ("/backtests/.hidden/report.html", 400),
                             ("/backtests/..%2Foutside/report.html", 400), ("/backtests/no-report/report.html", 404),
                             ("/backtests/good-run/other.html", 404)):
            async with s.get(path) as r:
                assert r.status == status, (path, await r.text())
        async with s.post("/backtests/good-run/report.html") as r:
            assert r.status == 405  # read-only


# -- live state ------------------------------------------------------------------------------------
async def test_state_stream_pushes_state_and_charts_then_ends_at_shutdown(backend: MemoryBackend) -> None:
    srv = AdminServer(backend, AdminSection(port=0), TOKEN)
    await srv.start()
    stopped = False
    try:
        async with aiohttp.ClientSession(base_url=srv.url, headers={"Authorization": f"Bearer {TOKEN}"}) as s:
            async with s.get("/console/state") as r:
                doc = await r.json()
            assert doc["trading_state"] == "ACTIVE" and doc["charts"]["series"]
            assert doc["breakers"][0]["name"] == "venue" and doc["reconnects"] == {"market_data": 2}
            async with s.get("/console/state", params={"follow": "1"}) as r:
                assert r.content_type == "text/event-stream"
                assert await r.content.readuntil(b"\n\n") == b": connected\n\n"
                events = [await r.content.readuntil(b"\n\n") for _ in range(2)]
                assert [e.split(b"\n")[0] for e in events] == [b"event: state", b"event: charts"]
                state = orjson.loads(events[0].split(b"data: ", 1)[1])
                assert "charts" not in state and state["positions"]
                stopping = asyncio.create_task(srv.stop())
                rest = await r.content.read()
                await stopping
                stopped = True
                assert rest.endswith(b"event: end\ndata: {}\n\n"), rest[-200:]
    finally:
        if not stopped:
            await srv.stop()


# -- the bar ring the candle charts come from --------------------------------------------------------
async def test_bar_log_keeps_a_bounded_rising_ring_per_series() -> None:
    log = BarLog("bar_log", Channel[Bar]("bars", 8), keep=3)

    def bar(minute: int, tf: str = "1m") -> Bar:
        return Bar(symbol="XRP/ETH", ts_ms=minute * 60_000, timeframe=tf, open=1, high=2, low=0.5, close=1.5,
                   volume=10)

    for minute in range(5):
        await log.handle(bar(minute))
    await log.handle(bar(0, "5m"))
    history = log.history()
    assert history.version == 6
    assert [(s.timeframe, [b.ts_ms // 60_000 for b in s.bars]) for s in history.series] == [
        ("1m", [2, 3, 4]), ("5m", [0])]
    await log.handle(bar(0))  # a looping replay starts over: the chart's time axis must rise
    assert [b.ts_ms for b in log.history().series[0].bars] == [0]
