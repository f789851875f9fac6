"""Binance SPOT wire payloads (REST bodies, stream events, user-data events).

Shapes follow Binance spot's REST and stream payloads: decimals are strings, ids and
times are integers, market ids are upper case inside payloads.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from adapters.binance_sim.account import Account
from adapters.binance_sim.config import SymbolConfig
from adapters.binance_sim.decimals import ZERO, fmt, quantize_places
from adapters.binance_sim.market_data import Candle, PublicTrade, RollingStats, next_bucket
from adapters.binance_sim.matching import DepthDelta, Level
from adapters.binance_sim.orders import Fill, Order

Json = dict[str, Any]


# ---------------------------------------------------------------- exchange info
def symbol_info(cfg: SymbolConfig) -> Json:
    """One entry of ``exchangeInfo.symbols`` (no ``contractType``: that would make it a contract)."""
    return {
        "symbol": cfg.symbol,
        "status": "TRADING",
        "baseAsset": cfg.base_asset,
        "baseAssetPrecision": cfg.base_asset_precision,
        "quoteAsset": cfg.quote_asset,
        "quotePrecision": cfg.quote_asset_precision,
        "quoteAssetPrecision": cfg.quote_asset_precision,
        "baseCommissionPrecision": cfg.base_asset_precision,
        "quoteCommissionPrecision": cfg.quote_asset_precision,
        "orderTypes": list(cfg.order_types),
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": fmt(cfg.min_price),
                "maxPrice": fmt(cfg.max_price),
                "tickSize": fmt(cfg.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": fmt(cfg.min_qty),
                "maxQty": fmt(cfg.max_qty),
                "stepSize": fmt(cfg.step_size),
            },
            {"filterType": "ICEBERG_PARTS", "limit": cfg.iceberg_parts},
            {
                "filterType": "NOTIONAL",
                "minNotional": fmt(cfg.min_notional),
                "applyMinToMarket": True,
                "maxNotional": fmt(cfg.max_notional),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": cfg.min_trailing_delta,
                "maxTrailingAboveDelta": cfg.max_trailing_delta,
                "minTrailingBelowDelta": cfg.min_trailing_delta,
                "maxTrailingBelowDelta": cfg.max_trailing_delta,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "NONE"],
    }


def exchange_info(symbols: Iterable[SymbolConfig], server_time: int, weight_limit: int, order_limit: int) -> Json:
    """Full ``GET /api/v3/exchangeInfo`` body."""
    return {
        "timezone": "UTC",
        "serverTime": server_time,
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_limit},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": order_limit},
        ],
        "exchangeFilters": [],
        "symbols": [symbol_info(s) for s in symbols],
    }


# ---------------------------------------------------------------- account
def account(acct: Account, update_time: int) -> Json:
    """``GET /api/v3/account`` body."""
    maker = int(acct.maker_fee_bps)
    taker = int(acct.taker_fee_bps)
    return {
        "makerCommission": maker,
        "takerCommission": taker,
        "buyerCommission": 0,
        "sellerCommission": 0,
        "commissionRates": {
            "maker": fmt(acct.maker_fee_bps / 10_000),
            "taker": fmt(acct.taker_fee_bps / 10_000),
            "buyer": "0.00000000",
            "seller": "0.00000000",
        },
        "canTrade": True,
        "canWithdraw": True,
        "canDeposit": True,
        "brokered": False,
        "requireSelfTradePrevention": False,
        "preventSor": False,
        "updateTime": update_time,
        "accountType": "SPOT",
        "balances": [
            {"asset": asset, "free": fmt(bal.free), "locked": fmt(bal.locked)} for asset, bal in acct.snapshot()
        ],
        "permissions": ["SPOT"],
        "uid": 1,
    }


# ---------------------------------------------------------------- orders
def _order_core(order: Order) -> Json:
    return {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": order.order_list_id,
        "clientOrderId": order.client_order_id,
        "price": fmt(order.price),
        "origQty": fmt(order.orig_qty),
        "executedQty": fmt(order.executed_qty),
        "origQuoteOrderQty": fmt(order.orig_quote_qty),
        "cummulativeQuoteQty": fmt(order.cum_quote),
        "status": str(order.status),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
    }


def _conditional(order: Order, out: Json) -> Json:
    """Binance's conditional order fields: stop price (stop types), iceberg, trailing stop."""
    if order.is_stop:
        out["stopPrice"] = fmt(order.stop_price)
    if order.iceberg_qty > 0:
        out["icebergQty"] = fmt(order.iceberg_qty)
    if order.trailing_delta > 0:
        out["trailingDelta"] = order.trailing_delta
        out["trailingTime"] = order.trailing_time_ms
    return out


