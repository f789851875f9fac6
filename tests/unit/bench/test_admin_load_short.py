"""A short run of the admin load bench (bench/admin_load.py): behaviour only, no timing thresholds.

The real daemon replays the bundled tape at speed with its admin endpoint on a free port;
a scraper reads /metrics and five console clients (a separate process) log in with the
token, then follow the console's state stream and the log stream with their session
cookie. Afterwards every figure is in the JSON, every scrape succeeded and every stream
received events (the clients report ready only once each stream delivered its first one).
"""

from __future__ import annotations

import json

from bench.admin_load import AdminLoadSettings, run_admin_load

CONSOLES = 5
PHASE_KEYS = ("events_per_s", "daemon_cpu_pct", "scrapes", "scrape_errors", "scrape_p50_ms", "scrape_p99_ms",
              "loop_lag_samples", "loop_lag_p50_ms", "loop_lag_p99_ms", "loop_lag_max_ms", "series")


def test_admin_load_short_streams_receive_events() -> None:
    settings = AdminLoadSettings(seconds=1.0, warmup_s=0.2, consoles=CONSOLES, console_interval=0.5)
    out = run_admin_load(settings, runs=1, quiet=True)
    json.dumps(out)  # the last line of the bench
    for key in PHASE_KEYS:
        assert key in out, key
        assert f"{key}_console" in out, key
    for key in ("console_streams", "console_events_received", "log_events_received", "meets_target",
                "target_loop_lag_p99_ms", "loop_lag_p99_ms_console_runs"):
        assert key in out, key
    assert out["runs"] == 1
    # The replay flowed through the feed in both phases.
    assert out["events_per_s"] > 0 and out["events_per_s_console"] > 0
    # Every scrape answered 200 with the exposition.
    assert out["scrapes"] >= 1 and out["scrapes_console"] >= 1
    assert out["scrape_errors"] == out["scrape_errors_console"] == 0
    assert out["series"] > 0
    # Every console logged in and its streams delivered: a state per stream, log lines per stream.
    assert out["console_streams"] == CONSOLES
    assert out["console_events_min_per_stream"] >= 1
    assert out["console_state_events"] >= CONSOLES
    assert out["console_events_received"] >= out["console_state_events"]
    assert out["log_streams"] == CONSOLES
    assert out["log_events_received"] >= CONSOLES
    assert out["loop_lag_samples"] > 0 and out["loop_lag_samples_console"] > 0
