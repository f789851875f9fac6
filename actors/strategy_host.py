"""The strategy host actor: runs one strategy instance.

It reads three channels — order events (and risk denials), bars, and conflated trades /
quotes — and calls the strategy's callbacks; what the strategy emits (an ``OrderIntent``
or an ``OrderList``) is sent, in order, to the intent channel (policy ``block``: never
dropped; the host waits for room).

Order of delivery: whenever several channels have items, order events go first (a fill
changes what the strategy may do next), then bars, then trades/quotes; within a channel,
arrival order. With the same input the same callbacks run in the same order, so a replay
produces the same intents.

A callback that raises is logged with its context (strategy, callback, symbol) and makes
the actor fail with ``StrategyCallbackError``; its supervisor decides about a restart
(a restart builds a fresh strategy instance). Other strategies run in their own hosts and
are not affected.

The host ends normally when both market-data channels are closed and drained (the feed
unsubscribed it or a finite replay ended with ``on_end = "stop"``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from actors.feed import Feed, MarketData
from actors.kernel.actor import Actor
from actors.kernel.channel import Channel, wait_any
from actors.model.market import Bar, Quote, Trade
from actors.model.orders import OrderDenied, OrderEvent
from actors.strategy_api import PortfolioView, Strategy, StrategyContext, Submission
from actors.strategy_portfolio import TrackingPortfolio

OrderFeedback = OrderEvent | OrderDenied


class StrategyCallbackError(RuntimeError):
    """A strategy callback raised; ``__cause__`` is the original exception."""

    def __init__(self, strategy: str, callback: str, symbol: str | None, cause: BaseException | None = None) -> None:
        self.strategy = strategy
        self.callback = callback
        self.symbol = symbol
        where = f" ({symbol})" if symbol else ""
        what = f": {cause!r}" if cause is not None else ""
        super().__init__(f"strategy {strategy!r}: {callback}{where} raised{what}")


class StrategyHost(Actor):
    """Runs one strategy: market data and order events in, intents out."""

    kind = "strategy"
    batch_size = 256

    def __init__(
        self,
        context: StrategyContext,
        strategy_cls: type[Strategy[Any]],
        *,
        market: Channel[MarketData],
        bars: Channel[Bar],
        order_events: Channel[OrderFeedback],
        intents: Channel[Submission],
        portfolio: PortfolioView | None = None,
    ) -> None:
        super().__init__(f"strategy.{context.name}")
        self.log = self.log.bind(strategy=context.name)
        # Validate params now so a bad config fails at wiring time, not at the first start.
        strategy_cls.validate_params(context.params, strategy=context.name)
        self.context = context
        self.strategy_cls = strategy_cls
        self.market = market
        self.bars = bars
        self.order_events = order_events
        self.intents = intents
        # Without a view from the order manager, positions are tracked from this strategy's
        # own order events; the tracker outlives restarts of the strategy instance.
        self._tracking: TrackingPortfolio | None = None
        self.portfolio: PortfolioView
        if isinstance(portfolio, TrackingPortfolio):
            # A tracking view handed in (e.g. seeded from the store) is kept up to date here.
            self._tracking = self.portfolio = portfolio
        elif portfolio is None:
            self._tracking = self.portfolio = TrackingPortfolio()
        else:
            self.portfolio = portfolio
        self.strategy: Strategy[Any] | None = None
        self._out: list[Submission] = []
        self.intents_sent = 0
        self._idle_waiters: list[asyncio.Future[None]] = []

    @classmethod
    def attach(
        cls,
        feed: Feed,
        context: StrategyContext,
        strategy_cls: type[Strategy[Any]],
        *,
        order_events: Channel[OrderFeedback],
        intents: Channel[Submission],
        portfolio: PortfolioView | None = None,
    ) -> StrategyHost:
        """Subscribe to ``feed`` for the strategy's symbols and timeframe, and build its host."""
        sub = feed.subscribe(
            context.name,
            symbols=context.symbols,
            timeframes=(context.timeframe,),
            trades=strategy_cls.subscribe_trades,
            quotes=strategy_cls.subscribe_quotes,
        )
        return cls(context, strategy_cls, market=sub.market, bars=sub.bars, order_events=order_events,
                   intents=intents, portfolio=portfolio)

    def reconfigure(self, params: Mapping[str, Any]) -> None:
        """Validate new params (raising StrategyParamsError) and apply them at the next bar.

        The new params are also kept for a restart of the strategy.
        """
        self.strategy_cls.validate_params(params, strategy=self.context.name)
        self.context = self.context.with_params(params)
        if self.strategy is not None:
            self.strategy.reconfigure(params)
        # Operators (and the reload tests) see that the running instance took the new params.
        self.log.info("strategy.reconfigured", params=dict(params), running=self.strategy is not None)

    async def wait_idle(self) -> None:
        """Wait until the host next runs out of input: everything delivered so far was handled
        and the intents it produced were sent (or the host stopped).

        For lockstep replays and tests; costs nothing while nobody waits.
        """
        await self.next_idle()

    def next_idle(self) -> asyncio.Future[None]:
        """A future resolved the next time the host runs out of input (registered at once)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._idle_waiters.append(fut)
        return fut

    def _notify_idle(self) -> None:
        waiters = self._idle_waiters
        if waiters:
            self._idle_waiters = []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def pending_work(self) -> int:
        """Items waiting in the three input channels plus intents not yet sent."""
        return len(self.market) + len(self.bars) + len(self.order_events) + len(self._out)

    # -- lifecycle -----------------------------------------------------------------------
    async def on_start(self) -> None:
        """Build a fresh strategy instance and call its on_start."""
        self._out = []
        self.strategy = self.strategy_cls(self.context, emitter=self._out.append, portfolio=self.portfolio)
        self._call("on_start", None, self.strategy.on_start)
        await self._flush_intents()

    async def on_stop(self) -> None:
        """Call the strategy's on_stop (errors are logged, not raised)."""
        strategy = self.strategy
        if strategy is None:
            return
        try:
            strategy.on_stop()
        except Exception as exc:
            self.log.error("strategy.callback_failed", callback="on_stop", error=repr(exc), exc_info=exc)
        if self._out:
            self.log.warning("strategy.intents_discarded_at_stop", count=len(self._out))
            self._out.clear()

    def _call(self, callback: str, symbol: str | None, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            self.log.error("strategy.callback_failed", callback=callback, symbol=symbol, error=repr(exc),
                           exc_info=exc)
            raise StrategyCallbackError(self.context.name, callback, symbol, exc) from exc

    # -- dispatch ------------------------------------------------------------------------
    def _dispatch_event(self, ev: OrderFeedback) -> None:
        strategy = self.strategy
        assert strategy is not None
        if self._tracking is not None:
            self._tracking.apply(ev)
        symbol = ev.intent.symbol if isinstance(ev, OrderDenied) else ev.symbol
        self._call("on_order_event", symbol, strategy.handle_order_event, ev)

    def _dispatch_bar(self, bar: Bar) -> None:
        strategy = self.strategy
        assert strategy is not None
        self._call("on_bar", bar.symbol, strategy.handle_bar, bar)

    def _dispatch_market(self, ev: MarketData) -> None:
        strategy = self.strategy
        assert strategy is not None
        if type(ev) is Trade:
            self._call("on_trade", ev.symbol, strategy.handle_trade, ev)
        elif type(ev) is Quote:
            self._call("on_quote", ev.symbol, strategy.handle_quote, ev)

    async def _flush_intents(self) -> None:
        out = self._out
        while out:
            intent = out.pop(0)
            await self.intents.send(intent)
            self.intents_sent += 1

    # -- main loop -----------------------------------------------------------------------
    async def run(self) -> None:
        """Deliver input in priority order; wait on all three channels when idle."""
        chans: tuple[Channel[Any], ...] = (self.order_events, self.bars, self.market)
        handlers = (self._dispatch_event, self._dispatch_bar, self._dispatch_market)
        open_ = [True, True, True]
        batch = self.batch_size
        try:
            while True:
                n = 0
                for i in range(3):
                    if open_[i]:
                        ch = chans[i]
                        handle = handlers[i]
                        items = ch.drain(batch)
                        k = 0
                        try:
                            # Intents go out right after the callback that emitted them, so a
                            # later failing callback cannot take them down with it.
                            for item in items:
                                k += 1
                                handle(item)
                                n += 1
                                if self._out:
                                    await self._flush_intents()
                        except BaseException:
                            if i == 0 and self._tracking is not None:
                                # Order events taken but not delivered (we are failing): keep
                                # positions right.
                                for ev in items[k:]:
                                    self._tracking.apply(ev)
                            raise
                        if ch.closed and not len(ch):
                            open_[i] = False
                if n:
                    self.beat(n)
                    continue
                if not open_[1] and not open_[2]:
                    return
                if self._idle_waiters:
                    self._notify_idle()
                await wait_any([chans[i] for i in range(3) if open_[i]])
        finally:
            self._notify_idle()
