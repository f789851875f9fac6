"""Daemon events in, notifications out."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.kernel.clock import MarketClock
from actors.model.control import HealthVerdict, TradingState, TradingStateChanged
from actors.model.orders import Fill, OrderDenied, OrderEvent, OrderIntent, OrderStatus, OrderType, Side
from actors.model.records import OrderRecord
from actors.ports.capabilities import BreakerView, ConnectionHealth
from daemon.notify.events import EventKind, Severity
from daemon.notify.sources import EventTranslator, is_protective_tag


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def translator(tags: dict[str, str] | None = None, now: FakeTime | None = None) -> EventTranslator:
    def lookup(coid: str) -> OrderRecord | None:
        if tags is None or coid not in tags:
            return None
        return OrderRecord(client_order_id=coid, venue="paper", strategy="s1", symbol="XRP/ETH", side=Side.SELL,
                           type=OrderType.MARKET, size=Decimal(20), status=OrderStatus.FILLED, tag=tags[coid])

    return EventTranslator(run_id="r1", clock=MarketClock(1_000), denial_burst=3, denial_window_s=60,
                           instance="bot", order_lookup=lookup, now=now or FakeTime())


def fill(coid: str = "c1", trade: str = "t1") -> OrderEvent:
    f = Fill(venue="paper", trade_id=trade, client_order_id=coid, symbol="XRP/ETH", side=Side.SELL,
             price=Decimal("0.00120000"), size=Decimal("20"), fee=Decimal("0.0001"), fee_currency="ETH", ts_ms=7)
    return OrderEvent(client_order_id=coid, strategy="s1", symbol="XRP/ETH", status=OrderStatus.FILLED,
                      filled=Decimal(20), size=Decimal(20), fill=f)


def denied(reason: str = "MAX_POSITION") -> OrderDenied:
    intent = OrderIntent(strategy="s1", symbol="XRP/ETH", side=Side.BUY, size=Decimal(1))
    return OrderDenied(intent=intent, reason=reason, ts_ms=5)


@pytest.mark.parametrize(("tag", "protective"), [("protect", True), ("protective-stop", True), ("sl", True),
                                                  ("sl:1", True), ("TP-2", True), ("slow", False), ("tpx", False),
                                                  ("", False), ("entry", False)])
def test_protective_tags(tag: str, protective: bool) -> None:
    assert is_protective_tag(tag) is protective


def test_fill_is_keyed_by_venue_and_trade_and_protective_by_tag() -> None:
    tr = translator({"c2": "sl:1"})
    [plain] = tr.translate(fill())
    assert plain.kind is EventKind.FILL and plain.key == "fill:paper:t1" and plain.event_ms == 7
    assert plain.title == "Fill: SELL 20 XRP/ETH @ 0.0012"
    [exit_] = tr.translate(fill("c2", "t2"))
    assert exit_.kind is EventKind.PROTECTIVE_EXIT and exit_.level is Severity.WARNING and "tag: sl:1" in exit_.body
    no_fill = OrderEvent(client_order_id="c1", strategy="s1", symbol="XRP/ETH", status=OrderStatus.ACCEPTED)
    assert tr.translate(no_fill) == []


def test_a_burst_of_denials_makes_one_message_per_window() -> None:
    now = FakeTime()
    tr = translator(now=now)
    assert tr.translate(denied()) == [] and tr.translate(denied("MAX_ORDERS")) == []
    [burst] = tr.translate(denied())
    assert burst.kind is EventKind.RISK_DENIALS and burst.title == "3 risk denials within 60 s"
    assert burst.body.splitlines()[:2] == ["MAX_POSITION: 2", "MAX_ORDERS: 1"]
    now.t = 10
    assert [tr.translate(denied()) for _ in range(5)] == [[]] * 5  # quiet for a window after a message
    now.t = 61
    [second] = tr.translate(denied())
    assert second.title == "6 risk denials within 60 s" and second.key != burst.key
    now.t = 200  # old denials leave the window
    assert tr.translate(denied()) == []


def test_trading_states_map_to_kill_pause_resume() -> None:
    tr = translator()

    def change(state: TradingState, previous: TradingState, kill: bool = False) -> EventKind:
        [note] = tr.translate(TradingStateChanged(state=state, previous=previous, reason="op", kill_switch=kill))
        return note.kind

    assert change(TradingState.HALTED, TradingState.ACTIVE, kill=True) is EventKind.KILL
    assert change(TradingState.REDUCING, TradingState.ACTIVE) is EventKind.PAUSE
    assert change(TradingState.ACTIVE, TradingState.REDUCING) is EventKind.RESUME
    assert tr.translate(TradingStateChanged(state=TradingState.ACTIVE, previous=TradingState.ACTIVE, reason="")) == []


def test_watchdog_unhealthy_once_per_episode() -> None:
    tr = translator()
    assert tr.translate(HealthVerdict(status="degraded", reasons=("stale",))) == []
    [note] = tr.translate(HealthVerdict(status="unhealthy", reasons=("actor feed stalled",)))
    assert note.kind is EventKind.WATCHDOG_UNHEALTHY and note.body == "actor feed stalled"
    assert tr.translate(HealthVerdict(status="unhealthy", reasons=("loop lag",))) == []
    assert tr.translate(HealthVerdict(status="healthy")) == []
    assert len(tr.translate(HealthVerdict(status="unhealthy"))) == 1


def test_breakers_and_reconnects() -> None:
    tr = translator()

    def health(state: str, trips: int, reconnects: int) -> ConnectionHealth:
        return ConnectionHealth(breakers=(BreakerView(name="rest", state=state, trips=trips, reason="timeouts"),),
                                reconnects={"user": reconnects})

    assert tr.translate(health("closed", 0, 0)) == []
    notes = tr.translate(health("open", 1, 2))
    assert [n.kind for n in notes] == [EventKind.BREAKER_OPEN, EventKind.RECONNECT]
    assert notes[0].key == "breaker_open:r1:rest:1" and "timeouts" in notes[0].body
    assert "2 reconnect(s)" in notes[1].body
    assert tr.translate(health("open", 1, 2)) == []  # same sample again: nothing new
    assert tr.translate(health("half_open", 1, 2)) == []
    [closed] = tr.translate(health("closed", 1, 2))
    assert closed.kind is EventKind.BREAKER_CLOSED
