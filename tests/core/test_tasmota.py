from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import cast

import orjson
import pytest
import voluptuous as vol

from custom_components.fleet_metrics.core.backoff import Backoff
from custom_components.fleet_metrics.core.mqtt.session import BrokerSession
from custom_components.fleet_metrics.core.rejects import Rejected, Rejects
from custom_components.fleet_metrics.core.sample import Sample
from custom_components.fleet_metrics.core.source import SourceContext
from custom_components.fleet_metrics.core.sources.tasmota.limits import Limits
from custom_components.fleet_metrics.core.sources.tasmota.source import SCHEMA, TasmotaSource
from custom_components.fleet_metrics.core.sources.tasmota.topics import FullTopic
from custom_components.fleet_metrics.core.sources.tasmota.tracker import (
    MAX_PAYLOAD,
    TasmotaTracker,
)
from tests.mosquitto import Mosquitto

FIXTURES = Path(__file__).parents[1] / "fixtures" / "tasmota"


def payload(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def session(name: str) -> list[tuple[str, bytes]]:
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    return [(line.split("\t", 1)[0], line.split("\t", 1)[1].encode()) for line in lines]


def fields_of(samples: list[Sample], measurement: str, **tags: str) -> dict[str, object]:
    found = [
        s
        for s in samples
        if s.measurement == measurement
        and all(s.tags.get(k) == v for k, v in tags.items())
        and ("phase" in tags or "phase" not in s.tags)
    ]
    assert len(found) == 1, f"{measurement} {tags}: {[(s.measurement, s.tags) for s in samples]}"
    return dict(found[0].fields)


# --- FullTopic layouts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "topic", "expected"),
    [
        ("%prefix%/%topic%/", "tele/plug/SENSOR", ("tele", "plug", "SENSOR")),
        ("%topic%/%prefix%/", "plug/tele/SENSOR", ("tele", "plug", "SENSOR")),
        (
            "emoncms/ch2i/factory/%topic%/%prefix%/",
            "emoncms/ch2i/factory/denky_D6C0C0/tele/SENSOR",
            ("tele", "denky_D6C0C0", "SENSOR"),
        ),
        ("%prefix%/%topic%/", "plug/tele/SENSOR", None),
        ("%topic%/%prefix%/", "tele/plug/SENSOR", None),
        ("%prefix%/%hostname%/%topic%/", "stat/host-1/plug/POWER", ("stat", "plug", "POWER")),
    ],
)
def test_full_topic_parsing(
    template: str, topic: str, expected: tuple[str, str, str] | None
) -> None:
    parts = FullTopic(template).parse(topic)
    assert (None if parts is None else (parts.prefix, parts.topic, parts.command)) == expected


def test_full_topic_filters_and_validation() -> None:
    assert FullTopic("%topic%/%prefix%/").filters() == ["+/stat/+", "+/tele/+"]
    assert FullTopic("a/%prefix%/%id%/%topic%").filters() == ["a/stat/+/+/+", "a/tele/+/+/+"]
    with pytest.raises(ValueError, match="needs"):
        FullTopic("%topic%/")


# --- discovery ---------------------------------------------------------------------------


def discovered(tracker: TasmotaTracker, mac: str, config: str, sensors: str | None = None) -> None:
    tracker.handle(f"tasmota/discovery/{mac}/config", payload(config))
    if sensors:
        tracker.handle(f"tasmota/discovery/{mac}/sensors", payload(sensors))


def test_discovery_registers_device_by_mac_with_firmware_and_sensors() -> None:
    tracker = TasmotaTracker()
    samples = tracker.handle(
        "tasmota/discovery/2CF432CC2FC5/config",
        payload("discovery_config_energy_plug_v11.0.0.json"),
    )
    assert samples[0].tags["firmware"] == "11.0.0" and samples[0].tags["model"] == "NXSM200"
    tracker.handle(
        "tasmota/discovery/2CF432CC2FC5/sensors",
        payload("discovery_sensors_energy_plug_v11.0.0.json"),
    )
    state = tracker.by_mac_state("2CF432CC2FC5")
    assert state is not None and state.device is not None
    assert state.device.name == "NXSM200_01"
    assert state.device.topic == "NXSM200_01"
    assert state.device.relays == 1
    assert state.device.sensors == ["ENERGY"]
    out = tracker.handle(
        "tele/NXSM200_01/SENSOR", payload("tele_sensor_energy_plug_padded_numbers.json")
    )
    assert out[0].tags == {
        "device": "NXSM200_01",
        "topic": "NXSM200_01",
        "mac": "2CF432CC2FC5",
        "sensor": "ENERGY",
    }


