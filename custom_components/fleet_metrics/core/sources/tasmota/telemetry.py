"""Tasmota SENSOR and STATE payloads as readings in base units.

Sensor objects sit at the top level (``ENERGY``, ``BME280``, ``DS18B20-1``...); their units
sit beside them (``TempUnit``, ``PressureUnit``). ENERGY values are scalars with one phase
and arrays with several, mixed within one payload; arrays become one reading per phase.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...sample import FieldValue
from ...units import scale
from ...values import number
from .limits import DEFAULT_FIELDS, DEFAULT_READINGS, MAX_DEPTH, MAX_RELAY, valid_name

KWH_TO_J = 3_600_000.0
WH_TO_J = 3600.0
PRESSURE_TO_PA = {"hPa": 100.0, "mmHg": 133.322387415, "inHg": 3386.389}

# Tasmota key -> (field name in base units, scale); a scale of None means "see the unit key".
KNOWN_FIELDS: dict[str, tuple[str, float | None]] = {
    "Temperature": ("temperature_celsius", None),
    "DewPoint": ("dew_point_celsius", None),
    "Humidity": ("humidity_ratio", 0.01),
    "Pressure": ("pressure_pascals", None),
    "SeaPressure": ("sea_pressure_pascals", None),
    "Power": ("power_watts", 1.0),
    "ApparentPower": ("apparent_power_volt_amperes", 1.0),
    "ReactivePower": ("reactive_power_volt_amperes_reactive", 1.0),
    "Factor": ("power_factor_ratio", 1.0),
    "Voltage": ("voltage_volts", 1.0),
    "Current": ("current_amperes", 1.0),
    "Frequency": ("frequency_hertz", 1.0),
    "Total": ("total_joules", KWH_TO_J),
    "Yesterday": ("yesterday_joules", KWH_TO_J),
    "Today": ("today_joules", KWH_TO_J),
    "ExportActive": ("export_active_joules", KWH_TO_J),
    "ImportActive": ("import_active_joules", KWH_TO_J),
    "TodaySumImport": ("today_sum_import_joules", KWH_TO_J),
    "TodaySumExport": ("today_sum_export_joules", KWH_TO_J),
    "Period": ("period_joules", WH_TO_J),
    "Illuminance": ("illuminance_lux", 1.0),
    "CarbonDioxide": ("carbon_dioxide_ppm", 1.0),
}
# Strings that look like numbers but name things; never parsed as values.
IDENTIFIER_KEYS = {"id", "adco", "adsc", "meter_number", "serial", "serialnumber", "mac"}
# Top-level keys that are metadata, not sensors.
META_KEYS = {"Time", "Epoch", "TempUnit", "PressureUnit", "SpeedUnit", "TotalStartTime"}
SWITCH_STATES = {"ON": True, "OFF": False}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", _CAMEL.sub("_", key).lower()).strip("_") or "value"


@dataclass(slots=True)
class Reading:
    """One sensor (or one phase of one) with its fields in base units."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue] = field(default_factory=dict)


@dataclass(slots=True)
class Units:
    temperature: str = "C"
    pressure: str = "hPa"

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> Units:
        temp = payload.get("TempUnit")
        pressure = payload.get("PressureUnit")
        return cls(
            temperature=temp if isinstance(temp, str) and temp in ("C", "F") else "C",
            pressure=pressure
            if isinstance(pressure, str) and pressure in PRESSURE_TO_PA
            else "hPa",
        )


def convert(key: str, value: float, units: Units) -> tuple[str, float | None]:
    """The field name and value in base units; the value is None when converting it would
    leave the finite numbers."""
    spec = KNOWN_FIELDS.get(key)
    if spec is None:
        return snake(key), value
    name, factor = spec
    if factor is not None:
        return name, scale(value, factor)
    if name.endswith("_celsius"):
        return name, scale(value - 32.0, 5.0 / 9.0) if units.temperature == "F" else value
    return name, scale(value, PRESSURE_TO_PA[units.pressure])


class Skipped:
    """Counts values that were present but unusable (wrong type, not a number)."""

    def __init__(self) -> None:
        self.count = 0


@dataclass(slots=True)
class Notes:
    """What one payload held that the parser left out, for the tracker to count.

    ``bad_names``: sensor, switch or field names too long or unprintable; ``over_cap``:
    readings or fields beyond the caps; ``too_deep``: objects nested deeper than any
    Tasmota sensor nests.
    """

    skipped: Skipped = field(default_factory=Skipped)
    max_readings: int = DEFAULT_READINGS
    max_fields: int = DEFAULT_FIELDS
    bad_names: int = 0
    over_cap: int = 0
    too_deep: int = 0


class _Collected:
    """The readings of one payload, capped as they are made."""

    def __init__(self, notes: Notes) -> None:
        self.notes = notes
        self.readings: list[Reading] = []

    def add(self, reading: Reading) -> None:
        if len(self.readings) < self.notes.max_readings:
            self.readings.append(reading)
        else:
            self.notes.over_cap += 1


def _put(reading: Reading, name: str, value: FieldValue | None, notes: Notes) -> None:
    if value is None:
        notes.skipped.count += 1
    elif name in reading.fields or len(reading.fields) < notes.max_fields:
        reading.fields[name] = value
    else:
        notes.over_cap += 1


