"""Admin load: /metrics scrapes and 5 live consoles against the real daemon while it replays >= 10k events/s.

The daemon is ``daemon.app.App``, run in this process exactly as ``aaiti run`` runs it
(open, supervision tree, start-up reconciliation, feed released; stopped in order) on
uvloop, from a config derived from the bundled ``aaiti.toml``: paper trading on the
bundled XRP/ETH tape, replayed with ``loop = true`` at ``--speed`` (default 216,000 x:
one pass of the tape per second, ~12.5k trade prints/s through the feed, bars, three
strategies, the risk gate, the order manager and the paper venue, logging at the config's
level to a discarding stream), with the admin endpoint on a free 127.0.0.1 port and a
token, and its state in a temporary directory. A sampler in the daemon's loop measures the
event-loop lag every 5 ms.

Clients run in separate processes (this file with ``--client``), so their work does not
load the daemon's loop:

- phase "metrics": one scraper (like Prometheus, keep-alive ``http.client``) reads
  ``/metrics`` every ``--interval`` s (0.1, as this benchmark always did);
- phase "console": ``--consoles`` browsers' worth of live updates (separate aiohttp
  sessions, each logging in the way the page does - ``POST /console/login`` with the token
  in the ``Authorization`` header and the page's ``Origin`` - then, with the session
  cookie and ``Sec-Fetch-Site: same-origin``, holding ``GET /console/state?follow=1`` and,
  as the page does, ``GET /logs?follow=1&n=200`` open and decoding every event), while
  the scraper reads ``/metrics`` every ``--console-interval`` s (1).

Each of ``--runs`` runs starts a fresh daemon and measures both phases for ``--seconds``
each; the figures are the medians over the runs. Last line: one JSON object - the metrics
phase as before (``events_per_s``, ``scrape_p50_ms``, ``scrape_p99_ms``,
``loop_lag_p99_ms``, ...) and the console phase with a ``_console`` suffix
(``loop_lag_p99_ms_console``, ``events_per_s_console``, ...) plus ``console_streams``,
``console_events_received`` and ``log_events_received``. Target: loop lag p99 <= 5 ms
in the console phase at >= 10k events/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import http.client
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from yarl import URL  # noqa: E402

from actors.kernel.clock import perf_s  # noqa: E402
from config.loader import LoadedConfig, load_config  # noqa: E402
from daemon.app import App  # noqa: E402
from daemon.logging_setup import LoggingSetup  # noqa: E402
from daemon.runtime import run_loop  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
TARGET_LOOP_LAG_P99_MS = 5.0
TARGET_EVENTS_PER_S = 10_000
LAG_PERIOD_S = 0.005
START_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True)
class AdminLoadSettings:
    """What one benchmark run does (the command-line options)."""

    seconds: float = 5.0  # measured seconds per phase
    warmup_s: float = 1.0  # replay running, before the first phase
    speed: float = 216_000.0  # the bundled tape spans 60 h with its loop gap: one pass per second
    consoles: int = 5
    log_streams: bool = True  # each console also follows the log tail, as the page does
    interval: float = 0.1  # scrape interval of the metrics phase
    console_interval: float = 1.0  # scrape interval of the console phase
    config: Path = ROOT / "aaiti.toml"
    gc_freeze: bool = False


# -- the daemon ------------------------------------------------------------------------------
class DiscardingStream(io.StringIO):
    """Where the daemon's JSON log goes: every line is rendered as usual, then dropped."""

    def write(self, text: str) -> int:
        """Accept and drop ``text``."""
        return len(text)


def bench_config(settings: AdminLoadSettings, state_dir: Path) -> LoadedConfig:
    """``settings.config`` with the replay sped up and looping, state in ``state_dir``, and the
    admin endpoint on a free loopback port with the bench token (no other token source)."""
    loaded = load_config(settings.config)
    cfg = loaded.config
    replay = dataclasses.replace(cfg.feed.replay, speed=settings.speed, loop=True)
    admin = dataclasses.replace(
        cfg.admin, enabled=True, host="127.0.0.1", port=0, token=TOKEN, token_env="", token_credential="",
        token_file="", sse_max_followers=max(cfg.admin.sse_max_followers, settings.consoles),
    )
    config = dataclasses.replace(
        cfg, feed=dataclasses.replace(cfg.feed, source="replay", replay=replay), admin=admin,
        daemon=dataclasses.replace(cfg.daemon, state_dir=str(state_dir)),
    )
    return dataclasses.replace(loaded, config=config)


