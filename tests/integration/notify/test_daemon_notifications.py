"""A real ``aaiti run`` with ``[notify]``: start, fills and stop reach a webhook, the URL never reaches the log."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.daemon.daemon_process import DaemonProcess
from tests.integration.daemon.paper_state import paper_config
from tests.integration.notify.receiver import Receiver

TOKEN = "TOKENdaemon0123456789"


class ThreadedReceiver:
    """A ``Receiver`` on its own event loop in a thread (the daemon is another process)."""

    def __init__(self) -> None:
        self.receiver = Receiver()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.receiver.start(), self._loop).result(10)

    def titles(self) -> list[str]:
        return list(self.receiver.titles())

    def wait_for(self, pred: str, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while not any(pred in t for t in self.titles()):
            if time.monotonic() > deadline:
                raise AssertionError(f"no message with {pred!r} within {timeout}s; last: {self.titles()[-10:]}")
            time.sleep(0.05)
        return self.titles()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def webhook() -> Iterator[ThreadedReceiver]:
    rx = ThreadedReceiver()
    yield rx
    rx.close()


def test_daemon_notifies_start_fills_and_stop(tmp_path: Path, webhook: ThreadedReceiver) -> None:
    config = paper_config(tmp_path, speed=3000)
    config.write_text(config.read_text() + "\n[notify]\nrate_per_minute = 1000\n")
    url = f"json://127.0.0.1:{webhook.receiver.port}/hook/{TOKEN}"
    proc = DaemonProcess(config, extra_env={"AAITI_NOTIFY_URLS": url})
    try:
        proc.wait_for_event("notify.started", timeout=60)
        webhook.wait_for(": started")
        webhook.wait_for("Fill: ")
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    titles = webhook.wait_for(": stopping", timeout=5)
    assert titles[0].endswith(": started") and titles[-1].endswith(": stopping")
    assert titles.count(titles[0]) == 1
    assert (tmp_path / "state" / "notify-outbox.db").exists()
    out = "".join(proc.raw) + proc.stderr()
    assert TOKEN not in out and url not in out


def test_a_url_apprise_refuses_stops_startup_without_showing_it(tmp_path: Path) -> None:
    secret_url = "nosuchservice://SECRETabc123456/xyz"
    config = paper_config(tmp_path)
    config.write_text(config.read_text() + f'\n[notify]\nurls = ["{secret_url}"]\n')
    proc = DaemonProcess(config)
    try:
        assert proc.wait(timeout=30) == 2
    finally:
        proc.kill()
    err = proc.stderr()
    assert "notify target nosuchservice:" in err and "Apprise does not accept this URL" in err
    out = "".join(proc.raw) + err
    assert "SECRETabc123456" not in out