def test_esp32_v15_discovery_with_32_slot_arrays() -> None:
    tracker = TasmotaTracker()
    discovered(tracker, "142B2F9FAF38", "discovery_config_esp32_v15.0.1.4.json")
    state = tracker.by_mac_state("142B2F9FAF38")
    assert state is not None and state.device is not None
    assert state.device.firmware is not None and state.device.firmware.startswith("15.")


def test_topic_first_layout_from_discovery_and_removal() -> None:
    added: list[FullTopic] = []
    tracker = TasmotaTracker(full_topics=["%prefix%/%topic%/"], on_new_layout=added.append)
    discovered(tracker, "00000049A3BC", "discovery_config_topic_first_ha_test.json")
    assert [layout.template for layout in added] == ["%prefix%/%topic%/", "%topic%/%prefix%/"]
    assert "+/tele/+" in tracker.filters()
    out = tracker.handle("tasmota_49A3BC/tele/LWT", payload("lwt_online.txt"))
    assert out[0].fields == {"online": True}
    assert out[0].tags["mac"] == "00000049A3BC"
    tracker.handle("tasmota/discovery/00000049A3BC/config", payload("discovery_config_removed.txt"))
    assert tracker.by_mac_state("00000049A3BC") is None


def test_custom_full_topic_session_without_discovery() -> None:
    tracker = TasmotaTracker(full_topics=["emoncms/ch2i/factory/%topic%/%prefix%/"])
    samples: list[Sample] = []
    for topic, body in session("mqtt_session_custom_fulltopic.tsv"):
        samples += tracker.handle(topic, body)
    energy = [s for s in samples if s.measurement == "tasmota_energy"]
    assert energy[0].tags["topic"] == "denky_D6C0C0"
    assert energy[0].fields["period_joules"] == 9 * 3600
    tic = [s for s in samples if s.tags.get("sensor") == "TIC"]
    assert len(tic) == 2
    assert tic[1].fields["papp"] == 180
    assert "adco" not in tic[0].fields, "an identifier is not a value"
    assert tic[0].tags["sensor_id"] == "021528603314"
    assert "optarif" not in tic[0].fields
    assert fields_of(samples[:4], "tasmota_sensor", sensor="ESP32") == {"temperature_celsius": 36.1}


# --- SENSOR shapes ------------------------------------------------------------------------


def sensor(name: str, topic: str = "tele/dev/SENSOR") -> list[Sample]:
    tracker = TasmotaTracker()
    out = tracker.handle(topic, payload(name))
    assert tracker.parse_errors == 0
    return out


def test_single_phase_energy() -> None:
    fields = fields_of(sensor("tele_sensor_energy_plug_pow_r2.json"), "tasmota_energy")
    assert fields["power_watts"] > 0
    raw = json.loads(payload("tele_sensor_energy_plug_pow_r2.json"))["ENERGY"]
    assert fields["total_joules"] == pytest.approx(raw["Total"] * 3.6e6)
    assert fields["power_watts"] == raw["Power"]
    assert "total_start_time" not in fields


def test_three_phase_arrays_become_one_series_per_phase() -> None:
    samples = sensor("tele_sensor_energy_3phase_modbus.json")
    common = fields_of(samples, "tasmota_energy", sensor="ENERGY")
    assert common["frequency_hertz"] == 49.9
    assert common["total_joules"] == pytest.approx(16647.945 * 3.6e6)
    assert "power_watts" not in common
    phase1 = fields_of(samples, "tasmota_energy", phase="1")
    phase3 = fields_of(samples, "tasmota_energy", phase="3")
    assert phase1["power_watts"] == -136.495
    assert phase3["voltage_volts"] == 230.327
    assert phase1["import_active_joules"] == pytest.approx(4392.588 * 3.6e6)
    assert phase1["power_factor_ratio"] == -0.89


