"""structlog logging: UTC ISO-8601 timestamps, run-time level, secret redaction, a tail ring.

Lines go to stdout as JSON (one object per line: journald, log shippers, ``jq``) or, for a
person at a terminal, in structlog's console format (aligned, coloured only on a TTY);
``[log] format = "auto"`` picks console on a TTY and JSON otherwise (``resolve_format``).
The ring and the admin API's log tail always hold the structured records.

Redaction runs on every event: values under secret-looking keys (api keys, secrets,
tokens, passwords, authorization, credentials, and every field the config schema marks
secret) become "***", at any depth; known secret *values* (the loaded API secret, the
admin token) are also scrubbed from any string they appear in.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections import deque
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import orjson
import structlog

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
#: ``[log] format``: "auto" is resolved to one of the others by ``resolve_format``.
LogFormat = Literal["json", "console", "auto"]
REDACTED = "***"
_SECRET_KEY_PATTERN = r"(api_?key|apikey|secret|token|passw(or)?d|passphrase|authorization|credential|private_?key)"


class LevelControl:
    """The current minimum level; changed at run time by config reload."""

    def __init__(self, level: str = "info") -> None:
        self.threshold = LEVELS[level]
        self.name = level

    def set(self, level: str) -> None:
        """Change the minimum level."""
        self.threshold = LEVELS[level]
        self.name = level

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        if LEVELS.get(method if method != "exception" else "error", 20) < self.threshold:
            raise structlog.DropEvent
        return event


class Redactor:
    """Processor that hides secrets by key name and by known value."""

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        self._secret_values: set[str] = set()
        self.set_keys(extra_keys)

    def set_keys(self, extra_keys: Iterable[str]) -> None:
        """Replace the extra secret key names (schema secret fields, config redact_keys)."""
        names = "|".join(re.escape(k) for k in extra_keys if k)
        pattern = _SECRET_KEY_PATTERN + (f"|^({names})$" if names else "")
        self._key_re = re.compile(pattern, re.IGNORECASE)

    def add_secret_value(self, value: str) -> None:
        """Scrub this exact value from every string (ignored if too short to be a secret)."""
        if len(value) >= 6:
            self._secret_values.add(value)

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secret_values:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: (REDACTED if self._key_re.search(str(k)) and v else self._scrub(v)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        key_re = self._key_re
        for k, v in list(event.items()):
            if k == "event":
                event[k] = self._scrub(v)
            elif key_re.search(k) and v:
                event[k] = REDACTED
            elif isinstance(v, str | dict | list | tuple):
                event[k] = self._scrub(v)
        return event


class LogRing:
    """Bounded ring of recent log records for the admin log tail, with live followers."""

    def __init__(self, size: int) -> None:
        self.records: deque[dict[str, Any]] = deque(maxlen=size)
        self._followers: set[asyncio.Queue[dict[str, Any]]] = set()

    def resize(self, size: int) -> None:
        """Change capacity keeping the newest records."""
        if size != self.records.maxlen:
            self.records = deque(self.records, maxlen=size)

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        record = dict(event)
        self.records.append(record)
        for q in tuple(self._followers):
            if q.full():
                # A slow follower loses its oldest lines rather than growing memory.
                q.get_nowait()
            q.put_nowait(record)
        return event

    def tail(self, n: int, level: str | None = None, logger: str | None = None) -> list[dict[str, Any]]:
        """The newest ``n`` records at or above ``level`` (and of ``logger`` = actor name, if given)."""
        threshold = LEVELS.get(level or "debug", 10)
        out: list[dict[str, Any]] = []
        for rec in reversed(self.records):
            if LEVELS.get(str(rec.get("level", "info")), 20) < threshold:
                continue
            if logger and rec.get("actor") != logger and rec.get("logger") != logger:
                continue
            out.append(rec)
            if len(out) >= n:
                break
        out.reverse()
        return out

    def follow(self, maxsize: int = 1000) -> asyncio.Queue[dict[str, Any]]:
        """Register a follower queue receiving every new record."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=maxsize)
        self._followers.add(q)
        return q

    def unfollow(self, q: asyncio.Queue[dict[str, Any]]) -> None:
        """Remove a follower."""
        self._followers.discard(q)


class _Writer:
    """structlog logger writing already-rendered bytes lines to a text stream."""

    def __init__(self, stream: TextIO) -> None:
        self._buffer = stream.buffer if hasattr(stream, "buffer") else None
        self._stream = stream

    def msg(self, message: bytes | str) -> None:
        line = message if isinstance(message, bytes) else message.encode()
        if self._buffer is not None:
            self._buffer.write(line + b"\n")
            self._buffer.flush()
        else:
            self._stream.write(line.decode() + "\n")
            self._stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = failure = err = log = msg


def _render(logger: Any, method: str, event: MutableMapping[str, Any]) -> bytes:
    return orjson.dumps(event, default=str)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def resolve_format(log_format: LogFormat, stream: TextIO) -> Literal["json", "console"]:
    """The format lines are written in: "auto" means console on a terminal, JSON otherwise."""
    if log_format == "auto":
        return "console" if _is_tty(stream) else "json"
    return log_format


class LoggingSetup:
    """The process's logging configuration; owned by the composition root.

    ``log_format`` is ``[log] format``: "json" (the default here, for tests and tools),
    "console", or "auto" (console on a terminal). Colours are used only when ``stream`` is
    a terminal, so a console-format file or pipe holds no escape codes.
    """

    def __init__(self, level: str = "info", ring_size: int = 2000, stream: TextIO | None = None,
                 *, log_format: LogFormat = "json") -> None:
        self.level = LevelControl(level)
        self.redactor = Redactor()
        self.ring = LogRing(ring_size)
        out = stream if stream is not None else sys.stdout
        self.format = resolve_format(log_format, out)
        renderer: Any = (
            structlog.dev.ConsoleRenderer(colors=_is_tty(out)) if self.format == "console" else _render
        )
        structlog.configure(
            processors=[
                self.level,
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.format_exc_info,
                self.redactor,
                self.ring,
                renderer,
            ],
            logger_factory=lambda *args: _Writer(out),
            wrapper_class=structlog.BoundLogger,
            cache_logger_on_first_use=False,
        )
        # Libraries logging through stdlib (aiohttp, asyncio) land in the same stream and format.
        logging.basicConfig(level=logging.WARNING, handlers=[_StdlibBridge()], force=True)


class _StdlibBridge(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log = structlog.get_logger("aaiti").bind(logger=record.name)
        method = {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}.get(record.levelno, "info")
        getattr(log, method)(record.getMessage())
