"""Tasmota binary sensors: LWT connectivity, relay states and switch inputs.

Relays announced by discovery and switches in its snapshot exist from the start; until the
device reports them they show their state from before the restart, as sensors do.
"""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.const import STATE_OFF, STATE_ON, EntityCategory
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from ..core.sources.tasmota.tracker import DeviceState, ReadingKey
from .coordinator import TasmotaCoordinator
from .entity import (
    TasmotaEntity,
    add_entities_as_they_appear,
    known_readings,
    reading_value,
    relay_names,
)


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


class _RestoredOnOff(TasmotaEntity, RestoreEntity):
    """Keeps the on/off state from before a restart, for as long as nothing newer is known."""

    _restored: bool | None = None

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        if last is not None and last.state in (STATE_ON, STATE_OFF):
            self._restored = last.state == STATE_ON


class RelaySensor(_RestoredOnOff, BinarySensorEntity):
    _attr_device_class = BinarySensorDeviceClass.POWER
    _attr_translation_key = "relay"

    def __init__(self, coordinator: TasmotaCoordinator, state: DeviceState, relay: str) -> None:
        super().__init__(coordinator, state, f"relay_{relay}")
        self._relay = relay
        self._attr_translation_placeholders = {"relay": relay}

    @property
    def is_on(self) -> bool | None:
        state = self.device_state
        if state is None:
            return None
        on = state.relays.get(self._relay)
        return self._restored if on is None else on


class SwitchInputSensor(_RestoredOnOff, BinarySensorEntity):
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
        if state is None:
            return None
        value, fresh = reading_value(state, self._reading_key, "on")
        if not fresh and self._restored is not None:
            return self._restored
        return value if isinstance(value, bool) else None


def _new_binary_sensors(coordinator: TasmotaCoordinator, state: DeviceState) -> list[TasmotaEntity]:
    entities: list[TasmotaEntity] = [ConnectivitySensor(coordinator, state)]
    entities += [RelaySensor(coordinator, state, relay) for relay in relay_names(state)]
    entities += [
        SwitchInputSensor(coordinator, state, key)
        for key in known_readings(state)
        if key[0] == "tasmota_switch"
    ]
    return entities


def async_setup_binary_sensors(
    coordinator: TasmotaCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    return add_entities_as_they_appear(coordinator, async_add_entities, _new_binary_sensors)
