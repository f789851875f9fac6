"""A tiny run of the trigger bench (bench/triggers.py): behaviour only, no timing thresholds.

Both loads go through the full pipeline (feed → bracket strategy → risk gate → contingent-order
manager → risk gate → order manager with its SQLite write-ahead → paper venue); emulated exits
trigger, their children reach the venue and are measured, and the last printed line is the
JSON summary with the documented keys.
"""

from __future__ import annotations

import json

import pytest

from bench.triggers import main

KEYS = (
    "trigger_to_submit_p50_us_load", "trigger_to_submit_p99_us_load",
    "trigger_to_submit_p50_us_low", "trigger_to_submit_p99_us_low",
    "triggers_load", "triggers_low", "targets", "target_met",
)


def test_triggers_bench_measures_triggers_and_prints_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    out = main(["--quick", "--load-events", "5000", "--rate", "4000", "--seconds", "0.5"])
    printed = capsys.readouterr().out.strip().splitlines()
    assert json.loads(printed[-1]) == out
    assert all(k in out for k in KEYS)
    assert set(out["targets"]) == set(out["target_met"]) == {
        "trigger_to_submit_p99_us_load", "trigger_to_submit_p99_us_low"}
    for mode in ("load", "low"):
        assert out[f"triggers_{mode}"] > 0
        # Every measured trigger was released by the contingent-order manager (entries are not counted).
        assert out[f"triggers_{mode}"] <= out[f"triggers_released_{mode}"]
        assert out[f"rejected_{mode}"] == 0
        assert 0 < out[f"trigger_to_submit_p50_us_{mode}"] <= out[f"trigger_to_submit_p99_us_{mode}"]
    assert any(line.startswith("load run 1:") for line in printed)
    assert any(line.startswith("low run 1:") for line in printed)


def test_lockstep_replay_with_standalone_trailing_stops_never_waits_for_its_timeout(
        capsys: pytest.CaptureFixture[str]) -> None:
    # Arming a standalone trailing stop sends nothing back to a strategy: the lockstep must wake on
    # the contingent-order manager running out of work, not sit out its timeout (5 s) each time.
    out = main(["--quick", "--only", "load", "--mode", "trailing", "--load-events", "1500"])
    capsys.readouterr()
    assert out["triggers_load"] > 0
    assert out["lockstep_timeouts_load"] == 0
