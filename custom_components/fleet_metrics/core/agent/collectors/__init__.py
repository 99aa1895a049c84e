"""The collectors the agent knows: name -> (class, tier, on by default).

A collector on by default still runs only where the host has what it reads
(``Collector.available``: ``zpool`` for zfs, ``pveversion`` for pve and pve_backup); the
agent config can switch any of them on or off.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from .base import TIERS, Collector, CollectorRun, CollectorSettings, Patterns, Tier
from .cpu import CpuCollector
from .diskstats import DiskstatsCollector
from .filesystem import FilesystemCollector
from .hostinfo import HostinfoCollector
from .hwmon import HwmonCollector
from .loadavg import LoadavgCollector
from .meminfo import MeminfoCollector
from .netdev import NetdevCollector
from .pve import PveBackupCollector, PveCollector
from .zfs import ZfsCollector


class Entry(NamedTuple):
    cls: type[Collector]
    tier: Tier
    default_on: bool


COLLECTORS: Final[dict[str, Entry]] = {
    cls.name: Entry(cls, cls.tier, True)
    for cls in (
        CpuCollector,
        LoadavgCollector,
        MeminfoCollector,
        NetdevCollector,
        DiskstatsCollector,
        FilesystemCollector,
        HwmonCollector,
        HostinfoCollector,
        ZfsCollector,
        PveCollector,
        PveBackupCollector,
    )
}


def build(enabled: dict[str, bool], settings: CollectorSettings) -> dict[Tier, list[CollectorRun]]:
    """The enabled collectors by tier; ``enabled`` overrides each entry's default, which
    holds only where the collector is available."""
    tiers: dict[Tier, list[CollectorRun]] = {tier: [] for tier in TIERS}
    for name, entry in COLLECTORS.items():
        if enabled.get(name, entry.default_on and entry.cls.available()):
            tiers[entry.tier].append(CollectorRun(entry.cls(settings)))
    return tiers


__all__ = [
    "COLLECTORS",
    "TIERS",
    "Collector",
    "CollectorRun",
    "CollectorSettings",
    "Entry",
    "Patterns",
    "Tier",
    "build",
]
