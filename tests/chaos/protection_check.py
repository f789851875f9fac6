"""Reading and checking the protective-order invariants of a crash run (issue 11's acceptance).

Two sources, read separately and compared:

* our side: the brackets as the contingent-order manager wrote them ahead, read from the
  daemon's state database (table ``contingent_orders``, opened read-only) and rebuilt with the
  manager's own classes (``actors.contingent.kinds.KINDS``), so emulated legs' armed quantity
  is exactly what the manager would watch after a restart;
* the venue's side: the simulator's orders, fills and request log (``VenueTruth``), the truth
  about what is filled and what is still open.

``check`` turns them into three kinds of problems:

* unprotected: a bracket (or a symbol) whose filled-but-not-exited quantity at the venue is
  more than what covers it (armed emulated legs + open native exit orders + open exit children),
  or a final bracket that left at least one quantity step held;
* duplicate legs: a client order id POSTed twice or present twice at the venue, two venue
  order lists for one native chunk, two active brackets on one entry, cover above the position;
* orphan legs: an exit order still open at the venue whose sibling filled, or whose bracket is
  final, or that belongs to no bracket; armed legs of a bracket with nothing left to protect.

What a bracket protects is measured as the daemon sizes its exits (``actors.contingent.net_fill``):
a buy entry's fills credit their quantity less a commission charged in the base asset (the
simulator charges a buy's fee in the asset bought, as Binance does without BNB), and the exits
cover that net rounded *down* to the symbol's quantity step (the venue's, read from the
simulator). The rest below the step is dust no order can sell: it stays held, and is no failure.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs

from actors.contingent.bracket import Bracket
from actors.contingent.kinds import KINDS
from actors.contingent.net_fill import sellable
from actors.model.contingent import ContingentKind, ContingentRow, ContingentStatus
from actors.model.orders import ExecutionMode
from adapters.binance_sim import BinanceSimulator
from tests.chaos.harness import PREFIX, UNIFIED, SimThread

ZERO = Decimal(0)
#: Binance statuses of an order still open (a stop not yet triggered is NEW).
OPEN = frozenset({"NEW", "PARTIALLY_FILLED"})
#: Venue order types of native exits.
EXIT_TYPES = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT", "LIMIT_MAKER"})
OCO_PATH = "/api/v3/orderList/oco"


# -- our side ------------------------------------------------------------------------------------
def read_rows(db: Path) -> list[ContingentRow]:
    """Every contingent order in the state database ``db`` (read-only; [] before the table exists)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        cur = conn.execute("SELECT id, strategy, symbol, kind, mode, status, body, created_ms, updated_ms "
                           "FROM contingent_orders ORDER BY created_ms, id")
        return [ContingentRow(id=r[0], strategy=r[1], symbol=r[2], kind=ContingentKind(r[3]),
                              mode=ExecutionMode(r[4]), status=ContingentStatus(r[5]), body=r[6],
                              created_ms=r[7], updated_ms=r[8]) for r in cur.fetchall()]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        conn.close()


def read_brackets(db: Path) -> list[Bracket]:
    """The brackets of ``db``, rebuilt as the manager rebuilds them at a restart."""
    out = []
    for row in read_rows(db):
        if row.kind is not ContingentKind.BRACKET:
            continue
        order = KINDS[row.kind].from_row(row)
        assert isinstance(order, Bracket), type(order)
        out.append(order)
    return out


# -- the venue's side ----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class VenueOrder:
    """One of our orders at the simulator."""

    client_order_id: str
    symbol: str
    side: str
    type: str
    status: str
    orig_qty: Decimal
    executed: Decimal
    stop_price: Decimal
    price: Decimal
    list_id: int
    fills: int
    #: Commission charged in the base asset over its fills (a buy's fee at the simulator).
    base_fees: Decimal = ZERO

    @property
    def open(self) -> bool:
        """NEW or PARTIALLY_FILLED (a stop waiting for its trigger is NEW)."""
        return self.status in OPEN

    @property
    def remaining(self) -> Decimal:
        """Quantity not executed yet."""
        return self.orig_qty - self.executed

    @property
    def credited(self) -> Decimal:
        """What its fills credited, as the daemon counts a bracket's entry (``Bracket.net_filled``):
        a buy's executed quantity less its base-asset commission; a sell's executed quantity."""
        return self.executed - self.base_fees if self.side == "BUY" else self.executed

    @property
    def held(self) -> Decimal:
        """What its fills changed the account's base asset by: the signed executed quantity less
        the base-asset commission (a buy credits less than it traded; a sell's base fee is on top)."""
        return (self.executed if self.side == "BUY" else -self.executed) - self.base_fees


