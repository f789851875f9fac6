"""Order path: state machine, ledger/positions, the order manager and the reconciler."""

from actors.orders.ledger import FillOutcome, Ledger
from actors.orders.order_manager import InFlightOrder, OrderCommand, OrderCounters, OrderManager, OrderManagerSnapshot
from actors.orders.ports import OrderStore
from actors.orders.positions import PositionView
from actors.orders.reconciler import (
    Discrepancy,
    ReconcilerActor,
    ReconcileReport,
    ReconcileTarget,
    reconcile,
)
from actors.orders.records import LedgerSnapshot, OrderRecord
from actors.orders.state_machine import IllegalTransition, transition

__all__ = [
    "Discrepancy",
    "FillOutcome",
    "IllegalTransition",
    "InFlightOrder",
    "Ledger",
    "LedgerSnapshot",
    "OrderCommand",
    "OrderCounters",
    "OrderManager",
    "OrderManagerSnapshot",
    "OrderRecord",
    "OrderStore",
    "PositionView",
    "ReconcileReport",
    "ReconcileTarget",
    "ReconcilerActor",
    "reconcile",
    "transition",
]
