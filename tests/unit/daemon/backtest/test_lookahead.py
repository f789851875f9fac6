"""The lookahead check's pure parts: signals, the comparison up to the horizon, verdicts, cuts, copies."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Literal

from actors.model.orders import OrderIntent, OrderStatus, OrderType, Side
from actors.model.records import OrderRecord
from adapters.market_data.csv_reader import read_trades
from adapters.storage.store_rows import RiskEventRecord
from config.loader import load_config
from daemon.backtest.lookahead import (
    Signal,
    compare_cut,
    cut_times,
    data_file_params,
    first_divergence,
    judge,
    render_lookahead,
    signals_from_denials,
    signals_from_orders,
    write_lookahead,
    write_truncated_copy,
)

T0 = 1_570_752_000_000
MIN = 60_000


def sig(minute: int, side: str = "buy", size: str = "1", *, kind: Literal["order", "denied"] = "order",
        tag: str = "t") -> Signal:
    return Signal(ts_ms=T0 + minute * MIN, symbol="XRP/ETH", kind=kind, side=side, type="market", size=size, price="",
                  tag=tag)


def test_signals_are_the_orders_and_denied_intents_with_their_decision_fields() -> None:
    order = OrderRecord(client_order_id="aa-1-1", venue="paper", strategy="ema", symbol="XRP/ETH", side=Side.BUY,
                        type=OrderType.LIMIT, size=Decimal("500"), status=OrderStatus.FILLED,
                        price=Decimal("0.00141"), tag="ema.entry", created_ms=T0 + 5, updated_ms=T0 + 9)
    intent = OrderIntent(strategy="rsi", symbol="XRP/ETH", side=Side.SELL, notional=Decimal("0.5"), tag="rsi.exit")
    denial = RiskEventRecord(id=1, ts_ms=T0 + 7, reason="MAX_POSITION", strategy="rsi", symbol="XRP/ETH",
                             intent=intent, limit="1200", detail="")
    assert signals_from_orders([order]) == {"ema": [Signal(T0 + 5, "XRP/ETH", "order", "buy", "limit", "500",
                                                           "0.00141", "ema.entry")]}
    assert signals_from_denials([denial]) == {"rsi": [Signal(T0 + 7, "XRP/ETH", "denied", "sell", "market",
                                                             "notional 0.5", "", "rsi.exit")]}
    # Sorting fixes the order of signals at the same time, whatever order they were stored in.
    a, b = sig(1, "sell"), sig(1, "buy")
    assert sorted([a, b]) == sorted([b, a]) == [b, a]


def test_identical_signals_before_the_horizon_do_not_diverge_and_later_ones_are_ignored() -> None:
    full = [sig(1), sig(2, "sell"), sig(10), sig(11, "sell")]
    # The truncated run ended at minute 10: its last decisions (at the horizon) differ, legitimately.
    truncated = [sig(1), sig(2, "sell"), sig(10, size="2")]
    assert first_divergence(full, truncated, T0 + 10 * MIN) == (2, None)
    assert first_divergence([], [], T0) == (0, None)


def test_the_first_different_signal_is_found_whatever_differs() -> None:
    horizon = T0 + 100 * MIN
    base = [sig(1), sig(2, "sell"), sig(3)]
    assert first_divergence(base, [sig(1), sig(2, "sell", size="2"), sig(3)], horizon) == (3, 1)
    assert first_divergence(base, [sig(1), sig(2, "sell", kind="denied"), sig(3)], horizon) == (3, 1)
    assert first_divergence(base, [sig(1), sig(2, "sell", tag="other"), sig(3)], horizon) == (3, 1)
    assert first_divergence(base, [sig(1), sig(4, "sell"), sig(5)], horizon) == (3, 1)
    assert first_divergence(base, base[:2], horizon) == (3, 2)  # a decision missing
    assert first_divergence(base[:1], base, horizon) == (1, 1)  # a decision added


def test_compare_cut_keeps_both_versions_of_the_first_difference() -> None:
    full = {"ema": [sig(1), sig(5)], "peek": [sig(2), sig(3, "sell")], "idle": []}
    truncated = {"ema": [sig(1), sig(5)], "peek": [sig(2)]}
    c = compare_cut(full, truncated, ("ema", "peek", "idle"), T0 + 30 * MIN, T0 + 29 * MIN)
    assert c.compared == {"ema": 2, "peek": 2, "idle": 0}
    [d] = c.divergences.values()
    assert (d.strategy, d.index, d.full, d.truncated, d.ts_ms) == ("peek", 1, sig(3, "sell"), None, T0 + 3 * MIN)
    assert d.as_dict()["full"] == {"ts_ms": T0 + 3 * MIN, "symbol": "XRP/ETH", "kind": "order", "side": "sell",
                                   "type": "market", "size": "1", "price": "", "tag": "t"}


def test_the_strategy_that_differs_first_is_flagged_and_those_that_differ_later_are_affected() -> None:
    names = ("ema", "peek", "rsi")
    cut1 = compare_cut({"peek": [sig(1), sig(3)], "rsi": [sig(4)]}, {"peek": [sig(1)], "rsi": [sig(4, kind="denied")]},
                       names, T0 + 60 * MIN, T0 + 59 * MIN)
    cut2 = compare_cut({"peek": [sig(1), sig(3)], "rsi": [sig(4)]}, {"peek": [sig(1), sig(3)], "rsi": [sig(4)]},
                       names, T0 + 120 * MIN, T0 + 119 * MIN)
    report = judge(names, [cut2, cut1])
    assert [(v.strategy, v.verdict, v.cuts, v.signals) for v in report.strategies] == [
        ("ema", "clean", 2, 0), ("peek", "lookahead", 2, 4), ("rsi", "affected", 2, 2)]
    assert report.flagged == ("peek",) and report.affected == ("rsi",)
    peek, rsi = report.strategies[1], report.strategies[2]
    assert peek.difference is not None and peek.difference.cut_ms == T0 + 60 * MIN and peek.after == ()
    assert rsi.after == ("peek",)
    assert [c.cut_ms for c in report.cuts] == [T0 + 60 * MIN, T0 + 120 * MIN]

    text = render_lookahead(report)
    assert "  peek         2        4  LOOKAHEAD" in text
    assert "  ema          2        0  clean" in text
    assert "peek: earlier decisions depend on later data; cut 2019-10-11T01:00:00Z, first different signal #2:" \
        in text
    assert f"    full run:       {sig(3).describe()}" in text and "    truncated run:  (none)" in text
    assert "rsi: differs only after peek (shared account and risk limits)" in text


def test_same_time_differences_are_all_flagged_and_no_cut_means_unchecked() -> None:
    cut = compare_cut({"a": [sig(1)], "b": [sig(1)]}, {"a": [], "b": []}, ("a", "b"), T0 + MIN * 9, T0 + MIN * 8)
    assert judge(("a", "b"), [cut]).flagged == ("a", "b")
    nothing = judge(("a",), [])
    assert [(v.verdict, v.cuts) for v in nothing.strategies] == [("unchecked", 0)] and nothing.flagged == ()
    assert "Lookahead check: 0 cut(s): none (the data is too short)" in render_lookahead(nothing)


def test_cut_times_are_evenly_spaced_inside_the_data_on_bar_boundaries() -> None:
    first, last = T0 + 1_503, T0 + 12 * 3_600_000 - 7
    cuts = cut_times(first, last, 5, 5 * MIN)
    assert cuts == [T0 + h * 3_600_000 for h in (2, 4, 6, 8, 10)]
    assert all(c % (5 * MIN) == 0 and first < c <= last for c in cuts)
    # A span shorter than the bars: no cut fits; a short one: duplicates are dropped.
    assert cut_times(T0 + 1, T0 + 4 * MIN, 5, 5 * MIN) == []
    assert cut_times(T0 + 1, T0 + 2 * MIN + 1, 5, MIN) == [T0 + MIN]


def test_the_truncated_copy_keeps_the_header_and_the_rows_before_the_cut(tmp_path: Path) -> None:
    rows = ["ts_ms,trade_id,side,price,amount,cost", f"{T0 + 1},1,buy,2,3,6", f"{T0 + 2},2,sell,2,1,2",
            f"{T0 + 2 * MIN},3,buy,2,1,2", f"{T0 + 1},4,buy,2,1,2"]
    src = tmp_path / "t.csv.gz"
    src.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode()))
    assert write_truncated_copy(src, tmp_path / "cut" / "t.csv.gz", T0 + MIN) == 2
    # Stops at the first row at or after the cut, like the feed's window (a late row after it is not kept).
    assert gzip.decompress((tmp_path / "cut" / "t.csv.gz").read_bytes()).decode() == "\n".join(rows[:3]) + "\n"
    assert [r.trade_id for r in read_trades(tmp_path / "cut" / "t.csv.gz").rows] == [1, 2]
    plain = tmp_path / "t.csv"
    plain.write_text("\n".join(rows))
    assert write_truncated_copy(plain, tmp_path / "t-cut.csv", T0 + 10 * MIN) == 4
    assert (tmp_path / "t-cut.csv").read_text() == "\n".join(rows) + "\n"


def test_strategy_params_that_name_the_replayed_file_are_found(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("ts_ms,trade_id,side,price,amount,cost\n1,1,buy,2,3,6\n")
    config = tmp_path / "aaiti.toml"
    config.write_text(f"""
