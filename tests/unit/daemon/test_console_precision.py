"""The web console's ``precision`` block: the CLI's ``Precision`` as JSON, rebuilt only on a new config."""

from __future__ import annotations

from typing import Any

from daemon.admin.backend import AdminBackend, ConfigView
from daemon.admin.console_state import PrecisionCache, precision_block

CONFIG: dict[str, Any] = {
    "instruments": {
        "XRP/ETH": {"base": "XRP", "quote": "ETH", "tick_size": "0.00000001", "step_size": "1"},
        "ETH/USDT": {"base": "ETH", "quote": "USDT", "tick_size": "0.01", "step_size": "0.0001"},
        "BTC/ETH": {"base": "BTC", "quote": "ETH", "tick_size": "0.000001", "step_size": "0.001"},
    },
    "risk": {"equity_asset": "ETH"},
}


class _Backend:
    """Just enough of an ``AdminBackend`` for the cache: a config view, counted."""

    def __init__(self) -> None:
        self.views = 0
        self.config: dict[str, Any] = CONFIG

    def config_view(self) -> ConfigView:
        self.views += 1
        return ConfigView(version=1, loaded_at=0.0, path=None, config=self.config)


def test_block_has_places_per_symbol_and_asset() -> None:
    assert precision_block(CONFIG) == {
        "tick": {"XRP/ETH": 8, "ETH/USDT": 2, "BTC/ETH": 6},
        "step": {"XRP/ETH": 0, "ETH/USDT": 4, "BTC/ETH": 3},
        "quote": {"XRP/ETH": "ETH", "ETH/USDT": "USDT", "BTC/ETH": "ETH"},
        "asset": {"ETH": 8, "USDT": 2},  # an asset's money at the finest tick quoted in it
        "equity_asset": "ETH",
    }


def test_block_of_a_config_without_instruments_is_empty() -> None:
    assert precision_block({}) == {"tick": {}, "step": {}, "quote": {}, "asset": {}, "equity_asset": ""}


def test_cache_rebuilds_only_when_the_config_version_changes() -> None:
    fake = _Backend()
    backend: AdminBackend = fake  # type: ignore[assignment]  # only config_view is used
    cache = PrecisionCache()
    first = cache.get(backend, 1)
    assert cache.get(backend, 1) is first and fake.views == 1
    fake.config = {"instruments": {"XRP/ETH": {"quote": "ETH", "tick_size": "0.0001", "step_size": "1"}}}
    assert cache.get(backend, 2)["tick"] == {"XRP/ETH": 4} and fake.views == 2
    cache.get(backend, None)
    cache.get(backend, None)  # a backend that reports no version: always rebuilt
    assert fake.views == 4
