"""Pure parsers of ``pvesh get ... --output-format json`` output (Proxmox VE 7/8).

``pvesh`` prints the API's JSON, so parsing is ``orjson.loads`` plus checking the shape:
each parser returns frozen results or raises ``PveParseError`` and nothing else, so no dict
travels past it and the collector can log one line and keep the last good result. A list
that is not a list, or a guest without a vmid, is an error; one odd value in an entry (a
negative byte count, one past 64 bits) is left out, as PVE leaves out what it does not
know. Shapes follow the
PVE API viewer (pve-docs/api-viewer) and what pvesh prints on PVE 8. A vzdump task log
(``/nodes/<node>/tasks/<upid>/log``) is read for the lines PVE::VZDump writes per guest.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

MIN_VMID: Final = 1  # PVE allocates from 100, but the schema accepts from 1
MAX_VMID: Final = 999_999_999
MAX_TEXT: Final = 200
MAX_COUNT: Final = 2**63 - 1  # an int64, what InfluxDB and every JSON reader hold
GUEST_TYPES: Final = ("qemu", "lxc")
_STORAGE_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
_WORD: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SUCCESS: Final = re.compile(r"OK|WARNINGS: \d+")
# PVE::Tools::upid_decode's pattern, without "/" in any field: the UPID goes into an API path.
_UPID: Final = re.compile(
    r"UPID:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?:[0-9A-Fa-f]{8}:[0-9A-Fa-f]{8,9}:"
    r"[0-9A-Fa-f]{8}:[^:\s/]+:[^:\s/]*:[^:\s/]+:"
)
# What PVE::VZDump::exec_backup_task logs per guest of a job (debugmsg's "INFO:"/"ERROR:").
_GUEST_FINISHED: Final = re.compile(r"INFO: Finished Backup of VM ([0-9]{1,9}) \(")
_GUEST_FAILED: Final = re.compile(r"ERROR: Backup of VM ([0-9]{1,9}) failed - ")
VERIFY_STATES: Final = {"ok": True, "failed": False}


class PveParseError(ValueError):
    """pvesh output that does not have the shape the parser knows."""


@dataclass(frozen=True, slots=True)
class Guest:
    """One entry of ``/nodes/<node>/qemu`` or ``/lxc``; None where PVE gave nothing."""

    vmid: int
    type: str
    status: str
    name: str = ""
    template: bool = False
    tags: str = ""
    lock: str = ""
    cpu: float | None = None
    cpus: int | float | None = None  # an LXC cpulimit may be fractional (1.5)
    mem: int | None = None
    maxmem: int | None = None
    disk: int | None = None
    maxdisk: int | None = None
    netin: int | None = None
    netout: int | None = None
    uptime: int | None = None

    @property
    def id(self) -> str:
        """``qemu/100``: the id prometheus-pve-exporter and /cluster/resources use."""
        return f"{self.type}/{self.vmid}"


@dataclass(frozen=True, slots=True)
class Storage:
    """One entry of ``/nodes/<node>/storage``."""

    storage: str
    type: str
    active: bool | None = None
    enabled: bool | None = None
    used: int | None = None
    total: int | None = None
    avail: int | None = None
    content: str = ""


@dataclass(frozen=True, slots=True)
class BackupTask:
    """A finished vzdump task; ``vmid`` is None for a job that backed up several guests
    (PVE names a task after its guest only when there is one). ``upid`` is '' when the
    list gave none that could be put in the log's API path."""

    vmid: int | None
    ok: bool
    starttime: int
    endtime: int
    upid: str = ""


@dataclass(frozen=True, slots=True)
class JobLog:
    """The guests a vzdump job's task log says it backed up and failed to back up."""

    finished: frozenset[int]
    failed: frozenset[int]


@dataclass(frozen=True, slots=True)
class BackupFile:
    """One backup on a storage: a vzdump archive (dir, NFS, CIFS...) or a PBS snapshot.
    ``verified`` is PBS's last verification (True ok, False failed), None when never
    verified or not on PBS."""

    vmid: int
    ctime: int
    size: int | None = None
    verified: bool | None = None