def order_query(order: Order) -> Json:
    """An order as ``GET /order``, ``openOrders`` and ``allOrders`` show it."""
    out = _order_core(order)
    out.update(
        {
            "stopPrice": fmt(order.stop_price),
            "icebergQty": fmt(order.iceberg_qty),
            "time": order.time_ms,
            "updateTime": order.update_time_ms,
            "isWorking": order.is_working,
            "workingTime": order.working_time_ms,
            "selfTradePreventionMode": order.self_trade_prevention,
        }
    )
    return _conditional(order, out)


def order_result(order: Order, fills: list[Fill], resp_type: str, transact_time: int) -> Json:
    """``POST /order`` body for ``newOrderRespType`` ACK, RESULT or FULL."""
    if resp_type == "ACK":
        return {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": order.order_list_id,
            "clientOrderId": order.client_order_id,
            "transactTime": transact_time,
        }
    out = _order_core(order)
    out["transactTime"] = transact_time
    out["workingTime"] = order.working_time_ms
    out["selfTradePreventionMode"] = order.self_trade_prevention
    _conditional(order, out)
    if resp_type == "FULL":
        out["fills"] = [
            {
                "price": fmt(f.price),
                "qty": fmt(f.qty),
                "commission": fmt(f.commission),
                "commissionAsset": f.commission_asset,
                "tradeId": f.trade_id,
            }
            for f in fills
        ]
    return out


def cancel_result(order: Order, cancel_client_id: str, transact_time: int) -> Json:
    """``DELETE /order`` body: ``clientOrderId`` is the cancel's id, the original is in ``origClientOrderId``."""
    out = _order_core(order)
    out["origClientOrderId"] = order.client_order_id
    out["clientOrderId"] = cancel_client_id
    out["transactTime"] = transact_time
    out["selfTradePreventionMode"] = order.self_trade_prevention
    return _conditional(order, out)


def my_trade(fill: Fill) -> Json:
    """A ``myTrades`` element."""
    return {
        "symbol": fill.symbol,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": fill.order_list_id,
        "price": fmt(fill.price),
        "qty": fmt(fill.qty),
        "quoteQty": fmt(fill.quote_qty),
        "commission": fmt(fill.commission),
        "commissionAsset": fill.commission_asset,
        "time": fill.time_ms,
        "isBuyer": fill.side == "BUY",
        "isMaker": fill.is_maker,
        "isBestMatch": True,
    }


# ---------------------------------------------------------------- user data events
def execution_report(
    order: Order,
    *,
    exec_type: str,
    event_time: int,
    fill: Fill | None = None,
    cancel_client_id: str | None = None,
) -> Json:
    """An ``executionReport`` (§5.4); ``n`` is the commission of this fill only.

    Trailing stops add ``d`` (trailing delta) and ``D`` (trailing time).
    """
    if cancel_client_id is not None:
        client_id, orig_client_id = cancel_client_id, order.client_order_id
    else:
        client_id, orig_client_id = order.client_order_id, ""
    report: Json = {
        "e": "executionReport",
        "E": event_time,
        "s": order.symbol,
        "c": client_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": fmt(order.orig_qty),
        "p": fmt(order.price),
        "P": fmt(order.stop_price),
        "F": fmt(order.iceberg_qty),
        "g": order.order_list_id,
        "C": orig_client_id,
        "x": exec_type,
        "X": str(order.status),
        "r": "NONE",
        "i": order.order_id,
        "l": fmt(fill.qty if fill else ZERO),
        "z": fmt(order.executed_qty),
        "L": fmt(fill.price if fill else ZERO),
        "n": fmt(fill.commission if fill else ZERO),
        "N": fill.commission_asset if fill else None,
        "T": fill.time_ms if fill else event_time,
        "t": fill.trade_id if fill else -1,
        "v": 0,
        "I": 0,
        "w": order.is_open and order.is_working,
        "m": fill.is_maker if fill else False,
        "M": False,
        "O": order.time_ms,
        "Z": fmt(order.cum_quote),
        "Y": fmt(fill.quote_qty if fill else ZERO),
        "Q": fmt(order.orig_quote_qty),
        "W": order.working_time_ms,
        "V": order.self_trade_prevention,
    }
    if order.trailing_delta > 0:
        report["d"] = order.trailing_delta
        report["D"] = order.trailing_time_ms
    return report


