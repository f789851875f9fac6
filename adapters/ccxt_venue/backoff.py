"""Re-dial backoff for streams: exponential with jitter, reset after a stable period."""

from __future__ import annotations

import random
from collections.abc import Callable

from actors.kernel.clock import monotonic
from config.schema.trading import CcxtVenueSection


class Backoff:
    """Delays ``initial_s * 2**n`` capped at ``max_s``, each scaled by a random factor in [0.5, 1].

    ``connected()`` marks the stream up; ``next_delay()`` after a failure first checks whether
    the stream had been up for ``stable_s`` — then the sequence starts over, so a stream
    that drops once a day always reconnects fast, while a flapping one backs off.
    ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        initial_s: float,
        max_s: float,
        *,
        stable_s: float,
        rng: random.Random | None = None,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max(max_s, initial_s)
        self.stable_s = stable_s
        self._rng = rng or random.Random()
        self._clock = clock
        self._attempt = 0
        self._up_since: float | None = None

    @property
    def attempt(self) -> int:
        """Failures since the last reset."""
        return self._attempt

    def connected(self) -> None:
        """The stream is up (delivering data)."""
        if self._up_since is None:
            self._up_since = self._clock()

    def reset_if_stable(self) -> bool:
        """Reset the sequence if the stream has been up ``stable_s``; True if it did."""
        if self._up_since is not None and self._clock() - self._up_since >= self.stable_s:
            self._attempt = 0
            return True
        return False

    def next_delay(self) -> float:
        """The delay before the next re-dial (call once per failure)."""
        self.reset_if_stable()
        self._up_since = None
        base: float = min(self.max_s, self.initial_s * float(2 ** min(self._attempt, 30)))
        self._attempt += 1
        return float(base * (0.5 + 0.5 * self._rng.random()))


def reconnect_backoff(
    config: CcxtVenueSection, *, rng: random.Random, clock: Callable[[], float] = monotonic
) -> Backoff:
    """The re-dial backoff of ``config`` (``reconnect_initial_s`` / ``_max_s`` / ``_stable_s``)."""
    return Backoff(
        config.reconnect_initial_s, config.reconnect_max_s, stable_s=config.reconnect_stable_s, rng=rng, clock=clock
    )
