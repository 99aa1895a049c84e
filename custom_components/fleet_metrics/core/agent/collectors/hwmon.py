"""Temperatures and fan speeds (medium tier), where the host has sensors.

psutil only has ``sensors_temperatures`` and ``sensors_fans`` on some platforms, and a VM
usually has no sensors at all: both cases give no samples and no error. psutil merges chips
of the same name (two ``coretemp`` sockets), so a label seen twice in a chip gets ``_2``; an
unlabelled sensor is named by position, as hwmon does (``temp1``, ``fan1``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import psutil

from ...sample import Sample
from .base import Collector

MAX_SENSORS: Final = 256


def _names(chip_sensors: Sequence[Any], prefix: str) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, sensor in enumerate(chip_sensors, start=1):
        name = str(sensor.label).strip() or f"{prefix}{index}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return names


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def temperature_samples(
    temperatures: Mapping[str, Sequence[Any]] | None, time_ns: int, cap: int = MAX_SENSORS
) -> tuple[list[Sample], int]:
    """``temperature`` samples from ``psutil.sensors_temperatures()`` (None: not supported)."""
    samples: list[Sample] = []
    total = 0
    for chip in sorted(temperatures or {}):
        sensors = (temperatures or {})[chip]
        for name, sensor in zip(_names(sensors, "temp"), sensors, strict=True):
            current = _finite(sensor.current)
            if current is None:
                continue
            total += 1
            if len(samples) >= cap:
                continue
            fields = {"celsius": current}
            for field, attr in (("high_celsius", "high"), ("critical_celsius", "critical")):
                value = _finite(getattr(sensor, attr, None))
                if value is not None:
                    fields[field] = value
            samples.append(Sample("temperature", {"chip": chip, "sensor": name}, fields, time_ns))
    return samples, total - len(samples)


def fan_samples(
    fans: Mapping[str, Sequence[Any]] | None, time_ns: int, cap: int = MAX_SENSORS
) -> tuple[list[Sample], int]:
    """``fan`` samples from ``psutil.sensors_fans()`` (None: not supported)."""
    samples: list[Sample] = []
    total = 0
    for chip in sorted(fans or {}):
        sensors = (fans or {})[chip]
        for name, sensor in zip(_names(sensors, "fan"), sensors, strict=True):
            rpm = _finite(sensor.current)
            if rpm is None:
                continue
            total += 1
            if len(samples) < cap:
                samples.append(
                    Sample("fan", {"chip": chip, "sensor": name}, {"rpm": int(rpm)}, time_ns)
                )
    return samples, total - len(samples)


class HwmonCollector(Collector):
    name = "hwmon"
    tier = "medium"

    def collect(self, time_ns: int) -> list[Sample]:
        read_temperatures = getattr(psutil, "sensors_temperatures", None)
        read_fans = getattr(psutil, "sensors_fans", None)
        temperatures, hot_left = temperature_samples(
            read_temperatures() if read_temperatures else None, time_ns
        )
        fans, fans_left = fan_samples(read_fans() if read_fans else None, time_ns)
        if hot_left or fans_left:
            self.overflow += hot_left + fans_left
            self.once.warning(
                "cap", "hwmon: more than %d sensors; the rest are left out", MAX_SENSORS
            )
        return temperatures + fans