def test_dual_channel_with_nested_sensor_inside_energy() -> None:
    samples = sensor("tele_sensor_energy_dual_channel_sonoff_dual.json")
    assert fields_of(samples, "tasmota_energy", sensor="ENERGY")["voltage_volts"] == 235
    assert fields_of(samples, "tasmota_energy", phase="2")["total_joules"] == pytest.approx(
        0.254 * 3.6e6
    )
    assert fields_of(samples, "tasmota_sensor", sensor="BL09XX") == {"temperature_celsius": 46.5}


def test_multi_ds18b20_keyed_by_id() -> None:
    samples = sensor("tele_sensor_multi_ds18b20.json")
    assert len(samples) == 3
    second = fields_of(samples, "tasmota_sensor", sensor="DS18B20-2")
    assert second == {"temperature_celsius": 1.2}
    assert {s.tags["sensor_id"] for s in samples} == {
        "00000566CC39",
        "0000059352D4",
        "000005937C90",
    }


def test_bme280_pressure_to_pascals_and_humidity_ratio() -> None:
    fields = fields_of(sensor("tele_sensor_bme280.json"), "tasmota_sensor", sensor="BME280")
    assert fields == {
        "temperature_celsius": 21.7,
        "humidity_ratio": pytest.approx(0.666),
        "pressure_pascals": pytest.approx(98860.0),
    }
    sea = fields_of(sensor("tele_sensor_bme280_seapressure.json"), "tasmota_sensor")
    assert sea["sea_pressure_pascals"] > sea["pressure_pascals"]


def test_fahrenheit_and_mmhg_are_converted() -> None:
    tracker = TasmotaTracker()
    out = tracker.handle(
        "tele/dev/SENSOR",
        b'{"BME280":{"Temperature":212,"Pressure":760},"TempUnit":"F","PressureUnit":"mmHg"}',
    )
    fields = out[0].fields
    assert fields["temperature_celsius"] == pytest.approx(100.0)
    assert fields["pressure_pascals"] == pytest.approx(101325.0, rel=1e-4)


@pytest.mark.parametrize(
    ("name", "sensor_name", "field"),
    [
        ("tele_sensor_am2301_dewpoint.json", "AM2301", "dew_point_celsius"),
        ("tele_sensor_am2301_legacy_no_dewpoint.json", "AM2301", "humidity_ratio"),
        ("tele_sensor_analog_epoch.json", "ANALOG", "a0"),
        ("tele_sensor_ds18b20.json", "DS18B20", "temperature_celsius"),
        ("tele_sensor_teleinfo_no_time.json", "TIC", "papp"),
    ],
)
def test_more_sensor_shapes(name: str, sensor_name: str, field: str) -> None:
    samples = sensor(name)
    assert field in fields_of(samples, "tasmota_sensor", sensor=sensor_name)


def test_switches_and_status10_replies() -> None:
    switches = sensor("tele_sensor_switches_only.json")
    assert {s.tags["switch"]: s.fields["on"] for s in switches} == {
        "Switch1": False,
        "Switch2": True,
    }
    status = sensor("stat_status10_dual_channel_mixed.json", "stat/dev/STATUS10")
    assert fields_of(status, "tasmota_switch", switch="Switch1") == {"on": True}
    assert fields_of(status, "tasmota_sensor", sensor="ANALOG") == {"temperature_celsius": 49.6}
    sml = sensor("stat_status10_sml_meter.json", "stat/dev/STATUS10")
    meter = fields_of(sml, "tasmota_sensor", sensor="SML")
    assert meter == {"total_in": 34507.4761, "total_out": 14737.1422, "power_curr": -894}
    legacy = sensor("stat_status8_legacy_pow_r2.json", "stat/dev/STATUS8")
    assert "power_watts" in fields_of(legacy, "tasmota_energy")
    plug = sensor("stat_status10_energy_plug.json", "stat/S31B/STATUS10")
    assert fields_of(plug, "tasmota_energy")["voltage_volts"] == 121


