"""Pointing a ccxt / ccxt.pro Binance instance at another origin (``venue.ccxt.base_url``).

Every URL string of ``exchange.urls['api']`` gets the new scheme and host (paths kept), so
a stray call (sapi, fapi, …) never reaches the real exchange; the spot REST, stream and
WS-API entries are set to the paths a Binance-compatible loopback server (the bundled
simulator) serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit


def _rewrite(node: Any, http_origin: str, ws_origin: str) -> Any:
    """Replace scheme and host of every URL string in ``node``, keeping the paths."""
    if isinstance(node, Mapping):
        return {k: _rewrite(v, http_origin, ws_origin) for k, v in node.items()}
    if isinstance(node, list):
        return [_rewrite(v, http_origin, ws_origin) for v in node]
    if isinstance(node, str) and "://" in node:
        parts = urlsplit(node)
        origin = ws_origin if parts.scheme in ("ws", "wss") else http_origin
        query = f"?{parts.query}" if parts.query else ""
        return f"{origin}{parts.path}{query}"
    return node


def api_urls_at(default_api_urls: Mapping[str, Any], host_port: str) -> dict[str, Any]:
    """``urls['api']`` with every URL rewritten to ``host_port`` and the five used keys set.

    The spot stream URL keeps ``/stream`` in its path: ccxt decides spot-vs-contract with
    ``url.find('/stream') > -1``.
    """
    http_origin = f"http://{host_port}"
    ws_origin = f"ws://{host_port}"
    api: dict[str, Any] = _rewrite(default_api_urls, http_origin, ws_origin)
    api["public"] = f"{http_origin}/api/v3"
    api["private"] = f"{http_origin}/api/v3"
    api["v1"] = f"{http_origin}/api/v1"
    ws = dict(api.get("ws") or {})
    ws["spot"] = f"{ws_origin}/stream/ws"
    ws_api = dict(ws.get("ws-api") or {})
    ws_api["spot"] = f"{ws_origin}/ws-api/v3"
    ws["ws-api"] = ws_api
    api["ws"] = ws
    return api


def point_api_at(exchange: Any, host_port: str) -> None:
    """Rewrite a ccxt Binance instance's ``urls['api']`` to ``host_port`` (plain http/ws) in place."""
    exchange.urls["api"] = api_urls_at(exchange.urls["api"], host_port)
