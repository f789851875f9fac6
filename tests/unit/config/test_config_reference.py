"""docs/config.md is the rendered schema, and it documents every field of every section."""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from config.fields import spec_of
from config.reference import render_reference
from config.reload_diff import LIVE_FIELDS, is_live
from config.schema import AaitiConfig

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "config.md"
REGENERATE = ".venv/bin/python -m config.reference > docs/config.md"
_HEADER = re.compile(r"^## `\[\[?(?P<path>.+?)\]\]?`$")
_MAP_KEY = re.compile(r'\."[^"]*"')
_CELL_SPLIT = re.compile(r"(?<!\\)\|")


def _section_class(tp: Any) -> type[Any] | None:
    """The section class when a field annotation is a table, array of tables or map of tables."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    candidate = args[0] if origin is tuple else args[1] if origin is dict else tp
    return candidate if dataclasses.is_dataclass(candidate) and isinstance(candidate, type) else None


def _schema_sections(cls: type[Any], path: str = "", restart: bool = False) -> Iterator[tuple[str, type[Any], bool]]:
    """(dotted path, section class, restart inherited) of every table, straight from the dataclasses."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        sub = _section_class(hints[f.name])
        if sub is not None:
            sub_path = f"{path}.{f.name}" if path else f.name
            sub_restart = restart or spec_of(f).restart
            yield sub_path, sub, sub_restart
            yield from _schema_sections(sub, sub_path, sub_restart)


def _doc_sections(text: str) -> dict[str, list[str]]:
    """The lines of each ``## `[table]` `` section of the doc, by dotted path (map keys removed)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            m = _HEADER.match(line)
            key = _MAP_KEY.sub("", m["path"]) if m else ("" if line == "## Top-level keys" else line)
            current = sections.setdefault(key, [])
        elif current is not None:
            current.append(line)
    return sections


def _rows(lines: list[str]) -> dict[str, list[str]]:
    """Table rows of one section by key: the cells after the key cell."""
    rows: dict[str, list[str]] = {}
    for line in lines:
        m = re.match(r"^\| `(?P<key>[A-Za-z_]\w*)` \|", line)
        if m:
            cells = [c.strip() for c in _CELL_SPLIT.split(line.strip())[1:-1]]
            rows[m["key"]] = cells[1:]
    return rows


def test_docs_config_md_is_the_rendered_schema() -> None:
    expected = render_reference()
    actual = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    if actual != expected:
        diff = list(difflib.unified_diff(actual.splitlines(), expected.splitlines(), "docs/config.md",
                                         "rendered schema", lineterm="", n=1))
        shown = "\n".join(diff[:40]) + ("\n..." if len(diff) > 40 else "")
        raise AssertionError(
            f"docs/config.md does not match config/schema/. Regenerate it from the repository root with\n"
            f"    {REGENERATE}\n{shown}"
        )


def test_every_field_of_every_section_is_documented_with_its_reload_rule() -> None:
    sections = _doc_sections(DOC.read_text(encoding="utf-8"))
    schema = [("", AaitiConfig, False), *_schema_sections(AaitiConfig)]
    expected_paths = {path for path, _, _ in schema}
    root_has_keys = any(_section_class(t) is None for t in typing.get_type_hints(AaitiConfig).values())
    if not root_has_keys:
        expected_paths.discard("")
    assert set(sections) == expected_paths
    for path, cls, restart in schema:
        hints = typing.get_type_hints(cls)
        rows = _rows(sections.get(path, []))
        for f in dataclasses.fields(cls):
            where = f"{path}.{f.name}" if path else f.name
            if _section_class(hints[f.name]) is not None:
                assert where in sections, f"no section for table {where}"
                continue
            assert f.name in rows, f"{where} is missing from docs/config.md"
            reload = rows[f.name][3]
            live = where.replace("strategies.", "strategies[*].", 1) if where.startswith("strategies.") else where
            hot = not (restart or spec_of(f).restart) and is_live(live, LIVE_FIELDS)
            assert reload == ("hot" if hot else "restart"), where
            doc = " ".join(spec_of(f).doc.split()).replace("|", "\\|")
            assert rows[f.name][4] == doc, where
