"""The fault steps of the chaos run, each injected through the simulator and confirmed by evidence.

A step injects one fault (``adapters.binance_sim.faults``) and waits, with a deadline, for what
shows that the daemon met it (a log line of the adapter, an armed fault consumed, new
orders flowing again). Between steps :meth:`Chaos.poke` drives fills of resting orders
(partial prints injected at their limit price) and cancels some over the admin API.

Each step first establishes what its evidence depends on (market streams live and synced,
the user-data subscription up, breakers closed and orders flowing) and leaves no fault of
its own behind (a shifted clock is shifted back and resynced), so its outcome does not
depend on which step ran before it in a random schedule.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tests.chaos.harness import ORDER_PATH, RECV_WINDOW_MS, SYMBOLS, VENUE_IDS, SimThread, wait_events
from tests.integration.ops.daemon_harness import Api, OpsDaemon, wait_until

STEPS = {"BTC/USDT": Decimal("0.00001"), "ETH/USDT": Decimal("0.0001")}


@dataclasses.dataclass
class Chaos:
    """One chaos run: the daemon, its admin API, the simulator, a seeded RNG and what was injected."""

    daemon: OpsDaemon
    api: Api
    st: SimThread
    rng: random.Random
    injected: list[str] = dataclasses.field(default_factory=list)
    partial_fills: int = 0
    cancels: int = 0

    @property
    def sim(self) -> Any:
        return self.st.sim

    def mark(self) -> int:
        return self.daemon.mark()

    def wait(self, event: str, since: int, count: int = 1, timeout: float = 20.0, **match: Any) -> None:
        wait_events(self.daemon, event, count, since, timeout, **match)

    def progress(self, orders: int = 2, timeout: float = 30.0) -> None:
        """Trading goes on: ``orders`` new submissions."""
        self.wait("order.submitted", self.mark(), orders, timeout)

    def breakers_closed(self, timeout: float = 20.0) -> None:
        """Both breakers of the venue adapter are closed again (``/status``)."""

        def closed() -> bool:
            snaps = self.api.ok("GET", "/status")["circuit_breakers"]
            return bool(snaps) and all(b["state"] == "closed" for b in snaps)

        wait_until(closed, timeout, "circuit breakers closed", interval=0.1)

    def feed_counts(self) -> dict[str, tuple[int, int, int]]:
        """Per symbol, the trades, quotes and books the feed has taken so far (``/status``)."""
        feed = self.api.ok("GET", "/status")["feed"]
        return {s["symbol"]: (s["trades"], s["quotes"], s["books"]) for s in feed["symbols"]}

    def streams_live(self, symbols: Sequence[str] = SYMBOLS, timeout: float = 30.0) -> None:
        """Every market stream of ``symbols`` is up and synced: each one delivered again since
        this call, and none of them went down or resynced meanwhile.

        A market fault injected after an earlier step's drop, while a stream is still
        re-dialling, would meet no socket, or a book still waiting for its snapshot (which
        then already holds what the fault removed): nothing for the daemon to detect.
        """
        deadline = time.monotonic() + timeout
        while True:
            m = self.mark()
            start = self.feed_counts()
            wait_until(lambda since=start: self._moved_on(since, symbols), max(0.1, deadline - time.monotonic()),
                       f"market streams of {list(symbols)} live", interval=0.1)
            broken = [r for r in self.daemon.lines[m:]
                      if r.get("event") in ("ccxt_source.stream_down", "ccxt_source.book_resync")
                      and str(r.get("stream", "")).split(":", 1)[-1] in symbols]
            if not broken:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"market streams of {list(symbols)} keep going down: {broken[-3:]}")

    def _moved_on(self, since: dict[str, tuple[int, int, int]], symbols: Sequence[str]) -> bool:
        """Each of the symbols' trades, quotes and books counts grew by two since ``since``."""
        now = self.feed_counts()
        return all(b >= a + 2 for sym in symbols for a, b in zip(since[sym], now[sym], strict=True))

    def user_subscribed(self) -> None:
        """Wait until the daemon's user-data subscription is live at the simulator."""
        self.st.run(self.sim.wait_for_user_subscription(timeout_s=30), timeout=35)

    def pending_faults(self) -> dict[str, int | None]:
        return self.st.call(self.sim.faults.pending)

    def wait_consumed(self, kind: str, timeout: float = 30.0) -> None:
        """An armed fault of ``kind`` has fired as often as it was armed."""
        wait_until(lambda: kind not in self.pending_faults(), timeout, f"armed fault {kind} consumed",
                   interval=0.1)

    # -- partial fills and cancels of resting orders ---------------------------------------
    def resting(self) -> list[dict[str, Any]]:
        rows = self.api.ok("GET", "/orders", {"status": "ACCEPTED,PARTIALLY_FILLED", "limit": 200})["orders"]
        return [r for r in rows if r.get("price") is not None and r["type"] == "limit"]

    def poke(self) -> None:
        """Fill part of one resting order with an injected print, and cancel another."""
        rows = self.resting()
        self.rng.shuffle(rows)
        rows.sort(key=lambda r: r.get("tag") == "chaos.far")  # far from the market: the market won't fill it first
        if rows:
            r = rows.pop()
            sym = r["symbol"]
            remaining = Decimal(str(r["size"])) - Decimal(str(r["filled"]))
            qty = (remaining / 2).quantize(STEPS[sym], ROUND_DOWN)
            if qty <= 0:
                qty = remaining
            taker = "SELL" if r["side"] == "buy" else "BUY"
            self.st.call(self.sim.inject_trade, VENUE_IDS[sym], Decimal(str(r["price"])), qty, taker,
                         rebuild_book=False)
            self.partial_fills += 1
        if rows:
            r = rows.pop()
            resp = self.api.post(f"/orders/{r['client_order_id']}/cancel", {"reason": "chaos test"})
            assert resp.status in (202, 404, 409), (resp.status, resp.body[:300])
            self.cancels += 1