@dataclass(frozen=True, slots=True)
class GuestBackups:
    """One guest's backups on one or more storages: how many, how many failed their last
    verification, and the newest one's creation time and size (None without a backup)."""

    count: int
    verify_failed: int = 0
    newest: int | None = None
    newest_size: int | None = None


@dataclass(frozen=True, slots=True)
class StorageBackups:
    """The backups of one storage by vmid; ``left_out`` backups of vmids past the cap."""

    guests: dict[int, GuestBackups]
    left_out: int = 0


@dataclass(frozen=True, slots=True)
class NotBackedUp:
    vmid: int
    type: str
    name: str = ""


def _loads_list(text: str | bytes, what: str) -> list[Any]:
    try:
        raw = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError, RecursionError) as err:
        raise PveParseError(f"{what}: not JSON: {err}") from None
    if not isinstance(raw, list):
        raise PveParseError(f"{what}: expected a JSON list, got {type(raw).__name__}")
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise PveParseError(f"{what}[{index}]: expected an object")
    return raw


def _vmid(value: Any, where: str) -> int:
    """PVE gives vmids as ints, and as strings (ASCII digits, at most nine) in some LXC
    lists; anything else is a PveParseError."""
    if isinstance(value, str) and 0 < len(value) <= 9 and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is not int or not MIN_VMID <= value <= MAX_VMID:
        raise PveParseError(f"{where}: vmid missing or not a guest id")
    return value


def _count(value: Any) -> int | None:
    """A non-negative integer up to MAX_COUNT (bytes, seconds); floats PVE sometimes prints
    are rounded."""
    if type(value) is float and math.isfinite(value) and 0 <= value <= MAX_COUNT:
        value = round(value)
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    return None


def _ratio(value: Any) -> float | None:
    """A non-negative finite number (an int orjson read is within 64 bits) as a float."""
    if type(value) in (int, float) and 0 <= value <= MAX_COUNT:
        return float(value)
    return None


def _cpus(value: Any) -> int | float | None:
    number = _ratio(value)
    if number is None:
        return None
    return int(number) if number.is_integer() else number


def _flag(value: Any) -> bool | None:
    if type(value) is int or type(value) is bool:
        return bool(value)
    return None


def _text(value: Any) -> str:
    """A display string: whitespace collapsed, capped, '' for anything else."""
    if not isinstance(value, str):
        return ""
    return " ".join(value.split())[:MAX_TEXT]


def parse_guests(text: str | bytes, guest_type: str) -> list[Guest]:
    """``pvesh get /nodes/<node>/{qemu,lxc} --output-format json``; ``guest_type`` is the
    list asked for (qemu entries carry no ``type``)."""
    if guest_type not in GUEST_TYPES:
        raise ValueError(f"unknown guest type {guest_type!r}")
    guests = []
    for index, item in enumerate(_loads_list(text, guest_type)):
        where = f"{guest_type}[{index}]"
        status = item.get("status")
        if not isinstance(status, str) or not _WORD.fullmatch(status):
            raise PveParseError(f"{where}: status missing or not a word")
        lock = item.get("lock")
        guests.append(
            Guest(
                vmid=_vmid(item.get("vmid"), where),
                type=guest_type,
                status=status,
                name=_text(item.get("name")),
                template=bool(_flag(item.get("template"))),
                tags=_text(item.get("tags")),
                lock=lock if isinstance(lock, str) and _WORD.fullmatch(lock) else "",
                cpu=_ratio(item.get("cpu")),
                cpus=_cpus(item.get("cpus")),
                mem=_count(item.get("mem")),
                maxmem=_count(item.get("maxmem")),
                disk=_count(item.get("disk")),
                maxdisk=_count(item.get("maxdisk")),
                netin=_count(item.get("netin")),
                netout=_count(item.get("netout")),
                uptime=_count(item.get("uptime")),
            )
        )
    return guests


