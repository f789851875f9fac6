"""Walk-forward windows: consecutive train/test folds over a data range.

``--walk-forward TRAIN:TEST`` takes two durations (``14d:7d``, ``12h:6h``; units ``m``
minutes, ``h`` hours, ``d`` days, ``w`` weeks). Fold k trains on ``[start + k*TEST,
start + k*TEST + TRAIN)`` and tests on the ``TEST`` that follows it; folds are added while
the test window ends inside the range, so the test windows tile the range after the first
train window, without overlap. ``--walk-forward N`` (a count) cuts the range into N + 1
equal segments: fold k trains on segment k and tests on segment k + 1.
"""

from __future__ import annotations

import dataclasses
import re

__all__ = ["Fold", "WalkForward", "folds", "parse_duration", "parse_walk_forward"]

_UNITS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([mhdw])")
#: More folds than this is surely a typo (each fold is a whole sweep).
MAX_FOLDS = 1000


@dataclasses.dataclass(frozen=True)
class WalkForward:
    """A walk-forward request: train/test durations (ms) or a fold count."""

    train_ms: int = 0
    test_ms: int = 0
    count: int = 0
    text: str = ""


@dataclasses.dataclass(frozen=True)
class Fold:
    """One train window and the test window right after it (epoch ms, ends exclusive)."""

    index: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int


def parse_duration(text: str) -> int:
    """Milliseconds of ``30m``, ``12h``, ``14d``, ``2w`` (decimals allowed: ``1.5d``). ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a duration (a number and m, h, d or w: 14d)")
    ms = int(float(match.group(1)) * _UNITS[match.group(2)])
    if ms <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return ms


def parse_walk_forward(text: str) -> WalkForward:
    """``TRAIN:TEST`` durations or a fold count. ValueError with the accepted forms."""
    value = text.strip()
    if value.isdigit():
        count = int(value)
        if not 1 <= count <= MAX_FOLDS:
            raise ValueError(f"--walk-forward {value}: the fold count must be 1..{MAX_FOLDS}")
        return WalkForward(count=count, text=value)
    train, sep, test = value.partition(":")
    if not sep:
        raise ValueError(f"--walk-forward {text!r}: expected TRAIN:TEST durations (14d:7d) or a fold count")
    return WalkForward(train_ms=parse_duration(train), test_ms=parse_duration(test), text=value)


def folds(spec: WalkForward, start_ms: int, end_ms: int) -> list[Fold]:
    """The folds of ``spec`` inside ``[start_ms, end_ms)``. ValueError if none fits."""
    span = end_ms - start_ms
    if spec.count:
        segment = span // (spec.count + 1)
        if segment <= 0:
            raise ValueError(f"--walk-forward {spec.text}: the range is too short for {spec.count} folds")
        train_ms = test_ms = segment
    else:
        train_ms, test_ms = spec.train_ms, spec.test_ms
    out: list[Fold] = []
    k = 0
    while start_ms + k * test_ms + train_ms + test_ms <= end_ms:
        train_start = start_ms + k * test_ms
        train_end = train_start + train_ms
        out.append(Fold(k, train_start, train_end, train_end, train_end + test_ms))
        k += 1
        if k > MAX_FOLDS:
            raise ValueError(f"--walk-forward {spec.text}: more than {MAX_FOLDS} folds; use longer windows")
    if not out:
        raise ValueError(f"--walk-forward {spec.text}: train + test ({(train_ms + test_ms) / 3_600_000:g} h) "
                         f"does not fit in the range ({span / 3_600_000:g} h)")
    return out
