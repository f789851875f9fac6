"""Config errors: every problem names the file, the key path and what was expected."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a config file."""

    key_path: str
    message: str

    def render(self, source: str) -> str:
        """Format as ``file: key.path: message``."""
        where = self.key_path or "<root>"
        return f"{source}: {where}: {self.message}"


class ConfigError(Exception):
    """A config file could not be loaded; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = tuple(issues)
        super().__init__("\n".join(i.render(source) for i in issues))
