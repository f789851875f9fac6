"""Declaring config fields: a default, a doc string and constraints per field.

Every section of the schema is a frozen dataclass whose fields are made with
``setting(...)``. The loader reads the metadata to validate values and report all
problems at once; ``restart`` marks fields that a hot reload may not change, and
``secret`` fields are redacted wherever the config is printed or logged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

META_KEY = "aaiti"


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """Constraints and documentation of one config field."""

    doc: str
    ge: float | None = None
    le: float | None = None
    gt: float | None = None
    lt: float | None = None
    choices: Sequence[Any] | None = None
    secret: bool = False
    restart: bool = False
    pattern: str | None = None


def setting(
    default: Any = dataclasses.MISSING,
    doc: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    choices: Sequence[Any] | None = None,
    secret: bool = False,
    restart: bool = False,
    pattern: str | None = None,
) -> Any:
    """Declare a config field with its default, documentation and constraints."""
    spec = FieldSpec(
        doc=doc, ge=ge, le=le, gt=gt, lt=lt, choices=choices, secret=secret, restart=restart, pattern=pattern
    )
    meta = {META_KEY: spec}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def spec_of(field: dataclasses.Field[Any]) -> FieldSpec:
    """Return the FieldSpec of a dataclass field (an empty one if undeclared)."""
    spec = field.metadata.get(META_KEY)
    return spec if isinstance(spec, FieldSpec) else FieldSpec(doc="")