# -- the steps ---------------------------------------------------------------------------------
def drop_market(c: Chaos, code: int | None) -> None:
    """Market sockets closed with ``code`` (1001), or aborted (None: 1006)."""
    c.streams_live()
    m = c.mark()
    n = c.st.run(c.sim.drop_market_connections(code=code))
    assert n > 0, "no market connection to drop"
    c.wait("ccxt_source.stream_down", m)
    c.wait("ccxt_source.stream_up", m, count=min(n, 2))
    c.injected.append(f"market sockets {'aborted (1006)' if code is None else f'closed {code}'}")


def drop_user(c: Chaos, code: int | None) -> None:
    """The user-data (ws-API) socket closed with ``code``, or aborted."""
    c.user_subscribed()
    m = c.mark()
    n = c.st.run(c.sim.drop_user_connections(code=code))
    assert n > 0, "no user-data connection to drop"
    c.wait("ccxt_venue.user_stream_down", m)
    c.wait("ccxt_venue.user_stream_up", m)
    c.injected.append(f"user socket {'aborted (1006)' if code is None else f'closed {code}'}")


def stall_market(c: Chaos) -> None:
    """Market sockets go silent (still ponging): idle timeout, re-dial."""
    c.streams_live()
    m = c.mark()
    assert c.st.call(c.sim.stall_market_connections) > 0
    c.wait("ccxt_source.stream_down", m)
    c.wait("ccxt_source.stream_up", m)
    c.injected.append("market streams stalled")


def stall_user(c: Chaos) -> None:
    """The user-data socket goes silent: idle timeout, REST poll, re-dial."""
    c.user_subscribed()
    m = c.mark()
    assert c.st.call(c.sim.stall_user_connections) > 0
    c.wait("ccxt_venue.user_stream_down", m)
    c.wait("ccxt_venue.user_stream_up", m)
    c.injected.append("user stream stalled")


