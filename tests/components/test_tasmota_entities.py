"""Tasmota entities in Home Assistant: from retained discovery, across restarts, in HA's units.

Against a real Mosquitto. A "restart" is a fresh setup with only what the broker retained
(Tasmota retains its discovery and LWT, never its telemetry).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.components.sensor.const import DEVICE_CLASS_STATE_CLASSES, DEVICE_CLASS_UNITS
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import mock_restore_cache_with_extra_data

from custom_components.fleet_metrics.core.sources.tasmota.telemetry import KNOWN_FIELDS
from custom_components.fleet_metrics.tasmota.fields import HEALTH_FIELDS, SENSOR_FIELDS
from tests.mosquitto import Mosquitto

from .helpers import PLUG_MAC, fixture, publish_plug, setup, state_of, tasmota_entry, until
from .test_translations import STRINGS

DS18B20_MAC = "2C3AE82EB8AE"
# Tasmota's ENERGY keys and the entity each becomes on the plug
PLUG_ENERGY = {
    "Total": "energy_total",
    "Yesterday": "energy_yesterday",
    "Today": "energy_today",
    "Period": "energy_period",
    "Power": "energy_power",
    "ApparentPower": "energy_apparent_power",
    "ReactivePower": "energy_reactive_power",
    "Factor": "energy_power_factor",
    "Voltage": "energy_voltage",
    "Current": "energy_current",
}


def energy_of(name: str) -> dict[str, Any]:
    """The ENERGY object of a telemetry fixture, or of a discovery snapshot."""
    payload = json.loads(fixture(name))
    energy: dict[str, Any] = payload.get("sn", payload)["ENERGY"]
    return energy


def fleet_sensors(hass: HomeAssistant, entry_id: str) -> list[er.RegistryEntry]:
    registry = er.async_get(hass)
    return [
        e for e in er.async_entries_for_config_entry(registry, entry_id) if e.domain == "sensor"
    ]


async def publish_ds18b20(broker: Mosquitto) -> None:
    await broker.publish(
        [
            (
                f"tasmota/discovery/{DS18B20_MAC}/config",
                fixture("discovery_config_ds18b20_v11.0.0.json"),
            ),
            (
                f"tasmota/discovery/{DS18B20_MAC}/sensors",
                fixture("discovery_sensors_ds18b20_v11.0.0.json"),
            ),
            ("tele/SONOFF_B1/LWT", b"Online"),
        ],
        retain=True,
    )


# --- after a restart: retained discovery only --------------------------------------------


async def test_retained_discovery_alone_makes_every_sensor_with_its_snapshot_value(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    """No telemetry at all: each sensor of each device's snapshot exists, available, with the
    snapshot's value; telemetry then replaces it and brings what the snapshot lacked."""
    await publish_plug(mosquitto)
    await publish_ds18b20(mosquitto)
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    snapshot = energy_of("discovery_sensors_energy_plug_v11.0.0.json")
    in_snapshot = {key: entity for key, entity in PLUG_ENERGY.items() if key in snapshot}
    assert len(in_snapshot) == 9, "the snapshot has every field but Period"
    expected = {f"sensor.nxsm200_01_{entity}" for entity in in_snapshot.values()}
    expected.add("sensor.sonoff_b1_ds18b20_temperature")
    await until(
        hass, lambda: {e.entity_id for e in fleet_sensors(hass, entry.entry_id)} == expected
    )
    for key, entity in in_snapshot.items():
        assert state_of(hass, f"sensor.nxsm200_01_{entity}") == str(float(snapshot[key])), key
    assert state_of(hass, "sensor.sonoff_b1_ds18b20_temperature") == "18.1"
    # the relay discovery announced exists too; its state is unknown until the device says
    assert state_of(hass, "binary_sensor.nxsm200_01_relay_1") == STATE_UNKNOWN

    await mosquitto.publish(
        [
            ("tele/NXSM200_01/SENSOR", fixture("tele_sensor_energy_plug_pow_r2.json")),
            ("tele/NXSM200_01/STATE", fixture("tele_state_esp8266_relay.json")),
        ]
    )
    telemetry = energy_of("tele_sensor_energy_plug_pow_r2.json")
    await until(hass, lambda: state_of(hass, "sensor.nxsm200_01_energy_period") is not None)
    for key, entity in PLUG_ENERGY.items():
        assert state_of(hass, f"sensor.nxsm200_01_{entity}") == str(float(telemetry[key])), key
    assert state_of(hass, "binary_sensor.nxsm200_01_relay_1") == STATE_OFF


