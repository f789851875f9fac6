"""The venue refused our credentials: a definite condition, handled once, then waited out.

A refusal of our credentials (ccxt ``AuthenticationError``: Binance -2014 / -2015 / -1022, HTTP
401, or no key configured at all) is not a transient error: every private call would be
refused the same way until the operator fixes the key, the secret, the key's IP allow-list
or its permissions. Retrying at the callers' pace would hammer the venue (and a venue counts
refused requests against us). So :class:`CredentialsGuard`:

- forces both breakers open for ``auth_retry_s`` with a reason starting with
  :data:`CREDENTIALS_REFUSED` (shown in the breakers' state): every REST call fails fast
  without being sent; when the time is up one trial call goes out (the breakers' half-open
  state); refused again → open again;
- logs ONE error per episode naming the venue, the venue's answer (code and message, never
  a URL, a key or a secret), where the credentials came from and what to check; a trial
  refused again is logged at info;
- calls ``on_refused`` once per episode (the venue ends its update streams with the error,
  so the order manager learns it and halts trading);
- ends the episode at the first private call that succeeds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from actors.ports.venue import VenueAuthenticationError
from adapters.circuit_breaker import CircuitBreaker, CircuitOpenError, Outcome, classify_exception

#: Reason prefix of a breaker forced open because the venue refused our credentials.
CREDENTIALS_REFUSED = "credentials_refused"
#: What the operator should check.
CREDENTIALS_HINT = "check the API key and secret, the key's IP allow-list and its permissions (reading, spot trading)"

_CODE_MSG = re.compile(r'"code"\s*:\s*(-?\d+)\s*,\s*"msg"\s*:\s*"([^"]*)"')
_URL = re.compile(r"\S+://\S*")
_DETAIL_MAX = 200


def is_credentials_refusal(exc: BaseException) -> bool:
    """True for ccxt's ``AuthenticationError`` (and its subclasses), judged by class names."""
    return any(cls.__name__ == "AuthenticationError" for cls in type(exc).__mro__)


def classify(exc: BaseException) -> Outcome:
    """The breakers' classification: a credentials refusal counts as neither success nor failure.

    The guard forces the breakers open itself; counted as a success (the venue answered) a
    refused half-open trial would close a breaker for an instant before it is forced open again.
    """
    if is_credentials_refusal(exc):
        return Outcome.IGNORE
    return classify_exception(exc)


def refusal_detail(exc: BaseException) -> str:
    """The venue's answer, safe to log and show: its code and message, else the error without URLs."""
    text = str(exc)
    match = _CODE_MSG.search(text)
    if match is not None:
        return f"{match.group(1)} {match.group(2)}"
    return _URL.sub("<url>", text)[:_DETAIL_MAX] or type(exc).__name__


def refused_by_guard(exc: CircuitOpenError) -> bool:
    """True when a breaker refused a call because the venue refused our credentials."""
    return exc.reason.startswith(CREDENTIALS_REFUSED)


class CredentialsGuard:
    """One venue's handling of credential refusals (see the module doc).

    ``breakers`` are forced open for ``retry_s`` on each refusal; ``credentials`` returns where
    the credentials came from (safe to log); ``on_refused`` is called once per episode.
    """

    def __init__(
        self,
        venue: str,
        exchange_id: str,
        *,
        breakers: Sequence[CircuitBreaker],
        retry_s: float,
        log: Any,
        credentials: Callable[[], str],
        on_refused: Callable[[VenueAuthenticationError], None],
    ) -> None:
        self._venue = venue
        self._exchange_id = exchange_id
        self._breakers = tuple(breakers)
        self._retry_s = retry_s
        self._log = log
        self._credentials = credentials
        self._on_refused = on_refused
        self.refused: str | None = None
        self.refusals = 0
        self.episodes = 0

    def message(self, op: str) -> str:
        """What a call ``op`` refused for our credentials says: the venue, its answer, what to check."""
        detail = self.refused or "refused"
        return (f"{op}: venue {self._venue} ({self._exchange_id}) refused the API credentials "
                f"from {self._credentials()} ({detail}); {CREDENTIALS_HINT}")

    def error(self, op: str) -> VenueAuthenticationError:
        """The error a call ``op`` raises while (or because) our credentials are refused."""
        return VenueAuthenticationError(self.message(op))

    def note(self, exc: BaseException, op: str) -> bool:
        """Handle ``exc`` if it is a refusal of our credentials; True if it was."""
        if not is_credentials_refusal(exc):
            return False
        detail = refusal_detail(exc)
        self.refusals += 1
        for breaker in self._breakers:
            breaker.force_open(self._retry_s, f"{CREDENTIALS_REFUSED}: {detail}")
        if self.refused is not None:
            self.refused = detail
            self._log.info("ccxt_venue.credentials_still_refused", op=op, detail=detail, retry_in_s=self._retry_s)
            return True
        self.refused = detail
        self.episodes += 1
        self._log.error(
            "ccxt_venue.credentials_refused",
            exchange=self._exchange_id,
            op=op,
            detail=detail,
            credentials=self._credentials(),
            check=CREDENTIALS_HINT,
            retry_in_s=self._retry_s,
        )
        self._on_refused(self.error(op))
        return True

    def accepted(self) -> None:
        """A private call succeeded: the credentials work (again)."""
        if self.refused is None:
            return
        self.refused = None
        self._log.info("ccxt_venue.credentials_accepted")
