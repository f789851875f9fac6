"""What reading a market-data file found, and the one start-up log line that says so.

The strict readers (``csv_reader``, ``quotes``) reject every malformed row. What they
tolerate by a fixed rule — duplicate rows skipped, out-of-order rows kept or dropped,
missing candles — is counted in a ``FileReport`` and reported once per file, when the file
is read at start-up: an ``info`` line for a clean file, a ``warning`` line naming each kind
of anomaly, its count, what was done with it and the first line it happened on. The replay
sources copy the counts into their ``SourceStats``, so ``/status`` shows them too.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import structlog

__all__ = ["FileReport", "OutOfOrderRule", "log_file_report"]

#: What a reader does with a row older than an earlier one: keep it in file order, or drop it.
OutOfOrderRule = Literal["kept", "dropped"]

_EVENT = "market_data.file_read"


@dataclasses.dataclass(frozen=True, slots=True)
class FileReport:
    """What reading a file found: data rows, rows kept, and the anomalies tolerated.

    ``kind`` is the file format (``trades``, ``candles``, ``quotes``); ``out_of_order_rows``
    says whether out-of-order rows were kept (in file order) or dropped. The ``first_*_line``
    fields are the 1-based line numbers of the first row of each kind of anomaly (0: none).
    """

    path: str
    rows: int
    kept: int
    duplicates_skipped: int = 0
    out_of_order: int = 0
    gaps: int = 0
    kind: str = ""
    out_of_order_rows: OutOfOrderRule = "kept"
    first_duplicate_line: int = 0
    first_out_of_order_line: int = 0
    first_gap_line: int = 0

    @property
    def anomalies(self) -> int:
        """Duplicates skipped + out-of-order rows + missing candles."""
        return self.duplicates_skipped + self.out_of_order + self.gaps

    def summary(self) -> str:
        """The anomalies in words ("clean" when there were none)."""
        parts: list[str] = []
        if self.duplicates_skipped:
            parts.append(
                f"{self.duplicates_skipped} duplicate row(s) skipped (first at line {self.first_duplicate_line})"
            )
        if self.out_of_order:
            how = "kept in file order" if self.out_of_order_rows == "kept" else "dropped"
            first = self.first_out_of_order_line
            parts.append(f"{self.out_of_order} out-of-order row(s) {how} (first at line {first})")
        if self.gaps:
            parts.append(f"{self.gaps} missing candle(s) (first gap before line {self.first_gap_line})")
        return "; ".join(parts) if parts else "clean"


def log_file_report(report: FileReport, log: Any | None = None) -> None:
    """Log ``report`` as one line: ``info`` when the file is clean, ``warning`` otherwise.

    ``log`` is a structlog logger to bind to (default: the ``aaiti`` logger bound to
    ``component="market_data"``); the line is bound to the file's path and kind.
    """
    base: Any = log if log is not None else structlog.get_logger("aaiti").bind(component="market_data")
    bound: Any = base.bind(file=report.path, kind=report.kind)
    fields: dict[str, Any] = {
        "rows": report.rows,
        "kept": report.kept,
        "duplicates_skipped": report.duplicates_skipped,
        "out_of_order": report.out_of_order,
        "out_of_order_rows": report.out_of_order_rows,
        "gaps": report.gaps,
    }
    if report.anomalies:
        bound.warning(_EVENT, anomalies=report.summary(), **fields)
    else:
        bound.info(_EVENT, **fields)
