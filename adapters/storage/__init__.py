"""SQLite state storage (aiosqlite): orders, fills, snapshots, risk events, state, audit log."""

from adapters.storage.audit import AuditReport, verify_audit
from adapters.storage.errors import StoreError
from adapters.storage.paths import state_db_path
from adapters.storage.store import AuditEntry, OrderEventRecord, RiskEventRecord, Store, StoreStats

__all__ = [
    "AuditEntry",
    "AuditReport",
    "OrderEventRecord",
    "RiskEventRecord",
    "Store",
    "StoreError",
    "StoreStats",
    "state_db_path",
    "verify_audit",
]
