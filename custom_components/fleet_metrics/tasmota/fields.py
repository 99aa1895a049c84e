"""How a core field (base units) is shown in Home Assistant: class, unit, state class, scale."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    CONCENTRATION_PARTS_PER_MILLION,
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
J_TO_WH = 1 / 3600


@dataclass(frozen=True, slots=True)
class FieldSpec:
    translation_key: str
    device_class: SensorDeviceClass | None
    unit: str | None
    state_class: SensorStateClass | None = M
    factor: float = 1.0
    diagnostic: bool = False
    enabled: bool = True

    @property
    def phase_translation_key(self) -> str:
        """The name of one phase (or channel) of the field: "{sensor} power {phase}"."""
        return f"{self.translation_key}_phase"


def _energy(key: str, state_class: SensorStateClass | None) -> FieldSpec:
    """An energy field in kWh, as Tasmota reports it (the core keeps joules)."""
    return FieldSpec(
        key, SensorDeviceClass.ENERGY, UnitOfEnergy.KILO_WATT_HOUR, state_class, J_TO_KWH
    )


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
    # Total runs backwards on meters that net export against import (a Shelly 3EM's
    # Yesterday goes negative), so it is a total whose statistics follow every change both
    # ways, as in HA's own Tasmota integration. No last_reset from TotalStartTime: for an
    # entity that had statistics without one, the first last_reset starts a new cycle and
    # counts the whole total again.
    "total_joules": _energy("reading_energy_total", SensorStateClass.TOTAL),
    # Counters that drop to zero at midnight (or a meter change): HA's statistics see the
    # drop as a new cycle, as for HA's own Tasmota integration's Today.
    "today_joules": _energy("reading_energy_today", TOTAL_INC),
    "today_sum_import_joules": _energy("reading_energy_today_sum_import", TOTAL_INC),
    "today_sum_export_joules": _energy("reading_energy_today_sum_export", TOTAL_INC),
    "import_active_joules": _energy("reading_energy_import", TOTAL_INC),
    "export_active_joules": _energy("reading_energy_export", TOTAL_INC),
    # Yesterday's total is a figure, not a counter (its changes summed mean nothing), and
    # Period is the energy since the device's previous telemetry: HA allows an energy sensor
    # only the total state classes, and as a total it would count Total's energy a second
    # time (or lose it whenever two telemetry messages meet one state write). So neither
    # keeps statistics, as HA's own Tasmota integration does for Yesterday.
    "yesterday_joules": _energy("reading_energy_yesterday", None),
    "period_joules": FieldSpec(
        "reading_energy_period", SensorDeviceClass.ENERGY, UnitOfEnergy.WATT_HOUR, None, J_TO_WH
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
    "carbon_dioxide_ppm": FieldSpec(
        "reading_carbon_dioxide", SensorDeviceClass.CO2, CONCENTRATION_PARTS_PER_MILLION
    ),
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