# --- STATE, relays, LWT -------------------------------------------------------------------


def test_state_health_and_relay() -> None:
    samples = sensor("tele_state_esp8266_relay.json", "tele/dev/STATE")
    health = fields_of(samples, "tasmota_device")
    assert health == {
        "uptime_seconds": 792209,
        "heap_free_bytes": 25 * 1024,
        "load_average": 19,
        "sleep_seconds": 0.05,
        "mqtt_connections": 1,
        "wifi_quality_ratio": 1.0,
        "wifi_signal_dbm": -39,
        "wifi_links": 1,
        "wifi_channel": 1,
        "wifi_downtime_seconds": 5,
    }
    assert fields_of(samples, "tasmota_relay", relay="1") == {"on": False}


def test_state_variants() -> None:
    deep = fields_of(sensor("tele_state_deepsleep_epoch.json", "tele/d/STATE"), "tasmota_device")
    assert "wifi_signal_dbm" not in deep and deep["heap_free_bytes"] == 24 * 1024
    meter = sensor("tele_state_no_relay_meter_esp32.json", "tele/d/STATE")
    assert [s.measurement for s in meter] == ["tasmota_device"]
    light = fields_of(sensor("tele_state_esp32_light_v15.json", "tele/d/STATE"), "tasmota_device")
    assert 0 <= light["dimmer_ratio"] <= 1
    tuya = sensor("stat_state_multi_relay_tuyamcu.json", "tele/d/STATE")
    assert len([s for s in tuya if s.measurement == "tasmota_relay"]) == 5
    tz = fields_of(sensor("tele_state_timezone_in_time.json", "tele/d/STATE"), "tasmota_device")
    assert "uptime_seconds" in tz


def test_power_and_state_session_with_json_and_plain_text_on_one_topic() -> None:
    tracker = TasmotaTracker()
    relays: list[bool] = []
    online: list[bool] = []
    for topic, body in session("mqtt_session_power_and_state.tsv"):
        for sample in tracker.handle(topic, body):
            if sample.measurement == "tasmota_relay":
                relays.append(bool(sample.fields["on"]))
            if "online" in sample.fields:
                online.append(bool(sample.fields["online"]))
    assert relays == [True, True, True, False]
    assert online == [True]
    assert tracker.parse_errors == 0
    assert tracker.devices["demo-sensor"].relays == {"1": False}


def test_deep_sleep_device_goes_offline_after_each_report() -> None:
    tracker = TasmotaTracker()
    for topic, body in session("mqtt_session_am2301_deepsleep.tsv"):
        tracker.handle(topic, body)
    (state,) = tracker.devices.values()
    assert state.online is False
    assert any(key[0] == "tasmota_sensor" for key in state.readings)


# --- malformed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        payload("malformed_truncated.txt"),
        b"",
        b"[1, 2, 3]",
        b"\xff\xfe not json",
        b'"just a string"',
        b"{" + b'"k":1,' * 20000 + b'"end":1}',
    ],
)
def test_malformed_payloads_are_counted_and_skipped(body: bytes) -> None:
    tracker = TasmotaTracker()
    assert tracker.handle("tele/dev/SENSOR", body) == []
    assert tracker.parse_errors == 1
    good = tracker.handle("tele/dev/SENSOR", payload("tele_sensor_ds18b20.json"))
    assert good and tracker.parse_errors == 1


def test_wrong_types_keep_what_is_usable() -> None:
    tracker = TasmotaTracker()
    samples = tracker.handle("tele/dev/SENSOR", payload("malformed_types.json"))
    assert tracker.parse_errors == 0
    assert tracker.skipped.count >= 3
    for sample in samples:
        for value in sample.fields.values():
            assert isinstance(value, float | int | bool)


