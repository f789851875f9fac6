"""The venue interface the order manager and reconciler use (paper, ccxt, simulator).

Errors are typed so callers can tell a definite refusal from an unknown outcome:
``OrderRejected`` means the venue said no (never retry as-is); ``VenueUnavailable`` means
we do not know what happened (timeout, disconnect, 5xx) — for a submit, the order stays
in flight until ``query`` by client order id resolves it; it is never resent blindly.
``VenueAuthenticationError`` (a ``VenueUnavailable`` with reason ``AUTHENTICATION``) means the
venue refused our credentials: definite and not retryable until the operator fixes them.
A submit refused for that reason is an ``OrderRejected`` with reason ``AUTHENTICATION``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from actors.model.orders import Balance, Fill, OrderRequest, VenueOrder


class VenueError(Exception):
    """Base of venue errors; ``reason`` is a stable reason code."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}" if message else reason)


class OrderRejected(VenueError):
    """Definite refusal (insufficient funds, invalid order, filter failure)."""


class OrderNotFound(VenueError):
    """The venue does not know this order."""


class VenueUnavailable(VenueError):
    """Outcome unknown: timeout, disconnect, 5xx, rate limit, open circuit."""


#: Reason code of a call the venue refused because of our credentials.
AUTHENTICATION = "AUTHENTICATION"
#: Reason code of a submit the venue refused because it does not run that order type (or
#: order list, trailing delta, iceberg) for the symbol: the daemon may emulate it instead.
UNSUPPORTED_ORDER_TYPE = "UNSUPPORTED_ORDER_TYPE"


class VenueAuthenticationError(VenueUnavailable):
    """The venue refused our credentials (wrong or missing key or secret, an IP allow-list, missing
    permissions). Definite and not retryable: calls keep failing until the operator fixes the
    credentials. The message names the venue and what to check, never the secret.
    """

    def __init__(self, message: str = "") -> None:
        super().__init__(AUTHENTICATION, message)


def is_authentication_refusal(exc: BaseException) -> bool:
    """True when ``exc`` says the venue refused our credentials (on a read, a cancel or a submit)."""
    return isinstance(exc, VenueError) and exc.reason == AUTHENTICATION


VenueUpdate = VenueOrder | Fill


@runtime_checkable
class Venue(Protocol):
    """A trading venue as seen by the order manager and the reconciler."""

    name: str

    async def start(self) -> None:
        """Connect / load state. Idempotent."""

    async def close(self) -> None:
        """Release connections and files. Idempotent."""

    async def submit(self, request: OrderRequest) -> VenueOrder:
        """Place an order. Raises OrderRejected or VenueUnavailable."""

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder:
        """Cancel an order. Raises OrderNotFound (unknown or already closed) or VenueUnavailable."""

    async def query(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """Look an order up by our client order id; None if the venue never saw it."""

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """All open orders (optionally of one symbol)."""

    async def fills_since(self, since_ms: int, symbol: str | None = None) -> list[Fill]:
        """Our executions with ts_ms >= since_ms, oldest first."""

    async def balances(self) -> dict[str, Balance]:
        """Balances by asset."""

    def updates(self) -> AsyncIterator[VenueUpdate]:
        """Stream of order updates and fills as they happen (may skip during outages).

        May raise ``VenueAuthenticationError`` when the venue starts refusing our credentials.
        """
        ...
