"""The Grafana dashboard, and the metric names that it and the alert rules query, against a live daemon.

The dashboard must import anywhere (a ``${DS_PROMETHEUS}`` input, an ``instance`` variable)
and every panel must show something. Every metric name that a panel, the variable or an
alert queries must be a series that a REAL daemon exposes: ``aaiti run`` children are
started (the default paper config, and for the circuit-breaker families, which only a ccxt
venue has, the Binance-simulator example config) and ``GET /metrics`` is scraped over HTTP.
Names come out of PromQL with a small tokenizer (label matchers, ranges, ``by (...)`` lists,
functions and keywords are not metric names); exposed series names follow the exposition's
own rules (a counter's ``_total``, a histogram's ``_bucket`` / ``_sum`` / ``_count``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.daemon.daemon_process import REPO
from tests.integration.daemon.paper_state import paper_config
from tests.integration.ops.daemon_harness import OpsDaemon, replace_line, wait_until

PACK = REPO / "config" / "observability"
DASHBOARD = PACK / "grafana-dashboard.json"
RULES = PACK / "alerts.yml"
ROWS = ("Trading", "Latency", "Health", "Venue")
# Series Prometheus itself adds to every scrape, never in the daemon's exposition.
SYNTHETIC = frozenset({"up"})
# Labels Prometheus attaches from the target.
TARGET_LABELS = frozenset({"job", "instance"})
# Families only a venue with circuit breakers (ccxt) exports: the paper venue has none.
BREAKER_SERIES = frozenset({"aaiti_circuit_breaker_state", "aaiti_circuit_breaker_trips_total"})

# -- PromQL tokenizer -------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
      (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<variable>\$\{[^}]*\}|\$\w+)
    | (?P<number>(?:0[xX][0-9a-fA-F]+|[0-9.][0-9a-zA-Z_.]*))
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){}\[\],=<>@:])
    | (?P<space>\s+)
    """,
    re.VERBOSE,
)
# Followed by a parenthesised label list that holds no metric names.
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
# Aggregation operators (also written ``sum by (x) (...)``, not followed by "(") and keywords.
_KEYWORDS = _GROUPING | frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio", "and", "or", "unless", "atan2", "offset", "bool", "inf", "nan",
})
_MATCH_OPS = frozenset({"=", "!=", "=~", "!~"})


@dataclass(frozen=True)
class Selector:
    """One vector selector of a PromQL expression: the metric name and the label names it matches on."""

    name: str
    labels: frozenset[str]


def tokens(expr: str) -> list[tuple[str, str]]:
    """``(kind, text)`` of each significant token; an unknown character is an error (never skipped)."""
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot tokenize PromQL at {expr[pos:pos + 20]!r} in {expr!r}")
        kind = m.lastgroup or ""
        if kind not in ("space", "comment"):
            out.append((kind, m.group()))
        pos = m.end()
    return out


def _closing(toks: list[tuple[str, str]], start: int, open_: str, close: str) -> int:
    """Index just after the bracket that closes ``toks[start]`` (which is ``open_``)."""
    depth = 0
    for i in range(start, len(toks)):
        if toks[i] == ("op", open_):
            depth += 1
        elif toks[i] == ("op", close):
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced {open_!r} in {' '.join(t for _, t in toks)}")