def test_bad_discovery_is_counted() -> None:
    tracker = TasmotaTracker()
    tracker.handle("tasmota/discovery/AABBCCDDEEFF/config", b'{"dn":"no topic"}')
    tracker.handle("tasmota/discovery/AABBCCDDEEFF/config", b"{broken")
    assert tracker.parse_errors == 2
    assert tracker.devices == {}


def test_ds18b20_discovery_and_a_device_without_sensors() -> None:
    tracker = TasmotaTracker()
    discovered(
        tracker,
        "2C3AE82EB8AE",
        "discovery_config_ds18b20_v11.0.0.json",
        "discovery_sensors_ds18b20_v11.0.0.json",
    )
    (state,) = tracker.devices.values()
    assert state.device is not None and state.device.sensors == ["DS18B20"]
    tracker.handle(
        f"tasmota/discovery/{state.device.mac}/sensors",
        payload("discovery_sensors_none_v11.0.0.json"),
    )
    assert state.device.sensors == []
    assert tracker.parse_errors == 0


@pytest.mark.parametrize(
    ("topic", "name", "relay_on"),
    [
        ("stat/dev/POWER", "stat_power_on.txt", True),
        ("stat/dev/RESULT", "stat_result_power.json", True),
    ],
)
def test_relay_replies(topic: str, name: str, relay_on: bool) -> None:
    samples = sensor(name, topic)
    assert fields_of(samples, "tasmota_relay", relay="1") == {"on": relay_on}


def test_lwt_offline() -> None:
    (sample,) = sensor("lwt_offline.txt", "tele/dev/LWT")
    assert sample.fields == {"online": False}


def test_status0_reply_carries_sensors_and_state() -> None:
    samples = sensor("stat_status0_v11.0.0.json", "stat/dev/STATUS0")
    ds18b20 = fields_of(samples, "tasmota_sensor", sensor="DS18B20")
    assert ds18b20 == {"temperature_celsius": 18.1}
    assert "uptime_seconds" in fields_of(samples, "tasmota_device")
    assert isinstance(fields_of(samples, "tasmota_relay", relay="1")["on"], bool)


def test_teleinfo_sensor_with_custom_full_topic() -> None:
    tracker = TasmotaTracker(full_topics=["emoncms/ch2i/factory/%topic%/%prefix%/"])
    samples = tracker.handle(
        "emoncms/ch2i/factory/denky_D6C0C0/tele/SENSOR",
        payload("tele_sensor_teleinfo_custom_fulltopic.json"),
    )
    assert fields_of(samples, "tasmota_energy")["power_watts"] == 170
    assert fields_of(samples, "tasmota_sensor", sensor="TIC")["hchp"] == 2275560


# --- bounds: names, caps, what a cap pushes out ---------------------------------------------


def recorded() -> tuple[Rejects, list[Rejected]]:
    seen: list[Rejected] = []
    return Rejects("plugs", seen.append), seen


def test_topics_without_a_usable_payload_leave_no_device() -> None:
    tracker = TasmotaTracker()
    for number in range(2000):
        tracker.handle(f"tele/garbage{number}/SENSOR", b"{}")
        tracker.handle(f"tele/garbage{number}/STATE", b'{"Nothing":1}')
        tracker.handle(f"tele/garbage{number}/INFO1", b'{"Module":"x"}')
        tracker.handle(f"stat/garbage{number}/RESULT", b'{"POWER":"maybe"}')
    assert tracker.devices == {}
    assert tracker.parse_errors == 0, "well-formed messages that say nothing are no errors"


def test_device_cap_pushes_out_the_least_recently_seen_undiscovered_device_first() -> None:
    rejects, seen = recorded()
    tracker = TasmotaTracker(rejects=rejects, limits=Limits(devices=3))
    discovered(tracker, "2CF432CC2FC5", "discovery_config_energy_plug_v11.0.0.json")
    tracker.handle("tele/a/LWT", b"Online")
    tracker.handle("tele/b/LWT", b"Online")
    tracker.handle("tele/a/STATE", payload("tele_state_esp8266_relay.json"))  # a seen again
    tracker.handle("tele/c/LWT", b"Online")
    assert list(tracker.devices) == ["NXSM200_01", "a", "c"]
    for number in range(50):
        tracker.handle(f"tele/flood{number}/LWT", b"Online")
    assert len(tracker.devices) == 3
    assert "NXSM200_01" in tracker.devices, "discovered devices outlive a flood of topics"
    assert tracker.by_mac == {"2CF432CC2FC5": "NXSM200_01"}
    assert tracker.rejects.by_kind["cap"] == 51  # b, then 50 of the flood
    assert tracker.evicted == 51
    assert seen[-1].kind == "cap" and seen[-1].topic == "tele/flood49/LWT"
    assert "max_devices" in seen[-1].reason


