"""Bracket (entry + take-profit and/or stop-loss): emulated and native exits, the protected
quantity, triggers, rejections, denials, fallback, cancel, the stored row, and a crash at every
effect boundary (rebuilt from the last durable row, resumed against what the order manager knew).

Also home of the small simulated order manager + venue (``Venue``, ``Sim``) the linked-order
tests share: it turns effects into order records and events and feeds them back.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from decimal import Decimal

import msgspec
import pytest

from actors.contingent.base import BookContext
from actors.contingent.bracket import Bracket
from actors.contingent.effects import CancelChild, Effect, Notice, Persist, Release, ReleaseList
from actors.contingent.exit_leg import Phase
from actors.contingent.linked import LinkedOrder
from actors.contingent.net_fill import sellable
from actors.contingent.triggers import crossed
from actors.model.contingent import ContingentRow, ContingentStatus
from actors.model.market import Trade
from actors.model.orders import (
    CONDITIONAL_TYPES,
    OPEN_STATUSES,
    ApprovedList,
    ExecutionMode,
    Fill,
    ListKind,
    OrderDenied,
    OrderEvent,
    OrderIntent,
    OrderList,
    OrderStatus,
    OrderType,
    Side,
    TrailingSpec,
)
from actors.model.records import OrderRecord
from actors.ports.capabilities import NativeSupport
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE
from config.schema.trading import OrdersSection

D = Decimal
T0 = 1_700_000_000_000
SYM = "BTC/USDT"
NATIVE = NativeSupport(order_types=CONDITIONAL_TYPES, trailing_bps=True, lists=frozenset({ListKind.OCO, ListKind.OTO}))
_S = ContingentStatus


# -- harness -------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Env:
    """A book context with counter ids and a settable business clock."""

    now: int = T0
    native: bool = False
    orders: OrdersSection = dataclasses.field(default_factory=OrdersSection)
    counter: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(1))
    step: Decimal = D(0)  # the instrument's quantity step (0: unknown)

    @property
    def ctx(self) -> BookContext:
        return BookContext(new_id=lambda: f"c{next(self.counter)}", now_ms=lambda: self.now,
                           settings=lambda: self.orders, support=NATIVE if self.native else NativeSupport(),
                           native_enabled=True, venue="sim", step_size=lambda _symbol: self.step)


Msg = OrderEvent | OrderDenied


class Venue:
    """The order manager and the venue, reduced to records by client order id.

    Releases become ACCEPTED records (a released id it already knows is dropped and counted in
    ``duplicates``, like the order manager does); ``deny`` denies the next releases (the risk
    gate); cancels wait in ``pending_cancels`` until ``ack_cancels`` (so fills can race them).
    Native conditional orders trigger on ``trade`` and fill at once; an OCO sibling expires.
    Every fill event carries its ``Fill`` (kept in ``fills``, as the store keeps them), with the
    fee ``fee(record, quantity)`` says (none by default).
    """

    def __init__(self) -> None:
        self.fee: Callable[[OrderRecord, Decimal], tuple[Decimal, str]] | None = None
        self.fills: dict[str, list[Fill]] = {}
        self.records: dict[str, OrderRecord] = {}
        self.released: list[str] = []
        self.duplicates: list[str] = []
        self.lists: dict[str, tuple[str, ...]] = {}
        self.pending_cancels: list[str] = []
        self.cancels: list[str] = []
        self.durable: list[ContingentRow] = []
        self.behind: list[ContingentRow] = []
        self.notices: list[Notice] = []
        self.deny = 0
        self.reject_native: str | None = None  # reject native conditional orders with this reason

    def lookup(self, coid: str) -> OrderRecord | None:
        return self.records.get(coid)

    def apply(self, effects: list[Effect]) -> list[Msg]:
        out: list[Msg] = []
        for e in effects:
            if isinstance(e, Persist):
                (self.durable if e.durable else self.behind).extend(e.rows)
            elif isinstance(e, Release):
                out += self._place((e.intent,), "")
            elif isinstance(e, ReleaseList):
                ol = e.order_list
                if ol.kind is ListKind.OCO:  # an OTO's legs do not cancel each other
                    self.lists[ol.list_id] = tuple(i.client_order_id for i in ol.orders)
                out += self._place(ol.orders, ol.list_id)
            elif isinstance(e, CancelChild):
                self.cancels.append(e.client_order_id)
                self.pending_cancels.append(e.client_order_id)
            elif isinstance(e, Notice):
                self.notices.append(e)
        return out

    def _place(self, intents: tuple[OrderIntent, ...], list_id: str) -> list[Msg]:
        for i in intents:
            assert i.client_order_id and i.parent, "every release has a preset id and a parent"
            self.released.append(i.client_order_id)
        if self.deny > 0:
            self.deny -= 1
            return [OrderDenied(intent=intents[0], reason="TEST_DENIED")]
        out: list[Msg] = []
        for i in intents:
            if i.client_order_id in self.records:
                self.duplicates.append(i.client_order_id)
                continue
            rec = OrderRecord(client_order_id=i.client_order_id, venue="sim", strategy=i.strategy, symbol=i.symbol,
                              side=i.side, type=i.type, size=i.size or D(0), status=OrderStatus.ACCEPTED,
                              price=i.limit_price, intent_id=i.intent_id, trigger_price=i.trigger_price,
                              parent=i.parent, list_id=list_id)
            if self.reject_native is not None and i.type in CONDITIONAL_TYPES:
                rec = msgspec.structs.replace(rec, status=OrderStatus.REJECTED, reason=self.reject_native)
            self.records[i.client_order_id] = rec
            out.append(self.event(rec))
        return out

    def event(self, rec: OrderRecord) -> OrderEvent:
        return OrderEvent(client_order_id=rec.client_order_id, strategy=rec.strategy, symbol=rec.symbol,
                          status=rec.status, filled=rec.filled, size=rec.size, reason=rec.reason,
                          intent_id=rec.intent_id, parent=rec.parent)

    def set(self, coid: str, status: OrderStatus, reason: str = "", filled: Decimal | None = None) -> OrderEvent:
        rec = self.records[coid]
        rec = msgspec.structs.replace(rec, status=status, reason=reason,
                                      filled=rec.filled if filled is None else filled)
        self.records[coid] = rec
        return self.event(rec)

    def fill(self, coid: str, qty: Decimal) -> OrderEvent:
        rec = self.records[coid]
        filled = min(rec.size, rec.filled + qty)
        event = self.set(coid, OrderStatus.FILLED if filled == rec.size else OrderStatus.PARTIALLY_FILLED,
                         filled=filled)
        traded = filled - rec.filled
        if traded <= 0:
            return event
        fee, currency = self.fee(rec, traded) if self.fee is not None else (D(0), "")
        trade_id = f"t{sum(len(f) for f in self.fills.values()) + 1}"
        fill = Fill(venue="sim", trade_id=trade_id, client_order_id=coid, symbol=rec.symbol, side=rec.side,
                    price=rec.price or D(100), size=traded, fee=fee, fee_currency=currency)
        self.fills.setdefault(coid, []).append(fill)
        return msgspec.structs.replace(event, fill=fill)

    def base_fees(self, coid: str) -> Decimal:
        """Fees of ``coid``'s fills charged in the base asset of ``SYM``."""
        return sum((f.fee for f in self.fills.get(coid, ()) if f.fee_currency == SYM.split("/")[0]), D(0))

    def fill_events(self, coid: str, qty: Decimal) -> list[Msg]:
        """A fill, then (a list leg) its open siblings expire, as a venue OCO does."""
        out: list[Msg] = [self.fill(coid, qty)]
        for sib in self.lists.get(self.records[coid].list_id, ()):
            if sib != coid and self.is_open(sib):
                out.append(self.set(sib, OrderStatus.EXPIRED))
        return out

    def is_open(self, coid: str) -> bool:
        rec = self.records.get(coid)
        return rec is not None and rec.status in OPEN_STATUSES

    def ack_cancels(self) -> list[Msg]:
        out: list[Msg] = []
        for coid in self.pending_cancels:
            if self.is_open(coid):
                out.append(self.set(coid, OrderStatus.CANCELED, "canceled"))
        self.pending_cancels.clear()
        return out

    def trade(self, price: Decimal) -> list[Msg]:
        """Native conditional orders whose trigger the price crossed fill at once; OCO siblings expire."""
        out: list[Msg] = []
        for coid, rec in list(self.records.items()):
            if not self.is_open(coid) or rec.trigger_price is None:
                continue
            if crossed(rec.type, rec.side, rec.trigger_price, price):
                out += self.fill_events(coid, rec.size - rec.filled)
        return out


