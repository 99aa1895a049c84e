from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from unittest.mock import patch

import pytest
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    snapshot_platform,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.fleet_metrics.const import CONF_WEBSOCKET, DOMAIN
from tests.opendtu_fake import FakeOpenDtu, fixture_text

from .conftest import setup_entry


async def next_poll(hass: HomeAssistant) -> None:
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=31))
    # the coordinator refreshes in a background task
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    ("platform", "count"),
    # sensors: 4 DTU (no CPU temperature: it is null) + 15 inverter + 2 strings x 5
    [(Platform.SENSOR, 29), (Platform.BINARY_SENSOR, 5)],
)
async def test_entities_snapshot(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
    count: int,
) -> None:
    with patch("custom_components.fleet_metrics.PLATFORMS", [platform]):
        await setup_entry(hass, opendtu_entry)
    await snapshot_platform(hass, entity_registry, snapshot, opendtu_entry.entry_id)
    assert len(er.async_entries_for_config_entry(entity_registry, opendtu_entry.entry_id)) == count


async def test_key_states_units_and_classes(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    await setup_entry(hass, opendtu_entry)
    power = hass.states.get("sensor.hm800_power")
    assert power is not None
    assert power.state == "70.1"
    assert power.attributes["unit_of_measurement"] == "W"
    assert power.attributes["device_class"] == "power"
    assert power.attributes["state_class"] == "measurement"
    total = hass.states.get("sensor.hm800_yield_total")
    assert total is not None
    assert total.state == "48.54"
    assert total.attributes["unit_of_measurement"] == "kWh"
    assert total.attributes["state_class"] == "total_increasing"
    string = hass.states.get("sensor.hm800_dc_1_yield_today")
    assert string is not None and string.state == "31.0"
    assert hass.states.get("sensor.opendtu_buero_total_power").state == "70.1"  # type: ignore[union-attr]
    assert hass.states.get("binary_sensor.hm800_producing").state == STATE_ON  # type: ignore[union-attr]
    assert hass.states.get("binary_sensor.opendtu_buero_radio_problem").state == STATE_OFF  # type: ignore[union-attr]
    # cputemp is null on this DTU: no sensor rather than a permanently unknown one
    assert hass.states.get("sensor.opendtu_buero_cpu_temperature") is None


async def test_unreachable_inverter_keeps_only_lasting_values(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, opendtu_entry)
    body = opendtu.details["114182345678"]
    opendtu.details["114182345678"] = body.replace('"reachable":true', '"reachable":false')
    await next_poll(hass)
    assert hass.states.get("sensor.hm800_power").state == STATE_UNAVAILABLE  # type: ignore[union-attr]
    assert hass.states.get("sensor.hm800_dc_1_power").state == STATE_UNAVAILABLE  # type: ignore[union-attr]
    assert hass.states.get("sensor.hm800_yield_total").state == "48.54"  # type: ignore[union-attr]
    assert hass.states.get("sensor.hm800_dc_1_yield_total").state == "4.301"  # type: ignore[union-attr]
    assert hass.states.get("binary_sensor.hm800_reachable").state == STATE_OFF  # type: ignore[union-attr]


async def test_dtu_down_makes_everything_unavailable_then_recovers(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, opendtu_entry)
    opendtu.failures["/api/livedata/status"] = (429, "Too Many Requests")
    await next_poll(hass)
    for entity_id in (
        "sensor.hm800_power",
        "sensor.hm800_yield_total",
        "sensor.opendtu_buero_total_power",
    ):
        assert hass.states.get(entity_id).state == STATE_UNAVAILABLE, entity_id  # type: ignore[union-attr]
    opendtu.failures.clear()
    await next_poll(hass)
    assert hass.states.get("sensor.hm800_power").state == "70.1"  # type: ignore[union-attr]


async def test_new_inverter_gets_entities_without_reload(
    hass: HomeAssistant,
    opendtu: FakeOpenDtu,
    opendtu_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
) -> None:
    await setup_entry(hass, opendtu_entry)
    identifier = (DOMAIN, "opendtu_inverter_1164a0b1c2d3")
    assert device_registry.async_get_device(identifiers={identifier}) is None
    hm800 = json.loads(opendtu.overview)
    hms = json.loads(fixture_text("livedata_status_inverter_hms2000.json"))
    hm800["inverters"].append(hms["inverters"][0])
    opendtu.overview = json.dumps(hm800)
    await next_poll(hass)
    device = device_registry.async_get_device(identifiers={identifier})
    assert device is not None
    entities = er.async_entries_for_device(entity_registry, device.id)
    assert len(entities) > 20  # inverter values plus four strings
    power = hass.states.get(next(e.entity_id for e in entities if e.unique_id.endswith("_power")))
    assert power is not None and power.state != STATE_UNAVAILABLE


async def test_live_push_updates_state_between_polls(
    hass: HomeAssistant, opendtu: FakeOpenDtu, opendtu_entry: MockConfigEntry
) -> None:
    opendtu_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(opendtu_entry, options={CONF_WEBSOCKET: True})
    await hass.config_entries.async_setup(opendtu_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.hm800_power").state == "70.1"  # type: ignore[union-attr]
    async with asyncio.timeout(5):
        while not opendtu.sockets:
            await asyncio.sleep(0.01)
    opendtu.ws_messages.put_nowait(fixture_text("ws_livedata_message.json"))
    async with asyncio.timeout(5):
        while hass.states.get("sensor.hm800_power").state != "72.3":  # type: ignore[union-attr]
            await asyncio.sleep(0.05)
    assert hass.states.get("sensor.opendtu_buero_total_yield").state == "48.542"  # type: ignore[union-attr]
    assert opendtu.requests.count("/api/system/status") == 1, "no poll was needed"
