"""Operations sections: the admin HTTP endpoint and the systemd integration."""

from __future__ import annotations

import dataclasses
from typing import Literal

from config.fields import setting


@dataclasses.dataclass(frozen=True)
class AdminSection:
    """Embedded admin HTTP server.

    The bearer token is looked up in this order: the environment variable named by
    ``token_env``, the systemd credential ``token_credential`` (``$CREDENTIALS_DIRECTORY``),
    ``token_file``, then ``token``. Without any token the server only binds a loopback
    address; every request is then accepted.
    """

    enabled: bool = setting(True, "Serve the admin API.", restart=True)
    host: str = setting("127.0.0.1", "Bind address. A non-loopback address requires a token.", restart=True)
    port: int = setting(8787, "Bind port (0 picks a free port).", ge=0, le=65535, restart=True)
    token_env: str = setting("AAITI_ADMIN_TOKEN", "Environment variable holding the bearer token.", restart=True)
    token_credential: str = setting(
        "admin_token",
        "Name of the systemd credential holding the bearer token ($CREDENTIALS_DIRECTORY/<name>, set with "
        "LoadCredential=); empty: do not look for one.",
        restart=True,
        pattern=r"[A-Za-z0-9_.\-]*",
    )
    token_file: str = setting(
        "",
        "File holding the bearer token; $VARIABLES and ~ are expanded, relative paths are resolved against "
        "the config file's directory.",
        restart=True,
    )
    token: str = setting("", "Bearer token (prefer token_env, a credential or token_file).", secret=True, restart=True)
    metrics_public: bool = setting(False, "Serve /metrics without a token.")
    metrics_cache_s: float = setting(1.0, "A /metrics rendering is reused for this long.", ge=0, le=60)
    max_page_size: int = setting(1000, "Largest limit= the list endpoints (orders, fills, events) accept.", ge=1,
                                 le=100_000)
    log_tail_max: int = setting(10_000, "Largest n= that GET /logs accepts.", ge=1, le=1_000_000)
    sse_max_followers: int = setting(8, "Concurrent GET /logs?follow=1 streams; more are refused (429).", ge=1,
                                     le=1000)
    sse_keepalive_s: float = setting(15.0, "Idle log streams get a keep-alive comment this often.", gt=0, le=300)
    max_body_bytes: int = setting(65_536, "Largest request body accepted.", ge=1024, le=16 * 1024 * 1024,
                                  restart=True)


@dataclasses.dataclass(frozen=True)
class SystemdSection:
    """sd_notify integration (active only when systemd sets $NOTIFY_SOCKET)."""

    notify: bool = setting(True, "Send READY/RELOADING/STOPPING/STATUS/WATCHDOG notifications.", restart=True)
    watchdog_min_status: Literal["healthy", "degraded"] = setting(
        "degraded",
        "Worst watchdog verdict that still sends WATCHDOG=1. 'degraded' (default) keeps systemd from killing "
        "a daemon that is only retrying (reconnecting feed, stale data); an unhealthy verdict (stalled actor, "
        "event-loop lag) never pets the watchdog.",
    )
