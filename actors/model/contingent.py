"""Contingent orders: the protective and algorithmic orders the daemon manages.

A contingent order is one stop, take-profit or trailing stop, an OCO pair, an OTO pair, a
bracket (entry plus exits), an iceberg or a TWAP. The contingent-order manager
(``actors.contingent``) owns them: it sends them natively where the venue has the type
(the venue holds the trigger) or emulates them (the daemon watches every market event and
releases a market or limit child order when the trigger is crossed). Either way its state
is written ahead (``ContingentRow``, committed before anything it describes is sent), so a
restart after kill -9 resumes every trigger, trailing level, linked leg and TWAP schedule.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from actors.model.orders import ExecutionMode


class ContingentKind(StrEnum):
    """What a contingent order is."""

    STOP = "stop"
    TAKE_PROFIT = "take_profit"
    TRAILING_STOP = "trailing_stop"
    OCO = "oco"
    OTO = "oto"
    BRACKET = "bracket"
    ICEBERG = "iceberg"
    TWAP = "twap"


class ContingentStatus(StrEnum):
    """Life of a contingent order.

    ``PENDING``: written ahead, nothing sent yet. ``WORKING``: its first order is out (an
    entry, a native order, an iceberg slice, a TWAP slice) or its emulated triggers are
    armed. ``TRIGGERED``: an emulated trigger fired and its child order is on the way.
    Final: ``DONE`` (filled or exited as planned), ``CANCELED`` (by the strategy, the
    operator or the kill switch; a leg whose sibling filled), ``FAILED`` (the venue or the
    risk gate refused what it needed to send; the reason says why).
    """

    PENDING = "PENDING"
    WORKING = "WORKING"
    TRIGGERED = "TRIGGERED"
    DONE = "DONE"
    CANCELED = "CANCELED"
    FAILED = "FAILED"


ACTIVE_CONTINGENT_STATUSES = frozenset({ContingentStatus.PENDING, ContingentStatus.WORKING, ContingentStatus.TRIGGERED})

#: Reason code of the ``OrderDenied`` a strategy gets once the contingent-order manager gave
#: up on one of its orders after the risk gate denied a release (a bracket's entry, an OTO's
#: working order, a child retried ``[orders] max_child_attempts`` times). The intent is the
#: one denied last (for a bracket's entry: the strategy's own intent id); ``detail`` names the
#: last denial's reason and how many times it was denied.
CONTINGENT_GIVEN_UP = "CONTINGENT_GIVEN_UP"


class ContingentRow(msgspec.Struct, frozen=True, kw_only=True):
    """A contingent order as the store keeps it: identity and summary columns plus its full
    state as JSON in ``body`` (the manager's own format; the store never reads it)."""

    id: str
    strategy: str
    symbol: str
    kind: ContingentKind
    mode: ExecutionMode
    status: ContingentStatus
    body: str
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def active(self) -> bool:
        """True while it may still send or hold anything."""
        return self.status in ACTIVE_CONTINGENT_STATUSES


class LegView(msgspec.Struct, frozen=True, kw_only=True):
    """One leg of a contingent order as operators see it.

    ``name``: ``order`` (a single stop/take-profit/trailing stop), ``entry``, ``take_profit``,
    ``stop_loss``, ``above``/``below`` (OCO), ``working``/``pending`` (OTO), ``slice``.
    ``trigger_price`` of a trailing stop is its current level. ``client_order_ids``: the
    venue orders this leg sent so far (a native order, or the children it released).
    """

    name: str
    type: str
    side: str
    status: str
    size: str | None = None
    filled: str = "0"
    trigger_price: str | None = None
    limit_price: str | None = None
    trailing: str | None = None
    client_order_ids: tuple[str, ...] = ()


class ContingentView(msgspec.Struct, frozen=True, kw_only=True):
    """A contingent order as the admin API, the CLI and the console show it (decimals as strings)."""

    id: str
    strategy: str
    symbol: str
    kind: str
    mode: str
    status: str
    trigger: str = "last"
    protected: str | None = None
    reason: str = ""
    legs: tuple[LegView, ...] = ()
    created_ms: int = 0
    updated_ms: int = 0
