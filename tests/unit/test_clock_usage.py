"""Time is read through ``actors.kernel.clock`` only.

A backtest runs the live pipeline on market time; one direct wall-clock read in an actor
or adapter would make it depend on how fast the machine is. This test walks the product
packages' syntax trees and fails on any direct read of the clock outside the clock module,
except the justified exceptions listed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("daemon", "actors", "adapters", "config")

# Path prefix -> why it may read the clock directly.
EXCEPTIONS = {
    "actors/kernel/clock.py": "the clock itself",
    "adapters/binance_sim/": (
        "the Binance simulator is a stand-in exchange, a separate program with its own clock "
        "(adapters/binance_sim/clock.py); it is never part of the pipeline"
    ),
    "config/loader.py": (
        "config is the bottom layer and may not import the kernel; loaded_at records when the "
        "file was read (a process fact, shown by /status)"
    ),
}

TIME_FUNCS = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns",
              "process_time", "clock_gettime", "clock_gettime_ns"}
DATETIME_FUNCS = {"now", "utcnow", "today"}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            names = {a.name for a in node.names} & TIME_FUNCS
            if names:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: from time import {', '.join(sorted(names))}")
        if not isinstance(node, ast.Attribute):
            continue
        value = node.value
        if isinstance(value, ast.Name):
            if value.id == "time" and node.attr in TIME_FUNCS:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: time.{node.attr}")
            elif value.id in ("datetime", "date") and node.attr in DATETIME_FUNCS:
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {value.id}.{node.attr}")
            elif value.id == "loop" and node.attr == "time":
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: loop.time")
        elif isinstance(value, ast.Attribute) and value.attr in ("datetime", "date") and node.attr in DATETIME_FUNCS:
            out.append(f"{path.relative_to(ROOT)}:{node.lineno}: {value.attr}.{node.attr}")
        elif isinstance(value, ast.Call) and node.attr == "time":
            fn = value.func
            if isinstance(fn, ast.Attribute) and fn.attr in ("get_running_loop", "get_event_loop"):
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: asyncio loop .time()")
    return out


def test_product_code_reads_time_only_through_the_clock_module() -> None:
    found: list[str] = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if any(rel.startswith(prefix) for prefix in EXCEPTIONS):
                continue
            found.extend(_violations(path))
    assert not found, "read time through actors.kernel.clock instead:\n" + "\n".join(found)


def test_clock_check_catches_a_direct_read() -> None:
    # The checker itself must be able to fail.
    bad = ROOT / "actors" / "_clock_probe_tmp.py"
    try:
        bad.write_text("import time\nimport datetime\nx = time.monotonic()\ny = datetime.datetime.now()\n")
        found = _violations(bad)
    finally:
        bad.unlink()
    assert any("time.monotonic" in f for f in found)
    assert any("datetime.now" in f for f in found)