def parse_storage(text: str | bytes) -> list[Storage]:
    """``pvesh get /nodes/<node>/storage --output-format json``."""
    out = []
    for index, item in enumerate(_loads_list(text, "storage")):
        storage, kind = item.get("storage"), item.get("type")
        if not isinstance(storage, str) or not _STORAGE_ID.fullmatch(storage):
            raise PveParseError(f"storage[{index}]: storage id missing or not an id")
        if not isinstance(kind, str) or not _WORD.fullmatch(kind):
            raise PveParseError(f"storage[{index}]: type missing or not a word")
        out.append(
            Storage(
                storage=storage,
                type=kind,
                active=_flag(item.get("active")),
                enabled=_flag(item.get("enabled")),
                used=_count(item.get("used")),
                total=_count(item.get("total")),
                avail=_count(item.get("avail")),
                content=_text(item.get("content")),
            )
        )
    return out


def parse_tasks(text: str | bytes) -> list[BackupTask]:
    """``pvesh get /nodes/<node>/tasks --typefilter vzdump --output-format json``: the
    finished vzdump tasks (running ones have no status yet and are left out). "OK" and
    "WARNINGS: n" are successes; any other status is the error text of a failure."""
    tasks = []
    for index, item in enumerate(_loads_list(text, "tasks")):
        if item.get("type") != "vzdump":
            continue
        start = _count(item.get("starttime"))
        if start is None:
            raise PveParseError(f"tasks[{index}]: starttime missing")
        status = item.get("status")
        if not isinstance(status, str) or not status:
            continue  # still running
        task_id = item.get("id")
        vmid = None
        if isinstance(task_id, str | int) and str(task_id).strip():
            try:
                vmid = _vmid(task_id, f"tasks[{index}]")
            except PveParseError:
                vmid = None  # not a guest id: a job-wide task
        end = _count(item.get("endtime"))
        upid = item.get("upid")
        tasks.append(
            BackupTask(
                vmid=vmid,
                ok=bool(_SUCCESS.fullmatch(status)),
                starttime=start,
                endtime=end if end is not None else start,
                upid=upid if isinstance(upid, str) and _UPID.fullmatch(upid) else "",
            )
        )
    return tasks


def failed_jobs(tasks: list[BackupTask], count: int) -> list[BackupTask]:
    """The newest ``count`` failed vzdump tasks over several guests whose log can be read:
    only their logs say which guest failed."""
    jobs = [task for task in tasks if task.vmid is None and not task.ok and task.upid]
    return sorted(jobs, key=lambda task: (task.starttime, task.upid), reverse=True)[:count]


def last_backups(
    tasks: list[BackupTask], logs: dict[str, JobLog] | None = None
) -> dict[int, tuple[int | None, int | None]]:
    """Per guest: (end of the last successful vzdump, end of the last failed one), from
    the tasks named after one guest and, for a job over several, from its log in ``logs``
    (by UPID): each guest it names gets the job's end (the log's own times are local
    times without a zone)."""
    out: dict[int, tuple[int | None, int | None]] = {}

    def note(vmid: int, ok: bool, end: int) -> None:
        success, failure = out.get(vmid, (None, None))
        if ok and (success is None or end > success):
            success = end
        elif not ok and (failure is None or end > failure):
            failure = end
        out[vmid] = (success, failure)

    for task in tasks:
        if task.vmid is not None:
            note(task.vmid, task.ok, task.endtime)
            continue
        log = logs.get(task.upid) if logs and task.upid else None
        if log is not None:
            for vmid in log.finished - log.failed:
                note(vmid, True, task.endtime)
            for vmid in log.failed:
                note(vmid, False, task.endtime)
    return out


def parse_task_log(text: str | bytes) -> JobLog:
    """``pvesh get /nodes/<node>/tasks/<upid>/log --limit N --output-format json``: lines
    ``{"n": 1, "t": "INFO: ..."}``. A guest is finished on "INFO: Finished Backup of VM
    <vmid> (<time>)" and failed on "ERROR: Backup of VM <vmid> failed - <why>" (a guest
    named by both counts as failed). Lines that are not text are skipped."""
    finished: set[int] = set()
    failed: set[int] = set()
    for item in _loads_list(text, "task log"):
        line = item.get("t")
        if not isinstance(line, str):
            continue
        if line.startswith("INFO: Finished"):
            match = _GUEST_FINISHED.match(line)
            target = finished
        elif line.startswith("ERROR: Backup of VM"):
            match = _GUEST_FAILED.match(line)
            target = failed
        else:
            continue
        if match is not None and MIN_VMID <= int(match[1]) <= MAX_VMID:
            target.add(int(match[1]))
    return JobLog(frozenset(finished), frozenset(failed))