class Sim:
    """Runs a contingent order against ``Venue``: effects in, events back, until quiet.

    ``check`` runs after every handler (the order's own bookkeeping), ``quiet_check`` once every
    event caused was delivered (then the order and the venue must agree).
    """

    def __init__(self, order: LinkedOrder, env: Env, venue: Venue | None = None,
                 check: Callable[[Sim], None] | None = None,
                 quiet_check: Callable[[Sim], None] | None = None) -> None:
        self.order = order
        self.env = env
        self.venue = venue or Venue()
        self.check = check or (lambda _sim: None)
        self.quiet_check = quiet_check or (lambda _sim: None)
        self.ns = 0

    @property
    def ctx(self) -> BookContext:
        return self.env.ctx

    def run(self, effects: list[Effect]) -> list[Effect]:
        """Apply ``effects`` and deliver what they cause, like the manager would. Returns all effects."""
        queue = self.venue.apply(effects)
        self.check(self)
        return list(effects) + self.deliver(queue)

    def deliver(self, msgs: list[Msg]) -> list[Effect]:
        """Deliver events (and what they cause) until quiet."""
        seen: list[Effect] = []
        queue = list(msgs)
        while queue:
            msg = queue.pop(0)
            if not self.order.active:
                continue  # the book drops final orders: nothing reaches them
            out = (self.order.on_order_event(msg, self.ctx) if isinstance(msg, OrderEvent)
                   else self.order.on_denied(msg, self.ctx))
            seen += out
            queue += self.venue.apply(out)
            self.check(self)
        self.quiet_check(self)
        return seen

    def start(self) -> list[Effect]:
        return self.run(self.order.start(self.ctx))

    def trade(self, price: str | Decimal) -> list[Effect]:
        self.ns += 1
        event = Trade(symbol=SYM, ts_ms=self.env.now, recv_ns=self.ns, price=float(price), size=1.0, side="buy")
        out: list[Effect] = []
        if self.order.active:
            out = self.run(self.order.on_market(event, self.ctx))
        return out + self.deliver(self.venue.trade(D(str(price))))

    def fill(self, coid: str, qty: str | Decimal) -> list[Effect]:
        return self.deliver(self.venue.fill_events(coid, D(str(qty))))

    def set(self, coid: str, status: OrderStatus, reason: str = "") -> list[Effect]:
        return self.deliver([self.venue.set(coid, status, reason)])

    def ack_cancels(self) -> list[Effect]:
        return self.deliver(self.venue.ack_cancels())

    def timer(self, advance_ms: int) -> list[Effect]:
        self.env.now += advance_ms
        due = self.order.deadline_ms()
        if due is None or due > self.env.now or not self.order.active:
            return []
        return self.run(self.order.on_timer(self.env.now, self.ctx))

    def open_exit_children(self) -> list[str]:
        """Open venue orders of the order that are emulated children (market/limit), oldest first."""
        return [c.id for c in self.order.exits.children if self.venue.is_open(c.id)]


