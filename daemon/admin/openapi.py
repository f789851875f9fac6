"""The OpenAPI 3.1 document of the admin API, built from the route table (served at /openapi.json).

Paths, methods, parameters, request bodies and security come from ``console.ALL_ROUTES``
(the API's ``routes.ROUTES`` and the web console's routes) — the same table the server
registers — so the document cannot list a route the server lacks or miss one it has (a
test checks both directions against the live router).
Request bodies and kernel types (``ReloadResult``, ``ChildStatus``, ``ChannelStats``,
``ConfigView``) are described by msgspec's JSON Schema generator; the response shapes the
backend returns are written out here: they are the API's contract, with
``additionalProperties`` allowed so the daemon may add fields. Every documented response
(each route, each status) is produced over HTTP and its body validated against this
document by ``tests/integration/ops/test_admin_openapi_contract.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from typing import Any

import msgspec

from actors.kernel.channel import ChannelStats
from actors.kernel.supervisor import ChildStatus
from actors.model.contingent import ContingentKind, ContingentStatus
from actors.model.orders import ExecutionMode, OrderStatus, OrderType
from daemon.admin.backend import ConfigView
from daemon.admin.console import ALL_ROUTES
from daemon.admin.routes import (
    BODY_RESPONSES,
    COMMON_RESPONSES,
    PUBLIC_EXEMPT,
    CommandBody,
    EmptyBody,
    Response,
    ResumeBody,
    Route,
)
from daemon.reloader import ReloadResult

REF = "#/components/schemas/{name}"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": REF.format(name=name)}


def _obj(properties: dict[str, Any], required: Iterable[str] = (), description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": True}
    req = list(required)
    if req:
        out["required"] = req
    if description:
        out["description"] = description
    return out


def _array(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def _page(key: str, item: str) -> dict[str, Any]:
    return _obj(
        {key: _array(_ref(item)), "count": {"type": "integer"}, "limit": {"type": "integer"},
         "offset": {"type": "integer"}},
        [key, "count", "limit", "offset"],
    )


def _hand_written() -> dict[str, Any]:
    """Response shapes of the backend (see ``AdminBackend``)."""
    string = {"type": "string"}
    integer = {"type": "integer"}
    number = {"type": "number"}
    boolean = {"type": "boolean"}
    dec = {"type": "string", "format": "decimal", "description": "Exact decimal number as a string."}
    opt_dec = {"anyOf": [dec, {"type": "null"}]}
    side = {"type": "string", "enum": ["buy", "sell"]}
    trading_state = {"type": "string", "enum": ["ACTIVE", "REDUCING", "HALTED"]}
    health_status = {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]}
    order_status = {"type": "string", "enum": [s.value for s in OrderStatus]}
    mode = {"type": "string", "enum": [m.value for m in ExecutionMode]}
    return {
        "Error": _obj({"error": {**string, "description": "Stable error code."}, "message": string},
                      ["error", "message"]),
        "Health": _obj({"status": {"type": "string", "enum": ["alive"]}, "health": health_status,
                        "reasons": _array(string)}, ["status", "health", "reasons"]),
        "Readiness": _obj({"ready": boolean, "reasons": _array(string)}, ["ready", "reasons"]),
        "NotReady": {"allOf": [_ref("Error"), _ref("Readiness")]},
        "MetricsText": {"type": "string", "description": "Prometheus text exposition format 0.0.4."},
        "Status": _obj(
            {
                "name": string, "mode": {"type": "string", "enum": ["paper", "live"]}, "version": string,
                "pid": integer, "uptime_s": number, "trading_state": trading_state, "kill_switch": boolean,
                "health": _obj({"status": health_status, "reasons": _array(string)}),
                "config_version": integer, "actors": _array(_ref("ChildStatus")),
                "channels": _array(_ref("ChannelStats")),
                "contingent": _obj(
                    {"active": {**integer, "description": "Active contingent orders."},
                     "by_kind": {"type": "object", "description": "kind -> mode -> active count.",
                                 "additionalProperties": {"type": "object", "additionalProperties": integer}}},
                    ["active", "by_kind"], "Active contingent orders by kind and execution mode."),
            },
            description="Daemon overview; keys beyond these may appear.",
        ),
        "Order": _obj(
            {
                "client_order_id": string, "venue": string, "venue_order_id": string, "strategy": string,
                "symbol": string,
                "side": side, "type": {"type": "string", "enum": [t.value for t in OrderType]}, "size": dec,
                "price": opt_dec, "status": order_status,
                "filled": dec, "avg_price": opt_dec, "fees": dec, "tag": string, "intent_id": string,
                "reason": string, "created_ms": integer, "updated_ms": integer,
                "mode": {**mode, "description": "native: the order runs on the venue (every order here does; "
                         "emulated orders are contingent orders, see /contingent)."},
                "trigger_price": {**opt_dec, "description": "A native conditional order's trigger price."},
                "trailing_bps": {"anyOf": [integer, {"type": "null"}],
                                 "description": "A native trailing stop's offset in basis points."},
                "display_size": {**opt_dec, "description": "A native iceberg's visible size."},
                "parent": {**string, "description": "The contingent order this order belongs to ('' if none)."},
                "list_id": {**string, "description": "The native order list this order is a leg of ('' if none)."},
            },
            ["client_order_id", "strategy", "symbol", "side", "type", "size", "status", "filled"],
        ),
        "OrderEvent": _obj(
            {
                "id": integer, "client_order_id": string, "status": order_status,
                "previous": {"anyOf": [order_status, {"type": "null"}]}, "filled": dec, "reason": string,
                "trade_id": {"anyOf": [string, {"type": "null"}]}, "ts_ms": integer,
            },
            ["client_order_id", "status", "ts_ms"],
            "One stored state change of an order.",
        ),
        "OrderDetail": _obj(
            {"order": _ref("Order"), "events": {**_array(_ref("OrderEvent")), "description": "Oldest first."}},
            ["order", "events"],
            "One order and its event history.",
        ),
        "OrderPage": _page("orders", "Order"),
        "Fill": _obj(
            {
                "venue": string, "trade_id": string, "client_order_id": string, "venue_order_id": string,
                "symbol": string,
                "side": side, "price": dec, "size": dec, "fee": dec, "fee_currency": string,
                "liquidity": {"type": "string", "enum": ["maker", "taker"]}, "ts_ms": integer,
            },
            ["trade_id", "client_order_id", "symbol", "side", "price", "size"],
        ),
        "FillPage": _page("fills", "Fill"),
        "Position": _obj(
            {"symbol": string, "size": dec, "avg_price": dec, "realized_pnl": dec, "fees": dec, "fills": integer,
             "mark": opt_dec, "unrealized_pnl": opt_dec},
            ["symbol", "size"],
        ),
        "Positions": _obj({"positions": _array(_ref("Position"))}, ["positions"]),
        "Balance": _obj({"asset": string, "free": dec, "locked": dec, "total": dec}, ["asset"]),
        "Balances": _obj({"balances": _array(_ref("Balance"))}, ["balances"]),
        "Risk": _obj(
            {"state": trading_state, "kill_switch": boolean, "limits": {"type": "object"},
             "open_orders": integer, "gross_exposure": dec, "equity": opt_dec, "daily_pnl": opt_dec,
             "drawdown_pct": {"anyOf": [number, {"type": "null"}]},
             "denied_by_reason": {"type": "object", "additionalProperties": integer}},
            ["state", "kill_switch", "limits"],
        ),
        "RiskEvent": _obj(
            {"id": integer, "ts_ms": integer, "reason": string, "strategy": string, "symbol": string,
             "intent": {"type": "object"}, "limit": string, "detail": string},
            ["ts_ms", "reason"],
        ),
        "RiskEventPage": _page("events", "RiskEvent"),
        "LogRecord": _obj({"timestamp": string, "level": string, "event": string, "actor": string},
                          ["event", "level"]),
        "LogTail": _obj({"count": integer, "records": _array(_ref("LogRecord"))}, ["count", "records"]),
        "ReloadRefused": {"allOf": [_ref("Error"), _ref("ReloadResult")]},
        "TradingState": _obj({"state": trading_state, "kill_switch": boolean, "reason": string},
                             ["state", "kill_switch"]),
        "CancelAccepted": _obj({"client_order_id": string, "cancel_requested": boolean},
                               ["client_order_id", "cancel_requested"]),
        **_contingent_schemas(),
        "StrategyCommand": _obj({"strategy": string, "action": {"type": "string", "enum": ["stop", "start"]},
                                 "accepted": boolean}, ["strategy", "action", "accepted"]),
        "OpenApiDocument": {"type": "object"},
        **_console_schemas(),
    }


def _contingent_schemas() -> dict[str, Any]:
    """Response shapes of the contingent-order routes (``daemon.admin.routes_contingent``)."""
    string = {"type": "string"}
    integer = {"type": "integer"}
    dec = {"type": "string", "format": "decimal", "description": "Exact decimal number as a string."}
    opt_dec = {"anyOf": [dec, {"type": "null"}]}
    leg = _obj(
        {
            "name": {**string, "description": "order, entry, take_profit, stop_loss, above, below, working, "
                     "pending or slice."},
            "type": {"type": "string", "enum": [t.value for t in OrderType]},
            "side": {"type": "string", "enum": ["buy", "sell"]}, "status": string, "size": opt_dec, "filled": dec,
            "trigger_price": {**opt_dec, "description": "For a trailing stop: its current level."},
            "limit_price": opt_dec,
            "trailing": {"anyOf": [string, {"type": "null"}], "description": "The trailing rule, e.g. '50bps'."},
            "client_order_ids": {**_array(string), "description": "Venue orders this leg sent so far."},
        },
        ["name", "type", "side", "status"],
        "One leg of a contingent order.",
    )
    order = _obj(
        {
            "id": string, "strategy": string, "symbol": string,
            "kind": {"type": "string", "enum": [k.value for k in ContingentKind]},
            "mode": {"type": "string", "enum": [m.value for m in ExecutionMode],
                     "description": "native: the venue holds the trigger; emulated: the daemon does."},
            "status": {"type": "string", "enum": [s.value for s in ContingentStatus]},
            "trigger": {**string, "description": "The price an emulated trigger watches: last, bid_ask or mid."},
            "protected": {**opt_dec, "description": "Position quantity its exits protect now."},
            "reason": string, "legs": _array(_ref("ContingentLeg")), "created_ms": integer, "updated_ms": integer,
        },
        ["id", "strategy", "symbol", "kind", "mode", "status", "legs"],
        "A protective or algorithmic order the contingent-order manager holds.",
    )
    return {
        "ContingentLeg": leg,
        "ContingentOrder": order,
        "ContingentList": _obj({"contingent": {**_array(_ref("ContingentOrder")), "description": "Newest first."}},
                               ["contingent"]),
        "ContingentDetail": _obj({"contingent": _ref("ContingentOrder")}, ["contingent"]),
        "ContingentCancelAccepted": _obj({"contingent_id": string, "cancel_requested": {"type": "boolean"}},
                                         ["contingent_id", "cancel_requested"]),
    }


def _console_schemas() -> dict[str, Any]:
    """Response shapes of the web console's routes (``daemon.admin.console``)."""
    string = {"type": "string"}
    integer = {"type": "integer"}
    number = {"type": "number"}
    boolean = {"type": "boolean"}
    dec = {"type": "string", "format": "decimal", "description": "Exact decimal number as a string."}
    nullable_string = {"anyOf": [string, {"type": "null"}]}
    places = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
    return {
        "HtmlPage": {"type": "string", "description": "An HTML document."},
        "JavaScript": {"type": "string", "description": "A script."},
        "Stylesheet": {"type": "string", "description": "A CSS style sheet."},
        "ConsoleSession": _obj({"authenticated": boolean, "auth_required": boolean, "session_ttl_s": number},
                               ["authenticated", "auth_required"]),
        "Breaker": _obj({"name": string, "state": string, "trips": integer, "latched": boolean,
                         "open_remaining_s": {"anyOf": [number, {"type": "null"}]}, "reason": string},
                        ["name", "state"]),
        "EquitySample": _obj({"ts_ms": {**integer, "description": "Wall-clock sample time, epoch ms."},
                              "equity": dec}, ["ts_ms", "equity"]),
        "PriceLevel": _obj({"client_order_id": string, "side": {"type": "string", "enum": ["buy", "sell"]},
                            "type": string, "price": dec, "size": dec, "status": string},
                           ["client_order_id", "side", "price"], "An open order's price, drawn as a line."),
        "ChartSeries": _obj(
            {"symbol": string, "timeframe": string,
             "bars": {**_array({"type": "array", "items": number, "minItems": 6, "maxItems": 6}),
                      "description": "[open time (epoch s), open, high, low, close, volume], oldest first."},
             "fills": {**_array(_ref("Fill")), "description": "The symbol's fills in the window, oldest first."},
             "levels": _array(_ref("PriceLevel"))},
            ["symbol", "timeframe", "bars", "fills", "levels"],
        ),
        "ConsoleCharts": _obj({"version": integer, "series": _array(_ref("ChartSeries"))}, ["version", "series"]),
        "ConsoleState": _obj(
            {
                "ts_ms": integer, "status": _ref("Status"), "ready": boolean, "not_ready": _array(string),
                "health": _obj({"status": string, "reasons": _array(string)}, ["status", "reasons"]),
                "trading_state": {"type": "string", "enum": ["ACTIVE", "REDUCING", "HALTED"]},
                "kill_switch": boolean, "risk": {"anyOf": [_ref("Risk"), {"type": "null"}]},
                "positions": _array(_ref("Position")), "balances": _array(_ref("Balance")),
                "open_orders": _array(_ref("Order")),
                "contingent": {**_array(_ref("ContingentOrder")),
                               "description": "Active contingent (protective) orders, newest first."},
                "fills": {**_array(_ref("Fill")), "description": "Recent fills, newest first."},
                "denials": {**_array(_ref("RiskEvent")), "description": "Recent risk denials, newest first."},
                "breakers": _array(_ref("Breaker")),
                "reconnects": {"type": "object", "additionalProperties": integer},
                "equity": {**_array(_ref("EquitySample")), "description": "Sampled equity, oldest first."},
                "precision": _ref("ConsolePrecision"),
                "problems": {**_array(string), "description": "Parts that could not be read (e.g. store not open)."},
                "charts": _ref("ConsoleCharts"),
            },
            ["ts_ms", "status", "ready", "health", "trading_state", "kill_switch", "positions", "open_orders",
             "fills", "denials", "equity", "precision"],
            "Everything the web console shows; 'charts' only in the JSON answer.",
        ),
        "ConsolePrecision": _obj(
            {
                "tick": {**places, "description": "symbol -> decimal places of its prices (its tick size)."},
                "step": {**places, "description": "symbol -> decimal places of its sizes (its step size)."},
                "quote": {"type": "object", "additionalProperties": string,
                          "description": "symbol -> the asset it is quoted in (its PnL and fees are in it)."},
                "asset": {**places, "description": "asset -> decimal places of money in it (the finest tick "
                          "size of the instruments quoted in it)."},
                "equity_asset": {**string, "description": "The asset equity, daily PnL and gross exposure are "
                                 "counted in ('' if unknown)."},
            },
            ["tick", "step", "quote", "asset", "equity_asset"],
            "Decimal places to print numbers with, from the running config's [instruments] (as the CLI "
            "prints them); a number none of these covers is printed as it is.",
        ),
        "BacktestReport": _obj({"name": string, "url": string, "modified_ms": integer, "size": integer},
                               ["name", "url"]),
        "BacktestReports": _obj({"directory": nullable_string, "exists": boolean,
                                 "reports": _array(_ref("BacktestReport"))}, ["exists", "reports"]),
    }


