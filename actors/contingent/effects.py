"""What a contingent order asks the manager to do: pure values, executed in order by the actor.

A ``Persist`` with ``durable=True`` is awaited (committed) before any effect after it runs:
that is the write-ahead. A contingent order always persists the state that names a child's
client order id before the ``Release`` of that child, so after kill -9 the child is either
unknown to the order manager (never sent: released again under the same id) or known
(never sent twice).
"""

from __future__ import annotations

from typing import Any

import msgspec

from actors.model.contingent import ContingentRow
from actors.model.orders import OrderDenied, OrderIntent, OrderList

__all__ = ["CancelChild", "Effect", "Notice", "Persist", "Release", "ReleaseList", "TellStrategy"]


class Release(msgspec.Struct, frozen=True, kw_only=True):
    """Send one order (entry, released child, native leg, slice) through the risk gate.

    The intent has ``client_order_id`` and ``parent`` set; ``protective`` for exits that
    protect a position.
    """

    intent: OrderIntent


class ReleaseList(msgspec.Struct, frozen=True, kw_only=True):
    """Send a native order list (OCO, OTO) through the risk gate; every leg has its client order id."""

    order_list: OrderList


class CancelChild(msgspec.Struct, frozen=True, kw_only=True):
    """Ask the order manager to cancel one of our venue orders (a native leg, an entry, a slice)."""

    client_order_id: str
    reason: str


class Persist(msgspec.Struct, frozen=True, kw_only=True):
    """Save rows; ``durable``: committed before the next effect runs (write-ahead)."""

    rows: tuple[ContingentRow, ...]
    durable: bool = True


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One log line (``event`` like ``contingent.triggered``) with its fields; ``level`` info/warning/error."""

    event: str
    fields: dict[str, Any] = msgspec.field(default_factory=dict)
    level: str = "info"


class TellStrategy(msgspec.Struct, frozen=True, kw_only=True):
    """Tell the strategy that a contingent order of its own ended for good on a risk denial
    (reason ``CONTINGENT_GIVEN_UP``): the final outcome of that intent, through the event router."""

    denied: OrderDenied


Effect = Release | ReleaseList | CancelChild | Persist | Notice | TellStrategy