def releases(effects: list[Effect]) -> list[OrderIntent]:
    out: list[OrderIntent] = []
    for e in effects:
        if isinstance(e, Release):
            out.append(e.intent)
        elif isinstance(e, ReleaseList):
            out += e.order_list.orders
    return out


def kinds(effects: list[Effect]) -> list[str]:
    return [type(e).__name__ + ("" if not isinstance(e, Persist) else ("!" if e.durable else "~")) for e in effects]


def entry(type: OrderType = OrderType.LIMIT, side: Side = Side.BUY) -> OrderIntent:
    return OrderIntent(strategy="s1", symbol=SYM, side=side, type=type, size=D(1),
                       limit_price=D(100) if type is OrderType.LIMIT else None, intent_id="strat-1", origin_ns=7)


def tp(price: str = "110", side: Side = Side.SELL, type: OrderType = OrderType.TAKE_PROFIT,
       limit: str | None = None) -> OrderIntent:
    return OrderIntent(strategy="s1", symbol=SYM, side=side, type=type, trigger_price=D(price),
                       limit_price=None if limit is None else D(limit))


def sl(price: str = "90", side: Side = Side.SELL, type: OrderType = OrderType.STOP_MARKET,
       trailing: TrailingSpec | None = None, limit: str | None = None) -> OrderIntent:
    return OrderIntent(strategy="s1", symbol=SYM, side=side, type=type,
                       trigger_price=None if trailing is not None else D(price), trailing=trailing,
                       limit_price=None if limit is None else D(limit))


def approved(*orders: OrderIntent, size: str = "1") -> ApprovedList:
    ol = OrderList(kind=ListKind.BRACKET, strategy="s1", symbol=SYM, orders=orders, list_id="L1", tag="br")
    return ApprovedList(order_list=ol, sizes=(D(size), *([None] * (len(orders) - 1))), reference_price=D(100))


def bracket_sim(*exits: OrderIntent, native: bool = False, entry_type: OrderType = OrderType.LIMIT,
                check: Callable[[Sim], None] | None = None, env: Env | None = None) -> Sim:
    env = env or Env(native=native)
    b = Bracket.from_approved(approved(entry(entry_type), *(exits or (tp(), sl()))), env.ctx)
    sim = Sim(b, env, check=assert_exit_invariants, quiet_check=check)
    sim.start()
    return sim


def bracket(sim: Sim) -> Bracket:
    assert isinstance(sim.order, Bracket)
    return sim.order


def assert_exit_invariants(sim: Sim) -> None:
    """After every handler, on the order's own bookkeeping: nothing covered twice; without armed
    legs everything is covered by orders; legs are armed or disarmed together; final: nothing armed."""
    o = sim.order
    x = o.exits
    if o.active and not x.failed:
        uncovered = x.uncovered(o.target())
        if any(ch.external and ch.phase is Phase.SENT for ch in x.chunks):
            assert uncovered <= 0  # a native OTO's pending order is placed ahead for the whole size
        else:
            assert uncovered >= 0, x
            if not x.armed:
                assert uncovered == 0, x
        if x.native:
            assert not x.armed and not x.children_in_flight
    assert len({leg.armed for leg in x.legs if not leg.plain}) <= 1
    if not o.active:
        assert not x.armed and not o.watches_market()


