"""What the host is (slow tier): OS, kernel, CPU model and count, boot time, agent and
Proxmox VE versions. Sent as one ``host`` sample whose tags are the info and whose fields are
the boot time and CPU count, so the server shows boot time as a timestamp, not an uptime.

``pveversion`` is a Perl script that can take a second; it runs with a timeout in the
collector's worker thread, and a failure only leaves the PVE version out (logged once).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

import psutil

from ...errors import describe_error
from ...sample import Sample
from .base import Collector

MAX_TAG_LENGTH: Final = 200
_CPU_MODEL_KEYS: Final = ("model name", "hardware", "cpu model", "processor", "model")
_PVE_VERSION = re.compile(r"pve-manager/([^/\s]+)")


def parse_os_release(text: str) -> str:
    """``PRETTY_NAME`` from /etc/os-release (``NAME VERSION_ID`` when it has none)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value.strip().strip("\"'")
    if values.get("PRETTY_NAME"):
        return values["PRETTY_NAME"]
    return " ".join(part for part in (values.get("NAME"), values.get("VERSION_ID")) if part)


def parse_cpu_model(text: str) -> str:
    """The CPU model from /proc/cpuinfo: x86 ``model name``, ARM ``Hardware`` or ``Model``.

    ``processor`` on x86 is just an index, so a value that is only digits is skipped.
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if sep and value and not value.isdigit() and key in _CPU_MODEL_KEYS:
            found.setdefault(key, value)
    return next((found[key] for key in _CPU_MODEL_KEYS if key in found), "")


def parse_pveversion(stdout: str) -> str:
    """``8.2.4`` from ``pve-manager/8.2.4/faa83925c9641325 (running kernel: 6.8.8-2-pve)``."""
    match = _PVE_VERSION.search(stdout)
    return match.group(1) if match else ""


def _tag(value: str) -> str:
    return " ".join(value.split())[:MAX_TAG_LENGTH]


def host_sample(
    *,
    os_name: str,
    kernel: str,
    cpu_model: str,
    cpus: int | None,
    boot_time: float,
    agent_version: str,
    pve_version: str,
    time_ns: int,
) -> Sample:
    """The ``host`` sample; ``pve_version`` is left out when empty (not a Proxmox host)."""
    tags = {
        "os": _tag(os_name),
        "kernel": _tag(kernel),
        "cpu_model": _tag(cpu_model),
        "agent_version": _tag(agent_version),
    }
    if pve_version:
        tags["pve_version"] = _tag(pve_version)
    fields: dict[str, int | float] = {"boot_time_seconds": float(boot_time)}
    if cpus:
        fields["cpus"] = int(cpus)
    return Sample("host", tags, fields, time_ns)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


class HostinfoCollector(Collector):
    name = "hostinfo"
    tier = "slow"

    def collect(self, time_ns: int) -> list[Sample]:
        return [
            host_sample(
                os_name=parse_os_release(_read("/etc/os-release")) or platform.system(),
                kernel=platform.release(),
                cpu_model=parse_cpu_model(_read("/proc/cpuinfo")) or platform.processor(),
                cpus=psutil.cpu_count(),
                boot_time=psutil.boot_time(),
                agent_version=self.settings.agent_version,
                pve_version=self._pve_version(),
                time_ns=time_ns,
            )
        ]

    def _pve_version(self) -> str:
        command = shutil.which("pveversion")
        if command is None:
            return ""
        try:
            result = subprocess.run(
                [command],
                capture_output=True,
                text=True,
                timeout=self.settings.command_timeout,
                check=True,
                env={**os.environ, "LC_ALL": "C"},
            )
        except (OSError, subprocess.SubprocessError) as err:
            self.once.warning(
                "pveversion",
                "hostinfo: pveversion failed, sending no PVE version: %s",
                describe_error(err, self.settings.command_timeout),
            )
            return ""
        return parse_pveversion(result.stdout)
