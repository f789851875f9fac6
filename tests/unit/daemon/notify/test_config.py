"""The [notify] section: defaults, event kinds, validation."""

from __future__ import annotations

import pytest

from config.errors import ConfigError
from config.loader import parse_config_text
from config.render import config_to_plain
from config.schema.ops import NOTIFY_EVENT_KINDS
from daemon.notify import EventKind
from daemon.notify.events import SEVERITY


def test_event_kinds_of_config_and_code_agree() -> None:
    assert tuple(k.value for k in EventKind) == NOTIFY_EVENT_KINDS
    assert set(SEVERITY) == set(EventKind)


def test_defaults_send_nothing() -> None:
    cfg = parse_config_text("", "t.toml")
    assert cfg.notify.urls == () and cfg.notify.events == {}


def test_events_table_and_urls_parse_and_urls_are_redacted() -> None:
    cfg = parse_config_text('[notify]\nurls = ["json://127.0.0.1/x"]\nevents = { fill = false }\n', "t.toml")
    assert cfg.notify.events == {"fill": False}
    assert config_to_plain(cfg)["notify"]["urls"] == "***"


def test_unknown_event_kind_and_bad_retry_are_errors() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config_text("[notify]\nevents = { fills = true }\nretry_initial_s = 10\nretry_max_s = 1\n", "t.toml")
    text = str(err.value)
    assert "notify.events.fills: unknown event kind 'fills'" in text
    assert "notify.retry_max_s" in text
