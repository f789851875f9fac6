"""Fault-injection plan: what the simulator should do wrong, and when.

The plan is plain state. The REST layer, the market-stream hub and the WS-API hub consult it
at the points where a real exchange misbehaves. Faults come
in two flavours:

- armed faults, counted (``count=N`` fires on the next N matching occasions, ``None`` = until
  cleared) -- what tests use, because they are deterministic;
- rates (probability per request/event) drawn from one seeded RNG -- for soak and chaos runs.

Actions on live connections (drop a socket now, stall it, terminate user streams) are methods
of :class:`adapters.binance_sim.server.BinanceSimulator`, since they need the connections.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, fields
from typing import Literal

from adapters.binance_sim.config import FaultConfig, SimulatorConfig

RestFaultKind = Literal["error", "delay", "rate_limit", "lose_response"]
LoseMode = Literal["abort", "timeout"]
SubscribeFaultKind = Literal["drop_ack", "error", "late_ack"]

# Knobs that ``FaultPlan.set`` accepts; each is also a FaultConfig field.
_KNOBS = (
    "clock_skew_ms",
    "rest_error_rate",
    "rest_error_status",
    "rest_delay_rate",
    "rest_delay_s",
    "depth_gap_rate",
    "exec_report_duplicate_rate",
    "exec_report_swap_rate",
    "ws_drop_interval_s",
    "ws_drop_abort_ratio",
)


@dataclass(slots=True)
class RestFault:
    """One armed REST fault.

    ``path`` is a path prefix (e.g. ``/api/v3/order``; ``None`` matches all), ``method`` an
    HTTP method (``None``: any). ``code`` set → JSON body ``{"code","msg"}``; otherwise the
    body is ``text`` as text/plain (what load balancers send).
    """

    kind: RestFaultKind
    status: int = 503
    code: int | None = None
    msg: str = ""
    text: str = "Service Unavailable"
    delay_s: float = 0.0
    retry_after_s: int | None = None
    used_weight: int | None = None
    lose_mode: LoseMode = "abort"
    path: str | None = None
    method: str | None = None
    remaining: int | None = 1
    exact_path: bool = False
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Does this fault apply to the request?"""
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is None:
            return True
        return path == self.path if self.exact_path else path.startswith(self.path)


@dataclass(slots=True)
class SubscribeFault:
    """An armed fault on market-stream SUBSCRIBE requests whose streams contain ``stream_contains``."""

    kind: SubscribeFaultKind
    stream_contains: str
    remaining: int | None
    code: int = 2
    msg: str = "Invalid request: invalid stream"


