"""Operations sections: the admin HTTP endpoint."""

from __future__ import annotations

import dataclasses

from config.fields import setting


@dataclasses.dataclass(frozen=True)
class AdminSection:
    """Embedded admin HTTP server."""

    enabled: bool = setting(True, "Serve the admin API.", restart=True)
    host: str = setting("127.0.0.1", "Bind address. A non-loopback address requires a token.", restart=True)
    port: int = setting(8787, "Bind port (0 picks a free port).", ge=0, le=65535, restart=True)
    token_env: str = setting("AAITI_ADMIN_TOKEN", "Environment variable holding the bearer token.", restart=True)
    token_file: str = setting(
        "", "File holding the bearer token (e.g. $CREDENTIALS_DIRECTORY/admin_token).", restart=True
    )
    token: str = setting("", "Bearer token (prefer token_env or token_file).", secret=True, restart=True)
    metrics_public: bool = setting(False, "Serve /metrics without a token.")
    metrics_cache_s: float = setting(1.0, "A /metrics rendering is reused for this long.", ge=0, le=60)