def assert_bracket_invariants(sim: Sim) -> None:
    """(a)-(c) from the venue's records (the truth), once every event was delivered."""
    b = bracket(sim)
    v = sim.venue
    assert_exit_invariants(sim)
    entry_rec = v.records.get(b.entry_id)
    entry_filled = entry_rec.filled if entry_rec is not None else D(0)
    exit_filled = D(0)
    exit_open = D(0)
    seen_lists: set[str] = set()
    for coid, rec in v.records.items():
        if rec.parent != b.id or coid == b.entry_id:
            continue
        exit_filled += rec.filled
        if rec.list_id:
            if rec.list_id in seen_lists:
                continue
            seen_lists.add(rec.list_id)
            legs = [v.records[i] for i in v.lists.get(rec.list_id, (coid,)) if i in v.records]
            if any(x.status in OPEN_STATUSES for x in legs):
                exit_open += legs[0].size - sum((x.filled for x in legs), D(0))
        elif rec.status in OPEN_STATUSES:
            exit_open += rec.size - rec.filled
    retry = sum((c.size for c in b.exits.children if c.phase is Phase.RETRY), D(0))
    # What the entry's fills credited (a buy: net of base-asset fees) and the part of it whole
    # steps can sell: the exits' target.
    net = entry_filled - (v.base_fees(b.entry_id) if b.entry.side is Side.BUY else D(0))
    net += b.carry if entry_filled > 0 else D(0)  # an earlier bracket's dust rides with a filled entry
    target = sellable(net, sim.env.step)
    # no quantity is covered twice; what exits released never exceeds what the entry credited
    assert exit_filled + exit_open + retry <= target, (exit_filled, exit_open, retry, target, entry_filled)
    assert b.exits.exits_filled == exit_filled
    if b.active and not b.exits.failed:
        # (a): armed legs cover exactly what no order covers; without armed legs that is 0
        assert b.entry_filled == entry_filled
        assert (b.net_filled, b.target()) == (net, target)
        assert b.protected == net - exit_filled
        assert b.exits.uncovered(b.target()) == target - exit_filled - exit_open - retry
    if b.active and b.entry_cancel_sent and v.is_open(b.entry_id):
        assert b.entry_id in v.cancels  # an exit fired: the entry's rest is being cancelled
    if b.status is _S.DONE:  # (c) no orphans
        open_ids = [coid for coid, rec in v.records.items() if rec.parent == b.id and rec.status in OPEN_STATUSES]
        assert all(coid in v.cancels for coid in open_ids), open_ids
    assert not v.duplicates


# -- emulated ------------------------------------------------------------------------------------------
def test_start_writes_the_entry_ahead_then_releases_it_with_the_strategy_intent_id() -> None:
    env = Env()
    b = Bracket.from_approved(approved(entry(), tp(), sl()), env.ctx)
    effects = b.start(env.ctx)
    assert kinds(effects)[:2] == ["Persist!", "Release"]
    assert isinstance(effects[0], Persist) and effects[0].rows[0].status is _S.WORKING
    intent = releases(effects)[0]
    assert intent.client_order_id == b.entry_id and intent.parent == b.id
    assert intent.intent_id == "strat-1" and not intent.protective and intent.size == D(1)
    assert b.mode is ExecutionMode.EMULATED and b.watches_market()
    assert {v.name for v in b.view().legs} == {"entry", "take_profit", "stop_loss"}


def test_nothing_triggers_before_the_entry_fills() -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    assert sim.trade("85") == [] and sim.trade("120") == []
    assert bracket(sim).exits.children == []


def test_first_exit_crossed_releases_one_child_for_the_protected_quantity_then_cancels_the_entry_rest() -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "0.4")
    out = sim.trade("89.5")
    assert kinds(out)[:4] == ["Persist!", "Notice", "Release", "CancelChild"]
    persist = out[0]
    assert isinstance(persist, Persist)
    saved = Bracket.from_row(persist.rows[0])
    child = releases(out)[0]
    assert child.client_order_id in list(saved.exits.child_ids())  # written ahead
    assert saved.entry_cancel_sent and not saved.exits.armed
    assert child.type is OrderType.MARKET and child.size == D("0.4") and child.side is Side.SELL
    assert child.protective and child.parent == b.id and child.origin_ns == sim.ns
    assert child.intent_id == f"{b.id}:stop_loss:1"
    assert isinstance(out[3], CancelChild) and out[3].client_order_id == b.entry_id
    assert b.status is _S.TRIGGERED and not b.watches_market()
    # the sibling is disarmed: crossing the take-profit releases nothing more
    assert releases(sim.trade("111")) == []