def terminate_user(c: Chaos) -> None:
    """``eventStreamTerminated``: the session ends (pending watches would hang), REST poll, re-subscribe.

    Whatever state the order path is in: a watch that starts after ccxt handled the end subscribes
    again silently, and the daemon must still see that the subscription ended (a busy daemon, as
    after a clock skew's resyncs and lost orders, is where that happens).
    """
    c.user_subscribed()
    m = c.mark()
    assert c.st.call(c.sim.terminate_user_streams) > 0
    c.wait("ccxt_venue.user_stream_down", m)
    c.wait("ccxt_venue.user_stream_up", m)
    c.injected.append("user stream terminated")


def rest_errors(c: Chaos, rate: float = 0.25, timeouts: float = 0.05) -> None:
    """5xx and slow (timed-out) REST answers at a rate, plus a burst of 503s: the REST breaker opens."""
    m = c.mark()
    c.st.call(c.sim.faults.set, rest_error_rate=rate, rest_delay_rate=timeouts, rest_delay_s=2.0)
    c.st.call(c.sim.faults.fail_rest, 503, count=8)
    c.wait("ccxt_venue.breaker_state", m, breaker="rest", state="open", timeout=30)
    c.progress(2)
    c.st.call(c.sim.faults.set, rest_error_rate=0.0, rest_delay_rate=0.0)
    c.breakers_closed()
    c.injected.append(f"REST 5xx at {rate:.0%} and timeouts at {timeouts:.0%} (+ a 503 burst)")


def rate_limit(c: Chaos) -> None:
    """429 + Retry-After on an order submission: every REST call pauses.

    Armed on ``POST /api/v3/order`` (orders flow every few hundred ms). Armed on whatever
    request comes next, it could fall on one whose 429 the venue adapter never sees or does
    not report as a rate limit: ccxt's own REST book snapshot for the market stream, or the
    ``/api/v3/time`` read of a clock resync.
    """
    c.breakers_closed()
    c.progress(1)
    m = c.mark()
    c.st.call(c.sim.faults.rate_limit, retry_after_s=2, path=ORDER_PATH, method="POST")
    c.wait("ccxt_venue.rate_limited", m, reason="RATE_LIMITED")
    c.breakers_closed()
    c.injected.append("429 with Retry-After")


def ban(c: Chaos, seconds: float = 3.0) -> None:
    """418 IP ban: every REST call stops until the ban ends."""
    c.breakers_closed()  # calls go out, so the venue adapter meets the ban while it lasts
    m = c.mark()
    c.st.call(c.sim.faults.ban, seconds)
    c.wait("ccxt_venue.rate_limited", m, reason="IP_BANNED")
    c.breakers_closed(timeout=seconds + 20)
    c.injected.append("418 IP ban")


def lose_responses(c: Chaos) -> None:
    """Orders accepted but the reply lost (abort, then timeout), then three in a row: the order breaker."""
    m = c.mark()
    c.st.call(c.sim.faults.lose_order_responses, 1, mode="abort")
    c.wait("order.submit_outcome_unknown", m)
    m = c.mark()
    c.st.call(c.sim.faults.lose_order_responses, 1, mode="timeout", delay_s=2.5)
    c.wait("order.submit_outcome_unknown", m)
    m = c.mark()
    for _ in range(5):  # a success of a submit sent just before can break a row: lose three more
        c.st.call(c.sim.faults.lose_order_responses, 3, mode="abort")
        c.wait_consumed("rest:lose_response")
        c.progress(1)
        if any(r.get("breaker") == "orders" and r.get("state") == "open"
               for r in c.daemon.events("ccxt_venue.breaker_state", m)):
            break
    c.wait("ccxt_venue.breaker_state", m, breaker="orders", state="open", timeout=30)
    c.wait("ccxt_venue.order_breaker_reset", m, timeout=30)
    c.injected.append("order responses lost (abort, timeout, 3 in a row)")


