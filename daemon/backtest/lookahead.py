"""Lookahead check of a backtest: do a strategy's earlier decisions depend on later data?

The feed only ever hands a strategy events up to "now", but a strategy can still cheat:
read the data file itself, keep state from an earlier run, ... The check (``aaiti backtest
--check-lookahead``) re-runs the backtest on truncated data, cut at a few evenly spaced
times inside the data, each run ending at its cut, and compares per strategy the
**signals** (orders and risk-denied intents: time, symbol, side, type, size, price, tag)
that happened before the cut in the truncated run with those of the full run. A strategy
that only looks back makes the same decisions either way; any difference means its earlier
decisions depended on data after the cut.

Where the comparison stops (the **horizon**): when the truncated data ends, the feed
publishes its last, possibly partial, bars at the time of the last event, while in the full
run those bars close at a later print. Decisions at that last event time legitimately
differ, so both runs are compared strictly before the truncated run's last event.

Cut runs see truncated data everywhere the config names it: the feed replays the window
``[start, cut)``, and a strategy parameter that names the replayed data file is pointed at
a copy of that file cut at the same time. A strategy that finds the data some other way
(a hard-coded path, the network) cannot be caught by truncation.

Strategies share one account and one risk gate, so a cheating strategy changes what the
others are allowed to do after its own first different decision. At each cut the strategy
(or strategies) whose signals differ first is flagged ``lookahead``; one that differs only
later is ``affected`` and names the strategies that differed first.

The report is ``lookahead.json`` next to the result files (``result.json`` is not touched)
plus a terminal table; a flagged strategy makes ``aaiti backtest`` exit ``LOOKAHEAD_FOUND``.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from actors.model.records import OrderRecord
from adapters.storage.store import Store
from adapters.storage.store_rows import RiskEventRecord
from config.loader import LoadedConfig
from config.schema.market import timeframe_ms
from daemon import exit_codes
from daemon.backtest.inputs import backtest_config, load_for_backtest
from daemon.backtest.run import BacktestRun

__all__ = [
    "DEFAULT_CUTS",
    "LOOKAHEAD_FOUND",
    "CutComparison",
    "Divergence",
    "LookaheadReport",
    "Signal",
    "StrategyVerdict",
    "check_lookahead",
    "collect_signals",
    "compare_cut",
    "cut_times",
    "data_file_params",
    "first_divergence",
    "judge",
    "render_lookahead",
    "signals_from_denials",
    "signals_from_orders",
    "write_lookahead",
    "write_truncated_copy",
]

#: Exit status of ``aaiti backtest --check-lookahead`` when a strategy is flagged (unused by
#: every other ``aaiti`` exit; see ``daemon.exit_codes``).
LOOKAHEAD_FOUND = exit_codes.LOOKAHEAD_FOUND
#: Number of cut times checked by default.
DEFAULT_CUTS = 5
SCHEMA = "aaiti.lookahead/1"
_ALL = 1 << 62  # "no limit" for the store's paged reads
_MINUTE_MS = 60_000

Verdict = Literal["clean", "lookahead", "affected", "unchecked"]


@dataclasses.dataclass(frozen=True, order=True)
class Signal:
    """One decision of a strategy: an order it placed or an intent the risk gate denied.

    Field order is the sort order, so signals at the same market time compare in a fixed
    order whatever order the store wrote them in. ``size`` and ``price`` are exact decimal
    strings (``price`` empty for market orders; a denied notional intent has
    ``size = "notional <amount>"``).
    """

    ts_ms: int
    symbol: str
    kind: Literal["order", "denied"]
    side: str
    type: str
    size: str
    price: str
    tag: str

    def as_dict(self) -> dict[str, Any]:
        """The signal as JSON-ready values."""
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for the terminal: time, what, tag."""
        price = f" @ {self.price}" if self.price else ""
        denied = " (denied by risk)" if self.kind == "denied" else ""
        tag = f" tag={self.tag}" if self.tag else ""
        return f"{_iso(self.ts_ms)} {self.side} {self.size} {self.symbol} {self.type}{price}{tag}{denied}"


