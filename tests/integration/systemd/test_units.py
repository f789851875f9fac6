"""The systemd units: `systemd-analyze verify` clean, `security --offline` exposure <= 2.0, required settings.

`systemd-analyze verify` insists that the ExecStart= binary exists, and the units point at
the installed location /opt/aaiti/.venv/bin/aaiti. So each unit is verified as a copy in a
temporary directory with only ExecStart='s binary rewritten to this checkout's
.venv/bin/aaiti; the template is verified as an instance (aaiti@paper.service) so that
every %i is expanded.
"""

from __future__ import annotations

import configparser
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.schema.kernel import DaemonSection

UNITS_DIR = Path(__file__).resolve().parents[3] / "systemd"
INSTALLED_BINARY = "/opt/aaiti/.venv/bin/aaiti"
UNITS = {"aaiti.service": "aaiti.service", "aaiti@.service": "aaiti@paper.service"}
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")

HARDENING = {
    "DynamicUser": "yes",
    "UMask": "0077",
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "PrivateUsers": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "ProtectProc": "invisible",
    "ProcSubset": "pid",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
}


def local_binary() -> str:
    """An existing executable to stand in for the installed aaiti script."""
    venv_script = Path(sys.executable).parent / "aaiti"
    return str(venv_script) if venv_script.exists() else sys.executable


def staged(tmp_path: Path, unit: str) -> Path:
    """A copy of ``unit`` (under its instance name) with ExecStart= pointing at an existing binary."""
    text = (UNITS_DIR / unit).read_text()
    assert f"ExecStart={INSTALLED_BINARY} " in text
    path = tmp_path / UNITS[unit]
    path.write_text(text.replace(f"ExecStart={INSTALLED_BINARY} ", f"ExecStart={local_binary()} "))
    return path


def settings(unit: str) -> dict[str, list[str]]:
    """[Service] and [Unit] assignments of a unit file: key -> every value in order."""
    out: dict[str, list[str]] = {}
    section = ""
    for raw in (UNITS_DIR / unit).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return out


@needs_analyze
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_verify_clean(tmp_path: Path, unit: str) -> None:
    path = staged(tmp_path, unit)
    proc = subprocess.run(
        [str(ANALYZE), "verify", "--man=no", "--generators=no", str(path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "" and proc.stderr.strip() == "", proc.stdout + proc.stderr


@needs_analyze
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_security_exposure_at_most_2(tmp_path: Path, unit: str) -> None:
    path = staged(tmp_path, unit)
    proc = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Invalid" not in proc.stderr and "Unknown" not in proc.stderr, proc.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", proc.stdout)
    assert match, proc.stdout[-2000:]
    assert float(match.group(1)) <= 2.0, proc.stdout


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_lifecycle_settings_present(unit: str) -> None:
    s = settings(unit)
    assert s["Service.Type"] == ["notify"]
    assert s["Service.NotifyAccess"] == ["main"]
    assert s["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["Service.Restart"] == ["on-failure"]
    assert s["Service.ExecStart"][0].startswith(f"{INSTALLED_BINARY} run --config /etc/aaiti/")
    assert "Unit.StartLimitIntervalSec" in s and "Unit.StartLimitBurst" in s
    watchdog = int(s["Service.WatchdogSec"][0].rstrip("s"))
    assert watchdog >= 4 * 0.5  # > 2 x watchdog.interval_s with margin
    stop = int(s["Service.TimeoutStopSec"][0].rstrip("s"))
    assert stop > DaemonSection().stop_timeout_s + DaemonSection().order_drain_timeout_s
    for key in ("StateDirectory", "ConfigurationDirectory", "LogsDirectory", "LoadCredential"):
        assert f"Service.{key}" in s, key
    assert any(v.startswith("admin_token:") for v in s["Service.LoadCredential"])
    assert "Service.IPAddressDeny" not in s  # exchanges sit behind CDNs: see systemd/README.md


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_unit_hardening_settings_present(unit: str) -> None:
    s = settings(unit)
    for key, value in HARDENING.items():
        assert s.get(f"Service.{key}") == [value], (key, s.get(f"Service.{key}"))
    assert "@system-service" in s["Service.SystemCallFilter"]


def test_template_same_as_single_except_instance_bits() -> None:
    single, template = settings("aaiti.service"), settings("aaiti@.service")
    assert set(single) == set(template)
    instance_keys = {"Unit.Description", "Service.ExecStart", "Service.StateDirectory", "Service.LogsDirectory",
                     "Service.WorkingDirectory", "Service.EnvironmentFile", "Service.LoadCredential",
                     "Service.SyslogIdentifier"}
    for key in set(single) - instance_keys:
        assert single[key] == template[key], key
    for key in instance_keys:
        assert any("%i" in v for v in template[key]), key


def test_unit_files_parse_as_ini() -> None:
    for unit in UNITS:
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read_string((UNITS_DIR / unit).read_text())
        assert {"Unit", "Service", "Install"} <= set(parser.sections())


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64",
                    reason="the seccomp probe is written for x86-64 Linux")
def test_stack_under_memory_deny_write_execute_ok() -> None:
    # MemoryDenyWriteExecute=yes must not break CPython, uvloop, aiohttp, aiosqlite, ccxt, ctypes.
    probe = Path(__file__).with_name("mdwe_probe.py")
    proc = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "MDWE-OK"
