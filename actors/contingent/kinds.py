"""The registry of contingent-order kinds: which class holds each ``ContingentKind``, and which
kind an approved intent or list becomes (``create``).

The families live in their own modules (``single``, ``sliced``, ``linked``, ``bracket``); a
kind's module is imported the first time that kind is needed, so a missing module makes only
that kind unavailable (``KindUnavailable``), never the manager.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, Protocol, cast

from actors.contingent.base import BookContext, ContingentOrder
from actors.contingent.single import StopOrder, TakeProfitOrder, TrailingStopOrder, trigger_kind
from actors.model.contingent import ContingentKind
from actors.model.orders import CONDITIONAL_TYPES, ApprovedIntent, ApprovedList, ListKind

__all__ = ["KINDS", "KindRegistry", "KindUnavailable", "create", "kind_of"]

#: Where each kind's class lives: (module, class name). Read-only.
_SOURCES: Mapping[ContingentKind, tuple[str, str]] = MappingProxyType({
    ContingentKind.STOP: ("actors.contingent.single", StopOrder.__name__),
    ContingentKind.TAKE_PROFIT: ("actors.contingent.single", TakeProfitOrder.__name__),
    ContingentKind.TRAILING_STOP: ("actors.contingent.single", TrailingStopOrder.__name__),
    ContingentKind.ICEBERG: ("actors.contingent.sliced", "Iceberg"),
    ContingentKind.TWAP: ("actors.contingent.sliced", "Twap"),
    ContingentKind.OCO: ("actors.contingent.linked", "Oco"),
    ContingentKind.OTO: ("actors.contingent.linked", "Oto"),
    ContingentKind.BRACKET: ("actors.contingent.bracket", "Bracket"),
})

_LIST_KINDS: Mapping[ListKind, ContingentKind] = MappingProxyType({
    ListKind.OCO: ContingentKind.OCO,
    ListKind.OTO: ContingentKind.OTO,
    ListKind.BRACKET: ContingentKind.BRACKET,
})


class KindUnavailable(KeyError):
    """A kind whose module or class is not there (this build does not have it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "contingent kind not available"


class _FromApproved(Protocol):
    """What every kind's class offers besides ``ContingentOrder``: construction from an approval."""

    def from_approved(self, approved: Any, ctx: BookContext) -> ContingentOrder:
        """A new contingent order (not started) for an approved intent or list."""
        ...


class KindRegistry(Mapping[ContingentKind, type[ContingentOrder]]):
    """``ContingentKind`` -> class, importing a kind's module when first looked up."""

    def __getitem__(self, kind: ContingentKind) -> type[ContingentOrder]:
        try:
            module_name, class_name = _SOURCES[kind]
        except KeyError:
            raise KindUnavailable(f"contingent kind {kind!s} not available: unknown kind") from None
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # the module is there but something it imports is not: a real error
            raise KindUnavailable(f"contingent kind {kind.value} not available: no module {module_name}") from None
        cls = getattr(module, class_name, None)
        if not (isinstance(cls, type) and issubclass(cls, ContingentOrder)):
            raise KindUnavailable(f"contingent kind {kind.value} not available: no class {module_name}.{class_name}")
        return cls

    def __contains__(self, kind: object) -> bool:
        return kind in _SOURCES

    def __iter__(self) -> Iterator[ContingentKind]:
        return iter(_SOURCES)

    def __len__(self) -> int:
        return len(_SOURCES)


#: Every kind's class (lookups raise ``KindUnavailable`` for a kind this build lacks).
KINDS: Mapping[ContingentKind, type[ContingentOrder]] = KindRegistry()


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
    cls = KINDS[kind_of(approved)]
    return cast(_FromApproved, cls).from_approved(approved, ctx)
