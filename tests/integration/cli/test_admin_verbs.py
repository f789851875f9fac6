"""The admin verbs added for operators, and global options before the verb, against a real admin server.

``aaiti balances|fills|risk|cancel|strategy start/stop`` go through the admin API like the
other verbs (``--json`` prints the API's document); numbers in tables are printed at the
instrument's precision from the running config (``GET /config``); ``aaiti --url U --token
T kill`` takes the connection options before the verb. The synchronous CLI runs in a thread.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
import structlog

from actors.model.positions import PositionView
from daemon import exit_codes
from daemon.admin.server import AdminServer
from daemon.cli import main
from tests.integration.ops.conftest import TOKEN
from tests.integration.ops.memory_backend import MemoryBackend


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AAITI_ADMIN_TOKEN", "AAITI_ADMIN_URL", "AAITI_CONFIG", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)


async def aaiti(*argv: str) -> int:
    """``aaiti ARGV`` through the real entry point (global options, dispatch), in a thread."""
    return await asyncio.to_thread(main, list(argv))


def rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


async def test_global_connection_options_before_the_verb(
    server: AdminServer, backend: MemoryBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aaiti("--url", server.url, "--token", TOKEN, "kill", "--reason", "drill") == exit_codes.OK
    assert backend.kill_switch and backend.audit == [("kill", "drill")]
    assert capsys.readouterr().out.startswith("trading HALTED")
    assert await aaiti("--url", server.url, "--token", TOKEN, "--json", "--timeout", "5", "status") == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["name"] == "ops-test"


async def test_global_config_before_the_verb_gives_url_and_token(
    server: AdminServer, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path_factory.mktemp("operator") / "cli.toml"
    cfg.write_text(f"[admin]\nport = {server.port}\ntoken = '{TOKEN}'\n")
    assert await aaiti("--config", str(cfg), "status") == exit_codes.OK
    assert "ops-test" in capsys.readouterr().out


async def test_balances_table_at_the_assets_precision_and_json(
    server: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("--url", server.url, "--token", TOKEN)
    assert await aaiti("balances", *base) == exit_codes.OK
    assert rows(capsys.readouterr().out) == [
        ["ASSET", "FREE", "LOCKED", "TOTAL"],
        ["USDT", "990.5000", "9.5000", "1000.0000"],  # USDT: the tick size of the */USDT instruments
        ["S000", "12", "0", "12"],  # no instrument is quoted in S000: as it is, zero as 0
    ]
    assert await aaiti("balances", "--json", *base) == exit_codes.OK
    assert json.loads(capsys.readouterr().out)["balances"][0]["asset"] == "USDT"


async def test_fills_table_filtered_by_order(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await aaiti("fills", "--order", "aaiti-00004", "--url", server.url, "--token", TOKEN) == exit_codes.OK
    header, *fills = rows(capsys.readouterr().out)
    assert header == ["TIME", "TRADE_ID", "CLIENT_ORDER_ID", "SYMBOL", "SIDE", "PRICE", "SIZE", "FEE",
                      "FEE_CURRENCY", "LIQUIDITY"]
    # Order 4 (S001/USDT) was half filled: 14 / 2 = 7 at step 0.1, price at tick 0.0001, fee in USDT.
    assert fills == [["2023-11-14", "22:13:24", "t4", "aaiti-00004", "S001/USDT", "buy", "0.5000", "7.0", "0.0010",
                      "USDT", "taker"]]


async def test_risk_shows_state_money_limits_and_denials(
    server: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aaiti("risk", "--url", server.url, "--token", TOKEN) == exit_codes.OK
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["state", "ACTIVE"]
    assert ["equity", "1000.00000000"] in rows(out)  # ETH, the first instrument's quote: tick 0.00000001
    assert ["daily_pnl", "-0.25000000"] in rows(out)
    assert "\nlimits:\n" in out and "\ndenials by reason:\n" in out
    assert rows(out)[-3:] == [["REASON", "DENIALS"], ["max_position", "2"], ["stale_data", "1"]]


async def test_cancel_open_order_0_finished_or_unknown_1(
    server: AdminServer, backend: MemoryBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("--url", server.url, "--token", TOKEN)
    assert await aaiti("cancel", "aaiti-00002", "--reason", "manual", *base) == exit_codes.OK
    assert capsys.readouterr().out.strip() == "cancel requested: aaiti-00002"
    assert backend.audit == [("cancel", "aaiti-00002")]
    assert await aaiti("cancel", "aaiti-00000", *base) == 1  # FILLED: 409
    assert "already FILLED" in capsys.readouterr().err
    assert await aaiti("cancel", "nope", "--json", *base) == 1
    assert "no order with client_order_id 'nope'" in capsys.readouterr().err


async def test_strategy_stop_and_start(
    server: AdminServer, backend: MemoryBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("--url", server.url, "--token", TOKEN)
    assert await aaiti("strategy", "stop", "ema_fast", *base) == exit_codes.OK
    assert capsys.readouterr().out.strip() == "strategy ema_fast: stop accepted"
    assert backend.strategies["ema_fast"] is False
    assert await aaiti("strategy", "start", "ema_fast", "--json", *base) == exit_codes.OK
    assert json.loads(capsys.readouterr().out) == {"strategy": "ema_fast", "action": "start", "accepted": True}
    assert backend.strategies["ema_fast"] is True
    assert await aaiti("strategy", "stop", "nobody", *base) == 1


async def test_positions_print_at_instrument_precision(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await aaiti("positions", "--url", server.url, "--token", TOKEN) == exit_codes.OK
    assert rows(capsys.readouterr().out) == [
        ["SYMBOL", "SIZE", "AVG_PRICE", "REALIZED_PNL", "FEES", "FILLS"],
        ["S000/USDT", "110.0", "0.5000", "-0.0050", "0", "5"],
        ["S001/USDT", "65.0", "0.5000", "-0.0050", "0", "5"],
        ["S002/USDT", "-135.0", "0.5000", "-0.0050", "0", "5"],
    ]


async def test_positions_of_a_closed_xrp_eth_position_have_no_exponent_and_no_artefacts(
    server: AdminServer, backend: MemoryBackend, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What the daemon reported after a round trip: a zero with an exponent, a division's tail.
    closed = PositionView(symbol="XRP/ETH", size=Decimal("0E-8"), avg_price=Decimal("0.001414183333333333333333333"),
                          realized_pnl=Decimal("-0.1630761390000000000000000009"), fees=Decimal("0.00070709"),
                          fills=2)
    monkeypatch.setattr(backend, "positions", lambda: [closed])
    assert await aaiti("positions", "--url", server.url, "--token", TOKEN) == exit_codes.OK
    assert rows(capsys.readouterr().out) == [
        ["SYMBOL", "SIZE", "AVG_PRICE", "REALIZED_PNL", "FEES", "FILLS"],
        ["XRP/ETH", "0", "0.00141418", "-0.16307614", "0.00070709", "2"],
    ]


async def test_logs_print_prices_at_the_instruments_precision(
    server: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    structlog.get_logger("aaiti").bind(actor="bar_log").info(
        "feed.bar", symbol="XRP/ETH", open=0.00141418, close=0.0014142, volume=1234.0, pnl=Decimal("0E-8"))
    assert await aaiti("logs", "-n", "1", "--url", server.url, "--token", TOKEN) == exit_codes.OK
    line = capsys.readouterr().out.strip()
    # It used to print open=0.001 (floats cut to 3 places) and pnl=0E-8.
    assert line.endswith("feed.bar symbol=XRP/ETH open=0.00141418 close=0.00141420 volume=1234 pnl=0"), line
