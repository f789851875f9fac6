"""Delivery through real Apprise ``json://`` URLs to a webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections import Counter
from decimal import Decimal
from pathlib import Path

import structlog

from actors.kernel.clock import MarketClock, perf_ns
from actors.model.orders import Fill, OrderEvent, OrderStatus, Side
from config.schema.ops import NotifySection
from daemon.notify import EventKind, Notification, NotificationService
from daemon.notify.outbox import OUTBOX_FILE
from daemon.notify.targets import resolve_targets
from tests.integration.notify.conftest import DAY0_MS, OpenService
from tests.integration.notify.receiver import Receiver
from tests.waiting import wait_until


def note(kind: EventKind, i: int) -> Notification:
    return Notification(kind=kind, key=f"{kind.value}:{i}", title=f"{kind.value} {i}", body=f"event {i}")


def fill_event(trade_id: str) -> OrderEvent:
    fill = Fill(venue="paper", trade_id=trade_id, client_order_id="c-1", symbol="XRP/ETH", side=Side.BUY,
                price=Decimal("0.0012"), size=Decimal("20"), fee=Decimal("0.00001"), fee_currency="ETH")
    return OrderEvent(client_order_id="c-1", strategy="s1", symbol="XRP/ETH", status=OrderStatus.FILLED,
                      filled=Decimal("20"), size=Decimal("20"), fill=fill)


def pending_rows(state_dir: Path) -> int:
    with sqlite3.connect(state_dir / OUTBOX_FILE) as db:
        return int(db.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'").fetchone()[0])


async def test_event_to_delivery_p99_within_2s(receiver: Receiver, open_service: OpenService) -> None:
    svc = await open_service([receiver.url()])
    await receiver.wait_count(1)  # daemon_start
    offered_ns: dict[str, int] = {}
    for burst in range(10):
        for j in range(5):
            n = note(EventKind.FILL, burst * 5 + j)
            offered_ns[n.title] = perf_ns()
            svc.notify(n)
        await receiver.wait_count(1 + (burst + 1) * 5)
    latencies = sorted((m["recv_ns"] - offered_ns[m["title"]]) / 1e9 for m in receiver.messages[1:])
    p50, p99 = latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"event -> delivery over {len(latencies)} events: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    assert len(latencies) == 50
    assert p99 <= 2.0


async def test_receiver_down_then_up_delivers_everything_once_in_order(
    receiver: Receiver, open_service: OpenService
) -> None:
    svc = await open_service([receiver.url()])
    await receiver.wait_count(1)
    await receiver.stop()
    kinds = [EventKind.FILL, EventKind.PAUSE, EventKind.BREAKER_OPEN]
    for i in range(30):
        svc.notify(note(kinds[i % 3], i))
    await wait_until(lambda: svc.stats().failures >= 3, timeout=30)  # refused, retried, backing off
    for i in range(30, 40):
        svc.notify(note(kinds[i % 3], i))
    await receiver.start()
    await receiver.wait_count(41)
    await svc.close()
    titles = receiver.titles()
    assert titles[0] == "test: started" and titles[-1] == "test: stopping"
    events = titles[1:-1]
    assert Counter(events) == Counter(f"{kinds[i % 3].value} {i}" for i in range(40))  # nothing lost, none twice
    for kind in kinds:
        seq = [int(t.split()[1]) for t in events if t.startswith(kind.value)]
        assert seq == sorted(seq)
    assert svc.stats().dropped == 0


async def test_restart_delivers_rows_left_undelivered(tmp_path: Path, open_service: OpenService) -> None:
    receiver = Receiver()
    await receiver.start()
    await receiver.stop()  # a free port that refuses connections
    first = await open_service([receiver.url()], stop_flush_s=0.2)
    for i in range(5):
        first.notify(note(EventKind.KILL, i))
    await wait_until(lambda: first.stats().failures >= 1, timeout=30)
    await first.close()
    assert pending_rows(tmp_path) == 7  # start, 5 events, stop
    await receiver.start()
    try:
        # The receiver stops before this service is closed: its "stopping" would wait out the
        # default stop flush at teardown.
        await open_service([receiver.url()], stop_flush_s=0.2)
        await receiver.wait_count(8)
        titles = receiver.titles()
        assert titles[:7] == ["test: started", *[f"kill {i}" for i in range(5)], "test: stopping"]
        assert titles[7] == "test: started"
    finally:
        await receiver.stop()


async def test_same_event_twice_is_delivered_once(receiver: Receiver, open_service: OpenService) -> None:
    svc = await open_service([receiver.url()])
    svc.notify(note(EventKind.PAUSE, 1))
    svc.notify(note(EventKind.PAUSE, 1))
    svc.on_order_event(fill_event("t-1"))
    svc.on_order_event(fill_event("t-1"))
    svc.notify(note(EventKind.RESUME, 2))
    await receiver.wait_count(4)  # start, pause 1, the fill, resume 2 (the marker)
    await svc.close()
    # The same keys again after a restart: still once (the outbox remembers delivered keys).
    again = await open_service([receiver.url()])
    again.notify(note(EventKind.PAUSE, 1))
    again.on_order_event(fill_event("t-1"))
    again.notify(note(EventKind.RESUME, 3))
    await receiver.wait_count(7)  # + stop, second start, resume 3
    titles = receiver.titles()
    assert titles.count("pause 1") == 1
    assert sum(t.startswith("Fill: BUY 20 XRP/ETH @ 0.0012") for t in titles) == 1
    assert titles[-1] == "resume 3" and len(titles) == 7
    assert again.stats().duplicates == 2


async def test_rate_limit_coalesces_excess_into_one_summary(tmp_path: Path, receiver: Receiver) -> None:
    fake = {"t": 1000.0}

    async def fake_sleep(seconds: float) -> None:
        fake["t"] += seconds  # the rate window waits on a fake clock: no real minute passes
        await asyncio.sleep(0)

    section = NotifySection(urls=(receiver.url(),), urls_env="", urls_credential="", rate_per_minute=3)
    svc = NotificationService(section, targets=resolve_targets(section, environ={}), state_dir=tmp_path,
                              clock=MarketClock(DAY0_MS), instance="test", now=lambda: fake["t"], sleep=fake_sleep)
    await svc.start()
    for i in range(10):
        svc.notify(note(EventKind.FILL, i))
    try:
        await receiver.wait_count(4)
        titles = receiver.titles()
        assert titles[:3] == ["test: started", "fill 0", "fill 1"]
        assert titles[3] == "test: 8 notifications (fill 8)"
        assert receiver.messages[3]["message"].splitlines() == [f"[fill] fill {i}" for i in range(2, 10)]
        await wait_until(lambda: svc.stats().coalesced == 8)  # marked once the receiver answered
    finally:
        await svc.close()
    assert len(receiver.messages) == 5  # + the stop message; nothing else, nothing dropped
    assert pending_rows(tmp_path) == 0


async def test_disabled_kind_is_not_sent(receiver: Receiver, open_service: OpenService) -> None:
    svc = await open_service([receiver.url()],
                             events={"fill": False, "protective_exit": False, "daemon_start": False})
    svc.on_order_event(fill_event("t-9"))
    svc.notify(note(EventKind.FILL, 1))
    svc.notify(note(EventKind.PAUSE, 2))
    await receiver.wait_count(1)
    assert receiver.titles() == ["pause 2"]
    assert svc.stats().offered == 1  # the fills were not even queued


async def test_secrets_never_appear_in_logs(
    log_buffer: io.StringIO, receiver: Receiver, open_service: OpenService
) -> None:
    password, token = "s3cretPassw0rd", "TOKENabcdef123"
    dead = Receiver()
    await dead.start()
    await dead.stop()
    good = f"json://notifyuser:{password}@127.0.0.1:{receiver.port}/hook/{token}"
    bad = f"json://notifyuser:{password}@127.0.0.1:{dead.port}/hook/{token}"
    svc = await open_service([good, bad], stop_flush_s=0.2)
    svc.notify(note(EventKind.KILL, 1))
    await receiver.wait_count(2)
    await wait_until(lambda: svc.stats().failures >= 2, timeout=30)  # the dead one logged its failures
    # A library that logs the URL it posts to (Apprise does at debug level) is scrubbed as well.
    structlog.get_logger("aaiti").warning("probe", detail=f"POST {bad} as notifyuser:{password}")
    await svc.close()
    assert receiver.messages[0]["path"] == f"/hook/{token}"  # the secret URL was used
    logs = log_buffer.getvalue()
    assert '"probe"' in logs
    assert "notify.delivery_failed" in logs and "notify.started" in logs
    for secret in (password, token, good, bad):
        assert secret not in logs