def parse_backup_content(text: str | bytes) -> list[BackupFile]:
    """``pvesh get /nodes/<node>/storage/<storage>/content --content backup --output-format
    json``. An entry without a guest id or a time (a renamed archive PVE cannot read, a
    PBS host backup) is no guest's backup and is skipped, and so is a PBS snapshot without
    a manifest (still being written or broken): PBS gives it no size, which PVE lists as 1
    byte."""
    out = []
    for item in _loads_list(text, "content"):
        if item.get("content", "backup") != "backup":
            continue
        vmid = item.get("vmid")
        if type(vmid) is not int or not MIN_VMID <= vmid <= MAX_VMID:  # ints, mostly
            try:
                vmid = _vmid(vmid, "content")
            except PveParseError:
                continue
        ctime = _count(item.get("ctime"))
        if ctime is None:
            continue
        size = _count(item.get("size"))
        kind = item.get("format")
        if isinstance(kind, str) and kind.startswith("pbs-") and (size is None or size <= 1):
            continue
        verification = item.get("verification")
        state = verification.get("state") if isinstance(verification, dict) else None
        out.append(
            BackupFile(
                vmid=vmid,
                ctime=ctime,
                size=size,
                verified=VERIFY_STATES.get(state) if isinstance(state, str) else None,
            )
        )
    return out


def summarize_backups(files: list[BackupFile], cap: int) -> StorageBackups:
    """Per vmid: the count, those whose verification failed, and the newest. A backup
    that failed verification still counts as the run that made it having succeeded (the
    run is what "last success" means); ``verify_failed`` says it may not restore. At most
    ``cap`` vmids; the backups of others are counted in ``left_out``."""
    guests: dict[int, GuestBackups] = {}
    left_out = 0
    for file in files:
        seen = guests.get(file.vmid)
        if seen is None:
            if len(guests) >= cap:
                left_out += 1
                continue
            seen = GuestBackups(0)
        newer = seen.newest is None or file.ctime > seen.newest
        guests[file.vmid] = GuestBackups(
            seen.count + 1,
            seen.verify_failed + (file.verified is False),
            file.ctime if newer else seen.newest,
            file.size if newer else seen.newest_size,
        )
    return StorageBackups(guests, left_out)


def merge_backups(storages: list[StorageBackups], vmids: set[int]) -> dict[int, GuestBackups]:
    """The backups of each guest in ``vmids`` over all storages: counts added, the newest
    backup of any storage."""
    out: dict[int, GuestBackups] = {}
    for storage in storages:
        for vmid in vmids & storage.guests.keys():
            here, seen = storage.guests[vmid], out.get(vmid)
            if seen is None:
                out[vmid] = here
                continue
            newer = here.newest is not None and (seen.newest is None or here.newest > seen.newest)
            best = here if newer else seen
            out[vmid] = GuestBackups(
                seen.count + here.count,
                seen.verify_failed + here.verify_failed,
                best.newest,
                best.newest_size,
            )
    return out


def parse_not_backed_up(text: str | bytes) -> list[NotBackedUp]:
    """``pvesh get /cluster/backup-info/not-backed-up --output-format json``: guests of the
    whole cluster that no backup job selects."""
    out = []
    for index, item in enumerate(_loads_list(text, "not-backed-up")):
        kind = item.get("type")
        if kind not in GUEST_TYPES:
            raise PveParseError(f"not-backed-up[{index}]: type is not qemu or lxc")
        out.append(
            NotBackedUp(
                _vmid(item.get("vmid"), f"not-backed-up[{index}]"), kind, _text(item.get("name"))
            )
        )
    return out


def parse_apt_updates(text: str | bytes) -> int:
    """``pvesh get /nodes/<node>/apt/update --output-format json``: how many packages have
    an update (one object per package)."""
    return len(_loads_list(text, "apt/update"))
