from __future__ import annotations

import json

import pytest

from custom_components.fleet_metrics.core.sources.opendtu.parser import (
    PayloadError,
    UnsupportedFirmware,
    parse_livedata,
    parse_network_status,
    parse_system_status,
)
from tests.opendtu_fake import fixture_text


def load(name: str) -> object:
    return json.loads(fixture_text(name))


def test_v26_inverter_detail_has_every_value_rounded_to_its_digits() -> None:
    live = parse_livedata(load("livedata_status_inverter_hm800.json"))
    (inverter,) = live.inverters
    assert inverter.serial == "114182345678"
    assert inverter.reachable and inverter.producing and inverter.poll_enabled
    assert inverter.data_age == pytest.approx(3.127)
    assert inverter.rssi == -30.0
    assert inverter.values == {
        "power": 70.1,
        "voltage": 233.1,
        "current": 0.3,
        "frequency": 50.02,
        "power_factor": 1.0,
        "reactive_power": 0.1,
        "power_dc": 73.6,
        "yield_day": 48.0,
        "yield_total": 48.54,  # float32 noise 48.539997 rounded to d=3
        "temperature": 11.4,
        "efficiency": 95.245,
    }
    assert inverter.radio["tx_request"] == 1832
    assert sorted(inverter.strings) == [0, 1]
    assert inverter.strings[0].values["irradiation"] == 8.902
    assert inverter.strings[1].values["yield_total"] == 44.239
    assert live.total is not None and live.total.power == 70.1
    assert live.hints is not None and not live.hints.radio_problem


def test_hms2000_utf8_string_names_and_missing_irradiation() -> None:
    (inverter,) = parse_livedata(load("livedata_status_inverter_hms2000.json")).inverters
    assert len(inverter.strings) == 4
    names = [inverter.strings[i].name for i in range(4)]
    assert all(isinstance(n, str) for n in names)
    assert any(not n.isascii() for n in names)
    assert "irradiation" not in inverter.strings[3].values
    assert inverter.values["reactive_power"] < 0
    assert inverter.limit_relative == 80


def test_overview_is_summary_only_with_hex_serials() -> None:
    live = parse_livedata(load("livedata_status_overview.json"))
    serials = [i.serial for i in live.inverters]
    assert serials == ["114183178036", "116191100801", "1164a00ccd81"]
    assert all(not i.has_channels for i in live.inverters)
    assert live.inverters[1].name == "Büro 4"
    assert live.total is not None and live.total.yield_total == 7453.712


def test_unreachable_inverter_keeps_last_values() -> None:
    (inverter,) = parse_livedata(load("livedata_status_unreachable.json")).inverters
    assert not inverter.reachable
    assert inverter.values["voltage"] == 233.1
    assert inverter.values["yield_total"] == 3209.963


def test_v23_values_in_ac_group_and_unknown_limit() -> None:
    first, second = parse_livedata(load("livedata_status_v23_all_inverters.json")).inverters
    assert first.values["power_dc"] == 0
    assert "efficiency" in first.values and "yield_total" in first.values
    assert first.limit_absolute is None  # -1 means unknown
    assert len(first.strings) == 4
    assert second.strings[1].name == "test 2"


def test_legacy_2022_flat_channels_are_one_based() -> None:
    live = parse_livedata(load("livedata_status_legacy_2022.json"))
    hm600, hm800 = live.inverters
    assert sorted(hm800.strings) == [0, 1]
    assert hm800.strings[0].values["power"] == 36.5
    assert hm800.values["voltage"] == 233.1
    assert hm800.values["temperature"] == 11.4
    assert hm600.values["power_dc"] == 74.0
    assert live.hints is None


def test_pre_2022_11_array_is_refused() -> None:
    with pytest.raises(UnsupportedFirmware):
        parse_livedata(load("livedata_status_legacy_array_pre_2022_11.json"))


def test_v24_overview_float_noise() -> None:
    live = parse_livedata(load("livedata_status_overview_v24_2.json"))
    assert live.total is not None and live.total.power == 47.3
    assert live.inverters[0].serial == "xxxxxxxxx"


def test_unknown_serial_gives_no_inverters_but_totals() -> None:
    live = parse_livedata(load("livedata_status_inv_unknown_serial.json"))
    assert live.inverters == []
    assert live.total is not None and live.total.yield_day == 6959


def test_onbattery_extra_message_has_no_inverters() -> None:
    live = parse_livedata(load("ws_livedata_onbattery_extras.json"))
    assert live.inverters == [] and live.total is None


@pytest.mark.parametrize("body", [None, 42, "text", {"inverters": "nope"}])
def test_garbage_is_a_payload_error(body: object) -> None:
    with pytest.raises(PayloadError):
        parse_livedata(body)


def test_broken_inverters_are_skipped_not_fatal() -> None:
    body = load("livedata_status_inverter_hm800.json")
    assert isinstance(body, dict)
    body["inverters"] += [
        {"name": "no serial"},
        "not an object",
        {"serial": "1", "AC": {"0": {"Power": {"v": "n/a"}, "Voltage": 5}}, "DC": []},
    ]
    live = parse_livedata(body)
    assert [i.serial for i in live.inverters] == ["114182345678", "1"]
    assert live.inverters[1].values == {}


def test_energy_units_are_normalised() -> None:
    body = {
        "inverters": [
            {
                "serial": "1",
                "INV": {
                    "0": {
                        "YieldDay": {"v": 1.5, "u": "kWh", "d": 3},
                        "YieldTotal": {"v": 2500, "u": "Wh", "d": 0},
                    }
                },
            }
        ]
    }
    (inverter,) = parse_livedata(body).inverters
    assert inverter.values["yield_day"] == 1500.0
    assert inverter.values["yield_total"] == 2.5


def test_system_status_with_null_cputemp() -> None:
    system = parse_system_status(load("system_status.json"))
    assert system.firmware == "v26.3.30"
    assert system.hostname == "OpenDTU-Buero"
    assert system.cpu_temperature is None
    assert system.uptime == 34314


def test_network_status_mac() -> None:
    network = parse_network_status(load("network_status.json"))
    assert network.mac == "34:85:18:A1:B2:C3"
