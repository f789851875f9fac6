"""Admin API routes: the handlers and the one route table the server registers and OpenAPI documents.

Every route declares its method, path, auth mode, query/path parameters, body type and
responses in ``ROUTES``; the server registers exactly these, rejects undeclared query
parameters (a typo such as ``?stauts=`` must not silently return everything), and
``openapi.py`` documents exactly these. Handlers only read published snapshots through
the backend or await its async queries/commands — no blocking I/O on the loop.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Collection, Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from aiohttp import web

from actors.kernel.clock import monotonic
from actors.model.orders import OPEN_STATUSES, TERMINAL_STATUSES, OrderStatus
from config.schema.ops import AdminSection
from daemon.admin.auth import BearerAuth
from daemon.admin.backend import (
    RESUME_CONFIRMATION,
    AdminBackend,
    AdminError,
    BadRequest,
    NotFound,
)
from daemon.admin.sse import LogStreams, encode_records, tail
from daemon.logging_setup import LEVELS

S = TypeVar("S", bound=msgspec.Struct)
MAX_OFFSET = 1_000_000_000
MAX_ID_LENGTH = 128
DEFAULT_LIMIT = 100
DEFAULT_TAIL = 100


class Unauthorized(AdminError):
    """Missing or wrong bearer token (401)."""

    status = 401
    code = "unauthorized"


class Forbidden(AdminError):
    """A browser-originated request (CSRF) or a foreign Host header in no-token mode (403)."""

    status = 403
    code = "forbidden"


class TooManyFollowers(AdminError):
    """Too many concurrent log streams (429)."""

    status = 429
    code = "too_many_followers"


# -- request bodies ------------------------------------------------------------------------
Reason = Annotated[str, msgspec.Meta(max_length=200, description="Why; stored in the audit log.")]


class EmptyBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """No fields; the body may be omitted."""


class CommandBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Optional reason for a command; the body may be omitted."""

    reason: Reason = ""


class ResumeBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Resume trading; lifting an engaged kill switch needs ``confirm``."""

    reason: Reason = ""
    confirm: Annotated[
        Literal["resume-after-kill"] | None,
        msgspec.Meta(description="Required (exactly this value) when the kill switch is engaged."),
    ] = None


# -- per-app context -------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class AdminContext:
    """What handlers need; one per admin server."""

    backend: AdminBackend
    settings: Callable[[], AdminSection]
    auth: BearerAuth
    streams: LogStreams
    log: Any
    openapi: bytes = b"{}"
    encoder: msgspec.json.Encoder = dataclasses.field(default_factory=lambda: msgspec.json.Encoder(enc_hook=str))
    unauthorized: int = 0
    _unauth_logged_at: float = -1e9
    _unauth_suppressed: int = 0

    def json(self, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
        """A JSON response."""
        return web.Response(body=self.encoder.encode(data), status=status, content_type="application/json",
                            headers=headers)

    def note_unauthorized(self, request: web.Request, reason: str) -> None:
        """Count a refused request; log at most once a second (a brute force must not flood the log)."""
        self.unauthorized += 1
        now = monotonic()
        if now - self._unauth_logged_at >= 1.0:
            self.log.warning("admin.unauthorized", method=request.method, path=request.path, remote=request.remote,
                             reason=reason, suppressed=self._unauth_suppressed)
            self._unauth_logged_at = now
            self._unauth_suppressed = 0
        else:
            self._unauth_suppressed += 1


CTX = web.AppKey("aaiti_admin", AdminContext)


# -- parameters ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Param:
    """A documented query or path parameter."""

    name: str
    schema: Mapping[str, Any]
    description: str
    location: Literal["query", "path"] = "query"
    required: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", MappingProxyType(dict(self.schema)))


class Query:
    """Validated access to the query string: unknown or repeated parameters are a 400."""

    def __init__(self, request: web.Request, allowed: Collection[str]) -> None:
        self._q = request.query
        keys = list(self._q.keys())
        unknown = sorted(set(keys) - set(allowed))
        if unknown:
            allowed_text = ", ".join(sorted(allowed)) or "none"
            raise BadRequest(f"unknown query parameter(s): {', '.join(unknown)} (allowed: {allowed_text})")
        repeated = sorted(k for k in set(keys) if keys.count(k) > 1)
        if repeated:
            raise BadRequest(f"query parameter(s) given more than once: {', '.join(repeated)}")

    def text(self, name: str, max_length: int = MAX_ID_LENGTH) -> str | None:
        """A non-empty string, or None when absent."""
        value = self._q.get(name)
        if value is None:
            return None
        if not value or len(value) > max_length or not value.isprintable():
            raise BadRequest(f"{name}: expected 1..{max_length} printable characters, got {value[:40]!r}")
        return value

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        """An integer in [lo, hi]."""
        raw = self._q.get(name)
        if raw is None:
            return default
        try:
            value = int(raw, 10)
        except ValueError:
            raise BadRequest(f"{name}: expected an integer {lo}..{hi}, got {raw[:40]!r}") from None
        if not lo <= value <= hi:
            raise BadRequest(f"{name}: expected an integer {lo}..{hi}, got {value}")
        return value

    def flag(self, name: str) -> bool:
        """A boolean: 1/true/yes or 0/false/no (absent: False)."""
        raw = self._q.get(name)
        if raw is None:
            return False
        low = raw.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
        raise BadRequest(f"{name}: expected 1/true/yes or 0/false/no, got {raw[:40]!r}")

    def choice(self, name: str, choices: Collection[str]) -> str | None:
        """One of ``choices`` (case-insensitive), or None when absent."""
        raw = self._q.get(name)
        if raw is None:
            return None
        if raw.lower() not in choices:
            raise BadRequest(f"{name}: expected one of {', '.join(choices)}, got {raw[:40]!r}")
        return raw.lower()


def path_id(request: web.Request, name: str) -> str:
    """A path parameter: 1..128 printable characters."""
    value = request.match_info[name]
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable():
        raise BadRequest(f"{name}: expected 1..{MAX_ID_LENGTH} printable characters")
    return value


async def read_body(request: web.Request, body_type: type[S]) -> S:
    """Decode the JSON body as ``body_type`` (an empty body is ``{}``)."""
    raw = await request.read()
    if not raw.strip():
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"invalid body: {exc}") from None
    except msgspec.DecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None


def _paging(q: Query, ctx: AdminContext) -> tuple[int, int]:
    limit = q.integer("limit", DEFAULT_LIMIT, 1, ctx.settings().max_page_size)
    offset = q.integer("offset", 0, 0, MAX_OFFSET)
    return limit, offset


def _statuses(raw: str | None) -> frozenset[OrderStatus] | None:
    if raw is None:
        return None
    out: set[OrderStatus] = set()
    for part in raw.split(","):
        token = part.strip().upper()
        if token == "OPEN":
            out |= OPEN_STATUSES
        elif token == "TERMINAL":
            out |= TERMINAL_STATUSES
        elif token in OrderStatus.__members__:
            out.add(OrderStatus[token])
        else:
            valid = ", ".join(["open", "terminal", *(s.value for s in OrderStatus)])
            raise BadRequest(f"status: unknown status {part.strip()[:40]!r} (valid: {valid})")
    return frozenset(out)


def _page(key: str, items: Any, limit: int, offset: int) -> dict[str, Any]:
    rows = list(items)
    return {key: rows, "count": len(rows), "limit": limit, "offset": offset}


def _reason(body_reason: str, request: web.Request) -> str:
    return body_reason or f"admin: {request.method} {request.path}"


# -- handlers -------------------------------------------------------------------------------
Handler = Callable[[web.Request, AdminContext, Query], Awaitable[web.StreamResponse]]


async def get_healthz(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Liveness: the process and its event loop answer. The watchdog verdict is included."""
    v = ctx.backend.health()
    return ctx.json({"status": "alive", "health": v.status, "reasons": list(v.reasons)})


