"""Agent readings under the names people already use: node_exporter and telegraf.

The agent sends neutral samples (``cpu``, ``memory``, ``network``... see the agent's
collectors). Prometheus users expect node_exporter's names and shapes
(``node_cpu_seconds_total{host,mode}``, ``node_memory_MemTotal_bytes``) and line protocol
users telegraf's (``cpu,cpu=cpu-total,host=h usage_idle=..,time_idle=..``), so that existing
dashboards work. The two differ in shape, not only in name (a label per CPU mode against a
field per mode; telegraf's percentages are computed from two readings). The tables here serve
both: ``exposition`` maps the hub's stored readings to node_exporter's families when
``/metrics`` is scraped, and ``HostNaming`` turns each reading into telegraf's line protocol
samples (``Sample.sink`` = line protocol) as it arrives.

ZFS and Proxmox VE readings (issue 10) have no telegraf shape worth following: on
``/metrics`` they take node_exporter's and prometheus-pve-exporter's names (``TABLES``), in
line protocol they keep their own measurement and fields with the ``host`` tag.

A measurement this module does not know (a collector added later) keeps its shape: for
Prometheus ``fleet_agent_<measurement>_<field>`` under the sink's lint rules, for line
protocol its own name; both with the ``host`` tag. ``HostNaming`` keeps what a host's
previous readings are needed for (CPU times, boot time) and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from ...agent.protocol import SampleData
from ...exporters.line_protocol import LineEncoder, format_field_value, series_head
from ...sample import SINK_LINE_PROTOCOL, FieldValue, Sample
from .device_lines import DeviceLines

# HELP of every name declared here; declared names are exposed verbatim.
HELP: Final[Mapping[str, str]] = {
    "node_cpu_seconds": "Seconds the CPUs spent in each mode.",
    "node_cpu_guest_seconds": "Seconds the CPUs spent running guests, by mode.",
    "node_load1": "1m load average.",
    "node_load5": "5m load average.",
    "node_load15": "15m load average.",
    "node_memory_MemTotal_bytes": "Memory information field MemTotal_bytes.",
    "node_memory_MemAvailable_bytes": "Memory information field MemAvailable_bytes.",
    "node_memory_MemFree_bytes": "Memory information field MemFree_bytes.",
    "node_memory_Buffers_bytes": "Memory information field Buffers_bytes.",
    "node_memory_Cached_bytes": "Memory information field Cached_bytes.",
    "node_memory_SwapTotal_bytes": "Memory information field SwapTotal_bytes.",
    "node_memory_SwapFree_bytes": "Memory information field SwapFree_bytes.",
    "node_network_receive_bytes": "Network device statistic receive_bytes.",
    "node_network_transmit_bytes": "Network device statistic transmit_bytes.",
    "node_network_receive_packets": "Network device statistic receive_packets.",
    "node_network_transmit_packets": "Network device statistic transmit_packets.",
    "node_network_receive_errs": "Network device statistic receive_errs.",
    "node_network_transmit_errs": "Network device statistic transmit_errs.",
    "node_network_receive_drop": "Network device statistic receive_drop.",
    "node_network_transmit_drop": "Network device statistic transmit_drop.",
    "node_disk_read_bytes": "The total number of bytes read successfully.",
    "node_disk_written_bytes": "The total number of bytes written successfully.",
    "node_disk_reads_completed": "The total number of reads completed successfully.",
    "node_disk_writes_completed": "The total number of writes completed successfully.",
    "node_disk_read_time_seconds": "The total number of seconds spent by all reads.",
    "node_disk_write_time_seconds": "This is the total number of seconds spent by all writes.",
    "node_disk_io_time_seconds": "Total seconds spent doing I/Os.",
    "node_filesystem_size_bytes": "Filesystem size in bytes.",
    "node_filesystem_free_bytes": "Filesystem free space in bytes.",
    "node_filesystem_avail_bytes": "Filesystem space available to non-root users in bytes.",
    "node_filesystem_files": "Filesystem total file nodes.",
    "node_filesystem_files_free": "Filesystem total free file nodes.",
    "node_hwmon_temp_celsius": "Hardware monitor for temperature (input).",
    "node_hwmon_temp_max_celsius": "Hardware monitor for temperature (max).",
    "node_hwmon_temp_crit_celsius": "Hardware monitor for temperature (crit).",
    "node_hwmon_fan_rpm": "Hardware monitor for fan speed (input).",
    "node_boot_time_seconds": "Node boot time, in unixtime.",
    "node_scrape_collector_success": "Whether a collector succeeded.",
    "node_scrape_collector_duration_seconds": "Duration of a collector scrape.",
    "fleet_agent_up": "1 while the host's agent is connected (or within the grace period).",
    "fleet_agent_last_seen_timestamp_seconds": "When the host's last batch arrived, unixtime.",
    "fleet_agent_info": "Constant 1, labelled with the host's agent version, kernel and OS.",
    "fleet_agent_batches_received": "Batches the host's agent sent and the server applied.",
    "fleet_agent_batches_replayed": "Applied batches collected before their connection began.",
    "fleet_agent_batches_duplicate": "Batches seen before (acked, not applied again).",
    "fleet_agent_seq_gaps": "Batches the server never got (gaps in the sequence numbers).",
    "fleet_agent_samples_dropped": "Samples dropped by a cap (per batch or series per host).",
    # ZFS and Proxmox VE (issue 10): node_exporter's and prometheus-pve-exporter's names
    # where they have one.
    "zfs_pool_size_bytes": "Size of the ZFS pool.",
    "zfs_pool_allocated_bytes": "Space allocated in the ZFS pool.",
    "zfs_pool_free_bytes": "Free space in the ZFS pool.",
    "zfs_pool_fragmentation_ratio": "Fragmentation of the ZFS pool's free space (0..1).",
    "zfs_pool_capacity_ratio": "Share of the ZFS pool in use (0..1).",
    "zfs_pool_dedup_ratio": "Deduplication ratio of the ZFS pool.",
    "zfs_pool_errors": "Read, write and checksum errors over all vdevs of the ZFS pool.",
    "zfs_pool_scan_progress_ratio": "Progress of the running scrub or resilver (0..1).",
    "zfs_pool_scrub_last_end_timestamp_seconds": "When the last scrub finished, unixtime.",
    "zfs_pool_scrub_repaired_bytes": "Bytes the last scrub repaired.",
    "zfs_pool_scrub_errors": "Errors the last scrub found.",
    "node_zfs_zpool_state": "kstat.zfs.misc.state",
    "zfs_vdev_errors": "Errors of the vdev by kind (read, write, checksum) since the last clear.",
    "node_zfs_arc_size_bytes": "Size of the ZFS ARC.",
    "node_zfs_arc_target_bytes": "Target size of the ZFS ARC (c).",
    "node_zfs_arc_min_bytes": "Minimum size of the ZFS ARC (c_min).",
    "node_zfs_arc_max_bytes": "Maximum size of the ZFS ARC (c_max).",
    "pve_up": "Node/VM/CT-Status is online/running",
    "pve_cpu_usage_ratio": "CPU utilization",
    "pve_cpu_usage_limit": "Number of available CPUs",
    "pve_memory_usage_bytes": "Used memory in bytes",
    "pve_memory_size_bytes": "Number of available memory in bytes",
    "pve_disk_usage_bytes": "Used disk space in bytes",
    "pve_disk_size_bytes": "Size of storage device",
    "pve_network_receive_bytes": "Number of bytes received",
    "pve_network_transmit_bytes": "Number of bytes transmitted",
    "pve_uptime_seconds": "Number of seconds since the last boot",
    "pve_guest_info": "VM/CT info",
    "pve_guests": "Guests on the node by status.",
    "pve_storage_usage_bytes": "Used space of the storage in bytes.",
    "pve_storage_size_bytes": "Size of the storage in bytes.",
    "pve_storage_avail_bytes": "Space available on the storage in bytes.",
    "pve_storage_up": "1 while the storage is active.",
    "pve_storage_enabled": "1 while the storage is enabled.",
    "pve_backup_last_success_timestamp_seconds": "When the guest's last backup succeeded.",
    "pve_backup_last_failure_timestamp_seconds": "When the guest's last backup failed.",
    "pve_backup_last_size_bytes": "Size of the guest's newest backup on this node's storages.",
    "pve_backups": "Backups of the guest on this node's backup storages.",
    "pve_backup_verify_failed": "Backups of the guest whose last verification failed (PBS).",
    "pve_not_backed_up": "1 when no backup job covers the guest.",
    "pve_updates_pending": "Package updates pending on the node.",
}

# measurement -> (Prometheus prefix, field -> name after the prefix, tags kept as labels)
TABLES: Final[Mapping[str, tuple[str, Mapping[str, str], tuple[str, ...]]]] = {
    "memory": (
        "node_memory",
        {
            "total_bytes": "MemTotal_bytes",
            "available_bytes": "MemAvailable_bytes",
            "free_bytes": "MemFree_bytes",
            "buffers_bytes": "Buffers_bytes",
            "cached_bytes": "Cached_bytes",
        },
        (),
    ),
    "swap": ("node_memory", {"total_bytes": "SwapTotal_bytes", "free_bytes": "SwapFree_bytes"}, ()),
    "load": ("node", {"load1": "load1", "load5": "load5", "load15": "load15"}, ()),
    "network": (
        "node_network",
        {
            name: name
            for name in (
                "receive_bytes",
                "transmit_bytes",
                "receive_packets",
                "transmit_packets",
                "receive_errs",
                "transmit_errs",
                "receive_drop",
                "transmit_drop",
            )
        },
        ("device",),
    ),
    "disk": (
        "node_disk",
        {
            name: name
            for name in (
                "read_bytes",
                "written_bytes",
                "reads_completed",
                "writes_completed",
                "read_time_seconds",
                "write_time_seconds",
                "io_time_seconds",
            )
        },
        ("device",),
    ),
    "filesystem": (
        "node_filesystem",
        {n: n for n in ("size_bytes", "free_bytes", "avail_bytes", "files", "files_free")},
        ("device", "mountpoint", "fstype"),
    ),
    "temperature": (
        "node_hwmon",
        {
            "celsius": "temp_celsius",
            "high_celsius": "temp_max_celsius",
            "critical_celsius": "temp_crit_celsius",
        },
        ("chip", "sensor"),
    ),
    "fan": ("node_hwmon", {"rpm": "fan_rpm"}, ("chip", "sensor")),
    "collector": (
        "node_scrape_collector",
        {"success": "success", "duration_seconds": "duration_seconds"},
        ("collector",),
    ),
    "zfs_pool": (
        "zfs_pool",
        {
            name: name
            for name in (
                "size_bytes",
                "allocated_bytes",
                "free_bytes",
                "fragmentation_ratio",
                "capacity_ratio",
                "dedup_ratio",
                "errors",
                "scan_progress_ratio",
                "scrub_last_end_timestamp_seconds",
                "scrub_repaired_bytes",
                "scrub_errors",
            )
        },
        ("pool",),
    ),
    # node_exporter's enum shape: one series per state, 1 for the current one.
    "zfs_pool_state": ("node_zfs_zpool", {"value": "state"}, ("zpool", "state")),
    "zfs_vdev": ("zfs_vdev", {"errors": "errors"}, ("pool", "vdev", "kind")),
    "zfs_arc": (
        "node_zfs_arc",
        {n: n for n in ("size_bytes", "target_bytes", "min_bytes", "max_bytes")},
        (),
    ),
    "pve_guest": (
        "pve",
        {
            "up": "up",
            "cpu_ratio": "cpu_usage_ratio",
            "cpus": "cpu_usage_limit",
            "memory_usage_bytes": "memory_usage_bytes",
            "memory_size_bytes": "memory_size_bytes",
            "disk_usage_bytes": "disk_usage_bytes",
            "disk_size_bytes": "disk_size_bytes",
            "network_receive_bytes": "network_receive_bytes",
            "network_transmit_bytes": "network_transmit_bytes",
            "uptime_seconds": "uptime_seconds",
        },
        ("id",),
    ),
    "pve_guests": ("pve", {"count": "guests"}, ("status",)),
    "pve_storage": (
        "pve_storage",
        {
            "usage_bytes": "usage_bytes",
            "size_bytes": "size_bytes",
            "avail_bytes": "avail_bytes",
            "active": "up",
            "enabled": "enabled",
        },
        ("storage", "type"),
    ),
    "pve_backup": (
        "pve",
        {
            "last_success_timestamp_seconds": "backup_last_success_timestamp_seconds",
            "last_failure_timestamp_seconds": "backup_last_failure_timestamp_seconds",
            "last_size_bytes": "backup_last_size_bytes",
            "backups": "backups",
            "verify_failed": "backup_verify_failed",
            "not_backed_up": "not_backed_up",
        },
        ("id",),
    ),
    "pve_updates": ("pve_updates", {"pending": "pending"}, ()),
}
# The fields of a table exposed as counters (``_total``); every other field is a gauge.
# zpool's vdev error counts reset on ``zpool clear`` and are not counters on the wire, but
# they only grow in between and the issue names them ``zfs_vdev_errors_total``.
COUNTER_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "network": frozenset(TABLES["network"][1]),
    "disk": frozenset(TABLES["disk"][1]),
    "zfs_vdev": frozenset({"errors"}),
    "pve_guest": frozenset({"network_receive_bytes", "network_transmit_bytes"}),
}
# pve_guest_info's labels besides host and id, from the guest's string fields.
GUEST_INFO_FIELDS: Final = ("name", "type", "tags")
# Line protocol of the ZFS and Proxmox measurements: their own shape with the host tag, and
# the integer fields of each (as telegraf writes them; any other number is a float, so a
# field keeps one type however the agent's JSON spelt a value). zfs_pool_state is not
# written: the pool's ``health`` field carries it.
LINE_INTEGERS: Final[Mapping[str, frozenset[str]]] = {
    "zfs_pool": frozenset(
        {
            "size_bytes",
            "allocated_bytes",
            "free_bytes",
            "errors",
            "scrub_repaired_bytes",
            "scrub_errors",
            "stale",
        }
    ),
    "zfs_vdev": frozenset({"errors"}),
    "zfs_arc": frozenset({"size_bytes", "target_bytes", "min_bytes", "max_bytes"}),
    "pve_guest": frozenset(
        {
            "up",  # not cpus: an LXC's CPU limit may be fractional (1.5)
            "memory_usage_bytes",
            "memory_size_bytes",
            "disk_usage_bytes",
            "disk_size_bytes",
            "network_receive_bytes",
            "network_transmit_bytes",
            "uptime_seconds",
            "stale",
        }
    ),
    "pve_guests": frozenset({"count"}),
    "pve_storage": frozenset(
        {"active", "enabled", "usage_bytes", "size_bytes", "avail_bytes", "stale"}
    ),
    "pve_backup": frozenset(
        {"not_backed_up", "last_size_bytes", "backups", "verify_failed", "stale"}
    ),
    "pve_updates": frozenset({"pending"}),
}
NOT_WRITTEN: Final = frozenset({"zfs_pool_state"})
# Label values exposed in lower case: node_exporter's pool states (``state="online"``) where
# zpool prints ONLINE, so that its dashboards work.
LOWERCASE_TAGS: Final[Mapping[str, frozenset[str]]] = {"zfs_pool_state": frozenset({"state"})}
GUEST_MODES: Final = {"guest": "user", "guest_nice": "nice"}
# telegraf's total excludes guest time, which the kernel already counts in user and nice.
_CPU_TOTAL_MODES: Final = ("user", "system", "nice", "iowait", "irq", "softirq", "steal", "idle")
INFO_TAGS: Final = ("agent_version", "kernel", "os", "pve_version")
_TELEGRAF_NET: Final = {
    "receive_bytes": "bytes_recv", "transmit_bytes": "bytes_sent",
    "receive_packets": "packets_recv", "transmit_packets": "packets_sent",
    "receive_errs": "err_in", "transmit_errs": "err_out",
    "receive_drop": "drop_in", "transmit_drop": "drop_out",
}  # fmt: skip
_TELEGRAF_DISKIO: Final = {
    "read_bytes": "read_bytes", "written_bytes": "write_bytes",
    "reads_completed": "reads", "writes_completed": "writes",
}  # fmt: skip
_TELEGRAF_DISKIO_MS: Final = {
    "read_time_seconds": "read_time", "write_time_seconds": "write_time",
    "io_time_seconds": "io_time",
}  # fmt: skip


_NET_PREFIX: Final = {key: f"{name}=" for key, name in _TELEGRAF_NET.items()}
_DISKIO_PREFIX: Final = {key: f"{name}=" for key, name in _TELEGRAF_DISKIO.items()}
_DISKIO_MS_PREFIX: Final = {key: f"{name}=" for key, name in _TELEGRAF_DISKIO_MS.items()}
_NO_MS: Final[Mapping[str, str]] = {}
_DEVICE_LINES: Final = DeviceLines()  # shared: the plans do not depend on the host
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_MAX_HEADS: Final = 4096  # a host has so many devices; past it the cache starts over
_ROOM: Final = 64  # bytes a series key leaves for a field key that no check is needed below

# One telegraf-shaped line: measurement, tags, fields, time, and the fields that are integers;
# None: every int field is, as telegraf writes them (an existing telegraf database would
# refuse a float into an integer field).
Put = Callable[[str, Mapping[str, str], Mapping[str, FieldValue], int, frozenset[str] | None], None]


def _milliseconds(seconds: FieldValue | None) -> int | None:
    """Whole milliseconds of ``seconds``; None when there are none to write."""
    number = _number(seconds)
    if number is None or not math.isfinite(number := number * 1000):
        return None
    return int(number)


def _number(value: FieldValue | None) -> float | None:
    if value is None or isinstance(value, str):
        return None
    return float(value)


class HostNaming:
    """Maps one host's readings; keeps its previous CPU times and its boot time."""

    __slots__ = ("_boot_time", "_cpu", "_heads", "host")

    def __init__(self, host: str) -> None:
        self.host = host
        self._heads: dict[tuple[str, str], tuple[str, int]] = {}  # the encoder's, by device
        self._cpu: dict[str, dict[str, float]] = {}  # cpu tag -> seconds by mode
        self._boot_time: float | None = None

    def map(self, sample: SampleData, out: list[Sample]) -> None:
        """Append the line protocol samples ``sample`` becomes to ``out`` (Prometheus maps
        the hub's stored readings when scraped, see ``exposition``)."""

        def put(
            measurement: str,
            tags: Mapping[str, str],
            fields: Mapping[str, FieldValue],
            ns: int,
            counters: frozenset[str] | None,
        ) -> None:
            if counters is None:
                counters = frozenset(key for key, value in fields.items() if type(value) is int)
            out.append(Sample(measurement, tags, fields, ns, counters, sink=SINK_LINE_PROTOCOL))

        self._map(sample, put)

    def lines(self, samples: Iterable[SampleData], encoder: LineEncoder, out: list[str]) -> None:
        """Append the lines ``samples`` become to ``out``, encoded by ``encoder`` without a
        ``Sample`` per line: the same lines as ``map`` and the line protocol output give."""
        encode = encoder.encode_fields

        def put(
            measurement: str,
            tags: Mapping[str, str],
            fields: Mapping[str, FieldValue],
            ns: int,
            counters: frozenset[str] | None,
        ) -> None:
            line = encode(measurement, tags, fields, ns, counters)
            if line is not None:
                out.append(line)

        for sample in samples:
            measurement = sample.measurement
            if measurement == "network":
                done = self._device_line(sample, out, "net", "interface", _NET_PREFIX, _NO_MS)
            elif measurement == "disk":
                done = self._device_line(
                    sample, out, "diskio", "name", _DISKIO_PREFIX, _DISKIO_MS_PREFIX
                )
            else:
                done = False
            if not done:
                self._map(sample, put)

    def _device_line(
        self,
        sample: SampleData,
        out: list[str],
        measurement: str,
        tag: str,
        prefixes: Mapping[str, str],
        ms_prefixes: Mapping[str, str],
    ) -> bool:
        """``_telegraf``'s net and diskio lines, written straight from the reading (most of
        a batch is per-device readings); False leaves the sample to the general path."""
        device = sample.tags.get("device", "")
        key = (measurement, device)
        entry = self._heads.get(key)
        if entry is None:
            if len(self._heads) >= _MAX_HEADS:
                self._heads.clear()
            entry = self._heads[key] = series_head(measurement, {"host": self.host, tag: device})
        head, room = entry
        if room < _ROOM:
            return False  # the general path decides what such a series gets
        line = _DEVICE_LINES.line(head, sample, prefixes, ms_prefixes)
        if line is not None:
            out.append(line)
            return True
        texts = []
        fields = sample.fields
        low, high = _INT64_MIN, _INT64_MAX
        for name, value in fields.items():
            prefix = prefixes.get(name)
            if prefix is None:
                continue
            if type(value) is int and low <= value <= high:
                texts.append(f"{prefix}{value}i")
            elif (text := format_field_value(value, integer=True)) is not None:
                texts.append(prefix + text)
        if ms_prefixes:
            for name, prefix in ms_prefixes.items():
                ms = _milliseconds(fields.get(name))
                if ms is not None and low <= ms <= high:
                    texts.append(f"{prefix}{ms}i")
        if texts:
            out.append(f"{head} {','.join(texts)} {sample.time_ns}")
        return True

    def _map(self, sample: SampleData, put: Put) -> None:
        measurement = sample.measurement
        if measurement == "cpu":
            self._cpu_samples(sample, put)
        elif measurement == "host":
            self._host_samples(sample, put)
        elif measurement in LINE_INTEGERS:
            put(measurement, {**sample.tags, "host": self.host}, sample.fields, sample.time_ns,
                LINE_INTEGERS[measurement])  # fmt: skip
        elif measurement in NOT_WRITTEN:
            return
        elif measurement in TABLES:
            self._telegraf(sample, put)
        else:
            put(measurement, {**sample.tags, "host": self.host}, sample.fields, sample.time_ns,
                sample.counters)  # fmt: skip

    def _cpu_samples(self, sample: SampleData, put: Put) -> None:
        cpu = sample.tags.get("cpu", "total")
        ns = sample.time_ns
        seconds: dict[str, float] = {}
        for mode, value in sample.fields.items():
            number = _number(value)
            if number is not None:
                seconds[mode] = number
        # telegraf: cpu=cpu-total / cpu0, time_<mode> and usage_<mode> (percent since last).
        fields: dict[str, FieldValue] = {f"time_{mode}": value for mode, value in seconds.items()}
        previous = self._cpu.get(cpu)
        if previous is not None:
            total = sum(seconds.get(m, 0.0) - previous.get(m, 0.0) for m in _CPU_TOTAL_MODES)
            if total > 0:
                for mode, value in seconds.items():
                    fields[f"usage_{mode}"] = 100.0 * (value - previous.get(mode, value)) / total
        if len(self._cpu) < 1024 or cpu in self._cpu:  # bounded: a host has so many CPUs
            self._cpu[cpu] = seconds
        name = "cpu-total" if cpu == "total" else f"cpu{cpu}"
        put("cpu", {"cpu": name, "host": self.host}, fields, ns, None)

    def _host_samples(self, sample: SampleData, put: Put) -> None:
        ns = sample.time_ns
        boot = _number(sample.fields.get("boot_time_seconds"))
        if boot is not None:
            self._boot_time = boot
            put("kernel", {"host": self.host}, {"boot_time": int(boot)}, ns, None)
        cpus = sample.fields.get("cpus")
        if type(cpus) is int:
            put("system", {"host": self.host}, {"n_cpus": cpus}, ns, None)

    def _telegraf(self, sample: SampleData, put: Put) -> None:
        measurement = sample.measurement
        f = sample.fields
        host = self.host
        ns = sample.time_ns
        if measurement == "load":
            fields: dict[str, FieldValue] = {
                k: float(v) for k, v in f.items() if k in ("load1", "load5", "load15")
                and not isinstance(v, str)
            }  # fmt: skip
            if self._boot_time is not None:
                fields["uptime"] = max(0, int(ns / 1e9 - self._boot_time))
            if fields:
                put("system", {"host": host}, fields, ns, None)
        elif measurement == "memory":
            put("mem", {"host": host}, _memory_fields(f), ns, None)
        elif measurement == "swap":
            put("swap", {"host": host}, _swap_fields(f), ns, None)
        elif measurement == "network":
            fields = {_TELEGRAF_NET[k]: v for k, v in f.items() if k in _TELEGRAF_NET}
            put("net", {"host": host, "interface": sample.tags.get("device", "")},
                           fields, ns, None)  # fmt: skip
        elif measurement == "disk":
            fields = {_TELEGRAF_DISKIO[k]: v for k, v in f.items() if k in _TELEGRAF_DISKIO}
            for key, name in _TELEGRAF_DISKIO_MS.items():
                ms = _milliseconds(f.get(key))
                if ms is not None:
                    fields[name] = ms
            put("diskio", {"host": host, "name": sample.tags.get("device", "")},
                           fields, ns, None)  # fmt: skip
        elif measurement == "filesystem":
            tags = {
                "host": host,
                "path": sample.tags.get("mountpoint", ""),
                "device": sample.tags.get("device", "").removeprefix("/dev/"),
                "fstype": sample.tags.get("fstype", ""),
            }
            put("disk", tags, _disk_fields(f), ns, None)
        elif measurement == "temperature":
            base = "_".join(
                (sample.tags.get("chip", ""), sample.tags.get("sensor", ""))
            ).lower().replace(" ", "_")  # fmt: skip
            for key, suffix in (("celsius", "input"), ("high_celsius", "max"),
                                ("critical_celsius", "crit")):  # fmt: skip
                value = _number(f.get(key))
                if value is not None:
                    put("temp", {"host": host, "sensor": f"{base}_{suffix}"},
                                   {"temp": value}, ns, None)  # fmt: skip
        elif measurement in ("fan", "collector"):
            tags = {**sample.tags, "host": host}
            put(measurement, tags, f, ns, sample.counters)


