"""StrategyHost: a failing strategy fails its own actor only; delivery order; intents out."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs

from actors.kernel.channel import Channel
from actors.model.market import Bar, Quote, Trade
from actors.model.orders import Fill, OrderDenied, OrderEvent, OrderIntent, OrderStatus, Side
from actors.strategies import EmaCross
from actors.strategy_api import Strategy, StrategyContext
from actors.strategy_host import StrategyCallbackError, StrategyHost

SYM = "XRP/ETH"


class BuyEveryBar(Strategy[Any]):
    """Test strategy: one buy per bar; records what it saw."""

    subscribe_trades = True

    def on_start(self) -> None:
        self.seen: list[str] = []

    def on_bar(self, bar: Bar) -> None:
        self.seen.append(f"bar:{bar.ts_ms}")
        self.buy(bar.symbol, size=1, tag=str(bar.ts_ms))

    def on_trade(self, trade: Trade) -> None:
        self.seen.append(f"trade:{trade.ts_ms}")

    def on_order_event(self, event: OrderEvent | OrderDenied) -> None:
        self.seen.append("event")


class ExplodesOnThirdBar(BuyEveryBar):
    """Test strategy: raises in on_bar on the third bar."""

    def on_bar(self, bar: Bar) -> None:
        if bar.ts_ms == 120_000:
            raise ZeroDivisionError("boom")
        super().on_bar(bar)


def _bar(i: int) -> Bar:
    return Bar(symbol=SYM, ts_ms=i * 60_000, timeframe="1m", open=1.0, high=1.0, low=1.0, close=1.0, volume=1.0)


def _host(name: str, cls: type[Strategy[Any]], intents: Channel[OrderIntent]) -> StrategyHost:
    return StrategyHost(
        StrategyContext(name, (SYM,), "1m"), cls,
        market=Channel(f"md.{name}", 16, "conflate", key=lambda e: (e.symbol, type(e))),
        bars=Channel(f"bars.{name}", 16), order_events=Channel(f"ev.{name}", 16), intents=intents,
    )


async def test_strategy_that_raises_does_not_stop_another_strategy() -> None:
    intents: Channel[OrderIntent] = Channel("intents", 1024)
    with capture_logs() as logs:
        good = _host("good", BuyEveryBar, intents)
        bad = _host("bad", ExplodesOnThirdBar, intents)
        t_good = asyncio.create_task(good.main())
        t_bad = asyncio.create_task(bad.main())
        for i in range(6):
            await good.bars.send(_bar(i))
            await bad.bars.send(_bar(i))
            await asyncio.sleep(0)
        with pytest.raises(StrategyCallbackError) as info:
            await asyncio.wait_for(t_bad, 1.0)
        for i in range(6, 10):  # the good strategy keeps going after the other failed
            await good.bars.send(_bar(i))
        good.bars.close()
        good.market.close()
        await asyncio.wait_for(t_good, 1.0)
    err = info.value
    assert (err.strategy, err.callback, err.symbol) == ("bad", "on_bar", SYM)
    assert isinstance(err.__cause__, ZeroDivisionError)
    failed = [e for e in logs if e["event"] == "strategy.callback_failed"]
    assert failed and failed[0]["strategy"] == "bad" and failed[0]["callback"] == "on_bar"
    assert failed[0]["symbol"] == SYM and failed[0]["log_level"] == "error"
    sent = intents.drain(100)
    assert [i.tag for i in sent if i.strategy == "good"] == [str(i * 60_000) for i in range(10)]
    assert [i.tag for i in sent if i.strategy == "bad"] == ["0", "60000"]
    assert good.state == "stopped" and bad.state == "failed"


async def test_host_delivers_order_events_then_bars_then_market_data() -> None:
    intents: Channel[OrderIntent] = Channel("intents", 1024)
    host = _host("h", BuyEveryBar, intents)
    host.market.try_send(Trade(symbol=SYM, ts_ms=5, price=1.0, size=1.0, side="buy"))
    host.bars.try_send(_bar(0))
    host.order_events.try_send(OrderEvent(client_order_id="c1", strategy="h", symbol=SYM,
                                          status=OrderStatus.ACCEPTED))
    host.market.close()
    host.bars.close()
    await asyncio.wait_for(host.main(), 1.0)
    assert host.strategy is not None
    assert host.strategy.seen == ["event", "bar:0", "trade:5"]  # type: ignore[attr-defined]
    assert host.intents_sent == 1


async def test_host_tracks_positions_from_fills_across_restarts() -> None:
    intents: Channel[OrderIntent] = Channel("intents", 1024)
    host = _host("h", BuyEveryBar, intents)

    fill = Fill(venue="paper", trade_id="t1", client_order_id="c1", symbol=SYM, side=Side.BUY,
                price=Decimal("1"), size=Decimal("2"))
    host.order_events.try_send(OrderEvent(client_order_id="c1", strategy="h", symbol=SYM,
                                          status=OrderStatus.FILLED, fill=fill))
    host.market.close()
    host.bars.close()
    await host.main()
    assert host.portfolio.position(SYM) == Decimal(2)


async def test_host_tracks_positions_net_of_base_asset_fees() -> None:
    # A buy's fee in the asset bought lowers what is held; a sell's base fee is taken on top;
    # a fee in the quote or a third asset leaves the traded quantity held. Redeliveries count once.
    intents: Channel[OrderIntent] = Channel("intents", 1024)
    host = _host("h", BuyEveryBar, intents)
    fills = [("b1", Side.BUY, "10", "0.01", "XRP"), ("b2", Side.BUY, "5", "0.001", "ETH"),
             ("b3", Side.BUY, "1", "0.001", "BNB"), ("s1", Side.SELL, "6", "0.006", "XRP"),
             ("s1", Side.SELL, "6", "0.006", "XRP")]
    for trade_id, side, size, fee, ccy in fills:
        fill = Fill(venue="paper", trade_id=trade_id, client_order_id=trade_id, symbol=SYM, side=side,
                    price=Decimal("1"), size=Decimal(size), fee=Decimal(fee), fee_currency=ccy)
        host.order_events.try_send(OrderEvent(client_order_id=trade_id, strategy="h", symbol=SYM,
                                              status=OrderStatus.FILLED, fill=fill))
    host.market.close()
    host.bars.close()
    await host.main()
    assert host.portfolio.position(SYM) == Decimal("9.99") + 5 + 1 - Decimal("6.006")


async def test_host_reconfigure_validates_and_reaches_the_running_strategy() -> None:
    intents: Channel[OrderIntent] = Channel("intents", 1024)
    host = StrategyHost(StrategyContext("e", (SYM,), "1m", {"fast": 2, "slow": 4}), EmaCross,
                        market=Channel("m", 4, "conflate", key=lambda e: e.symbol), bars=Channel("b", 4),
                        order_events=Channel("o", 4), intents=intents)
    task = asyncio.create_task(host.main())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match=r"params\.fast"):
        host.reconfigure({"fast": 5, "slow": 4})
    host.reconfigure({"fast": 2, "slow": 4, "size": "2"})
    assert host.strategy is not None and host.strategy.reconfigure_pending
    host.market.close()
    host.bars.close()
    await asyncio.wait_for(task, 1.0)
    assert host.context.params["size"] == "2"


async def test_host_with_quote_subscription_receives_quotes() -> None:
    class Quotes(BuyEveryBar):
        subscribe_quotes = True

        def on_quote(self, quote: Quote) -> None:
            self.seen.append(f"quote:{quote.mid}")

    host = _host("q", Quotes, Channel("intents", 8))
    host.market.try_send(Quote(symbol=SYM, ts_ms=1, bid=1.0, ask=3.0))
    host.market.close()
    host.bars.close()
    await host.main()
    assert host.strategy is not None and host.strategy.seen == ["quote:2.0"]  # type: ignore[attr-defined]


def test_host_rejects_bad_params_at_construction() -> None:
    with pytest.raises(ValueError, match=r"params\.slow"):
        StrategyHost(StrategyContext("e", (SYM,), "1m", {"slow": "x"}), EmaCross,
                     market=Channel("m", 4, "conflate", key=lambda e: e.symbol), bars=Channel("b", 4),
                     order_events=Channel("o", 4), intents=Channel("i", 4))


def test_intents_are_msgspec_encodable() -> None:
    intent = OrderIntent(strategy="s", symbol=SYM, side=Side.BUY, size=Decimal("1"))
    assert msgspec.json.decode(msgspec.json.encode(intent), type=OrderIntent) == intent
