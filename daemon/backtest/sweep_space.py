"""The parameter space of a sweep: ``--param KEY=SPEC`` parsing and grid expansion.

A spec sets one dotted config key (``strategies.0.params.fast``; numbers index lists, as
``run_backtest_sync``'s overrides) to one of:

- a stepped range ``lo:hi:step``, both ends included (``5:20:5`` is 5, 10, 15, 20); ints
  if all three are ints, else floats (``0.5:2:0.5``);
- a list ``a,b,c`` of TOML-like scalars (ints, floats, ``true``/``false``, or strings;
  quotes keep a number a string: ``"500"``); one value fixes the key;
- an interval ``lo:hi`` (int if both are ints, else float), for the optuna samplers only:
  a grid cannot enumerate it.

``grid`` expands specs into every combination, first key varying slowest.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Literal

__all__ = [
    "ParamSpec",
    "Params",
    "Scalar",
    "SpecError",
    "check_unique",
    "grid",
    "grid_size",
    "normalise",
    "parse_param",
    "parse_scalar",
]

Scalar = bool | int | float | str
Params = dict[str, Scalar]

_KEY = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
_INT = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: A grid larger than this is surely a typo (and would never finish).
MAX_GRID = 1_000_000


class SpecError(ValueError):
    """A ``--param`` that cannot be parsed or used; the message names it."""


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One swept config key and the values it may take.

    ``kind`` is "range" (``lo``..``hi`` by ``step``, ends included), "interval"
    (``lo``..``hi``, continuous for floats; optuna samplers only) or "choices".
    """

    key: str
    kind: Literal["range", "interval", "choices"]
    lo: int | float = 0
    hi: int | float = 0
    step: int | float = 0
    choices: tuple[Scalar, ...] = ()
    text: str = ""

    @property
    def is_int(self) -> bool:
        """True if a range/interval takes integer values."""
        return all(isinstance(v, int) for v in (self.lo, self.hi, self.step))

    @property
    def decimals(self) -> int:
        """Decimal places of a float range's step (values are rounded to them)."""
        exponent = Decimal(repr(self.step)).normalize().as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else 0

    def grid_values(self) -> tuple[Scalar, ...]:
        """Every value a grid visits, in order. Raises SpecError for an interval."""
        if self.kind == "choices":
            return self.choices
        if self.kind == "interval":
            raise SpecError(f"--param {self.text}: an interval lo:hi has no grid; give a step (lo:hi:step) "
                            "or a list, or use --sampler tpe|random|cmaes")
        if self.is_int:
            return tuple(range(int(self.lo), int(self.hi) + 1, int(self.step)))
        lo, step = Decimal(repr(self.lo)), Decimal(repr(self.step))
        count = int((Decimal(repr(self.hi)) - lo) / step) + 1
        return tuple(float(lo + i * step) for i in range(count))


def parse_scalar(text: str) -> Scalar:
    """A list item or fixed value: int, float, ``true``/``false``, else a string (quotes stripped)."""
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    if value in ("true", "false"):
        return value == "true"
    if _INT.fullmatch(value):
        return int(value)
    if _NUMBER.fullmatch(value):
        return float(value)
    return value


def _number(text: str, spec: str) -> int | float:
    value = parse_scalar(text)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"--param {spec}: {text.strip()!r} is not a number")
    return value


def parse_param(text: str) -> ParamSpec:
    """Parse ``KEY=SPEC`` (see the module docstring). Raises SpecError naming the problem."""
    key, sep, spec = text.partition("=")
    key, spec = key.strip(), spec.strip()
    if not sep or not key or not spec:
        raise SpecError(f"--param {text!r}: expected KEY=SPEC (lo:hi:step, lo:hi or a,b,c)")
    if not _KEY.fullmatch(key):
        raise SpecError(f"--param {text!r}: {key!r} is not a dotted config key (strategies.0.params.fast)")
    if ":" in spec and "," not in spec:
        parts = spec.split(":")
        if len(parts) not in (2, 3):
            raise SpecError(f"--param {text!r}: a range is lo:hi:step or lo:hi")
        nums = [_number(p, text) for p in parts]
        lo, hi = nums[0], nums[1]
        if hi < lo:
            raise SpecError(f"--param {text!r}: hi ({hi}) is below lo ({lo})")
        if len(nums) == 2:
            if isinstance(lo, int) and isinstance(hi, int):
                return ParamSpec(key, "interval", lo, hi, 1, text=text)
            return ParamSpec(key, "interval", float(lo), float(hi), 0.0, text=text)
        step = nums[2]
        if step <= 0:
            raise SpecError(f"--param {text!r}: the step must be positive")
        if not all(isinstance(n, int) for n in nums):
            lo, hi, step = float(lo), float(hi), float(step)
        spec_ = ParamSpec(key, "range", lo, hi, step, text=text)
        if len(spec_.grid_values()) > MAX_GRID:
            raise SpecError(f"--param {text!r}: more than {MAX_GRID} values")
        return spec_
    if any(item.strip() == "" for item in spec.split(",")):
        raise SpecError(f"--param {text!r}: empty item in the list")
    choices = tuple(parse_scalar(item) for item in spec.split(","))
    if len(set(map(repr, choices))) != len(choices):
        raise SpecError(f"--param {text!r}: a value is listed twice")
    return ParamSpec(key, "choices", choices=choices, text=text)


def check_unique(specs: Sequence[ParamSpec]) -> None:
    """Raise SpecError if two specs set the same key."""
    seen: set[str] = set()
    for spec in specs:
        if spec.key in seen:
            raise SpecError(f"--param {spec.key} given twice")
        seen.add(spec.key)


def grid_size(specs: Sequence[ParamSpec]) -> int:
    """How many combinations ``grid`` yields (SpecError for an interval)."""
    size = 1
    for spec in specs:
        size *= len(spec.grid_values())
    return size


def grid(specs: Sequence[ParamSpec]) -> list[Params]:
    """Every combination of the specs' values, first key varying slowest."""
    check_unique(specs)
    size = grid_size(specs)
    if size > MAX_GRID:
        raise SpecError(f"the grid has {size} combinations (more than {MAX_GRID}); narrow it or use --trials")
    keys = [s.key for s in specs]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(s.grid_values() for s in specs))]


def normalise(specs: Sequence[ParamSpec], params: Mapping[str, Scalar]) -> Params:
    """Params as the backtest gets them: a float range's values rounded to its step's decimals.

    (Samplers compute ``lo + k * step`` in binary floating point: 0.30000000000000004.)
    Continuous floats are rounded to 10 significant digits, like every float of a result.
    """
    out: Params = {}
    by_key = {s.key: s for s in specs}
    for key, value in params.items():
        spec = by_key.get(key)
        if isinstance(value, float) and spec is not None and spec.kind == "range" and not spec.is_int:
            value = round(value, spec.decimals)
        elif isinstance(value, float):
            value = float(f"{value:.10g}")
        out[key] = value
    return out