def account_position(acct: Account, assets: Iterable[str], event_time: int) -> Json:
    """``outboundAccountPosition`` listing ``assets``."""
    balances = []
    for asset in assets:
        bal = acct.balance(asset)
        balances.append({"a": asset, "f": fmt(bal.free), "l": fmt(bal.locked)})
    return {"e": "outboundAccountPosition", "E": event_time, "u": acct.update_time_ms, "B": balances}


def balance_update(asset: str, delta: Decimal, event_time: int) -> Json:
    """``balanceUpdate`` (deposit/withdrawal/transfer)."""
    return {"e": "balanceUpdate", "E": event_time, "a": asset, "d": fmt(delta), "T": event_time}


# ---------------------------------------------------------------- market data (REST)
def depth_snapshot(update_id: int, bids: list[Level], asks: list[Level]) -> Json:
    """``GET /depth`` body; deliberately without ``T``/``E`` (see §2.4.2)."""
    return {
        "lastUpdateId": update_id,
        "bids": [[fmt(p), fmt(q)] for p, q in bids],
        "asks": [[fmt(p), fmt(q)] for p, q in asks],
    }


def ticker_24h(symbol: str, stats: RollingStats, bid: Level | None, ask: Level | None) -> Json:
    """A ``ticker/24hr`` object."""
    change = stats.last - stats.open
    pct = (change / stats.open * 100) if stats.open else ZERO
    wavg = quantize_places(stats.quote_volume / stats.volume, 8) if stats.volume else stats.last
    return {
        "symbol": symbol,
        "priceChange": fmt(change),
        "priceChangePercent": f"{pct:.3f}",
        "weightedAvgPrice": fmt(wavg),
        "prevClosePrice": fmt(stats.prev_close),
        "lastPrice": fmt(stats.last),
        "lastQty": fmt(stats.last_qty),
        "bidPrice": fmt(bid[0] if bid else ZERO),
        "bidQty": fmt(bid[1] if bid else ZERO),
        "askPrice": fmt(ask[0] if ask else ZERO),
        "askQty": fmt(ask[1] if ask else ZERO),
        "openPrice": fmt(stats.open),
        "highPrice": fmt(stats.high),
        "lowPrice": fmt(stats.low),
        "volume": fmt(stats.volume),
        "quoteVolume": fmt(stats.quote_volume),
        "openTime": stats.open_time,
        "closeTime": stats.close_time,
        "firstId": stats.first_id,
        "lastId": stats.last_id,
        "count": stats.count,
    }


def kline_row(candle: Candle, tf: str) -> list[Any]:
    """One ``GET /klines`` row (12 elements)."""
    return [
        candle.open_time,
        fmt(candle.open),
        fmt(candle.high),
        fmt(candle.low),
        fmt(candle.close),
        fmt(candle.volume),
        next_bucket(tf, candle.open_time) - 1,
        fmt(candle.quote_volume),
        candle.trades,
        fmt(candle.taker_buy_base),
        fmt(candle.taker_buy_quote),
        "0",
    ]


def agg_trade(trade: PublicTrade) -> Json:
    """One ``GET /aggTrades`` element (every print is its own aggregate here)."""
    return {
        "a": trade.trade_id,
        "p": fmt(trade.price),
        "q": fmt(trade.qty),
        "f": trade.trade_id,
        "l": trade.trade_id,
        "T": trade.time_ms,
        "m": trade.buyer_is_maker,
        "M": True,
    }


def recent_trade(trade: PublicTrade) -> Json:
    """One ``GET /trades`` element."""
    return {
        "id": trade.trade_id,
        "price": fmt(trade.price),
        "qty": fmt(trade.qty),
        "quoteQty": fmt(trade.price * trade.qty),
        "time": trade.time_ms,
        "isBuyerMaker": trade.buyer_is_maker,
        "isBestMatch": True,
    }