async def get_readyz(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Readiness: 200 when ready, 503 with the reasons otherwise."""
    ok, reasons = ctx.backend.readiness()
    if ok:
        return ctx.json({"ready": True, "reasons": []})
    reasons = list(reasons) or ["not ready"]
    return ctx.json({"error": "not_ready", "message": "; ".join(reasons), "ready": False, "reasons": reasons},
                    status=503)


async def get_metrics(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Prometheus exposition (cached and rendered in slices by the metrics object)."""
    body = await ctx.backend.metrics_exposition()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def get_status(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Daemon overview."""
    return ctx.json(ctx.backend.status())


async def get_orders(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Orders, newest first."""
    statuses = _statuses(q.text("status", 400))
    symbol, strategy = q.text("symbol"), q.text("strategy")
    limit, offset = _paging(q, ctx)
    rows = await ctx.backend.orders(statuses=statuses, symbol=symbol, strategy=strategy, limit=limit, offset=offset)
    return ctx.json(_page("orders", rows, limit, offset))


async def get_order(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """One order and its event history: ``{"order": ..., "events": [...]}``."""
    coid = path_id(request, "client_order_id")
    rec = await ctx.backend.order(coid)
    if rec is None:
        raise NotFound(f"no order with client_order_id {coid!r}")
    return ctx.json(rec)


async def get_fills(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Fills in store order."""
    coid, symbol = q.text("client_order_id"), q.text("symbol")
    limit, offset = _paging(q, ctx)
    rows = await ctx.backend.fills(client_order_id=coid, symbol=symbol, limit=limit, offset=offset)
    return ctx.json(_page("fills", rows, limit, offset))


async def get_positions(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Positions per symbol."""
    return ctx.json({"positions": list(ctx.backend.positions())})


async def get_balances(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Balances per asset."""
    return ctx.json({"balances": list(ctx.backend.balances())})


async def get_risk(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Risk limits and usage."""
    return ctx.json(ctx.backend.risk())


async def get_risk_events(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Risk denials, newest first."""
    reason = q.text("reason")
    limit, offset = _paging(q, ctx)
    rows = await ctx.backend.risk_events(reason=reason, limit=limit, offset=offset)
    return ctx.json(_page("events", rows, limit, offset))


async def get_config(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """The running config (secrets redacted)."""
    return ctx.json(ctx.backend.config_view())


async def get_logs(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Recent log records, or a live stream with ``follow=1``."""
    settings = ctx.settings()
    level = q.choice("level", tuple(LEVELS))
    logger = q.text("logger")
    n = q.integer("n", DEFAULT_TAIL, 0, settings.log_tail_max)
    if q.flag("follow"):
        if ctx.streams.active >= settings.sse_max_followers:
            raise TooManyFollowers(f"{ctx.streams.active} log streams are open (admin.sse_max_followers)")
        return await ctx.streams.serve(request, backlog=n, level=level, logger=logger,
                                       keepalive_s=settings.sse_keepalive_s)
    records = await tail(ctx.backend.log_ring, n, level, logger)
    parts = await encode_records(records)
    body = b'{"count":%d,"records":[%s]}' % (len(parts), b",".join(parts))
    return web.Response(body=body, content_type="application/json")


async def post_reload(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Reload the config file; 409 with the reasons when it is invalid or needs a restart."""
    await read_body(request, EmptyBody)
    result = await ctx.backend.reload_config("api")
    data = result.as_dict()
    if result.ok:
        return ctx.json(data)
    message = "; ".join(result.errors) or result.result
    return ctx.json({"error": result.result, "message": message, **data}, status=409)


async def post_pause(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Pause trading."""
    body = await read_body(request, CommandBody)
    return ctx.json(await ctx.backend.pause(_reason(body.reason, request)))


async def post_resume(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Resume trading (confirmation needed after a kill)."""
    body = await read_body(request, ResumeBody)
    confirmed = body.confirm == RESUME_CONFIRMATION
    return ctx.json(await ctx.backend.resume(_reason(body.reason, request), confirmed))


async def post_kill(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Engage the kill switch."""
    body = await read_body(request, CommandBody)
    return ctx.json(await ctx.backend.kill(_reason(body.reason, request)))


async def post_cancel(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Request a cancel of one order."""
    coid = path_id(request, "client_order_id")
    body = await read_body(request, CommandBody)
    if not await ctx.backend.cancel_order(coid, _reason(body.reason, request)):
        raise NotFound(f"no order with client_order_id {coid!r}")
    return ctx.json({"client_order_id": coid, "cancel_requested": True}, status=202)


async def post_strategy_stop(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Stop a strategy instance."""
    name = path_id(request, "name")
    await read_body(request, EmptyBody)
    if not await ctx.backend.strategy_stop(name):
        raise NotFound(f"no strategy named {name!r}")
    return ctx.json({"strategy": name, "action": "stop", "accepted": True})


async def post_strategy_start(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Start a stopped strategy instance."""
    name = path_id(request, "name")
    await read_body(request, EmptyBody)
    if not await ctx.backend.strategy_start(name):
        raise NotFound(f"no strategy named {name!r}")
    return ctx.json({"strategy": name, "action": "start", "accepted": True})


async def get_openapi(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """This API's OpenAPI document."""
    return web.Response(body=ctx.openapi, content_type="application/json")


# -- the route table ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Response:
    """A documented response: description and a schema name in ``components.schemas`` (None: no body)."""

    description: str
    schema: str | None = "Error"
    content_types: tuple[str, ...] = ("application/json",)
    events: str = "Events 'log' (data: one LogRecord as JSON) and 'end'."
    """What a text/event-stream answer carries (documented when ``content_types`` has one)."""


@dataclasses.dataclass(frozen=True)
class Route:
    """One endpoint: what the server registers and what OpenAPI documents."""

    method: Literal["GET", "POST"]
    path: str
    handler: Handler
    operation_id: str
    summary: str
    tag: str
    auth: Literal["public", "token", "metrics"] = "token"
    params: tuple[Param, ...] = ()
    body: type[msgspec.Struct] | None = None
    responses: Mapping[int, Response] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "responses", MappingProxyType(dict(self.responses)))

    @property
    def query_names(self) -> frozenset[str]:
        """Declared query parameter names."""
        return frozenset(p.name for p in self.params if p.location == "query")


_LIMIT = Param("limit", {"type": "integer", "minimum": 1, "default": DEFAULT_LIMIT},
               "Page size (at most admin.max_page_size).")
_OFFSET = Param("offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
                "Rows to skip.")
_SYMBOL = Param("symbol", {"type": "string", "maxLength": MAX_ID_LENGTH}, "Unified symbol, e.g. BTC/USDT.")
_COID = Param("client_order_id", {"type": "string", "maxLength": MAX_ID_LENGTH}, "Our client order id.",
              "path", True)
_NAME = Param("name", {"type": "string", "maxLength": MAX_ID_LENGTH}, "Strategy instance name.", "path", True)
_BAD = Response("Invalid parameter or body.")
_NOT_FOUND = Response("No such object.")


def _ok(schema: str, description: str = "OK") -> Mapping[int, Response]:
    return {200: Response(description, schema)}


ROUTES: tuple[Route, ...] = (
    Route("GET", "/healthz", get_healthz, "getHealthz", "Liveness (no auth); includes the watchdog verdict.",
          "probes", "public", responses=_ok("Health")),
    Route("GET", "/readyz", get_readyz, "getReadyz", "Readiness (no auth): 503 with reasons until ready.",
          "probes", "public",
          responses={200: Response("Ready.", "Readiness"), 503: Response("Not ready.", "NotReady")}),
    Route("GET", "/metrics", get_metrics, "getMetrics",
          "Prometheus metrics (token required unless admin.metrics_public).", "observability", "metrics",
          responses={200: Response("Exposition format 0.0.4.", "MetricsText", ("text/plain",))}),
    Route("GET", "/status", get_status, "getStatus", "Daemon overview.", "state", responses=_ok("Status")),
    Route("GET", "/orders", get_orders, "listOrders", "Orders, newest first.", "orders",
          params=(
              Param("status", {"type": "string"},
                    "Comma-separated statuses, or 'open' / 'terminal' (case-insensitive)."),
              _SYMBOL,
              Param("strategy", {"type": "string", "maxLength": MAX_ID_LENGTH}, "Strategy instance name."),
              _LIMIT, _OFFSET,
          ),
          responses={200: Response("A page of orders.", "OrderPage"), 400: _BAD}),
    Route("GET", "/orders/{client_order_id}", get_order, "getOrder", "One order with its event history.",
          "orders", params=(_COID,),
          responses={200: Response("The order and its event history.", "OrderDetail"), 400: _BAD,
                     404: _NOT_FOUND}),
    Route("GET", "/fills", get_fills, "listFills", "Fills in the order they were stored.", "orders",
          params=(Param("client_order_id", {"type": "string", "maxLength": MAX_ID_LENGTH}, "Fills of one order."),
                  _SYMBOL, _LIMIT, _OFFSET),
          responses={200: Response("A page of fills.", "FillPage"), 400: _BAD}),
    Route("GET", "/positions", get_positions, "listPositions", "Positions per symbol.", "state",
          responses=_ok("Positions")),
    Route("GET", "/balances", get_balances, "listBalances", "Balances per asset.", "state",
          responses=_ok("Balances")),
    Route("GET", "/risk", get_risk, "getRisk", "Trading state, kill switch, limits and usage.", "risk",
          responses=_ok("Risk")),
    Route("GET", "/risk/events", get_risk_events, "listRiskEvents", "Risk denials, newest first.", "risk",
          params=(Param("reason", {"type": "string", "maxLength": MAX_ID_LENGTH}, "Reason code."), _LIMIT, _OFFSET),
          responses={200: Response("A page of risk events.", "RiskEventPage"), 400: _BAD}),
    Route("GET", "/config", get_config, "getConfig", "Running config (secrets redacted), version, load time.",
          "config", responses=_ok("ConfigView")),
    Route("GET", "/logs", get_logs, "getLogs",
          "Recent log records; with follow=1 a Server-Sent Events stream of new records.", "observability",
          params=(
              Param("n", {"type": "integer", "minimum": 0, "default": DEFAULT_TAIL},
                    "Records (newest last; with follow: backlog sent first). At most admin.log_tail_max."),
              Param("level", {"type": "string", "enum": list(LEVELS)}, "Minimum level."),
              Param("logger", {"type": "string", "maxLength": MAX_ID_LENGTH}, "Only records of this actor/logger."),
              Param("follow", {"type": "boolean", "default": False}, "Stream new records (text/event-stream)."),
          ),
          responses={200: Response("Records (JSON), or an event stream with follow=1.", "LogTail",
                                  ("application/json", "text/event-stream")), 400: _BAD,
                     429: Response("Too many open log streams.")}),
    Route("POST", "/reload", post_reload, "reloadConfig", "Reload the config file (hot fields only).", "config",
          body=EmptyBody,
          responses={200: Response("Applied or unchanged.", "ReloadResult"), 400: _BAD,
                     409: Response("Invalid file or restart-required change; running config kept.",
                                   "ReloadRefused")}),
    Route("POST", "/pause", post_pause, "pauseTrading", "Pause trading.", "trading", body=CommandBody,
          responses={200: Response("New trading state.", "TradingState"), 400: _BAD,
                     409: Response("Kill switch engaged: resume with confirmation first.")}),
    Route("POST", "/resume", post_resume, "resumeTrading",
          f"Resume trading. After a kill the body must say {{\"confirm\": \"{RESUME_CONFIRMATION}\"}}.", "trading",
          body=ResumeBody,
          responses={200: Response("New trading state.", "TradingState"), 400: _BAD,
                     409: Response("Kill switch engaged and not confirmed.")}),
    Route("POST", "/kill", post_kill, "killTrading", "Engage the kill switch (HALTED, persisted).", "trading",
          body=CommandBody, responses={200: Response("New trading state.", "TradingState"), 400: _BAD}),
    Route("POST", "/orders/{client_order_id}/cancel", post_cancel, "cancelOrder", "Request a cancel.", "orders",
          params=(_COID,), body=CommandBody,
          responses={202: Response("Cancel requested.", "CancelAccepted"), 400: _BAD, 404: _NOT_FOUND,
                     409: Response("The order is already finished.")}),
    Route("POST", "/strategies/{name}/stop", post_strategy_stop, "stopStrategy", "Stop a strategy instance.",
          "strategies", params=(_NAME,), body=EmptyBody,
          responses={200: Response("Accepted.", "StrategyCommand"), 400: _BAD, 404: _NOT_FOUND}),
    Route("POST", "/strategies/{name}/start", post_strategy_start, "startStrategy", "Start a strategy instance.",
          "strategies", params=(_NAME,), body=EmptyBody,
          responses={200: Response("Accepted.", "StrategyCommand"), 400: _BAD, 404: _NOT_FOUND}),
    Route("GET", "/openapi.json", get_openapi, "getOpenapi", "This document.", "meta", "public",
          responses=_ok("OpenApiDocument")),
)

# Responses every route may give (documented once per operation by openapi.py). The public
# probes skip PUBLIC_EXEMPT: they need no token and never wait for the state store.
COMMON_RESPONSES: Mapping[int, Response] = MappingProxyType({
    401: Response("Missing or invalid bearer token."),
    403: Response("A browser cross-origin request, or a foreign Host header while no token is configured."),
    500: Response("Internal error (details in the daemon log)."),
    503: Response("The daemon cannot answer yet (e.g. the state store is still opening at start-up); retry."),
})
PUBLIC_EXEMPT = frozenset({401, 503})
# Responses every route that reads a JSON body may give.
BODY_RESPONSES: Mapping[int, Response] = MappingProxyType({
    413: Response("Request body larger than admin.max_body_bytes."),
})

