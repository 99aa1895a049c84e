"""Tasmota switch inputs as binary sensors, against a real Mosquitto: made from the retained
discovery snapshot at once, then following telemetry; the state from before a restart wins
over the older snapshot until telemetry arrives; a device whose discovery is withdrawn
takes its switches and relays down with it; a device with its own FullTopic layout
(``%topic%/%prefix%/``) gets its switches too."""

from __future__ import annotations

import json

from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_component import EntityComponent
from pytest_homeassistant_custom_component.common import mock_restore_cache

from custom_components.fleet_metrics.const import DOMAIN
from custom_components.fleet_metrics.tasmota.binary_sensor import RelaySensor, SwitchInputSensor
from tests.mosquitto import Mosquitto

from .helpers import PLUG_MAC, fixture, setup, state_of, tasmota_entry, until

PLUG_TOPIC = "NXSM200_01"
SWITCH_1 = "binary_sensor.nxsm200_01_switch1"
SWITCH_2 = "binary_sensor.nxsm200_01_switch2"
RELAY_1 = "binary_sensor.nxsm200_01_relay_1"


def snapshot(**switches: str) -> bytes:
    """The retained discovery ``sensors`` message of a plug with switch inputs."""
    return json.dumps({"sn": {"Time": "2022-02-23T11:02:48", **switches}, "ver": 1}).encode()


async def publish_plug_with_switches(broker: Mosquitto, **switches: str) -> None:
    """The energy plug's retained discovery, its snapshot listing ``switches``, and its LWT."""
    await broker.publish(
        [
            (
                f"tasmota/discovery/{PLUG_MAC}/config",
                fixture("discovery_config_energy_plug_v11.0.0.json"),
            ),
            (f"tasmota/discovery/{PLUG_MAC}/sensors", snapshot(**switches)),
            (f"tele/{PLUG_TOPIC}/LWT", b"Online"),
        ],
        retain=True,
    )


async def telemetry(broker: Mosquitto, **switches: str) -> None:
    body = {"Time": "2022-02-23T11:05:00", **switches}
    await broker.publish([(f"tele/{PLUG_TOPIC}/SENSOR", json.dumps(body).encode())])


def unique_ids(hass: HomeAssistant) -> set[str]:
    return {
        e.unique_id
        for e in er.async_get(hass).entities.values()
        if e.domain == "binary_sensor" and e.platform == DOMAIN
    }


async def test_switches_come_from_the_snapshot_then_follow_telemetry(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    await publish_plug_with_switches(mosquitto, Switch1="ON", Switch2="OFF")
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: state_of(hass, SWITCH_2) is not None)
    assert state_of(hass, SWITCH_1) == STATE_ON
    assert state_of(hass, SWITCH_2) == STATE_OFF
    mac = PLUG_MAC
    assert {f"tasmota_{mac}_switch_Switch1", f"tasmota_{mac}_switch_Switch2"} <= unique_ids(hass)
    registry = er.async_get(hass)
    switch = registry.async_get(SWITCH_1)
    assert switch is not None and switch.translation_key == "switch_input"
    assert switch.original_device_class is None  # an input is no power or connectivity

    # The device's telemetry (tele_sensor_switches_only.json: Switch1 OFF, Switch2 ON).
    await mosquitto.publish(
        [(f"tele/{PLUG_TOPIC}/SENSOR", fixture("tele_sensor_switches_only.json"))]
    )
    await until(hass, lambda: state_of(hass, SWITCH_1) == STATE_OFF)
    assert state_of(hass, SWITCH_2) == STATE_ON

    # A switch telemetry brings later, never in the snapshot, gets its entity as it arrives.
    await telemetry(mosquitto, Switch1="ON", Switch2="ON", Switch3="OFF")
    await until(hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_switch3") == STATE_OFF)
    assert state_of(hass, SWITCH_1) == STATE_ON
    await hass.config_entries.async_unload(entry.entry_id)


async def test_the_state_before_a_restart_wins_over_the_snapshot_until_telemetry(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    """The snapshot is from the device's last discovery, possibly days old; HA saw later."""
    mock_restore_cache(hass, [State(SWITCH_1, STATE_OFF), State(SWITCH_2, "unavailable")])
    await publish_plug_with_switches(mosquitto, Switch1="ON", Switch2="ON")
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: state_of(hass, SWITCH_2) is not None)
    assert state_of(hass, SWITCH_1) == STATE_OFF  # restored, not the snapshot's ON
    assert state_of(hass, SWITCH_2) == STATE_ON  # nothing usable restored: the snapshot
    await telemetry(mosquitto, Switch1="ON", Switch2="OFF")
    await until(hass, lambda: state_of(hass, SWITCH_1) == STATE_ON)
    assert state_of(hass, SWITCH_2) == STATE_OFF
    await hass.config_entries.async_unload(entry.entry_id)


async def test_withdrawn_discovery_takes_the_switches_and_relays_down(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    """An empty retained config: the device was reset or its discovery switched off."""
    await publish_plug_with_switches(mosquitto, Switch1="ON")
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: state_of(hass, SWITCH_1) == STATE_ON)
    assert state_of(hass, RELAY_1) is not None

    await mosquitto.publish([(f"tasmota/discovery/{PLUG_MAC}/config", b"")], retain=True)
    await until(hass, lambda: state_of(hass, SWITCH_1) == STATE_UNAVAILABLE)
    assert state_of(hass, RELAY_1) == STATE_UNAVAILABLE
    # What the entities say of a device the tracker no longer has: nothing.
    component: EntityComponent[SwitchInputSensor | RelaySensor] = hass.data["binary_sensor"]
    switch, relay = component.get_entity(SWITCH_1), component.get_entity(RELAY_1)
    assert isinstance(switch, SwitchInputSensor) and isinstance(relay, RelaySensor)
    assert switch.device_state is None and switch.is_on is None
    assert relay.device_state is None and relay.is_on is None
    await hass.config_entries.async_unload(entry.entry_id)


async def test_a_device_with_its_own_full_topic_gets_its_switches(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    """``ft`` ``house/%prefix%/%topic%/``, neither of the layouts subscribed from the start:
    the entry subscribes to it once discovery names it, and the telemetry arrives."""
    entry = tasmota_entry(mosquitto)
    await setup(hass, entry)
    config = json.loads(fixture("discovery_config_topic_first_ha_test.json"))
    config["ft"] = "house/%prefix%/%topic%/"
    await mosquitto.publish(
        [
            ("tasmota/discovery/00000049A3BC/config", json.dumps(config).encode()),
            ("house/tele/tasmota_49A3BC/LWT", b"Online"),
        ],
        retain=True,
    )
    await until(hass, lambda: state_of(hass, "binary_sensor.tasmota_online") == STATE_ON)
    await mosquitto.publish(
        [("house/tele/tasmota_49A3BC/SENSOR", b'{"Time":"2021-06-27T15:03:44","Switch1":"ON"}')]
    )
    await until(hass, lambda: state_of(hass, "binary_sensor.tasmota_switch1") == STATE_ON)
    assert "tasmota_00000049A3BC_switch_Switch1" in unique_ids(hass)
    await hass.config_entries.async_unload(entry.entry_id)
