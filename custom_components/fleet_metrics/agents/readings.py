"""A host's latest values as Home Assistant shows them, derived from the agent's samples.

The agent sends raw readings (CPU seconds by mode, byte counters, filesystem sizes); a
dashboard wants a CPU usage %, byte rates and used %. This module turns one into the other
and keeps only what the next reading needs (the previous CPU times and counters). It is
HA-free so that it is tested without Home Assistant. Everything keyed by a name from the
wire (filesystems, interfaces, disks, temperature sensors) is capped at ``MAX_PER_KIND``
per host; what does not fit is counted in ``dropped``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ..core.sample import FieldValue, Sample

if TYPE_CHECKING:
    from .proxmox import Event, ProxmoxReadings

MAX_PER_KIND: Final = 64  # proxmox.py keeps the same cap
# Unix seconds a timestamp may have (after 1970, before 2514): anything else is a garbled
# reading, which Home Assistant could not even turn into a date.
MAX_TIMESTAMP: Final = 2**34
# hwmon chips that measure the CPU package or its cores (Intel, AMD, ARM boards).
CPU_CHIPS: Final = frozenset(
    {"coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal", "soc_thermal"}
)
_IDLE_MODES: Final = ("idle", "iowait")
# Linux counts guest time inside user and nice as well; adding it again would count it twice.
_NOT_SUMMED: Final = frozenset({"guest", "guest_nice"})

TemperatureKey = tuple[str, str]  # (chip, sensor)


def number(value: FieldValue | None) -> float | None:
    """A finite number, or None (NaN and ±inf from a garbled reading are none); proxmox.py
    reads its values with it too."""
    if value is None or isinstance(value, bool | str):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return number if math.isfinite(number) else None


def _proxmox_readings() -> ProxmoxReadings:
    """A host's Proxmox part. Imported here, not at the top: proxmox.py imports ``number``
    from this module."""
    from .proxmox import ProxmoxReadings

    return ProxmoxReadings()


def _percent(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 2) if whole > 0 else None


@dataclass(slots=True)
class _Counter:
    value: float
    time_ns: int


@dataclass(slots=True)
class HostReadings:
    """The latest derived values of one host; None until a reading provides them."""

    cpu_percent: float | None = None
    load1: float | None = None
    load5: float | None = None
    load15: float | None = None
    memory_used_percent: float | None = None
    memory_available_bytes: int | None = None
    memory_total_bytes: int | None = None
    swap_used_percent: float | None = None
    boot_time: float | None = None  # unix seconds
    os: str = ""
    kernel: str = ""
    cpu_model: str = ""
    agent_version: str = ""
    pve_version: str = ""
    filesystem_used_percent: dict[str, float] = field(default_factory=dict)  # by mountpoint
    network_in: dict[str, float] = field(default_factory=dict)  # bytes/s by interface
    network_out: dict[str, float] = field(default_factory=dict)
    disk_read: dict[str, float] = field(default_factory=dict)  # bytes/s by disk
    disk_write: dict[str, float] = field(default_factory=dict)
    temperatures: dict[TemperatureKey, float] = field(default_factory=dict)
    proxmox: ProxmoxReadings = field(default_factory=_proxmox_readings)  # pools, guests...
    dropped: int = 0
    _cpu: tuple[float, float] | None = None  # (busy, total) seconds of the last reading
    _counters: dict[tuple[str, str, str], _Counter] = field(default_factory=dict)

    @property
    def cpu_temperature(self) -> float | None:
        """The hottest sensor of a CPU chip, or None without one."""
        values = [value for (chip, _), value in self.temperatures.items() if chip in CPU_CHIPS]
        return max(values) if values else None

    @property
    def memory_used_without_arc_percent(self) -> float | None:
        """Memory used less the ZFS ARC, which is cache the kernel gets back when it needs
        it (users read a full ARC as "RAM full"); None without an ARC reading."""
        total, available = self.memory_total_bytes, self.memory_available_bytes
        arc = self.proxmox.arc_size_bytes
        if total is None or available is None or arc is None:
            return None
        return _percent(max(0.0, float(total - available - arc)), total)

    def apply(self, samples: Iterable[Sample]) -> list[Event]:
        """Take a batch's samples in; the events their transitions call for (pools,
        guests: see ``proxmox``), without the host, which the caller adds."""
        events: list[Event] = []
        for sample in samples:
            measurement = sample.measurement
            handler = _HANDLERS.get(measurement)
            if handler is not None:
                handler(self, sample)
            else:  # the Proxmox readings and the collectors' end-of-run samples
                self.proxmox.apply(sample, events)
        return events

    def _keep(self, values: dict[str, float], key: str, value: float | None) -> None:
        if value is None:
            return
        if key not in values and len(values) >= MAX_PER_KIND:
            self.dropped += 1
            return
        values[key] = value

    def _rate(self, kind: str, device: str, field_name: str, sample: Sample) -> float | None:
        """Per-second increase since the previous reading; None for the first one, after a
        counter reset (reboot, agent restart) and for readings out of order."""
        value = number(sample.fields.get(field_name))
        if value is None:
            return None
        key = (kind, device, field_name)
        previous = self._counters.get(key)
        if previous is None and len(self._counters) >= 4 * MAX_PER_KIND:
            self.dropped += 1
            return None
        self._counters[key] = _Counter(value, sample.time_ns)
        if previous is None:
            return None
        seconds = (sample.time_ns - previous.time_ns) / 1e9
        if seconds <= 0 or value < previous.value:
            return None
        return round((value - previous.value) / seconds, 2)

    def _on_cpu(self, sample: Sample) -> None:
        if sample.tags.get("cpu", "total") != "total":
            return
        seconds = {
            mode: seconds_of_mode
            for mode, value in sample.fields.items()
            if mode not in _NOT_SUMMED and (seconds_of_mode := number(value)) is not None
        }
        total = sum(seconds.values())
        busy = total - sum(seconds.get(mode, 0.0) for mode in _IDLE_MODES)
        previous, self._cpu = self._cpu, (busy, total)
        if previous is None:
            return
        delta_total = total - previous[1]
        delta_busy = busy - previous[0]
        if delta_total > 0 and delta_busy >= 0:
            self.cpu_percent = round(min(100.0, 100.0 * delta_busy / delta_total), 1)

    def _on_load(self, sample: Sample) -> None:
        fields = sample.fields
        self.load1 = number(fields.get("load1"))
        self.load5 = number(fields.get("load5"))
        self.load15 = number(fields.get("load15"))

    def _on_memory(self, sample: Sample) -> None:
        total = number(sample.fields.get("total_bytes"))
        available = number(sample.fields.get("available_bytes"))
        if total is None or available is None:
            return
        self.memory_available_bytes = int(available)
        self.memory_total_bytes = int(total)
        self.memory_used_percent = _percent(total - available, total)

    def _on_swap(self, sample: Sample) -> None:
        total = number(sample.fields.get("total_bytes"))
        free = number(sample.fields.get("free_bytes"))
        if total is None or free is None:
            return
        # No swap at all is 0 % used, not unknown: the sensor stays meaningful.
        self.swap_used_percent = _percent(total - free, total) if total > 0 else 0.0

    def _on_filesystem(self, sample: Sample) -> None:
        mountpoint = sample.tags.get("mountpoint")
        size = number(sample.fields.get("size_bytes"))
        free = number(sample.fields.get("free_bytes"))
        avail = number(sample.fields.get("avail_bytes"))
        if not mountpoint or size is None or free is None or avail is None:
            return
        used = size - free
        # As df shows it: the root reserve counts neither as used nor as available.
        self._keep(self.filesystem_used_percent, mountpoint, _percent(used, used + avail))

    def _on_network(self, sample: Sample) -> None:
        device = sample.tags.get("device")
        if device:
            rx = self._rate("network", device, "receive_bytes", sample)
            tx = self._rate("network", device, "transmit_bytes", sample)
            self._keep(self.network_in, device, rx)
            self._keep(self.network_out, device, tx)

    def _on_disk(self, sample: Sample) -> None:
        device = sample.tags.get("device")
        if device:
            read = self._rate("disk", device, "read_bytes", sample)
            written = self._rate("disk", device, "written_bytes", sample)
            self._keep(self.disk_read, device, read)
            self._keep(self.disk_write, device, written)

    def _on_temperature(self, sample: Sample) -> None:
        chip, sensor = sample.tags.get("chip"), sample.tags.get("sensor")
        celsius = number(sample.fields.get("celsius"))
        if not chip or not sensor or celsius is None:
            return
        key = (chip, sensor)
        if key not in self.temperatures and len(self.temperatures) >= MAX_PER_KIND:
            self.dropped += 1
            return
        self.temperatures[key] = celsius

    def _on_host(self, sample: Sample) -> None:
        tags = sample.tags
        self.os = tags.get("os", self.os)
        self.kernel = tags.get("kernel", self.kernel)
        self.cpu_model = tags.get("cpu_model", self.cpu_model)
        self.agent_version = tags.get("agent_version", self.agent_version)
        self.pve_version = tags.get("pve_version", self.pve_version)
        boot_time = number(sample.fields.get("boot_time_seconds"))
        if boot_time is not None and 0 < boot_time < MAX_TIMESTAMP:
            self.boot_time = boot_time


_HANDLERS: Final = {
    "cpu": HostReadings._on_cpu,
    "load": HostReadings._on_load,
    "memory": HostReadings._on_memory,
    "swap": HostReadings._on_swap,
    "filesystem": HostReadings._on_filesystem,
    "network": HostReadings._on_network,
    "disk": HostReadings._on_disk,
    "temperature": HostReadings._on_temperature,
    "host": HostReadings._on_host,
}
