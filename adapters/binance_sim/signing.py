"""Request authentication exactly as Binance applies it (§1.6, §2.2, §5.1 of the spec).

The REST signature is checked against the raw query string / body *as received*: rebuilding
the message from parsed parameters would break on encoding differences (``%20``, ``%5B``...).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from adapters.binance_sim import errors
from adapters.binance_sim.errors import ApiError

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
_AHEAD_TOLERANCE_MS = 1_000


def sign(secret: str, message: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``message`` keyed by ``secret``."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def split_signature(total_params: str) -> tuple[str, str | None]:
    """Split a raw ``a=1&b=2&signature=…`` string into (signed message, signature)."""
    parts = total_params.split("&") if total_params else []
    signature: str | None = None
    kept: list[str] = []
    for part in parts:
        if part.startswith("signature="):
            signature = part[len("signature=") :]
        else:
            kept.append(part)
    return "&".join(kept), signature


def check_timestamp(timestamp: Any, recv_window: Any, server_time: int) -> None:
    """Binance's clock rule: ``timestamp < serverTime + 1000`` and ``serverTime - timestamp <= recvWindow``."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        raise errors.mandatory("timestamp") from None
    if recv_window is None or recv_window == "":
        window = DEFAULT_RECV_WINDOW_MS
    else:
        try:
            window = int(recv_window)
        except (TypeError, ValueError):
            raise errors.illegal("recvWindow") from None
    if window > MAX_RECV_WINDOW_MS or window <= 0:
        raise ApiError(400, -1131, "recvWindow must be less than 60000")
    if ts >= server_time + _AHEAD_TOLERANCE_MS:
        raise ApiError(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if server_time - ts > window:
        raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def check_api_key(presented: str | None, api_key: str) -> None:
    """-2014 for a missing/malformed key, -2015 for an unknown one (HTTP 401)."""
    if not presented:
        raise ApiError(401, -2014, "API-key format invalid.")
    if not hmac.compare_digest(presented.encode(), api_key.encode()):
        raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")


def verify_rest(
    *,
    raw_query: str,
    raw_body: str,
    params: Mapping[str, str],
    api_key_header: str | None,
    api_key: str,
    secret: str,
    server_time: int,
) -> None:
    """Authenticate a signed REST request or raise the matching :class:`ApiError`.

    Per Binance, the signed message is the query string concatenated with the body.
    """
    check_api_key(api_key_header, api_key)
    if "timestamp" not in params:
        raise errors.mandatory("timestamp")
    message, signature = split_signature(raw_query + raw_body)
    if not signature:
        raise errors.mandatory("signature")
    if not hmac.compare_digest(sign(secret, message), signature.lower()):
        raise ApiError(400, -1022, "Signature for this request is not valid.")
    check_timestamp(params.get("timestamp"), params.get("recvWindow"), server_time)


def verify_ws_params(params: Mapping[str, Any], *, api_key: str, secret: str, server_time: int) -> None:
    """Authenticate WS-API ``params`` signed over the key-sorted, un-encoded ``k=v&…`` string."""
    if not isinstance(params.get("apiKey"), str):
        raise errors.mandatory("apiKey")
    check_api_key(params["apiKey"], api_key)
    if "timestamp" not in params:
        raise errors.mandatory("timestamp")
    signature = params.get("signature")
    if not isinstance(signature, str) or not signature:
        raise errors.mandatory("signature")
    message = "&".join(f"{k}={_ws_value(params[k])}" for k in sorted(params) if k != "signature")
    if not hmac.compare_digest(sign(secret, message), signature.lower()):
        raise ApiError(400, -1022, "Signature for this request is not valid.")
    check_timestamp(params.get("timestamp"), params.get("recvWindow"), server_time)


def _ws_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