@dataclasses.dataclass(frozen=True)
class VenueTruth:
    """The simulator's orders of ours (by client id; a list so duplicates show), our position per
    symbol from its fills (net of base-asset commissions: what the account holds), each symbol's
    quantity step, and every POST of an order or an OCO list (client id -> answers)."""

    orders: dict[str, list[VenueOrder]]
    positions: dict[str, Decimal]
    order_posts: dict[str, list[tuple[int | None, int | None]]]
    list_posts: dict[str, list[tuple[int | None, int | None]]]
    steps: dict[str, Decimal] = dataclasses.field(default_factory=dict)

    def order(self, coid: str) -> VenueOrder | None:
        """The latest venue order with ``coid``."""
        found = self.orders.get(coid)
        return found[-1] if found else None

    def executed(self, coid: str) -> Decimal:
        """What the venue executed of ``coid`` (0 when it never saw it)."""
        return sum((o.executed for o in self.orders.get(coid, ())), ZERO)

    def credited(self, coid: str) -> Decimal:
        """What the fills of ``coid`` credited (``VenueOrder.credited``; 0 when the venue never saw it)."""
        return sum((o.credited for o in self.orders.get(coid, ())), ZERO)

    def held(self, coid: str) -> Decimal:
        """What the fills of ``coid`` changed the account's base asset by (``VenueOrder.held``)."""
        return sum((o.held for o in self.orders.get(coid, ())), ZERO)


def _params(body: str, query: str) -> dict[str, list[str]]:
    out = parse_qs(query)
    for k, v in parse_qs(body).items():
        out.setdefault(k, []).extend(v)
    return out


def _venue_truth(sim: BinanceSimulator) -> VenueTruth:
    orders: dict[str, list[VenueOrder]] = {}
    positions: dict[str, Decimal] = {}
    steps: dict[str, Decimal] = {}
    for venue_id, unified in UNIFIED.items():
        cfg = sim.exchange.symbols[venue_id].cfg
        steps[unified] = cfg.step_size
        mine = {o.order_id: o for o in sim.exchange.orders.all_orders(venue_id) if o.client_order_id.startswith(PREFIX)}
        pos = ZERO
        base_fees: dict[int, Decimal] = {}
        for f in sim.exchange.orders.fills(venue_id):
            order = mine.get(f.order_id)
            if order is None:
                continue
            fee = f.commission if f.commission_asset == cfg.base_asset else ZERO
            base_fees[f.order_id] = base_fees.get(f.order_id, ZERO) + fee
            pos += (f.qty if order.side == "BUY" else -f.qty) - fee
        positions[unified] = pos
        for o in mine.values():
            orders.setdefault(o.client_order_id, []).append(VenueOrder(
                client_order_id=o.client_order_id, symbol=unified, side=o.side, type=o.type, status=o.status.value,
                orig_qty=o.orig_qty, executed=o.executed_qty, stop_price=o.stop_price, price=o.price,
                list_id=o.order_list_id, fills=len(o.fills), base_fees=base_fees.get(o.order_id, ZERO)))
    order_posts: dict[str, list[tuple[int | None, int | None]]] = {}
    for req in sim.requests.find("POST", "/api/v3/order"):
        coid = _params(req.body, req.query).get("newClientOrderId", [""])[0]
        if coid.startswith(PREFIX):
            order_posts.setdefault(coid, []).append((req.status, req.error_code))
    list_posts: dict[str, list[tuple[int | None, int | None]]] = {}
    for req in sim.requests.find("POST", OCO_PATH):
        params = _params(req.body, req.query)
        for key in ("listClientOrderId", "aboveClientOrderId", "belowClientOrderId"):
            coid = params.get(key, [""])[0]
            if coid.startswith(PREFIX):
                list_posts.setdefault(coid, []).append((req.status, req.error_code))
    return VenueTruth(orders, positions, order_posts, list_posts, steps)


