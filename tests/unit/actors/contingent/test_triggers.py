"""Property tests of the emulated trailing stop over random price paths: the level only ever
tightens, the stop fires exactly when the price reaches it, and it releases exactly one child."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from actors.contingent.single import TriggerOrder
from actors.model.contingent import ContingentStatus
from actors.model.orders import Side, TrailingSpec

from .trigger_helpers import Env, approved, intent, releases, trade

_BPS = Decimal(10_000)

prices = st.lists(st.integers(min_value=5_000, max_value=15_000).map(lambda c: c / 100), min_size=1, max_size=60)
specs = st.one_of(
    st.builds(lambda o: TrailingSpec(offset=Decimal(o) / 100), st.integers(min_value=1, max_value=1_000)),
    st.builds(lambda b: TrailingSpec(offset_bps=b), st.integers(min_value=1, max_value=2_000)),
)
activations = st.one_of(st.none(), st.integers(min_value=5_000, max_value=15_000).map(lambda c: Decimal(c) / 100))


def _reference(spec: TrailingSpec, side: Side, path: list[float],
               activation: Decimal | None) -> tuple[int | None, list[Decimal | None]]:
    """The index the stop must fire at (None: never) and the level after each price, computed
    independently: the best price since activation, minus (sell) or plus (buy) the offset."""
    active, extreme, levels = False, None, []
    for n, p in enumerate(path):
        price = Decimal(repr(p))
        if not active and (activation is None or (price >= activation if side is Side.SELL else price <= activation)):
            active = True
        if active:
            extreme = price if extreme is None else (max(extreme, price) if side is Side.SELL else min(extreme, price))
        level = None
        if extreme is not None:
            offset = spec.offset if spec.offset is not None else extreme * Decimal(spec.offset_bps or 0) / _BPS
            level = extreme - offset if side is Side.SELL else extreme + offset
        levels.append(level)
        if level is not None and (price <= level if side is Side.SELL else price >= level):
            return n, levels
    return None, levels


@settings(max_examples=300, deadline=None)
@given(path=prices, spec=specs, activation=activations, side=st.sampled_from([Side.SELL, Side.BUY]))
def test_trailing_stop_over_random_paths(path: list[float], spec: TrailingSpec, activation: Decimal | None,
                                         side: Side) -> None:
    spec = TrailingSpec(offset=spec.offset, offset_bps=spec.offset_bps, activation_price=activation)
    env = Env()
    ctx = env.ctx()
    order = TriggerOrder.from_approved(approved(intent(side=side, trigger_price=None, trailing=spec)), ctx)
    order.start(ctx)
    fires_at, expected_levels = _reference(spec, side, path, activation)
    children = []
    previous: Decimal | None = None
    for n, price in enumerate(path):
        sent = releases(order.on_market(trade(price, recv_ns=n + 1), ctx))
        level = order.trail_state.level
        if fires_at is None or n <= fires_at:
            assert level == expected_levels[n]
        if previous is not None:
            assert level is not None
            assert level >= previous if side is Side.SELL else level <= previous  # only ever tightens
        previous = level
        if sent:
            assert n == fires_at, f"fired at {n}, expected {fires_at}"
        children += sent
    if fires_at is None:
        assert children == [] and order.status is ContingentStatus.WORKING
    else:
        (child,) = children
        assert child.origin_ns == fires_at + 1 and child.side is side
        assert order.status is ContingentStatus.TRIGGERED and not order.watches_market()
