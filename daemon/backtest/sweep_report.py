"""What a sweep shows and writes: the ranked table, the best params as TOML, the files.

``render_table`` is the terminal view of a sweep dict (``daemon.backtest.sweep``): one row
per trial, best first (rank, params, objective, profit, max drawdown, Sharpe, trades,
status, and the error of a failed trial), or for a walk-forward one row per fold and the
out-of-sample totals. ``render_best_toml`` turns the best params into config text ready to
paste: the whole ``[[strategies]]`` block of each swept strategy with its params updated,
and a section for any other swept key.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.backtest.inputs import apply_overrides

__all__ = ["default_out_dir", "param_labels", "render_best_toml", "render_table", "toml_value"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_STRATEGY_KEY = re.compile(r"strategies\.(\d+)\.")


def default_out_dir(config_path: Path, objective: str) -> Path:
    """``sweeps/<config stem>-<objective>/`` next to the config (no wall-clock time in it)."""
    return config_path.parent / "sweeps" / f"{config_path.stem}-{objective}"


def param_labels(keys: Sequence[str]) -> dict[str, str]:
    """Short column names: the shortest dotted suffix of each key that no other key shares."""
    out: dict[str, str] = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            label = ".".join(parts[-n:])
            if not any(other != key and (other == label or other.endswith("." + label)) for other in keys):
                break
        out[key] = label
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isinf(value):
            return "-inf" if value < 0 else "inf"
        return f"{value:.4g}"
    return str(value)


def _objective_cell(trial: Mapping[str, Any]) -> str:
    if trial["status"] == "failed":
        return "-"
    return _fmt(trial["objective"]) if trial["feasible"] else "-inf"


def _grid_text(header: Sequence[str], rows: Sequence[Sequence[str]], notes: Sequence[str]) -> list[str]:
    widths = [max(len(header[c]), *(len(r[c]) for r in rows)) if rows else len(header[c]) for c in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for row, note in zip(rows, notes, strict=True):
        line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        lines.append(f"{line}  {note}" if note else line)
    return lines


def _trial_rows(trials: Sequence[Mapping[str, Any]], keys: Sequence[str],
                objective: str) -> tuple[list[str], list[list[str]], list[str]]:
    labels = param_labels(keys)
    header = ["rank", "trial", *(labels[k] for k in keys), "objective", "profit", "max_dd_%", "sharpe", "trades",
              "status"]
    rows, notes = [], []
    for t in trials:
        m = t["metrics"]
        rows.append([str(t["rank"]), str(t["number"]), *(_fmt(t["params"].get(k)) for k in keys),
                     _objective_cell(t), _fmt(m.get("total_profit")), _fmt(m.get("max_drawdown_pct")),
                     _fmt(m.get("sharpe")), _fmt(m.get("trades")), t["status"]])
        notes.append(t["error"] or "")
    return header, rows, notes


def _when(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


def render_table(sweep: Mapping[str, Any]) -> str:
    """The sweep as text: header lines, the ranked trials (or folds), the best params."""
    man = sweep["manifest"]
    keys = [p.split("=", 1)[0].strip() for p in man["params"]]
    bound = f", max drawdown {man['max_drawdown_pct']:g}%" if man["max_drawdown_pct"] is not None else ""
    lines = [f"Sweep of {man['config_path']}",
             f"  objective {man['objective']}{bound}, sampler {man['sampler']}, seed {man['seed']}"]
    wf = sweep["walk_forward"]
    if wf is None:
        trials = sweep["trials"]
        counts = {s: sum(t["status"] == s for t in trials) for s in ("ok", "retried", "failed")}
        lines.append(f"  {len(trials)} trials: {counts['ok']} ok, {counts['retried']} retried, "
                     f"{counts['failed']} failed")
        lines.append("")
        lines += _grid_text(*_trial_rows(trials, keys, man["objective"]))
    else:
        lines += _walk_forward_lines(wf, keys, man["objective"])
    best = sweep["best"]
    lines.append("")
    if best is None:
        lines.append("No trial succeeded within the bounds: no best parameters.")
    else:
        shown = ", ".join(f"{k} = {_fmt(v)}" for k, v in best["params"].items())
        lines.append(f"Best: trial {best['trial']}: {shown} ({man['objective']} {_fmt(best['objective'])})")
    return "\n".join(lines) + "\n"


def _walk_forward_lines(wf: Mapping[str, Any], keys: Sequence[str], objective: str) -> list[str]:
    labels = param_labels(keys)
    lines = [f"  walk-forward {wf['spec']}: {len(wf['folds'])} folds over {_when(wf['from_ms'])} .. "
             f"{_when(wf['to_ms'])} (out-of-sample rows: the best train params on the next window)", ""]
    header = ["fold", "train", "test", *(labels[k] for k in keys), f"train_{objective}", f"test_{objective}",
              "test_profit", "test_max_dd_%", "test_sharpe", "test_trades", "status"]
    rows, notes = [], []
    for f in wf["folds"]:
        best, test = f["best"], f["test_result"]
        params = best["params"] if best else {}
        m = test["metrics"] if test else {}
        rows.append([str(f["fold"]), f"{_when(f['train'][0])}..{_when(f['train'][1])}",
                     f"{_when(f['test'][0])}..{_when(f['test'][1])}", *(_fmt(params.get(k)) for k in keys),
                     _fmt(best["objective"]) if best else "-", _objective_cell(test) if test else "-",
                     _fmt(m.get("total_profit")), _fmt(m.get("max_drawdown_pct")), _fmt(m.get("sharpe")),
                     _fmt(m.get("trades")), test["status"] if test else "no feasible trial"])
        notes.append(test["error"] or "" if test else "")
    lines += _grid_text(header, rows, notes)
    a = wf["aggregate"]
    lines += ["", f"  out of sample: {a['folds_tested']}/{a['folds']} folds tested, {a['folds_profitable']} "
                  f"profitable, profit {a['total_profit']}, mean {objective} {_fmt(a['mean_objective'])}, "
                  f"mean sharpe {_fmt(a['mean_sharpe'])}, worst drawdown {_fmt(a['worst_drawdown_pct'])}%, "
                  f"{a['trades']} trades"]
    return lines


def toml_value(value: Any) -> str:
    """A value as TOML text (strings JSON-quoted, which TOML basic strings accept)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


