"""Mounted filesystems: size, free and available bytes, inodes (medium tier).

Mounts come from ``psutil.disk_partitions()`` (physical filesystems; ZFS datasets included)
and their usage from ``os.statvfs``, which gives what node_exporter reports: ``free`` counts
blocks reserved for root, ``avail`` does not, and inode counts come with it. Proxmox
container volumes (``subvol-*``) and in-memory filesystems are left out by default; a bind
mount shows the same filesystem again, so each device is reported once, at its shortest
mount point. A mount that cannot be read (a dead NFS server, a permission) is skipped alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Final

import psutil

from ...errors import describe_error
from ...sample import Sample
from .base import Collector, Patterns

MAX_FILESYSTEMS: Final = 512


def _dedupe_key(part: Any) -> str:
    """Bind mounts share the device; pseudo devices ("tmpfs", "none") name no device."""
    device = str(part.device)
    if not device or device == "none" or device == part.fstype:
        return f"\0{part.mountpoint}"
    return device


def select_mounts(
    partitions: Iterable[Any], fstypes: Patterns, mountpoints: Patterns, cap: int = MAX_FILESYSTEMS
) -> tuple[list[Any], int]:
    """The mounts to report from ``psutil.disk_partitions()``, one per device, sorted by
    mount point, and how many allowed mounts the cap left out."""
    chosen: dict[str, Any] = {}
    allowed = (
        part
        for part in partitions
        if fstypes.allows(part.fstype) and mountpoints.allows(part.mountpoint)
    )
    for part in sorted(allowed, key=lambda part: (len(part.mountpoint), part.mountpoint)):
        chosen.setdefault(_dedupe_key(part), part)
    mounts = sorted(chosen.values(), key=lambda part: part.mountpoint)
    return mounts[:cap], max(0, len(mounts) - cap)


def filesystem_sample(part: Any, stat: Any, time_ns: int) -> Sample:
    """The ``filesystem`` sample of one mount from its ``os.statvfs`` result."""
    block = stat.f_frsize or stat.f_bsize
    return Sample(
        "filesystem",
        {"device": str(part.device), "mountpoint": part.mountpoint, "fstype": part.fstype},
        {
            "size_bytes": int(stat.f_blocks * block),
            "free_bytes": int(stat.f_bfree * block),
            "avail_bytes": int(stat.f_bavail * block),
            "files": int(stat.f_files),
            "files_free": int(stat.f_ffree),
        },
        time_ns,
    )


class FilesystemCollector(Collector):
    name = "filesystem"
    tier = "medium"

    def collect(self, time_ns: int) -> list[Sample]:
        # psutil's own filter (all=False) keeps filesystems on devices; asking for an fstype
        # by name (tmpfs, say) needs the full mount table.
        everything = bool(self.settings.fs_fstypes.include)
        mounts, left_out = select_mounts(
            psutil.disk_partitions(all=everything),
            self.settings.fs_fstypes,
            self.settings.fs_mountpoints,
        )
        if left_out:
            self.overflow += left_out
            self.once.warning(
                "cap", "filesystem: more than %d mounts; the rest are left out", MAX_FILESYSTEMS
            )
        samples = []
        for part in mounts:
            try:
                stat = os.statvfs(part.mountpoint)
            except OSError as err:
                self.once.warning(
                    part.mountpoint,
                    "filesystem: skipping %s: %s",
                    part.mountpoint,
                    describe_error(err),
                )
                continue
            samples.append(filesystem_sample(part, stat, time_ns))
        return samples
