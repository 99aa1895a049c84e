"""Proxmox VE guests, storage (medium tier) and backups, updates (slow tier), read with
``pvesh`` on the node itself: no API token, and on by itself where ``pveversion`` is.

Guests are sent one by one for the vmids the config lists, else for the first
``max_guests`` by vmid; the counts by status always cover all of them. Templates are not
guests that run: they are counted under the status "template" and not sent one by one.

Backups: ``/nodes/<node>/tasks`` names a vzdump task after its guest only when the task
backed up that one guest; a job over several guests is one task without a guest, so its
runs do not show per guest here (PVE keeps those per-guest results only in the task log).
Parsers are in pve_parse.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import partial
from typing import Any, Final

from ...sample import Sample
from .base import Collector, CollectorSettings
from .commands import Command, Reading, find, node_name
from .pve_parse import (
    BackupTask,
    Guest,
    NotBackedUp,
    Storage,
    last_backups,
    parse_apt_updates,
    parse_guests,
    parse_not_backed_up,
    parse_storage,
    parse_tasks,
)

MAX_STORAGES: Final = 256
MAX_STATUSES: Final = 16
TASK_LIMIT: Final = 1000  # vzdump tasks read per run: enough for a daily backup of each guest
GUEST_COUNTERS: Final = frozenset({"network_receive_bytes", "network_transmit_bytes"})


def _pvesh(path: str, *args: str) -> tuple[str, ...]:
    return ("pvesh", "get", path, *args, "--output-format", "json")


def guest_commands(node: str) -> tuple[Command[list[Guest]], Command[list[Guest]]]:
    return (
        Command(_pvesh(f"/nodes/{node}/qemu"), partial(parse_guests, guest_type="qemu")),
        Command(_pvesh(f"/nodes/{node}/lxc"), partial(parse_guests, guest_type="lxc")),
    )


def select_guests(
    guests: Iterable[Guest], include: tuple[int, ...], cap: int
) -> tuple[list[Guest], int]:
    """The guests to send one by one, by vmid, and how many the cap left out: those in
    ``include`` when it is not empty (the config bounds that list), else the first ``cap``.
    Templates never."""
    candidates = sorted(
        (guest for guest in guests if not guest.template), key=lambda guest: guest.vmid
    )
    if include:
        wanted = set(include)
        return [guest for guest in candidates if guest.vmid in wanted], 0
    return candidates[:cap], max(0, len(candidates) - cap)


def guest_sample(guest: Guest, stale: bool, time_ns: int) -> Sample:
    fields: dict[str, Any] = {
        "up": int(guest.status == "running"),
        "status": guest.status,
        "name": guest.name,
        "type": guest.type,
        "tags": guest.tags,
    }
    if guest.lock:
        fields["lock"] = guest.lock
    disk = guest.disk
    if guest.type == "qemu" and not disk:
        disk = None  # PVE cannot see into a VM's disks and says 0: unknown, not empty
    for key, value in (
        ("cpu_ratio", guest.cpu),
        ("cpus", guest.cpus),
        ("memory_usage_bytes", guest.mem),
        ("memory_size_bytes", guest.maxmem),
        ("disk_usage_bytes", disk),
        ("disk_size_bytes", guest.maxdisk),
        ("network_receive_bytes", guest.netin),
        ("network_transmit_bytes", guest.netout),
        ("uptime_seconds", guest.uptime),
    ):
        if value is not None:
            fields[key] = value
    fields["stale"] = int(stale)
    return Sample("pve_guest", {"id": guest.id}, fields, time_ns, GUEST_COUNTERS & fields.keys())


def count_samples(guests: Iterable[Guest], time_ns: int) -> list[Sample]:
    """``pve_guests`` by status; templates under "template"; at most MAX_STATUSES."""
    counts = Counter("template" if guest.template else guest.status for guest in guests)
    return [
        Sample("pve_guests", {"status": status}, {"count": count}, time_ns)
        for status, count in sorted(counts.items())[:MAX_STATUSES]
    ]


def storage_sample(storage: Storage, stale: bool, time_ns: int) -> Sample:
    fields: dict[str, Any] = {}
    for key, value in (
        ("active", storage.active),
        ("enabled", storage.enabled),
        ("usage_bytes", storage.used),
        ("size_bytes", storage.total),
        ("avail_bytes", storage.avail),
    ):
        if value is not None:
            fields[key] = int(value)
    fields["content"] = storage.content
    fields["stale"] = int(stale)
    return Sample(
        "pve_storage", {"storage": storage.storage, "type": storage.type}, fields, time_ns
    )


def _guests(readings: Iterable[Reading[list[Guest]] | None]) -> list[tuple[Guest, bool]]:
    return [
        (guest, reading.stale)
        for reading in readings
        if reading is not None
        for guest in reading.value
    ]


class _PveCollector(Collector):
    """What both PVE collectors share: the node name and the guest lists."""

    def __init__(self, settings: CollectorSettings) -> None:
        super().__init__(settings)
        self.node = settings.pve_node or node_name()
        self.qemu, self.lxc = guest_commands(self.node)

    @classmethod
    def available(cls) -> bool:
        return find("pveversion") is not None

    def _read_guests(self) -> tuple[list[tuple[Guest, bool]], bool]:
        """Every guest with its staleness, and whether any list was read at all."""
        readings = [
            self.qemu.run(self.settings.command_timeout),
            self.lxc.run(self.settings.command_timeout),
        ]
        return _guests(readings), any(reading is not None for reading in readings)

    def _select(self, guests: list[tuple[Guest, bool]]) -> list[tuple[Guest, bool]]:
        stale = {guest.id: is_stale for guest, is_stale in guests}
        chosen, left_out = select_guests(
            (guest for guest, _ in guests), self.settings.pve_guests, self.settings.pve_max_guests
        )
        if left_out:
            self.overflow += left_out
            self.once.warning(
                "cap",
                "%s: more than %d guests; the rest are counted but not sent one by one "
                "(list the ones to send in [proxmox] guests)",
                self.name,
                self.settings.pve_max_guests,
            )
        return [(guest, stale[guest.id]) for guest in chosen]


class PveCollector(_PveCollector):
    name = "pve"
    tier = "medium"

    def __init__(self, settings: CollectorSettings) -> None:
        super().__init__(settings)
        self.storage = Command(_pvesh(f"/nodes/{self.node}/storage"), parse_storage)

    def collect(self, time_ns: int) -> list[Sample]:
        guests, listed = self._read_guests()
        samples = [guest_sample(guest, stale, time_ns) for guest, stale in self._select(guests)]
        if listed:
            samples += count_samples((guest for guest, _ in guests), time_ns)
        storage = self.storage.run(self.settings.command_timeout)
        if storage is not None:
            samples += [
                storage_sample(each, storage.stale, time_ns)
                for each in storage.value[:MAX_STORAGES]
            ]
        return samples


def backup_samples(
    guests: list[Guest],
    tasks: Reading[list[BackupTask]] | None,
    not_backed_up: Reading[list[NotBackedUp]] | None,
    time_ns: int,
) -> list[Sample]:
    """``pve_backup`` of each guest in ``guests``: last vzdump success and failure (when the
    task list has one) and whether no backup job covers it (when that list was read)."""
    last = last_backups(tasks.value) if tasks is not None else {}
    uncovered = {entry.vmid for entry in not_backed_up.value} if not_backed_up else set()
    samples = []
    for guest in guests:
        fields: dict[str, Any] = {}
        success, failure = last.get(guest.vmid, (None, None))
        if success is not None:
            fields["last_success_timestamp_seconds"] = float(success)
        if failure is not None:
            fields["last_failure_timestamp_seconds"] = float(failure)
        if not_backed_up is not None:
            fields["not_backed_up"] = int(guest.vmid in uncovered)
        if fields:
            samples.append(Sample("pve_backup", {"id": guest.id}, fields, time_ns))
    return samples


class PveBackupCollector(_PveCollector):
    name = "pve_backup"
    tier = "slow"

    def __init__(self, settings: CollectorSettings) -> None:
        super().__init__(settings)
        self.tasks = Command(
            _pvesh(
                f"/nodes/{self.node}/tasks", "--typefilter", "vzdump", "--limit", str(TASK_LIMIT)
            ),
            parse_tasks,
        )
        self.not_backed_up = Command(
            _pvesh("/cluster/backup-info/not-backed-up"), parse_not_backed_up
        )
        self.updates = Command(_pvesh(f"/nodes/{self.node}/apt/update"), parse_apt_updates)

    def collect(self, time_ns: int) -> list[Sample]:
        timeout = self.settings.command_timeout
        guests, listed = self._read_guests()
        tasks = self.tasks.run(timeout)
        not_backed_up = self.not_backed_up.run(timeout)
        if listed:
            local = [guest for guest, _ in self._select(guests)]
        elif not_backed_up is not None:
            # No guest list: the guests the cluster list names (it gives their type).
            local = [
                Guest(entry.vmid, entry.type, "unknown", entry.name)
                for entry in not_backed_up.value
            ]
            local = [guest for guest, _ in self._select([(guest, True) for guest in local])]
        else:
            local = []
        samples = backup_samples(local, tasks, not_backed_up, time_ns)
        updates = self.updates.run(timeout)
        if updates is not None:
            samples.append(Sample("pve_updates", {}, {"pending": updates.value}, time_ns))
        return samples
