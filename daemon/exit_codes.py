"""Process exit codes of ``aaiti`` (documented in the README)."""

from __future__ import annotations

OK = 0  # orderly stop
INTERNAL_ERROR = 1  # unexpected error (a bug); the traceback is in the log
CONFIG_ERROR = 2  # invalid config file or command line
SUPERVISOR_GAVE_UP = 3  # the root supervisor exceeded its restart intensity
STATE_ERROR = 4  # state database corrupt, newer than this version, or unreadable; or data file invalid
STOP_TIMEOUT = 5  # an orderly stop did not finish within daemon.stop_timeout_s
NOT_RUNNING = 6  # CLI: the daemon's admin endpoint is not reachable
AUTH_ERROR = 7  # CLI: the admin token was refused
VENUE_ERROR = 8  # the venue could not be reached at start-up (network, DNS, TLS)
LOOKAHEAD_FOUND = 9  # backtest --check-lookahead: a strategy's earlier decisions depend on later data
# A second SIGTERM/SIGINT during an orderly stop exits at once with 128 + signal number
# (143 for SIGTERM, 130 for SIGINT), the shell convention for death by signal.
FORCED_BASE = 128