# ---------------------------------------------------------------- market data (streams)
def ws_trade(symbol: str, trade: PublicTrade, event_time: int) -> Json:
    """``<sym>@trade`` event."""
    return {
        "e": "trade",
        "E": event_time,
        "s": symbol,
        "t": trade.trade_id,
        "p": fmt(trade.price),
        "q": fmt(trade.qty),
        "T": trade.time_ms,
        "m": trade.buyer_is_maker,
        "M": True,
    }


def ws_agg_trade(symbol: str, trade: PublicTrade, event_time: int) -> Json:
    """``<sym>@aggTrade`` event."""
    out = agg_trade(trade)
    out.update({"e": "aggTrade", "E": event_time, "s": symbol})
    return out


def ws_book_ticker(symbol: str, update_id: int, bid: Level | None, ask: Level | None) -> Json:
    """``<sym>@bookTicker`` event: spot has no ``e``/``E``."""
    return {
        "u": update_id,
        "s": symbol,
        "b": fmt(bid[0] if bid else ZERO),
        "B": fmt(bid[1] if bid else ZERO),
        "a": fmt(ask[0] if ask else ZERO),
        "A": fmt(ask[1] if ask else ZERO),
    }


def ws_ticker(symbol: str, stats: RollingStats, bid: Level | None, ask: Level | None, event_time: int) -> Json:
    """``<sym>@ticker`` (``24hrTicker``) event."""
    rest = ticker_24h(symbol, stats, bid, ask)
    return {
        "e": "24hrTicker",
        "E": event_time,
        "s": symbol,
        "p": rest["priceChange"],
        "P": rest["priceChangePercent"],
        "w": rest["weightedAvgPrice"],
        "x": rest["prevClosePrice"],
        "c": rest["lastPrice"],
        "Q": rest["lastQty"],
        "b": rest["bidPrice"],
        "B": rest["bidQty"],
        "a": rest["askPrice"],
        "A": rest["askQty"],
        "o": rest["openPrice"],
        "h": rest["highPrice"],
        "l": rest["lowPrice"],
        "v": rest["volume"],
        "q": rest["quoteVolume"],
        "O": stats.open_time,
        "C": stats.close_time,
        "F": stats.first_id,
        "L": stats.last_id,
        "n": stats.count,
    }


def ws_mini_ticker(symbol: str, stats: RollingStats, event_time: int) -> Json:
    """``<sym>@miniTicker`` (``24hrMiniTicker``) event."""
    return {
        "e": "24hrMiniTicker",
        "E": event_time,
        "s": symbol,
        "c": fmt(stats.last),
        "o": fmt(stats.open),
        "h": fmt(stats.high),
        "l": fmt(stats.low),
        "v": fmt(stats.volume),
        "q": fmt(stats.quote_volume),
    }


def ws_kline(symbol: str, tf: str, candle: Candle, closed: bool, event_time: int) -> Json:
    """``<sym>@kline_<tf>`` event."""
    return {
        "e": "kline",
        "E": event_time,
        "s": symbol,
        "k": {
            "t": candle.open_time,
            "T": next_bucket(tf, candle.open_time) - 1,
            "s": symbol,
            "i": tf,
            "f": candle.first_trade_id,
            "L": candle.last_trade_id,
            "o": fmt(candle.open),
            "c": fmt(candle.close),
            "h": fmt(candle.high),
            "l": fmt(candle.low),
            "v": fmt(candle.volume),
            "n": candle.trades,
            "x": closed,
            "q": fmt(candle.quote_volume),
            "V": fmt(candle.taker_buy_base),
            "Q": fmt(candle.taker_buy_quote),
            "B": "0",
        },
    }


def ws_depth_update(symbol: str, delta: DepthDelta, event_time: int) -> Json:
    """``depthUpdate`` event covering update ids ``[U, u]``."""
    return {
        "e": "depthUpdate",
        "E": event_time,
        "s": symbol,
        "U": delta.first_update_id,
        "u": delta.last_update_id,
        "b": [[fmt(p), fmt(q)] for p, q in delta.bids],
        "a": [[fmt(p), fmt(q)] for p, q in delta.asks],
    }
