"""The registry of contingent-order kinds: which class holds each ``ContingentKind``, and which
kind an approved intent or list becomes (``create``).

The families live in their own modules (``single``, ``sliced``, ``linked``, ``bracket``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Protocol, cast

from actors.contingent.base import BookContext, ContingentOrder
from actors.contingent.bracket import Bracket
from actors.contingent.linked import Oco
from actors.contingent.oto import Oto
from actors.contingent.single import StopOrder, TakeProfitOrder, TrailingStopOrder, trigger_kind
from actors.contingent.sliced import Iceberg, Twap
from actors.model.contingent import ContingentKind, ContingentRow, ContingentView
from actors.model.orders import CONDITIONAL_TYPES, ApprovedIntent, ApprovedList, ListKind

__all__ = ["KINDS", "KindUnavailable", "class_of", "create", "kind_of", "row_view"]

#: Every kind's class. Read-only.
KINDS: Mapping[ContingentKind, type[ContingentOrder]] = MappingProxyType({
    ContingentKind.STOP: StopOrder,
    ContingentKind.TAKE_PROFIT: TakeProfitOrder,
    ContingentKind.TRAILING_STOP: TrailingStopOrder,
    ContingentKind.ICEBERG: Iceberg,
    ContingentKind.TWAP: Twap,
    ContingentKind.OCO: Oco,
    ContingentKind.OTO: Oto,
    ContingentKind.BRACKET: Bracket,
})

_LIST_KINDS: Mapping[ListKind, ContingentKind] = MappingProxyType({
    ListKind.OCO: ContingentKind.OCO,
    ListKind.OTO: ContingentKind.OTO,
    ListKind.BRACKET: ContingentKind.BRACKET,
})


class KindUnavailable(KeyError):
    """A kind this build has no class for (a row written by another version)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "contingent kind not available"


class _FromApproved(Protocol):
    """What every kind's class offers besides ``ContingentOrder``: construction from an approval."""

    def from_approved(self, approved: Any, ctx: BookContext) -> ContingentOrder:
        """A new contingent order (not started) for an approved intent or list."""
        ...


def class_of(kind: ContingentKind) -> type[ContingentOrder]:
    """The class of ``kind``; ``KindUnavailable`` when this build has none."""
    try:
        return KINDS[kind]
    except KeyError:
        raise KindUnavailable(f"contingent kind {kind!s} not available") from None


def kind_of(approved: ApprovedIntent | ApprovedList) -> ContingentKind:
    """Which kind an approval becomes: a list by its ``ListKind``; an intent: ``twap`` -> TWAP,
    ``display_size`` -> iceberg, else a conditional type or ``trailing`` -> a trigger order.
    ValueError for a plain intent (it never comes here)."""
    if isinstance(approved, ApprovedList):
        return _LIST_KINDS[approved.order_list.kind]
    intent = approved.intent
    if intent.twap is not None:
        return ContingentKind.TWAP
    if intent.display_size is not None:
        return ContingentKind.ICEBERG
    if intent.trailing is not None or intent.type in CONDITIONAL_TYPES:
        return trigger_kind(intent)
    raise ValueError(f"a plain {intent.type.value} intent is not a contingent order")


def create(approved: ApprovedIntent | ApprovedList, ctx: BookContext) -> ContingentOrder:
    """A new contingent order (not started) of the kind ``approved`` asks for.

    Raises ``KindUnavailable`` when that kind's module is missing, ValueError when the
    approval does not describe a valid order of its kind.
    """
    cls = class_of(kind_of(approved))
    return cast(_FromApproved, cls).from_approved(approved, ctx)


def row_view(row: ContingentRow, log: Any) -> ContingentView:
    """A stored contingent order as operators see it; its summary columns alone when its body
    cannot be read (a kind this build lacks, a body from another version), which ``log`` (a
    structlog logger) reports as ``contingent.row_unreadable``: a display or a message must not
    fail on one unreadable row."""
    try:
        return KINDS[row.kind].from_row(row).view()
    except Exception as exc:
        log.warning("contingent.row_unreadable", contingent_id=row.id, error=repr(exc))
        return ContingentView(id=row.id, strategy=row.strategy, symbol=row.symbol, kind=row.kind.value,
                              mode=row.mode.value, status=row.status.value, created_ms=row.created_ms,
                              updated_ms=row.updated_ms)
