"""The order state machine (NautilusTrader semantics).

``transition(current, new)`` returns ``new`` when the move is legal and raises
``IllegalTransition`` otherwise; callers log and count the refusal and never apply it.
Staying in the same state is not a transition (except the legal self-loops
PARTIALLY_FILLED → PARTIALLY_FILLED, PENDING_UPDATE → PENDING_UPDATE): callers that see a
repeated status from a venue treat it as a no-op before asking this module.

The table below is the whole contract; TRIGGERED and PENDING_UPDATE use NautilusTrader's
targets. DENIED, REJECTED, FILLED and EXPIRED are terminal; CANCELED only admits late
fills.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from actors.model.orders import OrderStatus

_S = OrderStatus

TRANSITIONS: Mapping[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        _S.INITIALIZED: frozenset({_S.DENIED, _S.SUBMITTED}),
        _S.SUBMITTED: frozenset(
            {_S.ACCEPTED, _S.REJECTED, _S.CANCELED, _S.PARTIALLY_FILLED, _S.FILLED, _S.PENDING_CANCEL}
        ),
        _S.ACCEPTED: frozenset(
            {
                _S.PENDING_CANCEL,
                _S.PENDING_UPDATE,
                _S.PARTIALLY_FILLED,
                _S.FILLED,
                _S.CANCELED,
                _S.EXPIRED,
                _S.TRIGGERED,
            }
        ),
        _S.TRIGGERED: frozenset(
            {
                _S.REJECTED,
                _S.PENDING_UPDATE,
                _S.PENDING_CANCEL,
                _S.CANCELED,
                _S.EXPIRED,
                _S.PARTIALLY_FILLED,
                _S.FILLED,
            }
        ),
        _S.PENDING_UPDATE: frozenset(
            {
                _S.REJECTED,
                _S.ACCEPTED,
                _S.CANCELED,
                _S.EXPIRED,
                _S.TRIGGERED,
                _S.PENDING_UPDATE,
                _S.PENDING_CANCEL,
                _S.PARTIALLY_FILLED,
                _S.FILLED,
            }
        ),
        _S.PARTIALLY_FILLED: frozenset(
            {_S.PARTIALLY_FILLED, _S.PENDING_CANCEL, _S.CANCELED, _S.FILLED, _S.EXPIRED}
        ),
        _S.PENDING_CANCEL: frozenset({_S.CANCELED, _S.PARTIALLY_FILLED, _S.FILLED, _S.ACCEPTED}),
        _S.CANCELED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED}),
        _S.DENIED: frozenset(),
        _S.REJECTED: frozenset(),
        _S.FILLED: frozenset(),
        _S.EXPIRED: frozenset(),
    }
)


class IllegalTransition(Exception):
    """A state change the order state machine does not allow; carries both states."""

    def __init__(self, current: OrderStatus, new: OrderStatus, client_order_id: str = "") -> None:
        self.current = current
        self.new = new
        self.client_order_id = client_order_id
        who = f" (order {client_order_id})" if client_order_id else ""
        super().__init__(f"illegal order transition {current.value} -> {new.value}{who}")


def transition(current: OrderStatus, new: OrderStatus, client_order_id: str = "") -> OrderStatus:
    """Return ``new`` if ``current → new`` is legal, else raise ``IllegalTransition``."""
    if new in TRANSITIONS[current]:
        return new
    raise IllegalTransition(current, new, client_order_id)
