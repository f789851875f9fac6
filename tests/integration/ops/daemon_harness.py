"""A real ``aaiti run`` child for the ops acceptance tests: config, HTTP client, SSE, sd_notify socket.

Synchronous on purpose: the daemon is another process, so the tests talk to it like an
operator would (plain HTTP on 127.0.0.1, signals, a datagram socket) and wait on its log
lines or on HTTP state with deadlines.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tests.integration.daemon.daemon_process import REPO, DaemonProcess
from tests.integration.daemon.paper_state import paper_config

T = TypeVar("T")
TOKEN = "ops-acceptance-token-0123456789"
CCXT_SECRET = "ccxt-secret-value-must-not-leak-42"
STRATEGIES = "tests.integration.ops.ops_strategies"
# Variables of the test runner's own environment that must not reach a child unless a test sets them.
_SCRUB = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "AAITI_ADMIN_TOKEN", "AAITI_ADMIN_URL",
          "AAITI_CONFIG", "CREDENTIALS_DIRECTORY", "LISTEN_FDS", "LISTEN_PID")
_USE_DEFAULT = object()
# Linux: the socket option (SCM_TIMESTAMP in the ancillary data shares its number) and its struct timeval.
_SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)
_TIMEVAL = struct.Struct("@ll")


def ops_config(
    tmp: Path,
    *,
    speed: float = 3000.0,
    top: str = "",
    replace: Mapping[str, str] | None = None,
    append: str = "",
    log_extra: str = "",
) -> Path:
    """The default paper config (``paper_config``) with test edits.

    ``top`` is inserted before the first section (sections of its own are fine there, they
    end before ``[daemon]``), ``replace`` maps exact ``key = value`` lines to new text and
    ``append`` is added at the end (e.g. more ``[[strategies]]``).
    """
    path = paper_config(tmp, speed=speed, extra=log_extra)
    text = path.read_text()
    for old, new in (replace or {}).items():
        text = replace_line(text, old, new)
    if top:
        text = text.replace("[daemon]\n", f"{top}\n\n[daemon]\n", 1)
    path.write_text(text + ("\n" + append if append else ""))
    return path


def replace_line(text: str, old: str, new: str) -> str:
    """``text`` with its first line equal to ``old`` replaced by ``new`` (which must exist)."""
    lines = text.split("\n")
    assert old in lines, f"{old!r} is not a line of the config"
    lines[lines.index(old)] = new
    return "\n".join(lines)


def resting_strategy(name: str = "resting", count: int = 2) -> str:
    """A ``[[strategies]]`` entry keeping ``count`` LIMIT buys far below the market."""
    return (f'[[strategies]]\nname = "{name}"\nstrategy = "{STRATEGIES}:RestingBuys"\nsymbols = ["XRP/ETH"]\n'
            f'timeframe = "1m"\nparams = {{ count = {count}, size = "20", discount = 0.7 }}\n')


def wait_until(pred: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``pred`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


@dataclass(frozen=True)
class Response:
    """An HTTP answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    @property
    def text(self) -> str:
        """The body as text."""
        return self.body.decode()