@contextlib.asynccontextmanager
async def running_daemon(loaded: LoadedConfig) -> AsyncIterator[App]:
    """The daemon started as ``daemon.runtime.serve`` starts it (without its signal handling),
    yielded once the start-up reconciliation released the feed, and stopped in order."""
    cfg = loaded.config
    app = App(loaded, LoggingSetup(cfg.log.level, cfg.log.ring_size, stream=DiscardingStream()))
    root_task: asyncio.Task[None] | None = None
    try:
        await app.open()
        root_task = asyncio.create_task(app.root.main(), name="root-supervisor")
        async with asyncio.timeout(START_TIMEOUT_S):
            await app.after_start()
        yield app
        if root_task.done():
            raise RuntimeError(f"the daemon's root supervisor ended during the benchmark: {root_task!r}")
    finally:
        if root_task is not None:
            app.on_stopping()
            root_task.cancel()
            await asyncio.wait({root_task}, timeout=app.stop_timeout_s)
        await app.close()


class LagSampler:
    """Event-loop lag: a timer every ``LAG_PERIOD_S``; how late it fires, recorded while ``recording``."""

    def __init__(self) -> None:
        self.recording = False
        self.samples_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sampling on the running loop."""
        self._task = asyncio.create_task(self._run(), name="lag-sampler")

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def take(self) -> list[float]:
        """The samples recorded so far (and forget them)."""
        out, self.samples_ms = self.samples_ms, []
        return out

    async def _run(self) -> None:
        while True:
            t0 = perf_s()
            await asyncio.sleep(LAG_PERIOD_S)
            lag = max(0.0, perf_s() - t0 - LAG_PERIOD_S)
            if self.recording:
                self.samples_ms.append(lag * 1000)


# -- the clients (separate processes) ----------------------------------------------------------
def scraper_client(url: str, token: str, interval: float, seconds: float) -> dict[str, Any]:
    """Read ``/metrics`` every ``interval`` s for ``seconds`` over one keep-alive connection (like Prometheus)."""
    parts = url.removeprefix("http://").rsplit(":", 1)
    host, port = parts[0], int(parts[1])
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.connect()
    headers = {"Authorization": "Bearer " + token}
    print("ready", flush=True)
    lat: list[float] = []
    size, errors = 0, 0
    start = perf_s()
    next_at = start
    while perf_s() - start < seconds:
        t0 = perf_s()
        try:
            conn.request("GET", "/metrics", headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            errors += resp.status != 200
            size = len(body)
        except OSError:
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
        lat.append((perf_s() - t0) * 1000)
        next_at += interval
        time.sleep(max(0.0, next_at - perf_s()))
    return {"latencies_ms": lat, "bytes": size, "errors": errors}


class EventCounter:
    """Splits a Server-Sent Events byte stream into events, decodes their JSON and counts them by name;
    ``first`` is set by the first event named ``first_name``."""

    def __init__(self, first_name: str) -> None:
        self.counts: Counter[str] = Counter()
        self.bytes = 0
        self.first_name = first_name
        self.first = asyncio.Event()
        self._buffer = b""

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes of the stream."""
        self.bytes += len(chunk)
        self._buffer += chunk
        while (end := self._buffer.find(b"\n\n")) >= 0:
            block, self._buffer = self._buffer[:end], self._buffer[end + 2:]
            name, data = "", []
            for line in block.split(b"\n"):
                if line.startswith(b"event: "):
                    name = line[7:].decode()
                elif line.startswith(b"data: "):
                    data.append(line[6:])
            if not name:
                continue  # a comment (": connected", ": keepalive")
            json.loads(b"\n".join(data))  # what the page does with every event
            self.counts[name] += 1
            if name == self.first_name:
                self.first.set()


async def _follow(session: aiohttp.ClientSession, path: str, counter: EventCounter) -> None:
    async with session.get(path, headers={"Sec-Fetch-Site": "same-origin", "Accept": "text/event-stream"}) as resp:
        if resp.status != 200:
            raise RuntimeError(f"GET {path}: {resp.status} {await resp.text()}")
        async for chunk in resp.content.iter_any():
            counter.feed(chunk)


