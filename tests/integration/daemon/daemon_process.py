"""Run a real ``aaiti`` child process and read its JSON log lines (test helper)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


class DaemonProcess:
    """An ``aaiti run`` child process with its stdout parsed line by line in a thread."""

    def __init__(self, config_path: Path, extra_env: dict[str, str] | None = None) -> None:
        env = dict(os.environ)
        env.update(extra_env or {})
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "run", "--config", str(config_path)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._q: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw.append(line)
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"event": "<non-json>", "line": line}
            self.lines.append(rec)
            self._q.put(rec)

    def wait_for_event(self, event: str, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
        """Block until a log record with ``event`` (and matching fields) appears."""
        for rec in self.lines:
            if rec.get("event") == event and all(rec.get(k) == v for k, v in match.items()):
                return rec
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (self.proc.poll() is not None and self._q.empty()):
                raise AssertionError(f"no {event!r} log line within {timeout}s; last lines: {self.raw[-15:]}")
            try:
                rec = self._q.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if rec.get("event") == event and all(rec.get(k) == v for k, v in match.items()):
                return rec

    def wait(self, timeout: float) -> int:
        """Wait for exit and the reader to finish; return the exit code."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stderr(self) -> str:
        """Everything the process wrote to stderr (after exit)."""
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def kill(self) -> None:
        """SIGKILL if still running."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
