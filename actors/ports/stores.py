"""What the trading actors need from storage (``adapters.storage.Store`` fits every Protocol here).

Actors see the store through these Protocols, as they see venues through ``actors.ports.venue``:
``OrderStore`` for the order manager and the reconciler, ``RiskEventSink`` and ``StateStore``
for the risk gate, ``ArchiveStore`` for the retention actor, ``ContingentStore`` for the
contingent-order manager.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec

from actors.model.contingent import ContingentRow
from actors.model.orders import Fill, OrderDenied, OrderEvent
from actors.model.records import LedgerSnapshot, OrderRecord


class OrderStore(Protocol):
    """Durable order state. Awaited writes return after commit; ``*_nowait`` are write-behind."""

    @property
    def backlog(self) -> int:
        """Queued writes not yet committed."""
        ...

    def next_client_order_id(self, prefix: str = "aa") -> str:
        """A client order id unique across restarts."""
        ...

    async def insert_orders(self, records: Sequence[OrderRecord]) -> None:
        """Write-ahead insert (all or none), committed before returning. Raises StoreError."""
        ...

    def update_order_nowait(self, record: OrderRecord) -> None:
        """Write-behind upsert of an order's mutable fields."""
        ...

    def append_order_event_nowait(self, event: OrderEvent) -> None:
        """Write-behind append to the order's event history."""
        ...

    def insert_fill_nowait(self, fill: Fill) -> None:
        """Write-behind fill insert (duplicates ignored)."""
        ...

    def append_audit_nowait(self, kind: str, payload: Mapping[str, Any], *, ts_ms: int | None = None) -> None:
        """Write-behind hash-chained audit row."""
        ...

    async def append_audit(self, kind: str, payload: Mapping[str, Any], *, ts_ms: int | None = None) -> None:
        """Audit row, committed before returning."""
        ...

    def save_ledger_snapshot_nowait(self, snapshot: LedgerSnapshot) -> None:
        """Write-behind positions/balances snapshot."""
        ...

    async def save_ledger_snapshot(self, snapshot: LedgerSnapshot) -> int:
        """Snapshot committed before returning; returns the fill sequence it includes."""
        ...

    async def latest_ledger_snapshot(self, source: str = "ledger") -> LedgerSnapshot | None:
        """The newest snapshot."""
        ...

    async def open_orders(self) -> list[OrderRecord]:
        """Orders the venue may still act on."""
        ...

    async def filled_awaiting_fills(self, since_ms: int) -> list[OrderRecord]:
        """FILLED orders changed since ``since_ms`` whose stored fills do not add up to their size yet."""
        ...

    async def order(self, client_order_id: str) -> OrderRecord | None:
        """One order (open or closed) by client order id; None if never written. Raises StoreError."""
        ...

    async def fills_after(self, fill_seq: int) -> list[tuple[int, Fill]]:
        """Fills stored after a sequence number."""
        ...

    async def fills_for_orders(self, client_order_ids: Iterable[str]) -> list[Fill]:
        """Every stored fill of the given orders."""
        ...

    async def fill_keys_since(self, since_ms: int, limit: int = 1_000_000) -> list[tuple[str, str]]:
        """(venue, trade_id) of recent fills."""
        ...

    async def flush(self) -> None:
        """Wait for queued writes to commit."""
        ...


class RiskEventSink(Protocol):
    """Durable storage of risk decisions."""

    async def record_risk_event(self, denial: OrderDenied) -> None:
        """Store one denial: reason code, intent, limit, detail."""
        ...

    async def append_audit(self, kind: str, payload: Mapping[str, Any], *, ts_ms: int | None = None) -> None:
        """Append an audit row (trading-state changes, refused commands, loss-limit halts)."""
        ...


class StateStore(Protocol):
    """A durable key/value store of JSON values."""

    async def get_state(self, key: str) -> Any:
        """The stored value of ``key``, or None."""
        ...

    async def set_state(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` durably."""
        ...


class ArchivedSegment(msgspec.Struct, frozen=True, kw_only=True):
    """What one archive step moved out of the live database into one segment file.

    ``skipped_orders``: orders written to the segment that changed before their deletion
    and so stayed live (a later segment archives them again). ``full``: a limit of the step
    was reached, so more rows may be waiting.
    """

    seq: int
    name: str
    orders: int
    order_events: int
    fills: int
    risk_events: int
    audit_rows: int
    skipped_orders: int
    full: bool


class ArchiveStore(Protocol):
    """Moves old rows of the live database to archive segment files (retention)."""

    async def save_ledger_snapshot(self, snapshot: LedgerSnapshot) -> int:
        """Snapshot committed before returning; returns the fill sequence it includes."""
        ...

    async def archive_segment(
        self, *, now_ms: int, keep_ms: int, archive_dir: Path, max_orders: int, max_audit_rows: int
    ) -> ArchivedSegment | None:
        """Archive one segment of rows older than ``now_ms - keep_ms`` (business time) into ``archive_dir``.

        The segment file is durable before its rows are deleted; None when nothing is old
        enough. Raises ``StoreError`` (or ``OSError`` for the archive directory).
        """
        ...


class ContingentStore(Protocol):
    """Where the contingent-order manager writes its state ahead (``actors.model.contingent``)."""

    def next_client_order_id(self, prefix: str = "aa") -> str:
        """A fresh id unique across restarts (also used for contingent ids and their children)."""
        ...

    async def save_contingents(self, rows: Sequence[ContingentRow]) -> None:
        """Upsert rows in one transaction; returns once committed (write-ahead: before any send)."""

    def save_contingents_nowait(self, rows: Sequence[ContingentRow]) -> None:
        """Upsert rows behind (a trailing level that moved: losing it only makes the stop looser)."""

    async def active_contingents(self) -> list[ContingentRow]:
        """Every contingent order not yet final, oldest first."""
        ...

    async def contingent(self, contingent_id: str) -> ContingentRow | None:
        """One contingent order by id."""
        ...

    async def recent_contingents(self, limit: int = 100, *, active_only: bool = False) -> list[ContingentRow]:
        """The newest contingent orders first."""
        ...
