"""Run a config's strategies over recorded data on the live code path, to the end of the data.

``run_backtest`` builds the daemon's own pipeline (``daemon.pipeline.build_pipeline``) over
the config's data source, forced to a finite replay at full speed (``inputs.backtest_config``),
optionally cut to a ``[start_ms, end_ms)`` window (``TimeRangeSource``), on a market clock
advanced by the feed, with the feed in lockstep, a fresh paper account and a fresh state
store in ``workdir``. No sleeps pace it and no wall clock enters the results: the same
config and data give the same orders, fills and bars.

It ends by itself: the feed stops at the end of the data (``feed.on_end = "stop"``), and
the runner waits until the order path has settled, then stops the tree and reads the
store. A strategy that raises is restarted by its supervisor as in the daemon; if the
restart intensity runs out the tree gives up, as the daemon would, and the run ends there.
Both are reported (``BacktestRun.strategy_errors``, ``BacktestRun.gave_up``).

What a backtest does not need is left out, and only that: the paper account commits
without fsync (the work directory is thrown away), and the bar log (one INFO line per
bar, dropped by the backtest's quiet logging anyway, and a chart ring for the admin
console) is not wired in. A recorded file is replayed in batches (``actors.feed.BatchSource``),
which the feed handles exactly as it handles events one by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

import structlog

from actors.kernel.actor import ActorState, MessageActor
from actors.kernel.channel import Channel
from actors.kernel.clock import monotonic
from actors.kernel.supervisor import ChildSpec, RestartType, Supervisor, SupervisorGaveUp
from actors.model.market import Bar
from actors.ports.market_data import MarketDataSource
from adapters.market_data.errors import DataFileError
from adapters.market_data.factory import build_source
from adapters.market_data.quotes import QuoteReplaySource
from adapters.market_data.replay import ReplaySource
from adapters.paper_venue import PaperVenue
from adapters.storage.store import Store
from config.errors import ConfigError
from config.loader import LoadedConfig
from config.schema.root import AaitiConfig
from daemon import exit_codes
from daemon.backtest.inputs import backtest_config, file_sha256, load_for_backtest
from daemon.backtest.run import BacktestRun, DataFileInfo, StrategyError
from daemon.backtest.time_range import TimeRangeSource
from daemon.logging_setup import LoggingSetup
from daemon.pipeline import Pipeline, build_pipeline, market_clock_for, supervisor_policy

__all__ = [
    "BacktestError",
    "BacktestRun",
    "DataFileInfo",
    "StrategyError",
    "quiet_logging",
    "run_backtest",
    "run_backtest_sync",
]

_DAY_MS = 86_400_000
_ALL = 1 << 62  # "no limit" for the store's paged reads
_POLL_S = 0.005
#: After the data ended, how long the order path may take to settle before we stop anyway.
_SETTLE_TIMEOUT_S = 60.0


class BacktestError(Exception):
    """A backtest cannot run: bad window, missing symbol, unusable source or strategy.

    ``exit_code`` is the CLI's exit status for it (2: config or command line, 4: data file).
    """

    def __init__(self, message: str, exit_code: int = exit_codes.CONFIG_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable with its exit code, so a process pool hands it back intact.
        return (BacktestError, (str(self), self.exit_code))


class _BarRecorder(MessageActor[Bar]):
    """Keeps every bar the feed publishes (a subscriber like the bar log)."""

    kind = "bar_recorder"

    def __init__(self, name: str, bars: Channel[Bar]) -> None:
        super().__init__(name, bars)
        self.bars: dict[str, dict[str, list[Bar]]] = {}
        self.count = 0

    async def handle(self, msg: Bar) -> None:
        """Keep the bar."""
        self.bars.setdefault(msg.symbol, {}).setdefault(msg.timeframe, []).append(msg)
        self.count += 1


def quiet_logging(stream: TextIO | None = None) -> LoggingSetup:
    """Logging for backtests: warnings and errors only (no per-bar INFO lines), to stderr by default."""
    return LoggingSetup("warning", stream=stream if stream is not None else sys.stderr)


def _open_source(cfg: AaitiConfig, loaded: LoadedConfig, start_ms: int | None, end_ms: int | None,
                 prepared: MarketDataSource | None) -> tuple[MarketDataSource, tuple[DataFileInfo, ...]]:
    feed = cfg.feed
    if prepared is None and feed.source == "synthetic" and feed.synthetic.max_events == 0 and end_ms is None:
        raise BacktestError("feed.source = 'synthetic' never ends: set feed.synthetic.max_events or give --to")
    if start_ms is not None and end_ms is not None and end_ms <= start_ms:
        raise BacktestError(f"empty window: --to ({end_ms}) is not after --from ({start_ms})")
    try:
        source = prepared if prepared is not None else build_source(feed, loaded.resolve)
    except DataFileError:
        raise
    except (ValueError, OSError) as exc:
        raise BacktestError(f"market data source unusable: {exc}", exit_codes.STATE_ERROR) from None
    files: tuple[DataFileInfo, ...] = ()
    stamps: Sequence[int] = ()
    name = ""
    if isinstance(source, ReplaySource):
        name = feed.replay.path if prepared is None else source.data.path
        path = loaded.resolve(feed.replay.path) if prepared is None else Path(source.data.path)
        files = (DataFileInfo(name, file_sha256(path), source.stats().rows),)
        stamps = [row[0] for row in source.data.rows]
    elif isinstance(source, QuoteReplaySource):
        name = source.tape.path
        files = (DataFileInfo(name, file_sha256(Path(name)), source.stats().rows),)
        stamps = source.tape.ts_ms
    if stamps and (start_ms is not None or end_ms is not None):
        inside = sum(1 for ts in stamps if (start_ms is None or ts >= start_ms) and (end_ms is None or ts < end_ms))
        if not inside:
            raise BacktestError(
                f"no market data in the window {_window(start_ms, end_ms)}: {name} covers "
                f"{_iso(min(stamps))} .. {_iso(max(stamps))}"
            )
    missing = [s for s in feed.symbols if s not in source.symbols]
    missing += [s for st in cfg.strategies for s in st.symbols if s not in source.symbols and s not in missing]
    if missing:
        raise BacktestError(f"symbol(s) {', '.join(missing)} not in the data: the source has "
                            f"{', '.join(source.symbols)}")
    if start_ms is not None or end_ms is not None:
        source = TimeRangeSource(source, start_ms, end_ms)
    return source, files


def _window(start_ms: int | None, end_ms: int | None) -> str:
    return f"[{_iso(start_ms) if start_ms is not None else 'start'}, {_iso(end_ms) if end_ms is not None else 'end'})"


def _iso(ts_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _check_strategies(cfg: AaitiConfig) -> None:
    from daemon.reloader import strategy_issues

    issues = strategy_issues(cfg)
    if issues:
        raise BacktestError("strategy cannot load: " + "; ".join(f"{i.key_path}: {i.message}" for i in issues))


def _quote_asset(cfg: AaitiConfig) -> tuple[str, dict[str, str]]:
    bases: dict[str, str] = {}
    quotes: list[str] = []
    for symbol in cfg.feed.symbols:
        inst = cfg.instruments.get(symbol)
        base, quote = (inst.base, inst.quote) if inst is not None else tuple(symbol.split("/", 1))
        bases[symbol] = base
        quotes.append(quote)
    return quotes[0], bases


async def run_backtest(
    loaded: LoadedConfig,
    *,
    start_ms: int | None = None,
    end_ms: int | None = None,
    workdir: Path,
    overrides: Mapping[str, Any] | None = None,
    source: MarketDataSource | None = None,
) -> BacktestRun:
    """Run ``loaded``'s strategies over its data in ``[start_ms, end_ms)`` (UTC epoch ms) to the end.

    ``workdir`` receives the fresh state store and paper account (it should be empty).
    ``overrides`` are only recorded in the result (apply them with ``load_for_backtest``).
    ``source``: a market-data source to replay instead of the one ``[feed]`` configures
    (e.g. a ``QuoteReplaySource`` over a recorded quote file, which ``[feed.replay]`` cannot
    name); it must be finite and unpaced, and the runner closes it. Everything else is as
    for the configured source. Raises ``BacktestError`` (window, symbols, strategy loading,
    source) and ``DataFileError`` (a missing or malformed data file) before anything runs.
    """
    cfg = backtest_config(loaded.config)
    _check_strategies(cfg)
    source, files = _open_source(cfg, loaded, start_ms, end_ms, source)
    quote, bases = _quote_asset(cfg)
    clock = market_clock_for(source)
    store = await Store.open(workdir / "state.db")
    # The work directory is thrown away: commit without fsync (results do not depend on it).
    venue = PaperVenue(workdir / f"paper-venue-{cfg.venue.name}.db", dataclasses.replace(cfg.venue.paper, fsync=False),
                       cfg.instruments, venue_name=cfg.venue.name, clock=clock)
    try:
        await venue.start()
        # No retention in a backtest: the report reads every row the run wrote.
        built = build_pipeline(cfg, store=store, venue=venue, source=source, clock=clock, lockstep=True,
                               retention=False)
        sub = built.feed.subscribe("bar_recorder", symbols=cfg.feed.symbols, timeframes=cfg.feed.timeframes)
        recorder = _BarRecorder("bar_recorder", sub.bars)
        children = _without_bar_log(built)
        children.insert(len(children) - 1, ChildSpec("bar_recorder", lambda: recorder, restart=RestartType.TRANSIENT))
        root = Supervisor("root", children, supervisor_policy(cfg.supervisor))
        gave_up = await _run_tree(root, built, recorder)
        await store.flush()
        orders = list(reversed(await store.orders(limit=_ALL)))
        fills = await store.fills(limit=_ALL)
        denials: dict[str, int] = {}
        for ev in await store.risk_events(limit=_ALL):
            denials[ev.reason] = denials.get(ev.reason, 0) + 1
        balances = {asset: b.free + b.locked for asset, b in (await venue.balances()).items()}
    finally:
        with contextlib.suppress(Exception):
            await source.close()
        await venue.close()
        await store.close()
    feed_time = built.feed.snapshot().feed_time_ms
    first = built.feed.first_event_ms if built.feed.first_event_ms >= 0 else clock.now_ms()
    last = max(feed_time if feed_time is not None else -1, first)
    path = loaded.path
    lockstep = built.lockstep
    return BacktestRun(
        config_path=str(path) if path is not None else "<embedded defaults>",
        config_sha256=file_sha256(path) if path is not None else "",
        overrides=dict(overrides or {}),
        seed=cfg.feed.synthetic.seed if cfg.feed.source == "synthetic" else 0,
        data_files=files,
        from_ms=start_ms if start_ms is not None else first - first % _DAY_MS,
        to_ms=end_ms if end_ms is not None else last - last % _DAY_MS + _DAY_MS,
        first_event_ms=first,
        last_event_ms=last,
        events=built.feed.snapshot().events,
        quote_asset=quote,
        base_assets=bases,
        strategies=tuple(s.name for s in cfg.strategies),
        timeframes=cfg.feed.timeframes,
        initial_balances=dict(cfg.venue.paper.initial_balances),
        final_balances=balances,
        orders=orders,
        fills=fills,
        bars=recorder.bars,
        denials=denials,
        risk=built.risk_gate.snapshot(),
        strategy_errors=_strategy_errors(built),
        gave_up=gave_up,
        lockstep_timeouts=lockstep.timeouts if lockstep is not None else 0,
    )


def _without_bar_log(built: Pipeline) -> list[ChildSpec]:
    """The pipeline's children without the bar log, whose feed subscription is closed.

    The bar log writes an INFO line per bar (a backtest logs warnings only) and keeps a
    chart ring for the admin console (a backtest has none); it acts on nothing else.
    """
    built.feed.unsubscribe("bar_log")
    return [spec for spec in built.children() if spec.name != "bar_log"]


async def _run_tree(root: Supervisor, built: Pipeline, recorder: _BarRecorder) -> str | None:
    """Run the tree until the data ended and the order path settled (or the root gave up)."""
    task = asyncio.create_task(root.main(), name="backtest/root")
    try:
        await _wait(task, built.reconciler.ready.is_set)
        if not task.done():
            assert built.feed.start_gate is not None
            built.feed.start_gate.set()
            await _wait(task, lambda: built.feed.snapshot().ended)
            await _wait(task, lambda: _settled(built, recorder), timeout_s=_SETTLE_TIMEOUT_S)
    finally:
        if not task.done():
            task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
    outcome = results[0]
    if isinstance(outcome, SupervisorGaveUp):
        return str(outcome)
    if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
        raise outcome
    return None


def _settled(built: Pipeline, recorder: _BarRecorder) -> bool:
    # The feed's last bars were published and acted on (lockstep); what is left is the order
    # path finishing its queue and the recorder taking the last bars.
    return (
        built.feed.state in (ActorState.STOPPED, ActorState.STOPPING, ActorState.FAILED)
        and not any(len(ch) for ch in (built.intents, built.commands, built.events))
        and not built.order_manager.pending_work()
        and not built.risk_gate.pending_work()
        and recorder.count >= built.feed.snapshot().bars_published
    )


async def _wait(task: asyncio.Task[None], done: Any, timeout_s: float | None = None) -> None:
    """Poll ``done()`` until true or the tree's task ended (no event exists for these states)."""
    deadline = monotonic() + timeout_s if timeout_s is not None else None
    while not task.done() and not done():
        if deadline is not None and monotonic() > deadline:
            structlog.get_logger("aaiti").warning("backtest.settle_timeout", timeout_s=timeout_s)
            return
        await asyncio.sleep(_POLL_S)


