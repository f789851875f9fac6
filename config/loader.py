"""Read aaiti.toml into a validated, frozen AaitiConfig."""

from __future__ import annotations

import dataclasses
import time
import tomllib
from pathlib import Path

from config.errors import ConfigError, ConfigIssue
from config.schema.root import AaitiConfig
from config.validation import build_section


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    """A validated config plus where and when it came from."""

    config: AaitiConfig
    path: Path | None
    base_dir: Path
    loaded_at: float
    version: int = 1

    def resolve(self, relative: str) -> Path:
        """Resolve a path from the config against the config file's directory."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)


def parse_config_text(text: str, source: str) -> AaitiConfig:
    """Parse and validate TOML text; raise ConfigError listing every problem."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", f"invalid TOML: {exc}")]) from None
    config, issues = build_section(AaitiConfig, table)
    if issues or config is None:
        raise ConfigError(source, issues)
    return config


def load_config(path: Path | str | None, *, version: int = 1) -> LoadedConfig:
    """Load ``path`` (None: the embedded defaults) into a LoadedConfig."""
    if path is None:
        return LoadedConfig(AaitiConfig(), None, Path.cwd(), time.time(), version)
    p = Path(path)
    source = str(p)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, [ConfigIssue("", "file not found")]) from None
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot read file: {exc.strerror}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", f"not UTF-8 text (byte {exc.start})")]) from None
    config = parse_config_text(text, source)
    return LoadedConfig(config, p.resolve(), p.resolve().parent, time.time(), version)
