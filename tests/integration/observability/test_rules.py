"""The Prometheus alert rules: ``promtool check rules`` and ``promtool test rules`` must pass.

promtool comes from Debian's ``prometheus`` package, which ``make test`` installs when it is
missing. Its absence is a failure, never a skip: rules that nobody checked are not shipped.
Also checked here: every alert in ``alerts.yml`` has a unit test in which it fires and one in
which it does not.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from tests.integration.daemon.daemon_process import REPO

PACK = REPO / "config" / "observability"
RULES = PACK / "alerts.yml"
RULE_TESTS = PACK / "alerts.test.yml"


def promtool() -> str:
    """The promtool executable (the test fails, naming the fix, when it is not installed)."""
    path = shutil.which("promtool")
    assert path is not None, (
        "promtool is not installed: `make test` installs it (Debian package `prometheus`, "
        "stamp .venv/.promtool-installed); or run `apt-get install --no-install-recommends prometheus`"
    )
    return path


def run_promtool(*args: str) -> None:
    """Run promtool in the pack's directory; fail with its whole output if it exits non-zero."""
    proc = subprocess.run([promtool(), *args], cwd=PACK, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"promtool {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"


def load_yaml(path: Path) -> Any:
    """A YAML file's content."""
    return yaml.safe_load(path.read_text())


def test_promtool_check_rules_passes() -> None:
    run_promtool("check", "rules", RULES.name)


def test_promtool_unit_tests_pass() -> None:
    run_promtool("test", "rules", RULE_TESTS.name)


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts = [rule["alert"] for group in load_yaml(RULES)["groups"] for rule in group["rules"] if "alert" in rule]
    assert len(alerts) == len(set(alerts)), "duplicate alert names"
    outcomes: dict[str, set[bool]] = defaultdict(set)
    for case in load_yaml(RULE_TESTS)["tests"]:
        for check in case.get("alert_rule_test", []):
            outcomes[check["alertname"]].add(bool(check.get("exp_alerts")))
    untested = {name: sorted(outcomes[name]) for name in alerts if outcomes[name] != {True, False}}
    assert not untested, f"alerts without both a firing and a not-firing case (seen outcomes): {untested}"
    assert set(outcomes) <= set(alerts), f"tests of unknown alerts: {sorted(set(outcomes) - set(alerts))}"


def test_every_alert_has_for_severity_summary_and_description() -> None:
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert")
            assert name, f"group {group['name']} has a recording rule; this file holds alerts only"
            assert "for" in rule, name
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
            assert rule["annotations"]["summary"].strip(), name
            assert len(rule["annotations"]["description"].split()) >= 15, f"{name}: say what to do"