def signals_from_orders(orders: Iterable[OrderRecord]) -> dict[str, list[Signal]]:
    """Each order as a signal of its strategy, at its creation time (market time)."""
    out: dict[str, list[Signal]] = {}
    for o in orders:
        out.setdefault(o.strategy, []).append(Signal(
            ts_ms=o.created_ms, symbol=o.symbol, kind="order", side=str(o.side), type=str(o.type),
            size=str(o.size), price="" if o.price is None else str(o.price), tag=o.tag,
        ))
    return out


def signals_from_denials(events: Iterable[RiskEventRecord]) -> dict[str, list[Signal]]:
    """Each risk denial as a signal of the strategy whose intent it was."""
    out: dict[str, list[Signal]] = {}
    for ev in events:
        i = ev.intent
        size = str(i.size) if i.size is not None else f"notional {i.notional}"
        out.setdefault(ev.strategy, []).append(Signal(
            ts_ms=ev.ts_ms, symbol=i.symbol, kind="denied", side=str(i.side), type=str(i.type), size=size,
            price="" if i.limit_price is None else str(i.limit_price), tag=i.tag,
        ))
    return out


async def collect_signals(run: BacktestRun, workdir: Path) -> dict[str, tuple[Signal, ...]]:
    """Every strategy's signals of a finished run, sorted; every strategy of the run has an entry.

    Orders come from ``run``; denials (``BacktestRun`` only counts them) are read from the
    run's state store, still in ``workdir`` (``run_backtest`` keeps it at ``state.db``).
    """
    store = await Store.open(workdir / "state.db", create=False, quick_check=False)
    try:
        denials = await store.risk_events(limit=_ALL)
    finally:
        await store.close()
    merged: dict[str, list[Signal]] = {name: [] for name in run.strategies}
    for part in (signals_from_orders(run.orders), signals_from_denials(denials)):
        for name, signals in part.items():
            merged.setdefault(name, []).extend(signals)
    return {name: tuple(sorted(signals)) for name, signals in merged.items()}


@dataclasses.dataclass(frozen=True)
class Divergence:
    """The first signal before the horizon where the full and the truncated run disagree.

    ``index`` is its position in the strategy's sorted signals; ``full``/``truncated`` the
    two versions (None: that run has no signal there).
    """

    strategy: str
    cut_ms: int
    horizon_ms: int
    index: int
    full: Signal | None
    truncated: Signal | None

    @property
    def ts_ms(self) -> int:
        """Market time of the difference: the earlier of the two versions."""
        return min(s.ts_ms for s in (self.full, self.truncated) if s is not None)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"cut_ms": self.cut_ms, "horizon_ms": self.horizon_ms, "index": self.index, "ts_ms": self.ts_ms,
                "full": self.full.as_dict() if self.full else None,
                "truncated": self.truncated.as_dict() if self.truncated else None}


def first_divergence(full: Sequence[Signal], truncated: Sequence[Signal],
                     horizon_ms: int) -> tuple[int, int | None]:
    """Compare the signals before ``horizon_ms`` of two sorted sequences.

    Returns (signals of the full run compared, index of the first difference or None).
    """
    a = [s for s in full if s.ts_ms < horizon_ms]
    b = [s for s in truncated if s.ts_ms < horizon_ms]
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return len(a), i
    return len(a), (None if len(a) == len(b) else min(len(a), len(b)))


@dataclasses.dataclass(frozen=True)
class CutComparison:
    """One cut: per strategy the signals compared and the first difference, if any."""

    cut_ms: int
    horizon_ms: int
    compared: dict[str, int]
    divergences: dict[str, Divergence]


