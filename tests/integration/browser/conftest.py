"""Shared real-browser machinery: Debian's chromium driven by Playwright, with a request allow-list.

Chromium comes from Debian (``make test`` installs it); Playwright's own browser download is
never used (``playwright install`` cannot work offline). Every request a page makes goes
through ``Browser.route``: allowed URLs continue, anything else is aborted and recorded in
``Browser.blocked`` so a test can assert that nothing tried to reach the network. Tests wait
for ``data-*`` attributes the pages' scripts set, never for a fixed time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported for real inside launch_browser, which fails clearly without it
    from playwright.sync_api import BrowserContext, Route

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
READY_TIMEOUT_MS = 15_000  # a deadline for a hung page, not a performance assertion


def unavailable(reason: str) -> None:
    """``make test`` installs everything the browser tests need; missing is a failure, never a skip."""
    pytest.fail(f"{reason} (run `make test`, which installs Debian's chromium and the dev packages)")


@dataclass
class Browser:
    """A chromium context whose pages may load only URLs ``allow`` accepts; the rest is aborted and recorded."""

    context: BrowserContext
    allow: Callable[[str], bool]
    blocked: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        """The context's request hook."""
        if self.allow(route.request.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()


@contextlib.contextmanager
def launch_browser(profile_dir: Path, allow: Callable[[str], bool]) -> Iterator[Browser]:
    """Headless chromium with a fresh profile in ``profile_dir``, requests filtered by ``allow``."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (make test installs Debian's chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir),  # fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=LAUNCH_ARGS,
            viewport={"width": 1280, "height": 1000},
        )
        wrapped = Browser(context, allow)
        context.route("**/*", wrapped.route)
        try:
            yield wrapped
        finally:
            context.close()


def screenshot_path(name: str) -> str:
    """``tests/artifacts/<name>.png`` (the directory is created), for a human to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")
