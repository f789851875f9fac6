"""The one serialized validate-then-swap path for config reloads (docs/architecture.md, "Config reload").

SIGHUP, ``POST /reload`` and ``aaiti reload`` all call ``ConfigReloader.reload``:
parse → validate → diff against the running config → refuse if a restart-required
field changed → swap → notify subscribers at their next message boundary → log + count.
A bad file leaves the running config untouched and the result says exactly why.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from actors.kernel.clock import wall_s
from config.errors import ConfigError
from config.loader import LoadedConfig, load_config
from config.reload_diff import diff_configs


@dataclasses.dataclass(frozen=True)
class ReloadResult:
    """Outcome of one reload attempt."""

    ok: bool
    result: str  # "applied", "unchanged", "invalid", "restart_required", "error"
    version: int
    changed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the admin API."""
        return dataclasses.asdict(self)


class ConfigReloader:
    """Owns the running config; the only code that swaps it."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.current = loaded
        self._lock = asyncio.Lock()
        self._subscribers: list[Callable[[LoadedConfig, tuple[str, ...]], None]] = []
        self.counts: dict[str, int] = {}
        self.last: ReloadResult | None = None
        self.log: Any = structlog.get_logger("aaiti").bind(actor="config")

    def subscribe(self, callback: Callable[[LoadedConfig, tuple[str, ...]], None]) -> None:
        """Call ``callback(new_config, changed_paths)`` after each applied reload."""
        self._subscribers.append(callback)

    async def reload(self, source: str = "api", path: Path | None = None) -> ReloadResult:
        """Re-read the config file and apply its hot changes, or refuse with reasons."""
        async with self._lock:
            result = await asyncio.to_thread(self._prepare, path)
            if isinstance(result, ReloadResult):
                return self._finish(dataclasses.replace(result, source=source))
            new, changed = result
            self.current = new
            for cb in self._subscribers:
                try:
                    cb(new, changed)
                except Exception as exc:
                    self.log.error("config.subscriber_failed", error=repr(exc))
            return self._finish(ReloadResult(True, "applied", new.version, changed, (), source))

    def _prepare(self, path: Path | None) -> ReloadResult | tuple[LoadedConfig, tuple[str, ...]]:
        cur = self.current
        target = path or cur.path
        if target is None:
            return ReloadResult(False, "error", cur.version, (), ("daemon runs on embedded defaults; no file",))
        try:
            new = load_config(target, version=cur.version + 1)
        except ConfigError as exc:
            return ReloadResult(False, "invalid", cur.version, (), tuple(i.render(exc.source) for i in exc.issues))
        diff = diff_configs(cur.config, new.config)
        if diff.restart_required:
            return ReloadResult(
                False,
                "restart_required",
                cur.version,
                diff.restart_required,
                tuple(f"{p}: changing this field requires a restart" for p in diff.restart_required),
            )
        if not diff.hot:
            return ReloadResult(True, "unchanged", cur.version)
        return dataclasses.replace(new, loaded_at=wall_s()), diff.hot

    def _finish(self, result: ReloadResult) -> ReloadResult:
        self.counts[result.result] = self.counts.get(result.result, 0) + 1
        self.last = result
        if result.ok:
            self.log.info("config.reload", result=result.result, version=result.version,
                          changed=list(result.changed), source=result.source)
        else:
            self.log.error("config.reload_refused", result=result.result, version=result.version,
                           errors=list(result.errors), source=result.source)
        return result
