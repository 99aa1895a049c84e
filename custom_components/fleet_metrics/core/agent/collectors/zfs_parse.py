"""Pure parsers of ZFS command output: ``zpool list -Hp``, ``zpool status`` (OpenZFS 2.1/2.2
text, 2.3 JSON) and ``/proc/spl/kstat/zfs/arcstats``.

Hand-written because no maintained library parses these: ``zpool`` has no stable machine
format before 2.3's ``-j``, and its text is what every older host prints. Each parser takes
the whole output and returns frozen results or raises ``ZfsParseError``, never anything
else, so the collector can log one line and keep the last good result. Every number goes
through ``_int`` or ``parse_nicenum``: ASCII digits only (a regex's digit class and
``int()`` take other scripts' digits too), at most ``MAX_DIGITS`` of them (``int()``
refuses over 4300, ``float()`` overflows), and at most ``MAX_COUNT`` (JSON and line
protocol carry 64 bits). Shapes follow cmd/zpool/zpool_main.c
(``print_scan_scrub_resilver_status``, ``status_callback_json``) and
lib/libzfs/libzfs_pool.c (``zpool_get_prop_literal``) of OpenZFS.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Final

import orjson

POOL_STATES: Final = ("ONLINE", "DEGRADED", "FAULTED", "OFFLINE", "REMOVED", "UNAVAIL", "SUSPENDED")
MAX_VDEVS: Final = 512  # per pool; a 60-disk JBOD with spares stays far below
MAX_DIGITS: Final = 20  # 2**64 has 20 digits
MAX_COUNT: Final = 2**63 - 1  # an int64, what InfluxDB and every JSON reader hold
_POOL_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,254}")
_STATE: Final = re.compile(r"[A-Z][A-Z_]{1,31}")
_NICENUM: Final = re.compile(r"([0-9]{1,20}(?:\.[0-9]{1,20})?)([KMGTPEZ]?)B?")
_UNITS: Final = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
_UNITS_EXTRA: Final = {"E": 1 << 60, "Z": 1 << 70}
# "Sun Mar 10 00:25:24 2024": ctime(3), what zpool prints under LC_ALL=C.
_CTIME: Final = re.compile(
    r"[A-Z][a-z]{2} ([A-Z][a-z]{2}) +([0-9]{1,2}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([0-9]{4})"
)
_MONTHS: Final = {
    name: index
    for index, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_ROW: Final = re.compile(r"(\S+)\s+([A-Z][A-Z_]+)(?:\s+(\S+)\s+(\S+)\s+(\S+))?(?:\s+.*)?")
_GROUPS: Final = frozenset({"logs", "cache", "spares", "special", "dedup"})
_DONE: Final = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,6})?)% done")
_POOL_LINE: Final = re.compile(r" {0,8}pool: ")
_KEY_LINE: Final = re.compile(r" {0,8}([a-z]+):(?:\s(.*))?$")
_JSON_GROUPS: Final = ("vdevs", "dedup", "special", "logs", "l2cache", "spares")


class ZfsParseError(ValueError):
    """Output that does not have the shape the parser knows; the message says where."""


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """One row of ``zpool list -Hp``; None where zpool printed ``-``."""

    name: str
    size_bytes: int | None
    allocated_bytes: int | None
    free_bytes: int | None
    fragmentation_ratio: float | None
    capacity_ratio: float | None
    dedup_ratio: float | None
    health: str


@dataclass(frozen=True, slots=True)
class VdevErrors:
    """One row of the config tree; the pool's root row is named after the pool. ``leaf``:
    a disk or file, not a mirror, raidz, replacing or root row above others."""

    name: str
    read: int
    write: int
    checksum: int
    leaf: bool = True


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """What ``zpool status`` says about one pool.

    ``scan`` is "none", "scrub" or "resilver" and ``scan_state`` "none", "scanning",
    "finished" or "canceled" (None for both when the scan line is in a form not known here).
    """

    name: str
    state: str
    vdevs: tuple[VdevErrors, ...]
    scan: str | None = None
    scan_state: str | None = None
    scan_progress_ratio: float | None = None
    scrub_end: float | None = None
    scan_repaired_bytes: int | None = None
    scan_errors: int | None = None
    vdevs_left_out: int = 0

    @property
    def errors(self) -> int:
        """Read, write and checksum errors of the leaf vdevs (disks, log and cache devices)
        only: zpool reports one failed I/O at every level it went through (the disk, its
        mirror or raidz, the root row), so summing every row would count it several times."""
        return sum(vdev.read + vdev.write + vdev.checksum for vdev in self.vdevs if vdev.leaf)


@dataclass(frozen=True, slots=True)
class ArcStats:
    size_bytes: int
    target_bytes: int
    min_bytes: int | None
    max_bytes: int | None


def _int(text: str, low: int = 0) -> int:
    """An integer of ASCII digits (a leading ``-`` when ``low`` is negative) from ``low`` to
    MAX_COUNT; anything else is a ZfsParseError."""
    digits = text[1:] if low < 0 and text.startswith("-") else text
    if not (0 < len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit()):
        raise ZfsParseError(f"not a number: {text[:40]!r}")
    value = int(text)
    if not low <= value <= MAX_COUNT:
        raise ZfsParseError(f"out of range: {text[:40]!r}")
    return value


def parse_nicenum(text: str) -> int:
    """Bytes or a count as zpool prints them: ``0``, ``1.2K``, ``3.64T``, ``0B`` (base 1024),
    at most MAX_COUNT."""
    match = _NICENUM.fullmatch(text)
    if match is None:
        raise ZfsParseError(f"not a number: {text[:40]!r}")
    number, unit = match.groups()
    scale = _UNITS.get(unit) or _UNITS_EXTRA[unit]
    value = int(number) * scale if "." not in number else round(float(number) * scale)
    if value > MAX_COUNT:
        raise ZfsParseError(f"out of range: {text[:40]!r}")
    return value


def _pool_name(text: str) -> str:
    if not _POOL_NAME.fullmatch(text):
        raise ZfsParseError(f"not a pool name: {text[:40]!r}")
    return text


def _state(text: str) -> str:
    if not _STATE.fullmatch(text):
        raise ZfsParseError(f"not a pool state: {text[:40]!r}")
    return text


def _optional(text: str, convert: Any) -> Any:
    return None if text == "-" else convert(text)


def _percent(text: str) -> float:
    return parse_nicenum(text.removesuffix("%")) / 100


def _dedup(text: str) -> float:
    number = text.removesuffix("x")
    if not (number.isascii() and len(number) <= 2 * MAX_DIGITS):
        raise ZfsParseError(f"not a dedup ratio: {text[:40]!r}")
    try:
        value = float(number)
    except ValueError:
        raise ZfsParseError(f"not a dedup ratio: {text[:40]!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ZfsParseError(f"not a dedup ratio: {text[:40]!r}")
    return value


def parse_zpool_list(text: str) -> list[PoolUsage]:
    """``zpool list -Hp``: name size alloc free ckpoint expandsz frag cap dedup health altroot
    (ckpoint is missing before ZoL 0.8, so 10 columns are read too). No pools: empty list."""
    pools = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        columns = line.split("\t") if "\t" in line else line.split()
        if len(columns) == 10:
            columns.insert(4, "-")
        if len(columns) != 11:
            raise ZfsParseError(f"line {number}: expected 11 columns, got {len(columns)}")
        name, size, alloc, free, _, _, frag, cap, dedup, health, _ = columns
        pools.append(
            PoolUsage(
                name=_pool_name(name),
                size_bytes=_optional(size, parse_nicenum),
                allocated_bytes=_optional(alloc, parse_nicenum),
                free_bytes=_optional(free, parse_nicenum),
                fragmentation_ratio=_optional(frag, _percent),
                capacity_ratio=_optional(cap, _percent),
                dedup_ratio=_optional(dedup, _dedup),
                health=_state(health),
            )
        )
    return pools


def parse_ctime(text: str, tz: tzinfo | None = None) -> float:
    """Unix seconds of ``Sun Mar 10 00:25:24 2024`` in ``tz`` (None: this host's local time,
    the zone zpool printed it in)."""
    match = _CTIME.search(text)
    if match is None:
        raise ZfsParseError(f"not a date: {text[:60]!r}")
    month, day, hour, minute, second, year = match.groups()
    try:
        parts = (int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second))
        if tz is not None:
            return datetime(*parts, tzinfo=tz).timestamp()
        datetime(*parts)  # validates the day of the month
        return time.mktime((*parts, 0, 0, -1))
    except (KeyError, ValueError, OverflowError):
        raise ZfsParseError(f"not a date: {text[:60]!r}") from None


def _scan_text(text: str, tz: tzinfo | None) -> dict[str, Any]:
    """The ``scan:`` value (continuation lines joined by newlines) as PoolStatus fields."""
    first = text.split("\n", 1)[0].strip()
    first = re.sub(r"^(thorough|error) ", "", first)
    first = re.sub(r"^(resilvered|resilver) \([^)]*\)", r"\1", first)  # sequential rebuild
    done = _DONE.search(text)
    progress = {"scan_progress_ratio": float(done.group(1)) / 100} if done else {}
    if first.startswith("none requested"):
        return {"scan": "none", "scan_state": "none"}
    match = re.match(
        r"(scrub repaired|resilvered) (\S+) in .*? with ([0-9]+) errors on (.*)", first
    )
    if match:
        kind, repaired, errors, date = match.groups()
        scrub = kind == "scrub repaired"
        fields: dict[str, Any] = {
            "scan": "scrub" if scrub else "resilver",
            "scan_state": "finished",
            "scan_repaired_bytes": parse_nicenum(repaired),
            "scan_errors": _int(errors),
        }
        if scrub:
            fields["scrub_end"] = parse_ctime(date, tz)
        return fields
    match = re.match(r"(scrub|resilver) (canceled on|in progress since|paused since) ", first)
    if match:
        kind, what = match.groups()
        if what == "canceled on":
            return {"scan": kind, "scan_state": "canceled"}
        return {"scan": kind, "scan_state": "scanning", **progress}
    return {}


def _counts(row: re.Match[str]) -> tuple[int, int, int] | None:
    read, write, cksum = row.group(3), row.group(4), row.group(5)
    if read is None or write is None or cksum is None:
        return None
    try:
        return parse_nicenum(read), parse_nicenum(write), parse_nicenum(cksum)
    except ZfsParseError:
        return None  # a spare's "in use by pool 'x'" or similar, not counts


def _config_rows(lines: list[str]) -> tuple[list[VdevErrors], int]:
    """The rows with counts; a row is a leaf when the next row of the tree (a group name
    such as ``logs`` included) is not indented deeper."""
    tree: list[tuple[int, re.Match[str] | None]] = []  # (indent, row; None for a group)
    header_seen = False
    for line in lines:
        text = line.strip()
        if not text:
            if header_seen and tree:
                break
            continue
        if not header_seen:
            if text.split()[:2] == ["NAME", "STATE"]:
                header_seen = True
            continue
        indent = len(line) - len(line.lstrip())
        if text in _GROUPS:
            tree.append((indent, None))
        elif (row := _ROW.fullmatch(text)) is not None:
            tree.append((indent, row))
    if not header_seen:
        raise ZfsParseError("config: no NAME STATE READ WRITE CKSUM header")
    rows: list[VdevErrors] = []
    left_out = 0
    for index, (indent, row) in enumerate(tree):
        counts = _counts(row) if row is not None else None
        if row is None or counts is None:
            continue  # a group name; spares (AVAIL) have no counts
        if len(rows) >= MAX_VDEVS:
            left_out += 1
            continue
        leaf = index + 1 == len(tree) or tree[index + 1][0] <= indent
        rows.append(VdevErrors(row.group(1), *counts, leaf=leaf))
    return rows, left_out


def _sections(block: list[str]) -> Iterator[tuple[str, list[str]]]:
    """``key: value`` sections of one pool's block, continuation lines included."""
    key = ""
    lines: list[str] = []
    for line in block:
        match = _KEY_LINE.match(line)
        if match:
            if key:
                yield key, lines
            key, lines = match.group(1), [match.group(2) or ""]
        elif key:
            lines.append(line)
    if key:
        yield key, lines


