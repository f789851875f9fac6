"""Static web assets shipped inside the package (vendored libraries, page scripts and styles).

Pages built by aaiti (the backtest report now, the console later) inline or serve these files;
nothing is fetched from the network at run time. Files are read through ``importlib.resources``
so they work from a source checkout, an installed wheel or a zip alike.
"""

from __future__ import annotations

from importlib import resources

LIGHTWEIGHT_CHARTS_JS = "vendor/lightweight-charts.standalone.production.js"
"""TradingView Lightweight Charts (IIFE build, defines ``window.LightweightCharts``); see vendor/README.md."""


def asset_text(relative_path: str) -> str:
    """Return the UTF-8 text of the asset at ``relative_path`` (``/``-separated, below this package).

    Raises ``FileNotFoundError`` if the asset is not shipped (a packaging error).
    """
    resource = resources.files(__name__)
    for part in relative_path.split("/"):
        resource = resource.joinpath(part)
    return resource.read_text(encoding="utf-8")