def _strategy_errors(built: Pipeline) -> tuple[StrategyError, ...]:
    sup = built.strategies
    out: list[StrategyError] = []
    for name, host in built.hosts.items():
        if name not in sup.last_errors:
            continue
        # The host wraps what the strategy raised (StrategyCallbackError from the original):
        # name the callback and show the original, which is what the trader has to fix.
        exc = host.error
        error = f"{exc}: {exc.__cause__!r}" if exc is not None and exc.__cause__ is not None else sup.last_errors[name]
        out.append(StrategyError(strategy=name, error=error, restarts=sup.restart_counts.get(name, 0)))
    return tuple(out)


def run_backtest_sync(
    config_path: str,
    overrides: Mapping[str, Any] | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> dict[str, Any]:
    """Run one backtest in this process and return its result dict (``daemon.backtest.result``).

    For process pools and Dask workers: plain arguments in, a plain picklable dict out.
    ``overrides`` maps dotted config keys to values (``{"strategies.0.params.fast": 8}``;
    numbers index lists). Uses a temporary work directory and quiet logging (warnings,
    errors and one ``backtest.finished`` line). Raises ``BacktestError`` (with its
    ``exit_code``) for anything that stops the run before it starts.
    """
    from daemon.backtest.result import build_result

    setup = quiet_logging()
    try:
        loaded = load_for_backtest(config_path, overrides)
    except ConfigError as exc:
        raise BacktestError(f"invalid config: {'; '.join(i.render(exc.source) for i in exc.issues)}") from None
    with tempfile.TemporaryDirectory(prefix="aaiti-backtest-") as tmp:
        try:
            run = asyncio.run(run_backtest(loaded, start_ms=start_ms, end_ms=end_ms, workdir=Path(tmp),
                                           overrides=overrides))
        except DataFileError as exc:
            raise BacktestError(f"market data file unusable: {exc}", exit_codes.STATE_ERROR) from None
    result = build_result(run)
    log_finished(setup, result)
    return result


def log_finished(setup: LoggingSetup, result: Mapping[str, Any]) -> None:
    """The one INFO line of a finished run, whatever the quiet level."""
    previous = setup.level.name
    setup.level.set("info")
    try:
        s = result["summary"]
        structlog.get_logger("aaiti").info(
            "backtest.finished", config=result["manifest"]["config_path"], trades=s["trades"], orders=s["orders"],
            fills=s["fills"], total_profit=s["total_profit"], strategy_errors=len(s["strategy_errors"]),
        )
    finally:
        setup.level.set(previous)
