"""The service's hand-off: off without URLs, bounded queue, the router tap, polling."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from actors.event_router import EventRouter, RoutedEvent
from actors.kernel.channel import Channel
from actors.kernel.clock import MarketClock
from actors.model.orders import Fill, OrderEvent, OrderStatus, Side
from actors.orders.order_manager import OrderManagerSnapshot
from actors.ports.capabilities import BreakerView, ConnectionHealth
from actors.risk.risk_gate import RiskSnapshot
from config.schema.ops import NotifySection
from daemon.notify import EventKind, Notification, NotificationService
from daemon.notify.outbox import OUTBOX_FILE
from daemon.notify.service import tap_router
from daemon.notify.targets import Target


def fill_event() -> OrderEvent:
    f = Fill(venue="paper", trade_id="t1", client_order_id="c1", symbol="XRP/ETH", side=Side.BUY,
             price=Decimal(1), size=Decimal(1))
    return OrderEvent(client_order_id="c1", strategy="s1", symbol="XRP/ETH", status=OrderStatus.FILLED, fill=f)


async def test_without_urls_nothing_runs_and_no_file_is_made(tmp_path: Path) -> None:
    secrets: list[str] = []
    svc = await NotificationService.open(NotifySection(), state_dir=tmp_path, clock=MarketClock(0),
                                         add_secret=secrets.append, environ={})
    assert not svc.enabled and secrets == []
    svc.offer(fill_event())
    svc.on_order_event(fill_event())
    svc.attach(EventRouter("router", Channel("events", 4), {}))
    assert svc.stats().offered == 0
    await svc.close()
    assert not (tmp_path / OUTBOX_FILE).exists()
    assert not NotificationService.off().enabled


def test_a_full_queue_drops_the_oldest_and_counts_it(tmp_path: Path) -> None:
    section = NotifySection(queue_capacity=10)
    svc = NotificationService(section, targets=[Target.of("json://127.0.0.1:1/x")], state_dir=tmp_path,
                              clock=MarketClock(0))
    for i in range(15):
        svc.notify(Notification(kind=EventKind.FILL, key=f"k{i}", title=f"t{i}", body=""))
    s = svc.stats()
    assert (s.offered, s.dropped) == (15, 5)
    assert [n.title for n in svc._inbox] == [f"t{i}" for i in range(5, 15)]  # type: ignore[attr-defined]


async def test_router_tap_sees_every_event_and_routing_goes_on() -> None:
    inbox: Channel[RoutedEvent] = Channel("events", 4)
    out: Channel[object] = Channel("events.s1", 4)
    router = EventRouter("router", inbox, {"s1": out})
    seen: list[RoutedEvent] = []
    tap_router(router, seen.append)
    ev = fill_event()
    await router.handle(ev)
    assert seen == [ev] and out.try_recv() is ev


class FakeReads:
    def __init__(self) -> None:
        self.health = ConnectionHealth(breakers=(BreakerView(name="rest", state="open", trips=1),))

    def connection_health(self) -> ConnectionHealth:
        return self.health

    def risk_snapshot(self) -> RiskSnapshot | None:
        return None

    def order_snapshot(self) -> OrderManagerSnapshot | None:
        return None


def test_poll_offers_connection_health_and_digest_only_when_wanted(tmp_path: Path) -> None:
    target = [Target.of("json://127.0.0.1:1/x")]
    svc = NotificationService(NotifySection(), targets=target, state_dir=tmp_path, clock=MarketClock(0))
    svc._reads = FakeReads()  # type: ignore[attr-defined]
    svc.poll()
    assert svc.stats().offered == 1  # the health sample (the digest's first sample makes no message)
    quiet = NotifySection(events={"breaker_open": False, "breaker_closed": False, "reconnect": False})
    svc = NotificationService(quiet, targets=target, state_dir=tmp_path, clock=MarketClock(0))
    svc._reads = FakeReads()  # type: ignore[attr-defined]
    svc.poll()
    assert svc.stats().offered == 0
