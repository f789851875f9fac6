"""Sliced orders: the iceberg (``actors.contingent.iceberg``) and TWAP (``actors.contingent.twap``).

Both work a size through child slices, each written ahead under its own client order id
before it is released; this module gathers them for the registry of kinds.
"""

from __future__ import annotations

from actors.contingent.iceberg import Iceberg, SliceState
from actors.contingent.twap import Twap
from actors.model.positions import round_down

__all__ = ["Iceberg", "SliceState", "Twap", "round_down"]
