"""``aaiti contingent`` against a real admin server: list (table and JSON), show one, cancel one.

The server is the ops tests' real ``AdminServer`` over a ``MemoryBackend`` holding an emulated
bracket protecting 2.1 (take-profit 0.55, a trailing stop at 0.47123), a native stop and a
finished OCO. Numbers print at the instrument's precision (S000/USDT: tick 0.0001, step 0.1).
The synchronous CLI runs in a thread.
"""

from __future__ import annotations

import asyncio
import json

import pytest

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
    """``aaiti ARGV`` through the real entry point, in a thread."""
    return await asyncio.to_thread(main, list(argv))


def base(server: AdminServer) -> tuple[str, ...]:
    return ("--url", server.url, "--token", TOKEN)


async def test_active_table_has_kind_mode_status_protected_and_legs(
    server: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aaiti("contingent", "--active", *base(server)) == exit_codes.OK
    header, *lines = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["ID", "STRATEGY", "SYMBOL", "KIND", "MODE", "STATUS", "PROTECTED", "LEGS"]
    assert [ln.split()[0] for ln in lines] == ["ct-00002", "ct-00001"]  # newest first, the finished OCO left out
    bracket = lines[1].split(maxsplit=7)
    assert bracket[:7] == ["ct-00001", "ema_fast", "S000/USDT", "bracket", "emulated", "WORKING", "2.1"]
    # Prices at the tick size (0.0001), sizes at the step size (0.1).
    assert bracket[7] == "entry 2.1 @ 0.5000 | take_profit 2.1 @ 0.5500 | stop_loss trailing 0.4712"
    stop = lines[0].split(maxsplit=7)
    assert stop == ["ct-00002", "rsi_revert", "S001/USDT", "stop", "native", "WORKING", "3.0", "order 3.0 @ 0.4000"]


async def test_all_includes_finished_and_json_is_the_api_document(
    server: AdminServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aaiti("--url", server.url, "--token", TOKEN, "contingent") == exit_codes.OK  # global options
    lines = capsys.readouterr().out.strip().splitlines()[1:]
    assert [ln.split()[0] for ln in lines] == ["ct-00002", "ct-00001", "ct-00003"]
    assert lines[2].split()[5:7] == ["DONE", "-"]
    assert await aaiti("contingent", "--json", "--active", *base(server)) == exit_codes.OK
    doc = json.loads(capsys.readouterr().out)
    assert [v["id"] for v in doc["contingent"]] == ["ct-00002", "ct-00001"]
    assert doc["contingent"][1]["legs"][2]["trailing"] == "50bps"


async def test_show_one_with_its_legs(server: AdminServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await aaiti("contingent", "ct-00001", *base(server)) == exit_codes.OK
    out = capsys.readouterr().out
    block, legs = out.split("\n\nlegs:\n")
    facts = dict(ln.split(maxsplit=1) for ln in block.splitlines() if len(ln.split()) > 1)
    assert facts["kind"] == "bracket" and facts["mode"] == "emulated" and facts["protected"] == "2.1"
    assert facts["created"] == "2023-11-14 22:15:00"
    rows = [ln.split() for ln in legs.strip().splitlines()]
    assert rows[0] == ["NAME", "TYPE", "SIDE", "STATUS", "SIZE", "FILLED", "TRIGGER_PRICE", "LIMIT_PRICE", "TRAILING",
                       "CLIENT_ORDER_IDS"]
    assert rows[3] == ["stop_loss", "stop_market", "sell", "WORKING", "2.1", "0", "0.4712", "-", "50bps", "-"]
    assert await aaiti("contingent", "ghost", *base(server)) == 1
    assert "no contingent order with id 'ghost'" in capsys.readouterr().err


async def test_cancel_active_0_finished_or_unknown_1(
    server: AdminServer, backend: MemoryBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await aaiti("contingent", "cancel", "ct-00001", "--reason", "drill", *base(server)) == exit_codes.OK
    assert capsys.readouterr().out.strip() == "cancel requested: contingent order ct-00001"
    assert backend.audit == [("cancel_contingent", "ct-00001")]
    assert backend.contingents["ct-00001"].status == "CANCELED" and backend.contingents["ct-00001"].reason == "drill"
    assert await aaiti("contingent", "cancel", "ct-00003", *base(server)) == 1  # DONE: 409
    assert "already DONE" in capsys.readouterr().err
    assert await aaiti("contingent", "cancel", "ghost", "--json", *base(server)) == 1
    assert "no contingent order with id 'ghost'" in capsys.readouterr().err
    assert await aaiti("contingent", "cancel", *base(server)) == exit_codes.CONFIG_ERROR
    assert "usage: aaiti contingent" in capsys.readouterr().err
    assert await aaiti("contingent", "--limit", "0", *base(server)) == exit_codes.CONFIG_ERROR  # the API's 400
    assert "limit" in capsys.readouterr().err