def parse_zpool_status_text(text: str, tz: tzinfo | None = None) -> list[PoolStatus]:
    """``zpool status [-p]`` of OpenZFS 0.8 to 2.2 (2.3 prints the same without ``-j``).

    ``tz`` is the zone of the printed dates (None: local time). "no pools available" is an
    empty list; anything without ``pool:``/``state:``/``config:`` raises ZfsParseError.
    """
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if _POOL_LINE.match(line):
            blocks.append([line])
        elif blocks:
            blocks[-1].append(line)
        elif line.strip() and line.strip() not in ("no pools available", "all pools are healthy"):
            raise ZfsParseError(f"expected 'pool:', got {line.strip()[:60]!r}")
    pools = []
    for block in blocks:
        sections = dict(_sections(block))
        name = _pool_name(sections["pool"][0].strip())
        if "state" not in sections or "config" not in sections:
            raise ZfsParseError(f"pool {name}: no state: or config: line")
        vdevs, left_out = _config_rows(sections["config"])
        scan = _scan_text("\n".join(sections["scan"]), tz) if "scan" in sections else {}
        pools.append(
            PoolStatus(
                name=name,
                state=_state(sections["state"][0].strip()),
                vdevs=tuple(vdevs),
                vdevs_left_out=left_out,
                **scan,
            )
        )
    return pools


