"""``aaiti status`` as text: what an operator reads at a glance (rounded durations, UTC times, sections)."""

from __future__ import annotations

from daemon.cli_admin import render_status, status_value

STATUS = {
    "name": "aaiti-paper",
    "uptime_s": 24.70312,
    "loop_lag_ms": 0.034981,
    "config_loaded_at": 1796457033.7446198,
    "not_ready_reasons": [],
    "health": {"status": "degraded", "reasons": ["feed stale"]},
    "venue": {"kind": "paper", "name": "paper"},
    "actors": [{"name": "feed", "heartbeat_age_s": 0.15141109699834487, "restarts": 0},
               {"name": "contingent", "heartbeat_age_s": 24.312, "restarts": 1}],
    "feed": {"taken_ns": 21859772772131, "source": "replay", "feed_time_ms": 1570758101825,
             "source_stats": {"rows": 12477, "ended": False},
             "symbols": [{"symbol": "XRP/ETH", "last_ts_ms": 1570758101825, "feed_age_ms": 0, "stale": False}]},
}


def test_status_durations_rounded_times_in_utc() -> None:
    assert status_value("heartbeat_age_s", 0.15141109699834487) == "0.151"
    assert status_value("uptime_s", 24.70312) == "24.7"
    assert status_value("loop_lag_ms", 0.034981) == "0.0"
    assert status_value("config_loaded_at", 1796457033.7446198) == "2026-12-05 07:50:33"
    assert status_value("last_ts_ms", 1570758101825) == "2019-10-11 01:41:41"
    assert status_value("feed_age_ms", 0) == "0"  # a duration in ms stays a number
    assert status_value("reconnects", {}) == "-" and status_value("circuit_breakers", []) == "-"


def test_status_render_sections_and_no_internal_stamps() -> None:
    text = render_status(STATUS)
    lines = text.splitlines()
    assert "uptime_s           24.7" in lines
    assert "health             degraded (feed stale)" in lines
    assert "venue              kind=paper name=paper" in lines
    assert "\nactors:\nNAME" in text and "0.151" in text and "0.15141109699834487" not in text
    assert "\nfeed:\n" in text and "\nfeed.symbols:\n" in text
    assert "source_stats  rows=12477 ended=no" in text
    assert "2019-10-11 01:41:41" in text
    assert "taken_ns" not in text and "21859772772131" not in text
