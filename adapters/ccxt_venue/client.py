"""Building ccxt / ccxt.pro exchange instances from ``CcxtVenueSection``, and ws-client helpers.

ccxt is imported lazily inside the functions: ``import ccxt.pro`` costs ~0.6 s and
~100 MB, and a daemon trading on the paper venue never needs it.

What every instance built here gets:
- ``enableRateLimit`` on (ccxt's leaky bucket), ccxt's own ``maxRetriesOnFailure`` left at 0
  (it would retry order POSTs), ``adjustForTimeDifference`` on, the REST timeout and the
  websocket keepalive from the config;
- for Binance: spot-only market loading, no sapi currency/margin calls, ``recvWindow`` from
  ``recv_window_ms``;
- credentials, in order: the files ``$<credentials_dir_env>/<api_key_credential>`` and
  ``…/<secret_credential>`` (systemd ``LoadCredential=``), the environment variables
  ``api_key_env`` / ``secret_env``, the config values; with ``start_simulator`` and none of
  these, the loopback simulator's fixed test keys (:data:`SIMULATOR_API_KEY`). Credentials
  are never logged: only their source is reported (:class:`Credentials.source`);
- with ``base_url`` (e.g. a local simulator): every URL of ``urls['api']`` rewritten to that
  origin (:func:`adapters.ccxt_venue.api_urls.point_api_at`), so a stray call never reaches
  the internet; with ``start_simulator`` the origin defaults to
  ``127.0.0.1:<simulator_port>`` and must be loopback (:func:`effective_base_url`). Starting
  that simulator is the process shell's job (``daemon.embedded_simulator``): this adapter
  never imports the simulator;
- a guard on every websocket client: a frame that ccxt cannot decode or parse (bad JSON, a
  payload its handler chokes on) would otherwise raise inside ccxt's receive callback and
  silently end the receive loop — a zombie stream. The guard reports it to
  ``on_malformed`` and keeps the loop alive.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters.ccxt_venue.api_urls import point_api_at
from config.schema.trading import CcxtVenueSection

#: ``on_malformed(url, raw_frame_excerpt, error)``
MalformedHook = Callable[[str, str, BaseException], None]

_GUARD_ATTR = "_aaiti_guarded"
_EXCERPT = 200
_BINANCE_SPOT_IDS = frozenset({"binance", "binanceus"})
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

#: The loopback Binance simulator's fixed test key and secret: the credentials of a
#: ``start_simulator`` config that configures none (the embedded simulator accepts them).
SIMULATOR_API_KEY = "simkey"
SIMULATOR_API_SECRET = "simsecret"


class ExchangeConfigError(Exception):
    """The ccxt exchange cannot be built from the config (unknown id, unusable credential file)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """API credentials and where they came from (``source`` is safe to log; the values are not)."""

    api_key: str
    secret: str
    source: str

    def __repr__(self) -> str:
        return f"Credentials(source={self.source!r})"