def _ints(fields: Mapping[str, FieldValue], names: Mapping[str, str]) -> dict[str, FieldValue]:
    out: dict[str, FieldValue] = {}
    for key, name in names.items():
        value = _number(fields.get(key))
        if value is not None:
            out[name] = int(value)
    return out


def _memory_fields(f: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    fields = _ints(
        f,
        {"total_bytes": "total", "available_bytes": "available", "used_bytes": "used",
         "free_bytes": "free", "buffers_bytes": "buffered", "cached_bytes": "cached"},
    )  # fmt: skip
    total = fields.get("total")
    if isinstance(total, int) and total > 0:
        if "available" in fields:
            fields["available_percent"] = 100.0 * float(fields["available"]) / total
        if "used" in fields:
            fields["used_percent"] = 100.0 * float(fields["used"]) / total
    return fields


def _swap_fields(f: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    fields = _ints(
        f,
        {"total_bytes": "total", "free_bytes": "free", "used_bytes": "used",
         "sin_bytes": "in", "sout_bytes": "out"},
    )  # fmt: skip
    total = fields.get("total")
    if isinstance(total, int) and total > 0 and "used" in fields:
        fields["used_percent"] = 100.0 * float(fields["used"]) / total
    return fields


def _disk_fields(f: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """telegraf's disk: ``free`` is what non-root users may use, ``used`` what is taken."""
    size, free, avail = (_number(f.get(k)) for k in ("size_bytes", "free_bytes", "avail_bytes"))
    fields: dict[str, FieldValue] = {}
    if size is not None:
        fields["total"] = int(size)
    if avail is not None:
        fields["free"] = int(avail)
    if size is not None and free is not None:
        used = int(size - free)
        fields["used"] = used
        if avail is not None and used + avail > 0:
            fields["used_percent"] = 100.0 * used / (used + avail)
    files, files_free = _number(f.get("files")), _number(f.get("files_free"))
    if files is not None:
        fields["inodes_total"] = int(files)
    if files_free is not None:
        fields["inodes_free"] = int(files_free)
        if files is not None:
            fields["inodes_used"] = int(files - files_free)
    return fields
