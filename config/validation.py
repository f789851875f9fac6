"""Turn a parsed TOML table into a frozen schema instance, collecting every error.

Supports the annotation forms the schema uses: bool, int, float, str, Decimal,
Literal[...], X | None, tuple[X, ...], dict[str, X], dict[str, Any] (free-form) and
nested frozen dataclasses. Unknown keys are errors. Errors carry dotted key paths
(``risk.symbols.BTC/USDT.max_position``; list items as ``strategies[1].name``).

A field's constraints (bounds, pattern, choices) apply to its value, or, for a
``tuple[X, ...]`` or ``dict[str, X]`` field, to each item. After a section is built its
``validate()`` method (if any) returns cross-field problems as ``(key, message)`` pairs; a
section that is a value of a ``dict[str, X]`` can also define ``validate_key(key)`` to check
itself against its key (e.g. an instrument against its symbol).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from config.errors import ConfigIssue
from config.fields import FieldSpec, spec_of

T = TypeVar("T")
_MISSING = object()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a table of {_type_name(typing.get_args(tp)[1])}"
    if tp is type(None):
        return "nothing"
    if tp is Decimal:
        return "a decimal number (write it as a string for exactness, e.g. \"0.001\")"
    if tp is Any:
        return "any value"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _describe(value: Any) -> str:
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", dict: "table", list: "list"}.get(
        type(value), type(value).__name__
    )
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{kind} {text}"


class _Converter:
    def __init__(self) -> None:
        self.issues: list[ConfigIssue] = []

    def fail(self, path: str, message: str) -> object:
        self.issues.append(ConfigIssue(path, message))
        return _MISSING

    def convert(self, tp: Any, value: Any, path: str, spec: FieldSpec | None) -> Any:
        origin = typing.get_origin(tp)
        if tp is Any:
            return value
        if origin in (types.UnionType, typing.Union):
            args = typing.get_args(tp)
            if value is None and type(None) in args:
                return None
            non_none = [a for a in args if a is not type(None)]
            if len(non_none) == 1:
                return self.convert(non_none[0], value, path, spec)
            for arg in non_none:
                sub = _Converter()
                out = sub.convert(arg, value, path, spec)
                if not sub.issues:
                    return out
            return self.fail(path, f"expected {_type_name(tp)}, got {_describe(value)}")
        if origin is typing.Literal:
            allowed = typing.get_args(tp)
            if value not in allowed:
                return self.fail(path, f"expected one of {', '.join(repr(a) for a in allowed)}, got {value!r}")
            return value
        if origin is tuple:
            if not isinstance(value, list | tuple):
                return self.fail(path, f"expected {_type_name(tp)}, got {_describe(value)}")
            item_tp = typing.get_args(tp)[0]
            items = [self.convert(item_tp, v, f"{path}[{i}]", spec) for i, v in enumerate(value)]
            return tuple(items)
        if origin is dict:
            if not isinstance(value, dict):
                return self.fail(path, f"expected {_type_name(tp)}, got {_describe(value)}")
            val_tp = typing.get_args(tp)[1]
            out_map: dict[str, Any] = {}
            for k, v in value.items():
                key_path = _join(path, str(k))
                out_map[str(k)] = item = self.convert(val_tp, v, key_path, spec)
                check_key = getattr(item, "validate_key", None)
                if item is not _MISSING and callable(check_key):
                    for sub, message in check_key(str(k)):
                        self.fail(_join(key_path, sub) if sub else key_path, message)
            return out_map
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if not isinstance(value, dict):
                return self.fail(path, f"expected a table, got {_describe(value)}")
            return self.build(tp, value, path)
        return self.scalar(tp, value, path, spec)

    def scalar(self, tp: Any, value: Any, path: str, spec: FieldSpec | None) -> Any:
        out: Any
        if tp is bool:
            if not isinstance(value, bool):
                return self.fail(path, f"expected a boolean (true/false), got {_describe(value)}")
            out = value
        elif tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                return self.fail(path, f"expected an integer, got {_describe(value)}")
            out = value
        elif tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return self.fail(path, f"expected a number, got {_describe(value)}")
            out = float(value)
            if out != out or out in (float("inf"), float("-inf")):
                return self.fail(path, f"expected a finite number, got {value!r}")
        elif tp is str:
            if not isinstance(value, str):
                return self.fail(path, f"expected a string, got {_describe(value)}")
            out = value
        elif tp is Decimal:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                return self.fail(path, f"expected {_type_name(Decimal)}, got {_describe(value)}")
            try:
                out = Decimal(str(value).strip())
            except InvalidOperation:
                return self.fail(path, f"expected a decimal number, got {value!r}")
            if not out.is_finite():
                return self.fail(path, f"expected a finite decimal number, got {value!r}")
        else:  # pragma: no cover - schema author error
            return self.fail(path, f"unsupported schema type {tp!r}")
        if spec is not None:
            self.check_spec(spec, out, path)
        return out

    def check_spec(self, spec: FieldSpec, value: Any, path: str) -> None:
        if spec.choices is not None and value not in spec.choices:
            self.fail(path, f"expected one of {', '.join(repr(c) for c in spec.choices)}, got {value!r}")
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            for bound, op in ((spec.ge, ">="), (spec.gt, ">"), (spec.le, "<="), (spec.lt, "<")):
                if bound is None:
                    continue
                b: Any = Decimal(str(bound)) if isinstance(value, Decimal) else bound
                ok = {">=": value >= b, ">": value > b, "<=": value <= b, "<": value < b}[op]
                if not ok:
                    self.fail(path, f"expected a value {op} {bound}, got {value}")
        if spec.pattern is not None and isinstance(value, str) and not re.fullmatch(spec.pattern, value):
            self.fail(path, f"expected a string matching {spec.pattern}, got {value!r}")

    def build(self, cls: type[T], table: dict[str, Any], path: str) -> T:
        before = len(self.issues)
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(table) - set(fields))
        for key in unknown:
            self.fail(_join(path, key), f"unknown key (expected one of: {', '.join(sorted(fields))})")
        kwargs: dict[str, Any] = {}
        for name, f in fields.items():
            if name not in table:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    self.fail(_join(path, name), f"required key missing ({_type_name(hints[name])})")
                continue
            out = self.convert(hints[name], table[name], _join(path, name), spec_of(f))
            if out is not _MISSING:
                kwargs[name] = out
        if len(self.issues) > before:
            return _MISSING  # type: ignore[return-value]
        instance = cls(**kwargs)
        check = getattr(instance, "validate", None)
        if callable(check):
            for key, message in check():
                self.fail(_join(path, key), message)
        return instance


def build_section(cls: type[T], table: dict[str, Any], path: str = "") -> tuple[T | None, list[ConfigIssue]]:
    """Build ``cls`` from ``table``; return the instance (None on errors) and all issues."""
    conv = _Converter()
    out = conv.build(cls, table, path)
    if conv.issues:
        return None, conv.issues
    return out, []
