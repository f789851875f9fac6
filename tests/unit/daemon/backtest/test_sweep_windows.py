"""Walk-forward windows."""

from __future__ import annotations

import itertools

import pytest

from daemon.backtest.sweep_windows import Fold, folds, parse_duration, parse_walk_forward

H, D = 3_600_000, 86_400_000


def test_durations() -> None:
    assert parse_duration("30m") == 30 * 60_000
    assert parse_duration("12h") == 12 * H
    assert parse_duration("14d") == 14 * D
    assert parse_duration("2w") == 14 * D
    assert parse_duration("1.5d") == 36 * H
    for bad in ("14", "d", "3y", "-1d", "0h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_train_test_folds_roll_by_the_test_window_and_tile_the_range() -> None:
    spec = parse_walk_forward("2d:1d")
    assert (spec.train_ms, spec.test_ms) == (2 * D, D)
    cuts = folds(spec, 0, 5 * D + 5 * H)  # the partial day at the end is left out
    assert cuts == [Fold(0, 0, 2 * D, 2 * D, 3 * D), Fold(1, D, 3 * D, 3 * D, 4 * D),
                    Fold(2, 2 * D, 4 * D, 4 * D, 5 * D)]
    tests = [(f.test_start, f.test_end) for f in cuts]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(tests))


def test_a_fold_count_cuts_the_range_into_equal_segments() -> None:
    spec = parse_walk_forward("3")
    assert spec.count == 3
    cuts = folds(spec, 1000, 1000 + 8 * H)
    assert cuts == [Fold(0, 1000, 1000 + 2 * H, 1000 + 2 * H, 1000 + 4 * H),
                    Fold(1, 1000 + 2 * H, 1000 + 4 * H, 1000 + 4 * H, 1000 + 6 * H),
                    Fold(2, 1000 + 4 * H, 1000 + 6 * H, 1000 + 6 * H, 1000 + 8 * H)]


def test_bad_or_impossible_splits_are_refused() -> None:
    with pytest.raises(ValueError, match="expected TRAIN:TEST"):
        parse_walk_forward("14d")
    with pytest.raises(ValueError, match="fold count"):
        parse_walk_forward("0")
    with pytest.raises(ValueError, match="does not fit"):
        folds(parse_walk_forward("2d:1d"), 0, 2 * D)
    with pytest.raises(ValueError, match="too short"):
        folds(parse_walk_forward("5"), 0, 3)