async def _first_of(ready: asyncio.Future[Any], tasks: list[asyncio.Task[Any]], what: str) -> None:
    """Wait for ``ready``; a task of ``tasks`` that ends first (failed or not) fails the wait."""
    done, _ = await asyncio.wait({ready, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        for task in done:
            task.result()
        raise RuntimeError(f"{what} ended before it was ready")


async def _console(url: str, token: str, log_stream: bool, ready: asyncio.Event) -> dict[str, Any]:
    """One browser: log in for a session cookie, then follow the state (and log) streams until cancelled."""
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: the cookie comes from 127.0.0.1, an IP address
    state, logs = EventCounter("state"), EventCounter("log")
    async with aiohttp.ClientSession(url, cookie_jar=jar) as session:
        login = {"Authorization": f"Bearer {token}", "Origin": url, "Sec-Fetch-Site": "same-origin"}
        async with session.post("/console/login", headers=login) as resp:
            if resp.status != 200 or not jar.filter_cookies(URL(url)):
                raise RuntimeError(f"console login: {resp.status} {await resp.text()}")
        tasks = [asyncio.create_task(_follow(session, "/console/state?follow=1", state))]
        if log_stream:  # its backlog (the daemon's start-up lines at least) comes first
            tasks.append(asyncio.create_task(_follow(session, "/logs?follow=1&n=200", logs)))
        else:
            logs.first.set()
        try:
            await _first_of(asyncio.gather(state.first.wait(), logs.first.wait()), tasks, "a console stream")
            ready.set()
            await asyncio.gather(*tasks)  # until cancelled
        except asyncio.CancelledError:
            pass  # the benchmark is done with this browser
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {"state_events": dict(state.counts), "state_bytes": state.bytes, "log_events": dict(logs.counts),
            "log_bytes": logs.bytes}


async def consoles_client(url: str, token: str, consoles: int, log_stream: bool) -> dict[str, Any]:
    """``consoles`` browsers following the daemon; prints ``ready`` once every one of them received its
    first state (and log line), and stops when stdin closes."""
    readies = [asyncio.Event() for _ in range(consoles)]
    tasks = [asyncio.create_task(_console(url, token, log_stream, r)) for r in readies]
    await _first_of(asyncio.gather(*(r.wait() for r in readies)), tasks, "a console")
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.buffer.read)  # until the benchmark closes our stdin
    for task in tasks:
        task.cancel()
    return {"consoles": await asyncio.gather(*tasks)}


async def _spawn_client(*args: str) -> asyncio.subprocess.Process:
    """Start this file as a client process and wait for its ``ready`` line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"client {args[0]} did not start: {line!r}")
    except BaseException:
        await _stop_client(proc)
        raise
    return proc


async def _stop_client(proc: asyncio.subprocess.Process) -> None:
    """Kill a client that is still running (the benchmark failed)."""
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def _client_result(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    """Close the client's stdin (the consoles stop) and read its JSON result."""
    if proc.stdin is not None:
        proc.stdin.close()  # communicate() without input leaves it open
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"client exited {proc.returncode}")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


# -- measuring -----------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    data = sorted(values)
    return data[min(len(data) - 1, max(0, round(q / 100 * len(data)) - 1))]


async def measure_phase(app: App, sampler: LagSampler, settings: AdminLoadSettings, *, console: bool,
                        url: str) -> dict[str, Any]:
    """One phase on the running daemon: clients started, then ``settings.seconds`` measured."""
    clients: list[asyncio.subprocess.Process] = []
    try:
        return await _measure(app, sampler, settings, console, url, clients)
    finally:
        for proc in clients:
            await _stop_client(proc)


async def _measure(app: App, sampler: LagSampler, settings: AdminLoadSettings, console: bool, url: str,
                   clients: list[asyncio.subprocess.Process]) -> dict[str, Any]:
    consoles = None
    if console:
        consoles = await _spawn_client("consoles", url, TOKEN, str(settings.consoles),
                                       "1" if settings.log_streams else "0")
        clients.append(consoles)
    interval = settings.console_interval if console else settings.interval
    scraper = await _spawn_client("scraper", url, TOKEN, str(interval), str(settings.seconds))
    clients.append(scraper)
    gc_start = gc.get_stats()[2]["collections"]
    feed_before = _feed_events(app)
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    sampler.take()
    sampler.recording = True
    t0 = perf_s()
    scrape = await _client_result(scraper)  # the scraper ends after settings.seconds
    elapsed = perf_s() - t0
    sampler.recording = False
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - usage_before.ru_utime - usage_before.ru_stime
    events = _feed_events(app) - feed_before
    lags = sampler.take()
    fig: dict[str, Any] = {
        "events_per_s": round(events / elapsed),
        "daemon_cpu_pct": round(100 * cpu / elapsed),
        # Involuntary context switches: the kernel gave the CPU to another process (a shared machine).
        "daemon_preemptions_per_s": round((usage.ru_nivcsw - usage_before.ru_nivcsw) / elapsed),
        "exposition_bytes": scrape["bytes"],
        "series": app.metrics.last_samples,
        "render_ms": round(app.metrics.last_render_s * 1000, 2),
        **_scrape_figures(scrape),
        **_lag_figures(lags),
        "gc_gen2_runs": gc.get_stats()[2]["collections"] - gc_start,
    }
    if consoles is not None:
        fig.update(_console_figures(await _client_result(consoles)))
    return fig