def venue_truth(st: SimThread) -> VenueTruth:
    """Read the simulator's truth in one step on its loop (a consistent snapshot)."""
    return st.call(_venue_truth, st.sim)


def repeated_posts(posts: Mapping[str, list[tuple[int | None, int | None]]]) -> dict[str, list[tuple[int | None,
                                                                                                   int | None]]]:
    """Client ids POSTed again after an attempt that did not definitely fail (see ``duplicate_posts``)."""
    out = {}
    for coid, attempts in posts.items():
        for status, code in attempts[:-1]:
            if not (status is not None and 400 <= status < 500 and status not in (418, 429) and code is not None):
                out[coid] = attempts
                break
    return out


# -- the check -----------------------------------------------------------------------------------
@dataclasses.dataclass
class Findings:
    """Problems by kind (empty lists: the invariants hold) and what was covered."""

    unprotected: list[str] = dataclasses.field(default_factory=list)
    duplicate: list[str] = dataclasses.field(default_factory=list)
    orphan: list[str] = dataclasses.field(default_factory=list)
    #: Position per symbol at the venue and what covers it.
    positions: dict[str, Decimal] = dataclasses.field(default_factory=dict)
    covered: dict[str, Decimal] = dataclasses.field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """True when no invariant is broken."""
        return not (self.unprotected or self.duplicate or self.orphan)

    def summary(self) -> str:
        """One readable block of every problem."""
        lines = [f"{kind}: {p}" for kind, items in (("unprotected", self.unprotected),
                                                    ("duplicate", self.duplicate), ("orphan", self.orphan))
                 for p in items]
        return "\n  ".join(lines)


def exit_ids(b: Bracket) -> list[str]:
    """Client ids of every exit order of ``b`` (emulated children and native chunk legs)."""
    return [c.id for c in b.exits.children] + [nl.id for ch in b.exits.chunks for nl in ch.legs]


def cover(b: Bracket, venue: VenueTruth) -> tuple[Decimal, Decimal, Decimal]:
    """What protects ``b`` now: (armed emulated legs, open native chunks at the venue, open children).

    Armed legs watch the quantity the manager has not covered otherwise (``ExitSet.uncovered``);
    a native chunk's legs protect the same quantity once (an OCO), so a chunk counts the largest
    remaining of its open legs.
    """
    x = b.exits
    armed = max(x.uncovered(b.target()), ZERO) if x.armed and b.active else ZERO
    native = ZERO
    for chunk in x.chunks:
        rests = [o.remaining for nl in chunk.legs if (o := venue.order(nl.id)) is not None and o.open]
        native += max(rests, default=ZERO)
    children = sum((o.remaining for c in x.children if (o := venue.order(c.id)) is not None and o.open), ZERO)
    return armed, native, children


def check(brackets: Iterable[Bracket], venue: VenueTruth) -> Findings:
    """Every broken invariant of ``brackets`` against the venue's truth (see the module doc)."""
    found = Findings()
    brackets = list(brackets)
    known: set[str] = set()
    held_by_symbol: dict[str, Decimal] = {}
    entries: dict[str, str] = {}
    for b in brackets:
        known.add(b.entry_id)
        known.update(exit_ids(b))
        _check_bracket(b, venue, found, held_by_symbol)
        if b.active:
            if b.entry_id in entries:
                found.duplicate.append(f"brackets {entries[b.entry_id]} and {b.id} both protect entry {b.entry_id}")
            entries[b.entry_id] = b.id
    for coid, versions in venue.orders.items():
        if len(versions) > 1:
            found.duplicate.append(f"{coid} is at the venue {len(versions)} times")
        o = versions[-1]
        if o.open and coid not in known:
            found.orphan.append(f"{coid} ({o.type} {o.side} {o.remaining}) is open at the venue, no bracket has it")
    for coid, attempts in {**repeated_posts(venue.order_posts), **repeated_posts(venue.list_posts)}.items():
        found.duplicate.append(f"{coid} was POSTed again after an attempt that may have placed it: {attempts}")
    for symbol, position in venue.positions.items():
        found.positions[symbol] = position
        # Both net of base-asset commissions, dust below the step included: they must be equal.
        attributed = held_by_symbol.get(symbol, ZERO)
        if position > attributed:
            found.unprotected.append(f"{symbol}: position {position} at the venue, brackets account for {attributed}")
        elif position < attributed:
            found.duplicate.append(f"{symbol}: position {position} at the venue is below what the brackets hold "
                                   f"({attributed}): a sell no bracket knows of")
    return found


