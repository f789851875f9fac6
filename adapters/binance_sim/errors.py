"""Binance API errors as raised inside the simulator and rendered on the wire."""

from __future__ import annotations

from collections.abc import Mapping


class ApiError(Exception):
    """A Binance error reply: HTTP status, negative ``code`` and the exact ``msg`` text.

    The message texts matter: ccxt maps some of them (e.g. insufficient balance) by exact
    string match before it looks at the code.
    """

    def __init__(self, status: int, code: int, msg: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code} {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, object]:
        """JSON body Binance sends for this error."""
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> ApiError:
    """-1102 for a missing mandatory parameter."""
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def illegal(name: str) -> ApiError:
    """-1100 for a parameter with illegal characters."""
    return ApiError(
        400,
        -1100,
        f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
    )


def not_required(name: str) -> ApiError:
    """-1106 for a parameter sent with an order type that does not take it."""
    return ApiError(400, -1106, f"Parameter '{name}' sent when not required.")


def bad_symbol() -> ApiError:
    """-1121 unknown symbol."""
    return ApiError(400, -1121, "Invalid symbol.")


def filter_failure(name: str) -> ApiError:
    """-1013 exchange filter failure (the filter name decides ccxt's exception)."""
    return ApiError(400, -1013, f"Filter failure: {name}")


def insufficient_balance() -> ApiError:
    """-2010 with the exact text ccxt maps to InsufficientFunds."""
    return ApiError(400, -2010, "Account has insufficient balance for requested action.")


def duplicate_order() -> ApiError:
    """-2010 for a client order id already used by an open order."""
    return ApiError(400, -2010, "Duplicate order sent.")


def would_take() -> ApiError:
    """-2010 for a LIMIT_MAKER that would cross."""
    return ApiError(400, -2010, "Order would immediately match and take.")


def order_not_found() -> ApiError:
    """-2013 unknown order on a query."""
    return ApiError(400, -2013, "Order does not exist.")


def unknown_order() -> ApiError:
    """-2011 unknown (or no longer cancelable) order on a cancel."""
    return ApiError(400, -2011, "Unknown order sent.")


def unsupported() -> ApiError:
    """-1020 for endpoints and methods the simulator does not implement."""
    return ApiError(400, -1020, "This operation is not supported.")