def test_entry_fills_after_the_trigger_release_another_child_of_the_same_leg() -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "0.4")
    sim.trade("111")  # take-profit
    out = sim.fill(b.entry_id, "0.3")  # a fill racing the cancel
    (child2,) = releases(out)
    assert kinds(out)[0] == "Persist!" and child2.size == D("0.3")
    assert child2.intent_id == f"{b.id}:take_profit:2"
    sim.ack_cancels()
    assert b.entry_final and b.entry_filled == D("0.7")
    for coid in sim.open_exit_children():
        sim.fill(coid, "1")
    assert b.status is _S.DONE and b.protected == 0
    assert not b.watches_market()


def test_take_profit_limit_child_is_a_limit_order_at_the_limit_price() -> None:
    sim = bracket_sim(tp(type=OrderType.TAKE_PROFIT_LIMIT, limit="109.5"), sl(), check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    (child,) = releases(sim.trade("110"))
    assert child.type is OrderType.LIMIT and child.limit_price == D("109.5")


def test_fully_filled_entry_then_exit_fill_is_done_and_nothing_stays_armed() -> None:
    sim = bracket_sim(entry_type=OrderType.MARKET, check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    out = sim.trade("89")
    assert not any(isinstance(e, CancelChild) for e in out)  # the entry is already final
    (coid,) = sim.open_exit_children()
    sim.fill(coid, "0.5")
    assert b.status is _S.TRIGGERED and b.protected == D("0.5")
    sim.fill(coid, "0.5")
    assert b.status is _S.DONE and not b.exits.armed


def test_trailing_stop_follows_the_best_price_then_triggers_on_its_level() -> None:
    sim = bracket_sim(tp("130"), sl(trailing=TrailingSpec(offset=D(5))), check=assert_bracket_invariants)
    b = bracket(sim)
    sim.trade("120")  # no position yet: the trail does not start
    assert b.exits.leg("stop_loss").trail.level is None
    sim.fill(b.entry_id, "1")
    sim.trade("101")
    sim.trade("108")
    assert b.exits.leg("stop_loss").trail.level == D(103)
    assert releases(sim.trade("104")) == []
    stop = next(v for v in b.view().legs if v.name == "stop_loss")
    assert D(stop.trigger_price or "0") == 103 and stop.trailing == "5"
    (child,) = releases(sim.trade("103"))
    assert child.size == D(1) and child.type is OrderType.MARKET


def test_trailing_level_is_saved_behind_at_most_every_interval() -> None:
    sim = bracket_sim(sl(trailing=TrailingSpec(offset=D(5))))
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    b._saved_at = -1e9  # long ago
    out = sim.trade("101")
    assert kinds(out) == ["Persist~"]
    assert sim.trade("102") == []  # within the interval: not saved again


def test_exit_child_rejected_re_arms_the_legs_with_an_error_notice() -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    sim.trade("89")
    (coid,) = sim.open_exit_children()
    out = sim.set(coid, OrderStatus.REJECTED, "INSUFFICIENT_FUNDS")
    notice = next(e for e in out if isinstance(e, Notice) and e.event == "contingent.exit_rejected")
    assert notice.level == "error"
    assert b.exits.armed and all(leg.armed for leg in b.exits.legs) and b.status is _S.WORKING
    (again,) = releases(sim.trade("88"))
    assert again.size == D(1) and again.client_order_id != coid


def test_exit_child_rejected_too_often_fails() -> None:
    env = Env(orders=OrdersSection(max_child_attempts=2))
    sim = bracket_sim(env=env, check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    for _ in range(2):
        sim.trade("89")
        (coid,) = sim.open_exit_children()
        sim.set(coid, OrderStatus.REJECTED, "X")
    assert b.status is _S.FAILED and b.reason == "exit_rejected:X" and not b.exits.armed


def test_denied_exit_child_is_retried_under_the_same_id_while_the_condition_holds() -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    sim.venue.deny = 1
    (child,) = releases(sim.trade("89"))
    assert b.exits.children[0].phase is Phase.RETRY and b.deadline_ms() == sim.env.now + 1000
    assert b.watches_market()
    sim.trade("89.5")  # still below the stop
    assert sim.timer(999) == []
    out = sim.timer(1)
    (again,) = releases(out)
    assert again.client_order_id == child.client_order_id and kinds(out)[0] == "Persist!"
    assert sim.venue.is_open(child.client_order_id)


def test_denied_exit_child_whose_condition_no_longer_holds_re_arms_the_legs() -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    sim.venue.deny = 1
    sim.trade("89")
    sim.trade("95")  # back above the stop
    out = sim.timer(1000)
    assert releases(out) == [] and b.exits.armed and b.exits.children[0].phase is Phase.DROPPED
    (child,) = releases(sim.trade("89"))
    assert child.size == D(1)


def test_denied_exit_child_too_often_fails() -> None:
    env = Env(orders=OrdersSection(max_child_attempts=2))
    sim = bracket_sim(env=env, check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "1")
    sim.venue.deny = 2
    sim.trade("89")
    sim.timer(1000)
    assert b.status is _S.FAILED and b.reason.startswith("child_denied")


@pytest.mark.parametrize(("status", "expected"), [
    (OrderStatus.REJECTED, _S.FAILED), (OrderStatus.CANCELED, _S.CANCELED), (OrderStatus.EXPIRED, _S.CANCELED)])
def test_entry_ending_unfilled_arms_nothing(status: OrderStatus, expected: ContingentStatus) -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    b = bracket(sim)
    out = sim.set(b.entry_id, status, "why")
    assert b.status is expected and not b.exits.armed and not b.watches_market()
    assert releases(out) == [] and not any(isinstance(e, CancelChild) for e in out)


def test_entry_denied_fails() -> None:
    env = Env()
    b = Bracket.from_approved(approved(entry(), tp(), sl()), env.ctx)
    venue = Venue()
    venue.deny = 1
    sim = Sim(b, env, venue)
    sim.start()
    assert b.status is _S.FAILED and b.reason == "entry_denied:TEST_DENIED" and not b.exits.armed


def test_entry_canceled_after_a_partial_fill_keeps_protecting_what_filled() -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "0.25")
    sim.set(b.entry_id, OrderStatus.CANCELED)
    assert b.status is _S.WORKING and b.exits.armed and b.protected == D("0.25")
    (child,) = releases(sim.trade("89"))
    assert child.size == D("0.25")
    sim.fill(child.client_order_id, "0.25")
    assert b.status is _S.DONE


def test_cancel_disarms_and_cancels_every_open_order() -> None:
    sim = bracket_sim(check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "0.5")
    sim.trade("89")
    (child,) = sim.open_exit_children()
    out = sim.run(b.cancel("operator", sim.ctx))
    assert kinds(out)[0] == "Persist!" and b.status is _S.CANCELED and not b.exits.armed
    cancelled = {e.client_order_id for e in out if isinstance(e, CancelChild)}
    assert child in cancelled
    assert b.cancel("again", sim.ctx) == []


def test_single_exit_bracket() -> None:
    sim = bracket_sim(sl(), check=assert_bracket_invariants)
    b = bracket(sim)
    assert [v.name for v in b.view().legs] == ["entry", "stop_loss"]
    sim.fill(b.entry_id, "1")
    assert releases(sim.trade("111")) == []
    (child,) = releases(sim.trade("90"))
    sim.fill(child.client_order_id, "1")
    assert b.status is _S.DONE


def test_short_bracket_exits_buy() -> None:
    env = Env()
    b = Bracket.from_approved(approved(entry(side=Side.SELL), tp("90", side=Side.BUY), sl("110", side=Side.BUY)),
                              env.ctx)
    sim = Sim(b, env, check=assert_exit_invariants, quiet_check=assert_bracket_invariants)
    sim.start()
    sim.fill(b.entry_id, "1")
    (child,) = releases(sim.trade("110"))
    assert child.side is Side.BUY and b.exits.triggered == "stop_loss"


@pytest.mark.parametrize("bad", [
    approved(entry(), tp(side=Side.BUY)),  # exit on the entry's side
    approved(entry(), sl(), sl("80")),  # two stops
    approved(entry(), OrderIntent(strategy="s1", symbol=SYM, side=Side.SELL, type=OrderType.LIMIT,
                                  limit_price=D(120))),  # a plain exit
    approved(entry(OrderType.STOP_MARKET), sl()),  # a conditional entry
])
def test_from_approved_refuses_malformed_brackets(bad: ApprovedList) -> None:
    with pytest.raises(ValueError):
        Bracket.from_approved(bad, Env().ctx)


def test_row_round_trips_exactly() -> None:
    sim = bracket_sim(tp(), sl(trailing=TrailingSpec(offset_bps=50, activation_price=D(101))))
    b = bracket(sim)
    sim.fill(b.entry_id, "0.5")
    sim.trade("102")
    sim.venue.deny = 1
    sim.trade("90")
    row = b.row()
    again = Bracket.from_row(row)
    assert again.row() == row and again.body() == b.body()
    assert again.view() == b.view()


def test_view_names_legs_with_status_sizes_triggers_and_ids() -> None:
    sim = bracket_sim(tp(), sl(trailing=TrailingSpec(offset=D(5))))
    b = bracket(sim)
    sim.fill(b.entry_id, "0.4")
    sim.trade("104")
    view = b.view()
    legs = {leg.name: leg for leg in view.legs}
    assert view.kind == "bracket" and view.mode == "emulated" and view.protected == "0.4"
    assert legs["entry"].status == "PARTIALLY_FILLED" and legs["entry"].filled == "0.4"
    assert legs["entry"].client_order_ids == (b.entry_id,)
    assert legs["take_profit"].status == "armed" and legs["take_profit"].size == "0.4"
    assert legs["take_profit"].trigger_price == "110"
    assert D(legs["stop_loss"].trigger_price or "0") == 99 and legs["stop_loss"].trailing == "5"
    (child,) = releases(sim.trade("99"))
    legs = {leg.name: leg for leg in b.view().legs}
    assert legs["entry"].status == "canceling"
    assert legs["stop_loss"].status == "triggered" and legs["stop_loss"].client_order_ids == (child.client_order_id,)
    assert legs["take_profit"].status == "idle"


# -- native ----------------------------------------------------------------------------------------------
def test_native_exits_one_oco_per_entry_fill_delta_written_ahead() -> None:
    sim = bracket_sim(native=True, check=assert_bracket_invariants)
    b = bracket(sim)
    assert b.mode is ExecutionMode.NATIVE and not b.watches_market()
    out = sim.fill(b.entry_id, "0.4")
    assert kinds(out)[:2] == ["Persist!", "ReleaseList"]
    persist, rl = out[0], out[1]
    assert isinstance(persist, Persist) and isinstance(rl, ReleaseList)
    ol = rl.order_list
    assert ol.kind is ListKind.OCO and ol.list_id and [o.type for o in ol.orders] == [
        OrderType.TAKE_PROFIT, OrderType.STOP_MARKET]  # (above, below)
    assert all(o.size == D("0.4") and o.protective and o.parent == b.id for o in ol.orders)
    saved = Bracket.from_row(persist.rows[0])
    assert {o.client_order_id for o in ol.orders} <= set(saved.exits.child_ids())
    out = sim.fill(b.entry_id, "0.6")
    (rl2,) = [e for e in out if isinstance(e, ReleaseList)]
    assert all(o.size == D("0.6") for o in rl2.order_list.orders)
    assert b.exits.native_open == D(1)


def test_native_leg_fill_ends_its_chunk_only_and_done_cancels_leftovers() -> None:
    sim = bracket_sim(native=True, check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "0.4")
    chunk1 = b.exits.chunks[0]
    tp1 = chunk1.legs[0].id
    sim.fill(tp1, "0.4")  # the venue fills one leg; its sibling is still open for a moment
    assert chunk1.legs[1].id in sim.venue.cancels  # we make sure the sibling goes
    sim.fill(b.entry_id, "0.6")
    assert b.status is _S.WORKING and b.exits.native_open == D("0.6")
    sim.trade("89")  # the venue triggers the second chunk's stop
    assert b.status is _S.DONE and b.protected == 0
    assert not any(sim.venue.is_open(c) and c not in sim.venue.cancels for c in b.child_ids())


def test_native_single_exit_is_one_native_order_per_delta() -> None:
    sim = bracket_sim(sl(), native=True, check=assert_bracket_invariants)
    b = bracket(sim)
    (stop,) = releases(sim.fill(b.entry_id, "0.5"))
    assert stop.type is OrderType.STOP_MARKET and stop.trigger_price == D(90) and stop.size == D("0.5")


def test_native_trailing_in_bps_is_native_a_price_offset_is_emulated() -> None:
    env = Env(native=True)
    b = Bracket.from_approved(approved(entry(), sl(trailing=TrailingSpec(offset_bps=100))), env.ctx)
    assert b.mode is ExecutionMode.NATIVE
    b = Bracket.from_approved(approved(entry(), tp(), sl(trailing=TrailingSpec(offset=D(1)))), env.ctx)
    assert b.mode is ExecutionMode.EMULATED


def test_native_unsupported_falls_back_to_emulation() -> None:
    sim = bracket_sim(native=True, check=assert_bracket_invariants)
    b = bracket(sim)
    sim.venue.reject_native = UNSUPPORTED_ORDER_TYPE
    out = sim.fill(b.entry_id, "0.5")
    notice = next(e for e in out if isinstance(e, Notice) and e.event == "contingent.native_refused_emulating")
    assert notice.level == "warning"
    assert b.mode is ExecutionMode.EMULATED and b.exits.armed and b.watches_market()
    sim.venue.reject_native = None
    (child,) = releases(sim.trade("89"))
    assert child.size == D("0.5") and child.type is OrderType.MARKET


def test_native_unsupported_without_fallback_fails() -> None:
    env = Env(native=True, orders=OrdersSection(fallback_to_emulation=False))
    sim = bracket_sim(env=env, check=assert_bracket_invariants)
    b = bracket(sim)
    sim.venue.reject_native = UNSUPPORTED_ORDER_TYPE
    out = sim.fill(b.entry_id, "0.5")
    assert b.status is _S.FAILED and b.reason == UNSUPPORTED_ORDER_TYPE
    assert b.entry_id in {e.client_order_id for e in out if isinstance(e, CancelChild)}


def test_native_chunk_denied_is_covered_by_emulation() -> None:
    sim = bracket_sim(native=True, check=assert_bracket_invariants)
    b = bracket(sim)
    sim.venue.deny = 1
    sim.fill(b.entry_id, "0.5")
    assert b.exits.chunks[0].phase is Phase.DROPPED and b.exits.armed
    (child,) = releases(sim.trade("111"))
    assert child.size == D("0.5")


def test_native_cancel_cancels_open_legs() -> None:
    sim = bracket_sim(native=True, check=assert_bracket_invariants)
    b = bracket(sim)
    sim.fill(b.entry_id, "0.5")
    out = b.cancel("strategy", sim.ctx)
    cancelled = {e.client_order_id for e in out if isinstance(e, CancelChild)}
    assert cancelled == {b.entry_id, *(nl.id for nl in b.exits.chunks[0].legs)}


# -- crash at every effect boundary --------------------------------------------------------------------
Step = Callable[[Sim], list[Effect]]


def _fill_exits(sim: Sim) -> list[Effect]:
    out: list[Effect] = []
    for coid in sim.open_exit_children():
        out += sim.fill(coid, "10")
    return out


EMULATED_STEPS: list[Step] = [
    lambda s: s.fill(bracket(s).entry_id, "0.4"),
    lambda s: s.trade("95"),
    lambda s: s.trade("89"),  # stop: child, entry cancel
    lambda s: s.fill(bracket(s).entry_id, "0.3"),  # a fill racing the cancel: another child
    lambda s: s.ack_cancels(),
    _fill_exits,
]
NATIVE_STEPS: list[Step] = [
    lambda s: s.fill(bracket(s).entry_id, "0.4"),
    lambda s: s.fill(bracket(s).entry_id, "0.6"),
    lambda s: s.trade("111"),
]


def _converge(sim: Sim) -> None:
    for _ in range(6):
        if not sim.order.active:
            return
        if isinstance(sim.order, Bracket) and not sim.order.entry_final and sim.order.entry_cancel_sent:
            sim.ack_cancels()
        sim.trade("89")
        _fill_exits(sim)


class _Crash(Exception):
    """kill -9: nothing after the effects that ran reaches anyone."""


def _crash_in(sim: Sim, step: Step | None) -> list[Effect]:
    """Run ``step`` (None: start) until its first handler returns effects; those are returned,
    not applied, and nothing after them happens."""
    captured: list[list[Effect]] = []
    original = sim.venue.apply

    def spy(effects: list[Effect]) -> list[Msg]:
        if not effects:
            return []
        captured.append(list(effects))
        raise _Crash

    sim.venue.apply = spy  # type: ignore[method-assign]
    try:
        sim.start() if step is None else step(sim)
    except _Crash:
        pass
    finally:
        sim.venue.apply = original  # type: ignore[method-assign]
    return captured[0] if captured else []


def _crash_and_resume(native: bool, steps: list[Step], i: int, k: int) -> bool:
    """Crash after the first ``k`` effects of step ``i`` (-1: start); resume; drive to the end.
    False when that step has fewer than ``k`` effects."""
    env = Env(native=native)
    sim = Sim(Bracket.from_approved(approved(entry(), tp(), sl()), env.ctx), env)
    if i >= 0:
        sim.start()
        for step in steps[:i]:
            step(sim)
    effects = _crash_in(sim, None if i < 0 else steps[i])
    if k > len(effects):
        return False
    sim.venue.apply(effects[:k])  # what ran before kill -9; the events it caused are lost
    if not sim.venue.durable:
        return True  # nothing written ahead, nothing sent: as if it had never been accepted
    known = set(sim.venue.records)
    revived = Bracket.from_row(sim.venue.durable[-1])
    sim.order = revived
    sim.check, sim.quiet_check = assert_exit_invariants, assert_bracket_invariants
    out = revived.resume(sim.venue.lookup, env.ctx)
    assert not any(x.client_order_id in known for x in releases(out)), (i, k, out)
    assert kinds(out)[0] == "Persist!"
    sim.run(out)
    for step in steps[i + 1:]:
        step(sim)
    _converge(sim)
    assert revived.status is _S.DONE, (i, k, revived.status, revived.reason)
    assert revived.exits.exits_filled == revived.entry_filled > 0
    assert not sim.venue.duplicates
    return True


@pytest.mark.parametrize(("native", "steps"), [(False, EMULATED_STEPS), (True, NATIVE_STEPS)],
                         ids=["emulated", "native"])
def test_crash_at_every_effect_boundary_resumes_without_duplicates_and_restores_protection(
        native: bool, steps: list[Step]) -> None:
    boundaries = 0
    for i in range(-1, len(steps)):
        k = 0
        while _crash_and_resume(native, steps, i, k):
            k += 1
            boundaries += 1
    assert boundaries >= 12
