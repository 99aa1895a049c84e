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

A measurement this module does not know (a collector added later) keeps its shape: for
Prometheus ``fleet_agent_<measurement>_<field>`` under the sink's lint rules, for line
protocol its own name; both with the ``host`` tag. ``HostNaming`` keeps what a host's
previous readings are needed for (CPU times, boot time) and nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from ...exporters.line_protocol import LineEncoder, format_field_value, series_head
from ...sample import SINK_LINE_PROTOCOL, FieldValue, Sample

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
}
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

    def map(self, sample: Sample, out: list[Sample]) -> None:
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

    def lines(self, samples: Iterable[Sample], encoder: LineEncoder, out: list[str]) -> None:
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
                done = self._device_line(sample, encoder, out, "net", "interface", _NET_PREFIX)
            elif measurement == "disk":
                done = self._device_line(sample, encoder, out, "diskio", "name", _DISKIO_PREFIX)
            else:
                done = False
            if not done:
                self._map(sample, put)

    def _device_line(
        self,
        sample: Sample,
        encoder: LineEncoder,
        out: list[str],
        measurement: str,
        tag: str,
        prefixes: Mapping[str, str],
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
        if measurement == "diskio":
            for name, prefix in _DISKIO_MS_PREFIX.items():
                ms = _milliseconds(fields.get(name))
                if ms is not None and low <= ms <= high:
                    texts.append(f"{prefix}{ms}i")
        if texts:
            out.append(f"{head} {','.join(texts)} {sample.time_ns}")
        return True

    def _map(self, sample: Sample, put: Put) -> None:
        measurement = sample.measurement
        if measurement == "cpu":
            self._cpu_samples(sample, put)
        elif measurement == "host":
            self._host_samples(sample, put)
        elif measurement in TABLES:
            self._telegraf(sample, put)
        else:
            put(measurement, {**sample.tags, "host": self.host}, sample.fields, sample.time_ns,
                sample.counters)  # fmt: skip

    def _cpu_samples(self, sample: Sample, put: Put) -> None:
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

    def _host_samples(self, sample: Sample, put: Put) -> None:
        ns = sample.time_ns
        boot = _number(sample.fields.get("boot_time_seconds"))
        if boot is not None:
            self._boot_time = boot
            put("kernel", {"host": self.host}, {"boot_time": int(boot)}, ns, None)
        cpus = sample.fields.get("cpus")
        if type(cpus) is int:
            put("system", {"host": self.host}, {"n_cpus": cpus}, ns, None)

    def _telegraf(self, sample: Sample, put: Put) -> None:
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