def exec_reports(c: Chaos) -> None:
    """Duplicate and out-of-order executionReports."""
    c.st.call(c.sim.faults.duplicate_exec_reports, 4)
    c.st.call(c.sim.faults.swap_exec_reports, 4)
    c.wait_consumed("exec_duplicate")
    c.wait_consumed("exec_swap")
    c.injected.append("duplicate and swapped executionReports")


def depth_gap(c: Chaos, symbol: str = "BTC/USDT") -> None:
    """A depth sequence gap on a synced book: ChecksumError, fresh snapshot, the book back up."""
    c.streams_live((symbol,))
    m = c.mark()
    c.st.call(c.sim.faults.gap_depth, 1, symbol=VENUE_IDS[symbol])
    c.wait("ccxt_source.book_resync", m, stream=f"book:{symbol}")
    c.wait("ccxt_source.stream_up", m, stream=f"book:{symbol}")
    c.injected.append("depth sequence gap")


def clock_skew(c: Chaos, ms: int = -(RECV_WINDOW_MS + 3_000)) -> None:
    """Server clock shifted by ``ms``, then back: -1021 on REST and the ws-API, a time resync each way.

    With ``|ms|`` beyond the recvWindow both shifts refuse the daemon's timestamps (a server
    ahead by less accepts timestamps that far behind), so the daemon leaves the step in step
    with the server: neither an offset left over that decides whether a later skew is
    noticed, nor a resync still to come that takes a later step's armed fault.
    """
    assert abs(ms) > RECV_WINDOW_MS + 1_000, ms
    for skew in (ms, 0):
        m = c.mark()
        c.st.call(c.sim.faults.skew_clock, skew)
        c.wait("ccxt_venue.time_resynced", m)
        c.progress(2)
    c.injected.append(f"clock skew {ms} ms and back (-1021)")


def partial_fills(c: Chaos, times: int = 3) -> None:
    """Partial fills of resting orders (injected prints) and cancels."""
    for _ in range(times):
        wait_until(lambda: c.resting(), 20, "a resting order", interval=0.1)
        m = c.mark()
        c.poke()
        c.wait("order.fill", m)
    c.injected.append("partial fills by injected prints, cancels")


def handshake_rejected(c: Chaos) -> None:
    """Websocket upgrades refused with 429 + Retry-After while the market sockets are dropped."""
    c.streams_live()
    m = c.mark()
    c.st.call(c.sim.faults.reject_ws_handshakes, 2, status=429, retry_after_s=1, path_prefix="/stream")
    c.st.run(c.sim.drop_market_connections(code=1001))
    c.wait_consumed("handshake")
    c.wait("ccxt_source.stream_up", m, count=2)
    c.injected.append("websocket handshakes refused (429 + Retry-After)")


def port_down(c: Chaos) -> None:
    """The venue stops listening for a moment (every connection cut), then comes back."""
    m = c.mark()
    c.st.run(c.sim.suspend_listener())
    c.wait("ccxt_venue.user_stream_down", m)
    c.st.run(c.sim.resume_listener())
    c.wait("ccxt_venue.user_stream_up", m)
    c.wait("ccxt_source.stream_up", m)
    c.injected.append("port down and back")


