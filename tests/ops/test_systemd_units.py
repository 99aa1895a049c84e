"""The systemd units in deploy/systemd: they load, they are sandboxed, and they start a real
``fleet-metrics`` command line.

``systemd-analyze verify`` and ``systemd-analyze security --offline`` (systemd 252 here) read
the unit files without a running systemd; where they are missing the parsed keys are still
checked. The command line of ``ExecStart=`` goes through the CLI's own argument parser, so a
renamed subcommand or option fails here, not on an operator's host.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from fleet_metrics.cli import _parser

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
INSTALLED_BINARY = "/opt/fleet-metrics/bin/fleet-metrics"
VENV_BINARY = Path(sys.executable).parent / "fleet-metrics"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
SYSUSERS = shutil.which("systemd-sysusers")
# systemd's own scale: 0 is fully sandboxed, 10 is a plain root service; below 2 is "OK".
MAX_EXPOSURE = 2.0

Unit = dict[str, dict[str, list[str]]]

# What every unit must say, whatever runs in it.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "User": "fleet-metrics",
}


def parse_unit(path: Path) -> Unit:
    """Sections of keys, each key with every value it was given (systemd keys repeat)."""
    unit: Unit = defaultdict(lambda: defaultdict(list))
    section = ""
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        assert "=" in line and section, f"{path.name}:{number}: not key=value in a section"
        key, value = line.split("=", 1)
        unit[section][key.strip()].append(value.strip())
    return unit


def last(unit: Unit, key: str, section: str = "Service") -> str:
    values = unit[section].get(key)
    assert values, f"{key}= is missing from [{section}]"
    return values[-1]


@pytest.fixture(params=["fleet-metrics.service", "fleet-metrics-agent.service"])
def unit_path(request: pytest.FixtureRequest) -> Path:
    path: Path = UNITS / request.param
    return path


def test_units_are_sandboxed(unit_path: Path) -> None:
    unit = parse_unit(unit_path)
    for key, expected in HARDENING.items():
        assert last(unit, key) == expected, f"{unit_path.name}: {key}="
    assert last(unit, "ProtectHome") in ("yes", "read-only", "tmpfs")
    assert last(unit, "Restart") == "on-failure"
    assert "multi-user.target" in last(unit, "WantedBy", "Install")


def test_runner_unit_reloads_and_keeps_its_state_writable() -> None:
    unit = parse_unit(UNITS / "fleet-metrics.service")
    assert last(unit, "ExecReload") == "/bin/kill -HUP $MAINPID"
    # ProtectSystem=strict leaves only the state directory writable: that is where the
    # host database, the dead-letter file and a line protocol file go.
    assert last(unit, "StateDirectory") == "fleet-metrics"
    assert last(unit, "WorkingDirectory") == "/var/lib/fleet-metrics"
    assert "2" in last(unit, "RestartPreventExitStatus").split()


def test_agent_unit_does_not_send_a_signal_the_agent_would_die_of() -> None:
    """The agent handles SIGTERM and SIGINT only; a SIGHUP from ExecReload would end it,
    and systemd counts SIGHUP as a clean exit, so Restart=on-failure would leave it down."""
    source = (ROOT / "standalone" / "agent.py").read_text(encoding="utf-8")
    unit = parse_unit(UNITS / "fleet-metrics-agent.service")
    if "SIGHUP" not in source:
        assert "ExecReload" not in unit["Service"]
    else:
        assert last(unit, "ExecReload") == "/bin/kill -HUP $MAINPID"


def test_exec_start_is_a_valid_fleet_metrics_command_line(unit_path: Path) -> None:
    unit = parse_unit(unit_path)
    binary, *args = shlex.split(last(unit, "ExecStart"))
    assert binary == INSTALLED_BINARY
    parsed = _parser().parse_args(args)  # SystemExit on an unknown command or option
    assert parsed.command == ("agent" if "agent" in unit_path.name else "run")
    assert str(parsed.config).startswith("/etc/fleet-metrics/")


def _runnable_copy(unit_path: Path, folder: Path) -> Path:
    """The unit with ExecStart pointing at this venv's ``fleet-metrics``: verify checks that
    the binary exists and is executable."""
    assert VENV_BINARY.exists(), VENV_BINARY
    copy = folder / unit_path.name
    copy.write_text(
        unit_path.read_text(encoding="utf-8").replace(INSTALLED_BINARY, str(VENV_BINARY)),
        encoding="utf-8",
    )
    return copy


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_the_unit(unit_path: Path, tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    copy = _runnable_copy(unit_path, tmp_path)
    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert copy.name not in result.stderr, result.stderr  # warnings name the unit


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_rates_the_sandbox_ok(unit_path: Path, tmp_path: Path) -> None:
    assert SYSTEMD_ANALYZE is not None
    copy = _runnable_copy(unit_path, tmp_path)
    result = subprocess.run(
        [
            SYSTEMD_ANALYZE,
            "security",
            "--offline=true",
            f"--threshold={MAX_EXPOSURE * 10:g}",
            str(copy),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, f"{summary}\n{result.stderr}"
    assert "Overall exposure level" in summary


@pytest.mark.skipif(SYSUSERS is None, reason="systemd-sysusers is not installed")
def test_sysusers_file_creates_the_service_user() -> None:
    assert SYSUSERS is not None
    result = subprocess.run(
        [SYSUSERS, "--dry-run", str(UNITS / "fleet-metrics.sysusers.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # systemd prints what it would do on stderr or stdout depending on the version.
    said = result.stdout + result.stderr
    assert "'fleet-metrics'" in said, said
