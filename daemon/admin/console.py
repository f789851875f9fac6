"""The operator's web console: the page at ``/``, its static assets, login, live state, backtest reports.

Everything is served from the package (``daemon/web/console/``, the vendored chart library);
the page loads nothing from elsewhere and its Content-Security-Policy forbids other origins.
The routes live in ``CONSOLE_ROUTES``, registered and documented exactly like the API's
(``ALL_ROUTES`` = API + contingent orders + console), so they pass through the same origin / DNS-rebinding
guards and error handling. The console authenticates with a session cookie obtained once
with the bearer token (``console_session``); ``GET /console/state?follow=1`` streams the
state as Server-Sent Events (``event: state`` every ``STREAM_INTERVAL_S``, ``event: charts``
when the candles, fills or price levels changed, ``event: end`` at shutdown).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from actors.kernel.clock import monotonic
from daemon.admin.backend import AdminBackend, AdminError, BadRequest, NotFound
from daemon.admin.console_session import ConsoleSessions, cookie_name
from daemon.admin.console_state import ConsoleStateCache, build_charts, build_state
from daemon.admin.routes import (
    ROUTES,
    AdminContext,
    EmptyBody,
    Param,
    Query,
    Response,
    Route,
    TooManyFollowers,
    path_id,
    read_body,
)
from daemon.admin.routes_contingent import CONTINGENT_ROUTES
from daemon.web import LIGHTWEIGHT_CHARTS_JS, asset_text

STREAM_INTERVAL_S = 0.75  # with the cache's 0.25 s, what the page shows is at most 1 s old
MAX_REPORTS = 200
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# The chart library's attribution logo styles itself with this one <style> element; the CSP
# allows exactly it by hash instead of allowing inline styles in general.
CHART_LOGO_STYLE = (
    "a#tv-attr-logo{--fill:#131722;--stroke:#fff;position:absolute;left:10px;bottom:10px;height:19px;"
    "width:35px;margin:0;padding:0;border:0;z-index:3;}a#tv-attr-logo[data-dark]{--fill:#D1D4DC;"
    "--stroke:#131722;}"
)
_LOGO_HASH = base64.b64encode(hashlib.sha256(CHART_LOGO_STYLE.encode()).digest()).decode()
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; "
    f"style-src 'self' 'sha256-{_LOGO_HASH}'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Reports are aaiti's own self-contained HTML (inline script and style), served sandboxed: an
# opaque origin that can neither read the console's cookie nor call the admin API.
REPORT_CSP = (
    "sandbox allow-scripts allow-popups; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONSOLE_CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# URL path -> (asset below daemon/web, content type)
ASSETS: dict[str, tuple[str, str]] = {
    "/": ("console/index.html", "text/html"),
    "/console/console.js": ("console/console.js", "text/javascript"),
    "/console/console.css": ("console/console.css", "text/css"),
    "/console/lightweight-charts.js": (LIGHTWEIGHT_CHARTS_JS, "text/javascript"),
}


class ConsoleRuntime:
    """Per-server console state: sessions, the shared state cache, the page's assets, live streams."""

    def __init__(self, backend: AdminBackend) -> None:
        self.backend = backend
        self.sessions = ConsoleSessions()
        self.cache = ConsoleStateCache(backend, max_age_s=0.25)
        # Read once when the server is built, never from a request handler.
        self.assets = {path: asset_text(name).encode() for path, (name, _) in ASSETS.items()}
        self.streams = 0
        self.closing = False
        self._closed = asyncio.Event()

    def close(self) -> None:
        """Tell every live state stream to finish (server shutdown)."""
        self.closing = True
        self._closed.set()

    async def wait_closed(self, timeout_s: float) -> None:
        """Sleep ``timeout_s`` or until ``close()``, whichever comes first."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._closed.wait()
        except TimeoutError:
            pass


CONSOLE = web.AppKey("aaiti_console", ConsoleRuntime)


def _runtime(request: web.Request) -> ConsoleRuntime:
    return request.app[CONSOLE]


# -- handlers ------------------------------------------------------------------------------
async def get_asset(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """The console page or one of its scripts / style sheets."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else request.path
    _, content_type = ASSETS[path]
    return web.Response(body=_runtime(request).assets[path], content_type=content_type, charset="utf-8",
                        headers=_PAGE_HEADERS)


