"""What the parts of the ccxt venue share: the exchange once started, its markets, logging."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.ports.venue import VenueUnavailable
from adapters.ccxt_venue.shared import CcxtErrors, MalformedCounter
from config.schema.trading import CcxtVenueSection


@dataclass(slots=True)
class VenueSession:
    """The venue's shared state, owned by :class:`adapters.ccxt_venue.venue.CcxtVenue`.

    ``name`` is the venue name stored with orders and fills; ``symbols`` the unified symbols
    traded. ``exchange`` and ``markets`` are set at start; ``closing`` from ``close()`` on.
    ``credentials_source`` says where the API credentials came from (safe to log; set at start).
    """

    name: str
    config: CcxtVenueSection
    symbols: tuple[str, ...]
    log: Any
    errors: CcxtErrors = field(default_factory=CcxtErrors)
    malformed: MalformedCounter = field(init=False)
    exchange: Any = None
    markets: frozenset[str] = frozenset()
    started: bool = False
    closing: bool = False
    credentials_source: str = "none"

    def __post_init__(self) -> None:
        self.malformed = MalformedCounter(self.log, "ccxt_venue.malformed")

    def require_started(self) -> Any:
        """The exchange; raises ``VenueUnavailable("NOT_STARTED")`` before start or once closing."""
        if not self.started or self.exchange is None or self.closing:
            raise VenueUnavailable("NOT_STARTED", f"ccxt venue {self.name} is not started")
        return self.exchange

    def is_a(self, exc: BaseException, *names: str) -> bool:
        """True when ``exc`` is one of ccxt's exception classes ``names``."""
        return self.errors.is_a(exc, *names)
