"""Tasmota sensors: one per field of each sensor (and phase), from discovery or telemetry.

A device's retained discovery ``sensors`` message lists its sensors with a snapshot of their
readings, so after a restart every sensor exists as soon as the broker hands that message
over, not at the device's next telemetry (TelePeriod, 5 minutes by default). Until fresh
telemetry arrives a sensor shows the state it had before the restart, or the snapshot's
value when it has none: the snapshot is as old as the device's last boot, the restored
state only as old as the restart, and an older (lower) energy total after a newer one would
read as a meter reset to HA's statistics.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from homeassistant.components.sensor import RestoreSensor, SensorEntity, SensorStateClass
from homeassistant.const import EntityCategory
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..core.sources.tasmota.tracker import DeviceState, ReadingKey
from .coordinator import TasmotaCoordinator
from .entity import TasmotaEntity, add_entities_as_they_appear, known_readings, reading_value
from .fields import HEALTH_FIELDS, SENSOR_FIELDS, FieldSpec


def sensor_label(tags: dict[str, str]) -> str:
    """``ENERGY`` -> ``Energy``; ``DS18B20-1`` stays as it is."""
    sensor = tags.get("sensor", "")
    return "Energy" if sensor == "ENERGY" else sensor


def readable(field: str) -> str:
    """A field the integration has no name for, as words: ``foo_bar`` -> ``foo bar``.

    The core names such fields from the device's key (``FooBar`` -> ``foo_bar``) and adds a
    unit suffix only to the fields it knows, each of which has a FieldSpec here.
    """
    return field.replace("_", " ")


class _FieldSensor(TasmotaEntity, SensorEntity):
    def _describe(self, spec: FieldSpec | None, fallback_name: str, phased: bool = False) -> None:
        self._factor = spec.factor if spec else 1.0
        if spec is None:
            # Unknown: a readable name, no unit or device class (none is known), and kept
            # in statistics as HA's own Tasmota integration keeps unknown numbers.
            self._attr_name = fallback_name
            self._attr_state_class = SensorStateClass.MEASUREMENT
            return
        self._attr_translation_key = spec.phase_translation_key if phased else spec.translation_key
        self._attr_device_class = spec.device_class
        self._attr_native_unit_of_measurement = spec.unit
        self._attr_state_class = spec.state_class
        self._attr_entity_category = EntityCategory.DIAGNOSTIC if spec.diagnostic else None
        self._attr_entity_registry_enabled_default = spec.enabled

    def _scaled(self, value: object) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return round(value * self._factor, 6) if self._factor != 1.0 else value


class ReadingSensor(_FieldSensor, RestoreSensor):
    """One field of one reading; telemetry first, then the restored state, then discovery."""

    _restored: float | None = None

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
        label = sensor_label(tags)
        phase = f"L{tags['phase']}" if "phase" in tags else None
        fallback = f"{label} {readable(field)}" + (f" {phase}" if phase else "")
        self._describe(SENSOR_FIELDS.get(field), fallback, phased=phase is not None)
        self._attr_translation_placeholders = {"sensor": label}
        if phase:
            self._attr_translation_placeholders["phase"] = phase

    async def async_added_to_hass(self) -> None:
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        if last is None or last.native_unit_of_measurement != self.native_unit_of_measurement:
            return  # nothing saved, or saved in a unit this sensor no longer has
        value = last.native_value
        if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            self._restored = float(value)

    @property
    def native_value(self) -> float | None:
        state = self.device_state
        if state is None:
            return None
        value, fresh = reading_value(state, self._reading_key, self._field)
        if not fresh and self._restored is not None:
            return self._restored
        return self._scaled(value)


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
        for key, reading in known_readings(state).items()
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
