"""Proxmox VE guests, storage (medium tier) and backups, updates (slow tier), read with
``pvesh`` on the node itself: no API token, and on by itself where ``pveversion`` is.

Guests are sent one by one for the vmids the config lists, else for the first
``max_guests`` by vmid; the counts by status always cover all of them. Templates are not
guests that run: they are counted under the status "template" and not sent one by one.

Both collectors need the node's guest and storage lists; they share one ``NodeLists`` per
node, and the slow tier takes the medium tier's lists when they are younger than the medium
interval instead of asking pvesh again (pvesh is Perl: each call costs about a second of
CPU on the host).

Backups: ``/nodes/<node>/tasks`` names a vzdump task after its guest only when the task
backed up that one guest; a job over several guests (a scheduled job, what most hosts
have) is one task without a guest. So the last success of a guest is also the newest
backup on the node's enabled backup storages (an archive exists only when vzdump finished
it; PBS lists a snapshot still being written without a size, which the parser skips), and
the per-guest outcome of the newest failed jobs is read from their task logs, which PVE
keeps only there. A finished task's log does not change, so each is read once.
Parsers are in pve_parse.py.
"""

from __future__ import annotations

import threading
import weakref
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
    GuestBackups,
    JobLog,
    NotBackedUp,
    Storage,
    StorageBackups,
    failed_jobs,
    last_backups,
    merge_backups,
    parse_apt_updates,
    parse_backup_content,
    parse_guests,
    parse_not_backed_up,
    parse_storage,
    parse_task_log,
    parse_tasks,
    summarize_backups,
)

MAX_STORAGES: Final = 256
MAX_STATUSES: Final = 16
TASK_LIMIT: Final = 1000  # vzdump tasks read per run: enough for a daily backup of each guest
GUEST_COUNTERS: Final = frozenset({"network_receive_bytes", "network_transmit_bytes"})
MAX_BACKUP_STORAGES: Final = 16  # backup storages whose content is read per run
MAX_BACKUP_GUESTS: Final = 10_000  # vmids kept per backup storage (a shared PBS sees many)
JOB_LOGS: Final = 3  # failed jobs over several guests whose log is read, newest first
# Lines of one job log read at most: a VM's backup logs about 100 progress lines, so this
# covers a job over about 150 guests; PVE's own default is 50.
LOG_LINES: Final = 20_000
_LOG_LOCK: Final = ("pvesh", "get", "task log")


def _pvesh(path: str, *args: str) -> tuple[str, ...]:
    return ("pvesh", "get", path, *args, "--output-format", "json")


class NodeLists:
    """The guest lists and the storage list of one node, as commands with their last good
    result: one set per node, whoever runs them."""

    def __init__(self, node: str) -> None:
        self.qemu: Command[list[Guest]] = Command(
            _pvesh(f"/nodes/{node}/qemu"), partial(parse_guests, guest_type="qemu")
        )
        self.lxc: Command[list[Guest]] = Command(
            _pvesh(f"/nodes/{node}/lxc"), partial(parse_guests, guest_type="lxc")
        )
        self.storage: Command[list[Storage]] = Command(
            _pvesh(f"/nodes/{node}/storage"), parse_storage
        )


# By node; an entry lives as long as a collector holds it (tests build collectors afresh).
_NODE_LISTS: weakref.WeakValueDictionary[str, NodeLists] = weakref.WeakValueDictionary()
_NODE_LISTS_LOCK = threading.Lock()


def node_lists(node: str) -> NodeLists:
    with _NODE_LISTS_LOCK:
        lists = _NODE_LISTS.get(node)
        if lists is None:
            lists = _NODE_LISTS[node] = NodeLists(node)
        return lists


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


