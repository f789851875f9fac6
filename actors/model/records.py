"""Records the order manager keeps and the store persists."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from actors.model.orders import OPEN_STATUSES, TERMINAL_STATUSES, OrderStatus, OrderType, Side
from actors.model.positions import ZERO, PositionView


class OrderRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One order as we know it. Identity is ``client_order_id`` (ours, unique across restarts).

    ``filled``/``avg_price``/``fees`` (quote currency) come from fills; ``reason`` is the
    last reason code (rejection, loss, cancel reason).

    Every order here runs on the venue (native). A native conditional order keeps its
    ``trigger_price``/``trailing_bps``/``display_size``. ``parent`` is the contingent order
    (``actors.contingent``) it belongs to: a child an emulated trigger released, a leg or the
    entry of a bracket. ``list_id`` is the native order list a leg belongs to.
    """

    client_order_id: str
    venue: str
    strategy: str
    symbol: str
    side: Side
    type: OrderType
    size: Decimal
    status: OrderStatus
    price: Decimal | None = None
    venue_order_id: str = ""
    filled: Decimal = ZERO
    avg_price: Decimal | None = None
    fees: Decimal = ZERO
    tag: str = ""
    intent_id: str = ""
    reason: str = ""
    created_ms: int = 0
    updated_ms: int = 0
    trigger_price: Decimal | None = None
    trailing_bps: int | None = None
    display_size: Decimal | None = None
    parent: str = ""
    list_id: str = ""

    @property
    def is_open(self) -> bool:
        """True while the venue may still act on it."""
        return self.status in OPEN_STATUSES

    @property
    def is_terminal(self) -> bool:
        """True once DENIED/REJECTED/FILLED/CANCELED/EXPIRED."""
        return self.status in TERMINAL_STATUSES

    @property
    def remaining(self) -> Decimal:
        """Unfilled size."""
        return self.size - self.filled


class LedgerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Positions and balances at a point of the fill stream.

    ``fill_seq`` is the store's fill sequence (row id) the snapshot includes: on restart
    the ledger restores the snapshot and replays stored fills with a higher sequence. The
    store sets it when it writes the snapshot, after every fill enqueued before it.
    """

    ts_ms: int
    positions: tuple[PositionView, ...] = ()
    balances: dict[str, Decimal] = msgspec.field(default_factory=dict)
    fill_seq: int = 0
    source: str = "ledger"
