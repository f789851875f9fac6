"""The daily digest: sent once the business day ended, with that day's figures."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.kernel.clock import MarketClock
from actors.model.positions import PositionView
from daemon.notify.digest import DAY_MS, DailyDigest
from daemon.notify.events import EventKind

DAY = 19_700 * DAY_MS  # 2023-12-09 00:00 UTC


class Snap:
    """Just the fields the digest reads."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)


def orders(realized: str, fills: int, size: str = "0") -> Any:
    return Snap(positions=(PositionView(symbol="XRP/ETH", size=Decimal(size), avg_price=Decimal("0.001"),
                                        realized_pnl=Decimal(realized), fees=Decimal("0.01"), fills=fills),))


def test_digest_of_a_day_is_sent_at_the_first_sample_of_the_next() -> None:
    clock = MarketClock(DAY + 3_600_000)  # 01:00: the daemon saw the day from then on
    digest = DailyDigest(clock, "bot")
    assert digest.sample(Snap(daily_pnl=Decimal(0), equity=Decimal(10)), orders("1", 2)) is None
    clock.advance(DAY + DAY_MS - 1)  # 23:59:59.999
    assert digest.sample(Snap(daily_pnl=Decimal("0.5"), equity=Decimal("10.5")), orders("1.25", 5, "20")) is None
    clock.advance(DAY + DAY_MS + 1)
    note = digest.sample(Snap(daily_pnl=Decimal(0), equity=Decimal("10.5")), orders("1.25", 5, "20"))
    assert note is not None
    assert note.kind is EventKind.DAILY_DIGEST and note.key == "daily_digest:2023-12-09"
    assert note.title == "bot: digest 2023-12-09"
    assert note.body.splitlines() == [
        "(seen since 01:00 UTC)", "daily PnL: 0.5", "equity: 10.5", "realized PnL: 0.25 ETH", "fees: 0 ETH",
        "fills: 3", "positions: XRP/ETH 20 @ 0.001",
    ]
    clock.advance(DAY + 2 * DAY_MS - 5)
    assert digest.sample(None, orders("2.25", 6)) is None
    clock.advance(DAY + 2 * DAY_MS + 5)
    nxt = digest.sample(None, orders("2.25", 6))
    assert nxt is not None and nxt.key == "daily_digest:2023-12-10"
    assert "realized PnL: 1 ETH" in nxt.body and "(seen since" not in nxt.body and "positions: flat" in nxt.body
