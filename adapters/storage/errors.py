"""The one error type the storage layer raises."""

from __future__ import annotations

from pathlib import Path


class StoreError(Exception):
    """A state-database problem, with a one-line message naming the file.

    ``reason`` is a stable code: ``corrupt`` (not a database / malformed), ``newer_schema``
    (written by a newer aaiti), ``foreign`` (an SQLite file that is not aaiti's),
    ``locked`` (another process holds it), ``io`` (cannot open/create), ``write_failed``,
    ``constraint`` (e.g. a duplicate client order id), ``closed``, ``missing``.
    """

    def __init__(self, message: str, *, path: Path | str | None = None, reason: str = "error") -> None:
        self.path = Path(path) if path is not None else None
        self.reason = reason
        where = f"state database {self.path}: " if self.path is not None else "state database: "
        super().__init__(where + message)
