"""The ccxt venue's order path: submit, cancel and the REST reads, with errors mapped to the port's.

- Orders carry OUR client order id (``params={'clientOrderId': …}`` → Binance
  ``newClientOrderId``); a cancel and a query go by that id too (``origClientOrderId``).
- Conditional orders (stop, take-profit, trailing delta, iceberg) go out as Binance's native
  types (:mod:`adapters.ccxt_venue.native_orders`); order lists through
  :mod:`adapters.ccxt_venue.list_path`, with the same error mapping (:meth:`OrderPath.send`).
- Submit outcomes: a definite refusal → ``OrderRejected(reason)``: UNSUPPORTED_ORDER_TYPE (the
  venue does not run this type, list, trailing stop or iceberg for the symbol), INSUFFICIENT_FUNDS,
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from actors.model.orders import PRICED_TYPES, Balance, Fill, OrderRequest, VenueOrder
from actors.ports.venue import (
    AUTHENTICATION,
    UNSUPPORTED_ORDER_TYPE,
    OrderNotFound,
    OrderRejected,
    VenueUnavailable,
)
from adapters.ccxt_venue import native_orders, normalize
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
    def check_request(self, ex: Any, req: OrderRequest, *, wire_type: str | None = None) -> tuple[float, float | None]:
        """Refuse (unsent) a request the venue would refuse or ccxt would silently round.

        Returns the amount and the limit price (None for the unpriced types) as ccxt takes them.
        ``wire_type``: the Binance type the request goes out as (an OCO leg's LIMIT_MAKER);
        by default its own. Conditional fields are checked by ``native_orders``.
        """
        if req.symbol not in self._session.markets:
            raise OrderRejected("UNKNOWN_SYMBOL", f"{req.symbol!r} is not listed on {self._session.name}")
        if not req.size.is_finite() or req.size <= 0:
            raise OrderRejected("INVALID_QUANTITY", f"size {req.size}")
        if native_orders.is_native(req):
            native_orders.check_fields(req, native_orders.native_support(self._session.config.exchange_id))
            market = ex.markets.get(req.symbol) if isinstance(getattr(ex, "markets", None), Mapping) else None
            info = market.get("info") if isinstance(market, Mapping) else None
            native_orders.refuse_unsupported(
                info if isinstance(info, Mapping) else {}, req, wire_type or native_orders.WIRE_TYPES[req.type]
            )
        amount = float(req.size)
        self._on_step(ex, req.symbol, req.size, "size")
        if req.display_size is not None:
            self._on_step(ex, req.symbol, req.display_size, "display size")
        if req.trigger_price is not None:
            self._on_tick(ex, req.symbol, req.trigger_price, "trigger price")
        if req.type not in PRICED_TYPES:
            if req.price is not None:
                raise OrderRejected("INVALID_PRICE", f"{req.type.value} orders take no price")
            return amount, None
        if req.price is None or not req.price.is_finite() or req.price <= 0:
            raise OrderRejected("INVALID_PRICE", f"limit price {req.price}")
        self._on_tick(ex, req.symbol, req.price, "price")
        return amount, float(req.price)

    @staticmethod
    def _on_step(ex: Any, symbol: str, qty: Decimal, what: str) -> None:
        try:
            rounded = Decimal(str(ex.amount_to_precision(symbol, float(qty))))
        except Exception as exc:
            raise OrderRejected("INVALID_QUANTITY", f"{what} {qty}: {exc}") from None
        if rounded != qty:
            raise OrderRejected("PRECISION", f"{what} {qty} is not a multiple of the step (would send {rounded})")

    @staticmethod
    def _on_tick(ex: Any, symbol: str, price: Decimal, what: str) -> None:
        if not price.is_finite() or price <= 0:
            raise OrderRejected("INVALID_PRICE", f"{what} {price}")
        try:
            rounded = Decimal(str(ex.price_to_precision(symbol, float(price))))
        except Exception as exc:
            raise OrderRejected("INVALID_PRICE", f"{what} {price}: {exc}") from None
        if rounded != price:
            raise OrderRejected("PRECISION", f"{what} {price} is not on the tick (would send {rounded})")

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
        if is_a(exc, "ExchangeError") and native_orders.is_unsupported_refusal(text):
            return OrderRejected(UNSUPPORTED_ORDER_TYPE, text[:300])
        for name, reason in _SUBMIT_REFUSALS:
            if is_a(exc, name):
                return OrderRejected(reason, text[:300])
        return None

    async def submit(self, request: OrderRequest) -> VenueOrder:
        """Place an order with our client order id. Raises OrderRejected or VenueUnavailable.

        Conditional orders, trailing deltas and icebergs go out as Binance's native types
        (``adapters.ccxt_venue.native_orders``).
        """
        ex = self._session.require_started()
        amount, price = self.check_request(ex, request)
        call = native_orders.create_order_call(request, price)
        coid = request.client_order_id
        self._tracker.track_new(coid, request.symbol)
        raw = await self.send(
            f"submit {coid}", (coid,), ex.create_order, request.symbol, call.type, request.side.value, amount,
            call.price, call.params,
        )
        vo = self.reply(raw, coid, "submit")
        self._tracker.record(vo)
        self.emit_reply_trades(raw, vo)
        return vo

    async def send(self, op: str, client_order_ids: Sequence[str], fn: Callable[..., Any], *args: Any) -> Any:
        """One order-entry call under the order breaker, with the submit error mapping (module doc).

        ``client_order_ids``: the orders it places, forgotten by the tracker on a definite
        refusal. One more attempt after a -1021 and a time resync; never otherwise resent.
        """
        session, rest, tracker = self._session, self._rest, self._tracker
        resynced = False
        while True:
            try:
                raw = await rest.order_breaker.call(fn, *args)
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
                    for coid in client_order_ids:
                        tracker.forget(coid)
                    raise refusal from None
                if isinstance(exc, CircuitOpenError):
                    # Nothing was sent: a definite (local) refusal, not an unknown outcome that
                    # would keep the order in flight until its request could no longer arrive.
                    # A pause (rate limit, ban, credentials) refuses with its own reason.
                    for coid in client_order_ids:
                        tracker.forget(coid)
                    reason = rest.pause_reason(exc) or "CIRCUIT_OPEN"
                    detail = rest.credentials.message("submit") if reason == AUTHENTICATION else f"{op}: {exc}"
                    raise OrderRejected(reason, detail) from None
                raise rest.unavailable(exc, op) from None
        rest.credentials.accepted()
        return raw

    def emit_reply_trades(self, raw: Any, vo: VenueOrder) -> None:
        """Hand out the executions a placement reply carries (Binance FULL replies)."""
        trades = raw.get("trades") if isinstance(raw, Mapping) else None
        if not isinstance(trades, list):
            return
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
                    vo.client_order_id,
                )

    def reply(self, raw: Any, client_order_id: str, op: str) -> VenueOrder:
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
        vo = self.reply(raw, client_order_id, "cancel")
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
        return self.reply(raw, client_order_id, "query")

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
