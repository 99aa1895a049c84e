"""Typed OpenDTU state, independent of the firmware's JSON shape."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class DcString:
    """One DC input (0-based index, as the current web API numbers them)."""

    index: int
    name: str = ""
    values: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Inverter:
    serial: str
    name: str
    reachable: bool
    producing: bool
    poll_enabled: bool | None = None
    order: int | None = None
    data_age: float | None = None
    limit_relative: float | None = None
    limit_absolute: float | None = None
    events: int | None = None
    radio: dict[str, int] = field(default_factory=dict)
    rssi: float | None = None
    # AC and inverter-level values (power, voltage, yield_total, temperature, ...).
    values: dict[str, float] = field(default_factory=dict)
    strings: dict[int, DcString] = field(default_factory=dict)

    @property
    def has_channels(self) -> bool:
        return bool(self.values)


@dataclass(slots=True)
class Totals:
    power: float | None = None
    yield_day: float | None = None
    yield_total: float | None = None


@dataclass(slots=True)
class Hints:
    time_sync: bool = False
    radio_problem: bool = False
    default_password: bool = False
    pin_mapping_issue: bool = False


@dataclass(slots=True)
class LiveData:
    """One ``/api/livedata/status`` body or one ``/livedata`` push."""

    inverters: list[Inverter]
    total: Totals | None
    hints: Hints | None


@dataclass(slots=True)
class SystemInfo:
    hostname: str | None = None
    firmware: str | None = None
    chip_model: str | None = None
    sdk_version: str | None = None
    uptime: float | None = None
    heap_total: int | None = None
    heap_used: int | None = None
    cpu_temperature: float | None = None


@dataclass(slots=True)
class NetworkInfo:
    mac: str | None = None
    ip: str | None = None
    hostname: str | None = None
    rssi: int | None = None


@dataclass(slots=True)
class DtuSnapshot:
    """Everything known about one DTU after a poll, kept current by live pushes."""

    system: SystemInfo
    network: NetworkInfo | None
    inverters: dict[str, Inverter]
    total: Totals
    hints: Hints
