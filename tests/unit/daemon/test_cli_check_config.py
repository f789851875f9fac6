"""``aaiti check-config`` runs the strategy checks the daemon runs at start, without starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon import exit_codes
from daemon.cli import main

EMA = "actors.strategies.ema_cross:EmaCross"


def strategy_config(tmp_path: Path, *strategies: tuple[str, str]) -> Path:
    """A config with a state dir under ``tmp_path`` and one ``[[strategies]]`` per (path, params)."""
    text = f"[daemon]\nstate_dir = '{tmp_path / 'state'}'\n"
    for i, (path, params) in enumerate(strategies):
        text += (f"[[strategies]]\nname = 's{i}'\nstrategy = '{path}'\nsymbols = ['XRP/ETH']\n"
                 f"timeframe = '1m'\nparams = {{ {params} }}\n")
    cfg = tmp_path / "aaiti.toml"
    cfg.write_text(text)
    return cfg


def check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(["check-config", str(path)])
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


CASES = [
    ("unknown-class", ("actors.strategies.ema_cross:NoSuchClass", ""), "strategies[0].strategy",
     "has no attribute 'NoSuchClass'"),
    ("missing-module", ("actors.strategies.no_such_module:EmaCross", ""), "strategies[0].strategy",
     "cannot import module 'actors.strategies.no_such_module'"),
    ("not-a-strategy", ("actors.strategy_api:OpenOrder", ""), "strategies[0].strategy", "is not a Strategy subclass"),
    ("unknown-param", (EMA, "bogus = 1"), "strategies[0].params.bogus", "unknown key (expected one of: fast, "),
    ("bad-value", (EMA, "fast = -3"), "strategies[0].params.fast", "Expected `int` >= 2"),
    ("params-check", (EMA, "fast = 30, slow = 20"), "strategies[0].params.fast", "must be less than slow"),
]


@pytest.mark.parametrize(("case", "strategy", "key_path", "problem"), CASES, ids=[c[0] for c in CASES])
def test_bad_strategy_exit_2_names_file_and_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, strategy: tuple[str, str], key_path: str,
    problem: str,
) -> None:
    cfg = strategy_config(tmp_path, strategy)
    code, out, err = check_config(cfg, capsys)
    assert code == exit_codes.CONFIG_ERROR == 2, err
    assert "config OK" not in err and out == ""
    line = next((ln.strip() for ln in err.splitlines() if f"{cfg}: {key_path}: " in ln), None)
    assert line is not None, err
    assert problem in line, line
    assert not (tmp_path / "state").exists()  # nothing was started


def test_every_bad_strategy_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = strategy_config(tmp_path, (EMA, "bogus = 1"), (EMA, "fast = 5, slow = 9"),
                          ("actors.strategies.nope:X", ""))
    code, _, err = check_config(cfg, capsys)
    assert code == exit_codes.CONFIG_ERROR
    assert "invalid config (2 problem(s))" in err
    assert f"{cfg}: strategies[0].params.bogus: " in err and f"{cfg}: strategies[2].strategy: " in err
    assert "strategies[1]" not in err


def test_valid_strategies_ok_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = strategy_config(tmp_path, (EMA, "fast = 5, slow = 9"),
                          ("actors.strategies.rsi_macd:RsiMacd", "size = '2'"))
    assert main(["check-config", str(cfg)]) == exit_codes.OK
    assert "config OK" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()


def test_repository_config_ok_0(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[3]
    assert main(["check-config", str(root / "aaiti.toml")]) == exit_codes.OK
