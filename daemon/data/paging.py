"""Paging, de-duplication and gap detection of a market-data download (no I/O, no ccxt).

A pager says what to ask for next and turns each page the exchange answers into the rows
still to be written: inside the requested range, never one already written (candles are
unique by open time, trades by trade id), in order. The download loop (``daemon.data.download``)
does the network calls and the writing.

Ranges are half-open: ``[start_ms, end_ms)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from adapters.market_data.csv_reader import CandleRow, TradeRow

__all__ = [
    "CandlePager",
    "Gap",
    "GapReport",
    "PagingStuck",
    "TradePager",
    "TradeRequest",
    "align_up",
    "candle_gaps",
    "trade_id_gaps",
]


class PagingStuck(Exception):
    """The exchange keeps answering the same page: paging cannot make progress."""


def align_up(ts_ms: int, tf_ms: int) -> int:
    """The first multiple of ``tf_ms`` at or after ``ts_ms``."""
    return -(-ts_ms // tf_ms) * tf_ms


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing rows: candle open times or trade ids ``first..last`` (inclusive), ``missing`` of them."""

    first: int
    last: int
    missing: int


@dataclass(frozen=True, slots=True)
class GapReport:
    """Every gap of a range, oldest first; ``missing`` is the total count."""

    missing: int
    ranges: tuple[Gap, ...]

    @classmethod
    def of(cls, gaps: Sequence[Gap]) -> GapReport:
        """The report of ``gaps``."""
        return cls(sum(g.missing for g in gaps), tuple(gaps))


