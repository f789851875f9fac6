"""Files that ``aaiti`` writes for its user: ``aaiti new-strategy`` renders ``strategy.py.tmpl``.

``render_strategy(module)`` fills the template in; ``strategy_block(...)`` is the
``[[strategies]]`` entry that runs it.
"""

from __future__ import annotations

import keyword
import re
from importlib import resources
from string import Template

__all__ = ["class_name_for", "render_strategy", "strategy_block", "validate_module_name"]

_MODULE = re.compile(r"[a-z_][a-z0-9_]{0,31}")


def validate_module_name(name: str) -> str | None:
    """Why ``name`` cannot be a strategy module's name (None: it can).

    The name is the file's stem and the module's import name, and by default also the
    ``[[strategies]]`` instance name: lower-case letters, digits and underscores, at most 32.
    """
    if not _MODULE.fullmatch(name):
        return "expected a module name: lower-case letters, digits and '_', starting with a letter, at most 32"
    if keyword.iskeyword(name):
        return "a Python keyword cannot be a module name"
    return None


def class_name_for(module: str) -> str:
    """The strategy class name for a module name: ``my_breakout`` -> ``MyBreakout``."""
    return "".join(part[:1].upper() + part[1:] for part in module.split("_") if part) or "Strategy"


def render_strategy(module: str) -> str:
    """The source of a complete, documented strategy module named ``module``."""
    text = resources.files("daemon.templates").joinpath("strategy.py.tmpl").read_text(encoding="utf-8")
    return Template(text).substitute(module=module, class_name=class_name_for(module))


def strategy_block(module: str, symbol: str, timeframe: str) -> str:
    """The ``[[strategies]]`` entry running the generated strategy on ``symbol`` bars of ``timeframe``."""
    return (
        "[[strategies]]\n"
        f'name = "{module}"\n'
        f'strategy = "{module}:{class_name_for(module)}"\n'
        f'symbols = ["{symbol}"]\n'
        f'timeframe = "{timeframe}"\n'
        '# size is in base units: keep it above the instrument\'s min_qty and min_notional\n'
        'params = { lookback = 20, size = "1" }\n'
    )