async def test_snapshot_before_its_config_or_broken_changes_nothing(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    """A snapshot for a MAC discovery has not named, or without its ``sn`` object, makes no
    entity; the broken one is counted."""
    await mosquitto.publish(
        [
            (
                "tasmota/discovery/AABBCCDDEEFF/sensors",
                fixture("discovery_sensors_ds18b20_v11.0.0.json"),
            ),
            (
                f"tasmota/discovery/{PLUG_MAC}/config",
                fixture("discovery_config_energy_plug_v11.0.0.json"),
            ),
            (f"tasmota/discovery/{PLUG_MAC}/sensors", b'{"sensors":{},"ver":1}'),
            ("tele/NXSM200_01/LWT", b"Online"),
        ],
        retain=True,
    )
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_online") == STATE_ON)
    await until(hass, lambda: entry.runtime_data.coordinator.rejects.by_kind["shape"] == 1)
    assert fleet_sensors(hass, entry.entry_id) == []


# --- restored state ---------------------------------------------------------------------


async def test_restored_state_wins_over_the_snapshot_until_telemetry(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    """HA's restore cache (as after a restart): the energy total comes back instead of the
    older snapshot, a state saved in another unit is not taken, a relay comes back; fresh
    telemetry replaces each."""
    mock_restore_cache_with_extra_data(
        hass,
        (
            (
                State("sensor.nxsm200_01_energy_total", "196.5"),
                {"native_value": 196.5, "native_unit_of_measurement": "kWh"},
            ),
            (
                State("sensor.nxsm200_01_energy_today", "900"),
                {"native_value": 900, "native_unit_of_measurement": "Wh"},
            ),
            (State("binary_sensor.nxsm200_01_relay_1", STATE_ON), {}),
        ),
    )
    await publish_plug(mosquitto)
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: state_of(hass, "sensor.nxsm200_01_energy_total") == "196.5")
    assert state_of(hass, "sensor.nxsm200_01_energy_today") == "0.0", "the snapshot's, in kWh"
    assert state_of(hass, "binary_sensor.nxsm200_01_relay_1") == STATE_ON

    await mosquitto.publish(
        [
            ("tele/NXSM200_01/SENSOR", fixture("tele_sensor_energy_plug_padded_numbers.json")),
            ("tele/NXSM200_01/STATE", fixture("tele_state_esp8266_relay.json")),
        ]
    )
    await until(hass, lambda: state_of(hass, "sensor.nxsm200_01_energy_total") == "196.708")
    await until(hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_relay_1") == STATE_OFF)


async def test_a_reload_keeps_the_last_telemetry_not_the_snapshot(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    """Through HA's own restore path: telemetry is not retained, so after a reload only the
    saved state can show the last total, and it does."""
    await publish_plug(mosquitto)
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: state_of(hass, "sensor.nxsm200_01_energy_total") == "72.814")
    await mosquitto.publish(
        [("tele/NXSM200_01/SENSOR", fixture("tele_sensor_energy_plug_padded_numbers.json"))]
    )
    await until(hass, lambda: state_of(hass, "sensor.nxsm200_01_energy_total") == "196.708")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    await until(
        hass,
        lambda: (
            state_of(hass, "binary_sensor.nxsm200_01_online") == STATE_ON
            and state_of(hass, "sensor.nxsm200_01_energy_power") == "0.0"
        ),
    )
    assert state_of(hass, "sensor.nxsm200_01_energy_total") == "196.708"
    assert state_of(hass, "sensor.nxsm200_01_energy_voltage") == "0.0"


# --- names, units, classes --------------------------------------------------------------


def attrs(hass: HomeAssistant, entity_id: str) -> dict[str, Any]:
    state = hass.states.get(entity_id)
    assert state is not None and state.state != STATE_UNAVAILABLE, entity_id
    return {"state": state.state, **state.attributes}


async def test_single_phase_energy_in_kwh_and_wh_with_honest_state_classes(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    await publish_plug(mosquitto)
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    await mosquitto.publish(
        [("tele/NXSM200_01/SENSOR", fixture("tele_sensor_energy_plug_pow_r2.json"))]
    )
    await until(hass, lambda: state_of(hass, "sensor.nxsm200_01_energy_period") == "217.0")
    expected = {
        # entity: (friendly name, unit, state class)
        "energy_total": ("Energy total", "kWh", "total"),
        "energy_today": ("Energy today", "kWh", "total_increasing"),
        "energy_yesterday": ("Energy yesterday", "kWh", None),
        "energy_period": ("Energy period", "Wh", None),
    }
    for entity, (name, unit, state_class) in expected.items():
        state = attrs(hass, f"sensor.nxsm200_01_{entity}")
        assert state["friendly_name"] == f"NXSM200_01 {name}"
        assert state["device_class"] == "energy"
        assert state["unit_of_measurement"] == unit
        assert state.get("state_class") == state_class
        assert "last_reset" not in state
    assert attrs(hass, "sensor.nxsm200_01_energy_total")["state"] == "6.294"


async def test_three_phase_meters_named_like_the_rest(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    """Arrays become one entity per phase, "… L1"; the sums of today are energy too."""
    await setup(hass, tasmota_entry(mosquitto))
    await announce(hass, mosquitto, "modbus", "dual", "shelly")
    await mosquitto.publish(
        [
            ("shelly/tele/SENSOR", fixture("tele_sensor_energy_3phase_shelly3em_v12.1.1.json")),
            ("modbus/tele/SENSOR", fixture("tele_sensor_energy_3phase_modbus.json")),
            ("dual/tele/SENSOR", fixture("tele_sensor_energy_dual_channel_sonoff_dual.json")),
        ]
    )
    await until(hass, lambda: state_of(hass, "sensor.dual_energy_today_l2") is not None)
    await until(hass, lambda: state_of(hass, "sensor.modbus_energy_period_l3") is not None)
    modbus = energy_of("tele_sensor_energy_3phase_modbus.json")
    for phase in (1, 2, 3):
        period = attrs(hass, f"sensor.modbus_energy_period_l{phase}")
        assert period["friendly_name"] == f"modbus Energy period L{phase}"
        assert (period["unit_of_measurement"], period["device_class"]) == ("Wh", "energy")
        assert "state_class" not in period
        imported = attrs(hass, f"sensor.modbus_energy_import_l{phase}")
        assert imported["friendly_name"] == f"modbus Energy import L{phase}"
        assert imported["state"] == str(modbus["ImportActive"][phase - 1])
        assert imported["unit_of_measurement"] == "kWh"
        assert imported["state_class"] == "total_increasing"
        power = attrs(hass, f"sensor.modbus_energy_power_l{phase}")
        assert power["friendly_name"] == f"modbus Energy power L{phase}"
        assert power["state"] == str(modbus["Power"][phase - 1])
    for direction in ("import", "export"):
        today = attrs(hass, f"sensor.modbus_energy_today_sum_{direction}")
        assert today["friendly_name"] == f"modbus Energy today sum {direction}"
        assert today["unit_of_measurement"] == "kWh"
        assert today["device_class"] == "energy"
        assert today["state_class"] == "total_increasing"
    dual = energy_of("tele_sensor_energy_dual_channel_sonoff_dual.json")
    for phase in (1, 2):
        today = attrs(hass, f"sensor.dual_energy_today_l{phase}")
        assert today["friendly_name"] == f"dual Energy today L{phase}"
        assert today["state"] == str(dual["Today"][phase - 1])
        assert today["state_class"] == "total_increasing"
        total = attrs(hass, f"sensor.dual_energy_total_l{phase}")
        assert total["friendly_name"] == f"dual Energy total L{phase}"
        assert total["state_class"] == "total"
    # a Shelly 3EM: Frequency per phase, and a Yesterday below zero (no state class minds)
    await until(hass, lambda: state_of(hass, "sensor.shelly_energy_frequency_l2") is not None)
    frequency = attrs(hass, "sensor.shelly_energy_frequency_l2")
    assert frequency["friendly_name"] == "shelly Energy frequency L2"
    assert frequency["state"] == "48.85"
    yesterday = attrs(hass, "sensor.shelly_energy_yesterday")
    assert (yesterday["state"], yesterday["unit_of_measurement"]) == ("-6e-05", "kWh")
    names = [s.attributes.get("friendly_name", "") for s in hass.states.async_all("sensor")]
    assert not [name for name in names if re.search(r"joules|watts|volts|ratio", name)]


async def test_an_unknown_field_gets_a_readable_name_and_no_unit(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    await setup(hass, tasmota_entry(mosquitto))
    await announce(hass, mosquitto, "plug")
    payload = json.loads(fixture("tele_sensor_energy_plug_pow_r2.json"))
    payload["ENERGY"]["FooBar"] = 12.5
    payload["ENERGY"]["CurrentNeutral"] = [0.011, 0.02]
    await mosquitto.publish([("plug/tele/SENSOR", orjson.dumps(payload))])
    await until(hass, lambda: state_of(hass, "sensor.plug_energy_foo_bar") is not None)
    foo = attrs(hass, "sensor.plug_energy_foo_bar")
    assert foo["friendly_name"] == "plug Energy foo bar"
    assert foo["state"] == "12.5"
    assert "unit_of_measurement" not in foo
    assert "device_class" not in foo
    assert foo["state_class"] == "measurement"
    neutral = attrs(hass, "sensor.plug_energy_current_neutral_l2")
    assert neutral["friendly_name"] == "plug Energy current neutral L2"
    assert "unit_of_measurement" not in neutral


async def announce(hass: HomeAssistant, broker: Mosquitto, *topics: str) -> None:
    """Devices without discovery (FullTopic %topic%/%prefix%/) say they are online; once
    HA shows it, the session is subscribed and telemetry published next is seen."""
    await broker.publish([(f"{topic}/tele/LWT", b"Online") for topic in topics], retain=True)
    online = {f"binary_sensor.{topic}_online" for topic in topics}
    await until(hass, lambda: all(state_of(hass, e) == STATE_ON for e in online))


# --- every field the core knows, as HA wants it ------------------------------------------


def test_every_field_the_core_names_has_a_spec_that_ha_accepts() -> None:
    """A field the core names with a unit suffix but HA has no spec for would reach the user
    as "Energy period joules" with no unit: every one has a spec, and each spec's device
    class, unit and state class are a combination HA 2025.4 accepts."""
    core_fields = {name for name, _ in KNOWN_FIELDS.values()}
    assert core_fields - set(SENSOR_FIELDS) == set()
    for name, spec in {**SENSOR_FIELDS, **HEALTH_FIELDS}.items():
        if spec.device_class is None:
            continue
        units = DEVICE_CLASS_UNITS.get(spec.device_class)
        assert units is None or spec.unit in units, name
        state_classes = DEVICE_CLASS_STATE_CLASSES.get(spec.device_class, set())
        assert spec.state_class is None or spec.state_class in state_classes, name
        if spec.device_class is SensorDeviceClass.ENERGY:
            assert spec.unit in ("Wh", "kWh"), name


def test_every_spec_has_a_name_with_its_placeholders() -> None:
    names = {key: value["name"] for key, value in STRINGS["entity"]["sensor"].items()}
    for spec in SENSOR_FIELDS.values():
        assert set(re.findall(r"\{(\w+)\}", names[spec.translation_key])) == {"sensor"}
        phased = names[spec.phase_translation_key]
        assert set(re.findall(r"\{(\w+)\}", phased)) == {"sensor", "phase"}
        assert phased == names[spec.translation_key] + " {phase}"
    for spec in HEALTH_FIELDS.values():
        assert spec.translation_key in names
