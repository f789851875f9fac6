"""Admin API routes of contingent orders: stops, take-profits, trailing stops, OCO/OTO lists,
brackets, icebergs and TWAPs, as the contingent-order manager holds them.

``GET /contingent`` lists them (``active=true``: only the active ones, from the manager's live
views; otherwise those plus finished ones from the store), newest first; ``GET
/contingent/{contingent_id}`` shows one; ``POST /contingent/{contingent_id}/cancel`` asks the
manager to cancel one (its emulated triggers disarm, the venue orders it holds are cancelled),
with the same auth and JSON error conventions as ``POST /orders/{client_order_id}/cancel``.
The routes join the server's table through ``console.ALL_ROUTES`` and are documented by
``openapi.py`` like every other route.
"""

from __future__ import annotations

from aiohttp import web

from daemon.admin.backend import NotFound
from daemon.admin.routes import (
    DEFAULT_LIMIT,
    MAX_ID_LENGTH,
    AdminContext,
    CommandBody,
    Param,
    Query,
    Response,
    Route,
    path_id,
    read_body,
)

MAX_CONTINGENT_LIMIT = 1000


async def get_contingent_list(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Contingent orders, newest first: ``{"contingent": [...]}``."""
    active = q.flag("active")
    limit = q.integer("limit", DEFAULT_LIMIT, 1, MAX_CONTINGENT_LIMIT)
    rows = await ctx.backend.contingent_orders(active_only=active, limit=limit)
    return ctx.json({"contingent": list(rows)})


async def get_contingent(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """One contingent order: ``{"contingent": ...}``."""
    cid = path_id(request, "contingent_id")
    view = await ctx.backend.contingent_order(cid)
    if view is None:
        raise NotFound(f"no contingent order with id {cid!r}")
    return ctx.json({"contingent": view})


async def post_contingent_cancel(request: web.Request, ctx: AdminContext, q: Query) -> web.StreamResponse:
    """Request the cancel of one contingent order."""
    cid = path_id(request, "contingent_id")
    body = await read_body(request, CommandBody)
    reason = body.reason or f"admin: {request.method} {request.path}"
    if not await ctx.backend.cancel_contingent(cid, reason):
        raise NotFound(f"no contingent order with id {cid!r}")
    return ctx.json({"contingent_id": cid, "cancel_requested": True}, status=202)


_CID = Param("contingent_id", {"type": "string", "maxLength": MAX_ID_LENGTH}, "The contingent order's id.",
             "path", True)
_BAD = Response("Invalid parameter or body.")
_NOT_FOUND = Response("No such contingent order.")

CONTINGENT_ROUTES: tuple[Route, ...] = (
    Route("GET", "/contingent", get_contingent_list, "listContingentOrders",
          "Contingent orders (stops, take-profits, trailing stops, OCO/OTO, brackets, icebergs, TWAPs), "
          "newest first.", "contingent",
          params=(
              Param("active", {"type": "boolean", "default": False},
                    "Only the active ones (live from the contingent-order manager); otherwise finished ones "
                    "from the store too."),
              Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_CONTINGENT_LIMIT,
                              "default": DEFAULT_LIMIT}, "At most this many."),
          ),
          responses={200: Response("Contingent orders, newest first.", "ContingentList"), 400: _BAD}),
    Route("GET", "/contingent/{contingent_id}", get_contingent, "getContingentOrder", "One contingent order.",
          "contingent", params=(_CID,),
          responses={200: Response("The contingent order.", "ContingentDetail"), 400: _BAD, 404: _NOT_FOUND}),
    Route("POST", "/contingent/{contingent_id}/cancel", post_contingent_cancel, "cancelContingentOrder",
          "Request the cancel of a contingent order: emulated triggers disarm, its venue orders are cancelled.",
          "contingent", params=(_CID,), body=CommandBody,
          responses={202: Response("Cancel requested.", "ContingentCancelAccepted"), 400: _BAD, 404: _NOT_FOUND,
                     409: Response("The contingent order is already finished.")}),
)