def _feed_events(app: App) -> int:
    snap = app.feed_snapshot()
    return snap.events if snap is not None else 0


def _scrape_figures(scrape: dict[str, Any]) -> dict[str, Any]:
    lat: list[float] = scrape["latencies_ms"]
    return {
        "scrapes": len(lat),
        "scrape_errors": scrape["errors"],
        "scrape_p50_ms": round(pct(lat, 50), 2),
        "scrape_p99_ms": round(pct(lat, 99), 2),
        "scrape_max_ms": round(max(lat), 2) if lat else None,
    }


def _lag_figures(lags: list[float]) -> dict[str, Any]:
    return {
        "loop_lag_samples": len(lags),
        "loop_lag_p50_ms": round(pct(lags, 50), 3),
        "loop_lag_p99_ms": round(pct(lags, 99), 3),
        "loop_lag_max_ms": round(max(lags), 3) if lags else None,
        "loop_lag_mean_ms": round(statistics.fmean(lags), 3) if lags else None,
    }


def _console_figures(result: dict[str, Any]) -> dict[str, Any]:
    per = result["consoles"]
    state_events = [sum(c["state_events"].values()) for c in per]
    return {
        "console_streams": sum(1 for n in state_events if n > 0),
        "console_events_received": sum(state_events),
        "console_events_min_per_stream": min(state_events) if state_events else 0,
        "console_state_events": sum(c["state_events"].get("state", 0) for c in per),
        "console_chart_events": sum(c["state_events"].get("charts", 0) for c in per),
        "console_bytes_received": sum(c["state_bytes"] for c in per),
        "log_streams": sum(1 for c in per if c["log_events"]),
        "log_events_received": sum(sum(c["log_events"].values()) for c in per),
    }


async def run_once(settings: AdminLoadSettings) -> dict[str, Any]:
    """One daemon, two phases: its figures (the console phase's with a ``_console`` suffix)."""
    with tempfile.TemporaryDirectory(prefix="aaiti-admin-load-") as tmp:
        async with running_daemon(bench_config(settings, Path(tmp) / "state")) as app:
            assert app.admin is not None
            url = app.admin.url
            sampler = LagSampler()
            sampler.start()
            try:
                await asyncio.sleep(settings.warmup_s)  # the replay at speed; the first rendering
                await app.metrics.render()
                if settings.gc_freeze:
                    gc.collect()
                    gc.freeze()  # what a daemon can do once started: old objects leave the GC's scans
                metrics = await measure_phase(app, sampler, settings, console=False, url=url)
                console = await measure_phase(app, sampler, settings, console=True, url=url)
            finally:
                await sampler.stop()
                if settings.gc_freeze:
                    gc.unfreeze()
    out = dict(metrics)
    for key, value in console.items():
        out[key if key.startswith(("console_", "log_")) else f"{key}_console"] = value
    return out


def _median(values: list[Any]) -> Any:
    if any(v is None for v in values):
        return None
    m = statistics.median(values)
    return round(m) if all(isinstance(v, int) for v in values) else round(m, 3)


def run_admin_load(settings: AdminLoadSettings, runs: int = 3, *, quiet: bool = False) -> dict[str, Any]:
    """``runs`` runs, each a fresh daemon on a fresh loop; every figure is the median over the runs."""
    results: list[dict[str, Any]] = []
    load_at_start = round(os.getloadavg()[0], 2)  # the machine is shared: how busy it was
    for i in range(max(1, runs)):
        box: dict[str, dict[str, Any]] = {}

        async def go(box: dict[str, dict[str, Any]] = box) -> int:
            box["r"] = await run_once(settings)
            return 0

        run_loop(go, use_uvloop=True)
        results.append(box["r"])
        if not quiet:
            report(i + 1, box["r"])
    out: dict[str, Any] = {"runs": len(results), "loadavg_1m_at_start": load_at_start,
                           "speed": settings.speed, "consoles": settings.consoles,
                           "log_streams_per_console": settings.log_streams, "scrape_interval_s": settings.interval,
                           "scrape_interval_s_console": settings.console_interval}
    out.update({key: _median([r[key] for r in results]) for key in results[0]})
    out["loop_lag_p99_ms_runs"] = [r["loop_lag_p99_ms"] for r in results]
    out["loop_lag_p99_ms_console_runs"] = [r["loop_lag_p99_ms_console"] for r in results]
    out["gc_freeze"] = settings.gc_freeze
    out["target_loop_lag_p99_ms"] = TARGET_LOOP_LAG_P99_MS
    out["meets_target"] = bool(out["loop_lag_p99_ms_console"] <= TARGET_LOOP_LAG_P99_MS
                               and out["events_per_s_console"] >= TARGET_EVENTS_PER_S)
    return out