def test_discovered_devices_are_pushed_out_when_only_they_are_left() -> None:
    tracker = TasmotaTracker(limits=Limits(devices=1))
    discovered(tracker, "2CF432CC2FC5", "discovery_config_energy_plug_v11.0.0.json")
    discovered(tracker, "2C3AE82EB8AE", "discovery_config_ds18b20_v11.0.0.json")
    assert list(tracker.devices) == ["SONOFF_B1"]
    assert tracker.by_mac == {"2C3AE82EB8AE": "SONOFF_B1"}


def test_many_macs_claiming_one_topic_keep_one_mac_entry() -> None:
    tracker = TasmotaTracker()
    for number in range(100):
        config = {"t": "same", "mac": f"{number:012X}"}
        tracker.handle(f"tasmota/discovery/{number:012X}/config", orjson.dumps(config))
    assert list(tracker.devices) == ["same"]
    assert tracker.by_mac == {f"{99:012X}": "same"}


def test_layouts_from_discovery_are_capped_and_counted() -> None:
    added: list[FullTopic] = []
    rejects, seen = recorded()
    tracker = TasmotaTracker(rejects=rejects, limits=Limits(layouts=3), on_new_layout=added.append)
    for number in range(10):
        config = {
            "t": f"dev{number}",
            "mac": f"{number:012X}",
            "ft": f"site{number}/%prefix%/%topic%/",
        }
        tracker.handle(f"tasmota/discovery/{number:012X}/config", orjson.dumps(config))
    assert [layout.template for layout in added] == [
        "%prefix%/%topic%/",
        "%topic%/%prefix%/",
        "site0/%prefix%/%topic%/",
    ]
    assert len(tracker.filters()) == 2 + 3 * 2
    assert tracker.rejects.by_kind["cap"] == 9
    assert "max_layouts" in seen[-1].reason
    assert len(tracker.devices) == 10, "the devices are still known"


@pytest.mark.parametrize(
    ("config", "kind"),
    [
        ({"t": "dev", "mac": "not a mac"}, "name"),
        ({"t": "a/b", "mac": "AABBCCDDEEFF"}, "name"),
        ({"t": "x" * 65, "mac": "AABBCCDDEEFF"}, "name"),
        ({"t": "dev\n", "mac": "AABBCCDDEEFF"}, "name"),
        ({"t": "dev", "mac": "AABBCCDDEEFF", "ft": "#/%prefix%/%topic%/"}, "name"),
        ({"t": "dev", "mac": "AABBCCDDEEFF", "ft": "%prefix%/x%topic%/"}, "name"),
        ({"t": "dev", "mac": "AABBCCDDEEFF", "ft": "%prefix%/%topic%/%prefix%/"}, "name"),
        ({"t": "dev", "mac": "AABBCCDDEEFF", "tp": ["cmnd", "+", "tele"]}, "name"),
        ({"t": "dev", "mac": "AABBCCDDEEFF", "tp": ["cmnd", "stat", "a/b"]}, "name"),
        ({"t": ["dev"], "mac": "AABBCCDDEEFF"}, "shape"),
    ],
)
def test_discovery_names_that_cannot_become_tags_or_filters_are_refused(
    config: dict[str, object], kind: str
) -> None:
    added: list[FullTopic] = []
    rejects, seen = recorded()
    tracker = TasmotaTracker(rejects=rejects, on_new_layout=added.append)
    tracker.handle("tasmota/discovery/bad-mac/config", orjson.dumps(config))
    assert tracker.devices == {}
    assert [r.kind for r in seen] == [kind]
    assert seen[0].topic == "tasmota/discovery/bad-mac/config"
    assert seen[0].payload == orjson.dumps(config)
    assert len(added) == 2, "no layout from a refused config"


