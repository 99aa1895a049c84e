"""Tasmota sensors, created as readings appear: one per field of each sensor (and phase)."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.components.sensor import SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..core.sources.tasmota.tracker import DeviceState, ReadingKey
from .coordinator import TasmotaCoordinator
from .entity import TasmotaEntity, add_entities_as_they_appear
from .fields import HEALTH_FIELDS, SENSOR_FIELDS, FieldSpec


def reading_label(tags: dict[str, str]) -> str:
    """``ENERGY`` phase 2 -> ``Energy L2``; ``DS18B20-1`` stays as it is."""
    sensor = tags.get("sensor", "")
    label = "Energy" if sensor == "ENERGY" else sensor
    return f"{label} L{tags['phase']}" if "phase" in tags else label


class _FieldSensor(TasmotaEntity, SensorEntity):
    def _describe(self, spec: FieldSpec | None, fallback_name: str) -> None:
        self._factor = spec.factor if spec else 1.0
        if spec is None:
            self._attr_name = fallback_name
            self._attr_state_class = SensorStateClass.MEASUREMENT
            return
        self._attr_translation_key = spec.translation_key
        self._attr_device_class = spec.device_class
        self._attr_native_unit_of_measurement = spec.unit
        self._attr_state_class = spec.state_class
        self._attr_entity_category = EntityCategory.DIAGNOSTIC if spec.diagnostic else None
        self._attr_entity_registry_enabled_default = spec.enabled

    def _scaled(self, value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return round(value * self._factor, 6) if self._factor != 1.0 else value


class ReadingSensor(_FieldSensor):
    def __init__(
        self,
        coordinator: TasmotaCoordinator,
        state: DeviceState,
        reading_key: ReadingKey,
        field: str,
    ) -> None:
        measurement, tag_items = reading_key
        tags = dict(tag_items)
        suffix = "_".join(value for _, value in tag_items)
        super().__init__(coordinator, state, f"{measurement}_{suffix}_{field}")
        self._reading_key = reading_key
        self._field = field
        label = reading_label(tags)
        self._describe(SENSOR_FIELDS.get(field), f"{label} {field.replace('_', ' ')}")
        self._attr_translation_placeholders = {"sensor": label}

    @property
    def native_value(self) -> float | None:
        state = self.device_state
        reading = state.readings.get(self._reading_key) if state else None
        return self._scaled(reading.fields.get(self._field)) if reading else None


class HealthSensor(_FieldSensor):
    def __init__(self, coordinator: TasmotaCoordinator, state: DeviceState, field: str) -> None:
        super().__init__(coordinator, state, f"health_{field}")
        self._field = field
        self._describe(HEALTH_FIELDS[field], field)

    @property
    def native_value(self) -> float | None:
        state = self.device_state
        return self._scaled(state.health.get(self._field)) if state else None


def _new_sensors(coordinator: TasmotaCoordinator, state: DeviceState) -> list[_FieldSensor]:
    entities: list[_FieldSensor] = [
        ReadingSensor(coordinator, state, key, field)
        for key, reading in state.readings.items()
        if key[0] != "tasmota_switch"
        for field, value in reading.fields.items()
        if not isinstance(value, bool)
    ]
    entities += [HealthSensor(coordinator, state, f) for f in state.health if f in HEALTH_FIELDS]
    return entities


def async_setup_sensors(
    coordinator: TasmotaCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    return add_entities_as_they_appear(coordinator, async_add_entities, _new_sensors)
