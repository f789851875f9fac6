"""``landscape.html``: the parameter landscape of a sweep, one self-contained offline page.

Plain inline SVG (no script, no network): the chart library the backtest report inlines
draws time series, not a parameter grid. For two swept keys with few distinct values the
page shows a heatmap of the objective (rows one key, columns the other; failed trials
crossed out, scores of -inf dark); otherwise one scatter per key (its value against the
objective). Below: every trial as a bar, sorted by objective, and the ranked table.
Hovering a cell, dot or bar shows the trial (SVG ``<title>``). A walk-forward sweep gets
one landscape per fold (its train window) and the out-of-sample table. The page depends
only on the sweep dict, so it is byte-identical for the same sweep.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from daemon.backtest.sweep_report import param_labels, render_table

__all__ = ["render_landscape"]

#: A heatmap axis with more distinct values than this becomes a scatter.
_MAX_HEAT = 40
_LOW, _MID, _HIGH = (68, 1, 84), (33, 145, 140), (253, 231, 37)  # viridis ends and middle
_FAILED, _INFEASIBLE = "#d0d0d0", "#303030"

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px} p.sub{color:#555;margin:0 0 12px}
svg{display:block;margin:8px 0;max-width:100%;height:auto} text{font:11px system-ui,sans-serif;fill:#333}
pre{background:#f6f6f6;padding:10px;overflow-x:auto;font-size:12px}
.legend span{display:inline-block;width:14px;height:14px;vertical-align:middle;margin:0 4px 0 12px}
"""


