"""The ``aaiti`` entry point: --version, options before the verb, new-strategy, strategy directories."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.strategy_api import Strategy, StrategyLoadError, load_strategy_class, strategy_dirs, use_strategy_dirs
from config.errors import ConfigError
from config.loader import load_config
from daemon import exit_codes
from daemon.cli import main
from daemon.templates import class_name_for, render_strategy, strategy_block, validate_module_name


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """sys.path and sys.modules as they were, afterwards (the CLI makes strategy directories importable)."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("ut_"):
            del sys.modules[name]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == "aaiti 0.1.0"


def test_config_before_check_config_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text(f"[daemon]\nname = 'other'\nstate_dir = '{tmp_path / 'state'}'\n")
    assert main(["--config", str(cfg), "check-config"]) == exit_codes.OK
    out = capsys.readouterr()
    assert f"config OK: {cfg}" in out.err and '"name": "other"' in out.out


@pytest.mark.parametrize("flag", ["--config", "-c"])
def test_config_after_check_config_names_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    cfg = tmp_path / "other.toml"
    cfg.write_text(f"[daemon]\nname = 'other'\nstate_dir = '{tmp_path / 'state'}'\n")
    assert main(["check-config", flag, str(cfg)]) == exit_codes.OK
    out = capsys.readouterr()
    assert f"config OK: {cfg}" in out.err and '"name": "other"' in out.out


def test_check_config_with_two_different_files_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(tmp_path / "a.toml"), "--config", str(tmp_path / "b.toml")]) == (
        exit_codes.CONFIG_ERROR)
    assert "two config files given" in capsys.readouterr().err


def test_option_before_a_verb_that_does_not_take_it_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--url", "http://127.0.0.1:1", "check-config"])
    assert info.value.code == exit_codes.CONFIG_ERROR
    assert "--url does not apply to 'aaiti check-config'" in capsys.readouterr().err


def test_option_after_the_verb_wins(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--url", "http://127.0.0.1:1", "status", "--url", "http://127.0.0.1:2", "--token", "t",
                 "--timeout", "2"])
    assert code == exit_codes.NOT_RUNNING
    assert "cannot reach http://127.0.0.1:2" in capsys.readouterr().err


# -- strategy template -----------------------------------------------------------------------------
def test_template_names() -> None:
    assert class_name_for("my_breakout") == "MyBreakout" and class_name_for("x2") == "X2"
    assert validate_module_name("my_breakout") is None
    assert validate_module_name("My-Strat") is not None and validate_module_name("class") is not None
    assert validate_module_name("9lives") is not None and validate_module_name("a" * 33) is not None
    block = strategy_block("my_breakout", "XRP/ETH", "5m")
    assert 'strategy = "my_breakout:MyBreakout"' in block and 'timeframe = "5m"' in block


def test_rendered_template_is_a_complete_strategy(
    tmp_path: Path, isolated_imports: None, capsys: pytest.CaptureFixture[str]
) -> None:
    source = render_strategy("ut_breakout")
    assert "$" not in source and "class UtBreakoutParams(msgspec.Struct" in source
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "ut_breakout.py").write_text(source)
    cfg = tmp_path / "aaiti.toml"
    cfg.write_text(f"[daemon]\nstate_dir = '{tmp_path / 'state'}'\n\n" + strategy_block("ut_breakout", "XRP/ETH", "1m"))
    use_strategy_dirs(load_config(cfg))
    cls = load_strategy_class("ut_breakout:UtBreakout")
    assert issubclass(cls, Strategy) and cls.__doc__
    params = cls.validate_params({"lookback": 5, "size": "2"}, strategy="s")
    assert (params.lookback, str(params.size)) == (5, "2")
    with pytest.raises(ValueError, match="size: must be > 0"):
        cls.validate_params({"size": "0"}, strategy="s")


# -- strategy directories --------------------------------------------------------------------------
def test_strategy_dirs_are_resolved_against_the_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "aaiti.toml"
    cfg.parent.mkdir()
    cfg.write_text("[daemon]\nstrategy_dirs = ['strats', '/abs/dir']\n")
    assert strategy_dirs(load_config(cfg)) == ((tmp_path / "conf" / "strats").resolve(), Path("/abs/dir"))
    cfg.write_text("")
    assert strategy_dirs(load_config(cfg)) == ((tmp_path / "conf" / "strategies").resolve(),)


def test_use_strategy_dirs_appends_existing_dirs_once(tmp_path: Path, isolated_imports: None) -> None:
    (tmp_path / "strategies").mkdir()
    cfg = tmp_path / "aaiti.toml"
    cfg.write_text("[daemon]\nstrategy_dirs = ['strategies', 'missing']\n")
    loaded = load_config(cfg)
    first = sys.path[0]
    assert use_strategy_dirs(loaded) == ((tmp_path / "strategies").resolve(),)
    assert use_strategy_dirs(loaded) == ((tmp_path / "strategies").resolve(),)
    assert sys.path.count(str((tmp_path / "strategies").resolve())) == 1
    assert sys.path[-1] == str((tmp_path / "strategies").resolve()) and sys.path[0] == first  # after the rest
    assert str((tmp_path / "missing").resolve()) not in sys.path


def test_empty_strategy_dir_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "aaiti.toml"
    cfg.write_text("[daemon]\nstrategy_dirs = ['']\n")
    with pytest.raises(ConfigError, match=r"daemon\.strategy_dirs\[0\]"):
        load_config(cfg)


def test_missing_user_module_says_where_it_was_looked_for() -> None:
    with pytest.raises(StrategyLoadError, match=r"cannot import module 'ut_nowhere'.*\[daemon\] strategy_dirs"):
        load_strategy_class("ut_nowhere:Nothing")


def test_check_config_finds_a_strategy_in_the_config_dirs(
    tmp_path: Path, isolated_imports: None, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "ut_mystrats.py").write_text(render_strategy("ut_mystrats"))
    cfg = tmp_path / "aaiti.toml"
    cfg.write_text(f"[daemon]\nstate_dir = '{tmp_path / 'state'}'\n\n" + strategy_block("ut_mystrats", "XRP/ETH", "1m"))
    assert main(["check-config", str(cfg)]) == exit_codes.OK
    assert "config OK" in capsys.readouterr().err


def test_new_strategy_into_another_dir_says_how_to_make_it_importable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "aaiti.toml"
    cfg.write_text("[feed]\nsymbols = ['XRP/ETH']\ntimeframes = ['5m']\n")
    assert main(["new-strategy", "ut_elsewhere", "--config", str(cfg), "--dir", str(tmp_path / "other")]) == 0
    out = capsys.readouterr()
    assert (tmp_path / "other" / "ut_elsewhere.py").is_file()
    assert 'strategy = "ut_elsewhere:UtElsewhere"' in out.out and 'timeframe = "5m"' in out.out
    assert f'[daemon] strategy_dirs = ["{(tmp_path / "other").resolve()}"]' in out.err
    assert main(["new-strategy", "Bad-Name", "--config", str(cfg)]) == exit_codes.CONFIG_ERROR
    assert "expected a module name" in capsys.readouterr().err