def render_best_toml(sweep: Mapping[str, Any], config_text: str) -> str:
    """The best params as config text: each swept ``[[strategies]]`` block whole, other keys by section."""
    man = sweep["manifest"]
    best = sweep["best"]
    head = f"# Best of the sweep of {man['config_path']} by {man['objective']}"
    if best is None:
        return f"{head}: no trial succeeded within the bounds.\n"
    table = tomllib.loads(config_text)
    updated = copy.deepcopy(table)
    apply_overrides(updated, best["params"])
    lines = [f"{head}: {man['objective']} {_fmt(best['objective'])} (trial {best['trial']}"
             + (f", {best['source']}" if best.get("source") else "") + ")"]
    indices = sorted({int(m.group(1)) for k in best["params"] if (m := _STRATEGY_KEY.match(k))})
    for i in indices:
        block = updated["strategies"][i]
        lines += ["", f"# replaces the [[strategies]] block named {json.dumps(block.get('name', str(i)))}",
                  "[[strategies]]"]
        lines += [f"{_toml_key(k)} = {toml_value(v)}" for k, v in block.items()]
    others: dict[str, list[str]] = {}
    for key, value in best["params"].items():
        if _STRATEGY_KEY.match(key):
            continue
        section, _, leaf = key.rpartition(".")
        others.setdefault(section, []).append(f"{_toml_key(leaf)} = {toml_value(value)}")
    for section, assignments in others.items():
        lines += ["", f"[{section}]" if section else "# top level", *assignments]
    return "\n".join(lines) + "\n"

