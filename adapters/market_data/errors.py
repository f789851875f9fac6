"""Typed errors of market-data files."""

from __future__ import annotations

from pathlib import Path


class DataFileError(Exception):
    """A data file is missing, malformed or truncated.

    ``path`` is the file, ``line`` the 1-based line number of the problem (0 when the
    problem is not tied to a line, e.g. a missing file) and ``problem`` says what was wrong.
    """

    def __init__(self, path: Path | str, line: int, problem: str) -> None:
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line > 0 else self.path
        super().__init__(f"{where}: {problem}")
