"""The embedded admin HTTP server: aiohttp on the daemon's own event loop (API and web console).

``AdminServer(backend, section, token)`` → ``await start()`` returns the bound
``(host, port)`` (port 0 in the config picks a free one; the log event
``admin.listening`` has both) → ``await stop()`` closes the listener, ends the live log
streams and waits for in-flight requests (bounded).

Errors are always ``{"error": <code>, "message": <text>}``: 400 bad parameters or body
(or a request aiohttp cannot parse, e.g. an over-long request line: ``transport.py``),
401 missing/wrong token, 403 browser-originated request (CSRF / DNS rebinding guard),
404 unknown object or route, 405 wrong method, 409 conflict, 413 body too large, 429 too
many log streams, 500 internal (details only in the log), 503 not ready to answer yet.
POST commands are logged (``admin.command``) with their outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler as AiohttpHandler

from actors.kernel.clock import perf_s
from config.schema.ops import AdminSection
from daemon.admin.auth import AdminConfigError, BearerAuth, check_bind, is_loopback
from daemon.admin.backend import AdminBackend, AdminError
from daemon.admin.console import ALL_ROUTES, CONSOLE, ConsoleRuntime
from daemon.admin.console_session import same_origin
from daemon.admin.openapi import build_openapi
from daemon.admin.routes import CTX, AdminContext, Forbidden, Query, Route, Unauthorized
from daemon.admin.sse import LogStreams
from daemon.admin.transport import AdminRunner

SHUTDOWN_TIMEOUT_S = 2.0
_HTTP_CODES: Mapping[int, str] = MappingProxyType({
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
})


class AdminBindError(AdminConfigError):
    """The admin server could not listen on the configured address."""


def _wrap(route: Route) -> AiohttpHandler:
    allowed = route.query_names

    async def handler(request: web.Request) -> web.StreamResponse:
        ctx = request.app[CTX]
        _check_origin(request, ctx)
        if route.auth == "token" or (route.auth == "metrics" and not ctx.settings().metrics_public):
            authorization = request.headers.get("Authorization")
            problem = ctx.auth.check(authorization)
            if problem is not None and authorization is None and request.app[CONSOLE].sessions.session_of(request):
                problem = None  # the web console's session cookie (console_session.py)
            if problem is not None:
                ctx.note_unauthorized(request, problem)
                raise Unauthorized(problem)
        return await route.handler(request, ctx, Query(request, allowed))

    handler.__name__ = handler.__qualname__ = route.operation_id
    return handler


def _check_origin(request: web.Request, ctx: AdminContext) -> None:
    """Refuse what only a browser would send, so a web page cannot drive the API.

    Browsers add ``Origin`` to every cross-site POST (a form or ``fetch`` needs no CORS
    preflight for "simple" requests); the CLI, curl and Prometheus never do. The one
    browser origin allowed is this server's own on a loopback name: the web console's
    pages (``console_session.same_origin``). Without a token, a Host header that is not
    a loopback name is refused too (DNS rebinding: a page on evil.example resolving to
    127.0.0.1 is "same-origin" for the browser).
    """
    if request.method == "POST" and "Origin" in request.headers and not same_origin(request):
        raise Forbidden("browser cross-origin requests are refused; use the aaiti CLI or an API client")
    if not ctx.auth.required and not is_loopback(request.url.host or ""):
        raise Forbidden(f"Host {request.host!r} is not a loopback name and no admin token is configured")


def _http_message(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return f"{request.method} is not allowed on {request.path} (allowed: {', '.join(sorted(exc.allowed_methods))})"
    if isinstance(exc, web.HTTPNotFound):
        return f"no route {request.method} {request.path}"
    return exc.reason


@web.middleware
async def _errors(request: web.Request, handler: AiohttpHandler) -> web.StreamResponse:
    ctx = request.app[CTX]
    t0 = perf_s()
    status = 500
    try:
        resp = await handler(request)
        status = resp.status
        return resp
    except AdminError as exc:
        status = exc.status
        headers = {"WWW-Authenticate": 'Bearer realm="aaiti"'} if exc.status == 401 else None
        return ctx.json({**exc.details, "error": exc.code, "message": exc.message}, exc.status, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        status = exc.status
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        code = _HTTP_CODES.get(exc.status, "http_error")
        return ctx.json({"error": code, "message": _http_message(request, exc)}, exc.status, headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception as exc:
        ctx.log.error("admin.handler_failed", method=request.method, path=request.path, error=repr(exc),
                      exc_info=True)
        return ctx.json({"error": "internal", "message": "internal error; see the daemon log"}, 500)
    finally:
        if request.method == "POST":
            ctx.log.info("admin.command", method=request.method, path=request.path, status=status,
                         remote=request.remote, duration_ms=round((perf_s() - t0) * 1000, 2))


def build_app(ctx: AdminContext, client_max_size: int = 65_536) -> web.Application:
    """The aiohttp application with every route of ``ALL_ROUTES`` (API and console) and the JSON error middleware."""
    app = web.Application(middlewares=[_errors], client_max_size=client_max_size)
    app[CTX] = ctx
    app[CONSOLE] = ConsoleRuntime(ctx.backend)
    for route in ALL_ROUTES:
        app.router.add_route(route.method, route.path, _wrap(route))
    ctx.openapi = orjson.dumps(build_openapi(ALL_ROUTES))
    return app


class AdminServer:
    """The admin API on the running loop.

    ``section`` is the admin config section, or a callable returning the current one (so
    hot-reloadable fields such as ``metrics_public`` follow config reloads). ``token`` is
    the resolved bearer token (``auth.resolve_token``) or None; a non-loopback host
    without a token raises ``InsecureBindError`` here, before anything is bound.
    """

    def __init__(
        self, backend: AdminBackend, section: AdminSection | Callable[[], AdminSection], token: str | None
    ) -> None:
        self._settings: Callable[[], AdminSection] = section if callable(section) else (lambda: section)
        settings = self._settings()
        check_bind(settings.host, token)
        self.host = settings.host
        self.requested_port = settings.port
        self.log: Any = structlog.get_logger("aaiti").bind(actor="admin")
        self.ctx = AdminContext(backend, self._settings, BearerAuth(token), LogStreams(backend.log_ring), self.log)
        self.app = build_app(self.ctx, client_max_size=settings.max_body_bytes)
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    @property
    def port(self) -> int:
        """The bound port (after ``start()``)."""
        if self.address is None:
            raise RuntimeError("admin server not started")
        return self.address[1]

    @property
    def url(self) -> str:
        """Base URL of the bound server (after ``start()``)."""
        if self.address is None:
            raise RuntimeError("admin server not started")
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> tuple[str, int]:
        """Bind and serve; return the bound (host, port). Raises ``AdminBindError`` if the bind fails."""
        if self._runner is not None:
            raise RuntimeError("admin server already started")
        runner = AdminRunner(self.app, log=self.log, access_log=None, handle_signals=False,
                             shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise AdminBindError(
                f"cannot bind the admin API to {self.host}:{self.requested_port}: {exc.strerror or exc}"
            ) from exc
        self._runner = runner
        bound = runner.addresses[0]
        self.address = (str(bound[0]), int(bound[1]))
        host, port = self.address
        auth = "token" if self.ctx.auth.required else "none"
        self.log.info("admin.listening", host=host, port=port, auth=auth, url=self.url)
        if auth == "none":
            self.log.warning("admin.no_token", host=host,
                             detail="no admin token configured: every local client may use the admin API")
        return self.address

    async def stop(self) -> None:
        """End live log streams, stop listening and wait (bounded) for in-flight requests."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self.ctx.streams.close_all()
        self.app[CONSOLE].close()
        await runner.cleanup()
        self.log.info("admin.stopped")
