"""The frozen, typed config schema of aaiti.toml, one module per area."""

from config.schema.root import AaitiConfig

__all__ = ["AaitiConfig"]
