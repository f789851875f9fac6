"""HTTP-level errors of the admin server as the API's JSON errors, logged as one warning line.

aiohttp answers a request it cannot parse (a request line longer than ``max_line_size`` or
a header longer than ``max_field_size``: ``LineTooLong``; a bad method, version or header:
``BadStatusLine`` / ``BadHttpMessage``) before routing, so no middleware sees it:
``RequestHandler.handle_error`` writes a ``text/plain`` body and logs the parse error with
its traceback at ERROR on the ``aiohttp.server`` logger. ``AdminRunner`` serves the app
through ``JsonErrorRequestHandler``, which answers ``{"error": <code>, "message": <text>}``
like every other error of the API and logs a bad request once, as a warning of the bound
admin logger (the request line itself is not logged: it may be 10 kB of garbage).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.typedefs import Handler as AiohttpHandler

# aiohttp's defaults, stated: the longest request line / header line accepted (bytes). The
# API's longest legitimate request line (ids of 128 characters, a few parameters) is far below.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190
_CODES = {400: "bad_request", 413: "payload_too_large", 431: "request_header_fields_too_large",
          500: "internal", 504: "timeout"}


def describe(status: int, exc: BaseException | None) -> str:
    """A short, safe message for an error aiohttp raised before the request reached the app."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else "the limit of"
        return f"request line or header too long (more than {limit} bytes)"
    if isinstance(exc, HttpProcessingError) and exc.message:
        text = " ".join(str(exc.message).split())
        return f"malformed HTTP request: {text[:120]}"
    if status == 504:
        return "request timed out"
    if status >= 500:
        return "internal error; see the daemon log"
    return "malformed HTTP request"


class JsonErrorRequestHandler(web.RequestHandler):
    """aiohttp's connection handler with JSON error bodies and one-line warnings."""

    def __init__(self, manager: web.Server, *, log: Any, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.admin_log = log

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer ``{"error", "message"}`` with ``status`` and close the connection."""
        if request.writer.output_size > 0:  # as aiohttp: a started response cannot become an error
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        text = describe(status, exc)
        fields = {"status": status, "remote": request.remote, "error": text}
        if status >= 500:
            self.admin_log.error("admin.http_error", **fields, exc_info=exc)
        elif isinstance(exc, BadHttpMethod):  # TLS or other non-HTTP bytes on the port: noise
            self.admin_log.debug("admin.bad_http_request", **fields)
        else:
            self.admin_log.warning("admin.bad_http_request", **fields)
        body = orjson.dumps({"error": _CODES.get(status, "http_error"), "message": text})
        resp = web.Response(body=body, status=status, content_type="application/json")
        resp.force_close()
        return resp


class JsonErrorServer(web.Server):
    """``web.Server`` whose connections use ``JsonErrorRequestHandler``."""

    def __init__(self, handler: AiohttpHandler, *, log: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)  # type: ignore[arg-type]
        self._handler_kwargs = {k: v for k, v in kwargs.items()
                                if k not in ("request_factory", "handler_cancellation", "loop")}
        self._handler_loop = asyncio.get_running_loop()
        self._log = log

    def __call__(self) -> web.RequestHandler:
        """A handler for one new connection (the protocol factory of the listening socket)."""
        return JsonErrorRequestHandler(self, loop=self._handler_loop, log=self._log, **self._handler_kwargs)


class AdminRunner(web.AppRunner):
    """``AppRunner`` serving through ``JsonErrorServer`` (the app's startup/cleanup unchanged)."""

    def __init__(self, app: web.Application, *, log: Any, **kwargs: Any) -> None:
        super().__init__(app, max_line_size=MAX_LINE_SIZE, max_field_size=MAX_FIELD_SIZE, **kwargs)
        self._log = log

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()  # runs the app's startup and freezes it
        return JsonErrorServer(base.request_handler, request_factory=base.request_factory,
                               handler_cancellation=base.handler_cancellation, log=self._log, **self._kwargs)
