"""``[log] format``: JSON for machines, the console format for people at a terminal; bars at debug."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog

from actors.bar_log import BarLog
from actors.kernel.channel import Channel
from actors.model.market import Bar
from config.errors import ConfigError
from config.loader import parse_config_text
from config.schema.kernel import LogSection
from daemon.logging_setup import LoggingSetup, resolve_format


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_defaults_auto_console_on_a_terminal_json_otherwise() -> None:
    assert LogSection().format == "auto" and LogSection().summary_interval_s == 60.0
    assert resolve_format("auto", Terminal()) == "console"
    assert resolve_format("auto", io.StringIO()) == "json"  # journald, a pipe, a file
    assert resolve_format("json", Terminal()) == "json"
    assert resolve_format("console", io.StringIO()) == "console"


def test_config_accepts_the_three_formats_only() -> None:
    assert parse_config_text("[log]\nformat = 'console'\n", "t").log.format == "console"
    with pytest.raises(ConfigError, match=r"log\.format"):
        parse_config_text("[log]\nformat = 'pretty'\n", "t")


def test_console_format_is_readable_and_plain_off_a_terminal() -> None:
    out = io.StringIO()
    setup = LoggingSetup("info", 10, stream=out, log_format="console")
    structlog.get_logger("aaiti").bind(actor="feed").info("feed.connected", symbols=3, api_key="AKIA123")
    line = out.getvalue()
    with pytest.raises(ValueError):
        json.loads(line)
    assert "feed.connected" in line and "symbols=3" in line and "actor=feed" in line and "[info" in line
    assert "\x1b[" not in line  # no colour codes in a file or pipe
    assert "AKIA123" not in line and "api_key=***" in line  # redaction runs before rendering
    assert setup.ring.tail(1)[0]["event"] == "feed.connected"  # the admin log tail keeps the record


def test_console_format_on_a_terminal_has_colours() -> None:
    out = Terminal()
    setup = LoggingSetup("info", 10, stream=out, log_format="auto")
    structlog.get_logger("aaiti").warning("risk.denied", reason="MAX_POSITION")
    assert setup.format == "console" and "\x1b[" in out.getvalue() and "MAX_POSITION" in out.getvalue()


def test_auto_off_a_terminal_writes_json() -> None:
    out = io.StringIO()
    setup = LoggingSetup("info", 10, stream=out, log_format="auto")
    structlog.get_logger("aaiti").info("daemon.ready", strategies=["a"])
    assert setup.format == "json" and json.loads(out.getvalue())["event"] == "daemon.ready"


BAR = Bar(symbol="XRP/ETH", ts_ms=1_570_752_000_000, timeframe="1m", open=0.00141418, high=0.0014145,
          low=0.0014139, close=0.0014142, volume=500.0, trades=3)


@pytest.mark.parametrize(("level", "logged"), [("info", False), ("debug", True)])
async def test_feed_bar_lines_are_debug(level: str, logged: bool) -> None:
    out = io.StringIO()
    LoggingSetup(level, 10, stream=out)
    bar_log = BarLog("bar_log", Channel[Bar]("bars", 8))
    await bar_log.handle(BAR)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == (["feed.bar"] if logged else [])
    if logged:
        assert events[0]["level"] == "debug" and events[0]["close"] == 0.0014142
    assert bar_log.history().series[0].bars == (BAR,)  # the console's chart keeps it either way
