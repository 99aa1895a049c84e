"""A Proxmox VE host's pools, guests, storages and backups as Home Assistant shows them.

The agent's ``zfs``, ``pve`` and ``pve_backup`` collectors send neutral samples (``zfs_pool``,
``zfs_arc``, ``pve_guest``, ``pve_guests``, ``pve_storage``, ``pve_backup``,
``pve_updates``); this module keeps the latest values a dashboard wants (a pool's capacity
%, a guest's CPU %) and tells the transitions automations want as events: a guest that
stops running, a pool that leaves ONLINE or whose errors rise from 0. A first reading is
no transition (a restarted Home Assistant must not report an old fault again). HA-free,
so it is tested without Home Assistant. Everything keyed by a name from the wire is capped
(pools, storages and statuses at ``MAX_PER_KIND``, guests and backups at ``MAX_GUESTS``,
the agent's default guest cap); what does not fit is counted in ``dropped``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..core.sample import FieldValue, Sample

MAX_PER_KIND: Final = 64
MAX_GUESTS: Final = 100
EVENT_GUEST_STOPPED: Final = "fleet_metrics_guest_stopped"
EVENT_POOL_DEGRADED: Final = "fleet_metrics_pool_degraded"
MEASUREMENTS: Final = frozenset(
    {"zfs_pool", "zfs_arc", "pve_guest", "pve_guests", "pve_storage", "pve_backup", "pve_updates"}
)

# (event type, payload without the host, which the coordinator adds)
Event = tuple[str, dict[str, Any]]


def _number(value: FieldValue | None) -> float | None:
    """A finite number, or None (NaN and ±inf from a garbled reading are none)."""
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def _int(value: FieldValue | None) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _text(value: FieldValue | None) -> str | None:
    return value if isinstance(value, str) else None


def _percent(ratio: float | None) -> float | None:
    return round(100.0 * ratio, 1) if ratio is not None else None


@dataclass(slots=True)
class Pool:
    health: str | None = None  # as zpool prints it: ONLINE, DEGRADED...
    errors: int | None = None  # read + write + checksum over all vdevs
    capacity_percent: float | None = None
    fragmentation_percent: float | None = None
    last_scrub: float | None = None  # unix seconds a scrub last finished

    @property
    def problem(self) -> bool | None:
        """On when the pool is not ONLINE or has errors; None before its health is known."""
        if self.health is None:
            return None
        return self.health != "ONLINE" or bool(self.errors)


@dataclass(slots=True)
class Guest:
    id: str  # "qemu/100", "lxc/101"
    name: str = ""
    type: str = ""  # qemu | lxc
    status: str | None = None  # running, stopped, paused...
    cpu_percent: float | None = None  # of the guest's own CPUs, as PVE's GUI shows it
    memory_used_bytes: int | None = None
    disk_used_bytes: int | None = None  # unknown for a VM: PVE cannot see into its disks

    @property
    def running(self) -> bool | None:
        return None if self.status is None else self.status == "running"

    @property
    def label(self) -> str:
        """The guest's name as PVE lists it: "web (qemu/100)"."""
        return f"{self.name} ({self.id})" if self.name else self.id


