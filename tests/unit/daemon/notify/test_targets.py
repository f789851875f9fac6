"""Where the URLs come from, and which parts of them the log redactor scrubs."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.schema.ops import NotifySection
from daemon.notify.targets import NotifyConfigError, Target, resolve_targets, secret_parts


def test_urls_from_config_env_and_credential_together_each_once(tmp_path: Path) -> None:
    (tmp_path / "notify_urls").write_text("json://127.0.0.1:1/a\n  json://127.0.0.1:1/c\n")
    section = NotifySection(urls=("json://127.0.0.1:1/a",))
    env = {"AAITI_NOTIFY_URLS": "json://127.0.0.1:1/b, json://127.0.0.1:1/a", "CREDENTIALS_DIRECTORY": str(tmp_path)}
    targets = resolve_targets(section, environ=env)
    assert [t.url for t in targets] == ["json://127.0.0.1:1/a", "json://127.0.0.1:1/b", "json://127.0.0.1:1/c"]


def test_no_sources_no_targets(tmp_path: Path) -> None:
    assert resolve_targets(NotifySection(), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)}) == []


def test_unreadable_credential_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "notify_urls").mkdir()  # a directory: exists, cannot be read as a file
    with pytest.raises(NotifyConfigError, match="notify credential"):
        resolve_targets(NotifySection(), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_target_is_named_by_scheme_and_hash_never_by_url() -> None:
    t = Target.of("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123456")
    assert t.label.startswith("tgram:") and "AAH" not in repr(t) and "AAH" not in t.id
    assert Target.of(t.url).id == t.id  # stable: pending deliveries resume after a restart


@pytest.mark.parametrize(
    ("url", "secrets", "kept"),
    [
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123456",
         ["AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"], []),
        ("json://user:s3cretPassw0rd@127.0.0.1:8080/hook/TOKENabcdef123", ["s3cretPassw0rd", "TOKENabcdef123"],
         ["127.0.0.1", "hook", "user"]),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5UdmQJbLXYWj", ["JHMHI8qBe7bk2ZwO5UdmQJbLXYWj"], []),
        ("mailto://ops:appPassword@gmail.com?to=me@example.com", ["appPassword"], ["gmail.com"]),
        ("json://notify:8080/api/notify", [], ["notify", "api"]),
    ],
)
def test_secret_parts(url: str, secrets: list[str], kept: list[str]) -> None:
    parts = secret_parts(url)
    assert parts[0] == url
    for s in secrets:
        assert s in parts
    for k in kept:
        assert k not in parts
