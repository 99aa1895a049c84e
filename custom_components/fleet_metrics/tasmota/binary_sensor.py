"""Tasmota binary sensors: LWT connectivity, relay states and switch inputs."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.const import EntityCategory
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..core.sources.tasmota.tracker import DeviceState, ReadingKey
from .coordinator import TasmotaCoordinator
from .entity import TasmotaEntity, add_entities_as_they_appear


class ConnectivitySensor(TasmotaEntity, BinarySensorEntity):
    """What the device's LWT says; available whenever the broker is, as that is its job."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC
    _attr_translation_key = "connectivity"

    def __init__(self, coordinator: TasmotaCoordinator, state: DeviceState) -> None:
        super().__init__(coordinator, state, "online")

    @property
    def available(self) -> bool:
        return self.coordinator.last_update_success and self.device_state is not None

    @property
    def is_on(self) -> bool | None:
        state = self.device_state
        return state.online if state else None


class RelaySensor(TasmotaEntity, BinarySensorEntity):
    _attr_device_class = BinarySensorDeviceClass.POWER
    _attr_translation_key = "relay"

    def __init__(self, coordinator: TasmotaCoordinator, state: DeviceState, relay: str) -> None:
        super().__init__(coordinator, state, f"relay_{relay}")
        self._relay = relay
        self._attr_translation_placeholders = {"relay": relay}

    @property
    def is_on(self) -> bool | None:
        state = self.device_state
        return state.relays.get(self._relay) if state else None


class SwitchInputSensor(TasmotaEntity, BinarySensorEntity):
    _attr_translation_key = "switch_input"

    def __init__(
        self, coordinator: TasmotaCoordinator, state: DeviceState, reading_key: ReadingKey
    ) -> None:
        name = dict(reading_key[1])["switch"]
        super().__init__(coordinator, state, f"switch_{name}")
        self._reading_key = reading_key
        self._attr_translation_placeholders = {"switch": name}

    @property
    def is_on(self) -> bool | None:
        state = self.device_state
        reading = state.readings.get(self._reading_key) if state else None
        value = reading.fields.get("on") if reading else None
        return value if isinstance(value, bool) else None


def _new_binary_sensors(coordinator: TasmotaCoordinator, state: DeviceState) -> list[TasmotaEntity]:
    entities: list[TasmotaEntity] = [ConnectivitySensor(coordinator, state)]
    entities += [RelaySensor(coordinator, state, relay) for relay in state.relays]
    entities += [
        SwitchInputSensor(coordinator, state, key)
        for key in state.readings
        if key[0] == "tasmota_switch"
    ]
    return entities


def async_setup_binary_sensors(
    coordinator: TasmotaCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    return add_entities_as_they_appear(coordinator, async_add_entities, _new_binary_sensors)
