"""Pointing an unchanged ccxt / ccxt.pro ``binance`` client at the simulator (§1 of the spec).

ccxt is imported lazily: the simulator itself never needs it, and importing ``ccxt.pro``
costs ~0.6 s and ~100 MB.
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


def loopback_api_urls(default_api_urls: Mapping[str, Any], host_port: str) -> dict[str, Any]:
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


def default_binance_api_urls() -> dict[str, Any]:
    """ccxt.pro binance's default ``urls['api']`` (imports ccxt.pro)."""
    import ccxt.pro

    probe = ccxt.pro.binance()
    return dict(probe.urls["api"])


def ccxt_config(
    host_port: str,
    api_key: str | None,
    secret: str | None,
    *,
    enable_rate_limit: bool = True,
    keep_alive_ms: int = 10_000,
    timeout_ms: int = 10_000,
    options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Constructor dict for ``ccxt.pro.binance`` / ``ccxt.async_support.binance``.

    Every URL of the default ``urls['api']`` tree already points at ``host_port``, so a
    stray sapi/fapi call gets the simulator's ``-1020`` (BadRequest) instead of the internet.
    ``options`` is merged over the loopback defaults (spot-only markets, no currencies or
    margin calls, time-difference adjustment on).
    """
    merged_options: dict[str, Any] = {
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        "adjustForTimeDifference": True,
    }
    merged_options.update(options or {})
    config: dict[str, Any] = {
        "enableRateLimit": enable_rate_limit,
        "timeout": timeout_ms,
        "urls": {"api": loopback_api_urls(default_binance_api_urls(), host_port)},
        "options": merged_options,
        "streaming": {"keepAlive": keep_alive_ms},
    }
    if api_key is not None:
        config["apiKey"] = api_key
    if secret is not None:
        config["secret"] = secret
    return config


def point_ccxt_at(exchange: Any, host_port: str) -> None:
    """Rewrite an existing ccxt binance instance's ``urls['api']`` to ``host_port`` in place.

    Use it after anything that replaces ``urls['api']`` wholesale (``set_sandbox_mode``).
    """
    exchange.urls["api"] = loopback_api_urls(exchange.urls["api"], host_port)