def _json_int(value: Any, where: str) -> int:
    """A count from ``-j``: an int with ``--json-int``, else a string (exact or nicenum)."""
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    if isinstance(value, str):
        return parse_nicenum(value)
    raise ZfsParseError(f"{where}: not a count: {str(value)[:40]!r}")


def _json_time(value: Any) -> float | None:
    """A timestamp from ``-j --json-int`` (0: never); formatted dates are not read."""
    if isinstance(value, str):
        try:
            value = _int(value)
        except ZfsParseError:
            return None
    if type(value) is int and 0 < value <= MAX_COUNT:
        return float(value)
    return None


def _json_vdevs(tree: Any, where: str, out: list[VdevErrors], left_out: list[int]) -> None:
    if not isinstance(tree, Mapping):
        raise ZfsParseError(f"{where}: vdevs is not an object")
    for key, vdev in tree.items():
        if not isinstance(vdev, Mapping):
            raise ZfsParseError(f"{where}: vdev {str(key)[:40]!r} is not an object")
        children = vdev.get("vdevs")
        if "read_errors" in vdev:  # spares have none
            if len(out) >= MAX_VDEVS:
                left_out[0] += 1
            else:
                name = vdev.get("name", key)
                if not isinstance(name, str) or not name:
                    raise ZfsParseError(f"{where}: vdev without a name")
                out.append(
                    VdevErrors(
                        name,
                        _json_int(vdev.get("read_errors"), name),
                        _json_int(vdev.get("write_errors"), name),
                        _json_int(vdev.get("checksum_errors"), name),
                        leaf=not children,
                    )
                )
        if children is not None:
            _json_vdevs(children, where, out, left_out)


