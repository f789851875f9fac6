"""The one serialized validate-then-apply path for config reloads.

SIGHUP, ``POST /reload`` and ``aaiti reload`` all call ``ConfigReloader.reload``:

1. validate everything: parse, schema and cross-field checks (``load_config``), then every
   strategy class loads and its params validate (``strategy_issues``: the same
   ``load_strategy_class`` and ``Strategy.validate_params`` the daemon runs at start-up);
2. diff against the running config; a changed field that the running daemon does not
   re-read (the schema's ``restart`` fields, and every field outside ``LIVE_FIELDS``)
   refuses the reload, naming it;
3. apply all or nothing: swap the running config and notify the subscribers (they apply
   at their next message boundary). If one fails, the previous config is swapped back
   and the subscribers are notified with it again, so what runs is what ``current`` says.

A refused reload leaves the running config untouched and the result says exactly why.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import structlog

from actors.kernel.clock import wall_s
from actors.strategy_api import StrategyContext, StrategyLoadError, StrategyParamsError, load_strategy_class
from config.errors import ConfigError, ConfigIssue
from config.loader import LoadedConfig, load_config
from config.reload_diff import LIVE_FIELDS, diff_configs
from config.schema.root import AaitiConfig

#: A check of a parsed config beyond the schema; returns every problem it finds.
ConfigCheck = Callable[[AaitiConfig], list[ConfigIssue]]
#: Called with ``(config, changed_paths)``; must be idempotent (see ``ConfigReloader.subscribe``).
ReloadSubscriber = Callable[[LoadedConfig, tuple[str, ...]], None]



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


def strategy_issues(config: AaitiConfig) -> list[ConfigIssue]:
    """Load every ``[[strategies]]`` class and validate its params, as the daemon does at start.

    The same two calls the composition root makes while wiring the tree
    (``load_strategy_class``, then ``Strategy.validate_params`` on the context's params, which
    ``StrategyHost`` runs), so a config this accepts does not fail there. Issues name the key:
    ``strategies[0].strategy`` or ``strategies[0].params.<key>``. Imports the strategy
    modules; starts nothing.
    """
    issues: list[ConfigIssue] = []
    for i, section in enumerate(config.strategies):
        where = f"strategies[{i}]"
        try:
            cls = load_strategy_class(section.strategy)
        except StrategyLoadError as exc:
            issues.append(ConfigIssue(f"{where}.strategy", str(exc)))
            continue
        except Exception as exc:  # the module itself failed while importing: start-up would stop on it too
            issues.append(ConfigIssue(f"{where}.strategy", f"importing {section.strategy!r} raised {exc!r}"))
            continue
        try:
            cls.validate_params(StrategyContext.from_section(section).params, strategy=section.name)
        except StrategyParamsError as exc:
            issues.append(ConfigIssue(f"{where}.params" + (f".{exc.key}" if exc.key else ""), exc.problem))
        except Exception as exc:  # a params type whose own check raised something unexpected
            issues.append(ConfigIssue(f"{where}.params", f"validating raised {exc!r}"))
    return issues


class ConfigReloader:
    """Owns the running config; the only code that swaps it.

    ``checks`` run on every reloaded config after the schema (default: ``strategy_issues``);
    ``live`` lists the fields a reload may change (default: ``LIVE_FIELDS``).
    """

    def __init__(
        self,
        loaded: LoadedConfig,
        *,
        checks: Sequence[ConfigCheck] = (strategy_issues,),
        live: Collection[str] = LIVE_FIELDS,
    ) -> None:
        self.current = loaded
        self._checks = tuple(checks)
        self._live = tuple(live)
        self._lock = asyncio.Lock()
        self._subscribers: list[ReloadSubscriber] = []
        self.counts: dict[str, int] = {}
        self.last: ReloadResult | None = None
        self.log: Any = structlog.get_logger("aaiti").bind(actor="config")

    def subscribe(self, callback: ReloadSubscriber) -> None:
        """Call ``callback(new_config, changed_paths)`` after each validated reload.

        A callback that raises makes the reload fail as a whole: the previous config is
        restored and every callback is called again with it (and the same paths), so
        callbacks must apply a config idempotently, comparing with what runs.
        """
        self._subscribers.append(callback)

    async def reload(self, source: str = "api", path: Path | None = None) -> ReloadResult:
        """Re-read the config file; apply its changes all or nothing, or refuse with reasons."""
        async with self._lock:
            prepared = await asyncio.to_thread(self._prepare, path)
            if isinstance(prepared, ReloadResult):
                return self._finish(dataclasses.replace(prepared, source=source))
            new, changed = prepared
            return self._finish(self._apply(new, changed, source))

    def _prepare(self, path: Path | None) -> ReloadResult | tuple[LoadedConfig, tuple[str, ...]]:
        """Validate everything and diff; a refusal or the config to apply (runs in a thread)."""
        cur = self.current
        target = path or cur.path
        if target is None:
            return ReloadResult(False, "error", cur.version, (), ("daemon runs on embedded defaults; no file",))
        try:
            new = load_config(target, version=cur.version + 1)
        except ConfigError as exc:
            return ReloadResult(False, "invalid", cur.version, (), tuple(i.render(exc.source) for i in exc.issues))
        issues = self._run_checks(new.config)
        if issues:
            return ReloadResult(False, "invalid", cur.version, (), tuple(i.render(str(target)) for i in issues))
        diff = diff_configs(cur.config, new.config, live=self._live)
        if diff.restart_required:
            return ReloadResult(False, "restart_required", cur.version, diff.restart_required,
                                diff.restart_messages())
        if not diff.hot:
            return ReloadResult(True, "unchanged", cur.version)
        return dataclasses.replace(new, loaded_at=wall_s()), diff.hot

    def _run_checks(self, config: AaitiConfig) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []
        for check in self._checks:
            try:
                issues.extend(check(config))
            except Exception as exc:  # a check that breaks must refuse the file, not let it through
                issues.append(ConfigIssue("", f"check {getattr(check, '__name__', check)!r} raised {exc!r}"))
        return issues

    def _apply(self, new: LoadedConfig, changed: tuple[str, ...], source: str) -> ReloadResult:
        """Swap and notify; on a failing subscriber swap back and notify again with the old config."""
        old = self.current
        self.current = new
        failure = self._notify(new, changed)
        if failure is None:
            return ReloadResult(True, "applied", new.version, changed, (), source)
        self.current = old
        errors = [f"applying version {new.version} failed ({failure}); version {old.version} was restored"]
        undo_failure = self._notify(old, changed)
        if undo_failure is not None:
            errors.append(f"restoring version {old.version} failed too ({undo_failure})")
        return ReloadResult(False, "error", old.version, changed, tuple(errors), source)

    def _notify(self, loaded: LoadedConfig, changed: tuple[str, ...]) -> str | None:
        """Call every subscriber; stop at the first that raises and describe its error."""
        for cb in self._subscribers:
            try:
                cb(loaded, changed)
            except Exception as exc:
                self.log.error("config.subscriber_failed", version=loaded.version, error=repr(exc))
                return repr(exc)
        return None

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
