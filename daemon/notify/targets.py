"""Where notifications go: Apprise URLs from the config, the environment and a systemd credential.

All three sources are used together (duplicates once). The URLs carry tokens and
passwords, so they are secrets: ``secret_parts`` gives the pieces a log redactor must
scrub (the whole URL and each token-like part of it), and a target is named in logs and
in the outbox only by ``Target.label`` / ``Target.id`` (scheme and a hash), never by its URL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from config.schema.ops import NotifySection
from daemon.admin.auth import AdminConfigError, read_secret_file

_SEPARATORS = re.compile(r"[\s,]+")
_MIN_SECRET = 6


class NotifyConfigError(Exception):
    """The notification settings cannot be used (the message names the source, never a URL)."""


@dataclasses.dataclass(frozen=True)
class Target:
    """One Apprise URL; ``id`` (a hash) keys its deliveries in the outbox, ``label`` names it in logs."""

    url: str = dataclasses.field(repr=False)
    id: str
    label: str

    @classmethod
    def of(cls, url: str) -> Target:
        """A target for ``url``; its id is stable across restarts, so its pending deliveries resume."""
        digest = hashlib.sha256(url.encode()).hexdigest()[:16]
        scheme = url.split("://", 1)[0].lower() if "://" in url else "?"
        return cls(url=url, id=digest, label=f"{scheme}:{digest[:8]}")


def split_urls(text: str) -> list[str]:
    """URLs separated by whitespace or commas (Apprise URLs contain neither unescaped)."""
    return [u for u in _SEPARATORS.split(text.strip()) if u]


def resolve_targets(
    section: NotifySection, *, environ: Mapping[str, str] | None = None
) -> list[Target]:
    """Every configured URL, in order: ``urls``, then ``$urls_env``, then the credential ``urls_credential``.

    Raises ``NotifyConfigError`` when the credential file exists but cannot be read. Reads
    a small file: call it at start-up.
    """
    env = os.environ if environ is None else environ
    urls: list[str] = [u.strip() for u in section.urls if u.strip()]
    if section.urls_env:
        urls += split_urls(env.get(section.urls_env, ""))
    creds = env.get("CREDENTIALS_DIRECTORY", "")
    if section.urls_credential and creds:
        try:
            text = read_secret_file(Path(creds) / section.urls_credential, "notify credential", missing_ok=True)
        except AdminConfigError as exc:
            raise NotifyConfigError(str(exc)) from None
        urls += split_urls(text or "")
    seen: dict[str, Target] = {}
    for url in urls:
        seen.setdefault(url, Target.of(url))
    return list(seen.values())


def secret_parts(url: str) -> list[str]:
    """The strings of ``url`` a log redactor must scrub: the URL itself and each token-like part.

    Tokens sit in different places per service (``tgram://TOKEN/CHAT``,
    ``discord://ID/TOKEN``, ``mailto://user:PASSWORD@host``, ``json://host/path?key=TOKEN``)
    and libraries log them in other shapes (``.../botTOKEN/sendMessage``), so the parts are
    scrubbed one by one. Plain host names, IP addresses and short words are left alone:
    scrubbing them would blank unrelated log lines.
    """
    parts = [url]
    rest = url.split("://", 1)[1] if "://" in url else url
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        parts += [p for p in (urllib.parse.unquote(password), password) if len(p) >= _MIN_SECRET]
        parts += [u for u in (urllib.parse.unquote(user), user) if _token_like(u)]
    else:
        hostport = netloc
    host, colon, port = hostport.partition(":")
    if colon and not port.isdigit():
        # Not a port: a token in id:secret form (tgram://123456:ABC-DEF/...).
        parts.append(hostport)
        parts += [port] if len(port) >= _MIN_SECRET else []
    elif not _plain_host(host) and _token_like(host):
        parts.append(host)
    for segment in path.split("/"):
        for value in (segment, urllib.parse.unquote(segment)):
            if _token_like(value):
                parts.append(value)
    for _, value in urllib.parse.parse_qsl(query, keep_blank_values=False):
        if _token_like(value):
            parts.append(value)
    return list(dict.fromkeys(parts))


def _token_like(text: str) -> bool:
    # Tokens, keys and ids mix letters and digits (or are long numbers); words and names rarely do.
    if len(text) < _MIN_SECRET:
        return False
    has_digit = any(c.isdigit() for c in text)
    has_alpha = any(c.isalpha() for c in text)
    return (has_digit and has_alpha and len(text) >= 8) or (has_digit and len(text) >= 10)


def _plain_host(host: str) -> bool:
    if not host or host.lower() == "localhost":
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        pass
    # A DNS name (has a dot, only name characters) is not a secret; a bare word or token might be.
    return "." in host and re.fullmatch(r"[A-Za-z0-9.-]+", host) is not None
