"""sd_notify: real AF_UNIX datagram sockets (path and abstract) receive the lifecycle in order."""

from __future__ import annotations

import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator

import pytest

from actors.model.control import HealthVerdict
from daemon.sd_notify import SdNotify, SystemdNotifier, monotonic_usec

HEALTHY = HealthVerdict(status="healthy")
DEGRADED = HealthVerdict(status="degraded", reasons=("feed reconnecting",))
UNHEALTHY = HealthVerdict(status="unhealthy", reasons=("actor feed stalled",))


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2.0)  # datagrams are queued before send() returns; this only bounds a failure
    return sock


@pytest.fixture(params=["path", "abstract"])
def listener(request: pytest.FixtureRequest) -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket and the NOTIFY_SOCKET value that reaches it."""
    if request.param == "path":
        with tempfile.TemporaryDirectory(dir="/tmp") as d:  # short: sun_path holds 108 bytes
            path = os.path.join(d, "notify.sock")
            sock = _receiver(path)
            yield path, sock
            sock.close()
    else:
        name = f"aaiti-test-{uuid.uuid4().hex}"
        sock = _receiver("\0" + name)
        yield "@" + name, sock
        sock.close()


def _pending(sock: socket.socket) -> list[str]:
    out: list[str] = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2.0)
    return out


def test_lifecycle_in_order_received(listener: tuple[str, socket.socket]) -> None:
    address, sock = listener
    clock = FakeClock()
    n = SystemdNotifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "10000000"}, clock=clock)
    assert n.enabled and n.watchdog_interval_s == 5.0
    before = monotonic_usec()
    assert n.ready(status="trading")
    assert n.reloading()
    assert n.ready()
    assert n.on_verdict(HEALTHY)
    assert n.stopping()
    got = [sock.recv(4096).decode() for _ in range(5)]
    assert got[0] == "READY=1\nSTATUS=trading"
    reloading = dict(line.split("=", 1) for line in got[1].split("\n"))
    assert reloading["RELOADING"] == "1"
    assert before <= int(reloading["MONOTONIC_USEC"]) <= monotonic_usec()
    assert got[2:] == ["READY=1", "WATCHDOG=1", "STOPPING=1"]
    assert n.errors == 0
    n.close()


def test_unhealthy_verdict_no_watchdog(listener: tuple[str, socket.socket]) -> None:
    address, sock = listener
    clock = FakeClock()
    n = SystemdNotifier({"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "2000000"}, clock=clock)
    for _ in range(3):
        clock.now += 10
        assert not n.on_verdict(UNHEALTHY)
    assert _pending(sock) == []
    clock.now += 10
    assert n.on_verdict(HEALTHY)
    assert sock.recv(4096) == b"WATCHDOG=1"
    n.close()


def test_watchdog_rate_limited_to_half_interval() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        path = os.path.join(d, "n.sock")
        sock = _receiver(path)
        clock = FakeClock()
        n = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000"}, clock=clock)  # pet every 2 s
        sent = []
        for _ in range(41):  # verdicts every 0.25 s for 10 s
            sent.append(n.on_verdict(HEALTHY))
            clock.now += 0.25
        assert sum(sent) == 6  # t = 0, 2, 4, 6, 8, 10
        assert _pending(sock) == ["WATCHDOG=1"] * 6
        n.close()
        sock.close()


def test_degraded_verdict_pets_unless_min_status_healthy() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        path = os.path.join(d, "n.sock")
        sock = _receiver(path)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
        lenient = SystemdNotifier(env, clock=FakeClock())
        strict = SystemdNotifier(env, min_status="healthy", clock=FakeClock())
        assert lenient.on_verdict(DEGRADED)
        assert not strict.on_verdict(DEGRADED)
        assert _pending(sock) == ["WATCHDOG=1"]
        lenient.close()
        strict.close()
        sock.close()


def test_watchdog_pid_of_other_process_no_watchdog() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        path = os.path.join(d, "n.sock")
        sock = _receiver(path)
        other = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
        ours = SystemdNotifier(
            {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
        )
        assert other.watchdog_interval_s is None and not other.on_verdict(HEALTHY)
        assert ours.on_verdict(HEALTHY)
        assert _pending(sock) == ["WATCHDOG=1"]
        other.close()
        ours.close()
        sock.close()


def test_no_watchdog_usec_no_watchdog() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        path = os.path.join(d, "n.sock")
        sock = _receiver(path)
        n = SystemdNotifier({"NOTIFY_SOCKET": path})
        assert not n.on_verdict(HEALTHY)
        assert n.ready()
        assert _pending(sock) == ["READY=1"]
        n.close()
        sock.close()


def test_missing_socket_counted_not_raised() -> None:
    n = SystemdNotifier({"NOTIFY_SOCKET": f"/tmp/aaiti-absent-{uuid.uuid4().hex}.sock", "WATCHDOG_USEC": "1000000"})
    assert n.enabled
    assert not n.ready()
    assert not n.on_verdict(HEALTHY)
    assert not n.stopping()
    assert n.errors == 3
    n.close()


def test_unsupported_address_disabled_and_counted() -> None:
    n = SdNotify("vsock:2:1234")
    assert not n.enabled
    assert n.errors == 1
    assert not n.send("READY=1")


def test_no_notify_socket_is_noop() -> None:
    n = SystemdNotifier({})
    assert not n.enabled
    assert not n.ready() and not n.reloading() and not n.stopping() and not n.status("x")
    assert n.errors == 0


def test_disabled_by_config_sends_nothing() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        path = os.path.join(d, "n.sock")
        sock = _receiver(path)
        n = SystemdNotifier({"NOTIFY_SOCKET": path}, enabled=False)
        assert not n.ready()
        assert _pending(sock) == []
        sock.close()


def test_status_text_single_line_and_extend_timeout() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        path = os.path.join(d, "n.sock")
        sock = _receiver(path)
        n = SystemdNotifier({"NOTIFY_SOCKET": path})
        assert n.status("halted:\nkill switch\tengaged")
        assert n.extend_timeout(12.5)
        assert _pending(sock) == ["STATUS=halted: kill switch engaged", "EXTEND_TIMEOUT_USEC=12500000"]
        n.close()
        sock.close()


def test_full_receiver_buffer_never_blocks() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as d:
        path = os.path.join(d, "n.sock")
        sock = _receiver(path)  # never read: the kernel queue fills up
        n = SdNotify(path)
        t0 = time.monotonic()
        results = [n.send("STATUS=" + "x" * 1000) for _ in range(2000)]
        assert time.monotonic() - t0 < 2.0
        assert not all(results) and n.errors >= 1
        n.close()
        sock.close()