def compare_cut(full: Mapping[str, Sequence[Signal]], truncated: Mapping[str, Sequence[Signal]],
                strategies: Sequence[str], cut_ms: int, horizon_ms: int) -> CutComparison:
    """Compare every strategy's signals before ``horizon_ms`` in the full and a truncated run."""
    compared: dict[str, int] = {}
    divergences: dict[str, Divergence] = {}
    for name in strategies:
        a, b = full.get(name, ()), truncated.get(name, ())
        count, index = first_divergence(a, b, horizon_ms)
        compared[name] = count
        if index is not None:
            before_a = [s for s in a if s.ts_ms < horizon_ms]
            before_b = [s for s in b if s.ts_ms < horizon_ms]
            divergences[name] = Divergence(
                strategy=name, cut_ms=cut_ms, horizon_ms=horizon_ms, index=index,
                full=before_a[index] if index < len(before_a) else None,
                truncated=before_b[index] if index < len(before_b) else None,
            )
    return CutComparison(cut_ms, horizon_ms, compared, divergences)


@dataclasses.dataclass(frozen=True)
class StrategyVerdict:
    """What the check says about one strategy.

    ``difference`` is the first difference of the earliest cut that gave the verdict;
    ``after`` (``affected`` only) the strategies that differed before it at that cut.
    """

    strategy: str
    verdict: Verdict
    cuts: int
    signals: int
    difference: Divergence | None = None
    after: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {"strategy": self.strategy, "verdict": self.verdict, "cuts_checked": self.cuts,
                "signals_compared": self.signals, "after": list(self.after),
                "first_difference": self.difference.as_dict() if self.difference else None}


@dataclasses.dataclass(frozen=True)
class LookaheadReport:
    """The whole check: the cuts, one verdict per strategy, and notes on its reliability."""

    strategies: tuple[StrategyVerdict, ...]
    cuts: tuple[CutComparison, ...]
    notes: tuple[str, ...] = ()
    manifest: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def flagged(self) -> tuple[str, ...]:
        """Strategies whose earlier decisions depend on later data (non-empty whenever any run differed)."""
        return tuple(v.strategy for v in self.strategies if v.verdict == "lookahead")

    @property
    def affected(self) -> tuple[str, ...]:
        """Strategies that differed only after a flagged one did (shared account and risk limits)."""
        return tuple(v.strategy for v in self.strategies if v.verdict == "affected")

    def as_dict(self) -> dict[str, Any]:
        """The ``lookahead.json`` content (no wall-clock value: reruns are byte-identical)."""
        return {
            "schema": SCHEMA,
            "manifest": self.manifest,
            "cuts": [{"cut_ms": c.cut_ms, "horizon_ms": c.horizon_ms, "signals_compared": c.compared,
                      "differing": sorted(c.divergences)} for c in self.cuts],
            "strategies": [v.as_dict() for v in self.strategies],
            "flagged": list(self.flagged),
            "affected": list(self.affected),
            "notes": list(self.notes),
        }


def judge(strategies: Sequence[str], cuts: Sequence[CutComparison], notes: Sequence[str] = (),
          manifest: Mapping[str, Any] | None = None) -> LookaheadReport:
    """Give each strategy its verdict from the cut comparisons (see the module docstring)."""
    ordered = sorted(cuts, key=lambda c: c.cut_ms)
    verdicts: list[StrategyVerdict] = []
    for name in strategies:
        signals = sum(c.compared.get(name, 0) for c in ordered)
        first_lookahead: Divergence | None = None
        first_affected: tuple[Divergence, tuple[str, ...]] | None = None
        for c in ordered:
            mine = c.divergences.get(name)
            if mine is None:
                continue
            earliest = min(d.ts_ms for d in c.divergences.values())
            if mine.ts_ms == earliest:
                first_lookahead = first_lookahead or mine
            elif first_affected is None:
                before = tuple(sorted(n for n, d in c.divergences.items() if d.ts_ms == earliest))
                first_affected = (mine, before)
        if not ordered:
            verdicts.append(StrategyVerdict(name, "unchecked", 0, 0))
        elif first_lookahead is not None:
            verdicts.append(StrategyVerdict(name, "lookahead", len(ordered), signals, first_lookahead))
        elif first_affected is not None:
            verdicts.append(StrategyVerdict(name, "affected", len(ordered), signals, *first_affected))
        else:
            verdicts.append(StrategyVerdict(name, "clean", len(ordered), signals))
    return LookaheadReport(tuple(verdicts), tuple(ordered), tuple(notes), dict(manifest or {}))