def test_optional_discovery_texts_that_cannot_be_tags_are_left_out() -> None:
    tracker = TasmotaTracker()
    config = {"t": "dev", "mac": "aa:bb:cc:dd:ee:ff", "dn": "x" * 100, "sw": "1\n2", "md": "M"}
    (info,) = tracker.handle("tasmota/discovery/whatever/config", orjson.dumps(config))
    assert info.tags == {"device": "dev", "topic": "dev", "mac": "AABBCCDDEEFF",
                         "firmware": "", "model": "M"}  # fmt: skip


def test_sensor_and_field_names_are_checked_and_fields_capped() -> None:
    rejects, seen = recorded()
    tracker = TasmotaTracker(rejects=rejects, limits=Limits(fields=3))
    body = {
        "S" * 65: {"Temperature": 1},
        "Bad\nName": {"Temperature": 1},
        "OK": {"K" * 65: 1, "A": 1, "B": 2, "C": 3, "D": 4, "Id": "line\nbreak"},
    }
    (reading,) = tracker.handle("tele/dev/SENSOR", orjson.dumps(body))
    assert reading.tags["sensor"] == "OK" and "sensor_id" not in reading.tags
    assert reading.fields == {"a": 1, "b": 2, "c": 3}
    assert sorted(r.kind for r in seen) == ["cap", "name"]


def test_readings_per_device_are_capped_least_recently_seen_out() -> None:
    tracker = TasmotaTracker(limits=Limits(readings=3))
    for name in ("A", "B", "C", "A", "D"):
        tracker.handle("tele/dev/SENSOR", orjson.dumps({name: {"Temperature": 1}}))
    sensors = [dict(key[1])["sensor"] for key in tracker.devices["dev"].readings]
    assert sensors == ["C", "A", "D"]
    assert tracker.rejects.by_kind["cap"] == 1
    big = {f"S{number}": {"Temperature": number} for number in range(10)}
    assert len(tracker.handle("tele/dev/SENSOR", orjson.dumps(big))) == 3


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"x" * (MAX_PAYLOAD + 1), "too_large"),
        (b"{broken", "json"),
        (b"[1]", "shape"),
        (b'{"S":' * 6 + b"1" + b"}" * 6, "shape"),  # deeper than sensors nest
        (b'{"S":' * 2000 + b"1" + b"}" * 2000, "json"),  # deeper than orjson reads
    ],
)
def test_each_rejection_carries_kind_reason_topic_and_payload(body: bytes, kind: str) -> None:
    rejects, seen = recorded()
    tracker = TasmotaTracker(rejects=rejects, max_payload=MAX_PAYLOAD)
    assert tracker.handle("tele/dev/SENSOR", body) == []
    (rejected,) = seen
    assert (rejected.source, rejected.kind, rejected.topic) == ("plugs", kind, "tele/dev/SENSOR")
    assert rejected.payload == body and rejected.reason
    assert tracker.parse_errors == rejects.total == 1


def test_values_that_are_no_finite_numbers_are_skipped() -> None:
    tracker = TasmotaTracker()
    body = (
        b'{"ENERGY":{"Total":1e308,"Power":"NaN","Voltage":"Infinity","Current":"'
        + b"9" * 400
        + b'","Frequency":"-1e999","Factor":0.5},"PressureUnit":{"a":1},"TempUnit":[1]}'
    )
    (energy,) = tracker.handle("tele/dev/SENSOR", body)
    assert energy.fields == {"power_factor_ratio": 0.5}
    assert tracker.skipped.count == 1, "Total overflows in joules; texts are no skipped values"


def test_relay_numbers_are_bounded() -> None:
    tracker = TasmotaTracker()
    body = {f"POWER{number}": "ON" for number in range(0, 120)}
    tracker.handle("stat/dev/RESULT", orjson.dumps(body))
    assert sorted(tracker.devices["dev"].relays, key=int) == [str(n) for n in range(1, 33)]


