"""Fixtures: the ops tests' real AdminServer over a MemoryBackend, whose config has instruments."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.ops.conftest import CONFIG_TEXT, backend, logging_setup, section, server

__all__ = ["backend", "config_path", "logging_setup", "section", "server"]

# The backend's symbols are S000/USDT..S002/USDT; XRP/ETH is the default feed's symbol.
INSTRUMENTS = (
    "[instruments.'XRP/ETH']\nbase = 'XRP'\nquote = 'ETH'\ntick_size = '0.00000001'\nstep_size = '1'\n"
    + "".join(
        f"[instruments.'S00{i}/USDT']\nbase = 'S00{i}'\nquote = 'USDT'\ntick_size = '0.0001'\nstep_size = '0.1'\n"
        for i in range(3)
    )
)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """The ops config plus ``[instruments]`` for every symbol the backend reports."""
    path = (tmp_path / "aaiti.toml").resolve()
    path.write_text(CONFIG_TEXT + INSTRUMENTS)
    return path
