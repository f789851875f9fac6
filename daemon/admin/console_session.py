"""Web-console sessions: an HttpOnly, SameSite=Strict cookie obtained once with the bearer token.

Why a cookie and not the token in ``sessionStorage``: the browser's ``EventSource`` (the
live state and the log tail) cannot send an ``Authorization`` header, and a token that
page scripts can read is a token any injected script can steal. The login form sends the
token once, in the ``Authorization`` header of ``POST /console/login`` (never in a URL,
never in a body that could be logged); the answer sets a random session id that scripts
cannot read (HttpOnly) and that the browser never attaches to a request started by
another site (SameSite=Strict).

A session is bound to the token that created it: sessions live only in this server's
memory (at most ``MAX_SESSIONS``, each for ``SESSION_TTL_S`` at most), so a restart -
the only way to change the token - ends them all, as does ``POST /console/logout``.
Only a SHA-256 digest of each id is kept.

A cookie is honoured only where a browser that follows the console could send it: a
loopback ``Host`` (the console is for a loopback-bound admin endpoint; this also defeats
DNS rebinding, since a rebound name never receives the cookie), a ``Sec-Fetch-Site`` of
``same-origin``/``none`` when the browser says so (another page on a different port of
127.0.0.1 is same-*site*, so SameSite alone would let it through), and for a POST an
``Origin`` equal to this server's own.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import OrderedDict

from aiohttp import web

from actors.kernel.clock import monotonic
from daemon.admin.auth import is_loopback

SESSION_TTL_S = 8 * 3600.0
MAX_SESSIONS = 16
COOKIE_PREFIX = "aaiti_console_"


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def local_port(request: web.Request) -> int:
    """The port this request arrived on (the cookie name carries it: cookies ignore ports)."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return int(sockname[1])
    return request.url.port or 0


def cookie_name(request: web.Request) -> str:
    """``aaiti_console_<port>``: two daemons on one host keep separate sessions."""
    return f"{COOKIE_PREFIX}{local_port(request)}"


def same_origin(request: web.Request) -> bool:
    """True when ``Origin`` names this very server (scheme, host and port of the ``Host`` header)
    and that host is a loopback name: the request comes from a page the admin server served."""
    origin = request.headers.get("Origin")
    if not origin:
        return False
    return origin.lower() == f"{request.scheme}://{request.host}".lower() and is_loopback(request.url.host or "")


def browser_context_ok(request: web.Request) -> bool:
    """The request could only come from the console's own pages (see the module docstring)."""
    if not is_loopback(request.url.host or ""):
        return False
    if request.headers.get("Sec-Fetch-Site", "same-origin").lower() not in ("same-origin", "none"):
        return False
    return request.method != "POST" or same_origin(request)


class ConsoleSessions:
    """The live console sessions of one admin server (bounded, expiring, in memory only)."""

    def __init__(self, ttl_s: float = SESSION_TTL_S, max_sessions: int = MAX_SESSIONS) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._expires: OrderedDict[str, float] = OrderedDict()  # digest -> monotonic expiry, oldest first

    @property
    def active(self) -> int:
        """Sessions not yet expired."""
        self._prune()
        return len(self._expires)

    def issue(self) -> str:
        """A new session id (the oldest session is dropped beyond ``max_sessions``)."""
        self._prune()
        session_id = secrets.token_urlsafe(32)
        self._expires[_digest(session_id)] = monotonic() + self.ttl_s
        while len(self._expires) > self.max_sessions:
            self._expires.popitem(last=False)
        return session_id

    def valid(self, session_id: str | None) -> bool:
        """True for a live session id."""
        if not session_id or len(session_id) > 100:
            return False
        expiry = self._expires.get(_digest(session_id))
        return expiry is not None and expiry > monotonic()

    def revoke(self, session_id: str | None) -> None:
        """End a session (logout); unknown ids are ignored."""
        if session_id:
            self._expires.pop(_digest(session_id), None)

    def session_of(self, request: web.Request) -> str | None:
        """The request's session id when it is valid and sent from the console's own pages."""
        session_id = request.cookies.get(cookie_name(request))
        if session_id and browser_context_ok(request) and self.valid(session_id):
            return session_id
        return None

    def _prune(self) -> None:
        now = monotonic()
        for digest in [d for d, expiry in self._expires.items() if expiry <= now]:
            del self._expires[digest]
