"""Config reload: validate everything first, refuse build-time changes by name, apply all or nothing.

Unit level: ``config.reload_diff`` and ``daemon.reloader.ConfigReloader`` on real files, with
recording subscribers standing in for the daemon.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from config.loader import LoadedConfig, load_config, parse_config_text
from config.reload_diff import diff_configs, is_live
from daemon.reloader import LIVE_FIELDS, ConfigReloader, strategy_issues

EMA = "actors.strategies.ema_cross:EmaCross"
RSI = "actors.strategies.rsi_macd:RsiMacd"
BASE = """\
[feed]
symbols = ["XRP/ETH"]
timeframes = ["1m", "5m"]

[risk]
max_open_orders = 5

[[strategies]]
name = "ema"
strategy = "actors.strategies.ema_cross:EmaCross"
symbols = ["XRP/ETH"]
timeframe = "1m"
params = { fast = 10, slow = 20 }

[[strategies]]
name = "mom"
strategy = "actors.strategies.rsi_macd:RsiMacd"
symbols = ["XRP/ETH"]
timeframe = "1m"
"""
EXTRA = '\n[[strategies]]\nname = "extra"\nstrategy = "actors.strategies.ema_cross:EmaCross"\nsymbols = ["XRP/ETH"]\n'


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def write(path: Path, text: str) -> None:
    """Rewrite the config file (a sync helper for the async tests)."""
    path.write_text(text)


class Recorder:
    """A reload subscriber that records what it was given; optionally raises on a version."""

    def __init__(self, fail_on_version: int | None = None) -> None:
        self.calls: list[tuple[int, tuple[str, ...]]] = []
        self.fail_on_version = fail_on_version

    def __call__(self, loaded: LoadedConfig, changed: tuple[str, ...]) -> None:
        self.calls.append((loaded.version, changed))
        if loaded.version == self.fail_on_version:
            raise RuntimeError("apply failed")


@pytest.fixture
def cfg_path(tmp_path: Path) -> Path:
    path = tmp_path / "aaiti.toml"
    path.write_text(BASE)
    return path


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def reloader(cfg_path: Path, recorder: Recorder) -> ConfigReloader:
    r = ConfigReloader(load_config(cfg_path))
    r.subscribe(recorder)
    return r


# -- the diff ------------------------------------------------------------------------------------------
def diff(new_text: str) -> tuple[set[str], set[str]]:
    d = diff_configs(parse_config_text(BASE, "old"), parse_config_text(new_text, "new"), live=LIVE_FIELDS)
    return set(d.hot), set(d.restart_required)


def test_strategy_params_and_enabled_are_hot_entry_by_entry() -> None:
    text = edit(BASE, "fast = 10", "fast = 5")
    text = edit(text, 'name = "mom"\n', 'name = "mom"\nenabled = false\n')
    assert diff(text) == ({"strategies[0].params", "strategies[1].enabled"}, set())


@pytest.mark.parametrize(("old", "new", "path"), [
    (f'strategy = "{EMA}"', 'strategy = "actors.strategies.bollinger_revert:BollingerRevert"',
     "strategies[0].strategy"),
    ('symbols = ["XRP/ETH"]\ntimeframe = "1m"\nparams', 'symbols = []\ntimeframe = "1m"\nparams',
     "strategies[0].symbols"),
    ('timeframe = "1m"\nparams', 'timeframe = "5m"\nparams', "strategies[0].timeframe"),
    ('name = "ema"', 'name = "ema2"', "strategies[0].name"),
])
def test_strategy_identity_changes_are_restart_required(old: str, new: str, path: str) -> None:
    assert diff(edit(BASE, old, new)) == (set(), {path})


def test_adding_or_removing_a_strategy_entry_is_restart_required_naming_it() -> None:
    added = diff_configs(parse_config_text(BASE, "a"), parse_config_text(BASE + EXTRA, "b"), live=LIVE_FIELDS)
    assert added.restart_required == ("strategies[2]",) and added.hot == ()
    assert "'extra' added" in added.restart_messages()[0]
    removed = diff_configs(parse_config_text(BASE + EXTRA, "a"), parse_config_text(BASE, "b"), live=LIVE_FIELDS)
    assert removed.restart_required == ("strategies[2]",)
    assert "'extra' removed" in removed.restart_messages()[0]
    # Swapping two entries is not an edit of either: the names no longer match their index.
    head, mom = BASE.split("[[strategies]]\nname = \"mom\"")
    ema = "[[strategies]]" + head.split("[[strategies]]", 1)[1]
    swapped = head.split("[[strategies]]", 1)[0] + "[[strategies]]\nname = \"mom\"" + mom + "\n" + ema
    assert diff(swapped) == (set(), {"strategies[0].name", "strategies[1].name"})


@pytest.mark.parametrize(("section", "line"), [
    ("channels", "intent_capacity = 8"),
    ("supervisor", "max_restarts = 9"),
    ("feed", "stale_after_s = 7"),
    ("reconciler", "fills_lookback_s = 60"),
    ("daemon", "stop_timeout_s = 3"),
])
def test_fields_read_only_at_build_time_are_restart_required(section: str, line: str) -> None:
    if f"[{section}]\n" in BASE:
        text = edit(BASE, f"[{section}]\n", f"[{section}]\n{line}\n")
    else:
        text = f"[{section}]\n{line}\n" + BASE
    hot, restart = diff(text)
    assert hot == set() and restart == {f"{section}.{line.split(' = ')[0]}"}


def test_live_fields_stay_hot() -> None:
    text = edit(BASE, "max_open_orders = 5", "max_open_orders = 7")
    text = "[log]\nlevel = 'debug'\n[watchdog]\ninterval_s = 2\n[reconciler]\ninterval_s = 9\n" + text
    assert diff(text) == ({"log.level", "watchdog.interval_s", "reconciler.interval_s", "risk.max_open_orders"},
                          set())


def test_schema_restart_flags_still_win_over_live_paths() -> None:
    assert diff("[admin]\nport = 9999\n" + BASE) == (set(), {"admin.port"})


def test_is_live_matches_indices_and_sub_keys() -> None:
    assert is_live("strategies[3].params", LIVE_FIELDS) and is_live("risk.symbols", LIVE_FIELDS)
    assert not is_live("strategies[3].symbols", LIVE_FIELDS) and not is_live("riskier", ["risk"])


def test_strategy_issues_name_the_key() -> None:
    cfg = parse_config_text(edit(BASE, "fast = 10", "fast = 10, bogus = 3"), "x")
    [issue] = strategy_issues(cfg)
    assert issue.key_path == "strategies[0].params.bogus" and "unknown key" in issue.message


# -- the reloader ---------------------------------------------------------------------------------------
INVALID = [
    ("unknown-class", (f'strategy = "{EMA}"', 'strategy = "actors.strategies.ema_cross:Nope"'),
     "strategies[0].strategy: ", "has no attribute 'Nope'"),
    ("unknown-param", ("fast = 10", "fast = 10, bogus = 3"), "strategies[0].params.bogus: ", "unknown key"),
    ("cross-field", ("fast = 10, slow = 20", "fast = 30, slow = 20"), "strategies[0].params.fast: ",
     "must be less than slow"),
]


@pytest.mark.parametrize(("case", "edit_", "key", "problem"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_strategy_refused_naming_the_key_nothing_applied(
    case: str, edit_: tuple[str, str], key: str, problem: str, cfg_path: Path, reloader: ConfigReloader,
    recorder: Recorder,
) -> None:
    before = reloader.current
    # A risk change in the same file must not be applied either (no partial apply).
    write(cfg_path, edit(edit(BASE, *edit_), "max_open_orders = 5", "max_open_orders = 9"))
    result = await reloader.reload("test")
    assert (result.ok, result.result, result.version) == (False, "invalid", 1)
    assert any(key in e and problem in e for e in result.errors), result.errors
    assert all(e.startswith(f"{cfg_path}: ") for e in result.errors)
    assert reloader.current is before and reloader.current.config.risk.max_open_orders == 5
    assert recorder.calls == []
    assert reloader.counts == {"invalid": 1}


async def test_valid_params_change_is_applied(cfg_path: Path, reloader: ConfigReloader, recorder: Recorder) -> None:
    write(cfg_path, edit(BASE, "fast = 10", "fast = 5"))
    result = await reloader.reload("test")
    assert (result.ok, result.result, result.version, result.changed) == (True, "applied", 2,
                                                                          ("strategies[0].params",))
    assert reloader.current.version == 2 and reloader.current.config.strategies[0].params["fast"] == 5
    assert recorder.calls == [(2, ("strategies[0].params",))]


@pytest.mark.parametrize(("text", "paths"), [
    (edit(BASE, 'timeframe = "1m"\nparams', 'timeframe = "5m"\nparams'), ("strategies[0].timeframe",)),
    (BASE + EXTRA, ("strategies[2]",)),
    ("[channels]\nevent_capacity = 16\n[supervisor]\nperiod_s = 9\n" + BASE,
     ("supervisor.period_s", "channels.event_capacity")),
])
async def test_build_time_change_refused_naming_the_field(
    text: str, paths: tuple[str, ...], cfg_path: Path, reloader: ConfigReloader, recorder: Recorder
) -> None:
    # The hot risk change beside it is refused with it.
    write(cfg_path, edit(text, "max_open_orders = 5", "max_open_orders = 9"))
    result = await reloader.reload("test")
    assert (result.ok, result.result, result.changed) == (False, "restart_required", paths)
    assert [e.split(":")[0] for e in result.errors] == list(paths)
    assert all("restart" in e for e in result.errors)
    assert reloader.current.version == 1 and recorder.calls == []


async def test_invalid_wins_over_restart_required(cfg_path: Path, reloader: ConfigReloader) -> None:
    # strategies[0] becomes another class (restart-required) whose params are also invalid.
    text = edit(BASE, "params = { fast = 10, slow = 20 }", "params = { bogus = 1 }")
    write(cfg_path, edit(text, f'strategy = "{EMA}"', f'strategy = "{RSI}"'))
    result = await reloader.reload("test")
    assert result.result == "invalid" and any("strategies[0].params.bogus" in e for e in result.errors)


async def test_failing_subscriber_rolls_back_and_reapplies_the_previous_config(
    cfg_path: Path, reloader: ConfigReloader, recorder: Recorder
) -> None:
    failing = Recorder(fail_on_version=2)
    reloader.subscribe(failing)
    before = reloader.current
    write(cfg_path, edit(BASE, "max_open_orders = 5", "max_open_orders = 9"))
    result = await reloader.reload("test")
    assert (result.ok, result.result, result.version) == (False, "error", 1)
    assert "apply failed" in result.errors[0] and "version 1 was restored" in result.errors[0]
    assert reloader.current is before
    # Both were told the new config, then the old one again.
    changed = ("risk.max_open_orders",)
    assert recorder.calls == [(2, changed), (1, changed)] and failing.calls == [(2, changed), (1, changed)]
    # The next reload of the same file is tried afresh (same version number, nothing half-applied).
    failing.fail_on_version = None
    assert (await reloader.reload("test")).result == "applied" and reloader.current.version == 2