def selectors(expr: str) -> list[Selector]:
    """The vector selectors of ``expr`` (function names, keywords, label lists and ranges left out)."""
    toks = tokens(expr)
    out: list[Selector] = []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        following = toks[i + 1] if i + 1 < len(toks) else ("", "")
        if (kind, text) == ("op", "["):  # a range or subquery: durations and step only
            i = _closing(toks, i, "[", "]")
        elif kind == "ident" and text.lower() in _GROUPING and following == ("op", "("):
            i = _closing(toks, i + 1, "(", ")")
        elif kind == "ident" and (text.lower() in _KEYWORDS or following == ("op", "(")):
            i += 1  # a keyword, an aggregation or a function call
        elif kind == "ident" or (kind, text) == ("op", "{"):
            name = text if kind == "ident" else ""
            start = i + 1 if kind == "ident" else i
            labels: set[str] = set()
            if start < len(toks) and toks[start] == ("op", "{"):
                end = _closing(toks, start, "{", "}")
                inner = toks[start + 1 : end - 1]
                labels = {t for j, (k, t) in enumerate(inner[:-1]) if k == "ident" and inner[j + 1][1] in _MATCH_OPS}
                i = end
            else:
                i = start
            out.append(Selector(name, frozenset(labels)))
        else:
            i += 1
    return out


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects."""
    return {s.name for s in selectors(expr)}


def test_tokenizer_finds_metric_names_only() -> None:
    expr = """histogram_quantile(0.99, sum by (job, le) (rate(a_seconds_bucket{job="x", le!~"1e-3"}[5m:1m])))
              > 0.1 and on (instance) group_left (v) b_total offset 30m unless sum without (x) (c) * 1e3
              or count(d{instance=~"$instance"} == 0) or vector(0) # e_not_a_metric
              / ignoring(k) max(f[$__rate_interval]) > bool inf"""
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c", "d", "f"}
    assert {s.name: s.labels for s in selectors(expr)}["a_seconds_bucket"] == {"job", "le"}
    assert metric_names('sum(rate(x_total{a="{b}"}[1h]))') == {"x_total"}
    with pytest.raises(ValueError):
        tokens("x ? y")


# -- the dashboard and the rules ---------------------------------------------------------------------------
def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_queries() -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every panel target and of the ``instance`` variable's metric."""
    out = [(f"panel {p['title']!r} {t['refId']}", t["expr"])
           for p in all_panels(dashboard()["panels"]) if p["type"] != "row" for t in p["targets"]]
    for var in dashboard()["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query)
        assert m, f"variable {var['name']}: expected label_values(<selector>, <label>), got {query!r}"
        out.append((f"variable {var['name']!r}", m.group(1)))
    return out


def alert_queries() -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every rule in alerts.yml."""
    rules = yaml.safe_load(RULES.read_text())
    return [(f"alert {r['alert']}", r["expr"]) for g in rules["groups"] for r in g["rules"]]


def test_dashboard_is_importable_anywhere() -> None:
    dash = dashboard()
    assert dash["schemaVersion"] >= 39
    assert [i["name"] for i in dash["__inputs"]] == ["DS_PROMETHEUS"]
    assert dash["__inputs"][0]["pluginId"] == "prometheus"
    assert dash["uid"] and dash["title"] and dash["id"] is None
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert "instance" in variables and variables["instance"]["type"] == "query"
    sources = [p.get("datasource") for p in all_panels(dash["panels"]) if p["type"] != "row"]
    sources += [t.get("datasource") for p in all_panels(dash["panels"]) for t in p.get("targets", [])]
    sources += [v["datasource"] for v in variables.values()]
    assert all(s == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"} for s in sources), sources


def test_every_panel_has_a_title_and_a_query_in_its_row() -> None:
    panels = list(all_panels(dashboard()["panels"]))
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    assert [p["title"] for p in panels if p["type"] == "row"] == list(ROWS)
    for panel in panels:
        assert panel.get("title", "").strip(), panel
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], f"panel {panel['title']!r} has no target"
            assert all(t.get("expr", "").strip() for t in panel["targets"]), panel["title"]


def test_every_panel_query_follows_the_instance_variable() -> None:
    for where, expr in dashboard_queries():
        if where.startswith("panel"):
            unfiltered = [s.name for s in selectors(expr) if "instance" not in s.labels]
            assert not unfiltered, f"{where}: {unfiltered} not filtered by instance=~\"$instance\""


# -- against a live daemon ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Exposition:
    """The series names a scrape exposes: name → label names of its samples (None: declared, no sample yet)."""

    series: dict[str, frozenset[str] | None]


def _declared_series(name: str, kind: str) -> list[str]:
    """The series names a ``# TYPE name kind`` line stands for."""
    if kind == "counter":
        return [name if name.endswith("_total") else f"{name}_total"]
    if kind == "histogram":
        return [f"{name}_bucket", f"{name}_sum", f"{name}_count"]
    if kind == "summary":
        return [name, f"{name}_sum", f"{name}_count"]
    return [name]


def parse_exposition(text: str) -> Exposition:
    """Series names of a text-format scrape, from its samples and its TYPE lines."""
    series: dict[str, frozenset[str] | None] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            for declared in _declared_series(name, kind.strip()):
                series.setdefault(declared, None)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series[sample.name] = (series.get(sample.name) or frozenset()) | frozenset(sample.labels)
    return Exposition(series)


def needed_selectors() -> list[tuple[str, Selector]]:
    """Every selector of the dashboard and the alert rules, with where it is used."""
    return [(where, s) for where, expr in dashboard_queries() + alert_queries() for s in selectors(expr)]


def scrape_until(daemon: OpsDaemon, names: set[str], what: str) -> Exposition:
    """Scrape ``/metrics`` until every series in ``names`` is exposed (families appear with their data)."""

    def scrape() -> Exposition | None:
        resp = daemon.api.get("/metrics")
        assert resp.status == 200, resp.body[:300]
        exposed = parse_exposition(resp.text)
        return exposed if names <= exposed.series.keys() else None

    try:
        return wait_until(scrape, 90, what, interval=0.5)
    except AssertionError:
        resp = daemon.api.get("/metrics")
        missing = sorted(names - parse_exposition(resp.text).series.keys())
        raise AssertionError(f"{what}: the live daemon never exposed {missing}") from None


def run_and_scrape(config: Path, names: set[str], what: str) -> Exposition:
    """Start ``aaiti run`` on ``config``, scrape until ``names`` are exposed, stop it (exit 0)."""
    daemon = OpsDaemon(config)
    try:
        try:
            daemon.wait_for_event("daemon.ready", timeout=60)
        except AssertionError as exc:
            if daemon.proc.poll() is None:
                raise
            raise AssertionError(f"{exc}\nexit {daemon.proc.returncode}, stderr:\n{daemon.stderr()[-3000:]}") from None
        exposed = scrape_until(daemon, names, what)
        code = daemon.stop()
    finally:
        daemon.kill()
    assert code == 0, daemon.raw[-20:]
    return exposed


def sim_config(tmp: Path) -> Path:
    """The Binance-simulator example (ccxt venue with circuit breakers): state in ``tmp``, ephemeral ports."""
    text = (REPO / "config" / "examples" / "binance-sim.toml").read_text()
    text = re.sub(r"(?m)^state_dir = .*$", f"state_dir = '{tmp / 'state'}'", text)
    text = replace_line(text, "simulator_port = 8765", "simulator_port = 0")
    text = replace_line(text, 'base_url = "http://127.0.0.1:8765"', "")  # the daemon points ccxt at the simulator
    text = text.replace("[log]\n", "[admin]\nport = 0\n\n[log]\n", 1)
    path = tmp / "aaiti.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def paper_scrape(tmp_path_factory: pytest.TempPathFactory) -> Exposition:
    """A live scrape of the default paper config, taken once every queried family has data."""
    names = {s.name for _, s in needed_selectors()} - SYNTHETIC - BREAKER_SERIES
    cfg = paper_config(tmp_path_factory.mktemp("paper"), speed=3000.0)
    return run_and_scrape(cfg, names, "paper daemon /metrics with every queried series")


@pytest.fixture(scope="module")
def ccxt_scrape(tmp_path_factory: pytest.TempPathFactory) -> Exposition:
    """A live scrape of a daemon trading through the ccxt venue on the Binance simulator."""
    return run_and_scrape(sim_config(tmp_path_factory.mktemp("ccxt")), set(BREAKER_SERIES),
                          "ccxt-simulator daemon /metrics with circuit breakers")


def test_every_queried_metric_is_exposed_by_a_live_daemon(paper_scrape: Exposition, ccxt_scrape: Exposition) -> None:
    missing = []
    for where, sel in needed_selectors():
        if sel.name in SYNTHETIC:
            continue
        exposed = ccxt_scrape if sel.name in BREAKER_SERIES else paper_scrape
        if sel.name not in exposed.series:
            missing.append(f"{where}: {sel.name}")
    assert not missing, "metric names no live daemon exposes:\n" + "\n".join(missing)
    # The ccxt-only list stays honest: the paper venue really lacks them.
    assert not BREAKER_SERIES & paper_scrape.series.keys()


def test_every_label_matcher_names_a_real_label(paper_scrape: Exposition, ccxt_scrape: Exposition) -> None:
    wrong = []
    for where, sel in needed_selectors():
        if sel.name in SYNTHETIC:
            continue
        exposed = (ccxt_scrape if sel.name in BREAKER_SERIES else paper_scrape).series.get(sel.name)
        if exposed is not None and sel.labels - exposed - TARGET_LABELS:
            wrong.append(f"{where}: {sel.name} has no label {sorted(sel.labels - exposed - TARGET_LABELS)}")
    assert not wrong, "\n".join(wrong)
