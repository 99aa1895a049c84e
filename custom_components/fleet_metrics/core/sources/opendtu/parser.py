"""Turns OpenDTU JSON of every firmware generation since Nov 2022 into the typed model.

Shapes handled (see tests/fixtures/opendtu/README): grouped ``AC``/``DC``/``INV`` channels
(v23.4 on, with inverter values in ``AC.0`` before v24.2 and in ``INV.0`` after), flat
``"0"``/``"1"`` channels with 1-based DC strings (late 2022), summary-only overviews (v24.2 on).
The bare-array shape from before 2022-11 is refused: its units differ and it has no totals.

Any JSON at all gives either a model or ``PayloadError``: wrong types anywhere are skipped,
names that would become tags are checked, and no NaN or infinity gets through.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ...values import number
from .models import DcString, Hints, Inverter, LiveData, NetworkInfo, SystemInfo, Totals

# Firmware value names -> our names, in the units the HA sensors use.
VALUE_KEYS = {
    "Power": "power",
    "Voltage": "voltage",
    "Current": "current",
    "Frequency": "frequency",
    "PowerFactor": "power_factor",
    "ReactivePower": "reactive_power",
    "Power DC": "power_dc",
    "YieldDay": "yield_day",
    "YieldTotal": "yield_total",
    "Temperature": "temperature",
    "Efficiency": "efficiency",
    "Irradiation": "irradiation",
}
# Canonical units; a value in another unit of the same quantity is converted.
_ENERGY_SCALE = {"Wh": 1.0, "kWh": 1000.0, "MWh": 1_000_000.0}
_CANONICAL_ENERGY = {"yield_day": "Wh", "yield_total": "kWh"}
# Serials, inverter and string names become tags: HMS/HMT names are at most 31 bytes.
MAX_NAME = 64
# Hoymiles inverters have at most 6 DC inputs; the index is a tag, so it stays small.
MAX_STRINGS = 16
# Radio statistics keys the firmware sends (samples.py exports them as counters).
RADIO_KEYS = frozenset(
    {"tx_request", "tx_re_request", "rx_success", "rx_fail_nothing", "rx_fail_partial",
     "rx_fail_corrupt"}
)  # fmt: skip


class PayloadError(ValueError):
    """The body is not OpenDTU live data we understand."""


class UnsupportedFirmware(PayloadError):
    """The body comes from firmware too old to read safely."""


def _name(raw: Any) -> str | None:
    """A text that may become a tag: short and printable."""
    if isinstance(raw, str) and 0 < len(raw) <= MAX_NAME and raw.isprintable():
        return raw
    return None


def _string_index(key: str) -> int | None:
    """``"0"``..``"15"``; not ``"²"`` (a digit to ``str.isdigit`` that ``int`` refuses)."""
    if key.isascii() and key.isdigit() and len(key) <= 2:
        return int(key)
    return None


def _reading(key: str, raw: Any) -> float | None:
    """``{"v": 233.1000061, "u": "V", "d": 1}`` -> 233.1, converted to the canonical unit."""
    if not isinstance(raw, Mapping):
        return None
    value = number(raw.get("v"))
    if value is None:
        return None
    unit = raw.get("u")
    if not isinstance(unit, str):
        unit = None  # an object or list here is no unit, and is not hashable either
    digits = raw.get("d")
    if key in _CANONICAL_ENERGY and unit in _ENERGY_SCALE and unit != _CANONICAL_ENERGY[key]:
        value = value * _ENERGY_SCALE[unit] / _ENERGY_SCALE[_CANONICAL_ENERGY[key]]
        digits = None
    elif key == "power_factor" and unit == "%":
        value /= 100.0
        digits = None
    if isinstance(digits, int) and not isinstance(digits, bool) and 0 <= digits <= 6:
        value = round(value, digits)
    return value if math.isfinite(value) else None


def _readings(channel: Any) -> dict[str, float]:
    if not isinstance(channel, Mapping):
        return {}
    out: dict[str, float] = {}
    for firmware_key, raw in channel.items():
        key = VALUE_KEYS.get(firmware_key)
        if key is not None and (value := _reading(key, raw)) is not None:
            out[key] = value
    return out


def _dc_string(index: int, channel: Any) -> DcString:
    name = ""
    if isinstance(channel, Mapping) and isinstance(channel.get("name"), Mapping):
        name = _name(channel["name"].get("u")) or ""
    return DcString(index=index, name=name, values=_readings(channel))


def _int(raw: Any) -> int | None:
    value = number(raw)
    return int(value) if value is not None else None


def _bool(raw: Any) -> bool | None:
    return raw if isinstance(raw, bool) else None


def parse_inverter(raw: Mapping[str, Any]) -> Inverter:
    serial = _name(raw.get("serial"))
    if serial is None:
        raise PayloadError("inverter without a usable serial")
    limit_absolute = number(raw.get("limit_absolute"))
    data_age_ms = number(raw.get("data_age_ms"))
    inverter = Inverter(
        serial=serial,
        name=_name(raw.get("name")) or serial,
        reachable=bool(raw.get("reachable", False)),
        producing=bool(raw.get("producing", False)),
        poll_enabled=_bool(raw.get("poll_enabled")),
        order=_int(raw.get("order")),
        data_age=data_age_ms / 1000.0 if data_age_ms is not None else number(raw.get("data_age")),
        limit_relative=number(raw.get("limit_relative")),
        limit_absolute=limit_absolute
        if limit_absolute is not None and limit_absolute >= 0
        else None,
        events=_int(raw.get("events")),
    )
    radio = raw.get("radio_stats")
    if isinstance(radio, Mapping):
        inverter.radio = {
            k: v
            for k, v in radio.items()
            if k in RADIO_KEYS and isinstance(v, int) and not isinstance(v, bool) and v >= 0
        }
        inverter.rssi = number(radio.get("rssi"))

    if "AC" in raw or "INV" in raw or "DC" in raw:
        # v23.4+: AC."0" holds the AC values (and, before v24.2, power_dc/yields/efficiency).
        for group in ("AC", "INV"):
            channels = raw.get(group)
            if isinstance(channels, Mapping):
                inverter.values.update(_readings(channels.get("0")))
        dc = raw.get("DC")
        if isinstance(dc, Mapping):
            for key, channel in dc.items():
                index = _string_index(key)
                if index is not None and index < MAX_STRINGS:
                    inverter.strings[index] = _dc_string(index, channel)
    elif "0" in raw:
        # Late 2022: flat channels, "0" is AC plus inverter values, DC strings count from 1.
        inverter.values.update(_readings(raw.get("0")))
        for key, channel in raw.items():
            index = _string_index(key)
            if index is not None and 0 < index <= MAX_STRINGS:
                inverter.strings[index - 1] = _dc_string(index - 1, channel)
    return inverter


def _totals(raw: Any) -> Totals | None:
    if not isinstance(raw, Mapping):
        return None
    values = _readings(raw)
    return Totals(
        power=values.get("power"),
        yield_day=values.get("yield_day"),
        yield_total=values.get("yield_total"),
    )


def _hints(raw: Any) -> Hints | None:
    if not isinstance(raw, Mapping):
        return None
    return Hints(
        time_sync=raw.get("time_sync") is True,
        radio_problem=raw.get("radio_problem") is True,
        default_password=raw.get("default_password") is True,
        pin_mapping_issue=raw.get("pin_mapping_issue") is True,
    )


def parse_livedata(body: Any) -> LiveData:
    """Parse a livedata body; inverters that are individually broken are skipped."""
    if isinstance(body, list):
        raise UnsupportedFirmware("OpenDTU firmware from before Nov 2022 is not supported")
    if not isinstance(body, Mapping):
        raise PayloadError(f"expected a JSON object, got {type(body).__name__}")
    raw_inverters = body.get("inverters", [])
    if not isinstance(raw_inverters, list):
        raise PayloadError("'inverters' is not a list")
    inverters = []
    for raw in raw_inverters:
        if isinstance(raw, Mapping):
            try:
                inverters.append(parse_inverter(raw))
            except PayloadError:
                continue
    return LiveData(
        inverters=inverters, total=_totals(body.get("total")), hints=_hints(body.get("hints"))
    )


def parse_system_status(body: Any) -> SystemInfo:
    if not isinstance(body, Mapping):
        raise PayloadError(f"expected a JSON object, got {type(body).__name__}")

    def text(key: str) -> str | None:
        return _name(body.get(key))

    return SystemInfo(
        hostname=text("hostname"),
        firmware=text("git_hash"),
        chip_model=text("chipmodel"),
        sdk_version=text("sdkversion"),
        uptime=number(body.get("uptime")),
        heap_total=_int(body.get("heap_total")),
        heap_used=_int(body.get("heap_used")),
        cpu_temperature=number(body.get("cputemp")),
    )


def parse_network_status(body: Any) -> NetworkInfo:
    if not isinstance(body, Mapping):
        raise PayloadError(f"expected a JSON object, got {type(body).__name__}")
    mac = _name(body.get("network_mac"))
    return NetworkInfo(
        mac=mac.upper() if mac else None,
        ip=_name(body.get("network_ip")),
        hostname=_name(body.get("network_hostname")),
        rssi=_int(body.get("sta_rssi")),
    )
