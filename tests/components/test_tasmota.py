"""Tasmota in Home Assistant, against a real Mosquitto."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import (
    CONF_HOST,
    CONF_PASSWORD,
    CONF_PORT,
    CONF_USERNAME,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator, WebSocketGenerator

from custom_components.fleet_metrics.const import (
    CONF_DISCOVERY_PREFIX,
    CONF_EXCLUDED_DEVICES,
    DOMAIN,
)
from tests.mosquitto import Mosquitto

from .conftest import Reloads
from .helpers import PLUG_MAC, fixture, publish_plug, setup, state_of, until
from .helpers import tasmota_entry as entry_for

PLUG = (DOMAIN, f"tasmota_{PLUG_MAC}")


def form(broker: Mosquitto) -> dict[str, object]:
    """The Tasmota form filled in for a test broker."""
    return {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: broker.port,
        CONF_DISCOVERY_PREFIX: "tasmota/discovery",
    }


# --- config flow ------------------------------------------------------------------------


async def start_flow(hass: HomeAssistant) -> dict:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "tasmota"}
    )


async def test_flow_creates_entry_after_connecting(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    result = await start_flow(hass)
    assert result["step_id"] == "tasmota"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        form(mosquitto),
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Tasmota"  # the address is in the unique id only
    assert result["result"].unique_id == f"127.0.0.1:{mosquitto.port}/tasmota/discovery"
    await hass.async_block_till_done()
    duplicate = await start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        duplicate["flow_id"],
        form(mosquitto),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_flow_is_prefilled_from_ha_mqtt_entry(hass: HomeAssistant) -> None:
    MockConfigEntry(
        domain="mqtt", data={"broker": "mqtt.lan", CONF_PORT: 8883, CONF_USERNAME: "ha"}
    ).add_to_hass(hass)
    result = await start_flow(hass)
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested[CONF_HOST] == "mqtt.lan"
    assert suggested[CONF_PORT] == 8883
    assert suggested[CONF_USERNAME] == "ha"


async def test_flow_errors(hass: HomeAssistant, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "right"})
    result = await start_flow(hass)
    base = form(broker)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], base)
    assert result["errors"] == {"base": "cannot_connect"}
    await broker.start()
    try:
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**base, CONF_USERNAME: "fleet", CONF_PASSWORD: "wrong"}
        )
        assert result["errors"] == {"base": "invalid_broker_auth"}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**base, CONF_USERNAME: "fleet", CONF_PASSWORD: "right"}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        await hass.async_block_till_done()
        await hass.config_entries.async_unload(result["result"].entry_id)
    finally:
        await broker.stop()


async def test_refused_credentials_start_reauth(hass: HomeAssistant, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "new"})
    await broker.start()
    try:
        entry = entry_for(broker, **{CONF_USERNAME: "fleet", CONF_PASSWORD: "old"})
        entry.add_to_hass(hass)
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.SETUP_ERROR
        (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"], {CONF_USERNAME: "fleet", CONF_PASSWORD: "new"}
        )
        assert result["reason"] == "reauth_successful"
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await broker.stop()


async def test_broker_down_at_setup_retries(hass: HomeAssistant, tmp_path: Path) -> None:
    entry = entry_for(Mosquitto(tmp_path))
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_RETRY


# --- devices and entities ---------------------------------------------------------------


async def test_discovered_device_gets_device_and_entities_as_data_arrives(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    await publish_plug(mosquitto)
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: device_registry.async_get_device(identifiers={PLUG}) is not None)
    device = device_registry.async_get_device(identifiers={PLUG})
    assert device is not None
    assert device.name == "NXSM200_01"
    assert device.model == "NXSM200"
    assert device.sw_version == "11.0.0"
    assert device.configuration_url == "http://192.168.2.33"
    assert (dr.CONNECTION_NETWORK_MAC, "2c:f4:32:cc:2f:c5") in device.connections
    await until(hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_online") == STATE_ON)

    await mosquitto.publish(
        [
            ("tele/NXSM200_01/SENSOR", fixture("tele_sensor_energy_plug_pow_r2.json")),
            ("tele/NXSM200_01/STATE", fixture("tele_state_esp8266_relay.json")),
        ]
    )
    await until(hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_relay_1") == STATE_OFF)
    await until(hass, lambda: state_of(hass, "sensor.nxsm200_01_energy_power") == "2635.0")
    power = hass.states.get("sensor.nxsm200_01_energy_power")
    assert power is not None
    assert power.attributes["unit_of_measurement"] == "W"
    assert power.attributes["device_class"] == "power"
    total = hass.states.get("sensor.nxsm200_01_energy_total")
    assert total is not None
    assert total.attributes["unit_of_measurement"] == "kWh"
    assert total.attributes["state_class"] == "total"
    assert state_of(hass, "sensor.nxsm200_01_wi_fi_signal") == "-39.0"

    # LWT offline: measurements unavailable, connectivity says off
    await mosquitto.publish([("tele/NXSM200_01/LWT", b"Offline")], retain=True)
    await until(hass, lambda: state_of(hass, "sensor.nxsm200_01_energy_power") == STATE_UNAVAILABLE)
    assert state_of(hass, "binary_sensor.nxsm200_01_online") == STATE_OFF


async def test_pressure_and_humidity_in_ha_units_for_an_undiscovered_device(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    await setup(hass, entry_for(mosquitto))
    await asyncio.sleep(0.3)
    await mosquitto.publish([("weather/tele/SENSOR", fixture("tele_sensor_bme280.json"))])
    await until(hass, lambda: state_of(hass, "sensor.weather_bme280_pressure") is not None)
    assert state_of(hass, "sensor.weather_bme280_pressure") == "988.6"
    assert state_of(hass, "sensor.weather_bme280_humidity") == "66.6"
    assert state_of(hass, "sensor.weather_bme280_temperature") == "21.7"


async def test_broker_loss_makes_entities_unavailable_and_recovers(
    hass: HomeAssistant, mosquitto: Mosquitto
) -> None:
    await publish_plug(mosquitto)
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_online") == STATE_ON)
    await mosquitto.stop()
    await until(
        hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_online") == STATE_UNAVAILABLE
    )
    await mosquitto.start()
    await publish_plug(mosquitto)  # the restarted test broker has no persistence
    await until(hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_online") == STATE_ON, 20)


async def test_options_offer_seen_devices_save_exclusions_and_reload_once(
    hass: HomeAssistant, mosquitto: Mosquitto, reloads: Reloads
) -> None:
    await publish_plug(mosquitto)
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: bool(entry.runtime_data.coordinator.tracker.by_mac))
    reloads.forget()
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "devices"
    selector = result["data_schema"].schema[CONF_EXCLUDED_DEVICES]
    options = selector.config["options"]
    assert {"value": PLUG_MAC, "label": f"NXSM200_01 ({PLUG_MAC})"} in options
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_EXCLUDED_DEVICES: [PLUG_MAC]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {CONF_EXCLUDED_DEVICES: [PLUG_MAC]}
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert reloads.reloads == reloads.setups == [entry.entry_id]


async def test_excluded_device_gets_no_entities(
    hass: HomeAssistant, mosquitto: Mosquitto, entity_registry: er.EntityRegistry
) -> None:
    await publish_plug(mosquitto)
    await mosquitto.publish([("other/tele/LWT", b"Online")], retain=True)
    entry = entry_for(mosquitto)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_EXCLUDED_DEVICES: [PLUG_MAC]})
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await until(hass, lambda: state_of(hass, "binary_sensor.other_online") == STATE_ON)
    tracker = entry.runtime_data.coordinator.tracker
    assert tracker.by_mac_state(PLUG_MAC) is not None, "the plug was seen"
    entities = er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    assert [e.entity_id for e in entities] == ["binary_sensor.other_online"]


async def test_device_can_be_removed(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    mosquitto: Mosquitto,
    device_registry: dr.DeviceRegistry,
) -> None:
    assert await async_setup_component(hass, "config", {})
    await publish_plug(mosquitto)
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    await until(hass, lambda: device_registry.async_get_device(identifiers={PLUG}) is not None)
    device = device_registry.async_get_device(identifiers={PLUG})
    assert device is not None
    client = await hass_ws_client(hass)
    response = await client.remove_device(device.id, entry.entry_id)
    assert response["success"]
    assert device_registry.async_get_device(identifiers={PLUG}) is None
    assert entry.runtime_data.coordinator.tracker.by_mac_state(PLUG_MAC) is None


async def test_diagnostics_redact_credentials_addresses_and_device_ids(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path, users={"fleet": "s3cret"})
    await broker.start()
    try:
        await broker.publish(
            [
                (
                    f"tasmota/discovery/{PLUG_MAC}/config",
                    fixture("discovery_config_energy_plug_v11.0.0.json"),
                ),
                ("tele/NXSM200_01/SENSOR", fixture("tele_sensor_energy_plug_pow_r2.json")),
            ],
            retain=True,
            username="fleet",
            password="s3cret",
        )
        entry = entry_for(broker, **{CONF_USERNAME: "fleet", CONF_PASSWORD: "s3cret"})
        await setup(hass, entry)
        tracker = entry.runtime_data.coordinator.tracker
        await until(hass, lambda: any(state.readings for state in tracker.devices.values()))
        diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
        text = str(diagnostics)
        # credentials, the broker's address, and what names the plug on the wire and the LAN:
        # its MAC (in any case), topic (also its name here), IP and host name
        for secret in ("s3cret", "fleet", "127.0.0.1", "NXSM200_01", "192.168.2.33"):
            assert secret not in text, secret
        assert PLUG_MAC.lower() not in text.lower()
        assert "NXSM200-01-4037" not in text
        assert diagnostics["entry"]["data"][CONF_HOST] == "**REDACTED**"
        # what helps stays
        assert diagnostics["entry"]["data"][CONF_PORT] == broker.port
        assert diagnostics["broker"]["messages"] >= 2
        (device,) = diagnostics["devices"]
        assert device["device"]["firmware"] == "11.0.0"
        assert device["device"]["model"] == "NXSM200"
        assert device["device"]["full_topic"] == "%prefix%/%topic%/"  # a template, no id
        (energy,) = device["readings"].values()
        assert energy["power_watts"] == 2635.0
        await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await broker.stop()


async def test_diagnostics_scrub_the_broker_address_from_its_errors(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, mosquitto: Mosquitto
) -> None:
    """An error's text may name host and port (asyncio's refused connect does): cut out, kept."""
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    session = entry.runtime_data.coordinator.session
    await mosquitto.stop()
    await until(hass, lambda: session.last_error is not None)
    session.last_error = f"[Errno 111] Connect call failed ('127.0.0.1', {mosquitto.port})"
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert "127.0.0.1" not in str(diagnostics)
    assert diagnostics["broker"]["last_error"] == (
        f"[Errno 111] Connect call failed ('**REDACTED**', {mosquitto.port})"
    )
    assert diagnostics["broker"]["state"] != "connected"
    await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_moves_to_another_broker(
    hass: HomeAssistant, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    (tmp_path / "other").mkdir()
    other = Mosquitto(tmp_path / "other")
    await other.start()
    try:
        result = await entry.start_reconfigure_flow(hass)
        assert result["step_id"] == "reconfigure"
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            form(other),
        )
        # The fleet moved: the entry follows the broker, its unique id too.
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        assert entry.unique_id == f"127.0.0.1:{other.port}/tasmota/discovery"
        await hass.async_block_till_done()
        result = await entry.start_reconfigure_flow(hass)
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {**form(mosquitto), CONF_USERNAME: ""},
        )
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
    finally:
        await hass.config_entries.async_unload(entry.entry_id)
        await other.stop()


async def test_an_exception_in_the_handler_is_counted_and_the_entry_keeps_going(
    hass: HomeAssistant,
    mosquitto: Mosquitto,
    hass_client: ClientSessionGenerator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever a payload makes the tracker raise: counted, shown, and the next one works."""
    entry = entry_for(mosquitto)
    await setup(hass, entry)
    coordinator = entry.runtime_data.coordinator
    handle = coordinator.tracker.handle

    def fragile(topic: str, payload: bytes) -> object:
        if payload.startswith(b"[[[["):
            raise RecursionError("maximum recursion depth exceeded")
        return handle(topic, payload)

    monkeypatch.setattr(coordinator.tracker, "handle", fragile)
    await mosquitto.publish([("tele/NXSM200_01/SENSOR", b"[[[[" * 1000)])
    await until(hass, lambda: coordinator.rejects.by_kind["exception"] == 1, 20)
    await publish_plug(mosquitto)
    await until(hass, lambda: state_of(hass, "binary_sensor.nxsm200_01_online") == STATE_ON, 20)
    assert entry.state is ConfigEntryState.LOADED
    assert coordinator.session.handler_errors == 0, "the guard, not the session, caught it"
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["rejects"]["exception"] == 1
