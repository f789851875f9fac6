"""Admin authentication: where the bearer token comes from, and checking it.

Token sources, first match wins:

1. the environment variable named by ``admin.token_env`` (default ``AAITI_ADMIN_TOKEN``);
2. the systemd credential ``admin.token_credential`` in ``$CREDENTIALS_DIRECTORY``
   (``LoadCredential=admin_token:/etc/aaiti/credentials/admin_token``);
3. ``admin.token_file`` ($VARIABLES and ~ expanded; relative to the config directory);
4. ``admin.token`` in the config itself.

A non-loopback bind address without a token is refused (``InsecureBindError``): the
admin API can kill and resume trading. Tokens are compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path

from config.schema.ops import AdminSection

MIN_TOKEN_LENGTH = 16
_VAR = re.compile(r"\$(?:(\w+)|\{(\w+)\})")


class AdminConfigError(Exception):
    """The admin server cannot start with this configuration (the message says why)."""


class InsecureBindError(AdminConfigError):
    """A non-loopback bind address was configured without a token."""


class TokenError(AdminConfigError):
    """A configured token source exists but cannot be used (unreadable or empty file)."""


@dataclasses.dataclass(frozen=True)
class ResolvedToken:
    """A bearer token and where it came from (for the log; never log ``value``)."""

    value: str = dataclasses.field(repr=False)
    source: str

    @property
    def weak(self) -> bool:
        """True when shorter than ``MIN_TOKEN_LENGTH`` characters."""
        return len(self.value) < MIN_TOKEN_LENGTH


def read_secret_file(path: Path, what: str, *, missing_ok: bool) -> str | None:
    """A secret from a file (token file, systemd credential), stripped; None when missing or
    empty and ``missing_ok``. Raises ``TokenError`` naming ``what`` and the path otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return None
        raise TokenError(f"{what}: {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise TokenError(f"{what}: cannot read {path}: {detail}") from None
    token = text.strip()
    if not token:
        if missing_ok:  # e.g. an empty SetCredential= fallback: treated as "no token here"
            return None
        raise TokenError(f"{what}: {path} is empty")
    return token


def resolve_token(
    section: AdminSection, *, environ: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> ResolvedToken | None:
    """Find the admin token (see the module docstring for the order); None when none is configured.

    Raises ``TokenError`` when ``token_file`` is set but unusable. Reads small files: call
    it at startup (or from the CLI), not from a request handler.
    """
    env = os.environ if environ is None else environ
    if section.token_env:
        value = env.get(section.token_env, "").strip()
        if value:
            return ResolvedToken(value, f"env:{section.token_env}")
    creds = env.get("CREDENTIALS_DIRECTORY", "")
    if section.token_credential and creds:
        value_or_none = read_secret_file(Path(creds) / section.token_credential, "admin credential", missing_ok=True)
        if value_or_none:
            return ResolvedToken(value_or_none, f"credential:{section.token_credential}")
    if section.token_file:
        expanded = os.path.expanduser(_expandvars(section.token_file, env))
        path = Path(expanded)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        value_or_none = read_secret_file(path, "admin.token_file", missing_ok=False)
        if value_or_none:
            return ResolvedToken(value_or_none, f"file:{path}")
    if section.token:
        return ResolvedToken(section.token.strip(), "config:admin.token")
    return None


def _expandvars(text: str, env: Mapping[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` from ``env``; unknown variables stay as written."""
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), text)


def is_loopback(host: str) -> bool:
    """True for loopback literals (127.0.0.0/8, ::1) and ``localhost``; False for anything else."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback bind address without a token (``InsecureBindError``)."""
    if not token and not is_loopback(host):
        raise InsecureBindError(
            f"admin.host = {host!r} is not a loopback address and no admin token is configured: refusing to "
            "expose the admin API (it can kill and resume trading) without authentication. Set a token "
            "(admin.token_env / LoadCredential=admin_token / admin.token_file) or bind 127.0.0.1."
        )


class BearerAuth:
    """Checks ``Authorization: Bearer <token>``; with no token configured every request passes."""

    def __init__(self, token: str | None) -> None:
        self._token = token.encode() if token else None

    @property
    def required(self) -> bool:
        """True when a token is configured."""
        return self._token is not None

    def check(self, authorization: str | None) -> str | None:
        """None if allowed, else a short reason ("missing bearer token" / "invalid token")."""
        if self._token is None:
            return None
        if not authorization:
            return "missing bearer token"
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return "missing bearer token"
        if not hmac.compare_digest(given.strip().encode(), self._token):
            return "invalid token"
        return None
