"""Config: malformed files give exit 2 naming the key path; all errors at once; redaction; diff."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import load_config, parse_config_text
from config.reload_diff import diff_configs
from config.render import config_to_plain
from config.schema import AaitiConfig

MALFORMED = [
    ("unknown_top_key", "bogus = 1\n", "bogus", "unknown key"),
    ("unknown_nested_key", "[daemon]\nnmae = 'x'\n", "daemon.nmae", "unknown key"),
    ("wrong_type_int", "[supervisor]\nmax_restarts = 'three'\n", "supervisor.max_restarts", "expected an integer"),
    ("wrong_type_bool", "[daemon]\nuse_uvloop = 'yes'\n", "daemon.use_uvloop", "expected a boolean"),
    ("bad_choice", "[log]\nlevel = 'verbose'\n", "log.level", "expected one of"),
    ("out_of_range", "[admin]\nport = 70000\n", "admin.port", "<= 65535"),
    ("negative", "[watchdog]\nstall_after_s = -1\n", "watchdog.stall_after_s", "> 0"),
    ("bad_decimal", "[risk]\nmax_order_notional = 'lots'\n", "risk.max_order_notional", "decimal"),
    ("table_expected", "risk = 5\n", "risk", "expected a table"),
    ("list_item_type", "[feed]\nsymbols = ['XRP/ETH', 7]\n", "feed.symbols[1]", "expected a string"),
    ("missing_required", "[[strategies]]\nname = 'a'\n", "strategies[0].strategy", "required key missing"),
    ("bad_pattern", "[[strategies]]\nname = 'a b'\nstrategy = 'x:Y'\n", "strategies[0].name", "matching"),
    ("cross_field", "[watchdog]\nloop_lag_degraded_ms = 50\nloop_lag_unhealthy_ms = 10\n",
     "watchdog.loop_lag_unhealthy_ms", ">= loop_lag_degraded_ms"),
    ("unknown_symbol", "[[strategies]]\nname = 'a'\nstrategy = 'x:Y'\nsymbols = ['BTC/USDT']\n",
     "strategies[0].symbols", "not in feed.symbols"),
    ("invalid_toml", "[daemon\n", "<root>", "invalid TOML"),
    ("nested_per_symbol", "[risk.symbols.'XRP/ETH']\nmax_position = 'x'\n", "risk.symbols.XRP/ETH.max_position",
     "decimal"),
]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(("case", "text", "key_path", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_config_exits_2_naming_key_path(
    tmp_path: Path, case: str, text: str, key_path: str, expected: str
) -> None:
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 2, proc.stderr
    assert f"{path}: {key_path}: " in proc.stderr
    assert expected in proc.stderr


def test_several_errors_are_all_reported_at_once() -> None:
    text = "[daemon]\nbogus = 1\n[log]\nlevel = 3\n[admin]\nport = -5\n"
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "x.toml")
    paths = sorted(i.key_path for i in info.value.issues)
    assert paths == ["admin.port", "daemon.bogus", "log.level"]


def test_missing_file_exits_2_with_message(tmp_path: Path) -> None:
    proc = run_cli("check-config", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2
    assert "file not found" in proc.stderr


def test_check_config_prints_effective_config_with_secrets_redacted(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text("[admin]\ntoken = 'super-secret-token'\n[venue.ccxt]\nsecret = 'abc123456'\n")
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 0, proc.stderr
    plain = json.loads(proc.stdout)
    assert plain["admin"]["token"] == "***"
    assert plain["venue"]["ccxt"]["secret"] == "***"
    assert "super-secret-token" not in proc.stdout and "abc123456" not in proc.stdout
    assert plain["supervisor"]["max_restarts"] == 3


def test_repository_default_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[3]
    loaded = load_config(root / "aaiti.toml")
    assert loaded.config.daemon.mode == "paper"


def test_empty_file_gives_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    assert load_config(path).config == AaitiConfig()
    assert config_to_plain(AaitiConfig(), redact=True)["log"]["level"] == "info"


def test_diff_separates_hot_and_restart_required_fields() -> None:
    old = parse_config_text("", "a")
    new = parse_config_text("[log]\nlevel='debug'\n[admin]\nport=9999\n[risk]\nmax_open_orders=3\n", "b")
    diff = diff_configs(old, new)
    assert set(diff.hot) == {"log.level", "risk.max_open_orders"}
    assert diff.restart_required == ("admin.port",)
