"""SQLite state storage (aiosqlite): orders, fills, snapshots, risk events, state, audit log."""

from adapters.storage.audit import AuditKey, AuditReport, load_audit_key, verify_audit
from adapters.storage.errors import StoreError
from adapters.storage.paths import state_db_path
from adapters.storage.store import AuditEntry, OrderEventRecord, RiskEventRecord, Store, StoreStats

__all__ = [
    "AuditEntry",
    "AuditKey",
    "AuditReport",
    "OrderEventRecord",
    "RiskEventRecord",
    "Store",
    "StoreError",
    "StoreStats",
    "load_audit_key",
    "state_db_path",
    "verify_audit",
]
