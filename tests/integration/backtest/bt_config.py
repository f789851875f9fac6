"""Configs for backtest tests: the bundled default config with state in a temp dir (test helper)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.integration.daemon.paper_state import paper_config


def replay_once_config(tmp: Path, *, append: str = "") -> Path:
    """The default paper config replaying its tape once at full speed, stopping at the end.

    What a backtest forces, written into the file, so ``aaiti run`` on it does the same.
    """
    path = paper_config(tmp, speed=0)
    text = path.read_text()
    text = re.sub(r"(?m)^loop = .*$", "loop = false", text)
    text = text.replace("[feed]\n", '[feed]\non_end = "stop"\n', 1)
    path.write_text(text + ("\n" + append if append else ""))
    return path