def _json_scan(scan: Any, where: str) -> dict[str, Any]:
    if not isinstance(scan, Mapping):
        raise ZfsParseError(f"{where}: scan_stats is not an object")
    function = str(scan.get("function", "")).lower()
    state = str(scan.get("state", "")).lower()
    if function == "none" or state == "none":
        return {"scan": "none", "scan_state": "none"}
    if function not in ("scrub", "resilver") or state not in ("scanning", "finished", "canceled"):
        return {}  # an error scrub, or a state newer than this parser
    fields: dict[str, Any] = {"scan": function, "scan_state": state}
    if state == "finished":
        fields["scan_repaired_bytes"] = _json_int(scan.get("processed", 0), where)
        fields["scan_errors"] = _json_int(scan.get("errors", 0), where)
        end = _json_time(scan.get("end_time"))
        if function == "scrub" and end is not None:
            fields["scrub_end"] = end
    elif state == "scanning":
        total = _json_int(scan.get("to_examine", 0), where)
        if "issued" in scan:  # 2.2+: issued / (to_examine - skipped), as the text prints it
            total -= _json_int(scan.get("skipped", 0), where)
            done = _json_int(scan.get("issued", 0), where)
        else:
            done = _json_int(scan.get("examined", 0), where)
        if total > 0:
            fields["scan_progress_ratio"] = min(1.0, done / total)
    return fields


