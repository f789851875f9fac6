"""A strategy that raises on every bar (used to drive supervision to give up)."""

from __future__ import annotations

from actors.model.market import Bar
from actors.strategy_api import NoParams, Strategy


class AlwaysCrash(Strategy[NoParams]):
    """Raises on each bar."""

    params_type = NoParams

    def on_bar(self, bar: Bar) -> None:
        """Fail."""
        raise RuntimeError(f"deliberate failure on bar {bar.ts_ms}")