@dataclass(slots=True)
class ProxmoxReadings:
    pools: dict[str, Pool] = field(default_factory=dict)
    guests: dict[str, Guest] = field(default_factory=dict)
    guest_counts: dict[str, int] = field(default_factory=dict)  # by status
    storage_used_percent: dict[str, float] = field(default_factory=dict)  # by storage
    last_backup: dict[str, float] = field(default_factory=dict)  # guest id -> unix seconds
    arc_size_bytes: int | None = None
    updates_pending: int | None = None
    dropped: int = 0
    _counts_ns: int = 0

    def apply(self, sample: Sample, events: list[Event]) -> None:
        """Take ``sample`` in; append the events its transitions call for to ``events``."""
        handler = _HANDLERS.get(sample.measurement)
        if handler is not None:
            handler(self, sample, events)

    def _room(self, values: Mapping[str, object], key: str, cap: int = MAX_PER_KIND) -> bool:
        if key in values or len(values) < cap:
            return True
        self.dropped += 1
        return False

    def _on_pool(self, sample: Sample, events: list[Event]) -> None:
        name = sample.tags.get("pool")
        if not name or not self._room(self.pools, name):
            return
        f = sample.fields
        pool = self.pools.get(name)
        new = pool is None
        if pool is None:
            pool = self.pools[name] = Pool()
        was_health, was_errors = pool.health, pool.errors
        pool.health = _text(f.get("health")) or pool.health
        errors = _int(f.get("errors"))
        if errors is not None:
            pool.errors = errors
        pool.capacity_percent = _percent(_number(f.get("capacity_ratio")))
        pool.fragmentation_percent = _percent(_number(f.get("fragmentation_ratio")))
        scrub = _number(f.get("scrub_last_end_timestamp_seconds"))
        if scrub is not None and scrub > 0:
            pool.last_scrub = scrub
        if new:
            return
        left_online = was_health == "ONLINE" and pool.health != "ONLINE"
        errors_rose = was_errors == 0 and bool(pool.errors)
        if left_online or errors_rose:
            events.append(
                (
                    EVENT_POOL_DEGRADED,
                    {"pool": name, "health": pool.health, "errors": pool.errors},
                )
            )

    def _on_arc(self, sample: Sample, events: list[Event]) -> None:
        size = _int(sample.fields.get("size_bytes"))
        if size is not None:
            self.arc_size_bytes = size

    def _on_guest(self, sample: Sample, events: list[Event]) -> None:
        guest_id = sample.tags.get("id")
        if not guest_id or not self._room(self.guests, guest_id, MAX_GUESTS):
            return
        f = sample.fields
        guest = self.guests.get(guest_id)
        new = guest is None
        if guest is None:
            guest = self.guests[guest_id] = Guest(guest_id)
        was_running = guest.running
        guest.name = _text(f.get("name")) or guest.name
        guest.type = _text(f.get("type")) or guest.type
        status = _text(f.get("status"))
        if status is None and (up := _int(f.get("up"))) is not None:
            status = "running" if up else "stopped"
        guest.status = status or guest.status
        cpu = _number(f.get("cpu_ratio"))
        guest.cpu_percent = round(100.0 * cpu, 1) if cpu is not None else None
        guest.memory_used_bytes = _int(f.get("memory_usage_bytes"))
        guest.disk_used_bytes = _int(f.get("disk_usage_bytes"))
        if not new and was_running and guest.running is False:
            events.append((EVENT_GUEST_STOPPED, {"id": guest_id, "name": guest.name}))

    def _on_guests(self, sample: Sample, events: list[Event]) -> None:
        """One run's counts share a time; a newer run starts over (a status that no guest
        has any more is not sent, and must not keep its old count)."""
        if sample.time_ns > self._counts_ns:
            self._counts_ns = sample.time_ns
            self.guest_counts.clear()
        elif sample.time_ns < self._counts_ns:
            return
        status = sample.tags.get("status")
        count = _int(sample.fields.get("count"))
        if status and count is not None and self._room(self.guest_counts, status):
            self.guest_counts[status] = count

    def _on_storage(self, sample: Sample, events: list[Event]) -> None:
        name = sample.tags.get("storage")
        used = _number(sample.fields.get("usage_bytes"))
        size = _number(sample.fields.get("size_bytes"))
        if not name or used is None or size is None or size <= 0:
            return
        if self._room(self.storage_used_percent, name):
            self.storage_used_percent[name] = round(100.0 * used / size, 1)

    def _on_backup(self, sample: Sample, events: list[Event]) -> None:
        guest_id = sample.tags.get("id")
        success = _number(sample.fields.get("last_success_timestamp_seconds"))
        if guest_id and success is not None and self._room(self.last_backup, guest_id, MAX_GUESTS):
            self.last_backup[guest_id] = success

    def _on_updates(self, sample: Sample, events: list[Event]) -> None:
        pending = _int(sample.fields.get("pending"))
        if pending is not None:
            self.updates_pending = pending

    def guests_with(self, status: str) -> int | None:
        """Guests on the node with ``status``: 0 once any count arrived, None before."""
        if not self.guest_counts:
            return None
        return self.guest_counts.get(status, 0)


_HANDLERS: Final = {
    "zfs_pool": ProxmoxReadings._on_pool,
    "zfs_arc": ProxmoxReadings._on_arc,
    "pve_guest": ProxmoxReadings._on_guest,
    "pve_guests": ProxmoxReadings._on_guests,
    "pve_storage": ProxmoxReadings._on_storage,
    "pve_backup": ProxmoxReadings._on_backup,
    "pve_updates": ProxmoxReadings._on_updates,
}
