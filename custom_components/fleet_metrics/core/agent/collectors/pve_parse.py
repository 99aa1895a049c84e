"""Pure parsers of ``pvesh get ... --output-format json`` output (Proxmox VE 7/8).

``pvesh`` prints the API's JSON, so parsing is ``orjson.loads`` plus checking the shape:
each parser returns frozen results or raises ``PveParseError`` and nothing else, so no dict
travels past it and the collector can log one line and keep the last good result. A list
that is not a list, or a guest without a vmid, is an error; one odd value in an entry (a
negative byte count) is left out, as PVE leaves out what it does not know. Shapes follow the
PVE API viewer (pve-docs/api-viewer) and what pvesh prints on PVE 8.
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
GUEST_TYPES: Final = ("qemu", "lxc")
_STORAGE_ID: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,99}")
_WORD: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SUCCESS: Final = re.compile(r"OK|WARNINGS: \d+")


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
    (PVE names a task after its guest only when there is one)."""

    vmid: int | None
    ok: bool
    starttime: int
    endtime: int


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
    """PVE gives vmids as ints, and as strings in some LXC lists."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if type(value) is not int or not MIN_VMID <= value <= MAX_VMID:
        raise PveParseError(f"{where}: vmid missing or not a guest id")
    return value


def _count(value: Any) -> int | None:
    """A non-negative integer (bytes, seconds); floats PVE sometimes prints are rounded."""
    if type(value) is int:
        return value if value >= 0 else None
    if type(value) is float and math.isfinite(value) and value >= 0:
        return round(value)
    return None


def _ratio(value: Any) -> float | None:
    if type(value) in (int, float) and math.isfinite(value) and value >= 0:
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
        tasks.append(
            BackupTask(
                vmid=vmid,
                ok=bool(_SUCCESS.fullmatch(status)),
                starttime=start,
                endtime=end if end is not None else start,
            )
        )
    return tasks


def last_backups(tasks: list[BackupTask]) -> dict[int, tuple[int | None, int | None]]:
    """Per guest: (end of the last successful vzdump, end of the last failed one)."""
    out: dict[int, tuple[int | None, int | None]] = {}
    for task in tasks:
        if task.vmid is None:
            continue
        success, failure = out.get(task.vmid, (None, None))
        if task.ok and (success is None or task.endtime > success):
            success = task.endtime
        elif not task.ok and (failure is None or task.endtime > failure):
            failure = task.endtime
        out[task.vmid] = (success, failure)
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