def _responses(route: Route) -> dict[str, Any]:
    merged: dict[int, Response] = {**route.responses}
    for status, resp in COMMON_RESPONSES.items():
        if status in PUBLIC_EXEMPT and route.auth == "public":
            continue
        merged.setdefault(status, resp)
    if route.body is not None:
        for status, resp in BODY_RESPONSES.items():
            merged.setdefault(status, resp)
    out: dict[str, Any] = {}
    for status in sorted(merged):
        resp = merged[status]
        entry: dict[str, Any] = {"description": resp.description}
        if resp.schema is not None:
            content: dict[str, Any] = {}
            for ctype in resp.content_types:
                if ctype == "text/event-stream":
                    content[ctype] = {"schema": {"type": "string", "description": resp.events}}
                else:
                    content[ctype] = {"schema": _ref(resp.schema)}
            entry["content"] = content
        out[str(status)] = entry
    return out


def _operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": _responses(route),
    }
    if route.params:
        op["parameters"] = [
            {"name": p.name, "in": p.location, "required": p.required or p.location == "path",
             "description": p.description, "schema": dict(p.schema)}
            for p in route.params
        ]
    if route.body is not None:
        op["requestBody"] = {
            "required": False,
            "description": "JSON object; may be omitted.",
            "content": {"application/json": {"schema": _ref(route.body.__name__)}},
        }
    if route.auth == "public":
        op["security"] = []
    elif route.auth == "metrics":
        op["security"] = [{"bearerAuth": []}, {}]
        op["description"] = "Public when admin.metrics_public is true; otherwise a bearer token is required."
    return op


def build_openapi(routes: Iterable[Route] = ALL_ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.1 document for ``routes``."""
    try:
        version = metadata.version("aaiti")
    except metadata.PackageNotFoundError:
        version = "0"
    _, generated = msgspec.json.schema_components(
        (EmptyBody, CommandBody, ResumeBody, ConfigView, ReloadResult, ChildStatus, ChannelStats),
        ref_template=REF,
    )
    schemas = {**generated, **_hand_written()}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aaiti admin API",
            "version": version,
            "description": "Inspect and control a running aaiti daemon. Errors are always "
            '{"error": <code>, "message": <text>}.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"consoleSession": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "consoleSession": {
                    "type": "apiKey", "in": "cookie", "name": "aaiti_console_PORT",
                    "description": "The web console's session cookie (PORT: the admin port), set by POST "
                    "/console/login; honoured only from the console's own pages (loopback Host, same origin).",
                },
            },
            "schemas": schemas,
        },
    }