def _color(t: float) -> str:
    """Viridis-like colour of ``t`` in [0, 1] (low: purple, high: yellow)."""
    t = min(1.0, max(0.0, t))
    a, b, u = (_LOW, _MID, t * 2) if t < 0.5 else (_MID, _HIGH, t * 2 - 1)
    r, g, bl = (round(a[i] + (b[i] - a[i]) * u) for i in range(3))
    return f"#{r:02x}{g:02x}{bl:02x}"


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _title(trial: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    params = ", ".join(f"{labels[k]}={_num(v)}" for k, v in trial["params"].items() if k in labels)
    if trial["status"] == "failed":
        score = f"failed: {trial['error']}"
    else:
        score = f"objective {_num(trial['objective'])}" if trial["feasible"] else "objective -inf (over the bound)"
    m = trial["metrics"]
    extra = f"; profit {m['total_profit']}, max dd {_num(m['max_drawdown_pct'])}%, trades {m['trades']}" if m else ""
    return html.escape(f"trial {trial['number']}: {params}; {score}{extra}")


def _scale(trials: Sequence[Mapping[str, Any]]) -> tuple[float, float]:
    scores = [t["objective"] for t in trials if t["feasible"]]
    return (min(scores), max(scores)) if scores else (0.0, 1.0)


def _fill(trial: Mapping[str, Any], lo: float, hi: float) -> str:
    if trial["status"] == "failed":
        return _FAILED
    if not trial["feasible"]:
        return _INFEASIBLE
    return _color((trial["objective"] - lo) / (hi - lo) if hi > lo else 0.5)


def _sort_key(value: Any) -> tuple[int, float, str]:
    return (0, float(value), "") if isinstance(value, int | float) and not isinstance(value, bool) \
        else (1, 0.0, str(value))


def _heatmap(trials: Sequence[Mapping[str, Any]], kx: str, ky: str, labels: Mapping[str, str]) -> str:
    xs = sorted({t["params"][kx] for t in trials}, key=_sort_key)
    ys = sorted({t["params"][ky] for t in trials}, key=_sort_key)
    lo, hi = _scale(trials)
    cell = max(18, min(48, 640 // max(len(xs), 1)))
    left, top = 70, 20
    width, height = left + cell * len(xs) + 20, top + cell * len(ys) + 50
    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    cells = {(repr(t["params"][kx]), repr(t["params"][ky])): t for t in trials}
    for j, yv in enumerate(reversed(ys)):
        y = top + j * cell
        out.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:g}" text-anchor="end">{html.escape(_num(yv))}</text>')
        for i, xv in enumerate(xs):
            t = cells.get((repr(xv), repr(yv)))
            if t is None:
                continue
            x = left + i * cell
            out.append(f'<rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" fill="{_fill(t, lo, hi)}">'
                       f"<title>{_title(t, labels)}</title></rect>")
            if t["status"] == "failed":
                out.append(f'<path d="M{x + 4} {y + 4}L{x + cell - 5} {y + cell - 5}M{x + cell - 5} {y + 4}'
                           f'L{x + 4} {y + cell - 5}" stroke="#888"/>')
    for i, xv in enumerate(xs):
        mid = left + i * cell + cell / 2
        out.append(f'<text x="{mid:g}" y="{top + cell * len(ys) + 14}" text-anchor="middle">'
                   f"{html.escape(_num(xv))}</text>")
    out.append(f'<text x="{left + cell * len(xs) / 2:g}" y="{height - 8}" text-anchor="middle">'
               f"{html.escape(labels[kx])}</text>")
    out.append(f'<text x="12" y="{top + cell * len(ys) / 2:g}" transform="rotate(-90 12 '
               f'{top + cell * len(ys) / 2:g})" text-anchor="middle">{html.escape(labels[ky])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _scatter(trials: Sequence[Mapping[str, Any]], key: str, labels: Mapping[str, str]) -> str:
    values = sorted({t["params"][key] for t in trials}, key=_sort_key)
    numeric = all(_sort_key(v)[0] == 0 for v in values)
    lo, hi = _scale(trials)
    width, height, left, top, plot_w, plot_h = 580, 240, 80, 14, 480, 180

    def px(v: Any) -> float:
        if numeric:
            a, b = float(values[0]), float(values[-1])
            return left + (plot_w * (float(v) - a) / (b - a) if b > a else plot_w / 2)
        return left + plot_w * (values.index(v) + 0.5) / len(values)

    def py(t: Mapping[str, Any]) -> float:
        if not t["feasible"]:
            return top + plot_h + 6  # below the axis: failed or -inf
        return top + plot_h * (1 - ((t["objective"] - lo) / (hi - lo) if hi > lo else 0.5))

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
           f'<path d="M{left} {top}V{top + plot_h}H{left + plot_w}" fill="none" stroke="#999"/>',
           f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{html.escape(_num(hi))}</text>',
           f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">{html.escape(_num(lo))}</text>']
    for t in trials:
        out.append(f'<circle cx="{px(t["params"][key]):.1f}" cy="{py(t):.1f}" r="4" fill="{_fill(t, lo, hi)}" '
                   f'stroke="#333" stroke-width="0.5"><title>{_title(t, labels)}</title></circle>')
    ticks = values if len(values) <= 12 else [values[0], values[len(values) // 2], values[-1]]
    for v in ticks:
        out.append(f'<text x="{px(v):.1f}" y="{top + plot_h + 22}" text-anchor="middle">'
                   f"{html.escape(_num(v))}</text>")
    out.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle">{html.escape(labels[key])}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _bars(trials: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> str:
    feasible = [t for t in trials if t["feasible"]]
    lo, hi = _scale(trials)
    base = min(0.0, lo)
    top_v = max(0.0, hi)
    width, height, left, top, plot_h = 740, 220, 80, 14, 170
    bar = max(2.0, min(24.0, 640 / max(len(trials), 1)))

    def py(v: float) -> float:
        return top + plot_h * (1 - ((v - base) / (top_v - base) if top_v > base else 0.5))

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">',
           f'<path d="M{left} {py(0.0):.1f}H{left + bar * len(trials) + 4:.1f}" stroke="#999"/>',
           f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{html.escape(_num(top_v))}</text>',
           f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">{html.escape(_num(base))}</text>']
    for i, t in enumerate(sorted(trials, key=lambda t: t["rank"])):
        x = left + 2 + i * bar
        if t in feasible:
            y0, y1 = sorted((py(0.0), py(t["objective"])))
            h = max(y1 - y0, 1.0)
        else:
            y0, h = py(0.0), 4.0
        out.append(f'<rect x="{x:.1f}" y="{y0:.1f}" width="{max(bar - 1, 1):.1f}" height="{h:.1f}" '
                   f'fill="{_fill(t, lo, hi)}"><title>{_title(t, labels)}</title></rect>')
    out.append(f'<text x="{left}" y="{height - 6}">trials by rank (grey: failed, black: -inf)</text>')
    out.append("</svg>")
    return "\n".join(out)


def _legend(trials: Sequence[Mapping[str, Any]], objective: str) -> str:
    lo, hi = _scale(trials)
    return (f'<p class="legend">{html.escape(objective)}: <span style="background:{_color(0)}"></span>'
            f'{html.escape(_num(lo))} <span style="background:{_color(0.5)}"></span>'
            f'<span style="background:{_color(1)}"></span>{html.escape(_num(hi))}'
            f'<span style="background:{_INFEASIBLE}"></span>-inf'
            f'<span style="background:{_FAILED}"></span>failed</p>')


def _landscape(trials: Sequence[Mapping[str, Any]], keys: Sequence[str], objective: str) -> str:
    if not trials:
        return "<p>No trials.</p>"
    labels = param_labels(keys)
    parts = [_legend(trials, objective)]
    distinct = [len({repr(t["params"].get(k)) for t in trials}) for k in keys]
    if len(keys) == 2 and all(n <= _MAX_HEAT for n in distinct):
        parts.append(_heatmap(trials, keys[0], keys[1], labels))
    else:
        parts += [_scatter(trials, k, labels) for k in keys]
    parts.append(_bars(trials, labels))
    return "\n".join(parts)


def render_landscape(sweep: Mapping[str, Any]) -> str:
    """The page for a sweep dict (see the module docstring)."""
    man = sweep["manifest"]
    keys = [p.split("=", 1)[0].strip() for p in man["params"]]
    body = [f"<h1>Sweep of {html.escape(str(man['config_path']))}</h1>",
            f'<p class="sub">objective {html.escape(man["objective"])}, sampler {html.escape(man["sampler"])}, '
            f"seed {man['seed']}; params: {html.escape('; '.join(man['params']))}</p>"]
    wf = sweep["walk_forward"]
    if wf is None:
        body += ["<h2>Landscape</h2>", _landscape(sweep["trials"], keys, man["objective"])]
    else:
        for fold in wf["folds"]:
            body += [f"<h2>Fold {fold['fold']}: train window</h2>", _landscape(fold["trials"], keys, man["objective"])]
    body += ["<h2>Table</h2>", f"<pre>{html.escape(render_table(sweep))}</pre>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Sweep: {html.escape(str(man['config_path']))}</title><style>{_CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")

