"""Where state databases live: paper and live never share a file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def state_db_path(state_dir: Path | str, mode: Literal["paper", "live"], venue_name: str) -> Path:
    """``<state_dir>/aaiti-<mode>-<venue>.db``, e.g. ``state/aaiti-paper-paper.db``.

    The venue name is reduced to ``[A-Za-z0-9._-]`` so it cannot escape ``state_dir``.
    """
    if mode not in ("paper", "live"):
        raise ValueError(f"mode must be 'paper' or 'live', got {mode!r}")
    safe = _SAFE.sub("_", venue_name).strip("._") or "venue"
    return Path(state_dir) / f"aaiti-{mode}-{safe}.db"