def candle_gaps(open_times: Iterable[int], start_ms: int, end_ms: int, tf_ms: int) -> GapReport:
    """Candles missing between ``start_ms`` and ``end_ms`` (open times aligned to ``tf_ms``).

    ``open_times`` may include times outside the range (ignored); a missing stretch at either
    end of the range counts too: nothing is known to be there.
    """
    first = align_up(start_ms, tf_ms)
    gaps: list[Gap] = []
    prev = first - tf_ms
    for t in sorted({t for t in open_times if first <= t < end_ms}):
        if t > prev + tf_ms:
            gaps.append(Gap(prev + tf_ms, t - tf_ms, (t - prev) // tf_ms - 1))
        prev = t
    last_expected = align_up(end_ms, tf_ms) - tf_ms
    if last_expected > prev:
        gaps.append(Gap(prev + tf_ms, last_expected, (last_expected - prev) // tf_ms))
    return GapReport.of(gaps)


def trade_id_gaps(ids: Iterable[int]) -> GapReport:
    """Jumps in consecutive trade ids (an exchange numbers a symbol's trades 1, 2, 3, ...)."""
    gaps: list[Gap] = []
    prev: int | None = None
    for trade_id in sorted(set(ids)):
        if prev is not None and trade_id > prev + 1:
            gaps.append(Gap(prev + 1, trade_id - 1, trade_id - prev - 1))
        prev = trade_id
    return GapReport.of(gaps)


class CandlePager:
    """Pages candles by ``since``: each request starts one candle after the last one seen.

    ``last_ts`` is the open time of the last candle already in the file (resume): paging
    starts after it. Done when the range is covered or the exchange has nothing newer.
    """

    def __init__(self, *, start_ms: int, end_ms: int, tf_ms: int, last_ts: int | None = None) -> None:
        self.tf_ms = tf_ms
        self.end_ms = end_ms
        self.since = align_up(start_ms, tf_ms)
        self._last_written = last_ts if last_ts is not None else -1
        if last_ts is not None:
            self.since = max(self.since, last_ts + tf_ms)
        self.done = self.since >= end_ms

    def accept(self, page: Sequence[CandleRow]) -> list[CandleRow]:
        """The rows of ``page`` to write (new, in range, by open time); advances ``since``."""
        if not page:
            self.done = True
            return []
        newest = max(row.ts_ms for row in page)
        fresh: dict[int, CandleRow] = {}
        for row in page:
            if self.since <= row.ts_ms < self.end_ms and row.ts_ms > self._last_written:
                fresh.setdefault(row.ts_ms, row)  # the first of duplicate open times wins, as the reader does
        rows = [fresh[t] for t in sorted(fresh)]
        if rows:
            self._last_written = rows[-1].ts_ms
        if newest < self.since:
            self.done = True  # the exchange ignored ``since``: nothing newer to get
        else:
            self.since = newest + self.tf_ms
            self.done = self.since >= self.end_ms
        return rows


@dataclass(frozen=True, slots=True)
class TradeRequest:
    """One ``fetch_trades`` call: by time (``since``) or by trade id (``from_id``)."""

    since: int | None
    from_id: int | None


class TradePager:
    """Pages trades by time or, where the exchange supports it, by trade id.

    - ``by_id`` (Binance ``aggTrades``): the first page is asked by time, then each next one
      from the id after the last one seen (``fromId``), which cannot skip or repeat a trade.
      On resume (``last`` given) paging starts right after the last trade id in the file.
    - otherwise by time: each next page starts at the newest timestamp seen, and trades with
      that timestamp already seen are dropped (ids are unique).

    ``window_ms``: the exchange answers a time request with the trades of
    ``[since, since + window_ms]`` only (ccxt's Binance ``fetch_trades`` asks one hour), so a
    short or empty page means "this window is done", not "no more trades". Without a window an
    empty page (or one with nothing new) ends the download.
    """

    def __init__(
        self,
        *,
        start_ms: int,
        end_ms: int,
        limit: int,
        by_id: bool,
        window_ms: int | None,
        last: TradeRow | None = None,
        ids_at_last_ts: Iterable[int] = (),
    ) -> None:
        self.end_ms = end_ms
        self.limit = limit
        self._by_id = by_id
        self._window_ms = window_ms
        self._since = start_ms
        self._from_id: int | None = None
        self._max_id = -1
        self._seen_at: set[int] = set()
        if last is not None:
            self._max_id = last.trade_id
            if by_id:
                self._from_id = last.trade_id + 1
            else:
                self._since = max(start_ms, last.ts_ms)
                self._seen_at = set(ids_at_last_ts) | {last.trade_id}
        self.done = self._since >= end_ms

    def request(self) -> TradeRequest:
        """What to ask for next."""
        if self._from_id is not None:
            return TradeRequest(None, self._from_id)
        return TradeRequest(self._since, None)

    def accept(self, page: Sequence[TradeRow]) -> list[TradeRow]:
        """The trades of ``page`` to write (new, in range, in id order); advances the pager."""
        if self._from_id is not None:
            return self._accept_by_id(page)
        return self._accept_by_time(page)

    def _fresh(self, page: Sequence[TradeRow], lo_ms: int) -> list[TradeRow]:
        out: list[TradeRow] = []
        seen: set[int] = set()
        for row in sorted(page, key=lambda r: r.trade_id):
            if row.trade_id in seen or row.trade_id in self._seen_at or not lo_ms <= row.ts_ms < self.end_ms:
                continue
            if self._by_id and row.trade_id <= self._max_id:
                continue
            seen.add(row.trade_id)
            out.append(row)
        if out:
            self._max_id = max(self._max_id, out[-1].trade_id)
        return out

    def _accept_by_id(self, page: Sequence[TradeRow]) -> list[TradeRow]:
        if not page:
            self.done = True
            return []
        rows = self._fresh(page, -1)
        newest_id = max(row.trade_id for row in page)
        if self._from_id is not None and newest_id < self._from_id:
            raise PagingStuck(f"asked for trades from id {self._from_id}, got up to id {newest_id}")
        self._from_id = newest_id + 1
        # Ids follow time: once a trade at or after the end shows up, the range is covered.
        self.done = any(row.ts_ms >= self.end_ms for row in page)
        return rows

    def _accept_by_time(self, page: Sequence[TradeRow]) -> list[TradeRow]:
        since = self._since
        rows = self._fresh(page, since)
        if not page:
            self._next_window(since)
            return rows
        newest_ts = max(row.ts_ms for row in page)
        if self._by_id:
            # The first page found trades: from here on page by id.
            self._from_id = max(row.trade_id for row in page) + 1
            self.done = newest_ts >= self.end_ms
            return rows
        full = len(page) >= self.limit
        if self._window_ms is not None and not full:
            self._next_window(since)
        elif not rows:
            if full and newest_ts <= since:
                raise PagingStuck(f"more than {self.limit} trades at {since} ms: paging by time cannot pass them")
            self._next_window(since)
        else:
            self._since = newest_ts
            self._seen_at = {row.trade_id for row in page if row.ts_ms == newest_ts}
            self.done = self._since >= self.end_ms
        return rows

    def _next_window(self, since: int) -> None:
        """The request at ``since`` had nothing more: move past its window, or stop."""
        if self._window_ms is None:
            self.done = True
            return
        self._since = since + self._window_ms + 1
        self._seen_at = set()
        self.done = self._since >= self.end_ms
