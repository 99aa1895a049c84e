"""Host sensors: CPU, load, memory, swap, boot time, temperatures, and one per filesystem,
interface and disk; on a Proxmox host also ARC size, memory used without the ARC, guest
counts, pending updates, each pool's capacity, fragmentation and last scrub, each storage's
used %, and each picked guest's CPU, memory, disk and last backup on the guest's device.
Each appears once the host has reported its value."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfDataRate,
    UnitOfInformation,
    UnitOfTemperature,
)
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import AgentsCoordinator
from .entity import AgentEntity, Candidate, GuestEntity, add_entities_as_they_appear, pool_of
from .proxmox import Guest, Pool, ProxmoxReadings
from .readings import HostReadings, TemperatureKey

M = SensorStateClass.MEASUREMENT


@dataclass(frozen=True, kw_only=True)
class HostSensorDescription(SensorEntityDescription):
    value_fn: Callable[[HostReadings], StateType | datetime]


def _timestamp(seconds: float | None) -> datetime | None:
    """The date of unix ``seconds``; None without one or for one no date can hold (the
    readings bound them already; this keeps a listener that builds entities from raising)."""
    if not seconds:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC).replace(microsecond=0)
    except (OverflowError, ValueError, OSError):
        return None


def _boot_time(readings: HostReadings) -> datetime | None:
    return _timestamp(readings.boot_time)


_BYTES = {
    "device_class": SensorDeviceClass.DATA_SIZE,
    "native_unit_of_measurement": UnitOfInformation.BYTES,
    "suggested_unit_of_measurement": UnitOfInformation.GIBIBYTES,
    "suggested_display_precision": 2,
    "state_class": SensorStateClass.MEASUREMENT,
}


HOST_SENSORS: tuple[HostSensorDescription, ...] = (
    HostSensorDescription(
        key="cpu_usage",
        translation_key="cpu_usage",
        native_unit_of_measurement=PERCENTAGE,
        state_class=M,
        suggested_display_precision=1,
        value_fn=lambda r: r.cpu_percent,
    ),
    HostSensorDescription(
        key="load_1m",
        translation_key="load_1m",
        state_class=M,
        suggested_display_precision=2,
        value_fn=lambda r: r.load1,
    ),
    HostSensorDescription(
        key="load_5m",
        translation_key="load_5m",
        state_class=M,
        suggested_display_precision=2,
        value_fn=lambda r: r.load5,
    ),
    HostSensorDescription(
        key="load_15m",
        translation_key="load_15m",
        state_class=M,
        suggested_display_precision=2,
        value_fn=lambda r: r.load15,
    ),
    HostSensorDescription(
        key="memory_used",
        translation_key="memory_used",
        native_unit_of_measurement=PERCENTAGE,
        state_class=M,
        suggested_display_precision=1,
        value_fn=lambda r: r.memory_used_percent,
    ),
    HostSensorDescription(
        key="memory_available",
        translation_key="memory_available",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=2,
        state_class=M,
        value_fn=lambda r: r.memory_available_bytes,
    ),
    HostSensorDescription(
        key="swap_used",
        translation_key="swap_used",
        native_unit_of_measurement=PERCENTAGE,
        state_class=M,
        suggested_display_precision=1,
        value_fn=lambda r: r.swap_used_percent,
    ),
    HostSensorDescription(
        key="cpu_temperature",
        translation_key="cpu_temperature_max",
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=M,
        suggested_display_precision=1,
        value_fn=lambda r: r.cpu_temperature,
    ),
    HostSensorDescription(
        key="boot_time",
        translation_key="boot_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_boot_time,
    ),
    HostSensorDescription(
        key="arc_size",
        translation_key="arc_size",
        value_fn=lambda r: r.proxmox.arc_size_bytes,
        **_BYTES,  # type: ignore[arg-type]
    ),
    HostSensorDescription(
        key="memory_used_without_arc",
        translation_key="memory_used_without_arc",
        native_unit_of_measurement=PERCENTAGE,
        state_class=M,
        suggested_display_precision=1,
        value_fn=lambda r: r.memory_used_without_arc_percent,
    ),
    HostSensorDescription(
        key="guests_running",
        translation_key="guests_running",
        state_class=M,
        value_fn=lambda r: r.proxmox.guests_with("running"),
    ),
    HostSensorDescription(
        key="guests_stopped",
        translation_key="guests_stopped",
        state_class=M,
        value_fn=lambda r: r.proxmox.guests_with("stopped"),
    ),
    HostSensorDescription(
        key="updates_pending",
        translation_key="updates_pending",
        state_class=M,
        value_fn=lambda r: r.proxmox.updates_pending,
    ),
)

# Readings kept per name (mountpoint, interface, disk): the map, and its sensor.
KeyedValues = Callable[[HostReadings], dict[str, float]]

FILESYSTEM_USED = SensorEntityDescription(
    key="filesystem_used",
    translation_key="filesystem_used",
    native_unit_of_measurement=PERCENTAGE,
    state_class=M,
    suggested_display_precision=1,
)
_RATE = {
    "device_class": SensorDeviceClass.DATA_RATE,
    "native_unit_of_measurement": UnitOfDataRate.BYTES_PER_SECOND,
    "state_class": M,
    "suggested_display_precision": 2,
}
NETWORK_IN = SensorEntityDescription(
    key="network_in",
    translation_key="network_in",
    suggested_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
    **_RATE,  # type: ignore[arg-type]
)
NETWORK_OUT = SensorEntityDescription(
    key="network_out",
    translation_key="network_out",
    suggested_unit_of_measurement=UnitOfDataRate.MEGABITS_PER_SECOND,
    **_RATE,  # type: ignore[arg-type]
)
DISK_READ = SensorEntityDescription(
    key="disk_read",
    translation_key="disk_read",
    suggested_unit_of_measurement=UnitOfDataRate.MEGABYTES_PER_SECOND,
    **_RATE,  # type: ignore[arg-type]
)
DISK_WRITE = SensorEntityDescription(
    key="disk_write",
    translation_key="disk_write",
    suggested_unit_of_measurement=UnitOfDataRate.MEGABYTES_PER_SECOND,
    **_RATE,  # type: ignore[arg-type]
)
STORAGE_USED = SensorEntityDescription(
    key="storage_used",
    translation_key="storage_used",
    native_unit_of_measurement=PERCENTAGE,
    state_class=M,
    suggested_display_precision=1,
)
KEYED: tuple[tuple[SensorEntityDescription, str, KeyedValues], ...] = (
    (FILESYSTEM_USED, "mountpoint", lambda r: r.filesystem_used_percent),
    (STORAGE_USED, "storage", lambda r: r.proxmox.storage_used_percent),
    (NETWORK_IN, "device", lambda r: r.network_in),
    (NETWORK_OUT, "device", lambda r: r.network_out),
    (DISK_READ, "device", lambda r: r.disk_read),
    (DISK_WRITE, "device", lambda r: r.disk_write),
)
TEMPERATURE = SensorEntityDescription(
    key="temperature",
    translation_key="host_temperature",
    device_class=SensorDeviceClass.TEMPERATURE,
    native_unit_of_measurement=UnitOfTemperature.CELSIUS,
    state_class=M,
    suggested_display_precision=1,
)


@dataclass(frozen=True, kw_only=True)
class PoolSensorDescription(SensorEntityDescription):
    value_fn: Callable[[Pool], StateType | datetime]


POOL_SENSORS: tuple[PoolSensorDescription, ...] = (
    PoolSensorDescription(
        key="pool_capacity",
        translation_key="pool_capacity",
        native_unit_of_measurement=PERCENTAGE,
        state_class=M,
        suggested_display_precision=1,
        value_fn=lambda p: p.capacity_percent,
    ),
    PoolSensorDescription(
        key="pool_fragmentation",
        translation_key="pool_fragmentation",
        native_unit_of_measurement=PERCENTAGE,
        state_class=M,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda p: p.fragmentation_percent,
    ),
    PoolSensorDescription(
        key="pool_last_scrub",
        translation_key="pool_last_scrub",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda p: _timestamp(p.last_scrub),
    ),
)


@dataclass(frozen=True, kw_only=True)
class GuestSensorDescription(SensorEntityDescription):
    value_fn: Callable[[Guest, ProxmoxReadings], StateType | datetime]


GUEST_SENSORS: tuple[GuestSensorDescription, ...] = (
    GuestSensorDescription(
        key="cpu_usage",
        translation_key="guest_cpu_usage",
        native_unit_of_measurement=PERCENTAGE,
        state_class=M,
        suggested_display_precision=1,
        value_fn=lambda g, _: g.cpu_percent,
    ),
    GuestSensorDescription(
        key="memory_used",
        translation_key="guest_memory_used",
        value_fn=lambda g, _: g.memory_used_bytes,
        **_BYTES,  # type: ignore[arg-type]
    ),
    GuestSensorDescription(
        key="disk_used",
        translation_key="guest_disk_used",
        value_fn=lambda g, _: g.disk_used_bytes,
        **_BYTES,  # type: ignore[arg-type]
    ),
    GuestSensorDescription(
        key="last_backup",
        translation_key="guest_last_backup",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda g, p: _timestamp(p.last_backup.get(g.id)),
    ),
)


class HostSensor(AgentEntity, SensorEntity):
    entity_description: HostSensorDescription

    def __init__(
        self, coordinator: AgentsCoordinator, host: str, description: HostSensorDescription
    ) -> None:
        super().__init__(coordinator, host, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType | datetime:
        readings = self.readings
        return self.entity_description.value_fn(readings) if readings else None


class KeyedSensor(AgentEntity, SensorEntity):
    """One of several of its kind on a host: a filesystem, an interface, a disk."""

    def __init__(
        self,
        coordinator: AgentsCoordinator,
        host: str,
        description: SensorEntityDescription,
        placeholder: str,
        name: str,
        values: KeyedValues,
    ) -> None:
        super().__init__(coordinator, host, f"{description.key}_{name}")
        self.entity_description = description
        self._attr_translation_placeholders = {placeholder: name}
        self._name = name
        self._values = values

    @property
    def available(self) -> bool:
        """Unavailable once the host no longer reports it (a storage removed in PVE)."""
        readings = self.readings
        return super().available and readings is not None and self._name in self._values(readings)

    @property
    def native_value(self) -> float | None:
        readings = self.readings
        return self._values(readings).get(self._name) if readings else None


class TemperatureSensor(AgentEntity, SensorEntity):
    entity_description = TEMPERATURE

    def __init__(self, coordinator: AgentsCoordinator, host: str, key: TemperatureKey) -> None:
        chip, sensor = key
        super().__init__(coordinator, host, f"temperature_{chip}_{sensor}")
        self._key = key
        self._attr_translation_placeholders = {"chip": chip, "sensor": sensor}

    @property
    def native_value(self) -> float | None:
        readings = self.readings
        return readings.temperatures.get(self._key) if readings else None


class PoolSensor(AgentEntity, SensorEntity):
    entity_description: PoolSensorDescription

    def __init__(
        self,
        coordinator: AgentsCoordinator,
        host: str,
        description: PoolSensorDescription,
        pool: str,
    ) -> None:
        super().__init__(coordinator, host, f"{description.key}_{pool}")
        self.entity_description = description
        self._attr_translation_placeholders = {"pool": pool}
        self._pool = pool

    @property
    def available(self) -> bool:
        """Unavailable once zpool no longer lists the pool (exported, destroyed)."""
        return super().available and pool_of(self.readings, self._pool) is not None

    @property
    def native_value(self) -> StateType | datetime:
        pool = pool_of(self.readings, self._pool)
        return self.entity_description.value_fn(pool) if pool else None


class GuestSensor(GuestEntity, SensorEntity):
    entity_description: GuestSensorDescription

    def __init__(
        self,
        coordinator: AgentsCoordinator,
        host: str,
        guest: Guest,
        description: GuestSensorDescription,
    ) -> None:
        super().__init__(coordinator, host, guest, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> StateType | datetime:
        readings, guest = self.readings, self.guest
        if readings is None or guest is None:
            return None
        return self.entity_description.value_fn(guest, readings.proxmox)


def _proxmox_sensors(
    coordinator: AgentsCoordinator, host: str, r: HostReadings
) -> Iterator[Candidate]:
    proxmox = r.proxmox
    for name, pool in proxmox.pools.items():
        for description in POOL_SENSORS:
            if description.value_fn(pool) is not None:
                yield (
                    f"{description.key}_{name}",
                    partial(PoolSensor, coordinator, host, description, name),
                )
    for guest_id, guest in proxmox.guests.items():
        if not coordinator.shows_guest(host, guest_id):
            continue
        for guest_description in GUEST_SENSORS:
            if guest_description.value_fn(guest, proxmox) is not None:
                yield (
                    f"guest/{guest_id}/{guest_description.key}",
                    partial(GuestSensor, coordinator, host, guest, guest_description),
                )


def _sensors(coordinator: AgentsCoordinator, host: str, r: HostReadings) -> Iterator[Candidate]:
    for description in HOST_SENSORS:
        if description.value_fn(r) is not None:
            yield description.key, partial(HostSensor, coordinator, host, description)
    for keyed, placeholder, values in KEYED:
        for name in values(r):
            yield (
                f"{keyed.key}_{name}",
                partial(KeyedSensor, coordinator, host, keyed, placeholder, name, values),
            )
    for key in r.temperatures:
        yield f"temperature_{key}", partial(TemperatureSensor, coordinator, host, key)
    yield from _proxmox_sensors(coordinator, host, r)


def async_setup_sensors(
    coordinator: AgentsCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    return add_entities_as_they_appear(coordinator, async_add_entities, _sensors)
