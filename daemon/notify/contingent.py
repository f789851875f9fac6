"""Contingent orders in notifications: which child fills are protective exits, which orders FAILED.

The contingent-order manager (``actors.contingent``) runs stops, take-profits, trailing
stops, OCO and OTO pairs, brackets, icebergs and TWAPs; every venue order it sends carries
``parent``, the contingent order's id. Two things are read from it here, both off the
trading path's critical work:

* ``is_protective_child``: is a venue order of a contingent order an exit that protects a
  position? Decided from the contingent order's ``ContingentView`` (its kind, and the leg
  that lists the client order id), by the rule the manager uses for
  ``OrderIntent.protective``: every order of a stop, take-profit, trailing stop or OCO; a
  bracket's exits but not its entry; an OTO's pending order when it is on the other side of
  its working order (an exit), not its working order; never an iceberg's or a TWAP's slice.
  The order record does not keep ``protective``, and the manager drops a contingent order
  from its book once it is final, so the service reads the view in the event router's tap
  (``ContingencyManager.view_of``), before the router hands the fill to the manager.
* ``ObservedContingentStore``: the manager's store with a tap on every save the store
  accepted, so each contingent order that ends ``FAILED`` is seen once, whatever the path
  (the risk gate's denials given up on, a venue rejecting its orders, a native type the venue
  refuses, a bracket's entry rejected): the durable save of the final state is the one step
  all of them share.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from actors.contingent.kinds import row_view
from actors.model.contingent import ContingentKind, ContingentRow, ContingentView, LegView
from actors.model.orders import OrderEvent
from actors.ports.stores import ContingentStore

__all__ = [
    "ChildFill",
    "ContingentLookup",
    "ObservedContingentStore",
    "RowsTap",
    "contingent_view",
    "exits_protect",
    "is_protective_child",
    "leg_of",
]

#: A contingent order's view by contingent id, while the manager holds it (``ContingencyManager.view_of``).
ContingentLookup = Callable[[str], ContingentView | None]
#: Called with the rows a contingent store accepted.
RowsTap = Callable[[Sequence[ContingentRow]], None]

#: Kinds whose every order is an exit of an existing position.
_EXIT_KINDS = frozenset({ContingentKind.STOP.value, ContingentKind.TAKE_PROFIT.value,
                         ContingentKind.TRAILING_STOP.value, ContingentKind.OCO.value})


@dataclasses.dataclass(frozen=True)
class ChildFill:
    """A fill of an order with a ``parent``, and its contingent order as it was when the fill was
    routed (None: the manager no longer held it, e.g. a late fill of a finished order)."""

    event: OrderEvent
    contingent: ContingentView | None


def leg_of(view: ContingentView, client_order_id: str) -> LegView | None:
    """The leg of ``view`` that lists ``client_order_id`` (None: no leg does)."""
    return next((leg for leg in view.legs if client_order_id in leg.client_order_ids), None)


def exits_protect(view: ContingentView) -> bool:
    """True when the exits of the contingent order ``view`` protect a position: a stop, take-profit,
    trailing stop, OCO or bracket, an OTO whose pending order is on the other side of its working
    order; not an OTO that adds to a position, an iceberg or a TWAP (they trade, they protect nothing)."""
    if view.kind in _EXIT_KINDS or view.kind == ContingentKind.BRACKET.value:
        return True
    if view.kind == ContingentKind.OTO.value:
        legs = {leg.name: leg for leg in view.legs}
        working, pending = legs.get("working"), legs.get("pending")
        return working is not None and pending is not None and pending.side != working.side
    return False


def is_protective_child(view: ContingentView, client_order_id: str) -> bool:
    """True when the order ``client_order_id`` of the contingent order ``view`` is a protective exit
    (see the module docstring): not a bracket's entry, not an OTO's working order."""
    if not exits_protect(view):
        return False
    if view.kind in _EXIT_KINDS:
        return True
    first = leg_of(view, client_order_id)
    return first is None or first.name not in ("entry", "working")


def contingent_view(row: ContingentRow) -> ContingentView:
    """A stored contingent order as operators see it (``kinds.row_view``; an unreadable body is logged)."""
    return row_view(row, structlog.get_logger("aaiti").bind(actor="notify"))


class ObservedContingentStore:
    """A ``ContingentStore`` that calls ``on_saved(rows)`` after the wrapped store accepted a save.

    ``on_saved`` runs in the saving task (the manager's, or the feed's for a crossed trigger),
    so it must be cheap; an exception it raises is logged and swallowed (a notification never
    fails a save). A save the store refuses raises as before and is not reported: the manager
    puts that order back as last saved and tries again.
    """

    def __init__(self, store: ContingentStore, on_saved: RowsTap) -> None:
        self._store = store
        self._on_saved = on_saved
        self._log: Any = structlog.get_logger("aaiti").bind(actor="notify")

    def next_client_order_id(self, prefix: str = "aa") -> str:
        """The wrapped store's next id."""
        return self._store.next_client_order_id(prefix)

    async def save_contingents(self, rows: Sequence[ContingentRow]) -> None:
        """Save (committed), then report the rows."""
        await self._store.save_contingents(rows)
        self._report(rows)

    def save_contingents_nowait(self, rows: Sequence[ContingentRow]) -> None:
        """Save behind, then report the rows the store accepted."""
        self._store.save_contingents_nowait(rows)
        self._report(rows)

    async def active_contingents(self) -> list[ContingentRow]:
        """The wrapped store's active rows."""
        return await self._store.active_contingents()

    async def contingent(self, contingent_id: str) -> ContingentRow | None:
        """The wrapped store's row by id."""
        return await self._store.contingent(contingent_id)

    async def recent_contingents(self, limit: int = 100, *, active_only: bool = False) -> list[ContingentRow]:
        """The wrapped store's newest rows."""
        return await self._store.recent_contingents(limit, active_only=active_only)

    def _report(self, rows: Sequence[ContingentRow]) -> None:
        try:
            self._on_saved(rows)
        except Exception as exc:
            self._log.error("notify.contingent_tap_failed", error=repr(exc))