[feed]
source = "replay"
symbols = ["XRP/ETH"]
[feed.replay]
path = "data/t.csv"
[[strategies]]
name = "a"
strategy = "actors.strategies.ema_cross:EmaCross"
symbols = ["XRP/ETH"]
params = {{ size = "1" }}
[[strategies]]
name = "b"
strategy = "actors.strategies.ema_cross:EmaCross"
symbols = ["XRP/ETH"]
params = {{ tape = "data/t.csv", copy = "{tmp_path / 'data' / 't.csv'}", other = "data/u.csv", n = 3 }}
""")
    loaded = load_config(config)
    assert data_file_params(loaded) == {"strategies.1.params.tape": "data/t.csv",
                                        "strategies.1.params.copy": str(tmp_path / "data" / "t.csv")}


def test_the_report_file_is_canonical_json(tmp_path: Path) -> None:
    cut = compare_cut({"a": [sig(1)]}, {"a": []}, ("a",), T0 + 9 * MIN, T0 + 8 * MIN)
    report = judge(("a",), [cut], ["a note"], {"config_path": "x.toml"})
    path = write_lookahead(report, tmp_path / "out")
    text = path.read_text()
    assert path.name == "lookahead.json" and text.endswith("}\n")
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    assert data["flagged"] == ["a"] and data["notes"] == ["a note"] and data["manifest"] == {"config_path": "x.toml"}
    assert data["cuts"] == [{"cut_ms": T0 + 9 * MIN, "horizon_ms": T0 + 8 * MIN, "signals_compared": {"a": 1},
                             "differing": ["a"]}]
    assert data["strategies"][0]["first_difference"]["truncated"] is None
