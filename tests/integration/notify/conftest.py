"""Fixtures: the daemon's JSON logging into a buffer, a webhook receiver, a service factory."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from actors.kernel.clock import MarketClock
from config.schema.ops import NotifySection
from daemon.logging_setup import LoggingSetup
from daemon.notify import NotificationService
from tests.integration.notify.receiver import Receiver

OpenService = Callable[..., Awaitable[NotificationService]]
DAY0_MS = 1_700_000_000_000


@pytest.fixture
def log_buffer() -> Iterator[io.StringIO]:
    """The daemon's structlog configuration (with its redactor) writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    setup = LoggingSetup("debug", 500, stream=buffer)
    buffer.redactor = setup.redactor  # type: ignore[attr-defined]
    yield buffer
    structlog.reset_defaults()
    root.handlers[:], root.level = saved[0], saved[1]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rx = Receiver()
    await rx.start()
    yield rx
    await rx.stop()


@pytest.fixture
async def open_service(tmp_path: Path, log_buffer: io.StringIO) -> AsyncIterator[OpenService]:
    """Opens services like the daemon does (URLs registered as log secrets); closes them at the end."""
    opened: list[NotificationService] = []

    async def factory(urls: list[str], **settings: Any) -> NotificationService:
        fields: dict[str, Any] = {"urls_env": "", "urls_credential": "", "retry_initial_s": 0.05,
                                  "retry_max_s": 0.2, "rate_per_minute": 10_000, "stop_flush_s": 10.0}
        fields.update(settings)
        section = NotifySection(urls=tuple(urls), **fields)
        svc = await NotificationService.open(
            section, state_dir=tmp_path, clock=MarketClock(DAY0_MS), instance="test", environ={},
            add_secret=log_buffer.redactor.add_secret_value,  # type: ignore[attr-defined]
        )
        opened.append(svc)
        return svc

    yield factory
    for svc in opened:
        await svc.close()