def count_samples(guests: Iterable[Guest], time_ns: int) -> tuple[list[Sample], int]:
    """``pve_guests`` by status, templates under "template", for the MAX_STATUSES statuses
    most guests have; and how many statuses that left out."""
    counts = Counter("template" if guest.template else guest.status for guest in guests)
    kept = sorted(counts.most_common(MAX_STATUSES))
    samples = [
        Sample("pve_guests", {"status": status}, {"count": count}, time_ns)
        for status, count in kept
    ]
    return samples, len(counts) - len(kept)


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
    """What both PVE collectors share: the node name and its guest and storage lists.
    ``lists_max_age``: how old a good list may be to be taken instead of a new run."""

    lists_max_age = 0.0

    def __init__(self, settings: CollectorSettings) -> None:
        super().__init__(settings)
        self.node = settings.pve_node or node_name()
        self.lists = node_lists(self.node)

    @classmethod
    def available(cls) -> bool:
        return find("pveversion") is not None

    def _read_guests(self) -> tuple[list[tuple[Guest, bool]], bool]:
        """Every guest with its staleness, and whether any list was read at all."""
        timeout, max_age = self.settings.command_timeout, self.lists_max_age
        readings = [
            self.lists.qemu.run(timeout, max_age),
            self.lists.lxc.run(timeout, max_age),
        ]
        return _guests(readings), any(reading is not None for reading in readings)

    def _read_storage(self) -> Reading[list[Storage]] | None:
        return self.lists.storage.run(self.settings.command_timeout, self.lists_max_age)

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

    def collect(self, time_ns: int) -> list[Sample]:
        guests, listed = self._read_guests()
        samples = [guest_sample(guest, stale, time_ns) for guest, stale in self._select(guests)]
        if listed:
            counts, left_out = count_samples((guest for guest, _ in guests), time_ns)
            samples += counts
            if left_out:
                self.overflow += left_out
                self.once.warning(
                    "statuses",
                    "pve: more than %d guest statuses; counted are the most common",
                    MAX_STATUSES,
                )
        storage = self._read_storage()
        if storage is not None:
            samples += [
                storage_sample(each, storage.stale, time_ns)
                for each in storage.value[:MAX_STORAGES]
            ]
        return samples


def storage_backups(text: str) -> StorageBackups:
    """What a content command keeps between runs: the summary, not every archive."""
    return summarize_backups(parse_backup_content(text), MAX_BACKUP_GUESTS)


def content_command(node: str, storage: str) -> Command[StorageBackups]:
    return Command(
        _pvesh(f"/nodes/{node}/storage/{storage}/content", "--content", "backup"),
        storage_backups,
    )


def log_command(node: str, upid: str) -> Command[JobLog]:
    return Command(
        _pvesh(f"/nodes/{node}/tasks/{upid}/log", "--limit", str(LOG_LINES)),
        parse_task_log,
        lock_key=_LOG_LOCK,
    )


def is_backup_storage(storage: Storage) -> bool:
    return "backup" in storage.content.split(",")


def backup_samples(
    guests: list[Guest],
    last: dict[int, tuple[int | None, int | None]],
    stored: dict[int, GuestBackups],
    complete: bool,
    not_backed_up: Reading[list[NotBackedUp]] | None,
    stale: bool,
    time_ns: int,
) -> list[Sample]:
    """``pve_backup`` of each guest in ``guests``: the last success (the newer of the task
    list and logs' and the newest backup in ``stored``), the last failure, the newest
    backup's size, and, when every backup storage was read (``complete``), the number of
    backups and of those that failed verification; whether no backup job covers it (when
    that list was read)."""
    uncovered = {entry.vmid for entry in not_backed_up.value} if not_backed_up else set()
    samples = []
    for guest in guests:
        fields: dict[str, Any] = {}
        success, failure = last.get(guest.vmid, (None, None))
        backups = stored.get(guest.vmid)
        if backups is not None and backups.newest is not None:
            success = backups.newest if success is None else max(success, backups.newest)
        if success is not None:
            fields["last_success_timestamp_seconds"] = float(success)
        if failure is not None:
            fields["last_failure_timestamp_seconds"] = float(failure)
        if backups is not None and backups.newest_size is not None:
            fields["last_size_bytes"] = backups.newest_size
        if complete:
            fields["backups"] = backups.count if backups else 0
            fields["verify_failed"] = backups.verify_failed if backups else 0
        if not_backed_up is not None:
            fields["not_backed_up"] = int(guest.vmid in uncovered)
        if fields:
            fields["stale"] = int(stale)
            samples.append(Sample("pve_backup", {"id": guest.id}, fields, time_ns))
    return samples


