"""A Proxmox VE host's pools, guests, storages and backups as Home Assistant shows them.

The agent's ``zfs``, ``pve`` and ``pve_backup`` collectors send neutral samples (``zfs_pool``,
``zfs_arc``, ``pve_guest``, ``pve_guests``, ``pve_storage``, ``pve_backup``,
``pve_updates``); this module keeps the latest values a dashboard wants (a pool's capacity
%, a guest's CPU %) and tells the transitions automations want as events: a guest that
stops running, a pool that leaves ONLINE or whose errors rise from 0. A first reading is
no transition (a restarted Home Assistant must not report an old fault again). HA-free,
so it is tested without Home Assistant.

What a collector's run no longer lists is forgotten: each run ends with the agent's
``collector`` sample of that collector, stamped with the run's time, and a pool, guest,
storage or backup whose latest reading is older than the newest successful run of its
collector is dropped (its entities go unavailable). When the ``pve`` run sent every guest
of the node (its counts by status add up to the guests it sent: no cap or include list cut
any), the ids it sent are ``listed_guests``, and a guest missing from them is gone from PVE.

Everything keyed by a name from the wire is capped (pools, storages and statuses at
``MAX_PER_KIND``, guests and backups at ``MAX_GUESTS``, the agent's default guest cap): a
newcomer takes the place of the entry seen longest ago, or is left out when every entry was
seen in the same run (so a host sending more than the cap keeps a stable set); either way
it is counted in ``dropped``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from ..core.sample import FieldValue, Sample
from .readings import MAX_TIMESTAMP
from .readings import number as _number

MAX_PER_KIND: Final = 64
MAX_GUESTS: Final = 100
EVENT_GUEST_STOPPED: Final = "fleet_metrics_guest_stopped"
EVENT_POOL_DEGRADED: Final = "fleet_metrics_pool_degraded"
V = TypeVar("V")

# (event type, payload without the host, which the coordinator adds)
Event = tuple[str, dict[str, Any]]


def timestamp(value: FieldValue | None) -> float | None:
    """Unix seconds within (0, MAX_TIMESTAMP), else None."""
    seconds = _number(value)
    return seconds if seconds is not None and 0 < seconds < MAX_TIMESTAMP else None


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
    # The guest ids of the newest pve run that sent every guest of the node (None before);
    # ``listed_changed`` until the coordinator has removed the devices of the others.
    listed_guests: frozenset[str] | None = None
    listed_changed: bool = False
    _counts_ns: int = 0
    # When each entry was last read, by kind ("pools", "guests"...) and key, in ns.
    _seen: dict[str, dict[str, int]] = field(default_factory=dict)
    _run_ns: int = 0  # the pve run whose guest ids are in _run_guests
    _run_guests: set[str] = field(default_factory=set)

    def apply(self, sample: Sample, events: list[Event]) -> None:
        """Take ``sample`` in; append the events its transitions call for to ``events``."""
        handler = _HANDLERS.get(sample.measurement)
        if handler is not None:
            handler(self, sample, events)

    def _slot(
        self,
        kind: str,
        values: dict[str, V],
        key: str,
        time_ns: int,
        make: Callable[[], V],
        cap: int,
    ) -> V | None:
        """``values[key]``, made when new, marked as read at ``time_ns``; None when the cap
        is reached and no entry was read before ``time_ns`` (counted in ``dropped``)."""
        seen = self._seen.setdefault(kind, {})
        value = values.get(key)
        if value is None:
            if len(values) >= cap:
                oldest = min(values, key=lambda each: seen.get(each, 0))
                if seen.get(oldest, 0) >= time_ns:
                    self.dropped += 1
                    return None
                self.dropped += 1
                del values[oldest]
                seen.pop(oldest, None)
            value = values[key] = make()
        seen[key] = max(seen.get(key, 0), time_ns)
        return value

    def _forget_before(self, kind: str, values: dict[str, V], time_ns: int) -> None:
        """Drop the entries last read before ``time_ns``: the run of that time left them out."""
        seen = self._seen.setdefault(kind, {})
        for key in [key for key in values if seen.get(key, 0) < time_ns]:
            del values[key]
            seen.pop(key, None)

    def _on_pool(self, sample: Sample, events: list[Event]) -> None:
        name = sample.tags.get("pool")
        if not name:
            return
        new = name not in self.pools
        pool = self._slot("pools", self.pools, name, sample.time_ns, Pool, MAX_PER_KIND)
        if pool is None:
            return
        f = sample.fields
        was_health, was_errors = pool.health, pool.errors
        pool.health = _text(f.get("health")) or pool.health
        errors = _int(f.get("errors"))
        if errors is not None:
            pool.errors = errors
        pool.capacity_percent = _percent(_number(f.get("capacity_ratio")))
        pool.fragmentation_percent = _percent(_number(f.get("fragmentation_ratio")))
        scrub = timestamp(f.get("scrub_last_end_timestamp_seconds"))
        if scrub is not None:
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
        if not guest_id:
            return
        self._note_run_guest(guest_id, sample.time_ns)
        new = guest_id not in self.guests
        guest = self._slot(
            "guests", self.guests, guest_id, sample.time_ns, lambda: Guest(guest_id), MAX_GUESTS
        )
        if guest is None:
            return
        f = sample.fields
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

    def _note_run_guest(self, guest_id: str, time_ns: int) -> None:
        """Keep the ids of the newest pve run (a few times the cap at most: a run sending
        more is not taken as the node's whole list)."""
        if time_ns > self._run_ns:
            self._run_ns = time_ns
            self._run_guests = set()
        if time_ns == self._run_ns and len(self._run_guests) <= 4 * MAX_GUESTS:
            self._run_guests.add(guest_id)

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
        if status and count is not None:
            if status in self.guest_counts or len(self.guest_counts) < MAX_PER_KIND:
                self.guest_counts[status] = count
            else:
                self.dropped += 1

    def _on_storage(self, sample: Sample, events: list[Event]) -> None:
        name = sample.tags.get("storage")
        used = _number(sample.fields.get("usage_bytes"))
        size = _number(sample.fields.get("size_bytes"))
        if not name or used is None or size is None or size <= 0:
            return
        values = self.storage_used_percent
        if self._slot("storage", values, name, sample.time_ns, float, MAX_PER_KIND) is not None:
            values[name] = round(100.0 * used / size, 1)

    def _on_backup(self, sample: Sample, events: list[Event]) -> None:
        guest_id = sample.tags.get("id")
        success = timestamp(sample.fields.get("last_success_timestamp_seconds"))
        if not guest_id or success is None:
            return
        values = self.last_backup
        if self._slot("backup", values, guest_id, sample.time_ns, float, MAX_GUESTS) is not None:
            values[guest_id] = success

    def _on_collector(self, sample: Sample, events: list[Event]) -> None:
        """The end of a collector's run: what it did not send is forgotten."""
        if _int(sample.fields.get("success")) != 1:
            return  # it failed: nothing is known, so nothing is taken as gone
        name, time_ns = sample.tags.get("collector"), sample.time_ns
        if name == "zfs":
            self._forget_before("pools", self.pools, time_ns)
        elif name == "pve":
            self._forget_before("guests", self.guests, time_ns)
            self._forget_before("storage", self.storage_used_percent, time_ns)
            self._note_listed(time_ns)
        elif name == "pve_backup":
            self._forget_before("backup", self.last_backup, time_ns)

    def _note_listed(self, time_ns: int) -> None:
        """The run's guest ids are the node's when its counts (templates aside, which are
        never sent one by one) add up to them."""
        if time_ns != self._counts_ns or time_ns < self._run_ns:
            return  # no list read in this run
        run = self._run_guests if self._run_ns == time_ns else set()
        counted = sum(n for status, n in self.guest_counts.items() if status != "template")
        if counted != len(run):
            return  # a cap or an include list left guests out: absence says nothing
        listed = frozenset(run)
        if listed != self.listed_guests:
            self.listed_guests = listed
            self.listed_changed = True

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
    "collector": ProxmoxReadings._on_collector,
}
