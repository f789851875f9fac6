"""Fixtures: real JSON logging into a ring, an in-memory backend, a real AdminServer on 127.0.0.1:0."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import structlog

from config.schema.ops import AdminSection
from daemon.admin.server import AdminServer
from daemon.logging_setup import LoggingSetup
from tests.integration.ops.memory_backend import MemoryBackend

TOKEN = "test-token-0123456789abcdef"
CONFIG_TEXT = "[daemon]\nname = 'ops-test'\n[log]\nlevel = 'info'\n[admin]\ntoken = 'config-secret-value'\n"


def edit_file(path: Path, text: str | None = None, replace: tuple[str, str] | None = None) -> None:
    """Rewrite a file (sync helper for async tests): new ``text``, or one ``replace`` applied."""
    if replace is not None:
        text = path.read_text().replace(*replace)
    assert text is not None
    path.write_text(text)


@pytest.fixture
def logging_setup() -> Iterator[LoggingSetup]:
    """The daemon's structlog configuration writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    setup = LoggingSetup("debug", 500, stream=io.StringIO())
    yield setup
    structlog.reset_defaults()
    root.handlers[:], root.level = saved[0], saved[1]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = (tmp_path / "aaiti.toml").resolve()
    path.write_text(CONFIG_TEXT)
    return path


@pytest.fixture
def backend(logging_setup: LoggingSetup, config_path: Path) -> MemoryBackend:
    return MemoryBackend(logging_setup.ring, config_path)


@pytest.fixture
def section() -> AdminSection:
    return AdminSection(host="127.0.0.1", port=0)


@pytest.fixture
async def server(backend: MemoryBackend, section: AdminSection) -> AsyncIterator[AdminServer]:
    srv = AdminServer(backend, section, TOKEN)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def client(server: AdminServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A session with the right token."""
    async with aiohttp.ClientSession(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as s:
        yield s


@pytest.fixture
async def anon(server: AdminServer) -> AsyncIterator[aiohttp.ClientSession]:
    """A session without a token."""
    async with aiohttp.ClientSession(base_url=server.url) as s:
        yield s
