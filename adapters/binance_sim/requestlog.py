"""A bounded log of every REST request and WS message received, for tests to assert on."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(slots=True, eq=False)
class LoggedRequest:
    """One received request. For websocket messages ``method`` is ``"WS"`` and ``body`` the frame.

    REST entries get the answer filled in once it is known: ``status`` (None: no answer was
    sent, e.g. a lost order response) and ``error_code`` (the Binance ``code`` of an error
    answer, None otherwise), so tests can tell a definite refusal from an unknown outcome.
    """

    method: str
    path: str
    query: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    time_ms: int = 0
    status: int | None = None
    error_code: int | None = None


class RequestLog:
    """Most recent ``max_len`` requests, oldest first."""

    def __init__(self, max_len: int) -> None:
        self._entries: deque[LoggedRequest] = deque(maxlen=max_len)

    def append(self, entry: LoggedRequest) -> None:
        """Record a request."""
        self._entries.append(entry)

    def __iter__(self) -> Iterator[LoggedRequest]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def find(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Entries matching ``method`` and/or exact ``path``."""
        return [e for e in self._entries if (method is None or e.method == method) and (path is None or e.path == path)]

    def clear(self) -> None:
        """Forget everything logged so far."""
        self._entries.clear()
