"""ZFS pools and the ARC (medium tier), on by itself where ``zpool`` is installed.

Pool size and use come from ``zpool list -Hp``; state, per-vdev errors and the last scrub
from ``zpool status``: its JSON (``-j``, OpenZFS 2.3+) where the installed zpool has it, else
its text. Until ``-j`` has once given JSON that parses, a run without it (refused, or output
this parser does not read) reads the text too, and the text is chosen for good once it
works. The ARC's size and
target come from arcstats: the ARC is a cache that gives memory back, so the server can
show memory used with and without it. Parsers are in zfs_parse.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from ...errors import describe_error
from ...sample import Sample
from .base import Collector, CollectorSettings
from .commands import Command, Reading, find
from .zfs_parse import (
    POOL_STATES,
    ArcStats,
    PoolStatus,
    PoolUsage,
    ZfsParseError,
    parse_arcstats,
    parse_zpool_list,
    parse_zpool_status_json,
    parse_zpool_status_text,
)

ARCSTATS: Final = "/proc/spl/kstat/zfs/arcstats"
MAX_POOLS: Final = 64
ERROR_KINDS: Final = ("read", "write", "checksum")


def pool_samples(
    usage: Reading[list[PoolUsage]] | None,
    status: Reading[list[PoolStatus]] | None,
    time_ns: int,
    cap: int = MAX_POOLS,
) -> tuple[list[Sample], int]:
    """``zfs_pool``, ``zfs_pool_state`` and ``zfs_vdev`` samples of every pool either
    command knows, and how many pools the cap left out."""
    by_usage = {pool.name: pool for pool in usage.value} if usage else {}
    by_status = {pool.name: pool for pool in status.value} if status else {}
    names = sorted(by_usage.keys() | by_status.keys())
    stale = int(bool(usage and usage.stale) or bool(status and status.stale))
    samples: list[Sample] = []
    for name in names[:cap]:
        fields: dict[str, Any] = {}
        health = ""
        if (pool := by_usage.get(name)) is not None:
            fields.update(
                (key, value)
                for key, value in (
                    ("size_bytes", pool.size_bytes),
                    ("allocated_bytes", pool.allocated_bytes),
                    ("free_bytes", pool.free_bytes),
                    ("fragmentation_ratio", pool.fragmentation_ratio),
                    ("capacity_ratio", pool.capacity_ratio),
                    ("dedup_ratio", pool.dedup_ratio),
                )
                if value is not None
            )
            health = pool.health
        if (state := by_status.get(name)) is not None:
            health = health or state.state
            fields["errors"] = state.errors
            fields.update(_scan_fields(state))
            samples += _vdev_samples(state, time_ns)
        fields["health"] = health
        fields["stale"] = stale
        samples.append(Sample("zfs_pool", {"pool": name}, fields, time_ns))
        states = POOL_STATES if health in POOL_STATES else (*POOL_STATES, health)
        samples += [
            Sample(
                "zfs_pool_state",
                {"zpool": name, "state": each},
                {"value": int(each == health)},
                time_ns,
            )
            for each in states
        ]
    return samples, max(0, len(names) - cap)


def _scan_fields(state: PoolStatus) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if state.scan is not None and state.scan_state is not None:
        fields["scan"] = state.scan
        fields["scan_state"] = state.scan_state
    if state.scan_state == "scanning" and state.scan_progress_ratio is not None:
        fields["scan_progress_ratio"] = state.scan_progress_ratio
    if state.scan == "scrub" and state.scan_state == "finished":
        if state.scrub_end is not None:
            fields["scrub_last_end_timestamp_seconds"] = state.scrub_end
        if state.scan_repaired_bytes is not None:
            fields["scrub_repaired_bytes"] = state.scan_repaired_bytes
        if state.scan_errors is not None:
            fields["scrub_errors"] = state.scan_errors
    return fields


def _vdev_samples(state: PoolStatus, time_ns: int) -> list[Sample]:
    samples = []
    seen: set[str] = set()
    for vdev in state.vdevs:
        if vdev.name in seen:  # one series per name
            continue
        seen.add(vdev.name)
        for kind, errors in zip(ERROR_KINDS, (vdev.read, vdev.write, vdev.checksum), strict=True):
            samples.append(
                Sample(
                    "zfs_vdev",
                    {"pool": state.name, "vdev": vdev.name, "kind": kind},
                    {"errors": errors},
                    time_ns,
                )
            )
    return samples


def arc_sample(arc: ArcStats, time_ns: int) -> Sample:
    fields = {"size_bytes": arc.size_bytes, "target_bytes": arc.target_bytes}
    if arc.min_bytes is not None:
        fields["min_bytes"] = arc.min_bytes
    if arc.max_bytes is not None:
        fields["max_bytes"] = arc.max_bytes
    return Sample("zfs_arc", {}, fields, time_ns)


class ZfsCollector(Collector):
    name = "zfs"
    tier = "medium"

    def __init__(self, settings: CollectorSettings, arcstats: str = ARCSTATS) -> None:
        super().__init__(settings)
        self.arcstats = arcstats
        self.list = Command(("zpool", "list", "-Hp"), parse_zpool_list)
        self.status_json = Command(
            ("zpool", "status", "-j", "--json-int", "-p"), parse_zpool_status_json
        )
        self.status_text = Command(("zpool", "status", "-p"), parse_zpool_status_text)
        self.use_json: bool | None = None  # None until the first answer to -j

    @classmethod
    def available(cls) -> bool:
        return find("zpool") is not None

    def collect(self, time_ns: int) -> list[Sample]:
        timeout = self.settings.command_timeout
        samples, left_out = pool_samples(self.list.run(timeout), self._status(timeout), time_ns)
        if left_out:
            self.overflow += left_out
            self.once.warning("cap", "zfs: more than %d pools; the rest are left out", MAX_POOLS)
        arc = self._arc()
        if arc is not None:
            samples.append(arc_sample(arc, time_ns))
        return samples

    def _status(self, timeout: float) -> Reading[list[PoolStatus]] | None:
        if self.use_json is False:
            return self.status_text.run(timeout)
        reading = self.status_json.run(timeout)
        if reading is not None and not reading.stale:
            self.use_json = True
        if self.use_json:
            return reading  # worked before: a failing run is stale JSON, not a switch
        # -j refused (zpool older than 2.3) or its output not read: the text, for good
        # once it works
        text = self.status_text.run(timeout)
        if text is not None and not text.stale:
            self.use_json = False
        return text

    def _arc(self) -> ArcStats | None:
        try:
            text = Path(self.arcstats).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None  # ZFS module not loaded
        except OSError as err:
            self.once.warning(
                "arcstats", "zfs: cannot read %s: %s", self.arcstats, describe_error(err)
            )
            return None
        try:
            return parse_arcstats(text)
        except ZfsParseError as err:
            self.once.warning("arcstats-parse", "zfs: %s not understood: %s", self.arcstats, err)
            return None
