"""Order state machine: every legal transition of the order state machine, and illegal ones refused."""

from __future__ import annotations

import pytest

from actors.model.orders import TERMINAL_STATUSES, OrderStatus
from actors.orders.state_machine import TRANSITIONS, IllegalTransition, transition

S = OrderStatus

# Written out independently of the module, from §4 (TRIGGERED / PENDING_UPDATE: NautilusTrader).
EXPECTED: dict[OrderStatus, set[OrderStatus]] = {
    S.INITIALIZED: {S.DENIED, S.SUBMITTED},
    S.SUBMITTED: {S.ACCEPTED, S.REJECTED, S.CANCELED, S.PARTIALLY_FILLED, S.FILLED, S.PENDING_CANCEL},
    S.ACCEPTED: {S.PENDING_CANCEL, S.PENDING_UPDATE, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED,
                 S.TRIGGERED},
    S.TRIGGERED: {S.REJECTED, S.PENDING_UPDATE, S.PENDING_CANCEL, S.CANCELED, S.EXPIRED, S.PARTIALLY_FILLED,
                  S.FILLED},
    S.PENDING_UPDATE: {S.REJECTED, S.ACCEPTED, S.CANCELED, S.EXPIRED, S.TRIGGERED, S.PENDING_UPDATE,
                       S.PENDING_CANCEL, S.PARTIALLY_FILLED, S.FILLED},
    S.PARTIALLY_FILLED: {S.PARTIALLY_FILLED, S.PENDING_CANCEL, S.CANCELED, S.FILLED, S.EXPIRED},
    S.PENDING_CANCEL: {S.CANCELED, S.PARTIALLY_FILLED, S.FILLED, S.ACCEPTED},
    S.CANCELED: {S.PARTIALLY_FILLED, S.FILLED},
    S.DENIED: set(),
    S.REJECTED: set(),
    S.FILLED: set(),
    S.EXPIRED: set(),
}
LEGAL = sorted((a, b) for a, targets in EXPECTED.items() for b in targets)
ILLEGAL = sorted((a, b) for a in S for b in S if b not in EXPECTED[a])


def test_table_covers_every_status_exactly() -> None:
    assert set(TRANSITIONS) == set(S)
    assert {k: set(v) for k, v in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(("current", "new"), LEGAL, ids=[f"{a.value}->{b.value}" for a, b in LEGAL])
def test_legal_transition_returns_new_state(current: OrderStatus, new: OrderStatus) -> None:
    assert transition(current, new) is new


@pytest.mark.parametrize(
    ("current", "new"),
    [
        (S.INITIALIZED, S.ACCEPTED),
        (S.INITIALIZED, S.FILLED),
        (S.SUBMITTED, S.SUBMITTED),
        (S.SUBMITTED, S.EXPIRED),
        (S.ACCEPTED, S.SUBMITTED),
        (S.ACCEPTED, S.ACCEPTED),
        (S.ACCEPTED, S.REJECTED),
        (S.PARTIALLY_FILLED, S.ACCEPTED),
        (S.PARTIALLY_FILLED, S.REJECTED),
        (S.PENDING_CANCEL, S.REJECTED),
        (S.FILLED, S.CANCELED),
        (S.FILLED, S.PARTIALLY_FILLED),
        (S.CANCELED, S.ACCEPTED),
        (S.CANCELED, S.CANCELED),
        (S.REJECTED, S.ACCEPTED),
        (S.REJECTED, S.FILLED),
        (S.DENIED, S.SUBMITTED),
        (S.EXPIRED, S.FILLED),
    ],
)
def test_illegal_transition_raises_with_both_states(current: OrderStatus, new: OrderStatus) -> None:
    with pytest.raises(IllegalTransition) as err:
        transition(current, new, "c-1")
    assert err.value.current is current and err.value.new is new
    assert err.value.client_order_id == "c-1"
    assert current.value in str(err.value) and new.value in str(err.value)


def test_every_other_pair_is_illegal() -> None:
    for current, new in ILLEGAL:
        with pytest.raises(IllegalTransition):
            transition(current, new)


def test_terminal_states_admit_only_late_fills() -> None:
    for status in TERMINAL_STATUSES:
        allowed = TRANSITIONS[status]
        assert allowed <= {S.PARTIALLY_FILLED, S.FILLED}
        assert bool(allowed) == (status is S.CANCELED)
