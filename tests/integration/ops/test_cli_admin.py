"""``aaiti status|orders|...`` against the real admin server (the synchronous CLI runs in a thread)."""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from pathlib import Path

import pytest
import structlog

from daemon import exit_codes
from daemon.admin.server import AdminServer
from daemon.cli_admin import add_admin_commands, render_log, table
from tests.integration.ops.conftest import TOKEN, edit_file
from tests.integration.ops.memory_backend import MemoryBackend
from tests.waiting import wait_until


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AAITI_ADMIN_TOKEN", "AAITI_ADMIN_URL", "AAITI_CONFIG", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aaiti")
    sub = parser.add_subparsers(dest="command", required=True)
    add_admin_commands(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(run_cli, list(argv))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_cli_status_table_0(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("status", "--url", server.url, "--token", TOKEN) == exit_codes.OK
    out = capsys.readouterr().out
    assert "ops-test" in out and "trading_state" in out and "\nactors:\n" in out and "RESTARTS" in out


async def test_cli_status_json_0(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("status", "--json", "--url", server.url, "--token", TOKEN) == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["name"] == "ops-test"


async def test_cli_url_and_token_from_config_0(
    server: AdminServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f"[admin]\nport = {server.port}\ntoken_file = 'token'\n")
    assert await cli("positions", "--config", str(cfg)) == exit_codes.OK
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:2] == ["SYMBOL", "SIZE"] and "S000/USDT" in out


async def test_cli_token_from_env_0(
    server: AdminServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AAITI_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("AAITI_ADMIN_URL", server.url)
    assert await cli("status") == exit_codes.OK


async def test_cli_daemon_not_running_6(capsys: pytest.CaptureFixture[str]) -> None:
    code = await cli("status", "--url", f"http://127.0.0.1:{free_port()}", "--token", TOKEN, "--timeout", "2")
    assert code == exit_codes.NOT_RUNNING == 6
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("aaiti: daemon not running?")


async def test_cli_wrong_token_7(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("kill", "--url", server.url, "--token", "nope") == exit_codes.AUTH_ERROR == 7
    err = capsys.readouterr().err
    assert "token refused" in err and "invalid token" in err


async def test_cli_no_token_7_with_hint(
    server: AdminServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "cli.toml"
    cfg.write_text(f"[admin]\nport = {server.port}\n")
    assert await cli("status", "--config", str(cfg)) == exit_codes.AUTH_ERROR
    assert "no token configured" in capsys.readouterr().err


async def test_cli_orders_table_and_one_0_unknown_1(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--url", server.url, "--token", TOKEN]
    assert await cli("orders", "--status", "open", "--limit", "3", *base) == exit_codes.OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CLIENT_ORDER_ID", "STRATEGY", "SYMBOL", "SIDE", "TYPE", "MODE", "SIZE", "PRICE",
                                "FILLED", "STATUS", "UPDATED"]
    assert len(lines) == 4 and all(("ACCEPTED" in ln or "PARTIALLY_FILLED" in ln) for ln in lines[1:])
    assert await cli("orders", "aaiti-00002", *base) == exit_codes.OK
    out = capsys.readouterr().out
    assert "client_order_id  aaiti-00002" in out and "\nevents:\n" in out and "SUBMITTED" in out
    assert await cli("orders", "missing-1", *base) == 1
    assert "no order with client_order_id 'missing-1' (404 not_found)" in capsys.readouterr().err


async def test_cli_bad_limit_2(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("orders", "--limit", "0", "--url", server.url, "--token", TOKEN) == exit_codes.CONFIG_ERROR
    assert "limit" in capsys.readouterr().err


async def test_cli_kill_resume_needs_confirm(
    server: AdminServer, backend: MemoryBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--url", server.url, "--token", TOKEN]
    assert await cli("kill", "--reason", "drill", *base) == exit_codes.OK
    assert capsys.readouterr().out.strip() == "trading HALTED, kill switch ENGAGED (reason: drill)"
    assert await cli("resume", *base) == 1
    assert "aaiti resume --confirm" in capsys.readouterr().err
    assert backend.kill_switch
    assert await cli("resume", "--confirm", *base) == exit_codes.OK
    assert capsys.readouterr().out.startswith("trading ACTIVE, kill switch off")
    assert await cli("pause", "--json", *base) == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["state"] == "REDUCING"


async def test_cli_reload_applied_0_invalid_2(
    server: AdminServer, config_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--url", server.url, "--token", TOKEN]
    edit_file(config_path, replace=("'info'", "'warning'"))
    assert await cli("reload", *base) == exit_codes.OK
    assert "applied: version 2, changed: log.level" in capsys.readouterr().out
    edit_file(config_path, "[log]\nlevel = 'loud'\n")
    assert await cli("reload", *base) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err
    assert "refused: invalid" in err and "log.level" in err


async def test_cli_logs_tail_0(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    structlog.get_logger("aaiti").bind(actor="tester").warning("cli.tail_line", detail="x")
    assert await cli("logs", "-n", "1", "--level", "warning", "--url", server.url, "--token", TOKEN) == 0
    out = capsys.readouterr().out.strip()
    assert "WARNING" in out and "tester" in out and "cli.tail_line detail=x" in out


async def test_cli_logs_follow_prints_new_line_until_stream_end(
    server: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    follow = asyncio.create_task(cli("logs", "-f", "-n", "0", "--json", "--url", server.url, "--token", TOKEN))
    await wait_until(lambda: server.ctx.streams.active == 1)
    structlog.get_logger("aaiti").bind(actor="tester").info("cli.follow_line")
    await wait_until(lambda: "cli.follow_line" in capsys.readouterr().out, timeout=10)
    await server.stop()
    assert await asyncio.wait_for(follow, 10) == exit_codes.OK


def test_table_aligns_numbers_right() -> None:
    text = table([{"a": "x", "n": 5}, {"a": "long", "n": 12.5}])
    assert text.splitlines() == ["A        N", "x        5", "long  12.5"]


def test_render_log_readable() -> None:
    line = render_log({"timestamp": "2026-01-01T00:00:00.123456Z", "level": "info", "actor": "feed",
                       "event": "feed.connected", "symbols": 3})
    assert line == "2026-01-01T00:00:00.123 INFO     feed           feed.connected symbols=3"


# -- a broken local config never blocks the admin verbs ----------------------------------------
BROKEN_ELSEWHERE = "[daemon]\nbogus = 1\n[[strategies]]\nname = 'no strategy path'\n"


async def test_cli_url_and_env_token_never_read_the_config(
    server: AdminServer, backend: MemoryBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cwd = tmp_path / "operator"  # not the daemon's own config directory
    cwd.mkdir()
    (cwd / "aaiti.toml").write_text("this is [not toml\n")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("AAITI_ADMIN_TOKEN", TOKEN)
    assert await cli("kill", "--url", server.url, "--reason", "t") == exit_codes.OK
    assert backend.kill_switch and backend.audit == [("kill", "t")]
    assert await cli("status", "--url", server.url) == exit_codes.OK
    assert await cli("reload", "--url", server.url) == exit_codes.OK
    assert await cli("status", "--url", server.url, "--config", str(cwd / "missing.toml")) == exit_codes.OK
    monkeypatch.delenv("AAITI_ADMIN_TOKEN")
    assert await cli("resume", "--confirm", "--url", server.url, "--token", TOKEN) == exit_codes.OK
    assert "invalid config" not in capsys.readouterr().err


async def test_cli_reads_only_the_admin_section(
    server: AdminServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cwd = tmp_path / "operator"
    cwd.mkdir()
    (cwd / "token").write_text(TOKEN + "\n")
    (cwd / "aaiti.toml").write_text(f"[admin]\nport = {server.port}\ntoken_file = 'token'\n{BROKEN_ELSEWHERE}")
    monkeypatch.chdir(cwd)
    assert await cli("status") == exit_codes.OK
    assert await cli("kill", "--config", str(cwd / "aaiti.toml")) == exit_codes.OK
    assert "invalid config" not in capsys.readouterr().err


@pytest.mark.parametrize(("text", "expected"), [
    ("[admin]\nport = 'eighty'\n", "admin.port: expected an integer, got string 'eighty'"),
    ("[admin]\nport = 8787\nbogus = 1\n", "admin.bogus: unknown key"),
    ("admin = 3\n", "admin: expected a table, got integer 3"),
    ("[admin\nport = 1\n", "<root>: invalid TOML"),
])
async def test_cli_broken_admin_section_2_says_what(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    cfg = tmp_path / "cli.toml"
    cfg.write_text(text + BROKEN_ELSEWHERE)
    assert await cli("kill", "--config", str(cfg)) == exit_codes.CONFIG_ERROR
    err = capsys.readouterr().err
    assert f"{cfg}: {expected}" in err, err
    assert "daemon.bogus" not in err and "strategies" not in err


async def test_cli_missing_explicit_config_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await cli("status", "--config", str(tmp_path / "nope.toml")) == exit_codes.CONFIG_ERROR
    assert f"{tmp_path / 'nope.toml'}: <root>: file not found" in capsys.readouterr().err
