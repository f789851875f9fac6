"""Admin token sources (env, systemd credential, file, config), bind checks, bearer comparison."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.schema.ops import AdminSection
from daemon.admin.auth import BearerAuth, InsecureBindError, TokenError, check_bind, is_loopback, resolve_token

TOKEN = "0123456789abcdef-token"


def test_env_token_wins_over_every_other_source(tmp_path: Path) -> None:
    (tmp_path / "admin_token").write_text("from-credential-xxxxxxxx\n")
    (tmp_path / "file").write_text("from-file-xxxxxxxxxxxx")
    section = AdminSection(token_env="MY_TOKEN", token_file=str(tmp_path / "file"), token="from-config")
    env = {"MY_TOKEN": f"  {TOKEN}\n", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    got = resolve_token(section, environ=env)
    assert got is not None and got.value == TOKEN and got.source == "env:MY_TOKEN"
    assert TOKEN not in repr(got)


def test_credential_used_when_env_unset(tmp_path: Path) -> None:
    (tmp_path / "admin_token").write_text(TOKEN + "\n")
    got = resolve_token(AdminSection(token="from-config"), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert got is not None and (got.value, got.source) == (TOKEN, "credential:admin_token")


def test_empty_or_missing_credential_falls_through(tmp_path: Path) -> None:
    (tmp_path / "admin_token").write_text("")  # e.g. SetCredential=admin_token: fallback
    got = resolve_token(AdminSection(token="from-config-1234567"), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert got is not None and got.source == "config:admin.token"
    got = resolve_token(AdminSection(token_credential="absent"), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert got is None


def test_token_file_expanded_and_relative_to_config_dir(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "t").write_text(TOKEN)
    got = resolve_token(AdminSection(token_file="secrets/t"), environ={}, base_dir=tmp_path)
    assert got is not None and got.value == TOKEN and got.source == f"file:{tmp_path / 'secrets' / 't'}"
    got = resolve_token(AdminSection(token_file="${BASE}/secrets/t"), environ={"BASE": str(tmp_path)})
    assert got is not None and got.value == TOKEN


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_unusable_token_file_error(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "t"
    if content is not None:
        path.write_text(content)
    with pytest.raises(TokenError, match=str(path)):
        resolve_token(AdminSection(token_file=str(path)), environ={})


def test_no_source_none() -> None:
    assert resolve_token(AdminSection(), environ={}) is None


def test_weak_token_flagged() -> None:
    got = resolve_token(AdminSection(token="short"), environ={})
    assert got is not None and got.weak
    strong = resolve_token(AdminSection(token=TOKEN), environ={})
    assert strong is not None and not strong.weak


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("10.0.0.1", False), ("example.com", False), ("", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_bind_refuses_public_without_token() -> None:
    with pytest.raises(InsecureBindError, match=r"0\.0\.0\.0"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", TOKEN)
    check_bind("127.0.0.1", None)


@pytest.mark.parametrize(("header", "expected"), [
    (f"Bearer {TOKEN}", None),
    (f"bearer   {TOKEN}  ", None),
    (None, "missing bearer token"),
    ("", "missing bearer token"),
    ("Bearer", "missing bearer token"),
    (f"Basic {TOKEN}", "missing bearer token"),
    (f"Bearer {TOKEN[:-1]}", "invalid token"),
    (f"Bearer {TOKEN}x", "invalid token"),
    ("Bearer ünïcode", "invalid token"),
])
def test_bearer_check(header: str | None, expected: str | None) -> None:
    assert BearerAuth(TOKEN).check(header) == expected


def test_no_token_configured_allows_all() -> None:
    auth = BearerAuth(None)
    assert not auth.required and auth.check(None) is None
