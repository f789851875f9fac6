"""Numbers as the CLI prints them: plain decimals at the instrument's precision, zeros as 0, no exponent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from config.loader import parse_config_text
from config.render import config_to_plain
from daemon.cli_admin import render_log, render_order
from daemon.cli_format import NO_PRECISION, Precision, format_number, table


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        ("0E-8", None, "0"),
        (Decimal("0E-8"), 8, "0"),
        ("-0.000", None, "0"),
        ("-0.1630761390000000000000000009", 8, "-0.16307614"),
        ("-0.1630761390000000000000000009", None, "-0.1630761390000000000000000009"),
        (0.00141418, None, "0.00141418"),  # a float's shortest repr, not 3 places
        (0.00141418, 8, "0.00141418"),
        (1e-05, None, "0.00001"),
        (Decimal("1E+3"), None, "1000"),
        (Decimal("500.000"), 0, "500"),
        (Decimal("0.0014142"), 8, "0.00141420"),
        (Decimal("12345678901234567890.5"), 18, "12345678901234567890.500000000000000000"),
        ("not a number", 2, "not a number"),
        ("NaN", 2, "NaN"),
    ],
)
def test_format_number(value: Decimal | float | str, decimals: int | None, text: str) -> None:
    assert format_number(value, decimals) == text


CONFIG = parse_config_text(
    "[feed]\nsymbols = ['XRP/ETH', 'BTC/USDT']\n"
    "[instruments.'XRP/ETH']\nbase = 'XRP'\nquote = 'ETH'\ntick_size = '0.00000001'\nstep_size = '1'\n"
    "[instruments.'BTC/USDT']\nbase = 'BTC'\nquote = 'USDT'\ntick_size = '0.01'\nstep_size = '0.00001'\n",
    "test",
)
PRECISION = Precision.from_config(config_to_plain(CONFIG))


def test_precision_from_the_config_instruments() -> None:
    assert PRECISION.tick == {"XRP/ETH": 8, "BTC/USDT": 2}
    assert PRECISION.step == {"XRP/ETH": 0, "BTC/USDT": 5}
    assert PRECISION.asset == {"ETH": 8, "USDT": 2}
    assert PRECISION.equity_asset == "ETH"  # risk.equity_asset unset: the first instrument's quote


def test_a_row_is_printed_at_its_instrument_and_quote_asset() -> None:
    rows = [
        {"symbol": "XRP/ETH", "size": "-0E-8", "price": 0.00141418, "realized_pnl": "-0.1630761390000000000000000009"},
        {"symbol": "BTC/USDT", "size": "0.001230", "price": "43123.4", "realized_pnl": "12.345"},
    ]
    assert table(rows, precision=PRECISION).splitlines() == [
        "SYMBOL       SIZE       PRICE  REALIZED_PNL",
        "XRP/ETH         0  0.00141418   -0.16307614",
        "BTC/USDT  0.00123    43123.40         12.34",  # half-even
    ]


def test_without_instruments_numbers_are_exact_and_plain() -> None:
    assert table([{"symbol": "X/Y", "size": "0E-8", "price": 0.00141418}], precision=NO_PRECISION).splitlines() == [
        "SYMBOL  SIZE       PRICE",
        "X/Y        0  0.00141418",
    ]


def test_fee_at_its_currency_and_balance_at_its_asset() -> None:
    fill = {"symbol": "XRP/ETH", "fee": "0.000707090000", "fee_currency": "ETH"}
    assert PRECISION.cell("fee", fill["fee"], fill) == "0.00070709"
    xrp_fee = {"symbol": "XRP/ETH", "fee": "0.5", "fee_currency": "XRP"}  # no instrument is quoted in XRP: as is
    assert PRECISION.cell("fee", xrp_fee["fee"], xrp_fee) == "0.5"
    assert PRECISION.cell("total", "4.99929291000", {"asset": "ETH"}) == "4.99929291"


def test_log_line_prints_the_price_at_the_tick_size() -> None:
    rec = {"timestamp": "2026-01-01T00:00:00.123456Z", "level": "debug", "actor": "bar_log", "event": "feed.bar",
           "symbol": "XRP/ETH", "open": 0.00141418, "close": 0.0014142, "volume": 500.0}
    assert render_log(rec, PRECISION).endswith("feed.bar symbol=XRP/ETH open=0.00141418 close=0.00141420 volume=500")
    assert "open=0.00141418" in render_log(rec)  # no config: the float as it is, never 0.001


def test_order_detail_and_its_events_at_precision() -> None:
    detail = {"order": {"client_order_id": "c1", "symbol": "XRP/ETH", "size": "500", "price": "0.001414180",
                        "filled": "0E-8"},
              "events": [{"id": 1, "ts_ms": 0, "status": "ACCEPTED", "filled": "0E-8"}]}
    text = render_order(detail, PRECISION)
    assert "price            0.00141418" in text and "filled           0" in text and "E-8" not in text
