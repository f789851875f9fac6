"""The ccxt venue's order path: submit, cancel and the REST reads, with errors mapped to the port's.

- Orders carry OUR client order id (``params={'clientOrderId': …}`` → Binance
  ``newClientOrderId``); a cancel and a query go by that id too (``origClientOrderId``).
- Submit outcomes: a definite refusal → ``OrderRejected(reason)``: INSUFFICIENT_FUNDS,
  WOULD_TAKE, INVALID_ORDER, UNKNOWN_SYMBOL, BAD_REQUEST, AUTHENTICATION, MARKET_CLOSED,
  REJECTED, CLOCK_SKEW (-1021 after a resync), PRECISION / INVALID_PRICE / INVALID_QUANTITY
  (checked before sending: ccxt would silently round the size or price), RATE_LIMITED (429,
  or -1015 too many new orders) and IP_BANNED (418): Binance places no order when it answers
  so, and the order breaker then stays open for the ``Retry-After`` or the ban, refusing
  the following submits unsent with the same reason (and AUTHENTICATION while our
  credentials are refused); CIRCUIT_OPEN (the order breaker refused the call after
  failures: nothing was sent). Anything else — timeout, disconnect, 5xx, ``OperationFailed``,
  unknown ``ExchangeError``, a malformed reply, and Binance's "Duplicate order sent." (an
  order with our id *exists*) — → ``VenueUnavailable(reason)``: the order stays in flight
  and the caller resolves it with a query; nothing is ever resent.
- A cancel of an order the venue does not know → ``OrderNotFound``; reads that fail →
  ``VenueUnavailable`` (``VenueAuthenticationError`` when our credentials are refused); a
  query of an order the venue never saw → None.
- Binance REST trades carry the venue order id only: our client order id comes from the
  tracker, one ``fetch_orders`` for many unknown orders, or a ``fetch_order`` per order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from actors.model.orders import Balance, Fill, OrderRequest, OrderType, VenueOrder
from actors.ports.venue import AUTHENTICATION, OrderNotFound, OrderRejected, VenueUnavailable
from adapters.ccxt_venue import normalize
from adapters.ccxt_venue.order_tracking import OrderTracker
from adapters.ccxt_venue.rest import RestGateway
from adapters.ccxt_venue.session import VenueSession
from adapters.circuit_breaker import CircuitOpenError

_MY_TRADES_LIMIT = 1000
_MY_TRADES_PAGES = 50
_BULK_RESOLVE_MIN = 5

#: (ccxt exception class, reason) of a definite refusal of a submit, most specific first.
_SUBMIT_REFUSALS = (
    ("InsufficientFunds", "INSUFFICIENT_FUNDS"),
    ("OrderImmediatelyFillable", "WOULD_TAKE"),
    ("BadSymbol", "UNKNOWN_SYMBOL"),
    ("InvalidOrder", "INVALID_ORDER"),
    ("BadRequest", "BAD_REQUEST"),
    ("AuthenticationError", "AUTHENTICATION"),
    ("MarketClosed", "MARKET_CLOSED"),
    ("OperationRejected", "REJECTED"),
)


class OrderPath:
    """Orders and REST reads of the venue (see the module doc); replies go through ``tracker``."""

    def __init__(self, session: VenueSession, rest: RestGateway, tracker: OrderTracker) -> None:
        self._session = session
        self._rest = rest
        self._tracker = tracker

    # -- submit ----------------------------------------------------------------------------------
    def _check_request(self, ex: Any, req: OrderRequest) -> tuple[float, float | None]:
        if req.symbol not in self._session.markets:
            raise OrderRejected("UNKNOWN_SYMBOL", f"{req.symbol!r} is not listed on {self._session.name}")
        if not req.size.is_finite() or req.size <= 0:
            raise OrderRejected("INVALID_QUANTITY", f"size {req.size}")
        amount = float(req.size)
        try:
            rounded = Decimal(str(ex.amount_to_precision(req.symbol, amount)))
        except Exception as exc:
            raise OrderRejected("INVALID_QUANTITY", f"size {req.size}: {exc}") from None
        if rounded != req.size:
            raise OrderRejected("PRECISION", f"size {req.size} is not a multiple of the step (would send {rounded})")
        if req.type is OrderType.MARKET:
            if req.price is not None:
                raise OrderRejected("INVALID_PRICE", "market orders take no price")
            return amount, None
        if req.price is None or not req.price.is_finite() or req.price <= 0:
            raise OrderRejected("INVALID_PRICE", f"limit price {req.price}")
        price = float(req.price)
        try:
            rounded_p = Decimal(str(ex.price_to_precision(req.symbol, price)))
        except Exception as exc:
            raise OrderRejected("INVALID_PRICE", f"price {req.price}: {exc}") from None
        if rounded_p != req.price:
            raise OrderRejected("PRECISION", f"price {req.price} is not on the tick (would send {rounded_p})")
        return amount, price

    def _submit_refusal(self, exc: BaseException, paused: str | None) -> OrderRejected | None:
        """The OrderRejected for a definite refusal of a submit, None when the outcome is unknown.

        ``paused`` is the reason code of a rate limit, a ban or refused credentials (None: none
        of these): Binance placed no order.
        """
        is_a = self._session.is_a
        text = str(exc)
        if paused == AUTHENTICATION:
            return OrderRejected(paused, self._rest.credentials.message("submit"))
        if paused is not None:
            return OrderRejected(paused, text[:300])
        if is_a(exc, "InvalidOrder") and "duplicate order" in text.lower():
            return None  # an order with our id exists: resolve by query
        for name, reason in _SUBMIT_REFUSALS:
            if is_a(exc, name):
                return OrderRejected(reason, text[:300])
        return None

    async def submit(self, request: OrderRequest) -> VenueOrder:
        """Place an order with our client order id. Raises OrderRejected or VenueUnavailable."""
        session, rest, tracker = self._session, self._rest, self._tracker
        ex = session.require_started()
        amount, price = self._check_request(ex, request)
        coid = request.client_order_id
        tracker.track_new(coid, request.symbol)
        resynced = False
        while True:
            try:
                raw = await rest.order_breaker.call(
                    ex.create_order,
                    request.symbol,
                    request.type.value,
                    request.side.value,
                    amount,
                    price,
                    {"clientOrderId": coid},
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if session.is_a(exc, "InvalidNonce"):
                    if not resynced:
                        resynced = True
                        try:
                            await rest.resync_time("submit")
                        except Exception as sync_exc:
                            raise OrderRejected("CLOCK_SKEW", f"time resync failed: {sync_exc!r}") from None
                        continue
                    raise OrderRejected("CLOCK_SKEW", str(exc)[:300]) from None
                paused = rest.note_refusal(exc, "submit")
                refusal = self._submit_refusal(exc, paused)
                if refusal is not None:
                    tracker.forget(coid)
                    raise refusal from None
                if isinstance(exc, CircuitOpenError):
                    # Nothing was sent: a definite (local) refusal, not an unknown outcome that
                    # would keep the order in flight until its request could no longer arrive.
                    # A pause (rate limit, ban, credentials) refuses with its own reason.
                    tracker.forget(coid)
                    reason = rest.pause_reason(exc) or "CIRCUIT_OPEN"
                    detail = rest.credentials.message("submit") if reason == AUTHENTICATION else f"submit {coid}: {exc}"
                    raise OrderRejected(reason, detail) from None
                raise rest.unavailable(exc, f"submit {coid}") from None
        rest.credentials.accepted()
        vo = self._reply(raw, coid, "submit")
        tracker.record(vo)
        trades = raw.get("trades") if isinstance(raw, Mapping) else None
        if isinstance(trades, list):
            for t in trades:
                if isinstance(t, Mapping):
                    self._emit_reply_fill(
                        {
                            **t,
                            "symbol": t.get("symbol") or vo.symbol,
                            "side": t.get("side") or vo.side.value,
                            "order": t.get("order") or vo.venue_order_id,
                            "timestamp": t.get("timestamp") or vo.ts_ms,
                        },
                        coid,
                    )
        return vo

    def _reply(self, raw: Any, client_order_id: str, op: str) -> VenueOrder:
        """The order in a submit / cancel / query reply; a malformed one is counted → VenueUnavailable."""
        session = self._session
        try:
            return normalize.venue_order(session.name, raw, session.markets, client_order_id=client_order_id)
        except normalize.Malformed as exc:
            session.malformed.count(exc.reason, where=f"{op}_reply", client_order_id=client_order_id,
                                    detail=exc.detail)
            raise VenueUnavailable("MALFORMED_REPLY", f"{op} {client_order_id}: {exc}") from None

    def _emit_reply_fill(self, raw: Mapping[str, Any], coid: str) -> None:
        session = self._session
        try:
            f = normalize.fill(session.name, raw, session.markets, coid)
        except normalize.Malformed as exc:
            session.malformed.count(exc.reason, where="submit_reply", detail=exc.detail, client_order_id=coid)
            return
        self._tracker.emit_fill(f)

    # -- cancel and query ------------------------------------------------------------------------
    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrder:
        """Cancel by our client order id. Raises OrderNotFound or VenueUnavailable."""
        session, rest = self._session, self._rest
        ex = session.require_started()
        tracked = self._tracker.get(client_order_id)
        vid = tracked.venue_order_id if tracked is not None and tracked.venue_order_id else None
        resynced = False
        while True:
            try:
                raw = await rest.rest_breaker.call(ex.cancel_order, vid, symbol, {"clientOrderId": client_order_id})
                rest.credentials.accepted()
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if session.is_a(exc, "OrderNotFound"):
                    raise OrderNotFound("ORDER_NOT_FOUND", str(exc)[:300]) from None
                if session.is_a(exc, "InvalidNonce") and not resynced:
                    resynced = True
                    try:
                        await rest.resync_time("cancel")
                    except Exception as sync_exc:
                        raise rest.unavailable(sync_exc, "cancel/time_resync") from None
                    continue
                rest.note_refusal(exc, "cancel")
                raise rest.unavailable(exc, f"cancel {client_order_id}") from None
        vo = self._reply(raw, client_order_id, "cancel")
        self._tracker.record(vo)
        return vo

    async def query(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """Look an order up by our client order id; None if the venue never saw it."""
        vo = await self.fetch_by_client_id(client_order_id, symbol)
        if vo is not None:
            self._tracker.record(vo)
        return vo

    async def fetch_by_client_id(self, client_order_id: str, symbol: str) -> VenueOrder | None:
        """The venue's view of one of our orders, not recorded; None if the venue never saw it."""
        session = self._session
        ex = session.require_started()
        if symbol not in session.markets:
            return None
        try:
            raw = await self._rest.read(
                f"query {client_order_id}", ex.fetch_order, None, symbol, {"clientOrderId": client_order_id}
            )
        except Exception as exc:
            if session.is_a(exc, "OrderNotFound", "BadSymbol"):
                return None
            raise
        return self._reply(raw, client_order_id, "query")

    async def open_orders(self, symbol: str | None = None) -> list[VenueOrder]:
        """Open orders of ``symbol``, or of every configured symbol (all symbols if none configured)."""
        session = self._session
        ex = session.require_started()
        targets: Iterable[str | None] = (symbol,) if symbol is not None else (session.symbols or (None,))
        out: list[VenueOrder] = []
        for sym in targets:
            if sym is not None and sym not in session.markets:
                continue
            try:
                raw_list = await self._rest.read(f"open_orders {sym or '*'}", ex.fetch_open_orders, sym)
            except Exception as exc:
                if session.is_a(exc, "OrderNotFound", "BadSymbol"):
                    raise self._rest.unavailable(exc, "open_orders") from None
                raise
            for raw in raw_list or ():
                try:
                    vo = normalize.venue_order(session.name, raw, session.markets)
                except normalize.Malformed as exc:
                    session.malformed.count(exc.reason, where="open_orders", detail=exc.detail)
                    continue
                out.append(vo)
        return out

    async def balances(self) -> dict[str, Balance]:
        """Balances by asset (assets at zero left out)."""
        session = self._session
        ex = session.require_started()
        raw = await self._rest.read("balances", ex.fetch_balance)
        try:
            return normalize.balances(raw if isinstance(raw, Mapping) else {})
        except normalize.Malformed as exc:
            session.malformed.count(exc.reason, where="balances", detail=exc.detail)
            raise VenueUnavailable("MALFORMED_REPLY", f"balances: {exc}") from None

    # -- fills ---------------------------------------------------------------------------------
    def fill_symbols(self) -> tuple[str, ...]:
        """The symbols whose fills are read: the configured ones, else those of tracked orders."""
        return self._session.symbols or self._tracker.symbols()

    async def fills_since(self, since_ms: int, symbol: str | None = None) -> list[Fill]:
        """Our executions with ``ts_ms >= since_ms``, oldest first (per configured symbol).

        A fill whose order cannot be resolved to our client order id now is left out and
        counted (``unresolved_fills``) — the next call finds it.
        """
        self._session.require_started()
        targets = (symbol,) if symbol is not None else self.fill_symbols()
        out: list[Fill] = []
        for sym in targets:
            if sym not in self._session.markets:
                continue
            out.extend(await self.fills_of(sym, since_ms))
        out.sort(key=lambda f: (f.ts_ms, f.trade_id))
        return out

    async def fills_of(self, symbol: str, since_ms: int) -> list[Fill]:
        """The fills of ``symbol`` since ``since_ms`` (paged through ``fetch_my_trades``), not published."""
        session = self._session
        ex = session.require_started()
        fills: list[Fill] = []
        seen: set[str] = set()
        since = since_ms
        for _ in range(_MY_TRADES_PAGES):
            try:
                page = await self._rest.read(
                    f"fills {symbol}", ex.fetch_my_trades, symbol, since, _MY_TRADES_LIMIT
                )
            except Exception as exc:
                if session.is_a(exc, "OrderNotFound", "BadSymbol"):
                    raise self._rest.unavailable(exc, "fills_since") from None
                raise
            page = [t for t in (page or ()) if isinstance(t, Mapping)]
            await self._learn_order_ids(symbol, page)
            newest = since
            fresh = 0
            for raw in page:
                ts = raw.get("timestamp")
                if isinstance(ts, int) and ts > newest:
                    newest = ts
                key = f"{symbol}:{raw.get('id')}"
                if key in seen:
                    continue
                seen.add(key)
                fresh += 1
                if isinstance(ts, int) and ts < since_ms:
                    continue
                f = await self._fill_from_raw(raw, "fills_since")
                if f is not None:
                    fills.append(f)
            if len(page) < _MY_TRADES_LIMIT or fresh == 0 or newest <= since:
                break
            since = newest
        return fills

    async def _learn_order_ids(self, symbol: str, trades: Sequence[Mapping[str, Any]]) -> None:
        """Map many unknown venue order ids to our client ids with one order-list read.

        Binance REST trades carry no client order id: resolving each unknown order with its
        own ``fetch_order`` costs one request per order (after a restart, every order in the
        fills lookback), which grows start-up time and request weight with the account's
        activity. From ``_BULK_RESOLVE_MIN`` unknown orders on, one ``fetch_orders`` (the
        latest orders of the symbol) resolves them; what it misses falls back to single
        queries. A failure here only means those single queries.
        """
        session, tracker = self._session, self._tracker
        unknown = {normalize.trade_order_id(t) for t in trades if not tracker.coid_for_trade(t)}
        unknown.discard("")
        if len(unknown) < _BULK_RESOLVE_MIN or not (getattr(session.exchange, "has", None) or {}).get("fetchOrders"):
            return
        ex = session.require_started()
        try:
            orders = await self._rest.read(f"orders {symbol}", ex.fetch_orders, symbol, None, _MY_TRADES_LIMIT)
        except Exception as exc:
            session.log.info("ccxt_venue.order_ids_bulk_failed", symbol=symbol, error=repr(exc)[:300])
            return
        for raw in orders or ():
            if isinstance(raw, Mapping):
                tracker.remember_vid(str(raw.get("id") or ""), normalize.order_client_id(raw))

    async def resolve_coid(self, raw: Mapping[str, Any]) -> str:
        """Our client order id of a ccxt trade ("" if the venue does not know its order)."""
        session = self._session
        coid = self._tracker.coid_for_trade(raw)
        if coid:
            return coid
        vid = normalize.trade_order_id(raw)
        symbol = raw.get("symbol")
        if not vid or not isinstance(symbol, str) or symbol not in session.markets:
            return ""
        ex = session.require_started()
        try:
            order = await self._rest.read(f"order_of_trade {vid}", ex.fetch_order, vid, symbol)
        except Exception as exc:
            if session.is_a(exc, "OrderNotFound", "BadSymbol"):
                return ""
            raise
        coid = normalize.order_client_id(order) if isinstance(order, Mapping) else ""
        self._tracker.remember_vid(vid, coid)
        return coid

    async def _fill_from_raw(self, raw: Mapping[str, Any], where: str) -> Fill | None:
        """Validate a ccxt trade into a Fill (our client order id resolved); None when skipped."""
        session = self._session
        coid = await self.resolve_coid(raw)
        if not coid:
            self._tracker.unresolved_fills += 1
            session.log.warning("ccxt_venue.fill_unresolved", where=where, trade_id=str(raw.get("id")),
                                order_id=normalize.trade_order_id(raw), symbol=str(raw.get("symbol")))
            return None
        try:
            return normalize.fill(session.name, raw, session.markets, coid)
        except normalize.Malformed as exc:
            session.malformed.count(exc.reason, where=where, detail=exc.detail, trade_id=str(raw.get("id")))
            return None
