"""A strategy that makes its worker process die mid-trial (sweep retry tests).

``hold_file``: the first trial (of any process) to start writes its process id to that
file and then blocks, so the test can kill that very process; every later start (the
retry) sees the file and trades nothing. ``die``: the process kills itself at start,
every time (a trial that always loses its worker).
"""

from __future__ import annotations

import os
import signal
import threading

import msgspec

from actors.strategy_api import Strategy

#: Safety net: a held trial goes on by itself after this long if nobody killed it.
_HOLD_S = 120.0


class HoldParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Params of HoldOnce."""

    hold_file: str = ""
    die: bool = False


class HoldOnce(Strategy[HoldParams]):
    """Blocks its process once (``hold_file``) or kills it (``die``); never trades."""

    params_type = HoldParams

    def on_start(self) -> None:
        """Hold or die, as the params say."""
        if self.params.die:
            os.kill(os.getpid(), signal.SIGKILL)
        path = self.params.hold_file
        if not path:
            return
        try:
            fd = os.open(path + ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return  # held once already: this is a retry or another trial
        os.close(fd)
        with open(path + ".tmp", "w") as fh:
            fh.write(str(os.getpid()))
        os.replace(path + ".tmp", path)  # the test sees the whole pid or nothing
        threading.Event().wait(_HOLD_S)