def _check_bracket(b: Bracket, venue: VenueTruth, found: Findings, held_by_symbol: dict[str, Decimal]) -> None:
    entry = venue.order(b.entry_id)
    entry_filled = venue.executed(b.entry_id)
    exits = exit_ids(b)
    exits_filled = sum((venue.executed(c) for c in exits), ZERO)
    # As the daemon sizes the exits: what the entry's fills credited (a buy's base-asset
    # commission taken off), rounded down to the quantity step; what the exits have not sold of
    # that is what must be covered. ``left`` is what the bracket leaves held, the dust included.
    # An earlier bracket's dust the strategy handed this one (``carry``) is sold with a filled entry.
    credited = venue.credited(b.entry_id) + (b.carry if entry_filled > 0 else ZERO)
    step = venue.steps.get(b.symbol, ZERO)
    protected = sellable(credited, step) - exits_filled
    left = credited - exits_filled
    held_by_symbol[b.symbol] = (held_by_symbol.get(b.symbol, ZERO) + venue.held(b.entry_id)
                                + sum((venue.held(c) for c in exits), ZERO))
    armed, native, children = cover(b, venue)
    covered = armed + native + children
    found.covered[b.symbol] = found.covered.get(b.symbol, ZERO) + covered
    what = (f"bracket {b.id} {b.symbol} {b.status.value} {b.mode.value}: entry filled {entry_filled} "
            f"(credited {credited}, step {step}), exits filled {exits_filled}, covered {covered} "
            f"(armed {armed}, native {native}, children {children})")
    for chunk in b.exits.chunks:
        legs = [(nl, venue.order(nl.id)) for nl in chunk.legs]
        if len({o.list_id for _, o in legs if o is not None and o.list_id >= 0}) > 1:
            found.duplicate.append(f"{what}: chunk {chunk.list_id} is at the venue as more than one list")
        if any(o is not None and o.status == "FILLED" for _, o in legs):
            for nl, o in legs:
                if o is not None and o.open:
                    found.orphan.append(f"{what}: {nl.id} ({nl.leg}) still open, its sibling filled")
    if protected < 0:
        found.duplicate.append(f"{what}: the exits sold more than the entry credited (rounded down to the step)")
    if not b.active:
        # A rest below one step (the fee's odd decimals) is no order's to sell: flat dust, not a
        # failure. One step or more left is a position a final bracket no longer protects.
        if left > 0 and (step <= 0 or left >= step):
            found.unprotected.append(f"{what}: final with a position left ({left})")
        for coid in [b.entry_id, *exit_ids(b)]:
            o = venue.order(coid)
            if o is not None and o.open:
                found.orphan.append(f"{what}: {coid} ({o.type}) still open at the venue")
        return
    if covered < protected:
        found.unprotected.append(what)
    elif covered > protected:
        found.duplicate.append(f"{what}: covers more than the position")
    entry_final = entry is None or not entry.open
    if entry_final and protected == 0 and (b.exits.armed or covered > 0):
        found.orphan.append(f"{what}: nothing left to protect, exits still armed or open")
    if b.entry_cancel_sent and not entry_final:
        found.orphan.append(f"{what}: an exit fired but the entry's rest {b.entry_id} is still open at the venue")


def in_flight(brackets: Iterable[Bracket]) -> list[str]:
    """Brackets not settled yet: written ahead but not started, or with an exit on its way."""
    return [f"{b.id} {b.status.value}" for b in brackets
            if b.status in (ContingentStatus.PENDING, ContingentStatus.TRIGGERED)]
