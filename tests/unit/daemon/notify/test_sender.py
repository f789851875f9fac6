"""Delivery pieces: backoff, the per-minute window, summary messages, one worker against a fake transport."""

from __future__ import annotations

from pathlib import Path

from daemon.notify.events import EventKind, Notification, Severity
from daemon.notify.outbox import OUTBOX_FILE, AsyncOutbox
from daemon.notify.sender import DeliverySettings, RateWindow, TargetSender, backoff_delay, summary_message
from daemon.notify.targets import Target


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(a, 2.0, 20.0) for a in (1, 2, 3, 4, 5, 100)] == [2, 4, 8, 16, 20, 20]


def test_rate_window_counts_sends_of_the_last_minute() -> None:
    t = [0.0]
    w = RateWindow(2, now=lambda: t[0])
    assert w.delay() == 0
    w.record()
    t[0] = 10
    w.record()
    assert w.delay() == 50
    t[0] = 60
    assert w.delay() == 0


def test_summary_lists_each_event_with_the_worst_severity() -> None:
    notes = [Notification(kind=EventKind.FILL, key="a", title="f1", body=""),
             Notification(kind=EventKind.KILL, key="b", title="k1", body=""),
             Notification(kind=EventKind.FILL, key="c", title="f2", body="")]
    title, body, severity = summary_message("bot", notes)
    assert title == "bot: 3 notifications (fill 2, kill 1)"
    assert body == "[fill] f1\n[kill] k1\n[fill] f2" and severity is Severity.CRITICAL


class FlakyTransport:
    """Fails the first ``failures`` sends, then records them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[str] = []

    async def send(self, title: str, body: str, severity: Severity) -> bool:
        if self.failures:
            self.failures -= 1
            return False
        self.sent.append(title)
        return True


async def test_a_failed_head_is_retried_with_backoff_before_anything_behind_it(tmp_path: Path) -> None:
    outbox = await AsyncOutbox.open(tmp_path / OUTBOX_FILE)
    target = Target.of("json://127.0.0.1:1/x")
    await outbox.add([Notification(kind=EventKind.FILL, key=f"k{i}", title=f"t{i}", body="") for i in range(3)],
                     [target.id], 0)
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    transport = FlakyTransport(failures=3)
    sender = TargetSender(target, outbox, transport, DeliverySettings(retry_initial_s=1, retry_max_s=3), sleep=sleep)
    sender.stopping = True
    await sender.run()  # returns once nothing is pending
    assert transport.sent == ["t0", "t1", "t2"]
    assert waits == [1, 2, 3]
    assert sender.stats.failures == 3 and sender.stats.sent == 3
    assert await outbox.pending_count() == 0
    await outbox.close()
