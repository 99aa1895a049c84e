"""Tasmota entities belong to a device known by MAC (discovery) or, failing that, by topic."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from homeassistant.core import callback
from homeassistant.helpers.device_registry import CONNECTION_NETWORK_MAC, DeviceInfo, format_mac
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from ..const import CONF_EXCLUDED_DEVICES, DOMAIN
from ..core.sample import FieldValue
from ..core.sources.tasmota.telemetry import Reading
from ..core.sources.tasmota.tracker import DeviceState, ReadingKey
from .coordinator import TasmotaCoordinator


def device_key(state: DeviceState) -> str:
    return state.mac or state.topic


def device_identifier(state: DeviceState) -> tuple[str, str]:
    return (DOMAIN, f"tasmota_{device_key(state)}")


def known_readings(state: DeviceState) -> dict[ReadingKey, Reading]:
    """Every reading a device has shown: by telemetry, or only in its discovery snapshot."""
    return {**state.snapshot, **state.readings}


def reading_value(
    state: DeviceState, key: ReadingKey, field: str
) -> tuple[FieldValue | None, bool]:
    """A field's value, and whether it came from telemetry (fresh) or the discovery snapshot."""
    reading = state.readings.get(key)
    if reading is not None:
        return reading.fields.get(field), True
    snapshot = state.snapshot.get(key)
    return (snapshot.fields.get(field) if snapshot else None), False


def relay_names(state: DeviceState) -> list[str]:
    """Relays reported so far, and those discovery announced (POWER1..N, numbered from 1)."""
    announced = state.device.relays if state.device else 0
    names = dict.fromkeys(str(index) for index in range(1, announced + 1))
    names.update(dict.fromkeys(state.relays))
    return list(names)


def device_info(state: DeviceState) -> DeviceInfo:
    """Our own device for each Tasmota. Identified by our identifier, never by the MAC: the
    MAC connection merges with HA's Tasmota integration's device only before HA 2026.8."""
    device = state.device
    mac = state.mac
    return DeviceInfo(
        identifiers={device_identifier(state)},
        connections={(CONNECTION_NETWORK_MAC, format_mac(mac))} if mac else set(),
        name=state.name,
        manufacturer="Tasmota",
        model=device.model if device else None,
        sw_version=device.firmware if device else None,
        configuration_url=f"http://{device.ip}" if device and device.ip else None,
    )


class TasmotaEntity(CoordinatorEntity[TasmotaCoordinator]):
    """Unavailable while the broker is down or the device's LWT says it is offline."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: TasmotaCoordinator, state: DeviceState, key: str) -> None:
        super().__init__(coordinator)
        self._topic = state.topic
        self._attr_unique_id = f"tasmota_{device_key(state)}_{key}"
        self._attr_device_info = device_info(state)

    @property
    def device_state(self) -> DeviceState | None:
        return self.coordinator.data.get(self._topic)

    @property
    def available(self) -> bool:
        state = self.device_state
        return super().available and state is not None and state.online is not False


def add_entities_as_they_appear(
    coordinator: TasmotaCoordinator,
    async_add_entities: AddConfigEntryEntitiesCallback,
    entities_for: Callable[[TasmotaCoordinator, DeviceState], Sequence[Entity]],
) -> Callable[[], None]:
    """Add the entities of every device seen so far, then of whatever each update brings.

    Updates come up to once a second, so entities are only built for devices whose shape
    changed since the last look. Devices the user excluded in the options get none.
    """
    known: set[str | None] = set()
    shapes: dict[str, tuple[object, ...]] = {}
    excluded = set(coordinator.config_entry.options.get(CONF_EXCLUDED_DEVICES, []))

    @callback
    def add_new() -> None:
        changed = []
        for topic, state in list(coordinator.data.items()):
            shape = _shape(state)
            if shapes.get(topic) != shape:
                shapes[topic] = shape
                changed.append(state)
        new = [
            entity
            for state in changed
            if device_key(state) not in excluded
            for entity in entities_for(coordinator, state)
            if entity.unique_id not in known
        ]
        known.update(entity.unique_id for entity in new)
        if new:
            async_add_entities(new)

    add_new()
    return coordinator.async_add_listener(add_new)


def _shape(state: DeviceState) -> tuple[object, ...]:
    """Changes whenever a device could need a new entity: new readings, fields, relays."""
    readings = known_readings(state).items()
    fields = tuple((key, tuple(reading.fields)) for key, reading in readings)
    return (state.mac, fields, tuple(state.health), tuple(relay_names(state)))