def _sensor_readings(
    name: str, body: Mapping[str, Any], units: Units, notes: Notes, out: _Collected, depth: int
) -> None:
    if depth > MAX_DEPTH:
        notes.too_deep += 1
        return
    measurement = "tasmota_energy" if name == "ENERGY" else "tasmota_sensor"
    main = Reading(measurement, {"sensor": name})
    phases: dict[int, Reading] = {}
    nested: list[tuple[str, Mapping[str, Any]]] = []
    for key, raw in body.items():
        if not valid_name(key):
            notes.bad_names += 1
            continue
        if key.lower() in IDENTIFIER_KEYS:
            if isinstance(raw, str) and valid_name(raw):
                main.tags["sensor_id"] = raw
            continue
        if key in META_KEYS:
            continue
        if isinstance(raw, Mapping):
            nested.append((key, raw))
        elif isinstance(raw, list):
            for index, item in enumerate(raw[: notes.max_readings], start=1):
                value = number(item)
                if value is None:
                    notes.skipped.count += 1
                    continue
                phase = phases.get(index)
                if phase is None:
                    phase = phases[index] = Reading(
                        measurement, {"sensor": name, "phase": str(index)}
                    )
                _put(phase, *convert(key, value, units), notes)
            notes.over_cap += max(0, len(raw) - notes.max_readings)
        elif (value := number(raw)) is not None:
            _put(main, *convert(key, value, units), notes)
        elif isinstance(raw, str) and raw.upper() in SWITCH_STATES:
            _put(main, snake(key), SWITCH_STATES[raw.upper()], notes)
        elif not isinstance(raw, str):
            notes.skipped.count += 1
    if main.fields:
        out.add(main)
    for index in sorted(phases):
        if phases[index].fields:
            out.add(phases[index])
    for key, raw in nested:
        _sensor_readings(key, raw, units, notes, out, depth + 1)


def sensor_readings(payload: Mapping[str, Any], notes: Notes) -> list[Reading]:
    """Readings of a SENSOR payload (or the ``StatusSNS`` of a STATUS10/STATUS8 reply)."""
    units = Units.of(payload)
    out = _Collected(notes)
    for key, raw in payload.items():
        if key in META_KEYS:
            continue
        if not valid_name(key):
            notes.bad_names += 1
        elif isinstance(raw, Mapping):
            _sensor_readings(key, raw, units, notes, out, 1)
        elif isinstance(raw, str) and raw.upper() in SWITCH_STATES:
            out.add(Reading("tasmota_switch", {"switch": key}, {"on": SWITCH_STATES[raw.upper()]}))
        else:
            notes.skipped.count += 1
    return out.readings


def duration_seconds(raw: Any) -> float | None:
    """``"9T04:03:29"`` (days T hh:mm:ss) -> seconds."""
    if not isinstance(raw, str):
        return None
    match = re.fullmatch(r"(\d+)T(\d+):(\d+):(\d+)", raw.strip())
    if match is None:
        return None
    days, hours, minutes, seconds = (int(g) for g in match.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


_RELAY_KEY = re.compile(r"POWER([0-9]{0,2})")


def relay_states(payload: Mapping[str, Any]) -> dict[str, bool]:
    """``POWER``/``POWER1``... -> {"1": True}; in STATE and in stat RESULT replies."""
    relays = {}
    for key, raw in payload.items():
        match = _RELAY_KEY.fullmatch(key)
        if match and isinstance(raw, str) and raw.upper() in SWITCH_STATES:
            relay = match.group(1) or "1"
            if 1 <= int(relay) <= MAX_RELAY and relay[0] != "0":
                relays[relay] = SWITCH_STATES[raw.upper()]
    return relays


def state_fields(payload: Mapping[str, Any]) -> dict[str, FieldValue]:
    """Device health from a STATE payload (or ``StatusSTS``); missing keys are normal."""
    fields: dict[str, FieldValue] = {}

    def put(name: str, raw: Any, factor: float = 1.0) -> None:
        value = number(raw)
        if value is not None and (scaled := scale(value, factor)) is not None:
            fields[name] = scaled

    put("uptime_seconds", payload.get("UptimeSec"))
    if "uptime_seconds" not in fields and (uptime := duration_seconds(payload.get("Uptime"))):
        fields["uptime_seconds"] = uptime
    put("heap_free_bytes", payload.get("Heap"), 1024.0)
    put("load_average", payload.get("LoadAvg"))
    put("sleep_seconds", payload.get("Sleep"), 0.001)
    put("mqtt_connections", payload.get("MqttCount"))
    put("dimmer_ratio", payload.get("Dimmer"), 0.01)
    wifi = payload.get("Wifi")
    if isinstance(wifi, Mapping):
        put("wifi_quality_ratio", wifi.get("RSSI"), 0.01)
        put("wifi_signal_dbm", wifi.get("Signal"))
        put("wifi_links", wifi.get("LinkCount"))
        put("wifi_channel", wifi.get("Channel"))
        if (downtime := duration_seconds(wifi.get("Downtime"))) is not None:
            fields["wifi_downtime_seconds"] = downtime
    return fields


STATE_COUNTERS = frozenset({"mqtt_connections", "wifi_links"})
