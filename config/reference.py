"""Render the config schema as a Markdown reference: one section per TOML table.

``python -m config.reference > docs/config.md`` regenerates the shipped reference; a unit
test fails when the file and the schema disagree. Everything printed comes from the
schema: section text from each section class's docstring, and per key its TOML type,
default, constraints, doc string and whether changing it needs a restart (the
``restart`` flag, which a table passes on to every key inside it). The output depends on
nothing but the schema, so it is the same on every run.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Iterator
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from config.fields import FieldSpec, spec_of
from config.reload_diff import LIVE_FIELDS, is_live
from config.schema.root import AaitiConfig

REGENERATE = "python -m config.reference > docs/config.md"

# Placeholder shown for the key of a table of tables (``[instruments."SYMBOL"]``).
_KEY_PLACEHOLDERS = MappingProxyType({"instruments": "SYMBOL", "risk.symbols": "SYMBOL"})
_DEFAULT_PLACEHOLDER = "NAME"
# Docstrings may cite design notes by section, e.g. "(NOTES.md §3)"; those notes are not
# shipped, so the reference leaves such citations out.
_NOTE_CITATION = re.compile(r"\s*\([\w.-]+\.md §[\d.]+\)")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_NAMES = MappingProxyType(
    {bool: "boolean", int: "integer", float: "number", str: "string", Decimal: "decimal"}
)

_INTRO = f"""\
# Configuration reference

Generated from the config schema (`config/schema/`) by `{REGENERATE}`.
Do not edit it by hand: change the schema and regenerate.

aaiti reads one TOML file (`aaiti.toml` by default, `aaiti run --config PATH` for another).
Every key is optional unless its default says *required*; an empty file is valid. Unknown
keys, wrong types and values outside the constraints are errors, all reported at once as
`FILE: key.path: problem`. `aaiti check-config FILE` prints the effective config (secrets
redacted) or the errors.

Columns:

- **Type**: `boolean`, `integer`, `number` (an integer or a float), `string`, `decimal`
  (a string such as `"0.001"`, exact, or a number), `array of ...`, `table of ...`
  (a TOML table with keys of your choice).
