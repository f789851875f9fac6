"""Actor base: lifecycle, an inbox, a progress heartbeat and a bound logger.

An actor owns its state. It changes another actor's state only by sending it a message on
a channel. Besides channels, exactly two things are allowed between actors, both reads or
one-way observations that cannot change the other's state:

* reading an immutable snapshot the owner publishes (``snapshot()``, the order manager's
  ``portfolio`` view that the risk gate reads once per change);
* the feed's synchronous taps: the paper venue, the risk gate and the market clock observe
  every market event before strategies do, and must return at once.

The supervisor runs ``main()`` in a task; subclasses implement ``run()`` (or ``handle()`` for the
default inbox loop) and call ``beat()`` whenever they make progress, which is what the
watchdog reads to tell a busy actor from a stalled one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from enum import StrEnum
from typing import Any, Generic, TypeVar

import structlog

from actors.kernel.channel import Channel, ChannelClosed
from actors.kernel.clock import monotonic

M = TypeVar("M")
R = TypeVar("R")


class ActorState(StrEnum):
    """Lifecycle states."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class Actor:
    """Base class of every actor.

    ``kind`` names the role (feed, strategy, risk_gate, order_manager, reconciler,
    watchdog) for ordering and reporting; ``name`` identifies the instance.
    """

    kind: str = "actor"

    def __init__(self, name: str, inbox: Channel[Any] | None = None) -> None:
        self.name = name
        self.inbox = inbox
        self.state = ActorState.STOPPED
        self.log: Any = structlog.get_logger("aaiti").bind(actor=name)
        self.last_progress = monotonic()
        self.processed = 0
        self.error: BaseException | None = None

    # -- progress ----------------------------------------------------------------------
    def beat(self, n: int = 1) -> None:
        """Record progress: ``n`` units of work done just now."""
        self.last_progress = monotonic()
        self.processed += n

    def pending_work(self) -> int:
        """Work waiting for this actor (default: inbox depth). Used for stall detection."""
        return len(self.inbox) if self.inbox is not None else 0

    def heartbeat_age(self, now: float | None = None) -> float:
        """Seconds since the last beat()."""
        return (monotonic() if now is None else now) - self.last_progress

    # -- lifecycle hooks ---------------------------------------------------------------
    async def on_start(self) -> None:
        """Called before run(); failures count as a failed start."""

    async def run(self) -> None:
        """Main loop. Default: handle inbox messages until the inbox closes."""
        if self.inbox is None:
            raise NotImplementedError(f"{type(self).__name__} has no inbox; override run()")
        inbox = self.inbox
        while True:
            try:
                msg = await inbox.recv()
            except ChannelClosed:
                return
            await self.handle(msg)
            self.beat()

    async def handle(self, msg: Any) -> None:
        """Handle one inbox message."""
        raise NotImplementedError

    async def on_stop(self) -> None:
        """Called after run() ends, fails or is cancelled; release resources here."""

    # -- driven by the supervisor --------------------------------------------------------
    async def main(self) -> None:
        """Run the whole lifecycle. Exceptions propagate to the supervisor."""
        self.state = ActorState.STARTING
        self.error = None
        self.last_progress = monotonic()
        try:
            await self.on_start()
            self.state = ActorState.RUNNING
            self.beat(0)
            await self.run()
        except asyncio.CancelledError:
            self.state = ActorState.STOPPING
            await self._stop_hook()
            self.state = ActorState.STOPPED
            raise
        except BaseException as exc:
            self.state = ActorState.FAILED
            self.error = exc
            await self._stop_hook()
            self.state = ActorState.FAILED
            raise
        self.state = ActorState.STOPPING
        await self._stop_hook()
        self.state = ActorState.STOPPED

    async def _stop_hook(self) -> None:
        try:
            await self.on_stop()
        except Exception as exc:
            self.log.error("actor.on_stop_failed", error=repr(exc))


class MessageActor(Actor, Generic[M]):
    """An actor that processes its inbox in batches: one wake-up, many messages.

    Subclasses implement ``handle``. Batching keeps the per-message cost close to a
    raw queue hop when a burst arrives; the heartbeat is updated once per batch.
    """

    batch_size: int = 256

    def __init__(self, name: str, inbox: Channel[M]) -> None:
        super().__init__(name, inbox)
        self._inbox: Channel[M] = inbox

    async def run(self) -> None:
        """Wait for a message, then drain a batch and handle each."""
        inbox = self._inbox
        handle = self.handle
        while True:
            try:
                first = await inbox.recv()
            except ChannelClosed:
                return
            await handle(first)
            batch = inbox.drain(self.batch_size)
            for msg in batch:
                await handle(msg)
            self.beat(1 + len(batch))

    async def handle(self, msg: M) -> None:
        """Handle one message."""
        raise NotImplementedError


class _Continuation(Coroutine[Any, Any, R]):
    """The rest of a coroutine whose first step already ran (``start_eager_task``).

    A task drives it like any coroutine: its first ``send`` hands the task what the first
    step yielded (the future the coroutine waits on, or None for a bare yield), or ends with
    the outcome of a first step that already finished; after that, every ``send``/``throw``
    goes straight to the coroutine.
    """

    __slots__ = ("_coro", "_first", "_outcome", "_started")

    def __init__(self, coro: Coroutine[Any, Any, R], first: Any, outcome: BaseException | None) -> None:
        self._coro = coro
        self._first = first
        self._outcome = outcome  # StopIteration (finished) or the exception the first step raised
        self._started = False

    def send(self, value: Any) -> Any:
        """Resume: the first time with what the first step left, then the coroutine itself."""
        if not self._started:
            self._started = True
            first, self._first = self._first, None
            if self._outcome is not None:
                outcome, self._outcome = self._outcome, None
                raise outcome
            return first
        return self._coro.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        """Raise inside the coroutine where it waits (a task's cancellation)."""
        if not self._started:
            self._started = True
            first, self._first = self._first, None
            if self._outcome is not None:  # nothing left to interrupt: end as the first step did
                outcome, self._outcome = self._outcome, None
                raise outcome
            if isinstance(first, asyncio.Future):
                # What a task does with the future it waits on when it is cancelled.
                first.cancel()
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)  # pragma: no cover - legacy signature

    def close(self) -> None:
        """Close the coroutine (it was started: its ``finally`` blocks run)."""
        self._coro.close()

    def __await__(self) -> Generator[Any, None, R]:
        raise TypeError("a continuation is driven by its task, not awaited")  # pragma: no cover


def start_eager_task(coro: Coroutine[Any, Any, R], *, name: str | None = None) -> asyncio.Task[R]:
    """Run ``coro`` now, up to its first suspension, and the rest as a task; returns the task.

    Like ``asyncio.create_task`` (the task is returned, can be awaited, cancelled and given
    done callbacks), except that the coroutine's first step runs in the caller's turn
    instead of after a trip through the event loop's ready queue, behind whatever else is
    ready (Python 3.12's eager task factory, for one call on Python 3.11). The first step
    runs in the caller's context; the rest in the task's. A first step that finishes (or
    raises) gives a task that ends the same way on its first step. Use it where the start
    of the work is what is measured (the order manager's ``venue.submit``).
    """
    try:
        first = coro.send(None)
    except StopIteration as done:
        return asyncio.get_running_loop().create_task(_Continuation(coro, None, done), name=name)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # the task reports it, as it would have
        return asyncio.get_running_loop().create_task(_Continuation(coro, None, exc), name=name)
    return asyncio.get_running_loop().create_task(_Continuation(coro, first, None), name=name)