def storm(c: Chaos) -> None:
    """Everything at once, at rates: REST errors and timeouts, report duplicates and swaps, depth gaps,
    periodic socket drops; orders keep flowing through it."""
    r = c.rng
    knobs = {
        "rest_error_rate": round(r.uniform(0.02, 0.15), 3),
        "rest_delay_rate": round(r.uniform(0.0, 0.05), 3),
        "rest_delay_s": 2.0,
        "exec_report_duplicate_rate": round(r.uniform(0.05, 0.3), 3),
        "exec_report_swap_rate": round(r.uniform(0.05, 0.3), 3),
        "depth_gap_rate": round(r.uniform(0.0, 0.02), 4),
        "ws_drop_interval_s": round(r.uniform(2.0, 6.0), 2),
        "ws_drop_abort_ratio": 0.5,
    }
    c.st.call(c.sim.faults.set, **knobs)
    c.progress(r.randint(8, 20), timeout=120)
    if r.random() < 0.5:
        c.poke()
    c.st.call(c.sim.faults.set, rest_error_rate=0, rest_delay_rate=0, exec_report_duplicate_rate=0,
              exec_report_swap_rate=0, depth_gap_rate=0, ws_drop_interval_s=0)
    c.breakers_closed(timeout=40)
    c.injected.append(f"storm {knobs}")


def random_step(name: str, rng: random.Random) -> Callable[[Chaos], None]:
    """A step of the LONG schedule with randomised parameters."""
    if name == "market drop":
        code = rng.choice((1000, 1001, 1011, None))
        return lambda c: drop_market(c, code)
    if name == "user drop":
        code = rng.choice((1000, 1001, 1011, None))
        return lambda c: drop_user(c, code)
    if name == "rest errors":
        rate, timeouts = round(rng.uniform(0.15, 0.35), 2), round(rng.uniform(0.0, 0.1), 2)
        return lambda c: rest_errors(c, rate, timeouts)
    if name == "ban":
        seconds = round(rng.uniform(2.0, 5.0), 1)
        return lambda c: ban(c, seconds)
    if name == "clock skew":
        ms = rng.choice((-1, 1)) * rng.randint(RECV_WINDOW_MS + 2_000, RECV_WINDOW_MS + 10_000)
        return lambda c: clock_skew(c, ms)
    if name == "partial fills":
        times = rng.randint(1, 4)
        return lambda c: partial_fills(c, times)
    return dict(LONG_STEPS)[name]


LONG_STEPS: tuple[tuple[str, Callable[[Chaos], None]], ...] = (
    ("market drop", lambda c: drop_market(c, 1001)),
    ("user drop", lambda c: drop_user(c, None)),
    ("partial fills", partial_fills),
    ("exec reports", exec_reports),
    ("stall market", stall_market),
    ("stall user", stall_user),
    ("terminate user", terminate_user),
    ("lost responses", lose_responses),
    ("rest errors", rest_errors),
    ("rate limit", rate_limit),
    ("ban", ban),
    ("depth gap", depth_gap),
    ("clock skew", clock_skew),
    ("handshake rejected", handshake_rejected),
    ("port down", port_down),
    ("storm", storm),
)


def long_schedule(rng: random.Random, rounds: int) -> list[tuple[str, Callable[[Chaos], None]]]:
    """``rounds`` rounds; each runs every step once, in a random order, with random parameters."""
    out: list[tuple[str, Callable[[Chaos], None]]] = []
    for r in range(rounds):
        names = [name for name, _ in LONG_STEPS]
        rng.shuffle(names)
        out.extend((f"round {r} {name}", random_step(name, rng)) for name in names)
    return out


FAST_SCHEDULE: tuple[tuple[str, Callable[[Chaos], None]], ...] = (
    ("market 1001", lambda c: drop_market(c, 1001)),
    ("user 1001", lambda c: drop_user(c, 1001)),
    ("partial fills", partial_fills),
    ("market abort", lambda c: drop_market(c, None)),
    ("user abort", lambda c: drop_user(c, None)),
    ("exec reports", exec_reports),
    ("stall market", stall_market),
    ("stall user", stall_user),
    ("lost responses", lose_responses),
    ("rest errors", rest_errors),
    ("rate limit", rate_limit),
    ("ban", ban),
    ("depth gap", depth_gap),
    ("clock skew", clock_skew),
    ("terminate user", terminate_user),
)
