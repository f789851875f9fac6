"""docs/architecture.md names real code: every ``path.py:Name`` or ``path.py:Class.method`` exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REF = re.compile(r"`([\w/]+\.py):([\w.]+)`")


def _defines(path: Path, dotted: str) -> bool:
    tree = ast.parse(path.read_text())
    scope: list[ast.stmt] = list(tree.body)
    for part in dotted.split("."):
        found = None
        for node in scope:
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.name == part:
                found = node
                break
        if found is None:
            return False
        scope = list(found.body)
    return True


def test_architecture_doc_names_only_existing_code() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    refs = REF.findall(text)
    assert len(refs) >= 15, "the trade path should name its hops"
    missing = [f"{f}:{n}" for f, n in refs if not (ROOT / f).is_file() or not _defines(ROOT / f, n)]
    assert not missing, "docs/architecture.md names code that does not exist: " + ", ".join(missing)


def test_architecture_doc_check_catches_a_wrong_name() -> None:
    assert _defines(ROOT / "daemon" / "pipeline.py", "build_pipeline")
    assert not _defines(ROOT / "daemon" / "pipeline.py", "build_pipelines")
    assert not _defines(ROOT / "actors" / "feed.py", "Feed.no_such_method")
