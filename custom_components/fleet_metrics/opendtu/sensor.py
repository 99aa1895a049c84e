"""OpenDTU sensors: DTU totals, inverter values, and one set per DC string."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
    UnitOfReactivePower,
    UnitOfTemperature,
    UnitOfTime,
)
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from ..core.sources.opendtu.models import DtuSnapshot, Inverter
from .coordinator import OpenDtuCoordinator
from .entity import OpenDtuEntity, OpenDtuInverterEntity, add_inverter_entities_as_they_appear


@dataclass(frozen=True, kw_only=True)
class DtuSensorDescription(SensorEntityDescription):
    value_fn: Callable[[DtuSnapshot], float | None]


@dataclass(frozen=True, kw_only=True)
class InverterSensorDescription(SensorEntityDescription):
    value_fn: Callable[[Inverter], float | None]
    available_when_unreachable: bool = False


def _common(
    key: str,
    device_class: SensorDeviceClass | None,
    unit: str | None,
    state_class: SensorStateClass,
    diagnostic: bool,
    enabled: bool,
) -> dict[str, Any]:
    return {
        "key": key,
        "translation_key": key,
        "device_class": device_class,
        "native_unit_of_measurement": unit,
        "state_class": state_class,
        "entity_category": EntityCategory.DIAGNOSTIC if diagnostic else None,
        "entity_registry_enabled_default": enabled,
    }


def _dtu(
    key: str,
    value_fn: Callable[[DtuSnapshot], float | None],
    device_class: SensorDeviceClass | None,
    unit: str | None,
    state_class: SensorStateClass = SensorStateClass.MEASUREMENT,
    *,
    diagnostic: bool = False,
    enabled: bool = True,
) -> DtuSensorDescription:
    common = _common(key, device_class, unit, state_class, diagnostic, enabled)
    return DtuSensorDescription(**common, value_fn=value_fn)


def _inverter(
    key: str,
    value_fn: Callable[[Inverter], float | None],
    device_class: SensorDeviceClass | None,
    unit: str | None,
    state_class: SensorStateClass = SensorStateClass.MEASUREMENT,
    *,
    diagnostic: bool = False,
    enabled: bool = True,
    keep_when_unreachable: bool = False,
) -> InverterSensorDescription:
    common = _common(key, device_class, unit, state_class, diagnostic, enabled)
    return InverterSensorDescription(
        **common, available_when_unreachable=keep_when_unreachable, value_fn=value_fn
    )


def _value(key: str) -> Callable[[Inverter], float | None]:
    return lambda inverter: inverter.values.get(key)


POWER = (SensorDeviceClass.POWER, UnitOfPower.WATT)
ENERGY_WH = (SensorDeviceClass.ENERGY, UnitOfEnergy.WATT_HOUR, SensorStateClass.TOTAL_INCREASING)
ENERGY_KWH = (
    SensorDeviceClass.ENERGY,
    UnitOfEnergy.KILO_WATT_HOUR,
    SensorStateClass.TOTAL_INCREASING,
)
DURATION = (SensorDeviceClass.DURATION, UnitOfTime.SECONDS)
TEMPERATURE = (SensorDeviceClass.TEMPERATURE, UnitOfTemperature.CELSIUS)

DTU_SENSORS: tuple[DtuSensorDescription, ...] = (
    _dtu("total_power", lambda s: s.total.power, *POWER),
    _dtu("total_yield_day", lambda s: s.total.yield_day, *ENERGY_WH),
    _dtu("total_yield_total", lambda s: s.total.yield_total, *ENERGY_KWH),
    _dtu("uptime", lambda s: s.system.uptime, *DURATION, diagnostic=True, enabled=False),
    _dtu("cpu_temperature", lambda s: s.system.cpu_temperature, *TEMPERATURE, diagnostic=True),
)

INVERTER_SENSORS: tuple[InverterSensorDescription, ...] = (
    _inverter("power", _value("power"), *POWER),
    _inverter("power_dc", _value("power_dc"), *POWER),
    _inverter(
        "voltage", _value("voltage"), SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.VOLT
    ),
    _inverter(
        "current", _value("current"), SensorDeviceClass.CURRENT, UnitOfElectricCurrent.AMPERE
    ),
    _inverter("frequency", _value("frequency"), SensorDeviceClass.FREQUENCY, UnitOfFrequency.HERTZ),
    _inverter("power_factor", _value("power_factor"), SensorDeviceClass.POWER_FACTOR, None),
    _inverter(
        "reactive_power",
        _value("reactive_power"),
        SensorDeviceClass.REACTIVE_POWER,
        UnitOfReactivePower.VOLT_AMPERE_REACTIVE,
    ),
    _inverter("temperature", _value("temperature"), *TEMPERATURE),
    _inverter("efficiency", _value("efficiency"), None, PERCENTAGE),
    _inverter("yield_day", _value("yield_day"), *ENERGY_WH, keep_when_unreachable=True),
    _inverter("yield_total", _value("yield_total"), *ENERGY_KWH, keep_when_unreachable=True),
    _inverter(
        "limit_relative",
        lambda i: i.limit_relative,
        None,
        PERCENTAGE,
        diagnostic=True,
        keep_when_unreachable=True,
    ),
    _inverter(
        "limit_absolute",
        lambda i: i.limit_absolute,
        *POWER,
        diagnostic=True,
        keep_when_unreachable=True,
    ),
    _inverter(
        "data_age",
        lambda i: i.data_age,
        *DURATION,
        diagnostic=True,
        enabled=False,
        keep_when_unreachable=True,
    ),
    _inverter(
        "rssi",
        lambda i: i.rssi,
        SensorDeviceClass.SIGNAL_STRENGTH,
        SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        diagnostic=True,
        enabled=False,
    ),
)

# DC string values: (key, device class, unit, state class)
STRING_SENSORS: tuple[tuple[str, SensorDeviceClass, str, SensorStateClass], ...] = (
    ("power", SensorDeviceClass.POWER, UnitOfPower.WATT, SensorStateClass.MEASUREMENT),
    (
        "voltage",
        SensorDeviceClass.VOLTAGE,
        UnitOfElectricPotential.VOLT,
        SensorStateClass.MEASUREMENT,
    ),
    (
        "current",
        SensorDeviceClass.CURRENT,
        UnitOfElectricCurrent.AMPERE,
        SensorStateClass.MEASUREMENT,
    ),
    (
        "yield_day",
        SensorDeviceClass.ENERGY,
        UnitOfEnergy.WATT_HOUR,
        SensorStateClass.TOTAL_INCREASING,
    ),
    (
        "yield_total",
        SensorDeviceClass.ENERGY,
        UnitOfEnergy.KILO_WATT_HOUR,
        SensorStateClass.TOTAL_INCREASING,
    ),
)


class DtuSensor(OpenDtuEntity, SensorEntity):
    entity_description: DtuSensorDescription

    @property
    def native_value(self) -> float | None:
        return self.entity_description.value_fn(self.coordinator.data)


class InverterSensor(OpenDtuInverterEntity, SensorEntity):
    entity_description: InverterSensorDescription

    @property
    def native_value(self) -> float | None:
        inverter = self.inverter
        return self.entity_description.value_fn(inverter) if inverter else None


class StringSensor(OpenDtuInverterEntity, SensorEntity):
    """One value of one DC input; named after the string's name in OpenDTU, or its number."""

    def __init__(
        self,
        coordinator: OpenDtuCoordinator,
        inverter: Inverter,
        index: int,
        spec: tuple[str, SensorDeviceClass, str, SensorStateClass],
    ) -> None:
        value_key, device_class, unit, state_class = spec
        description = SensorEntityDescription(
            key=f"string_{index}_{value_key}",
            translation_key=f"string_{value_key}",
            device_class=device_class,
            native_unit_of_measurement=unit,
            state_class=state_class,
        )
        energy = device_class is SensorDeviceClass.ENERGY
        super().__init__(coordinator, inverter, description, available_when_unreachable=energy)
        self._index = index
        self._value_key = value_key
        string = inverter.strings[index]
        self._attr_translation_placeholders = {"string": string.name or str(index + 1)}

    @property
    def native_value(self) -> float | None:
        inverter = self.inverter
        string = inverter.strings.get(self._index) if inverter else None
        return string.values.get(self._value_key) if string else None


def inverter_sensors(coordinator: OpenDtuCoordinator, inverter: Inverter) -> list[SensorEntity]:
    entities: list[SensorEntity] = [
        InverterSensor(coordinator, inverter, description, description.available_when_unreachable)
        for description in INVERTER_SENSORS
        if description.value_fn(inverter) is not None
    ]
    for index, string in sorted(inverter.strings.items()):
        entities.extend(
            StringSensor(coordinator, inverter, index, spec)
            for spec in STRING_SENSORS
            if spec[0] in string.values
        )
    return entities


def async_setup_sensors(
    coordinator: OpenDtuCoordinator, async_add_entities: AddConfigEntryEntitiesCallback
) -> Callable[[], None]:
    """Add DTU and inverter sensors now, and those of inverters that appear later."""
    async_add_entities(
        DtuSensor(coordinator, description)
        for description in DTU_SENSORS
        if description.value_fn(coordinator.data) is not None
    )
    return add_inverter_entities_as_they_appear(
        coordinator, async_add_entities, lambda inverter: inverter_sensors(coordinator, inverter)
    )