def cut_times(first_ms: int, last_ms: int, count: int, align_ms: int = _MINUTE_MS) -> list[int]:
    """``count`` evenly spaced cut times strictly inside ``(first_ms, last_ms]``, each rounded
    down to a multiple of ``align_ms`` (the longest bar), duplicates and empty cuts dropped."""
    out: list[int] = []
    span = last_ms - first_ms
    for i in range(1, count + 1):
        raw = first_ms + span * i // (count + 1)
        cut = raw - raw % align_ms
        if first_ms < cut <= last_ms and cut not in out:
            out.append(cut)
    return out


def _longest_bar_ms(loaded: LoadedConfig) -> int:
    cfg = loaded.config
    frames = [*cfg.feed.timeframes, *(s.timeframe for s in cfg.strategies)]
    if cfg.feed.source != "synthetic" and cfg.feed.replay.format != "trades":
        frames.append(cfg.feed.replay.candle_timeframe)
    return max([_MINUTE_MS, *(timeframe_ms(tf) for tf in frames)])


def data_file_params(loaded: LoadedConfig) -> dict[str, str]:
    """Strategy parameters that name the replayed data file: dotted key -> the value as written.

    A value names the file when it resolves (against the config's directory or, failing
    that, the working directory) to the same file as ``[feed.replay] path``.
    """
    cfg = backtest_config(loaded.config)
    if cfg.feed.source != "replay":
        return {}
    data = loaded.resolve(cfg.feed.replay.path).resolve()
    out: dict[str, str] = {}
    for i, section in enumerate(loaded.config.strategies):
        for key, value in section.params.items():
            if isinstance(value, str) and value and data in (loaded.resolve(value).resolve(), Path(value).resolve()):
                out[f"strategies.{i}.params.{key}"] = value
    return out


def write_truncated_copy(src: Path, dst: Path, cut_ms: int) -> int:
    """Copy a data file (header, then rows) up to the first row at or after ``cut_ms``; return rows kept.

    The first column is the row's epoch-ms time (trade tapes and candle files alike);
    ``.gz`` files stay gzip-compressed, written without a timestamp in the gzip header.
    """
    kept = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        reader = _open_text(src, "r", stack)
        writer = _open_text(dst, "w", stack)
        for lineno, line in enumerate(reader):
            text = line.rstrip("\r\n")
            if lineno and text:
                if int(text.split(",", 1)[0]) >= cut_ms:
                    break
                kept += 1
            writer.write(text + "\n")
    return kept


def _open_text(path: Path, mode: Literal["r", "w"], stack: ExitStack) -> IO[str]:
    if path.name.endswith(".gz"):
        raw = stack.enter_context(path.open(mode + "b"))
        gz = stack.enter_context(gzip.GzipFile(fileobj=raw, mode=mode + "b", mtime=0))
        return stack.enter_context(io.TextIOWrapper(gz, encoding="utf-8", newline=""))
    return stack.enter_context(path.open(mode, encoding="utf-8", newline=""))


async def check_lookahead(
    loaded: LoadedConfig,
    full: BacktestRun,
    full_signals: Mapping[str, Sequence[Signal]],
    *,
    start_ms: int | None = None,
    cuts: int = DEFAULT_CUTS,
) -> LookaheadReport:
    """Re-run ``loaded``'s backtest cut at ``cuts`` times inside ``full``'s data; judge every strategy.

    ``full`` is the finished full run (from ``start_ms``) and ``full_signals`` its signals
    (``collect_signals``). The cut runs go one after another in this event loop, each in
    its own temporary work directory. Raises what ``run_backtest`` raises.
    """
    from daemon.backtest.runner import run_backtest

    times = cut_times(full.first_event_ms, full.last_event_ms, cuts, _longest_bar_ms(loaded))
    named = data_file_params(loaded)
    comparisons: list[CutComparison] = []
    notes: list[str] = _reliability_notes("full run", full)
    with tempfile.TemporaryDirectory(prefix="aaiti-lookahead-") as tmp:
        for cut in times:
            cut_dir = Path(tmp) / f"cut-{cut}"
            (cut_dir / "work").mkdir(parents=True)
            cut_loaded = _with_truncated_params(loaded, named, cut_dir, cut, full.overrides)
            run = await run_backtest(cut_loaded, start_ms=start_ms, end_ms=cut, workdir=cut_dir / "work",
                                     overrides=full.overrides)
            signals = await collect_signals(run, cut_dir / "work")
            comparisons.append(compare_cut(full_signals, signals, full.strategies, cut, run.last_event_ms))
            notes += _reliability_notes(f"cut {_iso(cut)}", run)
    manifest = {"config_path": full.config_path, "config_sha256": full.config_sha256, "overrides": full.overrides,
                "from_ms": full.from_ms, "to_ms": full.to_ms, "data_file_params": sorted(named)}
    return judge(full.strategies, comparisons, notes, manifest)