class PveBackupCollector(_PveCollector):
    name = "pve_backup"
    tier = "slow"

    def __init__(self, settings: CollectorSettings) -> None:
        super().__init__(settings)
        # The medium tier's lists, when it ran within its interval (it runs on the same grid).
        self.lists_max_age = settings.medium_interval
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
        # By storage id, for the backup storages the last list named (at most
        # MAX_BACKUP_STORAGES): each keeps its last good summary for a failing run.
        self.content: dict[str, Command[StorageBackups]] = {}
        # By UPID, for the JOB_LOGS newest failed jobs: the parsed log once read.
        self.logs: dict[str, Command[JobLog]] = {}

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
        logs = self._job_logs(tasks.value if tasks is not None else [])
        stored, complete, stored_stale = self._stored({guest.vmid for guest in local})
        stale = stored_stale or any(
            reading is not None and reading.stale for reading in (tasks, not_backed_up)
        )
        last = last_backups(tasks.value, logs) if tasks is not None else {}
        samples = backup_samples(local, last, stored, complete, not_backed_up, stale, time_ns)
        updates = self.updates.run(timeout)
        if updates is not None:
            samples.append(Sample("pve_updates", {}, {"pending": updates.value}, time_ns))
        return samples

    def _job_logs(self, tasks: list[BackupTask]) -> dict[str, JobLog]:
        """The logs of the newest failed jobs over several guests, each read until one run
        gives it (a failing read is tried again next run; its job is left out until then)."""
        jobs = [task.upid for task in failed_jobs(tasks, JOB_LOGS)]
        self.logs = {upid: self.logs.get(upid) or log_command(self.node, upid) for upid in jobs}
        logs = {}
        for upid, command in self.logs.items():
            if command.last_good is None:
                command.run(self.settings.command_timeout)
            if command.last_good is not None:
                logs[upid] = command.last_good
        return logs

    def _stored(self, vmids: set[int]) -> tuple[dict[int, GuestBackups], bool, bool]:
        """The backups of ``vmids`` on the enabled backup storages, whether every one of
        them gave its list (else counts would be short), and whether any of it is reused
        (stale). A storage PVE cannot reach now (``active`` 0: an NFS share down) gives
        its last good list, stale."""
        listing = self._read_storage()
        if listing is None:
            self.content = {}
            return {}, False, False
        wanted = [
            each for each in listing.value if is_backup_storage(each) and each.enabled is not False
        ]
        if len(wanted) > MAX_BACKUP_STORAGES:
            self.overflow += len(wanted) - MAX_BACKUP_STORAGES
            self.once.warning(
                "backup storages",
                "%s: more than %d backup storages; the backups of the others are not read",
                self.name,
                MAX_BACKUP_STORAGES,
            )
            wanted = wanted[:MAX_BACKUP_STORAGES]
        self.content = {
            each.storage: self.content.get(each.storage) or content_command(self.node, each.storage)
            for each in wanted
        }
        summaries, complete, stale = [], True, listing.stale
        for each in wanted:
            command = self.content[each.storage]
            if each.active is not False:
                reading = command.run(self.settings.command_timeout)
            elif command.last_good is not None:
                reading = Reading(command.last_good, True)
            else:
                reading = None
            if reading is None:
                complete = False
                continue
            stale = stale or reading.stale
            if not reading.stale:
                self.overflow += reading.value.left_out
            summaries.append(reading.value)
        return merge_backups(summaries, vmids), complete, stale
