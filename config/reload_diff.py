"""Diff two configs: which changed fields a hot reload may apply, and which need a restart.

A changed field needs a restart when the schema marks it (``restart``, inherited by every
key inside a marked table), or when the caller passes ``live`` — the fields the running
process re-reads after a reload — and the field is not one of them. Lists of sections
(``[[strategies]]``) are compared entry by entry, by index and name: an entry added,
removed or renamed changes the set of entries, which only a restart can apply.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Mapping
from typing import Any

from config.fields import spec_of

_INDEX = re.compile(r"\[\d+\]")
RESTART_REASON = "changing this field requires a restart"


@dataclasses.dataclass(frozen=True)
class ConfigDiff:
    """Changed key paths, split into hot and restart-required (with why, when not the usual)."""

    hot: tuple[str, ...]
    restart_required: tuple[str, ...]
    reasons: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def changed(self) -> bool:
        """True when anything differs."""
        return bool(self.hot or self.restart_required)

    def restart_messages(self) -> tuple[str, ...]:
        """One ``path: why`` line per restart-required change."""
        return tuple(f"{p}: {self.reasons.get(p, RESTART_REASON)}" for p in self.restart_required)


def diff_configs(old: Any, new: Any, *, live: Collection[str] | None = None) -> ConfigDiff:
    """Compare two configs field by field, honouring each field's ``restart`` flag.

    ``live`` (optional) lists the key paths a running process applies after a reload; a
    list index is written ``[*]`` (``"strategies[*].params"``) and a path covers every key
    below it (``"risk"``). With ``live`` given, any other changed field is restart-required.
    """
    walker = _Walker(tuple(live) if live is not None else None)
    walker.walk(old, new, "", False)
    return ConfigDiff(tuple(walker.hot), tuple(walker.restart), dict(walker.reasons))


#: The fields a running daemon picks up after a reload (list indices as ``[*]``; a path
#: covers every key below it, except keys the schema marks ``restart``). Everything else
#: is read only while the daemon is built, so changing it needs a restart.
LIVE_FIELDS: tuple[str, ...] = (
    "log.level",  # App._on_reload: the level filter
    "log.ring_size",  # App._on_reload: the log ring is resized
    "admin",  # the admin server reads its section on every request
    "watchdog",  # the watchdog reads its section on every tick
    "risk",  # App._on_reload: ConfigChanged -> the risk gate re-reads the section
    "reconciler.interval_s",  # the reconciler reads these on every pass
    "reconciler.inflight_query_after_s",
    "reconciler.balance_tolerance",
    "reconciler.halt_after_discrepancies",
    "reconciler.unknown_orders",
    "feed.replay.speed",  # App._on_reload: source.set_speed
    "feed.synthetic.speed",
    "strategies[*].params",  # App._on_reload: StrategyHost.reconfigure, applied at the next bar
    "strategies[*].enabled",  # App._on_reload: the strategy is started or stopped
    "daemon.cancel_open_orders_on_exit",  # read when the daemon stops
    "orders.fallback_to_emulation",  # the contingent-order manager reads [orders] through current_config
    "orders.trailing_persist_interval_s",
    "orders.child_retry_s",
    "orders.max_child_attempts",
)


def is_live(path: str, live: Collection[str]) -> bool:
    """True when ``path`` is one of ``live`` or lies below one of them (indices as ``[*]``)."""
    generic = _INDEX.sub("[*]", path)
    return any(generic == p or generic.startswith((p + ".", p + "[")) for p in live)


class _Walker:
    """Collects changed leaf paths of two config trees."""

    def __init__(self, live: tuple[str, ...] | None) -> None:
        self.live = live
        self.hot: list[str] = []
        self.restart: list[str] = []
        self.reasons: dict[str, str] = {}

    def walk(self, old: Any, new: Any, path: str, restart: bool) -> None:
        if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new) and type(old) is type(new):
            for f in dataclasses.fields(old):
                sub = f"{path}.{f.name}" if path else f.name
                self.walk(getattr(old, f.name), getattr(new, f.name), sub, restart or spec_of(f).restart)
            return
        if _are_section_lists(old, new):
            self._walk_entries(old, new, path, restart)
            return
        if old != new:
            self._changed(path, restart)

    def _walk_entries(self, old: tuple[Any, ...], new: tuple[Any, ...], path: str, restart: bool) -> None:
        """Entries pair up by index; a different name at an index is another entry, not an edit."""
        for i in range(max(len(old), len(new))):
            sub = f"{path}[{i}]"
            if i >= len(new):
                self._set_changed(sub, f"entry {_label(old[i])} removed; the set of entries is fixed until a restart")
            elif i >= len(old):
                self._set_changed(sub, f"entry {_label(new[i])} added; the set of entries is fixed until a restart")
            elif getattr(old[i], "name", None) != getattr(new[i], "name", None):
                self._set_changed(
                    f"{sub}.name",
                    f"entry {_label(old[i])} replaced by {_label(new[i])} (entries are matched by index and "
                    "name); the set of entries is fixed until a restart",
                )
            else:
                self.walk(old[i], new[i], sub, restart)

    def _set_changed(self, path: str, reason: str) -> None:
        self.restart.append(path)
        self.reasons[path] = reason

    def _changed(self, path: str, restart: bool) -> None:
        if restart or (self.live is not None and not is_live(path, self.live)):
            self.restart.append(path)
        else:
            self.hot.append(path)


def _are_section_lists(old: Any, new: Any) -> bool:
    """Both are tuples of sections (``[[strategies]]``); either may be empty."""
    if not (isinstance(old, tuple) and isinstance(new, tuple)) or not (old or new):
        return False
    return all(dataclasses.is_dataclass(v) for v in (*old, *new))


def _label(entry: Any) -> str:
    name = getattr(entry, "name", None)
    return repr(name) if name is not None else "at this index"