- **Default**: the value used when the key is absent, in TOML syntax; *unset* means the
  key has no value unless given (see the section's text for what applies then).
- **Reload**: `hot` means a reload (SIGHUP, `aaiti reload`, `POST /reload`) applies a change
  while the daemon runs: the part of the daemon that owns the key picks the new value up at
  its next message boundary (strategy `params` at the strategy's next bar). `restart` means
  the daemon reads the key only when it is built: a reload that changes it is refused,
  naming the key, and the daemon keeps running on its old config; restart to apply it.
  Adding, removing or reordering a `[[strategies]]` entry is a restart change too.
"""


@dataclasses.dataclass(frozen=True)
class _Section:
    """One TOML table of the schema, as the reference shows it."""

    header: str
    path: str
    cls: type[Any]
    restart: bool
    field: dataclasses.Field[Any] | None
    kind: str  # "root", "table", "array" or "map"


def _plural(name: str) -> str:
    return name if name.endswith("s") else name + "s"


def _table_of(tp: Any) -> tuple[str, type[Any]] | None:
    """("table" | "array" | "map", section class) when ``tp`` is a TOML table, else None."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return "table", tp
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = args[0]
        if dataclasses.is_dataclass(item) and isinstance(item, type):
            return "array", item
    if origin is dict and len(args) == 2:
        value = args[1]
        if dataclasses.is_dataclass(value) and isinstance(value, type):
            return "map", value
    return None


def _children(cls: type[Any], path: str, restart: bool) -> Iterator[_Section]:
    """The tables directly inside section ``cls`` at dotted ``path``, in schema order."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        table = _table_of(hints[f.name])
        if table is None:
            continue
        kind, sub = table
        sub_path = f"{path}.{f.name}" if path else f.name
        if kind == "array":
            header = f"[[{sub_path}]]"
        elif kind == "map":
            header = f'[{sub_path}."{_KEY_PLACEHOLDERS.get(sub_path, _DEFAULT_PLACEHOLDER)}"]'
        else:
            header = f"[{sub_path}]"
        yield _Section(header, sub_path, sub, restart or spec_of(f).restart, f, kind)


def _sections(cls: type[Any], path: str, restart: bool) -> Iterator[_Section]:
    """Every table inside section ``cls``, depth first, in schema order."""
    for section in _children(cls, path, restart):
        yield section
        yield from _sections(section.cls, section.path, section.restart)


def _class_doc(cls: type[Any]) -> str:
    doc = cls.__doc__ or ""
    if doc.startswith(cls.__name__ + "("):  # the signature dataclasses fill in without a docstring
        return ""
    text = inspect.cleandoc(doc).replace("``", "`")
    return _NOTE_CITATION.sub("", text)


def _toml(value: Any) -> str:
    """A value in TOML syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Decimal):
        return json.dumps(format(value, "f"))  # "0.00000001", not "1E-8"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_toml_key(str(k))} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def _type_name(tp: Any) -> str:
    """The TOML type of a (non-table) field annotation."""
    if tp is Any:
        return "any"
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        names = sorted({_type_name(type(a)) for a in args})
        return " or ".join(names)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is tuple:
        return f"array of {_plural(_type_name(args[0]))}"
    if origin is dict:
        return "table" if args[1] is Any else f"table of {_plural(_type_name(args[1]))}"
    name = _SCALAR_NAMES.get(tp)
    if name is None:  # pragma: no cover - a schema author added a type the loader cannot read
        raise TypeError(f"unsupported schema type {tp!r}")
    return name


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _default_text(f: dataclasses.Field[Any]) -> str:
    value = _default_of(f)
    if value is dataclasses.MISSING:
        return "*required*"
    if value is None:
        return "*unset*"
    return f"`{_toml(value)}`"


def _constraints(tp: Any, spec: FieldSpec) -> str:
    parts: list[str] = []
    if typing.get_origin(tp) is typing.Literal:
        parts.append("one of " + ", ".join(f"`{_toml(a)}`" for a in typing.get_args(tp)))
    if spec.choices is not None:
        parts.append("one of " + ", ".join(f"`{_toml(c)}`" for c in spec.choices))
    for bound, op in ((spec.ge, ">="), (spec.gt, ">"), (spec.le, "<="), (spec.lt, "<")):
        if bound is not None:
            parts.append(f"{op} {bound!r}")
    if spec.pattern is not None:
        parts.append(f"matches `{spec.pattern}`")
    if spec.secret:
        parts.append("secret (redacted when printed or logged)")
    return ", ".join(parts)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _rows(cls: type[Any], restart: bool, live_base: str) -> list[str]:
    hints = typing.get_type_hints(cls)
    rows: list[str] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if _table_of(tp) is not None:
            continue
        spec = spec_of(f)
        key = f"{live_base}.{f.name}" if live_base else f.name
        reload = "hot" if not (restart or spec.restart) and is_live(key, LIVE_FIELDS) else "restart"
        cells = (f"`{f.name}`", _type_name(tp), _default_text(f), _constraints(tp, spec), reload, spec.doc)
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return rows


def _subtables(section: _Section) -> list[str]:
    return [s.header for s in _children(section.cls, section.path, section.restart)]


def _entries_default(section: _Section) -> str:
    """The default entries of an array or map of tables, by the keys they set."""
    assert section.field is not None
    entries = _default_of(section.field)
    if not entries:
        return "Default: none."
    parts: list[str] = []
    for key, entry in entries.items() if isinstance(entries, dict) else enumerate(entries):
        given = [
            f"`{f.name} = {_toml(getattr(entry, f.name))}`"
            for f in dataclasses.fields(entry)
            if _default_of(f) is dataclasses.MISSING or getattr(entry, f.name) != _default_of(f)
        ]
        where = f'`[{section.path}.{_toml_key(str(key))}]`' if section.kind == "map" else f"`[[{section.path}]]`"
        parts.append(f"{where} with {', '.join(given)}" if given else where)
    return "Default: " + "; ".join(parts) + "."


def _render_section(section: _Section) -> list[str]:
    title = "Top-level keys" if section.kind == "root" else f"`{section.header}`"
    out = [f"## {title}", ""]
    if section.kind == "array" and section.field is not None:
        how = f"An array of tables: one `{section.header}` block per entry. {_entries_default(section)}"
        out += [f"{spec_of(section.field).doc} {how}".strip(), ""]
    elif section.kind == "map" and section.field is not None:
        key = _KEY_PLACEHOLDERS.get(section.path, _DEFAULT_PLACEHOLDER)
        how = (f"One table per {key.lower()}; quote keys with characters other than letters, digits, "
               f"`_` and `-`. {_entries_default(section)}")
        out += [f"{spec_of(section.field).doc} {how}".strip(), ""]
    doc = _class_doc(section.cls)
    if doc:
        out += [doc, ""]
    rows = _rows(section.cls, section.restart, section.path + ("[*]" if section.kind == "array" else ""))
    if rows:
        out += ["| Key | Type | Default | Constraints | Reload | Description |",
                "|---|---|---|---|---|---|", *rows, ""]
    subs = _subtables(section)
    if subs:
        out += ["Tables inside: " + ", ".join(f"`{h}`" for h in subs) + ".", ""]
    return out


def render_reference(root: type[Any] = AaitiConfig) -> str:
    """The Markdown reference of the config schema rooted at ``root`` (deterministic)."""
    lines = [_INTRO]
    top = _Section("top level", "", root, False, None, "root")
    if _rows(root, False, ""):
        lines += _render_section(top)
    else:
        lines += ["Tables: " + ", ".join(f"`{h}`" for h in _subtables(top)) + ".", ""]
    for section in _sections(root, "", False):
        lines += _render_section(section)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    """Write the reference to stdout (UTF-8): ``python -m config.reference > docs/config.md``."""
    sys.stdout.buffer.write(render_reference().encode("utf-8"))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