def parse_zpool_status_json(text: str | bytes) -> list[PoolStatus]:
    """``zpool status -j --json-int`` (OpenZFS 2.3+); string numbers (without
    ``--json-int``) are read as well. Nested and ``--json-flat-vdevs`` trees alike."""
    try:
        raw = orjson.loads(text)
    except (orjson.JSONDecodeError, TypeError, RecursionError) as err:
        raise ZfsParseError(f"not JSON: {err}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("output_version"), dict):
        raise ZfsParseError("not zpool JSON: no output_version object")
    pools_raw = raw.get("pools", {})
    if not isinstance(pools_raw, dict):
        raise ZfsParseError("pools is not an object")
    pools = []
    for key, pool in pools_raw.items():
        if not isinstance(pool, dict):
            raise ZfsParseError(f"pool {str(key)[:40]!r} is not an object")
        name = _pool_name(str(pool.get("name", key)))
        state = pool.get("state")
        if not isinstance(state, str):
            raise ZfsParseError(f"pool {name}: no state")
        vdevs: list[VdevErrors] = []
        left_out = [0]
        for group in _JSON_GROUPS:
            if group in pool:
                _json_vdevs(pool[group], f"pool {name}", vdevs, left_out)
        # A pool never scanned has no scan_stats at all.
        scan: dict[str, Any] = {"scan": "none", "scan_state": "none"}
        if "scan_stats" in pool:
            scan = _json_scan(pool["scan_stats"], f"pool {name}")
        pools.append(
            PoolStatus(
                name=name,
                state=_state(state),
                vdevs=tuple(vdevs),
                vdevs_left_out=left_out[0],
                **scan,
            )
        )
    return pools


def parse_arcstats(text: str) -> ArcStats:
    """``/proc/spl/kstat/zfs/arcstats``: a kstat header line, ``name type data``, then one
    ``name type value`` line per statistic; ``size`` and ``c`` are required."""
    values: dict[str, int] = {}
    header_seen = False
    for line in text.splitlines():
        parts = line.split()
        if parts == ["name", "type", "data"]:
            header_seen = True
            continue
        if header_seen and len(parts) == 3:
            try:
                values[parts[0]] = _int(parts[2], low=-MAX_COUNT)
            except ZfsParseError:
                continue  # a statistic of another type (none today) is not one we read
    if not header_seen:
        raise ZfsParseError("arcstats: no 'name type data' header")
    if "size" not in values or "c" not in values:
        raise ZfsParseError("arcstats: no size or c")
    return ArcStats(values["size"], values["c"], values.get("c_min"), values.get("c_max"))
