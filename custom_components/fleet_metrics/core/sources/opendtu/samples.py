"""OpenDTU state as samples, in base units as Prometheus names them."""

from __future__ import annotations

import time
from collections.abc import Iterable

from ...sample import CompleteSet, FieldValue, Sample, SetSample
from ...units import scale
from .models import DtuSnapshot, Inverter

WH_TO_J = 3600.0
KWH_TO_J = 3_600_000.0

# canonical key -> (field name, scale to base unit)
_VALUE_FIELDS: dict[str, tuple[str, float]] = {
    "power": ("power_watts", 1.0),
    "voltage": ("voltage_volts", 1.0),
    "current": ("current_amperes", 1.0),
    "frequency": ("frequency_hertz", 1.0),
    "power_factor": ("power_factor_ratio", 1.0),
    "reactive_power": ("reactive_power_volt_amperes_reactive", 1.0),
    "power_dc": ("power_dc_watts", 1.0),
    "yield_day": ("yield_day_joules", WH_TO_J),
    "yield_total": ("yield_total_joules", KWH_TO_J),
    "temperature": ("temperature_celsius", 1.0),
    "efficiency": ("efficiency_ratio", 0.01),
    "irradiation": ("irradiation_ratio", 0.01),
}
_RADIO_COUNTERS = {
    "tx_request": "radio_tx_requests",
    "tx_re_request": "radio_tx_re_requests",
    "rx_success": "radio_rx_success",
    "rx_fail_nothing": "radio_rx_fail_nothing",
    "rx_fail_partial": "radio_rx_fail_partial",
    "rx_fail_corrupt": "radio_rx_fail_corrupt",
}
_COUNTER_FIELDS = frozenset(_RADIO_COUNTERS.values())

HELP = {
    "opendtu_inverter_power_watts": "AC output power.",
    "opendtu_inverter_power_dc_watts": "DC input power over all strings.",
    "opendtu_inverter_voltage_volts": "AC voltage (phase-to-phase on 3-phase HMT models).",
    "opendtu_inverter_current_amperes": "AC current.",
    "opendtu_inverter_frequency_hertz": "Grid frequency.",
    "opendtu_inverter_yield_day_joules": "Energy produced today.",
    "opendtu_inverter_yield_total_joules": "Energy produced over the inverter's life.",
    "opendtu_inverter_temperature_celsius": "Inverter temperature.",
    "opendtu_inverter_efficiency_ratio": "AC power over DC power, 0 to 1.",
    "opendtu_inverter_reachable": "1 while the DTU reaches the inverter by radio.",
    "opendtu_inverter_producing": "1 while the inverter feeds power into the grid.",
    "opendtu_inverter_limit_relative_ratio": "Active power limit relative to the maximum.",
    "opendtu_inverter_limit_absolute_watts": "Active power limit.",
    "opendtu_inverter_data_age_seconds": "Time since the DTU last read the inverter.",
    "opendtu_string_power_watts": "DC power of one input string.",
    "opendtu_string_voltage_volts": "DC voltage of one input string.",
    "opendtu_string_current_amperes": "DC current of one input string.",
    "opendtu_string_yield_day_joules": "Energy from one string today.",
    "opendtu_string_yield_total_joules": "Energy from one string over its life.",
    "opendtu_string_irradiation_ratio": "String power relative to its configured peak power.",
    "opendtu_dtu_power_watts": "AC power of all polled inverters.",
    "opendtu_dtu_yield_day_joules": "Energy of all inverters today.",
    "opendtu_dtu_yield_total_joules": "Energy of all inverters over their life.",
    "opendtu_dtu_uptime_seconds": "Time since the DTU booted.",
    "opendtu_dtu_up": "1 when the last poll of the DTU succeeded.",
    "opendtu_dtu_info": "Constant 1, labelled with the DTU firmware and hardware.",
}


def _fields(values: dict[str, float]) -> dict[str, FieldValue]:
    out: dict[str, FieldValue] = {}
    for key, value in values.items():
        spec = _VALUE_FIELDS.get(key)
        if spec is None:
            continue
        scaled = scale(value, spec[1]) if spec[1] != 1.0 else value
        if scaled is not None:
            out[spec[0]] = scaled
    return out


def inverter_samples(dtu: str, inverter: Inverter, time_ns: int) -> Iterable[Sample]:
    fields = _fields(inverter.values)
    fields["reachable"] = inverter.reachable
    fields["producing"] = inverter.producing
    ratio = scale(inverter.limit_relative, 0.01) if inverter.limit_relative is not None else None
    if ratio is not None:
        fields["limit_relative_ratio"] = ratio
    if inverter.limit_absolute is not None:
        fields["limit_absolute_watts"] = inverter.limit_absolute
    if inverter.rssi is not None:
        fields["rssi_dbm"] = inverter.rssi
    if inverter.data_age is not None:
        fields["data_age_seconds"] = inverter.data_age
    for key, name in _RADIO_COUNTERS.items():
        if key in inverter.radio:
            fields[name] = inverter.radio[key]
    tags = {"dtu": dtu, "serial": inverter.serial, "inverter": inverter.name}
    yield Sample("opendtu_inverter", tags, fields, time_ns, _COUNTER_FIELDS)
    for string in inverter.strings.values():
        string_fields = _fields(string.values)
        if string_fields:
            string_tags = {**tags, "string": str(string.index), "string_name": string.name}
            yield Sample("opendtu_string", string_tags, string_fields, time_ns)


def snapshot_samples(
    dtu: str, snapshot: DtuSnapshot, inverters: Iterable[Inverter] | None = None
) -> list[Sample]:
    """Samples for the DTU and the given inverters (all of them when None)."""
    now = time.time_ns()
    dtu_fields: dict[str, FieldValue] = {"up": True}
    total = snapshot.total
    for key, value in (
        ("power", total.power),
        ("yield_day", total.yield_day),
        ("yield_total", total.yield_total),
    ):
        if value is not None:
            dtu_fields.update(_fields({key: value}))
    if snapshot.system.uptime is not None:
        dtu_fields["uptime_seconds"] = snapshot.system.uptime
    samples = [Sample("opendtu_dtu", {"dtu": dtu}, dtu_fields, now)]
    info_tags = {
        "dtu": dtu,
        "firmware": snapshot.system.firmware or "",
        "chip_model": snapshot.system.chip_model or "",
        "hostname": snapshot.system.hostname or "",
    }
    # One info series per DTU: a firmware update replaces the old one at once.
    info = CompleteSet(frozenset({"info"}), scope=("dtu",))
    samples.append(SetSample("opendtu_dtu", info_tags, {"info": 1}, now, complete=info))
    for inverter in snapshot.inverters.values() if inverters is None else inverters:
        samples.extend(inverter_samples(dtu, inverter, now))
    return samples


def down_sample(dtu: str) -> Sample:
    return Sample("opendtu_dtu", {"dtu": dtu}, {"up": False})