def report(run: int | str, fig: dict[str, Any]) -> None:
    """Human-readable figures of one run (or of the medians)."""
    for phase, sfx in (("metrics", ""), ("console", "_console")):
        print(f"[{run}] {phase:8} events {fig['events_per_s' + sfx]:>7}/s  scrapes n={fig['scrapes' + sfx]} "
              f"err={fig['scrape_errors' + sfx]} p50 {fig['scrape_p50_ms' + sfx]} p99 {fig['scrape_p99_ms' + sfx]} "
              f"max {fig['scrape_max_ms' + sfx]} ms  loop lag n={fig['loop_lag_samples' + sfx]} "
              f"p50 {fig['loop_lag_p50_ms' + sfx]} p99 {fig['loop_lag_p99_ms' + sfx]} "
              f"max {fig['loop_lag_max_ms' + sfx]} ms  (full GCs {fig['gc_gen2_runs' + sfx]})")
    print(f"[{run}] daemon CPU {fig['daemon_cpu_pct']} % / {fig['daemon_cpu_pct_console']} % of one core, "
          f"preempted {fig['daemon_preemptions_per_s']} / {fig['daemon_preemptions_per_s_console']} times/s")
    print(f"[{run}] consoles {fig['console_streams']} streams: {fig['console_events_received']} events "
          f"({fig['console_state_events']} state, {fig['console_chart_events']} charts, "
          f"{fig['console_bytes_received']} bytes); {fig['log_streams']} log streams: "
          f"{fig['log_events_received']} log events; /metrics {fig['series']} samples, "
          f"{fig['exposition_bytes']} bytes, render {fig['render_ms']} ms")


# -- command line ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    d = AdminLoadSettings()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=d.seconds, help="measured seconds per phase (two per run)")
    p.add_argument("--runs", type=int, default=3, help="runs (a fresh daemon each); figures are medians")
    p.add_argument("--speed", type=float, default=d.speed, help="replay speed (216000: ~12.5k events/s)")
    p.add_argument("--consoles", type=int, default=d.consoles, help="browsers following the console")
    p.add_argument("--no-log-streams", action="store_true", help="consoles follow the state stream only")
    p.add_argument("--interval", type=float, default=d.interval, help="scrape interval of the metrics phase")
    p.add_argument("--console-interval", type=float, default=d.console_interval,
                   help="scrape interval of the console phase")
    p.add_argument("--config", type=Path, default=d.config, help="config the bench config is derived from")
    p.add_argument("--gc-freeze", action="store_true",
                   help="gc.freeze() after warm-up (a full collection otherwise pauses the loop)")
    p.add_argument("--client", nargs="+", help=argparse.SUPPRESS)  # internal: run as a client process
    return p.parse_args(argv)


def client_main(args: list[str]) -> int:
    """A client process: ``scraper URL TOKEN INTERVAL SECONDS`` or ``consoles URL TOKEN N LOGS``."""
    role, url, token, *rest = args
    if role == "scraper":
        result = scraper_client(url, token, float(rest[0]), float(rest[1]))
    else:
        result = asyncio.run(consoles_client(url, token, int(rest[0]), rest[1] == "1"))
    print(json.dumps(result), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures and, last, one JSON line."""
    args = parse_args(argv)
    if args.client:
        return client_main(args.client)
    settings = AdminLoadSettings(
        seconds=args.seconds, speed=args.speed, consoles=args.consoles, log_streams=not args.no_log_streams,
        interval=args.interval, console_interval=args.console_interval, config=args.config,
        gc_freeze=args.gc_freeze,
    )
    out = run_admin_load(settings, args.runs)
    report(f"median of {out['runs']}", out)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