def _session_view(request: web.Request, ctx: AdminContext, authenticated: bool) -> dict[str, Any]:
    sessions = _runtime(request).sessions
    return {"authenticated": authenticated, "auth_required": ctx.auth.required, "session_ttl_s": sessions.ttl_s}


async def get_session(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Whether this browser is logged in (the page shows the login form or the console)."""
    # The cookie only: a public route must not tell a token guesser which guess was right.
    authenticated = not ctx.auth.required or _runtime(request).sessions.session_of(request) is not None
    return ctx.json(_session_view(request, ctx, authenticated))


async def post_login(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Exchange the bearer token (``Authorization`` header, checked by the server) for a session cookie."""
    await read_body(request, EmptyBody)
    resp = ctx.json(_session_view(request, ctx, True))
    if ctx.auth.required and "Authorization" in request.headers:
        sessions = _runtime(request).sessions
        resp.set_cookie(cookie_name(request), sessions.issue(), max_age=int(sessions.ttl_s), path="/",
                        httponly=True, samesite="Strict")
    resp.headers["Cache-Control"] = "no-store"
    return resp


async def post_logout(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """End this browser's session and clear its cookie."""
    await read_body(request, EmptyBody)
    name = cookie_name(request)
    _runtime(request).sessions.revoke(request.cookies.get(name))
    resp = ctx.json(_session_view(request, ctx, not ctx.auth.required))
    resp.del_cookie(name, path="/")
    return resp


async def get_state(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """The console's state (fresh), or with ``follow=1`` a stream of it."""
    if q.flag("follow"):
        return await _stream(request, ctx)
    state = await build_state(ctx.backend)
    charts = await build_charts(ctx.backend, state["open_orders"])
    return ctx.json({**state, "charts": charts})


async def _stream(request: web.Request, ctx: AdminContext) -> web.StreamResponse:
    runtime = _runtime(request)
    limit = ctx.settings().sse_max_followers
    if runtime.streams >= limit:
        raise TooManyFollowers(f"{runtime.streams} console streams are open (admin.sse_max_followers)")
    # A stream opened with the cookie ends when that session does (logout, expiry).
    session = None if "Authorization" in request.headers else runtime.sessions.session_of(request)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                       "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    runtime.streams += 1
    last_charts = b""
    try:
        await resp.prepare(request)
        await resp.write(b": connected\n\n")
        while not runtime.closing:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            if session is not None and not runtime.sessions.valid(session):
                await resp.write(b'event: end\ndata: {"reason": "session ended"}\n\n')
                break
            started = monotonic()
            try:
                state, charts = await runtime.cache.get()
                await resp.write(b"event: state\ndata: %s\n\n" % ctx.encoder.encode(state))
                encoded = ctx.encoder.encode(charts)
                if encoded != last_charts:
                    await resp.write(b"event: charts\ndata: %s\n\n" % encoded)
                    last_charts = encoded
            except AdminError as exc:
                error = ctx.encoder.encode({"error": exc.code, "message": exc.message})
                await resp.write(b"event: problem\ndata: %s\n\n" % error)
            await runtime.wait_closed(max(0.0, STREAM_INTERVAL_S - (monotonic() - started)))
        if runtime.closing:
            await resp.write(b"event: end\ndata: {}\n\n")
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        runtime.streams -= 1
    return resp


def _report_file(base: Path, run: str) -> Path | None:
    """The report of ``run`` if it is a regular file inside ``base`` (symlinks out of it refused)."""
    try:
        root = base.resolve()
        path = (root / run / "report.html").resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
    except OSError:  # unreadable directory, symlink loop: nothing to serve
        return None
    return path


def _scan_reports(base: Path) -> list[dict[str, Any]]:
    """``base/*/report.html`` newest first (runs in a worker thread: it touches the disk)."""
    found: list[tuple[float, str, int]] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return []
    for entry in entries:
        report = _report_file(base, entry.name) if RUN_NAME.match(entry.name) else None
        if report is None:
            continue  # only what get_backtest_report would serve is listed
        try:
            st = report.stat()
        except OSError:
            continue
        found.append((st.st_mtime, entry.name, st.st_size))
    found.sort(reverse=True)
    return [{"name": name, "url": f"/backtests/{name}/report.html", "modified_ms": int(mtime * 1000),
             "size": size} for mtime, name, size in found[:MAX_REPORTS]]


async def get_backtests(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Backtest reports found in the backtests directory next to the config."""
    base = ctx.backend.backtests_dir()
    exists = base is not None and await asyncio.to_thread(base.is_dir)
    reports = await asyncio.to_thread(_scan_reports, base) if base is not None and exists else []
    return ctx.json({"directory": str(base) if base is not None else None, "exists": exists, "reports": reports})




async def get_backtest_report(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """One backtest report, read-only and sandboxed."""
    run = path_id(request, "run")
    if not RUN_NAME.match(run):
        raise BadRequest("run: expected a directory name of letters, digits, '.', '_' or '-' (not starting "
                         "with '.')")
    base = ctx.backend.backtests_dir()
    path = await asyncio.to_thread(_report_file, base, run) if base is not None else None
    if path is None:
        raise NotFound(f"no backtest report {run!r}")
    return web.FileResponse(path, headers={
        "Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": REPORT_CSP,
        "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


# -- the route table -------------------------------------------------------------------------
_BAD = Response("Invalid parameter or body.")
_FOLLOW = Param("follow", {"type": "boolean", "default": False},
                "Stream the state (text/event-stream) instead of answering once.")
_RUN = Param("run", {"type": "string", "pattern": RUN_NAME.pattern, "maxLength": 128},
             "Backtest run: a directory of backtests/ holding report.html.", "path", True)
_STATE_EVENTS = ("Events 'state' (data: ConsoleState without charts) at least every second, 'charts' "
                 "(data: ConsoleCharts) when they changed, 'problem' (data: Error; the state could not be "
                 "built), 'end' at shutdown or logout.")

CONSOLE_ROUTES: tuple[Route, ...] = (
    Route("GET", "/", get_asset, "getConsolePage", "The web console (HTML; logs in with the bearer token).",
          "console", "public", responses={200: Response("The console page.", "HtmlPage", ("text/html",))}),
    Route("GET", "/console/console.js", get_asset, "getConsoleScript", "The console's script.", "console",
          "public", responses={200: Response("JavaScript.", "JavaScript", ("text/javascript",))}),
    Route("GET", "/console/console.css", get_asset, "getConsoleStyle", "The console's style sheet.", "console",
          "public", responses={200: Response("CSS.", "Stylesheet", ("text/css",))}),
    Route("GET", "/console/lightweight-charts.js", get_asset, "getConsoleChartLibrary",
          "The vendored chart library (TradingView Lightweight Charts).", "console", "public",
          responses={200: Response("JavaScript.", "JavaScript", ("text/javascript",))}),
    Route("GET", "/console/session", get_session, "getConsoleSession",
          "Whether this browser holds a console session (or needs none).", "console", "public",
          responses={200: Response("Session state.", "ConsoleSession")}),
    Route("POST", "/console/login", post_login, "consoleLogin",
          "Exchange the bearer token (Authorization header) for an HttpOnly SameSite=Strict session cookie.",
          "console", body=EmptyBody,
          responses={200: Response("Logged in; Set-Cookie carries the session.", "ConsoleSession"), 400: _BAD}),
    Route("POST", "/console/logout", post_logout, "consoleLogout", "End the console session.", "console",
          body=EmptyBody, responses={200: Response("Logged out; the cookie is cleared.", "ConsoleSession"),
                                     400: _BAD}),
    Route("GET", "/console/state", get_state, "getConsoleState",
          "Everything the console shows; with follow=1 a Server-Sent Events stream of it.", "console",
          params=(_FOLLOW,),
          responses={200: Response("The state (JSON), or an event stream with follow=1.", "ConsoleState",
                                   ("application/json", "text/event-stream"), _STATE_EVENTS),
                     400: _BAD, 429: Response("Too many open console streams.")}),
    Route("GET", "/console/backtests", get_backtests, "listBacktestReports",
          "Backtest reports (backtests/*/report.html next to the config), newest first.", "console",
          responses={200: Response("The reports.", "BacktestReports")}),
    Route("GET", "/backtests/{run}/report.html", get_backtest_report, "getBacktestReport",
          "One backtest report (read-only, sandboxed HTML).", "console", params=(_RUN,),
          responses={200: Response("The report.", "HtmlPage", ("text/html",)), 400: _BAD,
                     404: Response("No such report.")}),
)

ALL_ROUTES: tuple[Route, ...] = (*ROUTES, *CONTINGENT_ROUTES, *CONSOLE_ROUTES)
"""What the admin server registers and ``/openapi.json`` documents: the API (with its contingent-order
routes, ``routes_contingent``) and the console."""
