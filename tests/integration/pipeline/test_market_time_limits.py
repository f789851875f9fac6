"""Per-minute risk limits count market minutes when the data is replayed.

The default config allows 12 orders per minute. Replayed at full speed (speed 0), the
bundled tape's ~2 days of trading pass in a second or two of wall time; on a wall clock
every order after the 12th would be denied ORDER_RATE. On the market clock the gate counts
the minutes the data lived through, so it denies only a minute that really held more.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from config.loader import load_config
from tests.integration.pipeline.replay_run import run_replay_to_end

ROOT = Path(__file__).resolve().parents[3]


async def test_default_config_replayed_at_speed_0_is_rate_limited_in_market_time_only(tmp_path: Path) -> None:
    loaded = load_config(ROOT / "aaiti.toml")
    cfg = loaded.config
    # The runner replays the config's tape once at speed 0 (speed, loop and on_end forced).
    out = await run_replay_to_end(loaded, tmp_path)

    limit = cfg.risk.max_orders_per_minute
    per_minute = Counter(o.created_ms // 60_000 for o in out.orders)
    busiest = max(per_minute.values())
    # Far more orders than one minute allows went through in a couple of wall seconds ...
    assert out.submitted > 3 * limit
    # ... because no market minute held more than the limit, nothing was denied for rate.
    assert busiest <= limit
    assert out.risk.denied_by_reason.get("ORDER_RATE", 0) == 0
    # The orders carry market time (October 2019), not the wall clock.
    first, last = min(o.created_ms for o in out.orders), max(o.created_ms for o in out.orders)
    assert 1_570_000_000_000 < first < last < 1_571_000_000_000
