"""Paper trading venue: simulated fills against the market feed, persistent account."""

from adapters.paper_venue.venue import PaperVenue

__all__ = ["PaperVenue"]