def _read_credential(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ExchangeConfigError(f"cannot read credential file {path}: {exc.strerror}") from None
    return text.strip() or None


def resolve_credentials(cfg: CcxtVenueSection, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Find the API key and secret (order in the module doc); None when none are configured."""
    env = os.environ if environ is None else environ
    creds_dir = env.get(cfg.credentials_dir_env, "") if cfg.credentials_dir_env else ""
    if creds_dir:
        key = _read_credential(Path(creds_dir) / cfg.api_key_credential)
        secret = _read_credential(Path(creds_dir) / cfg.secret_credential)
        if key and secret:
            return Credentials(key, secret, f"credentials:{cfg.api_key_credential},{cfg.secret_credential}")
    key = env.get(cfg.api_key_env, "").strip() if cfg.api_key_env else ""
    secret = env.get(cfg.secret_env, "").strip() if cfg.secret_env else ""
    if key and secret:
        return Credentials(key, secret, f"env:{cfg.api_key_env},{cfg.secret_env}")
    if cfg.api_key and cfg.secret:
        return Credentials(cfg.api_key, cfg.secret, "config")
    if cfg.start_simulator:
        return Credentials(SIMULATOR_API_KEY, SIMULATOR_API_SECRET, "simulator-defaults")
    return None


def host_port_of(base_url: str) -> str:
    """``host:port`` of a configured ``base_url`` (``http://127.0.0.1:8765`` → ``127.0.0.1:8765``)."""
    parts = urlsplit(base_url if "://" in base_url else f"http://{base_url}")
    if not parts.hostname:
        raise ExchangeConfigError(f"base_url {base_url!r} has no host")
    host = parts.hostname
    return f"{host}:{parts.port}" if parts.port else host


def effective_base_url(cfg: CcxtVenueSection) -> str:
    """The origin ccxt is pointed at ("" = the exchange's real URLs).

    With ``start_simulator`` it defaults to ``http://127.0.0.1:<simulator_port>`` and must be
    a loopback address: a config that starts the simulator can never reach a real exchange.
    """
    if not cfg.start_simulator:
        return cfg.base_url
    url = cfg.base_url or f"http://127.0.0.1:{cfg.simulator_port}"
    host = urlsplit(url if "://" in url else f"http://{url}").hostname or ""
    if host not in _LOOPBACK_HOSTS:
        raise ExchangeConfigError(f"start_simulator is set but base_url {url!r} is not a loopback address")
    return url


def exchange_options(cfg: CcxtVenueSection) -> dict[str, Any]:
    """The ccxt ``options`` dict for ``cfg`` (Binance: spot-only loading, no sapi calls)."""
    options: dict[str, Any] = {"adjustForTimeDifference": True, "maxRetriesOnFailure": 0}
    if cfg.exchange_id in _BINANCE_SPOT_IDS:
        options.update(
            {
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
                "fetchOpenOrders": {"warnWithoutSymbol": False},
                "defaultType": "spot",
                # How long a signed request stays valid after its timestamp (ccxt sends it with each).
                "recvWindow": cfg.recv_window_ms,
            }
        )
    return options


def build_exchange(
    cfg: CcxtVenueSection,
    *,
    pro: bool = True,
    environ: Mapping[str, str] | None = None,
    on_malformed: MalformedHook | None = None,
) -> Any:
    """Create the ccxt.pro (``pro``) or ccxt.async_support exchange ``cfg.exchange_id``.

    Markets are not loaded here (that is network I/O; callers ``await load_markets()``).
    Raises :class:`ExchangeConfigError` for an unknown exchange id.
    """
    if pro:
        import ccxt.pro as module
    else:
        import ccxt.async_support as module
    cls = getattr(module, cfg.exchange_id, None)
    if not isinstance(cls, type):
        raise ExchangeConfigError(
            f"unknown ccxt exchange id {cfg.exchange_id!r}" + (" (for ccxt.pro)" if pro else "")
        )
    params: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": int(cfg.request_timeout_s * 1000),
        "options": exchange_options(cfg),
        "streaming": {"keepAlive": int(cfg.ws_keepalive_s * 1000)},
    }
    creds = resolve_credentials(cfg, environ)
    if creds is not None:
        params["apiKey"] = creds.api_key
        params["secret"] = creds.secret
    base_url = effective_base_url(cfg)
    exchange = cls(params)
    if base_url:
        point_api_at(exchange, host_port_of(base_url))
        # close() otherwise sleeps 250 ms for a TLS shutdown; the simulator speaks plain HTTP.
        exchange.timeout_on_exit = 0
    if on_malformed is not None:
        install_message_guard(exchange, on_malformed)
    return exchange


def credential_source(cfg: CcxtVenueSection, environ: Mapping[str, str] | None = None) -> str:
    """Where the credentials would come from ("none" if nowhere); safe to log."""
    creds = resolve_credentials(cfg, environ)
    return creds.source if creds is not None else "none"


def install_message_guard(exchange: Any, on_malformed: MalformedHook) -> None:
    """Make every websocket client of ``exchange`` survive frames ccxt fails to handle.

    Wraps ``exchange.client`` so that each client it creates has its frame handler
    (decode + dispatch) wrapped in a ``try``: an exception is reported to ``on_malformed``
    and the frame skipped, instead of ending ccxt's receive loop. Idempotent.
    """
    if getattr(exchange, _GUARD_ATTR, False):
        return
    original_client = exchange.client

    def guarded_client(url: str) -> Any:
        client = original_client(url)
        if not getattr(client, _GUARD_ATTR, False):
            handler = client.handle_text_or_binary_message

            def safe_handler(data: Any, _handler: Any = handler, _url: str = url) -> None:
                try:
                    _handler(data)
                except Exception as exc:
                    excerpt = data if isinstance(data, str) else repr(data)
                    on_malformed(_url, excerpt[:_EXCERPT], exc)

            client.handle_text_or_binary_message = safe_handler
            setattr(client, _GUARD_ATTR, True)
        return client

    exchange.client = guarded_client
    setattr(exchange, _GUARD_ATTR, True)


def ws_clients(exchange: Any, predicate: Callable[[str, Any], bool]) -> list[Any]:
    """The live websocket clients of ``exchange`` for which ``predicate(url, client)`` holds."""
    clients: Mapping[str, Any] = getattr(exchange, "clients", None) or {}
    return [client for url, client in list(clients.items()) if predicate(url, client)]


def subscribed_to(key_parts: tuple[str, ...]) -> Callable[[str, Any], bool]:
    """Predicate: a client with a subscription key containing every string of ``key_parts``."""

    def predicate(_url: str, client: Any) -> bool:
        subs: Mapping[str, Any] = getattr(client, "subscriptions", None) or {}
        return any(all(part in str(key) for part in key_parts) for key in subs)

    return predicate


async def close_ws_clients(exchange: Any, clients: list[Any]) -> int:
    """Close ``clients`` and deregister them; returns how many.

    Closing cancels the watchers still pending on them; the next ``watch_*`` re-dials and
    resubscribes. Errors while closing a dead socket are ignored.
    """
    registry: dict[str, Any] = getattr(exchange, "clients", None) or {}
    closed = 0
    for client in clients:
        with contextlib.suppress(Exception):  # a dead socket may fail to close; it is dropped below anyway
            await client.close()
        url = getattr(client, "url", None)
        if url is not None and registry.get(url) is client:
            del registry[url]
        closed += 1
    return closed
