"""Agent readings under the names people already use: node_exporter and telegraf.

The agent sends neutral samples (``cpu``, ``memory``, ``network``... see the agent's
collectors). Prometheus users expect node_exporter's names and shapes
(``node_cpu_seconds_total{host,mode}``, ``node_memory_MemTotal_bytes``) and line protocol
users telegraf's (``cpu,cpu=cpu-total,host=h usage_idle=..,time_idle=..``), so that existing
dashboards work. The two differ in shape, not only in name (a label per CPU mode against a
field per mode; telegraf's percentages are computed from two readings), so each reading
becomes one sample per output, marked with ``Sample.sink``; see ``sample.Sample``.

A measurement this module does not know (a collector added later) keeps its shape: for
Prometheus ``fleet_agent_<measurement>_<field>`` under the sink's lint rules, for line
protocol its own name; both with the ``host`` tag. ``HostNaming`` keeps what a host's
previous readings are needed for (CPU times, boot time) and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ...sample import SINK_LINE_PROTOCOL, SINK_PROMETHEUS, FieldValue, Sample

# HELP of every name declared here; the Prometheus sink writes declared names verbatim.
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
_TABLES: Final[Mapping[str, tuple[str, Mapping[str, str], tuple[str, ...]]]] = {
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
_GUEST_MODES: Final = {"guest": "user", "guest_nice": "nice"}
# telegraf's total excludes guest time, which the kernel already counts in user and nice.
_CPU_TOTAL_MODES: Final = ("user", "system", "nice", "iowait", "irq", "softirq", "steal", "idle")
_INFO_TAGS: Final = ("agent_version", "kernel", "os", "pve_version")
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


def _prom(
    measurement: str,
    tags: dict[str, str],
    fields: dict[str, FieldValue],
    time_ns: int,
    counters: frozenset[str] = frozenset(),
) -> Sample:
    return Sample(measurement, tags, fields, time_ns, counters, sink=SINK_PROMETHEUS)


def _lp(measurement: str, tags: dict[str, str], fields: dict[str, FieldValue], ns: int) -> Sample:
    """A telegraf-shaped line; ``counters`` holds the int fields, so that line protocol
    writes them as integers as telegraf does (an existing telegraf database would refuse a
    float into an integer field). Only the line protocol output sees these samples."""
    ints = frozenset(key for key, value in fields.items() if type(value) is int)
    return Sample(measurement, tags, fields, ns, ints, sink=SINK_LINE_PROTOCOL)


def _number(value: FieldValue | None) -> float | None:
    if value is None or isinstance(value, str):
        return None
    return float(value)


class HostNaming:
    """Maps one host's readings; keeps its previous CPU times and its boot time."""

    __slots__ = ("_boot_time", "_cpu", "host")

    def __init__(self, host: str) -> None:
        self.host = host
        self._cpu: dict[str, dict[str, float]] = {}  # cpu tag -> seconds by mode
        self._boot_time: float | None = None

    def map(self, sample: Sample, out: list[Sample]) -> None:
        """Append the samples ``sample`` becomes for both outputs to ``out``."""
        measurement = sample.measurement
        if measurement == "cpu":
            self._cpu_samples(sample, out)
        elif measurement == "host":
            self._host_samples(sample, out)
        elif measurement in _TABLES:
            self._table_prometheus(sample, out)
            self._telegraf(sample, out)
        else:
            self._unknown(sample, out)

    def _labels(self, sample: Sample, kept: tuple[str, ...]) -> dict[str, str]:
        tags = {key: sample.tags[key] for key in kept if key in sample.tags}
        tags["host"] = self.host
        return tags

    def _table_prometheus(self, sample: Sample, out: list[Sample]) -> None:
        prefix, names, kept = _TABLES[sample.measurement]
        fields: dict[str, FieldValue] = {}
        counters = []
        for key, value in sample.fields.items():
            name = names.get(key)
            if name is None or isinstance(value, str):
                continue
            fields[name] = value
            if key in sample.counters:
                counters.append(name)
        if fields:
            out.append(
                _prom(
                    prefix, self._labels(sample, kept), fields, sample.time_ns, frozenset(counters)
                )
            )

    def _unknown(self, sample: Sample, out: list[Sample]) -> None:
        tags = {**sample.tags, "host": self.host}
        out.append(
            _prom(f"fleet_agent_{sample.measurement}", tags, dict(sample.fields),
                  sample.time_ns, sample.counters)
        )  # fmt: skip
        out.append(
            Sample(sample.measurement, tags, sample.fields, sample.time_ns, sample.counters,
                   sink=SINK_LINE_PROTOCOL)
        )  # fmt: skip

    def _cpu_samples(self, sample: Sample, out: list[Sample]) -> None:
        cpu = sample.tags.get("cpu", "total")
        base = {"host": self.host} if cpu == "total" else {"host": self.host, "cpu": cpu}
        ns = sample.time_ns
        seconds: dict[str, float] = {}
        for mode, value in sample.fields.items():
            number = _number(value)
            if number is None:
                continue
            seconds[mode] = number
            guest = _GUEST_MODES.get(mode)
            if guest is not None:
                out.append(_prom("node_cpu_guest", {**base, "mode": guest},
                                 {"seconds": number}, ns, _SECONDS))  # fmt: skip
            else:
                out.append(_prom("node_cpu", {**base, "mode": mode}, {"seconds": number}, ns,
                                 _SECONDS))  # fmt: skip
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
        out.append(_lp("cpu", {"cpu": name, "host": self.host}, fields, ns))

    def _host_samples(self, sample: Sample, out: list[Sample]) -> None:
        ns = sample.time_ns
        info = {key: sample.tags.get(key, "") for key in _INFO_TAGS}
        info["host"] = self.host
        out.append(_prom("fleet_agent", info, {"info": 1}, ns))
        boot = _number(sample.fields.get("boot_time_seconds"))
        if boot is not None:
            self._boot_time = boot
            out.append(_prom("node_boot_time", {"host": self.host}, {"seconds": boot}, ns))
            out.append(_lp("kernel", {"host": self.host}, {"boot_time": int(boot)}, ns))
        cpus = sample.fields.get("cpus")
        if type(cpus) is int:
            out.append(_lp("system", {"host": self.host}, {"n_cpus": cpus}, ns))

    def _telegraf(self, sample: Sample, out: list[Sample]) -> None:
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
                out.append(_lp("system", {"host": host}, fields, ns))
        elif measurement == "memory":
            out.append(_lp("mem", {"host": host}, _memory_fields(f), ns))
        elif measurement == "swap":
            out.append(_lp("swap", {"host": host}, _swap_fields(f), ns))
        elif measurement == "network":
            fields = {_TELEGRAF_NET[k]: v for k, v in f.items() if k in _TELEGRAF_NET}
            out.append(_lp("net", {"host": host, "interface": sample.tags.get("device", "")},
                           fields, ns))  # fmt: skip
        elif measurement == "disk":
            fields = {_TELEGRAF_DISKIO[k]: v for k, v in f.items() if k in _TELEGRAF_DISKIO}
            for key, name in _TELEGRAF_DISKIO_MS.items():
                seconds = _number(f.get(key))
                if seconds is not None:
                    fields[name] = int(seconds * 1000)
            out.append(_lp("diskio", {"host": host, "name": sample.tags.get("device", "")},
                           fields, ns))  # fmt: skip
        elif measurement == "filesystem":
            tags = {
                "host": host,
                "path": sample.tags.get("mountpoint", ""),
                "device": sample.tags.get("device", "").removeprefix("/dev/"),
                "fstype": sample.tags.get("fstype", ""),
            }
            out.append(_lp("disk", tags, _disk_fields(f), ns))
        elif measurement == "temperature":
            base = "_".join(
                (sample.tags.get("chip", ""), sample.tags.get("sensor", ""))
            ).lower().replace(" ", "_")  # fmt: skip
            for key, suffix in (("celsius", "input"), ("high_celsius", "max"),
                                ("critical_celsius", "crit")):  # fmt: skip
                value = _number(f.get(key))
                if value is not None:
                    out.append(_lp("temp", {"host": host, "sensor": f"{base}_{suffix}"},
                                   {"temp": value}, ns))  # fmt: skip
        elif measurement in ("fan", "collector"):
            tags = {**sample.tags, "host": host}
            out.append(Sample(measurement, tags, f, ns, sample.counters, sink=SINK_LINE_PROTOCOL))


_SECONDS: Final = frozenset({"seconds"})


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
