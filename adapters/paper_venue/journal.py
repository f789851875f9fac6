"""Between the matching engine and the account store: rows of the paper account, and the journal.

``AccountJournal`` receives each change the engine makes and puts its rows (the state at
that moment) and the updates to publish into the store's pending batch; a fill or an order
change schedules a commit at once, since no caller waits for what market data changes.
"""

from __future__ import annotations

from decimal import Decimal

from actors.model.orders import Fill, OrderStatus, OrderType, Side, VenueOrder
from adapters.paper_venue.matching import PaperOrder, Wallet
from adapters.storage.paper_account import FillRow, OrderRow, PaperAccountStore

__all__ = ["AccountJournal", "fill_from_row", "order_from_row", "order_row"]


def order_row(o: PaperOrder) -> OrderRow:
    """The stored row of an order."""
    return (
        o.cid,
        o.vid,
        o.symbol,
        o.side.value,
        o.type.value,
        o.status.value,
        str(o.size),
        str(o.price) if o.price is not None else None,
        str(o.filled),
        str(o.cost),
        str(o.fees),
        str(o.locked),
        o.seq,
        o.created_ms,
        o.updated_ms,
        o.reason,
    )


def order_from_row(r: OrderRow) -> PaperOrder:
    """An order from its stored row."""
    o = PaperOrder(
        r[0], r[1], r[2], Side(r[3]), OrderType(r[4]), Decimal(r[6]),
        Decimal(r[7]) if r[7] is not None else None, int(r[12]), int(r[13]),
    )
    o.status = OrderStatus(r[5])
    o.filled = Decimal(r[8])
    o.cost = Decimal(r[9])
    o.fees = Decimal(r[10])
    o.locked = Decimal(r[11])
    o.updated_ms = int(r[14])
    o.reason = r[15]
    return o


def fill_row(f: Fill) -> FillRow:
    """The stored row of a fill."""
    return (
        f.trade_id, f.client_order_id, f.venue_order_id, f.symbol, f.side.value, str(f.price), str(f.size),
        str(f.fee), f.fee_currency, f.liquidity, f.ts_ms,
    )


def fill_from_row(venue: str, r: FillRow) -> Fill:
    """A fill of ``venue`` from its stored row."""
    return Fill(
        venue=venue, trade_id=r[0], client_order_id=r[1], venue_order_id=r[2], symbol=r[3], side=Side(r[4]),
        price=Decimal(r[5]), size=Decimal(r[6]), fee=Decimal(r[7]), fee_currency=r[8], liquidity=r[9],
        ts_ms=int(r[10]),
    )


class AccountJournal:
    """A ``MatchingJournal`` that records the engine's changes in a ``PaperAccountStore``'s pending batch."""

    __slots__ = ("_store",)

    def __init__(self, store: PaperAccountStore) -> None:
        self._store = store

    def order_changed(self, order: PaperOrder, view: VenueOrder) -> None:
        """Store the order's row; publish ``view`` once committed; commit soon.

        Market data can change an order without a fill (a market order expiring), with no
        caller waiting to commit it.
        """
        store = self._store
        batch = store.pending
        batch.orders[order.cid] = order_row(order)
        batch.updates.append(view)
        store.changed()

    def order_filled(self, order: PaperOrder, fill: Fill, view: VenueOrder) -> None:
        """Store the fill and the order's row; publish both once committed; commit soon."""
        store = self._store
        batch = store.pending
        batch.fills.append(fill_row(fill))
        batch.orders[order.cid] = order_row(order)
        batch.updates.append(fill)
        batch.updates.append(view)
        store.changed()

    def balance_changed(self, asset: str, wallet: Wallet) -> None:
        """Store the asset's balance."""
        self._store.pending.balances[asset] = (asset, str(wallet.free), str(wallet.locked))

    def order_ids_advanced(self, next_id: int) -> None:
        """Store the order id counter."""
        self._store.pending.meta["next_order_id"] = str(next_id)

    def trade_ids_advanced(self, next_id: int) -> None:
        """Store the trade id counter."""
        self._store.pending.meta["next_trade_id"] = str(next_id)
