"""Order path: state machine, ledger/positions, the order table, the order manager and the reconciler."""

from actors.model.positions import PositionView
from actors.model.records import LedgerSnapshot, OrderRecord
from actors.orders.ledger import FillOutcome, Ledger
from actors.orders.order_manager import OrderCommand, OrderManager
from actors.orders.order_table import (
    InFlightOrder,
    OrderCounters,
    OrderManagerSnapshot,
    OrderTable,
    PortfolioPublisher,
)
from actors.orders.reconciler import (
    Discrepancy,
    Reconciler,
    ReconcileReport,
    ReconcileTarget,
    reconcile,
)
from actors.orders.state_machine import IllegalTransition, transition
from actors.ports.stores import OrderStore

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
    "OrderTable",
    "PortfolioPublisher",
    "PositionView",
    "ReconcileReport",
    "ReconcileTarget",
    "Reconciler",
    "reconcile",
    "transition",
]
