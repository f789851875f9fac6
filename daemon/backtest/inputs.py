"""What a backtest reads: the config (with sweep overrides), forced to a finite replay; the manifest facts.

``backtest_config`` turns any config into one that replays its data once, as fast as
possible, and stops at the end: ``[feed]`` with ``on_end = "stop"``, replay (or synthetic)
``speed = 0`` and ``loop = false``. A live config (``feed.source = "ccxt"``) is backtested
on the recorded file of its ``[feed.replay]`` section.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config.errors import ConfigError, ConfigIssue
from config.loader import LoadedConfig, load_config
from config.schema.root import AaitiConfig
from config.validation import build_section

__all__ = ["apply_overrides", "backtest_config", "code_version", "file_sha256", "load_for_backtest"]


def backtest_config(config: AaitiConfig) -> AaitiConfig:
    """``config`` with its feed forced to a finite, unpaced replay that stops at the end."""
    feed = config.feed
    feed = dataclasses.replace(
        feed,
        source="synthetic" if feed.source == "synthetic" else "replay",
        on_end="stop",
        replay=dataclasses.replace(feed.replay, speed=0.0, loop=False),
        synthetic=dataclasses.replace(feed.synthetic, speed=0.0),
    )
    return dataclasses.replace(config, feed=feed)


def apply_overrides(table: dict[str, Any], overrides: Mapping[str, Any]) -> None:
    """Set each dotted key (``strategies.0.params.fast``; numbers index lists) in a parsed TOML table.

    Raises ConfigError naming the key when a path does not fit the table.
    """
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = table
        try:
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
            last = parts[-1]
            if isinstance(node, list):
                node[int(last)] = value
            elif isinstance(node, dict):
                node[last] = value
            else:
                raise TypeError(f"{type(node).__name__} has no keys")
        except (ValueError, IndexError, TypeError, AttributeError) as exc:
            raise ConfigError("<overrides>", [ConfigIssue(dotted, f"cannot override: {exc}")]) from None


def load_for_backtest(path: Path | str, overrides: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Load and validate the config file, with ``overrides`` applied to its table first.

    Raises ConfigError (every problem, with key paths) like ``load_config``.
    """
    if not overrides:
        return load_config(path)
    p = Path(path)
    loaded = load_config(p)  # the file alone must be valid too; gives its problems first
    table = tomllib.loads(p.read_text(encoding="utf-8"))
    apply_overrides(table, overrides)
    config, issues = build_section(AaitiConfig, table)
    if issues or config is None:
        raise ConfigError(f"{p} (with overrides)", issues)
    return dataclasses.replace(loaded, config=config)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version(start: Path | None = None) -> str:
    """The git commit of the checkout this code runs from, read from ``.git``; "unknown" otherwise.

    Reads files only (no git process): ``HEAD``, then the ref it names, loose or packed.
    """
    here = (start or Path(__file__)).resolve()
    for directory in here.parents:
        git = directory / ".git"
        if git.is_dir():
            return _resolve_head(git)
    return "unknown"


def _resolve_head(git: Path) -> str:
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head or "unknown"
        ref = head.split(":", 1)[1].strip()
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip() or "unknown"
        packed = git / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name.strip() == ref:
                    return sha
    except OSError:
        pass
    return "unknown"