@dataclass(slots=True)
class _Counter:
    """A counted one-shot fault, optionally restricted to one symbol."""

    remaining: int | None
    symbol: str | None = None
    value: int = 0

    def take(self, symbol: str | None = None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.symbol is not None and symbol is not None and self.symbol != symbol:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True


@dataclass(slots=True)
class _HandshakeRejection:
    status: int
    retry_after_s: int | None
    path_prefix: str | None
    remaining: int | None


@dataclass(slots=True)
class _Armed:
    """All counted faults, grouped so ``reset`` can drop them in one go."""

    rest: list[RestFault] = field(default_factory=list)
    handshakes: list[_HandshakeRejection] = field(default_factory=list)
    subscribes: list[SubscribeFault] = field(default_factory=list)
    depth_gaps: list[_Counter] = field(default_factory=list)
    depth_duplicates: list[_Counter] = field(default_factory=list)
    stale_snapshots: list[_Counter] = field(default_factory=list)
    exec_duplicates: list[_Counter] = field(default_factory=list)
    exec_swaps: list[_Counter] = field(default_factory=list)


def _take(counters: list[_Counter], symbol: str | None = None) -> _Counter | None:
    for counter in counters:
        if counter.take(symbol):
            return counter
    return None


class FaultPlan:
    """Mutable fault state, seeded from a :class:`FaultConfig` and changed by tests at run time.

    Usage from a test::

        sim.faults.rate_limit(retry_after_s=7)          # next REST request → 429
        sim.faults.lose_order_responses()               # next POST /order applied, reply lost
        sim.faults.set(clock_skew_ms=5_000)             # server clock 5 s ahead
    """

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._config = config or FaultConfig()
        self.rng = random.Random(self._config.seed)
        self.clock_skew_ms = 0
        self.rest_error_rate = 0.0
        self.rest_error_status = 503
        self.rest_delay_rate = 0.0
        self.rest_delay_s = 0.0
        self.depth_gap_rate = 0.0
        self.exec_report_duplicate_rate = 0.0
        self.exec_report_swap_rate = 0.0
        self.ws_drop_interval_s = 0.0
        self.ws_drop_abort_ratio = 0.5
        self._armed = _Armed()
        self._banned_until = 0.0
        self._apply_config()

    @classmethod
    def from_config(cls, config: FaultConfig | SimulatorConfig) -> FaultPlan:
        """Build a plan whose rates and skew start at the (simulator's) fault config."""
        return cls(config.faults if isinstance(config, SimulatorConfig) else config)

    def _apply_config(self) -> None:
        for f in fields(self._config):
            if f.name in _KNOBS:
                setattr(self, f.name, getattr(self._config, f.name))

    # ----------------------------------------------------------------- knobs
    def set(self, **knobs: float) -> None:
        """Change rate/skew knobs, e.g. ``set(rest_error_rate=0.1, clock_skew_ms=-3000)``."""
        for name, value in knobs.items():
            if name not in _KNOBS:
                raise AttributeError(f"unknown fault knob {name!r}; known: {', '.join(_KNOBS)}")
            current = getattr(self, name)
            setattr(self, name, int(value) if isinstance(current, int) else float(value))

    def skew_clock(self, ms: int) -> None:
        """Shift the server clock by ``ms`` (positive: server ahead of the client)."""
        self.clock_skew_ms = int(ms)

    def pending(self) -> dict[str, int | None]:
        """Armed faults that have not fired yet, by kind (``None``: armed until cleared).

        Kinds: ``rest:<kind>``, ``handshake``, ``subscribe:<kind>``, ``depth_gap``,
        ``depth_duplicate``, ``stale_snapshot``, ``exec_duplicate``, ``exec_swap``. Lets a test
        wait until what it armed has actually happened.
        """
        out: dict[str, int | None] = {}

        def add(kind: str, remaining: int | None) -> None:
            if remaining is not None and remaining <= 0:
                return
            prev = out.get(kind, 0)
            out[kind] = None if remaining is None or prev is None else prev + remaining

        armed = self._armed
        for rest in armed.rest:
            add(f"rest:{rest.kind}", rest.remaining)
        for rej in armed.handshakes:
            add("handshake", rej.remaining)
        for sub in armed.subscribes:
            add(f"subscribe:{sub.kind}", sub.remaining)
        for kind, counters in (("depth_gap", armed.depth_gaps), ("depth_duplicate", armed.depth_duplicates),
                               ("stale_snapshot", armed.stale_snapshots), ("exec_duplicate", armed.exec_duplicates),
                               ("exec_swap", armed.exec_swaps)):
            for counter in counters:
                add(kind, counter.remaining)
        return out

    def reset(self) -> None:
        """Disarm every counted fault, lift any ban and restore the configured rates."""
        self._armed = _Armed()
        self._banned_until = 0.0
        self._apply_config()

    # ----------------------------------------------------------------- REST
    def add_rest_fault(self, fault: RestFault) -> RestFault:
        """Arm an arbitrary REST fault; returns it so a test can inspect ``hits``."""
        self._armed.rest.append(fault)
        return fault

    def fail_rest(
        self,
        status: int = 503,
        *,
        code: int | None = None,
        msg: str = "",
        text: str = "Service Unavailable",
        path: str | None = None,
        method: str | None = None,
        count: int | None = 1,
        retry_after_s: int | None = None,
    ) -> RestFault:
        """Answer matching requests with ``status`` (JSON ``code``/``msg`` if given, else ``text``)."""
        return self.add_rest_fault(
            RestFault(
                kind="error",
                status=status,
                code=code,
                msg=msg,
                text=text,
                path=path,
                method=method,
                remaining=count,
                retry_after_s=retry_after_s,
            )
        )

    def delay_rest(
        self, seconds: float, *, path: str | None = None, method: str | None = None, count: int | None = 1
    ) -> RestFault:
        """Hold matching requests for ``seconds`` before handling them (→ client timeouts)."""
        return self.add_rest_fault(RestFault(kind="delay", delay_s=seconds, path=path, method=method, remaining=count))

    def rate_limit(
        self,
        *,
        count: int | None = 1,
        retry_after_s: int = 60,
        used_weight: int = 6001,
        path: str | None = None,
        method: str | None = None,
    ) -> RestFault:
        """Answer matching requests with 429 ``-1003`` plus ``Retry-After`` and the weight header."""
        return self.add_rest_fault(
            RestFault(
                kind="rate_limit",
                status=429,
                code=-1003,
                retry_after_s=retry_after_s,
                used_weight=used_weight,
                path=path,
                method=method,
                remaining=count,
            )
        )

    def lose_order_responses(
        self, count: int | None = 1, *, mode: LoseMode = "abort", delay_s: float = 30.0
    ) -> RestFault:
        """Apply the next ``POST /api/v3/order`` (events included) and then lose the reply.

        ``mode="abort"`` resets the TCP connection (ccxt: ExchangeNotAvailable);
        ``mode="timeout"`` holds the reply for ``delay_s`` (ccxt: RequestTimeout).
        """
        return self.add_rest_fault(
            RestFault(
                kind="lose_response",
                lose_mode=mode,
                delay_s=delay_s,
                path="/api/v3/order",
                method="POST",
                remaining=count,
                exact_path=True,
            )
        )

    def ban(self, seconds: float) -> None:
        """Ban the client: every REST request gets 418 until ``seconds`` have passed."""
        self._banned_until = time.monotonic() + seconds

    def lift_ban(self) -> None:
        """End a ban early."""
        self._banned_until = 0.0

    def ban_remaining_s(self) -> float:
        """Seconds left in the current ban (0 when not banned)."""
        return max(0.0, self._banned_until - time.monotonic())

    def take_rest_faults(self, method: str, path: str) -> list[RestFault]:
        """Faults that fire for this request (armed first, then rate-based), consuming counts."""
        fired: list[RestFault] = []
        kinds: set[str] = set()
        for fault in self._armed.rest:
            if fault.kind in kinds or not fault.matches(method, path):
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
            fault.hits += 1
            kinds.add(fault.kind)
            fired.append(fault)
        self._armed.rest = [f for f in self._armed.rest if f.remaining is None or f.remaining > 0]
        if "delay" not in kinds and self.rest_delay_rate > 0 and self.rng.random() < self.rest_delay_rate:
            fired.append(RestFault(kind="delay", delay_s=self.rest_delay_s, remaining=None))
        if (
            not kinds & {"error", "rate_limit"}
            and self.rest_error_rate > 0
            and self.rng.random() < self.rest_error_rate
        ):
            fired.append(RestFault(kind="error", status=self.rest_error_status, remaining=None))
        return fired

    # ----------------------------------------------------------------- websocket handshakes
    def reject_ws_handshakes(
        self,
        count: int | None = 1,
        *,
        status: int = 429,
        retry_after_s: int | None = 1,
        path_prefix: str | None = None,
    ) -> None:
        """Refuse the next websocket upgrades with HTTP ``status`` (+ ``Retry-After``)."""
        self._armed.handshakes.append(_HandshakeRejection(status, retry_after_s, path_prefix, count))

    def take_handshake_rejection(self, path: str) -> tuple[int, int | None] | None:
        """``(status, retry_after_s)`` when this upgrade must be refused."""
        for rej in self._armed.handshakes:
            if rej.remaining is not None and rej.remaining <= 0:
                continue
            if rej.path_prefix is not None and not path.startswith(rej.path_prefix):
                continue
            if rej.remaining is not None:
                rej.remaining -= 1
            return rej.status, rej.retry_after_s
        return None

    # ----------------------------------------------------------------- market streams
    def drop_subscribe_acks(self, count: int | None = 1, *, stream_contains: str = "@depth") -> None:
        """Subscribe matching streams but never acknowledge (watch_order_book then hangs)."""
        self._armed.subscribes.append(SubscribeFault("drop_ack", stream_contains, count))

    def fail_subscribes(
        self,
        count: int | None = 1,
        *,
        stream_contains: str = "",
        code: int = 2,
        msg: str = "Invalid request: invalid stream",
    ) -> None:
        """Reply ``{"error":{"code","msg"},"id"}`` to matching SUBSCRIBEs (ccxt: ExchangeError)."""
        self._armed.subscribes.append(SubscribeFault("error", stream_contains, count, code, msg))

    def deltas_before_ack(self, count: int | None = 1, *, stream_contains: str = "@depth") -> None:
        """Send the first depth delta of matching subscriptions before their ack."""
        self._armed.subscribes.append(SubscribeFault("late_ack", stream_contains, count))

    def take_subscribe_fault(self, streams: list[str]) -> SubscribeFault | None:
        """The subscribe fault (if any) that applies to a SUBSCRIBE of ``streams``."""
        for fault in self._armed.subscribes:
            if fault.remaining is not None and fault.remaining <= 0:
                continue
            if any(fault.stream_contains in s for s in streams):
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def gap_depth(self, count: int | None = 1, *, symbol: str | None = None) -> None:
        """Silently drop the next depth delta(s): the following one has ``U > prev u + 1``."""
        self._armed.depth_gaps.append(_Counter(count, symbol))

    def take_depth_gap(self, symbol: str) -> bool:
        """Should the depth delta about to be sent for ``symbol`` be dropped?"""
        if _take(self._armed.depth_gaps, symbol) is not None:
            return True
        return self.depth_gap_rate > 0 and self.rng.random() < self.depth_gap_rate

    def duplicate_depth(self, count: int | None = 1, *, symbol: str | None = None) -> None:
        """Resend depth deltas after they went out (``u <= last``: ccxt must ignore them)."""
        self._armed.depth_duplicates.append(_Counter(count, symbol))

    def take_depth_duplicate(self, symbol: str) -> bool:
        """Should the depth delta just sent for ``symbol`` be sent again?"""
        return _take(self._armed.depth_duplicates, symbol) is not None

    def stale_depth_snapshot(self, count: int | None = 1, *, lag: int = 1000) -> None:
        """Make REST ``/depth`` report a ``lastUpdateId`` ``lag`` ids too old."""
        self._armed.stale_snapshots.append(_Counter(count, None, lag))

    def take_stale_snapshot(self) -> int:
        """The lag to subtract from the next snapshot's ``lastUpdateId`` (0: none)."""
        counter = _take(self._armed.stale_snapshots)
        return counter.value if counter is not None else 0

    # ----------------------------------------------------------------- user data stream
    def duplicate_exec_reports(self, count: int | None = 1) -> None:
        """Send the next TRADE executionReport(s) twice (same ``t``)."""
        self._armed.exec_duplicates.append(_Counter(count))

    def take_exec_duplicate(self) -> bool:
        """Should the TRADE report about to be sent go out twice?"""
        if _take(self._armed.exec_duplicates) is not None:
            return True
        return self.exec_report_duplicate_rate > 0 and self.rng.random() < self.exec_report_duplicate_rate

    def swap_exec_reports(self, count: int | None = 1) -> None:
        """Hold the next executionReport back and send it after the one that follows it."""
        self._armed.exec_swaps.append(_Counter(count))

    def take_exec_swap(self) -> bool:
        """Should the report about to be sent be held back behind the next one?"""
        if _take(self._armed.exec_swaps) is not None:
            return True
        return self.exec_report_swap_rate > 0 and self.rng.random() < self.exec_report_swap_rate
