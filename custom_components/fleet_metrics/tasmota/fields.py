"""How a core field (base units) is shown in Home Assistant: class, unit, state class, scale."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    LIGHT_LUX,
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    UnitOfApparentPower,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfInformation,
    UnitOfPower,
    UnitOfPressure,
    UnitOfReactivePower,
    UnitOfTemperature,
    UnitOfTime,
)

M = SensorStateClass.MEASUREMENT
TOTAL_INC = SensorStateClass.TOTAL_INCREASING
J_TO_KWH = 1 / 3_600_000


@dataclass(frozen=True, slots=True)
class FieldSpec:
    translation_key: str
    device_class: SensorDeviceClass | None
    unit: str | None
    state_class: SensorStateClass | None = M
    factor: float = 1.0
    diagnostic: bool = False
    enabled: bool = True


SENSOR_FIELDS: dict[str, FieldSpec] = {
    "power_watts": FieldSpec("reading_power", SensorDeviceClass.POWER, UnitOfPower.WATT),
    "apparent_power_volt_amperes": FieldSpec(
        "reading_apparent_power", SensorDeviceClass.APPARENT_POWER, UnitOfApparentPower.VOLT_AMPERE
    ),
    "reactive_power_volt_amperes_reactive": FieldSpec(
        "reading_reactive_power",
        SensorDeviceClass.REACTIVE_POWER,
        UnitOfReactivePower.VOLT_AMPERE_REACTIVE,
    ),
    "power_factor_ratio": FieldSpec("reading_power_factor", SensorDeviceClass.POWER_FACTOR, None),
    "voltage_volts": FieldSpec(
        "reading_voltage", SensorDeviceClass.VOLTAGE, UnitOfElectricPotential.VOLT
    ),
    "current_amperes": FieldSpec(
        "reading_current", SensorDeviceClass.CURRENT, UnitOfElectricCurrent.AMPERE
    ),
    "frequency_hertz": FieldSpec(
        "reading_frequency", SensorDeviceClass.FREQUENCY, UnitOfFrequency.HERTZ
    ),
    "total_joules": FieldSpec(
        "reading_energy_total",
        SensorDeviceClass.ENERGY,
        UnitOfEnergy.KILO_WATT_HOUR,
        TOTAL_INC,
        J_TO_KWH,
    ),
    "today_joules": FieldSpec(
        "reading_energy_today",
        SensorDeviceClass.ENERGY,
        UnitOfEnergy.KILO_WATT_HOUR,
        TOTAL_INC,
        J_TO_KWH,
    ),
    "yesterday_joules": FieldSpec(
        "reading_energy_yesterday",
        SensorDeviceClass.ENERGY,
        UnitOfEnergy.KILO_WATT_HOUR,
        SensorStateClass.TOTAL,
        J_TO_KWH,
    ),
    "import_active_joules": FieldSpec(
        "reading_energy_import",
        SensorDeviceClass.ENERGY,
        UnitOfEnergy.KILO_WATT_HOUR,
        TOTAL_INC,
        J_TO_KWH,
    ),
    "export_active_joules": FieldSpec(
        "reading_energy_export",
        SensorDeviceClass.ENERGY,
        UnitOfEnergy.KILO_WATT_HOUR,
        TOTAL_INC,
        J_TO_KWH,
    ),
    "temperature_celsius": FieldSpec(
        "reading_temperature", SensorDeviceClass.TEMPERATURE, UnitOfTemperature.CELSIUS
    ),
    "dew_point_celsius": FieldSpec(
        "reading_dew_point", SensorDeviceClass.TEMPERATURE, UnitOfTemperature.CELSIUS
    ),
    "humidity_ratio": FieldSpec(
        "reading_humidity", SensorDeviceClass.HUMIDITY, PERCENTAGE, factor=100
    ),
    "pressure_pascals": FieldSpec(
        "reading_pressure", SensorDeviceClass.ATMOSPHERIC_PRESSURE, UnitOfPressure.HPA, factor=0.01
    ),
    "sea_pressure_pascals": FieldSpec(
        "reading_sea_pressure",
        SensorDeviceClass.ATMOSPHERIC_PRESSURE,
        UnitOfPressure.HPA,
        factor=0.01,
    ),
    "illuminance_lux": FieldSpec("reading_illuminance", SensorDeviceClass.ILLUMINANCE, LIGHT_LUX),
}

HEALTH_FIELDS: dict[str, FieldSpec] = {
    "uptime_seconds": FieldSpec(
        "uptime", SensorDeviceClass.DURATION, UnitOfTime.SECONDS, diagnostic=True, enabled=False
    ),
    "wifi_signal_dbm": FieldSpec(
        "wifi_signal",
        SensorDeviceClass.SIGNAL_STRENGTH,
        SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        diagnostic=True,
    ),
    "wifi_quality_ratio": FieldSpec(
        "wifi_quality", None, PERCENTAGE, factor=100, diagnostic=True, enabled=False
    ),
    "heap_free_bytes": FieldSpec(
        "heap_free",
        SensorDeviceClass.DATA_SIZE,
        UnitOfInformation.BYTES,
        diagnostic=True,
        enabled=False,
    ),
    "load_average": FieldSpec("load_average", None, None, diagnostic=True, enabled=False),
    "wifi_links": FieldSpec("wifi_links", None, None, TOTAL_INC, diagnostic=True, enabled=False),
}