class Api:
    """Minimal HTTP client of the admin API (http.client: non-2xx answers are returned, not raised)."""

    def __init__(self, port: int, token: str | None = TOKEN) -> None:
        self.port = port
        self.token = token
        self.base_url = f"http://127.0.0.1:{port}"

    def _headers(self, token: Any, body: bytes | None, extra: Mapping[str, str] | None) -> dict[str, str]:
        tok = self.token if token is _USE_DEFAULT else token
        headers = {"Accept": "application/json"}
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        if body is not None:
            headers["Content-Type"] = "application/json"
        headers.update(extra or {})
        return headers

    @staticmethod
    def _url(path: str, query: Mapping[str, Any] | None) -> str:
        if query:
            return path + "?" + urllib.parse.urlencode({k: str(v) for k, v in query.items()})
        return path

    def request(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        body: Any = None,
        *,
        token: Any = _USE_DEFAULT,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        raw: bytes | None = None,
    ) -> Response:
        """One request: ``body`` is sent as JSON, ``raw`` as it is."""
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, self._url(path, query), body=raw, headers=self._headers(token, raw, headers))
            resp = conn.getresponse()
            return Response(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()

    def get(self, path: str, query: Mapping[str, Any] | None = None, **kw: Any) -> Response:
        """GET."""
        return self.request("GET", path, query, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        """POST with an optional JSON body."""
        return self.request("POST", path, None, body, **kw)

    def ok(self, method: str, path: str, query: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """A request that must answer 2xx; its JSON."""
        resp = self.request(method, path, query, body)
        assert 200 <= resp.status < 300, (method, path, resp.status, resp.body[:500])
        return resp.json()

    @contextlib.contextmanager
    def sse(self, path: str, query: Mapping[str, Any], timeout: float = 10.0) -> Iterator[SseReader]:
        """An open Server-Sent Events stream."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", self._url(path, query), headers=self._headers(_USE_DEFAULT, None,
                                                                              {"Accept": "text/event-stream"}))
            resp = conn.getresponse()
            yield SseReader(resp)
        finally:
            conn.close()


class SseReader:
    """Reads ``(event, data, comment)`` frames of an SSE response line by line."""

    def __init__(self, resp: http.client.HTTPResponse) -> None:
        self.resp = resp
        self.status = resp.status
        self.headers = dict(resp.getheaders())

    def frames(self) -> Iterator[tuple[str, str | None]]:
        """``(event, data)`` per frame; comments come as ``(":comment", text)``."""
        event, data = "message", None
        while True:
            raw = self.resp.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            if line.startswith(":"):
                yield ":comment", line[1:].strip()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].lstrip()
            elif not line and data is not None:
                yield event, data
                event, data = "message", None


class OpsDaemon(DaemonProcess):
    """``DaemonProcess`` with a scrubbed environment, the admin token, and helpers for new log lines."""

    def __init__(self, config_path: Path, extra_env: Mapping[str, str] | None = None, token: str | None = TOKEN
                 ) -> None:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        if token:
            env["AAITI_ADMIN_TOKEN"] = token
        env.update(extra_env or {})
        env["PYTHONUNBUFFERED"] = "1"
        self.config_path = config_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "run", "--config", str(config_path)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._q: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._api: Api | None = None

    @property
    def api(self) -> Api:
        """A client for the bound admin port (from the ``admin.listening`` line)."""
        if self._api is None:
            self._api = Api(int(self.wait_for_event("admin.listening", timeout=30)["port"]))
        return self._api

    def mark(self) -> int:
        """The index of the next log line (for ``wait_new``)."""
        return len(self.lines)

    def wait_new(self, event: str, since: int, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        """The first record with ``event`` (and fields ``match``) logged at index ``since`` or later."""

        def find() -> dict[str, Any] | None:
            for rec in self.lines[since:]:
                if rec.get("event") == event and all(rec.get(k) == v for k, v in match.items()):
                    return rec
            if self.proc.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"daemon exited ({self.proc.returncode}) before {event}: {self.raw[-15:]}")
            return None

        return wait_until(find, timeout, f"log event {event} {match or ''}")

    def events(self, event: str, since: int = 0) -> list[dict[str, Any]]:
        """Records with ``event`` logged at index ``since`` or later."""
        return [r for r in self.lines[since:] if r.get("event") == event]

    def problems(self) -> list[dict[str, Any]]:
        """Error/critical records and non-JSON stdout lines."""
        return [r for r in self.lines if r.get("level") in ("error", "critical") or r.get("event") == "<non-json>"]

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; the exit code (SIGKILL and fail if it does not stop)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"daemon did not stop within {timeout}s; last lines: {self.raw[-15:]}") from None


class NotifySocket:
    """A bound AF_UNIX datagram socket standing in for systemd's; records ``(wall, mono, fields)``.

    The times are those at which the kernel queued each datagram (``SO_TIMESTAMP``), i.e.
    when the daemon sent it, not when this process got round to reading it: on a loaded
    machine the reader thread can run long after the send. ``abstract=True`` binds
    ``\\0name`` and exposes ``@name`` as the NOTIFY_SOCKET value.
    """

    def __init__(self, directory: Path, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"aaiti-ops-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            path = directory / "notify.sock"
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMP, 1)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._recv, daemon=True)
        self._thread.start()

    def _recv(self) -> None:
        while not self._stop.is_set():
            try:
                data, ancillary, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(_TIMEVAL.size))
            except TimeoutError:
                continue
            except OSError:
                return
            wall, mono = time.time(), time.monotonic()
            sent = next((_TIMEVAL.unpack(raw[:_TIMEVAL.size]) for level, kind, raw in ancillary
                         if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMP), None)
            if sent is not None:  # shift both clocks back by how long the datagram sat queued
                queued = wall - (sent[0] + sent[1] / 1e6)
                wall, mono = wall - queued, mono - queued
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            self.messages.append((wall, mono, fields))

    def kinds(self) -> list[str]:
        """Lifecycle messages in arrival order (``WATCHDOG=1`` and STATUS-only ones left out)."""
        out = []
        for _, _, f in list(self.messages):
            for key in ("READY", "RELOADING", "STOPPING"):
                if f.get(key) == "1":
                    out.append(key)
        return out

    def pings(self) -> list[tuple[float, float]]:
        """``(wall, mono)`` send times of ``WATCHDOG=1`` datagrams."""
        return [(w, m) for w, m, f in list(self.messages) if f.get("WATCHDOG") == "1"]

    def wait_for(self, key: str, count: int = 1, timeout: float = 15.0) -> list[dict[str, str]]:
        """Wait until ``count`` datagrams with ``key=1`` arrived; return them."""

        def found() -> list[dict[str, str]] | None:
            hits = [f for _, _, f in list(self.messages) if f.get(key) == "1"]
            return hits if len(hits) >= count else None

        return wait_until(found, timeout, f"{count} x {key}=1 on the notify socket")

    def close(self) -> None:
        """Stop receiving and close the socket."""
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
