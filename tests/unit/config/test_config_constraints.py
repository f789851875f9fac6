"""Config values that make no sense are rejected at load, naming the key path (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import parse_config_text
from config.schema.market import split_symbol

XRP = '[instruments."XRP/ETH"]\nbase = "XRP"\nquote = "ETH"\n'

INVALID = [
    ("negative_balance", '[venue.paper]\ninitial_balances = { ETH = "-5" }\n',
     "venue.paper.initial_balances.ETH", "expected a value >= 0"),
    ("balance_asset_code", '[venue.paper]\ninitial_balances = { "E TH" = "1" }\n',
     "venue.paper.initial_balances.E TH", "expected an asset code"),
    ("base_not_the_symbols", '[instruments."XRP/ETH"]\nbase = "BTC"\nquote = "ETH"\n',
     "instruments.XRP/ETH.base", "'BTC' does not match the symbol 'XRP/ETH' (expected 'XRP')"),
    ("quote_not_the_symbols", '[instruments."XRP/ETH"]\nbase = "XRP"\nquote = "BTC"\n',
     "instruments.XRP/ETH.quote", "(expected 'ETH')"),
    ("base_not_the_symbols_with_settle",
     '[feed]\nsymbols = ["BTC/USDT:USDT"]\n[instruments."BTC/USDT:USDT"]\nbase = "USDT"\nquote = "USDT"\n',
     "instruments.BTC/USDT:USDT.base", "(expected 'BTC')"),
    ("instrument_key_not_a_symbol", '[instruments.XRPETH]\nbase = "XRP"\nquote = "ETH"\n',
     "instruments.XRPETH", "invalid symbol 'XRPETH'"),
    ("empty_base", '[instruments."XRP/ETH"]\nbase = ""\nquote = "ETH"\n', "instruments.XRP/ETH.base", "matching"),
    ("negative_maker_fee", "[venue.paper]\nmaker_fee_bps = -1\n", "venue.paper.maker_fee_bps", ">= 0"),
    ("negative_taker_fee", "[venue.paper]\ntaker_fee_bps = -0.5\n", "venue.paper.taker_fee_bps", ">= 0"),
    ("negative_assumed_fee", "[risk]\nassumed_fee_bps = -1\n", "risk.assumed_fee_bps", ">= 0"),
    ("zero_tick", XRP + 'tick_size = "0"\n', "instruments.XRP/ETH.tick_size", "> 0"),
    ("negative_step", XRP + 'step_size = "-1"\n', "instruments.XRP/ETH.step_size", "> 0"),
    ("tick_too_fine", XRP + 'tick_size = "1e-19"\n', "instruments.XRP/ETH.tick_size", "at most 18 decimal places"),
    ("min_qty_above_max_qty", XRP + 'min_qty = "5"\nmax_qty = "1"\n', "instruments.XRP/ETH.max_qty",
     ">= min_qty (5), got 1"),
    ("feed_symbol_form", '[feed]\nsymbols = ["XRPETH"]\n', "feed.symbols[0]", "invalid symbol 'XRPETH'"),
    ("feed_symbol_twice", '[feed]\nsymbols = ["XRP/ETH", "XRP/ETH"]\n', "feed.symbols[1]", "duplicate symbol"),
    ("strategy_symbol_twice",
     '[[strategies]]\nname = "a"\nstrategy = "x:Y"\nsymbols = ["XRP/ETH", "XRP/ETH"]\n',
     "strategies[0].symbols[1]", "duplicate symbol"),
    ("replay_symbol_form", '[feed.replay]\nsymbol = "XRPETH"\n', "feed.replay.symbol", "matching"),
    ("replay_path_empty", '[feed.replay]\npath = ""\n', "feed.replay.path", "matching"),
    ("synthetic_spread_zeroes_the_bid", "[feed.synthetic]\nspread_bps = 20000\n", "feed.synthetic.spread_bps",
     "<= 10000"),
    ("synthetic_volatility", "[feed.synthetic]\nvolatility_bps = 1e9\n", "feed.synthetic.volatility_bps", "<= 10000"),
    ("reconnect_backoff_inverted", "[venue.ccxt]\nreconnect_initial_s = 5\nreconnect_max_s = 1\n",
     "venue.ccxt.reconnect_max_s", ">= reconnect_initial_s"),
    ("read_retry_backoff_inverted", "[venue.ccxt]\nread_retry_initial_s = 3\nread_retry_max_s = 1\n",
     "venue.ccxt.read_retry_max_s", ">= read_retry_initial_s"),
    ("env_name", '[venue.ccxt]\napi_key_env = "MY KEY"\n', "venue.ccxt.api_key_env", "matching"),
    ("credential_file_escapes", '[venue.ccxt]\nsecret_credential = "../secret"\n', "venue.ccxt.secret_credential",
     "matching"),
    ("exchange_id", '[venue.ccxt]\nexchange_id = "Binance Spot"\n', "venue.ccxt.exchange_id", "matching"),
    ("venue_name_path", '[venue]\nname = "../x"\n', "venue.name", "matching"),
    ("equity_asset", '[risk]\nequity_asset = "US DT"\n', "risk.equity_asset", "matching"),
]


@pytest.mark.parametrize(("case", "text", "key_path", "fragment"), INVALID, ids=[c[0] for c in INVALID])
def test_senseless_value_is_rejected_naming_its_key_path(case: str, text: str, key_path: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, f"{case}.toml")
    rendered = str(info.value)
    assert f"{case}.toml: {key_path}: " in rendered, rendered
    assert fragment in rendered, rendered


VALID = [
    ("settle_suffix",
     '[feed]\nsymbols = ["BTC/USDT:USDT"]\n[instruments."BTC/USDT:USDT"]\nbase = "BTC"\nquote = "USDT"\n'),
    ("zero_balance_and_fees",
     '[venue.paper]\ninitial_balances = { ETH = "0" }\nmaker_fee_bps = 0\ntaker_fee_bps = 0\n'),
    ("min_qty_equals_max_qty", XRP + 'min_qty = "3"\nmax_qty = "3"\n'),
    ("tick_of_18_decimals", XRP + 'tick_size = "0.000000000000000001"\n'),
    ("scheme_less_base_url", '[venue.ccxt]\nbase_url = "127.0.0.1:8765"\n'),
]


@pytest.mark.parametrize(("case", "text"), VALID, ids=[c[0] for c in VALID])
def test_sensible_values_stay_valid(case: str, text: str) -> None:
    parse_config_text(text, f"{case}.toml")


def test_split_symbol_ignores_the_settlement_suffix() -> None:
    assert split_symbol("XRP/ETH") == ("XRP", "ETH")
    assert split_symbol("BTC/USDT:USDT") == ("BTC", "USDT")
    for bad in ("XRPETH", "XRP/", "/ETH", "A/B/C", "A/B:"):
        with pytest.raises(ValueError, match="BASE/QUOTE"):
            split_symbol(bad)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "daemon.cli", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[venue.paper]\ninitial_balances = { ETH = "-5" }\n',
         "venue.paper.initial_balances.ETH: expected a value >= 0, got -5"),
        ('[instruments."XRP/ETH"]\nbase = "BTC"\nquote = "ETH"\n',
         "instruments.XRP/ETH.base: 'BTC' does not match the symbol 'XRP/ETH' (expected 'XRP')"),
    ],
)
def test_check_config_and_run_exit_2_on_a_senseless_value(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    for args in (("check-config", str(path)), ("run", "--config", str(path))):
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert f"{path}: {problem}" in proc.stderr, (args, proc.stderr)
