"""Configs and helpers for sweep tests: the bundled paper config with one EmaCross strategy."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.daemon.daemon_process import REPO
from tests.integration.daemon.paper_state import paper_config

HOLD = "tests.integration.sweep.hold_strategy:HoldOnce"
#: The last few hours of the bundled tape: short trials.
WINDOW = ("--from", "2019-10-13T08:00")  # to the end of the data, 11:19


def sweep_config(tmp: Path, *, hold_file: Path | None = None, die: bool = False) -> Path:
    """``paper_config`` in ``tmp`` with only the ema_cross strategy, plus a HoldOnce one if asked."""
    path = paper_config(tmp)
    text = path.read_text()
    first = text.index("[[strategies]]")
    second = text.index("[[strategies]]", first + 1)
    text = text[:second]
    if hold_file is not None or die:
        params = f'hold_file = "{hold_file or ""}", die = {"true" if die else "false"}'
        text += (f'[[strategies]]\nname = "hold"\nstrategy = "{HOLD}"\nsymbols = ["XRP/ETH"]\ntimeframe = "1m"\n'
                 f"params = {{ {params} }}\n")
    path.write_text(text)
    return path


def sweep_command(*args: str) -> list[str]:
    """The argv of ``aaiti sweep ARGS`` as a child process."""
    return [sys.executable, "-m", "daemon.cli", "sweep", *args]


def run_sweep_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run ``aaiti sweep ARGS`` to its end."""
    return subprocess.run(sweep_command(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=child_env())


def child_env() -> dict[str, str]:
    """The environment for children that must import ``tests`` (strategies named by import path)."""
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env
