"""Plain (JSON-able) views of a config with secrets redacted."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from config.fields import spec_of

REDACTED = "***"


def config_to_plain(obj: Any, *, redact: bool = True) -> Any:
    """Convert a config (or section) to dicts/lists/scalars; secret fields become "***" when set."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if redact and spec_of(f).secret and value:
                out[f.name] = REDACTED
            else:
                out[f.name] = config_to_plain(value, redact=redact)
        return out
    if isinstance(obj, dict):
        return {str(k): config_to_plain(v, redact=redact) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [config_to_plain(v, redact=redact) for v in obj]
    if isinstance(obj, Decimal):
        return str(obj)
    return obj


def secret_field_names(obj: Any) -> set[str]:
    """Names of every field marked secret anywhere in the schema (for log redaction)."""
    names: set[str] = set()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if spec_of(f).secret:
                names.add(f.name)
            names |= secret_field_names(getattr(obj, f.name))
    elif isinstance(obj, dict):
        for v in obj.values():
            names |= secret_field_names(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            names |= secret_field_names(v)
    return names
