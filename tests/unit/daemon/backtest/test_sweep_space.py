"""--param parsing and grid expansion."""

from __future__ import annotations

import re

import pytest

from daemon.backtest.sweep_space import SpecError, grid, grid_size, normalise, parse_param, parse_scalar


def test_an_int_range_includes_both_ends() -> None:
    spec = parse_param("strategies.0.params.fast=5:20:5")
    assert (spec.key, spec.kind, spec.is_int) == ("strategies.0.params.fast", "range", True)
    assert spec.grid_values() == (5, 10, 15, 20)
    assert parse_param("a=5:21:5").grid_values() == (5, 10, 15, 20)  # hi off the step: the last step inside


def test_a_float_range_has_exact_decimal_steps() -> None:
    spec = parse_param("strategies.2.params.entry_z=1.5:2.5:0.25")
    assert spec.grid_values() == (1.5, 1.75, 2.0, 2.25, 2.5)
    assert parse_param("x=0.1:0.3:0.1").grid_values() == (0.1, 0.2, 0.3)  # not 0.30000000000000004
    assert parse_param("x=1:2:0.5").grid_values() == (1.0, 1.5, 2.0)


def test_a_list_keeps_types_and_quotes_keep_strings() -> None:
    assert parse_param("k=ema,sma").choices == ("ema", "sma")
    assert parse_param("k=1,2.5,true,\"500\"").choices == (1, 2.5, True, "500")
    assert parse_param("k=7").choices == (7,)
    assert parse_scalar(" 'x' ") == "x" and parse_scalar("-3") == -3 and parse_scalar("1e-3") == 0.001


def test_an_interval_is_for_the_optuna_samplers_only() -> None:
    ints, floats = parse_param("a=4:12"), parse_param("b=0.5:3")
    assert (ints.kind, ints.is_int, ints.lo, ints.hi) == ("interval", True, 4, 12)
    assert (floats.kind, floats.is_int, floats.lo, floats.hi) == ("interval", False, 0.5, 3.0)
    with pytest.raises(SpecError, match="an interval lo:hi has no grid"):
        grid([ints])


@pytest.mark.parametrize(("text", "message"), [
    ("fast", "expected KEY=SPEC"),
    ("=1,2", "expected KEY=SPEC"),
    ("a b=1", "not a dotted config key"),
    ("a=1:2:3:4", "a range is lo:hi:step or lo:hi"),
    ("a=9:1:1", "hi (1) is below lo (9)"),
    ("a=1:9:0", "the step must be positive"),
    ("a=1:x:1", "'x' is not a number"),
    ("a=1,,2", "empty item"),
    ("a=1,1", "listed twice"),
])
def test_bad_specs_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_param(text)


def test_the_grid_is_every_combination_first_key_slowest() -> None:
    specs = [parse_param("f=5:10:5"), parse_param("s=20,30"), parse_param("k=ema")]
    assert grid_size(specs) == 4
    assert grid(specs) == [
        {"f": 5, "s": 20, "k": "ema"}, {"f": 5, "s": 30, "k": "ema"},
        {"f": 10, "s": 20, "k": "ema"}, {"f": 10, "s": 30, "k": "ema"},
    ]
    with pytest.raises(SpecError, match="given twice"):
        grid([parse_param("f=1,2"), parse_param("f=3")])


def test_normalise_rounds_sampled_floats() -> None:
    specs = [parse_param("z=0.1:0.5:0.1"), parse_param("w=0.5:3")]
    assert normalise(specs, {"z": 0.30000000000000004, "w": 1.23456789012345, "n": 3}) == \
        {"z": 0.3, "w": 1.23456789, "n": 3}