def test_lwt_that_is_neither_online_nor_offline_is_counted() -> None:
    tracker = TasmotaTracker()
    assert tracker.handle("tele/dev/LWT", b"maybe") == []
    assert tracker.devices == {}
    assert tracker.rejects.by_kind["shape"] == 1


# --- schema ------------------------------------------------------------------------------------


def validate(**settings: object) -> dict[str, object]:
    return cast(dict[str, object], vol.Schema(SCHEMA)({"broker": "home", **settings}))


def test_schema_defaults_hold_the_caps() -> None:
    config = validate()
    assert config["discovery_prefix"] == "tasmota/discovery"
    assert (config["max_devices"], config["max_layouts"]) == (5000, 8)
    assert validate(discovery_prefix="my/disco/")["discovery_prefix"] == "my/disco"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("discovery_prefix", ""),
        ("discovery_prefix", "/"),
        ("discovery_prefix", "#"),
        ("discovery_prefix", "tasmota/+/discovery"),
        ("discovery_prefix", 5),
        ("max_payload", True),
        ("max_payload", 100),
        ("max_devices", True),
        ("max_devices", 0),
        ("max_devices", "10"),
        ("max_layouts", False),
        ("max_readings", 1.5),
        ("max_fields", None),
    ],
)
def test_schema_refuses_bad_settings_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(vol.Invalid) as caught:
        validate(**{key: value})
    assert [str(part) for part in caught.value.path] == [key]


@pytest.mark.parametrize(
    "template",
    ["%topic%/", "%prefix%/%topic%/+/", "%prefix%/a%topic%/", "x" * 101 + "%prefix%/%topic%"],
)
def test_schema_refuses_full_topics_that_cannot_become_filters(template: str) -> None:
    with pytest.raises(vol.Invalid) as caught:
        validate(full_topics=[template])
    assert caught.value.path[0] == "full_topics"


# --- the runner source on a real broker ---------------------------------------------------------


async def test_source_counts_every_rejection_and_survives_a_failing_handler(
    mosquitto: Mosquitto,
) -> None:
    session = BrokerSession("home", mosquitto.settings, backoff=Backoff(initial=0.05, maximum=0.2))
    dead_letters: list[Rejected] = []
    config = validate(max_devices=2, new_device_hold=0)
    source = TasmotaSource("plugs", config, SourceContext({"home": session}, dead_letters.append))
    emitted: list[Sample] = []
    failures = iter([True])

    def emit(sample: Sample) -> None:
        if next(failures, False):
            raise RuntimeError("a sink that fails once")
        emitted.append(sample)

    running = asyncio.create_task(session.run())
    task = asyncio.create_task(source.run(emit))
    try:
        await asyncio.wait_for(session.wait_connected(), 10)
        await asyncio.sleep(0.2)
        await mosquitto.publish(
            [
                ("tele/a/SENSOR", payload("tele_sensor_ds18b20.json")),  # emit fails
                ("tele/a/SENSOR", b"{broken"),
                ("tele/b/LWT", b"Online"),
                ("tele/c/LWT", b"Online"),  # pushes a out
                ("tele/d/SENSOR", payload("tele_sensor_ds18b20.json")),
            ]
        )
        async with asyncio.timeout(10):
            while not any(s.tags.get("topic") == "d" for s in emitted):
                await asyncio.sleep(0.02)
        assert not task.done(), "the source runs on"
    finally:
        task.cancel()
        running.cancel()
        for waiting in (task, running):
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
    assert [r.kind for r in dead_letters] == ["exception", "json", "cap", "cap"]
    assert dead_letters[0].reason == "RuntimeError: a sink that fails once"
    assert dead_letters[1].topic == "tele/a/SENSOR" and dead_letters[1].payload == b"{broken"
    assert source.stats.parse_errors == source.rejects.total == 4
    assert source.stats.messages == 5
    assert list(source.tracker.devices) == ["c", "d"]
