"""Logging: JSON lines with UTC ISO timestamps, run-time level, secret redaction, the tail ring."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

import structlog

from daemon.logging_setup import LoggingSetup


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_utc_iso_timestamp_and_level() -> None:
    out = io.StringIO()
    LoggingSetup("info", 10, stream=out)
    structlog.get_logger("aaiti").bind(actor="a").info("hello", n=1)
    (rec,) = lines(out)
    assert rec["event"] == "hello" and rec["level"] == "info" and rec["actor"] == "a" and rec["n"] == 1
    ts = datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00"))
    assert ts.utcoffset() is not None and ts.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_secret_keys_redacted_at_any_depth_and_known_values_scrubbed() -> None:
    out = io.StringIO()
    setup = LoggingSetup("info", 10, stream=out)
    setup.redactor.set_keys({"webhook_url"})
    setup.redactor.add_secret_value("s3cr3t-token-value")
    structlog.get_logger("aaiti").info(
        "connect",
        api_key="AKIA123",
        nested={"password": "pw", "ok": 1, "deeper": [{"secret": "x"}]},
        webhook_url="https://hooks.example/abc",
        note="header was Bearer s3cr3t-token-value",
    )
    (rec,) = lines(out)
    assert rec["api_key"] == "***"
    assert rec["nested"] == {"password": "***", "ok": 1, "deeper": [{"secret": "***"}]}
    assert rec["webhook_url"] == "***"
    assert rec["note"] == "header was Bearer ***"
    assert "s3cr3t-token-value" not in out.getvalue() and "AKIA123" not in out.getvalue()


def test_level_change_at_run_time_filters_lines() -> None:
    out = io.StringIO()
    setup = LoggingSetup("warning", 10, stream=out)
    log = structlog.get_logger("aaiti")
    log.info("hidden")
    setup.level.set("debug")
    log.debug("shown")
    assert [r["event"] for r in lines(out)] == ["shown"]


def test_ring_keeps_newest_records_and_filters_tail() -> None:
    out = io.StringIO()
    setup = LoggingSetup("debug", 3, stream=out)
    log = structlog.get_logger("aaiti")
    for i in range(5):
        log.bind(actor="feed" if i % 2 else "risk").warning("w", i=i)
    assert [r["i"] for r in setup.ring.tail(10)] == [2, 3, 4]
    assert [r["i"] for r in setup.ring.tail(10, logger="feed")] == [3]
    assert setup.ring.tail(10, level="error") == []
