"""Turning the daemon's events into notifications.

``EventTranslator.translate`` takes what the daemon hands the notification service
(order events and risk denials from the router, trading-state changes from the risk
gate, watchdog verdicts, connection-health samples) and returns the notifications they
make, each with a key that identifies its event:

* a fill: ``fill``, or ``protective_exit`` for an exit that protects a position: an order
  the contingent-order manager released as a stop, take-profit, trailing stop, OCO leg,
  bracket exit or OTO pending exit (``ChildFill``, decided from the contingent order's view:
  ``daemon.notify.contingent``), or else an order whose tag marks one (``protect...``,
  ``sl``/``tp`` alone or followed by a non-letter such as ``sl:1``). A bracket's entry and
  an iceberg's or TWAP's slice are plain fills whatever their tag. Keyed by venue and trade
  id, so the same fill seen again, also after a restart, is delivered once;
* a contingent order saved ``FAILED`` (its ``ContingentRow``): ``protection_failed``, keyed
  by contingent id, so it is delivered once;
* ``denial_burst`` risk denials within ``denial_window_s``: one ``risk_denials`` message
  with the count per reason; at most one per window. The manager's own ``OrderDenied``
  with reason ``CONTINGENT_GIVEN_UP`` is no new denial (it sums up denials already counted,
  and its FAILED order makes ``protection_failed``): it is not counted;
* trading state: HALTED → ``kill``, REDUCING → ``pause``, back to ACTIVE → ``resume``;
* the watchdog turning unhealthy: ``watchdog_unhealthy``;
* a breaker opening or closing again: ``breaker_open`` / ``breaker_closed``; a stream's
  reconnect counter going up: ``reconnect``.

It runs in the service's own task, never on the trading path. Keys of events without an
id of their own carry the run id (one per start) and a counter.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Callable
from decimal import Decimal

from actors.kernel.clock import Clock, monotonic
from actors.model.contingent import (
    CONTINGENT_GIVEN_UP,
    ContingentKind,
    ContingentRow,
    ContingentStatus,
    ContingentView,
    LegView,
)
from actors.model.control import HealthVerdict, TradingState, TradingStateChanged
from actors.model.orders import OrderDenied, OrderEvent
from actors.model.records import OrderRecord
from actors.ports.capabilities import ConnectionHealth
from actors.watchdog import UNHEALTHY
from daemon.notify.contingent import ChildFill, contingent_view, exits_protect, is_protective_child, leg_of
from daemon.notify.events import EventKind, Notification

#: An order's record by client order id (the order manager's), to read its tag.
OrderLookup = Callable[[str], OrderRecord | None]

_PROTECTIVE = re.compile(r"^(protect|(sl|tp)($|[^a-z]))", re.IGNORECASE)
_OPEN_STATES = ("open", "half_open")


def is_protective_tag(tag: str) -> bool:
    """True for tags of protective exits: ``protect...``, ``sl``/``tp`` alone or before a non-letter."""
    return bool(_PROTECTIVE.match(tag))


class DenialBurst:
    """Counts risk denials in a sliding window (process time); fires once ``threshold`` are in it."""

    def __init__(self, threshold: int, window_s: float, now: Callable[[], float] = monotonic) -> None:
        self.threshold = threshold
        self.window_s = window_s
        self._now = now
        self._seen: deque[tuple[float, str]] = deque()
        self._quiet_until = float("-inf")

    def add(self, reason: str) -> Counter[str] | None:
        """Count one denial; the reasons in the window when this one completes a burst, else None."""
        now = self._now()
        seen = self._seen
        seen.append((now, reason))
        while seen and seen[0][0] <= now - self.window_s:
            seen.popleft()
        if len(seen) < self.threshold or now < self._quiet_until:
            return None
        reasons = Counter(r for _, r in seen)
        seen.clear()
        self._quiet_until = now + self.window_s
        return reasons


class EventTranslator:
    """Daemon events in, notifications out (see the module docstring)."""

    def __init__(
        self,
        *,
        run_id: str,
        clock: Clock,
        denial_burst: int,
        denial_window_s: float,
        instance: str = "aaiti",
        order_lookup: OrderLookup | None = None,
        now: Callable[[], float] = monotonic,
    ) -> None:
        self.run_id = run_id
        self.instance = instance
        self.order_lookup = order_lookup
        self._clock = clock
        self._denials = DenialBurst(denial_burst, denial_window_s, now)
        self._seq = 0
        self._unhealthy = False
        self._breakers: dict[str, str] = {}
        self._reconnects: dict[str, int] = {}

    def translate(self, item: object) -> list[Notification]:
        """The notifications ``item`` makes (often none)."""
        if isinstance(item, Notification):
            return [item]
        if isinstance(item, OrderEvent):
            return self._fill(item)
        if isinstance(item, ChildFill):
            return self._fill(item.event, item.contingent)
        if isinstance(item, ContingentRow):
            return self._failed(item)
        if isinstance(item, OrderDenied):
            return self._denied(item)
        if isinstance(item, TradingStateChanged):
            return self._state(item)
        if isinstance(item, HealthVerdict):
            return self._verdict(item)
        if isinstance(item, ConnectionHealth):
            return self._connection(item)
        return []

    def _key(self, kind: EventKind) -> str:
        self._seq += 1
        return f"{kind.value}:{self.run_id}:{self._seq}"

    def _fill(self, ev: OrderEvent, contingent: ContingentView | None = None) -> list[Notification]:
        fill = ev.fill
        if fill is None:
            return []
        rec = self.order_lookup(ev.client_order_id) if self.order_lookup is not None else None
        tag = rec.tag if rec is not None else ""
        if contingent is not None:  # what the contingent-order manager released it as decides
            protective = is_protective_child(contingent, ev.client_order_id)
        else:
            protective = bool(tag) and is_protective_tag(tag)
        kind = EventKind.PROTECTIVE_EXIT if protective else EventKind.FILL
        what = "Protective exit" if kind is EventKind.PROTECTIVE_EXIT else "Fill"
        title = f"{what}: {fill.side.value.upper()} {_d(fill.size)} {fill.symbol} @ {_d(fill.price)}"
        lines = [
            f"strategy: {ev.strategy}",
            f"order: {ev.client_order_id} ({ev.status.value}, filled {_d(ev.filled)} of {_d(ev.size)})",
            f"fee: {_d(fill.fee)} {fill.fee_currency}".rstrip(),
        ]
        if tag:
            lines.append(f"tag: {tag}")
        if contingent is not None:
            leg = leg_of(contingent, ev.client_order_id)
            lines.append(f"contingent order: {_KIND_TEXT.get(contingent.kind, contingent.kind)} {contingent.id}"
                         + (f" ({leg.name})" if leg is not None else ""))
        return [Notification(kind=kind, key=f"fill:{fill.venue}:{fill.trade_id}", title=title,
                             body="\n".join(lines), event_ms=fill.ts_ms or ev.ts_ms)]

    def _failed(self, row: ContingentRow) -> list[Notification]:
        if row.status is not ContingentStatus.FAILED:
            return []
        view = contingent_view(row)
        what = _KIND_TEXT.get(row.kind.value, row.kind.value)
        lines = [f"strategy: {row.strategy}", f"contingent order: {row.id} ({what}, {row.mode.value})"]
        reason = view.reason or "none recorded"
        hint = _reason_hint(reason, view)
        lines.append(f"reason: {reason}" + (f" ({hint})" if hint else ""))
        left = _unprotected(row.kind, view)
        if left is not None:
            lines.append(f"position left unprotected: {left} {row.symbol}")
        for leg in view.legs:
            lines.append(_leg_text(leg))
        kind = EventKind.PROTECTION_FAILED
        return [Notification(kind=kind, key=f"{kind.value}:{row.id}",
                             title=f"{self.instance}: {what} {row.symbol} FAILED",
                             body="\n".join(lines), event_ms=row.updated_ms or self._clock.now_ms())]

    def _denied(self, ev: OrderDenied) -> list[Notification]:
        if ev.reason == CONTINGENT_GIVEN_UP:
            return []  # a summary of denials already counted; its FAILED order is reported itself
        reasons = self._denials.add(ev.reason)
        if reasons is None:
            return []
        total = sum(reasons.values())
        window = self._denials.window_s
        title = f"{total} risk denials within {window:g} s"
        body = "\n".join(f"{reason}: {count}" for reason, count in reasons.most_common())
        body += f"\nlast: {ev.intent.strategy} {ev.intent.side.value} {ev.intent.symbol}: {ev.reason}"
        if ev.detail:
            body += f" ({ev.detail})"
        return [Notification(kind=EventKind.RISK_DENIALS, key=self._key(EventKind.RISK_DENIALS), title=title,
                             body=body, event_ms=ev.ts_ms or self._clock.now_ms())]

    def _state(self, ev: TradingStateChanged) -> list[Notification]:
        if ev.state is ev.previous:
            return []
        if ev.state is TradingState.HALTED:
            kind, title = EventKind.KILL, "Trading HALTED" + (" (kill switch)" if ev.kill_switch else "")
        elif ev.state is TradingState.REDUCING:
            kind, title = EventKind.PAUSE, "Trading paused (REDUCING: only orders that shrink a position)"
        else:
            kind, title = EventKind.RESUME, f"Trading resumed (was {ev.previous.value})"
        body = f"{ev.previous.value} -> {ev.state.value}: {ev.reason or 'no reason given'}"
        return [Notification(kind=kind, key=self._key(kind), title=f"{self.instance}: {title}", body=body,
                             event_ms=self._clock.now_ms())]

    def _verdict(self, v: HealthVerdict) -> list[Notification]:
        was, self._unhealthy = self._unhealthy, v.status == UNHEALTHY
        if not self._unhealthy or was:
            return []
        kind = EventKind.WATCHDOG_UNHEALTHY
        body = "\n".join(v.reasons) or "no reason given"
        return [Notification(kind=kind, key=self._key(kind), title=f"{self.instance}: watchdog UNHEALTHY",
                             body=body, event_ms=self._clock.now_ms())]

    def _connection(self, health: ConnectionHealth) -> list[Notification]:
        out: list[Notification] = []
        now = self._clock.now_ms()
        for b in health.breakers:
            before = self._breakers.get(b.name, "closed")
            self._breakers[b.name] = b.state
            if b.state == "open" and before != "open":
                kind = EventKind.BREAKER_OPEN
                title = f"{self.instance}: breaker {b.name} OPEN" + (" (latched)" if b.latched else "")
                body = f"trips: {b.trips}" + (f"\nreason: {b.reason}" if b.reason else "")
                if b.open_remaining_s is not None:
                    body += f"\nretry in {b.open_remaining_s:.0f} s"
            elif b.state == "closed" and before in _OPEN_STATES:
                kind, title, body = EventKind.BREAKER_CLOSED, f"{self.instance}: breaker {b.name} closed", \
                    f"trips: {b.trips}"
            else:
                continue
            out.append(Notification(kind=kind, key=f"{kind.value}:{self.run_id}:{b.name}:{b.trips}", title=title,
                                    body=body, event_ms=now))
        for stream, count in sorted(health.reconnects.items()):
            before_count = self._reconnects.get(stream, 0)
            self._reconnects[stream] = count
            if count > before_count:
                kind = EventKind.RECONNECT
                new = count - before_count
                out.append(Notification(
                    kind=kind, key=f"{kind.value}:{self.run_id}:{stream}:{count}",
                    title=f"{self.instance}: connection {stream} dropped, reconnecting",
                    body=f"{new} reconnect(s) since the last check; {count} since start", event_ms=now))
        return out


#: How a message names each kind of contingent order.
_KIND_TEXT = {
    ContingentKind.STOP.value: "stop",
    ContingentKind.TAKE_PROFIT.value: "take-profit",
    ContingentKind.TRAILING_STOP.value: "trailing stop",
    ContingentKind.OCO.value: "OCO",
    ContingentKind.OTO.value: "OTO",
    ContingentKind.BRACKET.value: "bracket",
    ContingentKind.ICEBERG.value: "iceberg",
    ContingentKind.TWAP.value: "TWAP",
}

_SINGLE_KINDS = frozenset({ContingentKind.STOP.value, ContingentKind.TAKE_PROFIT.value,
                           ContingentKind.TRAILING_STOP.value})

#: What the prefixes of a contingent order's failure reason mean (``actors.contingent``).
_REASON_HINTS = (
    ("child_denied:", "the risk gate denied its order until it gave up"),
    ("entry_denied:", "the risk gate denied the entry"),
    ("exit_rejected:", "the venue rejected its exit order until it gave up"),
    ("entry_rejected:", "the venue rejected the entry"),
    ("working_", "its working order ended unfilled"),
    ("child_", "its order ended unfilled at the venue"),
    ("slice_", "a slice ended unfilled at the venue"),
    ("native_", "the venue ended its native order"),
    ("rejected:", "the venue rejected its order"),
    ("denied:", "the risk gate denied its working order"),
    ("display_below_step", "its display size is below the instrument's quantity step"),
    ("UNSUPPORTED_ORDER_TYPE", "the venue refused the native order type and emulation is off"),
)


def _reason_hint(reason: str, view: ContingentView) -> str:
    """What ``reason`` means, when its code says (empty: the reason is the venue's or the gate's code)."""
    hint = next((hint for prefix, hint in _REASON_HINTS if reason.startswith(prefix)), "")
    if not hint and view.kind in _SINGLE_KINDS and [leg.status for leg in view.legs] == [ContingentStatus.FAILED.value]:
        # A stop's one leg shows its order's venue status once the venue saw it; FAILED alone:
        # its order never got past the risk gate, and the reason is the gate's last denial.
        hint = "the risk gate denied its order until it gave up"
    return hint


def _unprotected(kind: ContingentKind, view: ContingentView) -> str | None:
    """The position a failed bracket, OCO or protective OTO leaves without its exits (None: unknown,
    or not an exit: an OTO whose pending order adds to the position)."""
    if view.protected is None or kind not in (ContingentKind.BRACKET, ContingentKind.OCO, ContingentKind.OTO):
        return None
    return view.protected if exits_protect(view) else None


def _leg_text(leg: LegView) -> str:
    text = f"{leg.name}: {leg.side} {leg.type}"
    if leg.size is not None:
        text += f" {leg.size}"
    if leg.trigger_price is not None:
        text += f" trigger {leg.trigger_price}"
    if leg.limit_price is not None:
        text += f" limit {leg.limit_price}"
    return f"{text}, filled {leg.filled} ({leg.status})"


def _d(value: Decimal) -> str:
    # Plain notation without trailing zeros: 20, 0.00123 (not 2E+1 or 0.001230000).
    return format(value.normalize(), "f") if value.is_finite() else str(value)