def _with_truncated_params(loaded: LoadedConfig, named: Mapping[str, str], cut_dir: Path, cut: int,
                           overrides: Mapping[str, Any]) -> LoadedConfig:
    """``loaded``, or reloaded with every data-file parameter pointed at a copy cut at ``cut``."""
    if not named or loaded.path is None:
        return loaded
    src = loaded.resolve(backtest_config(loaded.config).feed.replay.path)
    copy = cut_dir / src.name
    write_truncated_copy(src, copy, cut)
    return load_for_backtest(loaded.path, {**overrides, **{key: str(copy) for key in named}})


def _reliability_notes(which: str, run: BacktestRun) -> list[str]:
    # Lockstep timeouts and supervisor restarts depend on process time: such a run is not
    # reproducible, so a difference may come from timing rather than from the data.
    notes = []
    if run.lockstep_timeouts:
        notes.append(f"{which}: {run.lockstep_timeouts} lockstep timeout(s); timing-dependent, differences "
                     "may not be lookahead")
    if run.strategy_errors:
        names = ", ".join(e.strategy for e in run.strategy_errors)
        notes.append(f"{which}: strategy errors ({names}); restarts are timed in process time, differences "
                     "may not be lookahead")
    if run.gave_up:
        notes.append(f"{which}: the supervisor gave up ({run.gave_up})")
    return notes


def render_lookahead(report: LookaheadReport) -> str:
    """The terminal table: per strategy cuts checked, signals compared, verdict; then each first difference."""
    cuts = ", ".join(_iso(c.cut_ms) for c in report.cuts) or "none (the data is too short)"
    lines = [f"Lookahead check: {len(report.cuts)} cut(s): {cuts}"]
    header = ("strategy", "cuts", "signals", "verdict")
    rows = [(v.strategy, str(v.cuts), str(v.signals), v.verdict.upper() if v.verdict != "clean" else "clean")
            for v in report.strategies]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        lines.append("  " + "  ".join(c.ljust(w) if i in (0, 3) else c.rjust(w)
                                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    for v in report.strategies:
        d = v.difference
        if d is None:
            continue
        why = (f"differs only after {', '.join(v.after)} (shared account and risk limits)" if v.after
               else "earlier decisions depend on later data")
        lines += [
            f"  {v.strategy}: {why}; cut {_iso(d.cut_ms)}, first different signal #{d.index + 1}:",
            f"    full run:       {d.full.describe() if d.full else '(none)'}",
            f"    truncated run:  {d.truncated.describe() if d.truncated else '(none)'}",
        ]
    lines += [f"  note: {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def write_lookahead(report: LookaheadReport, out_dir: Path) -> Path:
    """Write ``lookahead.json`` (canonical JSON, like ``result.json``) into ``out_dir``; return its path."""
    from daemon.backtest.result import dump_json

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "lookahead.json"
    path.write_bytes(dump_json(report.as_dict()).encode("utf-8"))
    return path


def _iso(ts_ms: int) -> str:
    when = datetime.fromtimestamp(ts_ms / 1000, UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{ts_ms % 1000:03d}Z" if ts_ms % 1000 else "Z")
