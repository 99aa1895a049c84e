"""Per-disk I/O counters (fast tier), whole physical disks only by default.

psutil lists partitions beside their disks (``sda`` and ``sda1``, ``nvme0n1`` and
``nvme0n1p1``); summing both would count every byte twice, so partitions are left out unless
asked for. A name is a partition when it is a listed disk's name plus a number (``sda`` + ``1``)
or plus ``p`` and a number (``nvme0n1`` + ``p1``): decided from the list itself, so it works on
recorded results as on the host.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Any, Final

import psutil

from ...sample import Sample
from .base import Collector, Patterns

MAX_DISKS: Final = 256

_PARTITION = re.compile(r"^(?P<disk>.*?\d)p\d+$|^(?P<plain>.*\D)\d+$")
_MS_FIELDS: Final = (
    ("read_time_seconds", "read_time"),
    ("write_time_seconds", "write_time"),
    ("io_time_seconds", "busy_time"),  # Linux and FreeBSD only
)
_COUNTERS: Final = frozenset(
    {"read_bytes", "written_bytes", "reads_completed", "writes_completed"}
    | {name for name, _ in _MS_FIELDS}
)


def is_partition(name: str, names: Collection[str]) -> bool:
    """Whether ``name`` is a partition of another device in ``names``."""
    match = _PARTITION.match(name)
    if match is None:
        return False
    return (match.group("disk") or match.group("plain")) in names


def disk_samples(
    perdisk: Mapping[str, Any],
    devices: Patterns,
    partitions: bool,
    time_ns: int,
    cap: int = MAX_DISKS,
) -> tuple[list[Sample], int]:
    """``disk`` samples from ``psutil.disk_io_counters(perdisk=True)`` and how many allowed
    disks the cap left out."""
    names = sorted(
        name
        for name in perdisk
        if devices.allows(name) and (partitions or not is_partition(name, perdisk))
    )
    samples = []
    for name in names[:cap]:
        io = perdisk[name]
        fields: dict[str, int | float] = {
            "read_bytes": int(io.read_bytes),
            "written_bytes": int(io.write_bytes),
            "reads_completed": int(io.read_count),
            "writes_completed": int(io.write_count),
        }
        for field, attr in _MS_FIELDS:
            if hasattr(io, attr):
                fields[field] = getattr(io, attr) / 1000.0
        samples.append(Sample("disk", {"device": name}, fields, time_ns, _COUNTERS & fields.keys()))
    return samples, max(0, len(names) - cap)


class DiskstatsCollector(Collector):
    name = "diskstats"
    tier = "fast"

    def collect(self, time_ns: int) -> list[Sample]:
        perdisk = psutil.disk_io_counters(perdisk=True) or {}
        samples, left_out = disk_samples(
            perdisk, self.settings.disk_devices, self.settings.disk_partitions, time_ns
        )
        if left_out:
            self.overflow += left_out
            self.once.warning(
                "cap", "diskstats: more than %d disks; the rest are left out", MAX_DISKS
            )
        return samples
