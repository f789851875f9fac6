"""Diff two configs: which changed fields a hot reload may apply, and which need a restart."""

from __future__ import annotations

import dataclasses
from typing import Any

from config.fields import spec_of


@dataclasses.dataclass(frozen=True)
class ConfigDiff:
    """Changed key paths, split into hot and restart-required."""

    hot: tuple[str, ...]
    restart_required: tuple[str, ...]

    @property
    def changed(self) -> bool:
        """True when anything differs."""
        return bool(self.hot or self.restart_required)


def diff_configs(old: Any, new: Any) -> ConfigDiff:
    """Compare two configs field by field, honouring each field's ``restart`` flag."""
    hot: list[str] = []
    restart: list[str] = []
    _walk(old, new, "", False, hot, restart)
    return ConfigDiff(tuple(hot), tuple(restart))


def _walk(old: Any, new: Any, path: str, restart_ctx: bool, hot: list[str], restart: list[str]) -> None:
    if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new) and type(old) is type(new):
        for f in dataclasses.fields(old):
            sub = f"{path}.{f.name}" if path else f.name
            _walk(getattr(old, f.name), getattr(new, f.name), sub, restart_ctx or spec_of(f).restart, hot, restart)
        return
    if old != new:
        (restart if restart_ctx else hot).append(path)
