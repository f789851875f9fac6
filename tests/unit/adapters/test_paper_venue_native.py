"""PaperVenue and native order types: it runs none, and refuses them definitively.

The daemon emulates stops, take-profits, trailing stops and icebergs on paper (so paper and
backtests behave alike): a conditional type, a trailing delta or a display size reaching the
paper venue is refused with ``UNSUPPORTED_ORDER_TYPE``, nothing is booked or locked, and the
venue offers no ``NativeOrders`` capability (no order lists).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from actors.model.market import Quote
from actors.model.orders import CONDITIONAL_TYPES, PRICED_TYPES, OrderRequest, OrderStatus, OrderType, Side
from actors.ports.capabilities import NativeOrders
from actors.ports.venue import UNSUPPORTED_ORDER_TYPE, OrderRejected
from adapters.paper_venue import PaperVenue
from config.schema.trading import InstrumentSection, PaperVenueSection

D = Decimal
SYM = "XRP/ETH"
INSTRUMENTS = {SYM: InstrumentSection(base="XRP", quote="ETH", tick_size=D("0.00000001"), step_size=D("1"),
                                      min_qty=D("1"), max_qty=D("1000000"), min_notional=D("0.001"))}


class FakeClock:
    """Business time that moves only when a test moves it."""

    simulated = True

    def __init__(self) -> None:
        self.ms = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.ms


@pytest.fixture
async def venue(tmp_path: Path) -> AsyncIterator[PaperVenue]:
    cfg = PaperVenueSection(latency_ms=0.0, fsync=False, initial_balances={"ETH": D("10"), "XRP": D("1000")})
    v = PaperVenue(tmp_path / "paper.sqlite", cfg, INSTRUMENTS, clock=FakeClock())
    await v.start()
    v.on_market(Quote(symbol=SYM, ts_ms=1, bid=0.00199, ask=0.002))
    yield v
    await v.close()


def request(cid: str, type_: OrderType, **kw: object) -> OrderRequest:
    price = D("0.00190") if type_ in PRICED_TYPES else None
    trigger = D("0.00195") if type_ in CONDITIONAL_TYPES else None
    fields: dict[str, object] = {"price": price, "trigger_price": trigger, **kw}
    return OrderRequest(client_order_id=cid, symbol=SYM, side=Side.SELL, type=type_, size=D("100"),
                        **fields)  # type: ignore[arg-type]


async def assert_refused_and_nothing_booked(venue: PaperVenue, req: OrderRequest, what: str) -> None:
    before = await venue.balances()
    with pytest.raises(OrderRejected) as err:
        await venue.submit(req)
    assert err.value.reason == UNSUPPORTED_ORDER_TYPE
    assert "paper venue emulates" in str(err.value) and what in str(err.value)
    assert await venue.open_orders() == []
    assert await venue.query(req.client_order_id, SYM) is None
    assert await venue.balances() == before


def test_paper_venue_has_no_native_orders(tmp_path: Path) -> None:
    cfg = PaperVenueSection(fsync=False)
    assert not isinstance(PaperVenue(tmp_path / "p.sqlite", cfg, INSTRUMENTS), NativeOrders)


@pytest.mark.parametrize("type_", sorted(CONDITIONAL_TYPES), ids=lambda t: t.value)
async def test_conditional_types_are_refused_definitively(venue: PaperVenue, type_: OrderType) -> None:
    await assert_refused_and_nothing_booked(venue, request("c1", type_), type_.value)


async def test_a_trailing_delta_is_refused(venue: PaperVenue) -> None:
    req = request("c1", OrderType.STOP_MARKET, trigger_price=None, trailing_bps=50)
    await assert_refused_and_nothing_booked(venue, req, "stop_market")
    # Whatever the type says: a trailing delta is a native feature.
    await assert_refused_and_nothing_booked(venue, request("c2", OrderType.MARKET, trailing_bps=50), "trailing")


async def test_an_iceberg_display_size_is_refused(venue: PaperVenue) -> None:
    req = request("c1", OrderType.LIMIT, display_size=D("10"))
    await assert_refused_and_nothing_booked(venue, req, "iceberg")


async def test_a_trigger_price_on_a_plain_order_is_refused(venue: PaperVenue) -> None:
    await assert_refused_and_nothing_booked(venue, request("c1", OrderType.LIMIT, trigger_price=D("0.002")),
                                            "trigger")


async def test_plain_orders_are_still_taken(venue: PaperVenue) -> None:
    rested = await venue.submit(request("c1", OrderType.LIMIT, price=D("0.00210")))
    assert rested.status is OrderStatus.ACCEPTED
    filled = await venue.submit(request("c2", OrderType.MARKET))
    assert filled.status is OrderStatus.FILLED
